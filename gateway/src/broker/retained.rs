//! Retained messages: the last retained PUBLISH of each topic, kept for future subscribers
//! (MQTT 5.0 section 3.3.1.3).
//!
//! The store is generic over the message type `M`, so the broker decides what to keep (an
//! `Arc` of its routed message, say: `M` sits inline in a trie node and is cloned into every
//! lookup's result, so it should be a small handle).
//!
//! Messages live in a trie over topic levels, like the subscription tree in
//! [`router`](super::router): a SUBSCRIBE's filter is matched by walking it level by level, so a
//! literal filter costs one map lookup per level and `a/b/+` never touches `x/...`. Nodes sit in
//! an arena (`Vec<Node>` with a free list) and every walk is a loop, because a topic may have
//! 32,768 levels and a client must not be able to overflow a stack with one.
//!
//! Spec: MQTT 5.0 sections 3.3.1.3 (RETAIN), 4.7 (topic filters) and 3.3.2.3.3 (Message Expiry
//! Interval, enforced by the caller through [`RetainedStore::retain`]).

use std::collections::HashMap;
use std::mem;

use aviary_protocol::ByteString;

/// Index of a node in the arena.
type NodeId = usize;

/// The root node, before the first level.
const ROOT: NodeId = 0;

/// One level of the trie.
#[derive(Debug)]
struct Node<M> {
    /// Children by level. SipHash (std's default) on purpose: levels come from clients.
    children: HashMap<Box<str>, NodeId>,
    /// The message retained on the topic that ends here, with that topic.
    entry: Option<(ByteString, M)>,
}

impl<M> Default for Node<M> {
    fn default() -> Self {
        Self {
            children: HashMap::new(),
            entry: None,
        }
    }
}

impl<M: Clone> Node<M> {
    /// Appends this node's message, if it has one, to `out`.
    fn emit(&self, out: &mut Vec<(ByteString, M)>) {
        if let Some((topic, msg)) = &self.entry {
            out.push((topic.clone(), msg.clone()));
        }
    }
}

/// The retained messages, by topic; see the module documentation.
#[derive(Debug)]
pub(crate) struct RetainedStore<M> {
    /// The arena; `nodes[ROOT]` always exists.
    nodes: Vec<Node<M>>,
    /// Slots of pruned nodes, reused before the arena grows.
    free: Vec<NodeId>,
    /// Number of retained messages.
    len: usize,
}

impl<M> Default for RetainedStore<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> RetainedStore<M> {
    /// An empty store.
    pub(crate) fn new() -> Self {
        Self {
            nodes: vec![Node::default()],
            free: Vec::new(),
            len: 0,
        }
    }

    /// Number of retained messages.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Retains `msg` on `topic` (a valid topic name), replacing and returning the message
    /// retained there before.
    ///
    /// The topic is copied the first time it is stored, so that the store does not keep alive a
    /// receive buffer the topic may be a slice of.
    pub(crate) fn set(&mut self, topic: &str, msg: M) -> Option<M> {
        debug_assert!(!topic.contains(['+', '#']), "not a topic name: {topic:?}");
        let mut id = ROOT;
        for level in topic.split('/') {
            id = match self.nodes[id].children.get(level) {
                Some(&child) => child,
                None => self.add_child(id, level),
            };
        }
        match &mut self.nodes[id].entry {
            Some((_, old)) => Some(mem::replace(old, msg)),
            entry @ None => {
                *entry = Some((ByteString::from(topic), msg));
                self.len += 1;
                None
            }
        }
    }

    /// Removes and returns the message retained on `topic` (a PUBLISH with RETAIN and an empty
    /// payload does this [MQTT-3.3.1-6]). Frees the nodes it leaves empty.
    pub(crate) fn remove(&mut self, topic: &str) -> Option<M> {
        // The edges walked, to prune bottom-up afterwards.
        let mut trail = Vec::new();
        let mut id = ROOT;
        for level in topic.split('/') {
            let &child = self.nodes[id].children.get(level)?;
            trail.push((id, level));
            id = child;
        }
        let (_, msg) = self.nodes[id].entry.take()?;
        self.len -= 1;
        self.prune(id, &trail);
        Some(msg)
    }

