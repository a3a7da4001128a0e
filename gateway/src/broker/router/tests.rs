//! Tests of the subscription tree: the specification's examples, overlapping
//! subscriptions, No Local, shared round robin, pruning and a cluster's interest; the
//! property tests against a linear scan are in `model_tests`.

use super::*;
use std::collections::BTreeMap;

fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).unwrap()
}

fn id(n: u32) -> Option<NonZeroU32> {
    NonZeroU32::new(n)
}

fn sub(qos: QoS, identifier: Option<NonZeroU32>, no_local: bool) -> Subscription {
    let mut options = SubscriptionOptions::qos(qos);
    options.no_local = no_local;
    Subscription {
        options,
        identifier,
    }
}

/// A plain QoS 0 subscription.
const PLAIN: Subscription = Subscription {
    options: SubscriptionOptions::qos(QoS::AtMostOnce),
    identifier: None,
};

fn tree_of(subscriptions: &[(ClientKey, &str)]) -> SubscriptionTree {
    let mut tree = SubscriptionTree::new();
    for &(client, f) in subscriptions {
        tree.subscribe(client, &filter(f), PLAIN);
    }
    tree
}

/// The deliveries of a PUBLISH on `topic`, ordinary ones first, by client.
fn deliveries(tree: &SubscriptionTree, topic: &str, from: Option<ClientKey>) -> Vec<Delivery> {
    let mut out = Vec::new();
    tree.matches(topic, from, |_| true, &mut out);
    out.sort_by_key(|d| (d.shared, d.client));
    out
}

fn clients(deliveries: &[Delivery]) -> Vec<ClientKey> {
    deliveries.iter().map(|d| d.client).collect()
}

/// Does a tree with the single subscription `f` deliver a PUBLISH on `topic`?
fn hits(f: &str, topic: &str) -> bool {
    !deliveries(&tree_of(&[(1, f)]), topic, None).is_empty()
}

#[test]
fn spec_multi_level_wildcard() {
    // MQTT 5.0 section 4.7.1.2.
    let f = "sport/tennis/player1/#";
    assert!(hits(f, "sport/tennis/player1"));
    assert!(hits(f, "sport/tennis/player1/ranking"));
    assert!(hits(f, "sport/tennis/player1/score/wimbledon"));
    assert!(!hits(f, "sport/tennis/player2"));
    assert!(!hits(f, "sport/tennis"));
    assert!(hits("sport/#", "sport"));
    assert!(hits("sport/#", "sport/"));
    assert!(hits("#", "sport/tennis"));
    assert!(hits("/#", "/"));
    assert!(!hits("/#", "a"));
}

#[test]
fn spec_single_level_wildcard() {
    // MQTT 5.0 section 4.7.1.3.
    assert!(hits("sport/tennis/+", "sport/tennis/player1"));
    assert!(!hits("sport/tennis/+", "sport/tennis/player1/ranking"));
    assert!(!hits("sport/+", "sport"));
    assert!(hits("sport/+", "sport/"));
    assert!(hits("+/+", "/finance"));
    assert!(hits("/+", "/finance"));
    assert!(!hits("+", "/finance"));
    assert!(hits("+/tennis/#", "sport/tennis/player1"));
    assert!(!hits("a//b", "a/b"));
}

#[test]
fn spec_dollar_topics() {
    // MQTT 5.0 section 4.7.2: wildcards in the first level do not match `$` topics.
    let sys = "$SYS/monitor/Clients";
    assert!(!hits("#", sys));
    assert!(!hits("+/monitor/Clients", sys));
    assert!(!hits("+/#", sys));
    assert!(!hits("+", "$SYS"));
    assert!(hits("$SYS/#", sys));
    assert!(hits("$SYS/monitor/+", sys));
    // Only the first level is special.
    assert!(hits("a/+", "a/$b"));
    assert!(hits("a/#", "a/$b/c"));
}

