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
//! Children are kept in level order (a `BTreeMap`), so a matching walk ([`walk`]) visits topics
//! in a fixed order and can stop anywhere and resume later after the last topic it gave out. A
//! new subscriber's retained messages are pulled that way, a batch at a time, instead of being
//! copied out all at once. Each entry carries the store's version at the time its topic was
//! first retained, so such a walk can tell the topics that were there when it started from
//! those that came later.
//!
//! Spec: MQTT 5.0 sections 3.3.1.3 (RETAIN), 4.7 (topic filters) and 3.3.2.3.3 (Message Expiry
//! Interval, enforced by the caller through [`RetainedStore::retain`]).

mod walk;

use std::collections::BTreeMap;
use std::mem;

use aviary_protocol::ByteString;

pub(crate) use walk::Walk;

/// Index of a node in the arena.
type NodeId = usize;

/// The root node, before the first level.
const ROOT: NodeId = 0;

/// One level of the trie.
#[derive(Debug)]
struct Node<M> {
    /// Children by level, in order. A B-tree rather than a hash map: ordered walks need it, and
    /// it gives clients (who choose the levels) no hash to collide.
    children: BTreeMap<Box<str>, NodeId>,
    /// The message retained on the topic that ends here.
    entry: Option<Entry<M>>,
}

impl<M> Default for Node<M> {
    fn default() -> Self {
        Self {
            children: BTreeMap::new(),
            entry: None,
        }
    }
}

/// A retained message with its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry<M> {
    /// The topic it is retained on.
    pub(crate) topic: ByteString,
    /// The message.
    pub(crate) msg: M,
    /// The store's [version](RetainedStore::version) right after a message was first retained on
    /// this topic. Replacing the message keeps it; clearing the topic and retaining a message on
    /// it again starts over.
    pub(crate) created: u64,
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
    /// Counts the messages ever set.
    version: u64,
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
            version: 0,
        }
    }

    /// Number of retained messages.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Grows by one with every [`set`](Self::set): a topic whose [`Entry::created`] is at most
    /// a version read earlier had a retained message when it was read.
    pub(crate) fn version(&self) -> u64 {
        self.version
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
        self.version += 1;
        match &mut self.nodes[id].entry {
            Some(entry) => Some(mem::replace(&mut entry.msg, msg)),
            slot @ None => {
                *slot = Some(Entry {
                    topic: ByteString::from(topic),
                    msg,
                    created: self.version,
                });
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
        let entry = self.nodes[id].entry.take()?;
        self.len -= 1;
        self.prune(id, &trail);
        Some(entry.msg)
    }

    /// Every retained message with its topic, in no particular order: for persistence and the
    /// REST API. Costs a pass over the arena, whose size is the peak number of nodes.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &M)> {
        let entries = self.nodes.iter().filter_map(|node| node.entry.as_ref());
        entries.map(|e| (&*e.topic, &e.msg))
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
            .filter(|e| !keep(&e.topic, &e.msg))
            .map(|e| e.topic.clone())
            .collect();
        for topic in &doomed {
            self.remove(topic);
        }
        doomed.len()
    }

    /// The messages matching `filter`, in topic order (level by level), starting after the
    /// topic `after` if given: see [`Walk`].
    pub(crate) fn walk<'f>(&self, filter: &'f str, after: Option<&'f str>) -> Walk<'_, 'f, M> {
        Walk::new(&self.nodes, filter, after)
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
    /// topic order. `filter` is a plain filter: for `$share/{group}/{filter}` pass the inner one.
    /// Wildcards in the first level do not match `$` topics [MQTT-4.7.2-1].
    ///
    /// A filter without wildcards is one map lookup per level and allocates nothing else; a
    /// wildcard filter visits only the subtrees its literal levels lead to.
    pub(crate) fn matching(&self, filter: &str, out: &mut Vec<(ByteString, M)>) {
        if !filter.contains(['+', '#']) {
            let entry = self
                .find(filter)
                .and_then(|id| self.nodes[id].entry.as_ref());
            out.extend(entry.map(|e| (e.topic.clone(), e.msg.clone())));
            return;
        }
        out.extend(
            self.walk(filter, None)
                .map(|e| (e.topic.clone(), e.msg.clone())),
        );
    }
}

#[cfg(test)]
mod tests;
