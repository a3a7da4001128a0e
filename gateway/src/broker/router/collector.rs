//! The deliveries of one match of a topic against the tree: shared groups pick their member
//! as the walk reaches them; ordinary subscribers are merged at the end, one delivery per
//! client [MQTT-3.3.4-2] [MQTT-3.3.4-3].

use std::cell::Cell;

use super::{ClientKey, Delivery, Matched, Subscribers, Subscription};

/// Gathers the deliveries of one [`SubscriptionTree::matches`](super::SubscriptionTree::matches)
/// call.
///
/// Shared groups deliver at once. Ordinary subscriber sets are only noted during the walk: a
/// client may be in several of them, and merging is cheapest with all of them in hand.
pub(super) struct Collector<'t, 'o, F> {
    /// The client that published, for No Local.
    pub(super) publisher: Option<ClientKey>,
    /// Whether a shared group member is online.
    pub(super) is_online: F,
    /// Whether shared groups are served here: on a single node, not in a cluster.
    pub(super) groups: bool,
    /// Where the deliveries go.
    pub(super) out: &'o mut Vec<Delivery>,
    /// The matching set with the most ordinary subscribers.
    pub(super) largest: Option<&'t Subscribers>,
    /// The other matching sets with ordinary subscribers; unallocated unless there are any.
    pub(super) others: Vec<&'t Subscribers>,
    /// Whether a shared group picked a member.
    pub(super) picked: bool,
}

impl<'t, F: Fn(ClientKey) -> bool> Collector<'t, '_, F> {
    /// Takes in one matching filter's subscribers, if it has any.
    pub(super) fn collect(&mut self, subscribers: Option<&'t Subscribers>) {
        let Some(subscribers) = subscribers else {
            return;
        };
        if self.groups {
            for group in &subscribers.shared {
                let (client, sub) = group.pick(&self.is_online);
                self.out.push(Delivery::new(client, sub, true));
                self.picked = true;
            }
        }
        if subscribers.direct.is_empty() {
            return;
        }
        match self.largest {
            Some(largest) if largest.direct.len() >= subscribers.direct.len() => {
                self.others.push(subscribers);
            }
            previous => {
                self.others.extend(previous);
                self.largest = Some(subscribers);
            }
        }
    }

    /// Adds one delivery per client with ordinary subscriptions [MQTT-3.3.4-2] [MQTT-3.3.4-3].
    ///
    /// The largest set holds each client once, so only the smaller sets are sorted and merged,
    /// and then looked up in the largest: O(large + small * log(small)), where sorting every
    /// delivery would make each PUBLISH that a `#` subscriber also sees cost O(n * log(n)).
    ///
    /// Returns what else the deliveries depend on ([`Matched`]).
    pub(super) fn finish(self) -> Matched {
        let picked = self.picked;
        let Some(largest) = self.largest else {
            return Matched {
                picked,
                no_local: false,
            };
        };
        let (publisher, out) = (self.publisher, self.out);
        let no_local = Cell::new(false);
        // [MQTT-3.8.3-3]: not back to the publisher, if it asked for No Local.
        let wanted = |(&client, sub): (&ClientKey, &Subscription)| {
            no_local.set(no_local.get() | sub.options.no_local);
            let own = sub.options.no_local && publisher == Some(client);
            (!own).then(|| Delivery::new(client, sub, false))
        };
        let start = out.len();
        let smaller = self.others.iter().flat_map(|set| &set.direct);
        out.extend(smaller.filter_map(wanted));
        merge_by_client(out, start);
        let mut overlaps = 0;
        for delivery in &mut out[start..] {
            let also = largest.direct.get_key_value(&delivery.client);
            if let Some(mut also) = also.and_then(wanted) {
                delivery.absorb(&mut also);
                overlaps += 1;
            }
        }
        let merged = start..out.len();
        out.reserve(largest.direct.len());
        for entry in &largest.direct {
            // Skip the clients merged above; only looked for when there are any.
            let by_client = |delivery: &Delivery| delivery.client;
            let seen = || out[merged.clone()].binary_search_by_key(entry.0, by_client);
            if overlaps == 0 || seen().is_err() {
                out.extend(wanted(entry));
            }
        }
        Matched {
            picked,
            no_local: no_local.get(),
        }
    }
}

/// Sorts `out[start..]` by client and merges the deliveries to the same client, in place.
fn merge_by_client(out: &mut Vec<Delivery>, start: usize) {
    if out.len() - start < 2 {
        return;
    }
    out[start..].sort_unstable_by_key(|delivery| delivery.client);
    // Like `Vec::dedup_by`, but on a tail: `kept` is the last delivery of the merged prefix.
    let mut kept = start;
    for next in start + 1..out.len() {
        let (merged, rest) = out.split_at_mut(next);
        let (last, candidate) = (&mut merged[kept], &mut rest[0]);
        if last.client == candidate.client {
            last.absorb(candidate);
        } else {
            kept += 1;
            out.swap(kept, next);
        }
    }
    out.truncate(kept + 1);
}