#[test]
fn overlapping_subscriptions_merge_to_max_qos_and_all_identifiers() {
    let mut tree = SubscriptionTree::new();
    tree.subscribe(1, &filter("a/+"), sub(QoS::AtMostOnce, id(1), false));
    tree.subscribe(1, &filter("a/#"), sub(QoS::ExactlyOnce, id(2), false));
    tree.subscribe(1, &filter("a/b"), sub(QoS::AtLeastOnce, None, false));
    let mut retain_as_published = PLAIN;
    retain_as_published.options.retain_as_published = true;
    tree.subscribe(1, &filter("+/b"), retain_as_published);
    tree.subscribe(2, &filter("a/b"), sub(QoS::AtLeastOnce, None, false));

    let mut out = deliveries(&tree, "a/b", None);
    out[0].identifiers.sort();
    let merged = Delivery {
        client: 1,
        qos: QoS::ExactlyOnce,
        retain_as_published: true,
        identifiers: vec![id(1).unwrap(), id(2).unwrap()],
        shared: false,
    };
    let other = Delivery::new(2, &sub(QoS::AtLeastOnce, None, false), false);
    assert_eq!(out, [merged, other]);
}

#[test]
fn no_local_skips_only_the_publishers_no_local_subscriptions() {
    let mut tree = SubscriptionTree::new();
    tree.subscribe(1, &filter("a/b"), sub(QoS::ExactlyOnce, id(1), true));
    tree.subscribe(1, &filter("a/#"), sub(QoS::AtMostOnce, id(2), false));
    tree.subscribe(2, &filter("a/b"), sub(QoS::AtLeastOnce, None, true));
    tree.subscribe(3, &filter("a/+"), sub(QoS::AtLeastOnce, None, true));

    let out = deliveries(&tree, "a/b", Some(1));
    assert_eq!(clients(&out), [1, 2, 3]);
    // Client 1 still gets it through `a/#`, with that subscription's QoS and identifier only.
    let through_hash = sub(QoS::AtMostOnce, id(2), false);
    assert_eq!(out[0], Delivery::new(1, &through_hash, false));
    assert_eq!(clients(&deliveries(&tree, "a/b", Some(3))), [1, 2]);
    assert_eq!(clients(&deliveries(&tree, "a/b", None)), [1, 2, 3]);
}

#[test]
fn subscribe_again_replaces() {
    let mut tree = SubscriptionTree::new();
    let qos = |qos| sub(qos, None, false);
    assert!(!tree.subscribe(1, &filter("a/+"), qos(QoS::AtMostOnce)));
    assert!(tree.subscribe(1, &filter("a/+"), qos(QoS::ExactlyOnce)));
    assert!(!tree.subscribe(2, &filter("a/+"), qos(QoS::AtMostOnce)));
    assert!(!tree.subscribe(1, &filter("$share/g/a/+"), qos(QoS::AtMostOnce)));
    assert!(tree.subscribe(1, &filter("$share/g/a/+"), qos(QoS::AtLeastOnce)));
    assert_eq!(tree.len(), 3);
    let out = deliveries(&tree, "a/x", None);
    let summary: Vec<_> = out.iter().map(|d| (d.client, d.qos, d.shared)).collect();
    assert_eq!(
        summary,
        [
            (1, QoS::ExactlyOnce, false),
            (2, QoS::AtMostOnce, false),
            (1, QoS::AtLeastOnce, true)
        ]
    );
}

#[test]
fn unsubscribe_reports_whether_it_existed() {
    let mut tree = tree_of(&[(1, "a/+"), (1, "$share/g/a/+")]);
    assert!(!tree.unsubscribe(2, &filter("a/+")));
    assert!(!tree.unsubscribe(1, &filter("a/b")));
    assert!(!tree.unsubscribe(1, &filter("a/#")));
    assert!(!tree.unsubscribe(1, &filter("$share/h/a/+")));
    assert!(tree.unsubscribe(1, &filter("a/+")));
    assert!(!tree.unsubscribe(1, &filter("a/+")));
    // The shared subscription is still there.
    assert!(deliveries(&tree, "a/b", None)[0].shared);
    assert!(tree.unsubscribe(1, &filter("$share/g/a/+")));
    assert_eq!(tree.len(), 0);
    assert!(deliveries(&tree, "a/b", None).is_empty());
}

