//! Tests of the retained store: set, replace, remove and pruning; the
//! specification's matching rules; ordered walks resumed from any topic; and
//! a property test against a sorted map.

use super::*;
use aviary_protocol::matches as filter_matches;
use proptest::prelude::*;
use proptest::sample::select;
use std::collections::BTreeMap;

/// A store with message `i` retained on the `i`-th topic.
fn store_of(topics: &[&str]) -> RetainedStore<usize> {
    let mut store = RetainedStore::new();
    for (i, topic) in topics.iter().enumerate() {
        store.set(topic, i);
    }
    store
}

/// The topics of the messages matching `filter`, sorted.
fn matching(store: &RetainedStore<usize>, filter: &str) -> Vec<String> {
    let mut out = Vec::new();
    store.matching(filter, &mut out);
    let mut topics: Vec<String> = out.iter().map(|(topic, _)| topic.to_string()).collect();
    topics.sort();
    topics
}

const TOPICS: [&str; 9] = [
    "a",
    "a/b",
    "a/b/c",
    "a/c",
    "a//c",
    "x/b",
    "/b",
    "$SYS/uptime",
    "$SYS/clients/count",
];

#[test]
fn set_replace_and_remove() {
    let mut store = RetainedStore::new();
    assert_eq!(store.set("pets/1/status", "online"), None);
    assert_eq!(store.set("pets/1/status", "offline"), Some("online"));
    assert_eq!(store.set("pets/2/status", "online"), None);
    assert_eq!(store.len(), 2);
    assert_eq!(store.remove("pets/1/status"), Some("offline"));
    assert_eq!(store.remove("pets/1/status"), None);
    assert_eq!(
        store.remove("pets/1"),
        None,
        "an inner node holds no message"
    );
    assert_eq!(store.remove("pets/1/status/x"), None);
    assert_eq!(store.len(), 1);
    let all: Vec<_> = store.iter().collect();
    assert_eq!(all, [("pets/2/status", &"online")]);
}

#[test]
fn exact_filters_find_one_topic() {
    let store = store_of(&TOPICS);
    assert_eq!(matching(&store, "a/b"), ["a/b"]);
    assert_eq!(matching(&store, "a//c"), ["a//c"]);
    assert_eq!(matching(&store, "$SYS/uptime"), ["$SYS/uptime"]);
    assert!(matching(&store, "a/b/c/d").is_empty());
    assert!(matching(&store, "b").is_empty());
    assert!(
        matching(&store, "$SYS").is_empty(),
        "an inner node holds no message"
    );
}

#[test]
fn wildcard_filters() {
    let store = store_of(&TOPICS);
    let all_but_sys = ["/b", "a", "a//c", "a/b", "a/b/c", "a/c", "x/b"];
    assert_eq!(matching(&store, "#"), all_but_sys);
    assert_eq!(
        matching(&store, "a/#"),
        ["a", "a//c", "a/b", "a/b/c", "a/c"]
    );
    assert_eq!(matching(&store, "a/b/#"), ["a/b", "a/b/c"]);
    assert_eq!(matching(&store, "a/+"), ["a/b", "a/c"]);
    assert_eq!(matching(&store, "a/+/c"), ["a//c", "a/b/c"]);
    assert_eq!(matching(&store, "+/b"), ["/b", "a/b", "x/b"]);
    assert_eq!(matching(&store, "+"), ["a"]);
    assert_eq!(
        matching(&store, "+/+/#"),
        ["/b", "a//c", "a/b", "a/b/c", "a/c", "x/b"]
    );
    assert!(matching(&store, "b/#").is_empty());
}

#[test]
fn dollar_topics_need_a_literal_first_level() {
    // MQTT 5.0 section 4.7.2.
    let store = store_of(&TOPICS);
    assert!(!matching(&store, "#").iter().any(|t| t.starts_with('$')));
    assert!(matching(&store, "+/uptime").is_empty());
    assert!(matching(&store, "+/+/count").is_empty());
    assert_eq!(
        matching(&store, "$SYS/#"),
        ["$SYS/clients/count", "$SYS/uptime"]
    );
    assert_eq!(matching(&store, "$SYS/+"), ["$SYS/uptime"]);
    assert_eq!(matching(&store, "$SYS/+/count"), ["$SYS/clients/count"]);
}

#[test]
fn matching_appends_clones() {
    let store = store_of(&["a"]);
    let mut out = vec![(ByteString::from_static("before"), 7)];
    store.matching("#", &mut out);
    store.matching("a", &mut out);
    let expected = [("before", 7), ("a", 0), ("a", 0)].map(|(t, m)| (ByteString::from(t), m));
    assert_eq!(out, expected);
}

