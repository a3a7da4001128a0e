//! The subscription tree: which sessions a PUBLISH goes to.
//!
//! Subscriptions live in a trie over filter levels (split on `/`), at the node where their filter
//! ends. A node keeps its literal children in a short list or, past a few, a map
//! ([`children`]), and its `+` and `#` children apart. Matching
//! walks the topic's levels once, following the literal and the `+` child and picking up the `#`
//! children's subscribers on the way: its cost depends on the topic's depth and the number of
//! matches, not on how many subscriptions there are.
//!
//! Nodes sit in an arena (`Vec<Node>` indexed by position, with a free list), and every walk is a
//! loop: topics and filters may have 32,768 levels, and one deep filter must neither overflow a
//! worker's stack nor make dropping the tree recurse. Matching runs under the routing read lock on
//! every PUBLISH that its thread's [`cache`] does not hold, so it takes `&self`; the one thing it
//! changes, a shared group's round-robin cursor, is atomic.
//!
//! Spec: MQTT 5.0 sections 4.7 (topic filters), 3.3.4 (overlapping subscriptions), 3.8.3.1
//! (No Local) and 4.8.2 (shared subscriptions).

use std::hash::{BuildHasherDefault, Hasher};
use std::num::NonZeroU32;

use aviary_protocol::{QoS, SubscriptionOptions, TopicFilter};
use children::Children;
use collector::Collector;
use subscribers::{share_name, Subscribers};

/// Who subscribed: an opaque, cheap session key chosen by the broker.
pub(crate) type ClientKey = u64;

/// Hashes a [`ClientKey`] with one multiplication (Fibonacci hashing). Keys come from the
/// broker's own counter, never from clients, so SipHash's defence against chosen keys buys
/// nothing here, and the routing map is looked up once per delivery.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` (a key) and `write_usize` (a discriminant beside one) are used;
        // anything else still hashes correctly.
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_usize(&mut self, n: usize) {
        // An enum's discriminant, next to a key: one step, not one per byte.
        self.write_u64(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        // 2^64 / golden ratio: consecutive keys land far apart in the high bits the table's
        // control bytes use, and the multiplication by an odd number keeps the low bits the
        // bucket index uses a permutation.
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds [`KeyHasher`]s: for maps and sets keyed by [`ClientKey`].
pub(crate) type KeyHashing = BuildHasherDefault<KeyHasher>;

/// One subscription as stored in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Subscription {
    /// The options of the SUBSCRIBE that made it.
    pub(crate) options: SubscriptionOptions,
    /// The MQTT 5 Subscription Identifier of that SUBSCRIBE, if any.
    pub(crate) identifier: Option<NonZeroU32>,
}

/// One client to send a PUBLISH to, and how.
///
/// A client's overlapping non-shared subscriptions make one `Delivery` [MQTT-3.3.4-2]
/// [MQTT-3.3.4-3]; each matching shared subscription adds one of its own (`shared`), so a client
/// may appear more than once in a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delivery {
    /// The subscriber.
    pub(crate) client: ClientKey,
    /// The highest QoS of the matching subscriptions: the message goes out at the lower of this
    /// and its own.
    pub(crate) qos: QoS,
    /// Set if any of the matching subscriptions asked for Retain As Published.
    pub(crate) retain_as_published: bool,
    /// The matching subscriptions' identifiers, in no particular order. Empty (unallocated) when
    /// none has one, and ready to move into the outgoing PUBLISH's properties.
    pub(crate) identifiers: Vec<NonZeroU32>,
    /// Comes from a shared subscription: the member picked for its group.
    pub(crate) shared: bool,
}

impl Delivery {
    /// The delivery for one matching subscription.
    fn new(client: ClientKey, sub: &Subscription, shared: bool) -> Self {
        Self {
            client,
            qos: sub.options.qos,
            retain_as_published: sub.options.retain_as_published,
            identifiers: sub.identifier.map_or_else(Vec::new, |id| vec![id]),
            shared,
        }
    }

    /// Folds in another matching subscription of the same client.
    fn absorb(&mut self, other: &mut Self) {
        self.qos = self.qos.max(other.qos);
        // The spec leaves mixed options open; keeping the published flag loses nothing.
        self.retain_as_published |= other.retain_as_published;
        self.identifiers.append(&mut other.identifiers);
    }
}

/// What a match's deliveries depend on besides the tree and the topic: whether another
/// match of the same topic may deliver otherwise ([`cache`] keeps only those that cannot).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Matched {
    /// A shared group picked one of its members: the next message may go to another.
    pub(crate) picked: bool,
    /// A matching subscription asked for No Local: the deliveries hold for this publisher.
    pub(crate) no_local: bool,
}