#[test]
fn unsubscribing_prunes_empty_nodes() {
    let filters = [
        "a/b/c",
        "a/b",
        "a/+/c/#",
        "#",
        "+",
        "/",
        "$SYS/#",
        "$share/g/a/b/c",
    ]
    .map(filter);
    let mut tree = SubscriptionTree::new();
    for client in 0..3 {
        for f in &filters {
            tree.subscribe(client, f, PLAIN);
        }
        tree.subscribe(client, &filter("x/y/z"), PLAIN);
    }
    let peak = tree.node_count();
    assert!(tree.unsubscribe(0, &filter("x/y/z")));
    assert_eq!(tree.node_count(), peak, "clients 1 and 2 still use x/y/z");
    assert_eq!(tree.remove_client(1, &filters), filters.len());
    assert_eq!(tree.remove_client(1, &[filter("x/y/z")]), 1);
    assert_eq!(tree.remove_client(2, &[filter("x/y/z")]), 1);
    assert_eq!(tree.node_count(), peak - 3, "x/y/z is gone");

    // `a/b/c` stays while the shared subscription to it does, then goes, but not `a/b`.
    tree.remove_client(0, &[filter("a/b/c")]);
    tree.remove_client(2, &[filter("a/b/c")]);
    assert_eq!(tree.node_count(), peak - 3);
    tree.remove_client(0, &[filter("$share/g/a/b/c")]);
    tree.remove_client(2, &[filter("$share/g/a/b/c")]);
    assert_eq!(tree.node_count(), peak - 4);

    for client in 0..3 {
        tree.remove_client(client, &filters);
    }
    assert_eq!((tree.len(), tree.node_count()), (0, 0));
    // Freed slots are reused rather than growing the arena.
    let arena = tree.nodes.len();
    tree.subscribe(1, &filter("p/q/r"), PLAIN);
    assert_eq!(tree.nodes.len(), arena);
}