#[test]
fn removal_prunes_empty_nodes() {
    let mut store = store_of(&TOPICS);
    let peak = store.node_count();
    store.remove("a/b/c");
    assert_eq!(store.node_count(), peak - 1);
    store.remove("a");
    assert_eq!(store.node_count(), peak - 1, "a still leads to a/b");
    store.remove("$SYS/clients/count");
    assert_eq!(store.node_count(), peak - 3);
    for topic in TOPICS {
        store.remove(topic);
    }
    assert_eq!((store.len(), store.node_count()), (0, 0));
    assert!(matching(&store, "#").is_empty());
    // Freed slots are reused rather than growing the arena.
    let arena = store.nodes.len();
    store.set("p/q/r", 1);
    assert_eq!(store.nodes.len(), arena);
}

#[test]
fn retain_drops_and_prunes() {
    let mut store = store_of(&TOPICS);
    // Keep the even messages.
    assert_eq!(store.retain(|_, &i| i % 2 == 0), 4);
    assert_eq!(store.len(), 5);
    assert_eq!(matching(&store, "#"), ["/b", "a", "a//c", "a/b/c"]);
    assert_eq!(store.retain(|_, _| true), 0);
    assert_eq!(store.retain(|topic, _| topic.starts_with('$')), 4);
    assert_eq!(matching(&store, "$SYS/#"), ["$SYS/clients/count"]);
    assert_eq!(store.node_count(), 3);
}

#[test]
fn deep_topics_do_not_recurse() {
    // 30,000 levels: far deeper than a recursive walk could go on a 2 MiB test thread.
    let deep = vec!["a"; 30_000].join("/");
    let mut store = store_of(&[&deep, "a"]);
    assert_eq!(matching(&store, "#").len(), 2);
    let pluses = vec!["+"; 30_000].join("/");
    assert_eq!(matching(&store, &pluses), [deep.as_str()]);
    assert_eq!(store.remove(&deep), Some(0));
    assert_eq!(store.node_count(), 1);
}

/// The topics of a walk over `filter` resumed after `after`, in the order given.
fn walked<M>(store: &RetainedStore<M>, filter: &str, after: Option<&str>) -> Vec<String> {
    let walk = store.walk(filter, after);
    walk.map(|e| e.topic.to_string()).collect()
}

/// Topics compared the way a walk orders them: level by level.
fn level_order(topic: &str) -> Vec<&str> {
    topic.split('/').collect()
}

#[test]
fn walks_go_in_level_order() {
    let store = store_of(&TOPICS);
    let all_but_sys = ["/b", "a", "a//c", "a/b", "a/b/c", "a/c", "x/b"];
    assert_eq!(walked(&store, "#", None), all_but_sys);
    assert_eq!(
        walked(&store, "a/#", None),
        ["a", "a//c", "a/b", "a/b/c", "a/c"]
    );
    assert_eq!(walked(&store, "+/b", None), ["/b", "a/b", "x/b"]);
    assert_eq!(walked(&store, "a/b", None), ["a/b"]);
    assert_eq!(
        walked(&store, "$SYS/#", None),
        ["$SYS/clients/count", "$SYS/uptime"]
    );
    // Level order is not string order: `a/b` comes before `ab`, as `a` < `ab`.
    let store = store_of(&["ab", "a/b", "a-b", "a"]);
    assert_eq!(walked(&store, "#", None), ["a", "a/b", "a-b", "ab"]);
}

#[test]
fn walks_resume_after_any_topic() {
    let store = store_of(&TOPICS);
    for filter in ["#", "a/#", "+/b", "a/+", "+/+/#", "$SYS/#"] {
        let all = walked(&store, filter, None);
        for (i, topic) in all.iter().enumerate() {
            assert_eq!(
                walked(&store, filter, Some(topic)),
                all[i + 1..],
                "{filter} after {topic}"
            );
        }
    }
    // Resuming from a topic the filter does not match, before or after its range.
    assert_eq!(
        walked(&store, "a/#", Some("/b")),
        walked(&store, "a/#", None)
    );
    assert!(walked(&store, "a/#", Some("b")).is_empty());
    assert_eq!(walked(&store, "a/+", Some("a/b/c")), ["a/c"]);
}

#[test]
fn walks_resume_after_a_removed_topic() {
    let mut store = store_of(&["p/1", "p/2", "p/3", "p/2/x"]);
    let mut walk = store.walk("p/#", None);
    let (first, second) = (walk.next().unwrap(), walk.next().unwrap());
    assert_eq!((&*first.topic, &*second.topic), ("p/1", "p/2"));
    let resume = second.topic.clone();
    store.remove("p/2");
    store.remove("p/2/x");
    assert_eq!(walked(&store, "p/#", Some(&resume)), ["p/3"]);
    // And after a topic whose subtree is still there.
    let mut store = store_of(&["p/1", "p/2", "p/2/x", "p/3"]);
    store.remove("p/2");
    assert_eq!(walked(&store, "p/#", Some("p/2")), ["p/2/x", "p/3"]);
}