/// Index of a node in the arena.
type NodeId = usize;

/// The root node, before the first level.
const ROOT: NodeId = 0;

/// One level of the trie.
#[derive(Debug, Default)]
struct Node {
    /// Children by literal level.
    children: Children,
    /// The `+` child.
    single: Option<NodeId>,
    /// The `#` child, always a leaf.
    multi: Option<NodeId>,
    /// Subscriptions whose filter ends here. Boxed: most nodes are only a step on the way.
    subscribers: Option<Box<Subscribers>>,
}

impl Node {
    /// The child for a filter level.
    fn child(&self, level: &str) -> Option<NodeId> {
        match level {
            "+" => self.single,
            "#" => self.multi,
            _ => self.children.get(level),
        }
    }

    /// Links (`Some`) or unlinks (`None`) the child for a filter level.
    fn set_child(&mut self, level: &str, child: Option<NodeId>) {
        match (level, child) {
            ("+", child) => self.single = child,
            ("#", child) => self.multi = child,
            (_, Some(child)) => self.children.insert(level, child),
            (_, None) => self.children.remove(level),
        }
    }

    /// A node with no children and no subscribers serves nothing and can go.
    fn is_empty(&self) -> bool {
        let no_wildcards = self.single.is_none() && self.multi.is_none();
        no_wildcards && self.children.is_empty() && self.subscribers.is_none()
    }
}

/// Splits the first level off a topic: `a/b/c` gives `("a", Some("b/c"))`, `a` `("a", None)`.
fn split_level(rest: &str) -> (&str, Option<&str>) {
    // A byte scan: levels are short, and `str::split_once` set up a searcher on every call.
    match rest.bytes().position(|b| b == b'/') {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    }
}

/// A node reached while matching, and the topic levels left to match (`None`: all matched).
type Step<'a> = (NodeId, Option<&'a str>);

/// The subscription trie; see the module documentation.
#[derive(Debug)]
pub(crate) struct SubscriptionTree {
    /// The arena; `nodes[ROOT]` always exists.
    nodes: Vec<Node>,
    /// Slots of pruned nodes, reused before the arena grows.
    free: Vec<NodeId>,
    /// Number of subscriptions.
    len: usize,
    /// Filters that gained their first ordinary subscription, and shared groups
    /// (`$share/{group}/{filter}`) their first member (`true`), or lost their last (`false`),
    /// while tracked: what a cluster node tells NATS it is interested in. `None`: not tracked
    /// (a single node), and shared groups are served here; a cluster serves them across nodes
    /// (see [`cluster`]), so matching leaves them out.
    interest: Option<Vec<(Box<str>, bool)>>,
}

impl Default for SubscriptionTree {
    fn default() -> Self {
        Self::new()
    }
}

impl SubscriptionTree {
    /// An empty tree.
    pub(crate) fn new() -> Self {
        Self {
            nodes: vec![Node::default()],
            free: Vec::new(),
            len: 0,
            interest: None,
        }
    }

    /// Number of subscriptions, each member of a shared group counted.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Adds or replaces `client`'s subscription to `filter` (possibly `$share/{group}/{filter}`).
    /// Returns true if it replaced one, for Retain Handling 1 ("send retained messages only if
    /// the subscription is new"). Costs a map lookup per level.
    pub(crate) fn subscribe(
        &mut self,
        client: ClientKey,
        filter: &TopicFilter,
        sub: Subscription,
    ) -> bool {
        let mut id = ROOT;
        for level in filter.matching_filter().split('/') {
            id = match self.nodes[id].child(level) {
                Some(child) => child,
                None => self.add_child(id, level),
            };
        }
        let group = share_name(filter);
        let subscribers = self.nodes[id].subscribers.get_or_insert_with(Box::default);
        let first = !subscribers.has(group);
        let replaced = subscribers.insert(client, group, sub);
        self.len += usize::from(!replaced);
        if first {
            self.note_interest(filter, true);
        }
        replaced
    }

    /// Removes `client`'s subscription to `filter`; returns whether it existed (UNSUBACK 0x11,
    /// "No subscription existed", when not). Frees the nodes it leaves empty.
    pub(crate) fn unsubscribe(&mut self, client: ClientKey, filter: &TopicFilter) -> bool {
        // The edges walked, to prune bottom-up afterwards.
        let mut trail = Vec::new();
        let mut id = ROOT;
        for level in filter.matching_filter().split('/') {
            let Some(child) = self.nodes[id].child(level) else {
                return false;
            };
            trail.push((id, level));
            id = child;
        }
        let group = share_name(filter);
        let slot = &mut self.nodes[id].subscribers;
        if !slot.as_mut().is_some_and(|s| s.remove(client, group)) {
            return false;
        }
        let last = slot.as_ref().is_some_and(|s| !s.has(group));
        if slot.as_ref().is_some_and(|s| s.is_empty()) {
            *slot = None;
        }
        if last {
            self.note_interest(filter, false);
        }
        self.len -= 1;
        self.prune(id, &trail);
        true
    }

