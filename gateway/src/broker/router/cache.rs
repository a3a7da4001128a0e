//! The deliveries of topics matched lately, kept per worker thread, so that a device that
//! publishes on the same topic again and again does not walk the tree and merge its matches
//! each time: with one subscriber, that walk and merge were a sixth of the broker's
//! instructions per message in fan-in.
//!
//! An entry holds for one state of the routing (its stamp, which the caller gives), so any
//! subscribe or unsubscribe anywhere retires every entry at once, without a list of what
//! it touched. Kept only are the deliveries that the next message on the topic gets too: none
//! picked from a shared group (whose turn moves on), and, where a subscription asked for No
//! Local, only for the same publisher. What an entry holds is the caller's: the broker keeps
//! each delivery with a weak reference to its session, so that a hit needs neither the
//! routing lock nor a lookup of the session, and a thread's cache never keeps a session (and
//! the store it holds) alive.
//!
//! The cache is direct-mapped, a slot per topic hash: a lookup is a hash and one comparison,
//! and topics that share a slot only miss, whatever clients choose as topics. A topic takes a
//! slot the second time in a row it misses there, so a stream of topics that never come back
//! (a million devices, each on its own topic) leaves the slots alone and costs a hash. When
//! the stamp moves on, the entries filled since are emptied at the next lookup, so a retired
//! entry does not hold its memory for long.

use super::{ClientKey, Matched};
#[cfg(test)]
use super::{Delivery, SubscriptionTree};

/// Slots per thread: a power of two.
const SLOTS: usize = 1024;

/// The most deliveries an entry keeps. Past a few, their own cost (a queue entry and a write
/// each) outweighs the walk's, and an entry that large would hold memory for little.
const MOST: usize = 16;

/// The recent matches of one thread; empty (unallocated) until its first lookup.
#[derive(Debug)]
pub(crate) struct MatchCache<T> {
    slots: Vec<Slot<T>>,
    /// The stamp of the last lookup: when another comes, the entries filled are retired.
    stamp: u64,
    /// The slots filled since the stamp last moved on.
    filled: Vec<usize>,
}

impl<T> Default for MatchCache<T> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            stamp: 0,
            filled: Vec::new(),
        }
    }
}

/// For whom an entry's deliveries hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum For {
    /// Every publisher: no matching subscription asked for No Local.
    Anyone,
    /// This publisher only.
    Publisher(Option<ClientKey>),
}

/// One slot: an entry, and the topic that missed here last.
#[derive(Debug)]
struct Slot<T> {
    /// The hash of the topic that missed here last, which takes the slot if it misses again.
    seen: u64,
    /// The routing state the entry was matched in; 0 (no state's) while the slot is empty.
    stamp: u64,
    hash: u64,
    topic: String,
    whom: For,
    deliveries: Vec<T>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self {
            seen: 0,
            stamp: 0,
            hash: 0,
            topic: String::new(),
            whom: For::Anyone,
            deliveries: Vec::new(),
        }
    }
}

impl<T> Slot<T> {
    fn holds(&self, stamp: u64, hash: u64, topic: &str, publisher: Option<ClientKey>) -> bool {
        let whom = match self.whom {
            For::Anyone => true,
            For::Publisher(p) => p == publisher,
        };
        self.stamp == stamp && self.hash == hash && whom && self.topic == topic
    }
}

/// A lookup that missed: where the match, once made, may be kept.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Miss {
    hash: u64,
}

impl<T> MatchCache<T> {
    /// The slot holding the deliveries of a PUBLISH on `topic` by `publisher` in the routing
    /// state `stamp` (read them with [`MatchCache::entry`]), or where to keep them.
    pub(crate) fn lookup(
        &mut self,
        stamp: u64,
        topic: &str,
        publisher: Option<ClientKey>,
    ) -> Result<usize, Miss> {
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, Slot::default);
        }
        if stamp != self.stamp {
            self.retire();
            self.stamp = stamp;
        }
        let hash = hash(topic);
        let at = index(hash);
        match self.slots[at].holds(stamp, hash, topic, publisher) {
            true => Ok(at),
            false => Err(Miss { hash }),
        }
    }

    /// The deliveries held in slot `at`, as [`MatchCache::lookup`] found it.
    pub(crate) fn entry(&self, at: usize) -> &[T] {
        &self.slots[at].deliveries
    }

    /// Keeps `found`, the deliveries of a PUBLISH on `topic` by `publisher` matched in the
    /// routing state `stamp` after `miss`, if the next one on the topic would get them too
    /// and the topic missed its slot twice in a row.
    pub(crate) fn keep(
        &mut self,
        miss: Miss,
        stamp: u64,
        topic: &str,
        publisher: Option<ClientKey>,
        matched: Matched,
        found: impl ExactSizeIterator<Item = T>,
    ) {
        let hash = miss.hash;
        if matched.picked || found.len() > MOST || stamp != self.stamp {
            return;
        }
        let at = index(hash);
        let slot = &mut self.slots[at];
        if slot.seen != hash {
            slot.seen = hash;
            return;
        }
        if slot.stamp == 0 {
            self.filled.push(at);
        }
        slot.stamp = stamp;
        slot.hash = hash;
        slot.whom = match matched.no_local {
            true => For::Publisher(publisher),
            false => For::Anyone,
        };
        // Into the room the slot already has: a slot allocates only when it grows.
        slot.topic.clear();
        slot.topic.push_str(topic);
        slot.deliveries.clear();
        slot.deliveries.extend(found);
    }

    /// Empties the entries filled since the stamp last moved on: they can never hit again.
    fn retire(&mut self) {
        for at in self.filled.drain(..) {
            let slot = &mut self.slots[at];
            slot.stamp = 0;
            slot.deliveries.clear();
        }
    }
}

