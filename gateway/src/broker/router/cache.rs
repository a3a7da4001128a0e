//! The deliveries of topics matched lately, kept per worker thread, so that a device that
//! publishes on the same topic again and again does not walk the tree and merge its matches
//! each time: with one subscriber, that walk and merge were a sixth of the broker's
//! instructions per message in fan-in.
//!
//! An entry holds for one state of one tree (its [`stamp`](SubscriptionTree::stamp)), so any
//! subscribe or unsubscribe anywhere retires every entry at once, without a list of what
//! it touched. Kept only are the deliveries that the next message on the topic gets too: none
//! picked from a shared group (whose turn moves on), and, where a subscription asked for No
//! Local, only for the same publisher.
//!
//! The cache is direct-mapped, a slot per topic hash: a lookup is a hash and one comparison,
//! and topics that share a slot only miss, whatever clients choose as topics. A topic takes a
//! slot the second time in a row it misses there, so a stream of topics that never come back
//! (a million devices, each on its own topic) leaves the slots alone and costs a hash.

use super::{ClientKey, Delivery, SubscriptionTree};

/// Slots per thread: a power of two.
const SLOTS: usize = 1024;

/// The most deliveries an entry keeps. Past a few, their own cost (a queue entry and a write
/// each) outweighs the walk's, and an entry that large would hold memory for little.
const MOST: usize = 16;

/// The recent matches of one thread; empty (unallocated) until its first lookup.
#[derive(Debug, Default)]
pub(crate) struct MatchCache {
    slots: Vec<Slot>,
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
struct Slot {
    /// The hash of the topic that missed here last, which takes the slot if it misses again.
    seen: u64,
    /// The tree state the entry was matched in; 0 (no tree's) while the slot is empty.
    stamp: u64,
    hash: u64,
    topic: String,
    whom: For,
    deliveries: Vec<Delivery>,
}

impl Default for Slot {
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

impl Slot {
    fn holds(&self, stamp: u64, hash: u64, topic: &str, publisher: Option<ClientKey>) -> bool {
        let whom = match self.whom {
            For::Anyone => true,
            For::Publisher(p) => p == publisher,
        };
        self.stamp == stamp && self.hash == hash && whom && self.topic == topic
    }
}

impl MatchCache {
    /// Appends to `out` whom to send a PUBLISH on `topic` to, as
    /// [`SubscriptionTree::matches`] does, from this cache when it holds them for `tree` as it
    /// is now.
    pub(crate) fn matches(
        &mut self,
        tree: &SubscriptionTree,
        topic: &str,
        publisher: Option<ClientKey>,
        is_online: impl Fn(ClientKey) -> bool,
        out: &mut Vec<Delivery>,
    ) {
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, Slot::default);
        }
        let (hash, stamp) = (hash(topic), tree.stamp());
        let slot = &mut self.slots[index(hash)];
        if slot.holds(stamp, hash, topic, publisher) {
            out.extend_from_slice(&slot.deliveries);
            return;
        }
        let start = out.len();
        let matched = tree.matches(topic, publisher, is_online, out);
        let found = &out[start..];
        if matched.picked || found.len() > MOST {
            return;
        }
        if slot.seen != hash {
            slot.seen = hash;
            return;
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
        slot.deliveries.extend_from_slice(found);
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

    fn subscribe(tree: &mut SubscriptionTree, client: ClientKey, filter: &str) {
        tree.subscribe(client, &TopicFilter::new(filter).unwrap(), sub(false));
    }

    /// The clients a PUBLISH on `topic` goes to, through `cache`.
    fn clients(
        cache: &mut MatchCache,
        tree: &SubscriptionTree,
        topic: &str,
        publisher: Option<ClientKey>,
    ) -> Vec<ClientKey> {
        let mut out = Vec::new();
        cache.matches(tree, topic, publisher, |_| true, &mut out);
        let mut clients: Vec<_> = out.iter().map(|d| d.client).collect();
        clients.sort_unstable();
        clients
    }

    /// The slot holding `topic`, if one does.
    fn entry<'c>(cache: &'c MatchCache, topic: &str) -> Option<&'c Slot> {
        let slot = cache.slots.get(index(hash(topic)))?;
        (slot.stamp != 0 && slot.topic == topic).then_some(slot)
    }

    #[test]
    fn a_topic_is_kept_when_it_comes_back_and_then_served_from_the_cache() {
        let mut tree = SubscriptionTree::new();
        subscribe(&mut tree, 1, "pets/+/location");
        let mut cache = MatchCache::default();
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
        let mut tree = SubscriptionTree::new();
        subscribe(&mut tree, 1, "a/b");
        let mut cache = MatchCache::default();
        for _ in 0..3 {
            assert_eq!(clients(&mut cache, &tree, "a/b", None), [1]);
        }
        // A subscription elsewhere, then one that matches, then an unsubscribe.
        subscribe(&mut tree, 2, "x/y");
        assert_eq!(clients(&mut cache, &tree, "a/b", None), [1]);
        subscribe(&mut tree, 3, "a/+");
        assert_eq!(clients(&mut cache, &tree, "a/b", None), [1, 3]);
        assert_eq!(clients(&mut cache, &tree, "a/b", None), [1, 3]);
        tree.unsubscribe(1, &TopicFilter::new("a/b").unwrap());
        assert_eq!(clients(&mut cache, &tree, "a/b", None), [3]);
        // Another tree (another broker in this process) never reads this one's entries.
        let other = SubscriptionTree::new();
        assert_eq!(
            clients(&mut cache, &other, "a/b", None),
            Vec::<ClientKey>::new()
        );
    }

    #[test]
    fn no_local_entries_hold_for_their_publisher_only() {
        let mut tree = SubscriptionTree::new();
        tree.subscribe(1, &TopicFilter::new("chat").unwrap(), sub(true));
        subscribe(&mut tree, 2, "chat");
        let mut cache = MatchCache::default();
        for _ in 0..3 {
            assert_eq!(clients(&mut cache, &tree, "chat", Some(1)), [2]);
        }
        assert_eq!(clients(&mut cache, &tree, "chat", Some(2)), [1, 2]);
        assert_eq!(clients(&mut cache, &tree, "chat", None), [1, 2]);
    }

    #[test]
    fn shared_groups_take_turns_and_are_never_kept() {
        let mut tree = SubscriptionTree::new();
        subscribe(&mut tree, 1, "$share/g/jobs");
        subscribe(&mut tree, 2, "$share/g/jobs");
        let mut cache = MatchCache::default();
        let turns: Vec<_> = (0..4)
            .map(|_| clients(&mut cache, &tree, "jobs", None))
            .collect();
        assert_eq!(turns, [[1], [2], [1], [2]]);
        assert!(entry(&cache, "jobs").is_none());
    }

    #[test]
    fn topics_sharing_a_slot_take_it_only_on_a_second_miss_in_a_row() {
        let mut tree = SubscriptionTree::new();
        subscribe(&mut tree, 1, "#");
        let mut cache = MatchCache::default();
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
        let mut tree = SubscriptionTree::new();
        for client in 0..=MOST as ClientKey {
            subscribe(&mut tree, client, "fleet/#");
        }
        let mut cache = MatchCache::default();
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
