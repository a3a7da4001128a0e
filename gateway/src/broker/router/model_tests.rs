//! Property tests of the subscription tree and its cache of matches against a model: every
//! subscription in a list, scanned for every PUBLISH, as the specification reads.

use super::*;
use aviary_protocol::matches as filter_matches;
use proptest::prelude::*;
use proptest::sample::select;

/// The specification, the slow way: every subscription in a list, scanned for every PUBLISH.
#[derive(Debug, Default)]
struct Model {
    subscriptions: Vec<(ClientKey, TopicFilter, Subscription)>,
    /// Round-robin position per shared group (its full filter), as the tree keeps it.
    cursors: BTreeMap<String, usize>,
}

impl Model {
    fn position(&self, client: ClientKey, f: &TopicFilter) -> Option<usize> {
        let same = |(c, g, _): &(_, TopicFilter, _)| *c == client && g == f;
        self.subscriptions.iter().position(same)
    }

    fn subscribe(&mut self, client: ClientKey, f: TopicFilter, s: Subscription) -> bool {
        if let Some(i) = self.position(client, &f) {
            self.subscriptions[i].2 = s;
            return true;
        }
        self.subscriptions.push((client, f, s));
        false
    }

    fn unsubscribe(&mut self, client: ClientKey, f: &TopicFilter) -> bool {
        let Some(i) = self.position(client, f) else {
            return false;
        };
        self.subscriptions.remove(i);
        if !self.subscriptions.iter().any(|(_, g, _)| g == f) {
            self.cursors.remove(f.as_str()); // a group that empties starts over
        }
        true
    }

    fn matches(&mut self, topic: &str, publisher: Option<ClientKey>) -> Vec<Delivery> {
        let mut direct: BTreeMap<ClientKey, Delivery> = BTreeMap::new();
        let mut groups: BTreeMap<&str, Vec<(ClientKey, &Subscription)>> = BTreeMap::new();
        for (client, f, s) in &self.subscriptions {
            if !filter_matches(f.matching_filter(), topic) {
                continue;
            }
            if f.shared().is_some() {
                groups.entry(f.as_str()).or_default().push((*client, s));
            } else if !(s.options.no_local && publisher == Some(*client)) {
                let mut new = Delivery::new(*client, s, false);
                match direct.get_mut(client) {
                    Some(existing) => existing.absorb(&mut new),
                    None => _ = direct.insert(*client, new),
                }
            }
        }
        let mut out: Vec<Delivery> = direct.into_values().collect();
        for (group, members) in groups {
            let cursor = self.cursors.entry(group.to_owned()).or_default();
            let (client, s) = members[*cursor % members.len()];
            *cursor += 1;
            out.push(Delivery::new(client, s, true));
        }
        out
    }
}

/// Deliveries in a canonical order, for comparing results.
fn normalized(mut out: Vec<Delivery>) -> Vec<Delivery> {
    for d in &mut out {
        d.identifiers.sort();
    }
    out.sort_by_key(|d| {
        (
            d.shared,
            d.client,
            d.qos,
            d.retain_as_published,
            d.identifiers.clone(),
        )
    });
    out
}

/// Filters over a small alphabet, so that they overlap a lot; some shared.
fn filters() -> impl Strategy<Value = TopicFilter> {
    let levels = prop::collection::vec(select(vec!["a", "b", "$a", "", "+", "#"]), 1..4);
    let prefix = select(vec!["", "", "", "$share/g/", "$share/h/"]);
    (prefix, levels).prop_filter_map("valid filter", |(prefix, levels)| {
        TopicFilter::new(format!("{prefix}{}", levels.join("/"))).ok()
    })
}

fn topics() -> impl Strategy<Value = String> {
    prop::collection::vec(select(vec!["a", "b", "$a", ""]), 1..5)
        .prop_map(|levels| levels.join("/"))
        .prop_filter("non-empty", |t| !t.is_empty())
}

fn subscriptions() -> impl Strategy<Value = Subscription> {
    (0u8..3, any::<bool>(), any::<bool>(), 0u32..4).prop_map(|(qos, no_local, rap, ident)| {
        let mut s = sub(QoS::try_from(qos).unwrap(), id(ident), no_local);
        s.options.retain_as_published = rap;
        s
    })
}

proptest! {
    #[test]
    fn tree_agrees_with_a_linear_scan(
        ops in prop::collection::vec((0u64..5, filters(), prop::option::weighted(0.75, subscriptions())), 1..50),
        publishes in prop::collection::vec((topics(), prop::option::of(0u64..5)), 1..10),
    ) {
        let mut tree = SubscriptionTree::new();
        let mut model = Model::default();
        for (client, f, op) in ops {
            match op {
                Some(s) => prop_assert_eq!(tree.subscribe(client, &f, s), model.subscribe(client, f, s)),
                None => prop_assert_eq!(tree.unsubscribe(client, &f), model.unsubscribe(client, &f)),
            }
        }
        prop_assert_eq!(tree.len(), model.subscriptions.len());
        for (topic, publisher) in publishes {
            // Something already in `out` (to the same client, even) is left alone.
            let before = Delivery::new(0, &PLAIN, false);
            let mut out = vec![before.clone()];
            tree.matches(&topic, publisher, |_| true, &mut out);
            prop_assert_eq!(&out[0], &before);
            let expected = normalized(model.matches(&topic, publisher));
            prop_assert_eq!(normalized(out.split_off(1)), expected, "{}", topic);
        }
        for (client, f, _) in std::mem::take(&mut model.subscriptions) {
            prop_assert!(tree.unsubscribe(client, &f));
        }
        prop_assert_eq!((tree.len(), tree.node_count()), (0, 0));
    }

    /// The cache of recent matches, with subscriptions changing between messages: every
    /// message, cached or not, goes where the model says.
    #[test]
    fn cached_matches_agree_with_a_linear_scan(
        steps in prop::collection::vec(prop_oneof![
            (0u64..4, filters(), prop::option::weighted(0.75, subscriptions()))
                .prop_map(|(client, f, op)| Err((client, f, op))),
            (topics(), prop::option::of(0u64..4)).prop_map(Ok),
        ], 1..80),
    ) {
        let mut tree = SubscriptionTree::new();
        let mut model = Model::default();
        let mut cache = super::cache::MatchCache::default();
        // Renewed by every change, as the routing lock's write guard does.
        let mut stamp = 1;
        for step in steps {
            match step {
                Err((client, f, Some(s))) => {
                    _ = (tree.subscribe(client, &f, s), model.subscribe(client, f, s));
                    stamp += 1;
                }
                Err((client, f, None)) => {
                    _ = (tree.unsubscribe(client, &f), model.unsubscribe(client, &f));
                    stamp += 1;
                }
                // Twice: the second may come from the cache.
                Ok((topic, publisher)) => for _ in 0..2 {
                    let mut out = Vec::new();
                    cache.matches((&tree, stamp), &topic, publisher, |_| true, &mut out);
                    let expected = normalized(model.matches(&topic, publisher));
                    prop_assert_eq!(normalized(out), expected, "{}", topic);
                },
            }
        }
    }
}