#[cfg(test)]
impl MatchCache<Delivery> {
    /// Appends to `out` whom to send a PUBLISH on `topic` to, as
    /// [`SubscriptionTree::matches`] does, from this cache when it holds them for `tree` in
    /// state `stamp`: the cache used as the broker uses it, without the sessions.
    pub(crate) fn matches(
        &mut self,
        (tree, stamp): (&SubscriptionTree, u64),
        topic: &str,
        publisher: Option<ClientKey>,
        is_online: impl Fn(ClientKey) -> bool,
        out: &mut Vec<Delivery>,
    ) {
        match self.lookup(stamp, topic, publisher) {
            Ok(at) => out.extend_from_slice(self.entry(at)),
            Err(miss) => {
                let start = out.len();
                let matched = tree.matches(topic, publisher, is_online, out);
                let found = out[start..].iter().cloned();
                self.keep(miss, stamp, topic, publisher, matched, found);
            }
        }
    }
}

/// The topic's hash: a word at a time, one multiplication each (as [`super::KeyHasher`]).
/// Clients choose topics, and may make them collide; here that only makes them miss.
fn hash(topic: &str) -> u64 {
    let step = |h: u64, word: u64| (h.rotate_left(5) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut words = topic.as_bytes().chunks_exact(8);
    let mut h = step(0, topic.len() as u64);
    for word in &mut words {
        h = step(h, u64::from_le_bytes(word.try_into().expect("8 bytes")));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut last = [0; 8];
        last[..rest.len()].copy_from_slice(rest);
        h = step(h, u64::from_le_bytes(last));
    }
    h
}

/// The slot of a hash: its high bits, which the multiplications mix best.
fn index(hash: u64) -> usize {
    (hash >> (64 - SLOTS.trailing_zeros())) as usize
}

#[cfg(test)]
mod tests {
    use aviary_protocol::{QoS, SubscriptionOptions, TopicFilter};

    use super::*;
    use crate::broker::router::Subscription;

    fn sub(no_local: bool) -> Subscription {
        let mut options = SubscriptionOptions::qos(QoS::AtLeastOnce);
        options.no_local = no_local;
        Subscription {
            options,
            identifier: None,
        }
    }

    /// A tree with a stamp that every change renews, as the broker's routing lock does.
    struct State {
        tree: SubscriptionTree,
        stamp: u64,
    }

    impl State {
        fn new(stamp: u64) -> Self {
            Self {
                tree: SubscriptionTree::new(),
                stamp,
            }
        }

        fn change(&mut self, f: impl FnOnce(&mut SubscriptionTree)) {
            f(&mut self.tree);
            self.stamp += 1;
        }

        fn subscribe_with(&mut self, client: ClientKey, filter: &str, no_local: bool) {
            let filter = TopicFilter::new(filter).unwrap();
            self.change(|t| _ = t.subscribe(client, &filter, sub(no_local)));
        }
    }

    fn subscribe(state: &mut State, client: ClientKey, filter: &str) {
        state.subscribe_with(client, filter, false);
    }

    /// The clients a PUBLISH on `topic` goes to, through `cache`.
    fn clients(
        cache: &mut MatchCache<Delivery>,
        state: &State,
        topic: &str,
        publisher: Option<ClientKey>,
    ) -> Vec<ClientKey> {
        let mut out = Vec::new();
        let routing = (&state.tree, state.stamp);
        cache.matches(routing, topic, publisher, |_| true, &mut out);
        let mut clients: Vec<_> = out.iter().map(|d| d.client).collect();
        clients.sort_unstable();
        clients
    }

    /// The slot holding `topic`, if one does.
    fn entry<'c>(cache: &'c MatchCache<Delivery>, topic: &str) -> Option<&'c Slot<Delivery>> {
        let slot = cache.slots.get(index(hash(topic)))?;
        (slot.stamp != 0 && slot.topic == topic).then_some(slot)
    }

    #[test]
    fn a_topic_is_kept_when_it_comes_back_and_then_served_from_the_cache() {
        let mut tree = State::new(1);
        subscribe(&mut tree, 1, "pets/+/location");
        let mut cache = MatchCache::<Delivery>::default();
        assert_eq!(clients(&mut cache, &tree, "pets/rex/location", None), [1]);
        assert!(
            entry(&cache, "pets/rex/location").is_none(),
            "kept on its first miss"
        );
        assert_eq!(clients(&mut cache, &tree, "pets/rex/location", None), [1]);
        assert!(entry(&cache, "pets/rex/location").is_some());
        // Served from the entry: a poisoned entry shows it is the one used.
        let index = index(hash("pets/rex/location"));
        cache.slots[index].deliveries[0].client = 7;
        assert_eq!(clients(&mut cache, &tree, "pets/rex/location", None), [7]);
    }

    #[test]
    fn any_change_to_the_tree_retires_every_entry() {
        let mut tree = State::new(1);
        subscribe(&mut tree, 1, "a/b");
        let mut cache = MatchCache::<Delivery>::default();
        for _ in 0..3 {
            assert_eq!(clients(&mut cache, &tree, "a/b", None), [1]);
        }
        // A subscription elsewhere, then one that matches, then an unsubscribe.
        subscribe(&mut tree, 2, "x/y");
        assert_eq!(clients(&mut cache, &tree, "a/b", None), [1]);
        subscribe(&mut tree, 3, "a/+");
        assert_eq!(clients(&mut cache, &tree, "a/b", None), [1, 3]);
        assert_eq!(clients(&mut cache, &tree, "a/b", None), [1, 3]);
        tree.change(|t| _ = t.unsubscribe(1, &TopicFilter::new("a/b").unwrap()));
        assert_eq!(clients(&mut cache, &tree, "a/b", None), [3]);
        // Another broker's routing, with a stamp of its own, never reads this one's entries.
        let other = State::new(1_000);
        assert_eq!(
            clients(&mut cache, &other, "a/b", None),
            Vec::<ClientKey>::new()
        );
    }

    #[test]
    fn entries_are_emptied_once_the_stamp_moves_on() {
        let mut tree = State::new(1);
        subscribe(&mut tree, 1, "a/b");
        let mut cache = MatchCache::<Delivery>::default();
        for _ in 0..2 {
            clients(&mut cache, &tree, "a/b", None);
        }
        let at = index(hash("a/b"));
        assert_eq!(cache.slots[at].deliveries.len(), 1);
        subscribe(&mut tree, 2, "x");
        clients(&mut cache, &tree, "x", None);
        assert!(
            cache.slots[at].deliveries.is_empty(),
            "what it held is let go"
        );
        assert!(cache.filled.is_empty());
    }

    #[test]
    fn no_local_entries_hold_for_their_publisher_only() {
        let mut tree = State::new(1);
        tree.subscribe_with(1, "chat", true);
        subscribe(&mut tree, 2, "chat");
        let mut cache = MatchCache::<Delivery>::default();
        for _ in 0..3 {
            assert_eq!(clients(&mut cache, &tree, "chat", Some(1)), [2]);
        }
        assert_eq!(clients(&mut cache, &tree, "chat", Some(2)), [1, 2]);
        assert_eq!(clients(&mut cache, &tree, "chat", None), [1, 2]);
    }

    #[test]
    fn shared_groups_take_turns_and_are_never_kept() {
        let mut tree = State::new(1);
        subscribe(&mut tree, 1, "$share/g/jobs");
        subscribe(&mut tree, 2, "$share/g/jobs");
        let mut cache = MatchCache::<Delivery>::default();
        let turns: Vec<_> = (0..4)
            .map(|_| clients(&mut cache, &tree, "jobs", None))
            .collect();
        assert_eq!(turns, [[1], [2], [1], [2]]);
        assert!(entry(&cache, "jobs").is_none());
    }

    #[test]
    fn topics_sharing_a_slot_take_it_only_on_a_second_miss_in_a_row() {
        let mut tree = State::new(1);
        subscribe(&mut tree, 1, "#");
        let mut cache = MatchCache::<Delivery>::default();
        let slot = index(hash("t/0"));
        let rival = (1..)
            .map(|n| format!("t/{n}"))
            .find(|t| index(hash(t)) == slot)
            .unwrap();
        // Alternating, neither takes the slot; their deliveries are right all along.
        for _ in 0..3 {
            assert_eq!(clients(&mut cache, &tree, "t/0", None), [1]);
            assert_eq!(clients(&mut cache, &tree, &rival, None), [1]);
        }
        assert!(entry(&cache, "t/0").is_none() && entry(&cache, &rival).is_none());
        assert_eq!(clients(&mut cache, &tree, &rival, None), [1]);
        assert!(entry(&cache, &rival).is_some());
    }

    #[test]
    fn large_matches_are_not_kept() {
        let mut tree = State::new(1);
        for client in 0..=MOST as ClientKey {
            subscribe(&mut tree, client, "fleet/#");
        }
        let mut cache = MatchCache::<Delivery>::default();
        for _ in 0..3 {
            assert_eq!(clients(&mut cache, &tree, "fleet/a", None).len(), MOST + 1);
        }
        assert!(entry(&cache, "fleet/a").is_none());
    }

    #[test]
    fn hashes_tell_apart_topics_of_every_length() {
        let topics: Vec<String> = (0..40).map(|n| "a".repeat(n)).collect();
        let mut hashes: Vec<u64> = topics.iter().map(|t| hash(t)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), topics.len());
        assert_ne!(hash("a/b"), hash("b/a"));
    }
}