    /// Every retained message with its topic, in no particular order: for persistence and the
    /// REST API. Costs a pass over the arena, whose size is the peak number of nodes.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &M)> {
        let entries = self.nodes.iter().filter_map(|node| node.entry.as_ref());
        entries.map(|(topic, msg)| (&**topic, msg))
    }

    /// Keeps only the messages for which `keep(topic, msg)` is true, for instance those whose
    /// MQTT 5 Message Expiry Interval has not run out (section 3.3.2.3.3: an expired retained
    /// message is discarded). Returns how many went.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&str, &M) -> bool) -> usize {
        // Collected first (topic clones share their bytes), then removed, so that removal can
        // prune with the same code as `remove`.
        let doomed: Vec<ByteString> = self
            .nodes
            .iter()
            .filter_map(|node| node.entry.as_ref())
            .filter(|(topic, msg)| !keep(topic, msg))
            .map(|(topic, _)| topic.clone())
            .collect();
        for topic in &doomed {
            self.remove(topic);
        }
        doomed.len()
    }

    /// The node for `topic`, if one exists.
    fn find(&self, topic: &str) -> Option<NodeId> {
        let mut id = ROOT;
        for level in topic.split('/') {
            id = *self.nodes[id].children.get(level)?;
        }
        Some(id)
    }

    /// Adds an empty child for a level, reusing a freed slot if there is one.
    fn add_child(&mut self, parent: NodeId, level: &str) -> NodeId {
        let child = self.free.pop().unwrap_or_else(|| {
            self.nodes.push(Node::default());
            self.nodes.len() - 1
        });
        self.nodes[parent].children.insert(level.into(), child);
        child
    }

    /// Frees `id` and its ancestors along `trail` for as long as they are left empty.
    fn prune(&mut self, mut id: NodeId, trail: &[(NodeId, &str)]) {
        for &(parent, level) in trail.iter().rev() {
            let node = &self.nodes[id];
            if node.entry.is_some() || !node.children.is_empty() {
                break;
            }
            self.nodes[parent].children.remove(level);
            // Reset rather than keep: an emptied map still holds its capacity.
            self.nodes[id] = Node::default();
            self.free.push(id);
            id = parent;
        }
    }

    /// Nodes in use, the root excepted.
    #[cfg(test)]
    fn node_count(&self) -> usize {
        self.nodes.len() - self.free.len() - 1
    }
}

impl<M: Clone> RetainedStore<M> {
    /// Appends to `out` every retained message whose topic matches `filter`, with its topic, in
    /// no particular order. `filter` is a plain filter: for `$share/{group}/{filter}` pass the
    /// inner one. Wildcards in the first level do not match `$` topics [MQTT-4.7.2-1].
    ///
    /// A filter without wildcards is one map lookup per level and allocates nothing else; a
    /// wildcard filter visits only the subtrees its literal levels lead to.
    pub(crate) fn matching(&self, filter: &str, out: &mut Vec<(ByteString, M)>) {
        if !filter.contains(['+', '#']) {
            if let Some(id) = self.find(filter) {
                self.nodes[id].emit(out);
            }
            return;
        }
        // Nodes reached, with the filter levels left to match (`None`: all matched).
        let mut pending = vec![(ROOT, Some(filter))];
        while let Some((id, rest)) = pending.pop() {
            let node = &self.nodes[id];
            let Some(rest) = rest else {
                node.emit(out);
                continue;
            };
            let (level, tail) = match rest.split_once('/') {
                Some((level, tail)) => (level, Some(tail)),
                None => (rest, None),
            };
            match level {
                // `#` is the last level, and matches its parent too [MQTT-4.7.1-2].
                "#" => self.emit_subtree(id, out),
                "+" => pending.extend(self.visible_children(id).map(|child| (child, tail))),
                _ => pending.extend(node.children.get(level).map(|&child| (child, tail))),
            }
        }
    }

    /// Appends the messages of `id` and every node below it.
    fn emit_subtree(&self, id: NodeId, out: &mut Vec<(ByteString, M)>) {
        let mut pending = vec![id];
        while let Some(id) = pending.pop() {
            self.nodes[id].emit(out);
            pending.extend(self.visible_children(id));
        }
    }

    /// The children a wildcard level can match: at the root, not the `$` topics.
    fn visible_children(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        let children = self.nodes[id].children.iter();
        let hidden = move |level: &str| id == ROOT && level.starts_with('$');
        children
            .filter(move |(level, _)| !hidden(level))
            .map(|(_, &child)| child)
    }
}

#[cfg(test)]
mod tests {
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
            for (topic, op) in ops.into_iter().filter(|(topic, _)| !topic.is_empty()) {
                match op {
                    Some(msg) => prop_assert_eq!(store.set(&topic, msg), model.insert(topic, msg)),
                    None => prop_assert_eq!(store.remove(&topic), model.remove(&topic)),
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
            }
            for topic in model.keys() {
                prop_assert!(store.remove(topic).is_some());
            }
            prop_assert_eq!((store.len(), store.node_count()), (0, 0));
        }
    }
}