/// How many of `rounds` PUBLISHes on `topic` each client gets through a shared subscription.
fn shared_counts(
    tree: &SubscriptionTree,
    topic: &str,
    rounds: usize,
    is_online: impl Fn(ClientKey) -> bool,
) -> BTreeMap<ClientKey, usize> {
    let mut counts = BTreeMap::new();
    let mut out = Vec::new();
    for _ in 0..rounds {
        out.clear();
        tree.matches(topic, None, &is_online, &mut out);
        assert_eq!(out.iter().filter(|d| d.shared).count(), 1, "one per group");
        for d in out.iter().filter(|d| d.shared) {
            *counts.entry(d.client).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn shared_round_robin_is_even() {
    let tree = tree_of(&[
        (1, "$share/g/t/+"),
        (2, "$share/g/t/+"),
        (3, "$share/g/t/+"),
    ]);
    let counts = shared_counts(&tree, "t/x", 300, |_| true);
    assert_eq!(counts, BTreeMap::from([(1, 100), (2, 100), (3, 100)]));
}

#[test]
fn shared_round_robin_skips_offline_members() {
    let tree = tree_of(&[(1, "$share/g/t"), (2, "$share/g/t"), (3, "$share/g/t")]);
    let counts = shared_counts(&tree, "t", 300, |client| client != 2);
    assert_eq!(counts, BTreeMap::from([(1, 150), (3, 150)]));
    // Nobody online: still one member per message, in turn, for the broker to queue.
    let counts = shared_counts(&tree, "t", 300, |_| false);
    assert_eq!(counts, BTreeMap::from([(1, 100), (2, 100), (3, 100)]));
}

#[test]
fn shared_groups_deliver_independently() {
    let tree = tree_of(&[
        (1, "$share/g/t/#"),
        (1, "$share/h/t/#"),
        (1, "$share/g/t/+"),
        (1, "t/x"),
    ]);
    let out = deliveries(&tree, "t/x", None);
    let summary: Vec<_> = out.iter().map(|d| (d.client, d.shared)).collect();
    assert_eq!(summary, [(1, false), (1, true), (1, true), (1, true)]);
    // The group is not matched against its own `$share/...` name.
    assert!(deliveries(&tree, "$share/g/t/x", None).is_empty());
}

#[test]
fn deep_filters_and_topics_do_not_recurse() {
    // 30,000 levels: far deeper than a recursive walk could go on a 2 MiB test thread.
    let depth = 30_000;
    let deep_topic = vec!["a"; depth].join("/");
    let filters = [
        vec!["+"; depth].join("/"),
        deep_topic.clone(),
        format!("{deep_topic}/#"),
    ];
    let mut tree = tree_of(&[(1, &filters[0]), (2, &filters[1]), (3, &filters[2])]);
    assert_eq!(clients(&deliveries(&tree, &deep_topic, None)), [1, 2, 3]);
    assert_eq!(tree.remove_client(2, &[filter(&filters[1])]), 1);
    assert_eq!(tree.remove_client(3, &[filter(&filters[2])]), 1);
    assert_eq!(tree.node_count(), depth);
    drop(tree);
}

#[test]
fn tree_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SubscriptionTree>();
}

#[test]
fn interest_is_noted_when_a_filter_gains_its_first_or_loses_its_last_subscription() {
    let mut tree = tree_of(&[(1, "a/+"), (2, "$share/g/b/#")]);
    let mut before = tree.track_interest();
    before.sort();
    assert_eq!(
        before,
        ["$share/g/b/#".into(), "a/+".into()] as [Box<str>; 2]
    );
    let s = sub(QoS::AtMostOnce, None, false);
    tree.subscribe(3, &filter("a/+"), s);
    tree.subscribe(3, &filter("c"), s);
    // A group's second member is no news; an ordinary subscription beside a group is.
    tree.subscribe(4, &filter("$share/g/b/#"), s);
    tree.subscribe(4, &filter("b/#"), s);
    assert_eq!(
        tree.take_interest(),
        [("c".into(), true), ("b/#".into(), true)]
    );
    tree.unsubscribe(1, &filter("a/+"));
    tree.unsubscribe(2, &filter("$share/g/b/#"));
    assert!(
        tree.take_interest().is_empty(),
        "client 3 still subscribes to a/+, client 4 is still in the group"
    );
    tree.unsubscribe(3, &filter("a/+"));
    tree.unsubscribe(4, &filter("$share/g/b/#"));
    assert_eq!(
        tree.take_interest(),
        [("a/+".into(), false), ("$share/g/b/#".into(), false)]
    );
}

#[test]
fn in_a_cluster_shared_groups_are_matched_only_by_their_turn() {
    let mut tree = tree_of(&[(1, "a/+"), (2, "$share/g/a/+"), (3, "$share/g/a/+")]);
    let mut out = Vec::new();
    tree.matches("a/b", None, |_| true, &mut out);
    assert_eq!(
        out.len(),
        2,
        "a single node serves the group itself: {out:?}"
    );
    tree.track_interest();
    out.clear();
    tree.matches("a/b", None, |_| true, &mut out);
    let clients: Vec<ClientKey> = out.iter().map(|d| d.client).collect();
    assert_eq!(clients, [1], "the cluster gives the group its turn");
    out.clear();
    for _ in 0..4 {
        tree.matches_group("g", "a/+", "a/b", |_| true, &mut out);
    }
    let clients: Vec<ClientKey> = out.iter().map(|d| d.client).collect();
    assert!(
        clients[0] != clients[1] && clients[..2] == clients[2..],
        "round robin among the members here: {clients:?}"
    );
    out.clear();
    tree.matches_group("h", "a/+", "a/b", |_| true, &mut out);
    tree.matches_group("g", "a/+", "x/y", |_| true, &mut out);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn matching_one_filter_delivers_to_its_subscribers_only() {
    let tree = tree_of(&[(1, "a/+"), (2, "a/b"), (3, "#"), (4, "$share/g/a/+")]);
    let mut out = Vec::new();
    tree.matches_filter("a/+", "a/b", |_| true, &mut out);
    let clients: Vec<ClientKey> = out.iter().map(|d| d.client).collect();
    assert_eq!(
        clients,
        [1],
        "the group takes its turn through matches_group"
    );
    out.clear();
    tree.matches_filter("a/+", "x/y", |_| true, &mut out);
    tree.matches_filter("#", "$SYS/x", |_| true, &mut out);
    tree.matches_filter("nobody/here", "nobody/here", |_| true, &mut out);
    assert!(out.is_empty(), "{out:?}");
}

#[path = "model_tests.rs"]
mod model_tests;