    /// Removes every subscription of `client`, given the filters of its session (which keeps
    /// them anyway), so the cost is that of unsubscribing each, not a walk of the whole tree.
    /// Returns how many existed.
    pub(crate) fn remove_client<'f>(
        &mut self,
        client: ClientKey,
        filters: impl IntoIterator<Item = &'f TopicFilter>,
    ) -> usize {
        let mut removed = 0;
        for filter in filters {
            removed += usize::from(self.unsubscribe(client, filter));
        }
        removed
    }

    /// Appends to `out` whom to send a PUBLISH on `topic` to. `+` matches one level, `#` its
    /// parent and everything below, and neither matches a `$` topic in the first level
    /// [MQTT-4.7.2-1].
    ///
    /// - A client's non-shared subscriptions make one [`Delivery`] with the highest QoS and all
    ///   identifiers [MQTT-3.3.4-2] [MQTT-3.3.4-3]. The `publisher`'s No Local subscriptions are
    ///   dropped first [MQTT-3.8.3-3], so an overlapping one without No Local still delivers.
    /// - Each matching shared group delivers once, to a member picked round robin among those
    ///   `is_online` (among all when none is). No Local on a shared subscription is a Protocol
    ///   Error [MQTT-3.8.3-4] the broker refuses at SUBSCRIBE, so it is not looked at here.
    ///
    /// Cost: one map lookup per level (two where a `+` child branches off too), plus O(matches)
    /// when a single filter with ordinary subscribers matches. With several, see
    /// `Collector::finish`. Allocates only for a branching walk, several matching filters,
    /// identifiers, or a growing `out`. Returns what else the deliveries depend on.
    pub(crate) fn matches(
        &self,
        topic: &str,
        publisher: Option<ClientKey>,
        is_online: impl Fn(ClientKey) -> bool,
        out: &mut Vec<Delivery>,
    ) -> Matched {
        let mut collector = Collector {
            publisher,
            is_online,
            groups: self.interest.is_none(),
            out,
            largest: None,
            others: Vec::new(),
            picked: false,
        };
        // `+` branches still to walk; unallocated while the topic follows a single path.
        let mut branches = Vec::new();
        let wildcards = !topic.starts_with('$');
        let mut next = self.step(ROOT, Some(topic), wildcards, &mut collector, &mut branches);
        while let Some((id, rest)) = next.or_else(|| branches.pop()) {
            next = self.step(id, rest, true, &mut collector, &mut branches);
        }
        collector.finish()
    }

    /// Visits a node: collects its `#` child's subscribers (if `wildcards`), and its own at the
    /// end of the topic; otherwise returns the child to visit next and queues a second one.
    fn step<'t, 'a>(
        &'t self,
        id: NodeId,
        rest: Option<&'a str>,
        wildcards: bool,
        collector: &mut Collector<'t, '_, impl Fn(ClientKey) -> bool>,
        branches: &mut Vec<Step<'a>>,
    ) -> Option<Step<'a>> {
        let node = &self.nodes[id];
        if let Some(multi) = node.multi.filter(|_| wildcards) {
            collector.collect(self.nodes[multi].subscribers.as_deref());
        }
        let Some(rest) = rest else {
            collector.collect(node.subscribers.as_deref());
            return None;
        };
        let (level, tail) = split_level(rest);
        let literal = node.children.get(level).map(|child| (child, tail));
        let single = node.single.filter(|_| wildcards).map(|child| (child, tail));
        if let (Some(_), Some(single)) = (literal, single) {
            branches.push(single);
            return literal;
        }
        literal.or(single)
    }

    /// Adds an empty child for a filter level, reusing a freed slot if there is one.
    fn add_child(&mut self, parent: NodeId, level: &str) -> NodeId {
        let child = self.free.pop().unwrap_or_else(|| {
            self.nodes.push(Node::default());
            self.nodes.len() - 1
        });
        self.nodes[parent].set_child(level, Some(child));
        child
    }

    /// Frees `id` and its ancestors along `trail` for as long as they are left empty.
    fn prune(&mut self, mut id: NodeId, trail: &[(NodeId, &str)]) {
        for &(parent, level) in trail.iter().rev() {
            if !self.nodes[id].is_empty() {
                break;
            }
            self.nodes[parent].set_child(level, None);
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

pub(crate) mod cache;
mod children;
mod cluster;
mod collector;
mod subscribers;
#[cfg(test)]
mod tests;