#[test]
fn versions_tell_old_topics_from_new() {
    let mut store = RetainedStore::new();
    assert_eq!(store.version(), 0);
    store.set("a", 1);
    store.set("b", 2);
    store.set("d", 3);
    let seen = store.version();
    store.set("a", 4);
    store.set("c", 5);
    store.remove("d");
    store.set("d", 6);
    let created: Vec<_> = store.walk("#", None).map(|e| (e.msg, e.created)).collect();
    assert_eq!(created, [(4, 1), (2, 2), (5, 5), (6, 6)]);
    let old: Vec<_> = store
        .walk("#", None)
        .filter(|e| e.created <= seen)
        .map(|e| e.msg)
        .collect();
    assert_eq!(
        old,
        [4, 2],
        "a replaced is still old; c is new, and d cleared is new again"
    );
}

#[test]
fn wide_levels_resume_in_order() {
    // A `+` over many siblings: every resume picks up exactly where the last one stopped.
    let topics: Vec<String> = (0..2000).map(|i| format!("pets/{i}/status")).collect();
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let store = store_of(&refs);
    let (mut seen, mut after) = (Vec::new(), None::<String>);
    loop {
        let chunk: Vec<String> = store
            .walk("pets/+/status", after.as_deref())
            .take(7)
            .map(|e| e.topic.to_string())
            .collect();
        let Some(last) = chunk.last() else { break };
        after = Some(last.clone());
        seen.extend(chunk);
    }
    let mut expected = topics.clone();
    expected.sort_by(|a, b| level_order(a).cmp(&level_order(b)));
    assert_eq!(seen, expected);
}

fn levels(alphabet: Vec<&'static str>) -> impl Strategy<Value = String> {
    prop::collection::vec(select(alphabet), 1..5).prop_map(|levels| levels.join("/"))
}

proptest! {
    #[test]
    fn store_agrees_with_a_map(
        ops in prop::collection::vec((levels(vec!["a", "b", "$a", ""]), prop::option::of(0u32..100)), 1..40),
        filters in prop::collection::vec(levels(vec!["a", "b", "$a", "", "+", "#"]), 1..10),
    ) {
        let mut store = RetainedStore::new();
        let mut model = BTreeMap::new();
        let mut removed = Vec::new();
        for (topic, op) in ops.into_iter().filter(|(topic, _)| !topic.is_empty()) {
            match op {
                Some(msg) => prop_assert_eq!(store.set(&topic, msg), model.insert(topic, msg)),
                None => {
                    prop_assert_eq!(store.remove(&topic), model.remove(&topic));
                    removed.push(topic);
                }
            }
        }
        prop_assert_eq!(store.len(), model.len());
        let mut all: Vec<_> = store.iter().map(|(t, &m)| (t.to_owned(), m)).collect();
        all.sort();
        prop_assert_eq!(all, model.clone().into_iter().collect::<Vec<_>>());
        for filter in filters.iter().filter(|f| aviary_protocol::TopicFilter::new(f.as_str()).is_ok()) {
            let mut out = Vec::new();
            store.matching(filter, &mut out);
            let mut found: Vec<_> = out.into_iter().map(|(t, m)| (t.to_string(), m)).collect();
            found.sort();
            let expected: Vec<_> = model.iter().filter(|(t, _)| filter_matches(filter, t)).map(|(t, &m)| (t.clone(), m)).collect();
            prop_assert_eq!(found, expected, "{}", filter);
            // Walks give the same messages in level order, and resume after any topic,
            // retained or not.
            let mut ordered: Vec<String> = model.keys().filter(|t| filter_matches(filter, t)).cloned().collect();
            ordered.sort_by(|a, b| level_order(a).cmp(&level_order(b)));
            prop_assert_eq!(walked(&store, filter, None), ordered.clone(), "{}", filter);
            for after in model.keys().chain(&removed) {
                let rest: Vec<String> = ordered.iter().filter(|t| level_order(t) > level_order(after)).cloned().collect();
                prop_assert_eq!(walked(&store, filter, Some(after)), rest, "{} after {}", filter, after);
            }
        }
        for topic in model.keys() {
            prop_assert!(store.remove(topic).is_some());
        }
        prop_assert_eq!((store.len(), store.node_count()), (0, 0));
    }
}
