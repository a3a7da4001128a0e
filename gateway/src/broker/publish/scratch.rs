//! The two vectors every routed message fills, the subscription tree's deliveries and then
//! their sessions, kept per worker thread and reused rather than allocated, grown and freed
//! for each PUBLISH: that was about a tenth of the broker's instructions per message in
//! fan-in. Beside them, the thread's cache of recent matches ([`MatchCache`]).
//!
//! The vectors are taken out of their slot for the time they are used and put back after, so
//! a route within a route (none today) would only allocate afresh, never share them. If one
//! grew past [`KEPT`] entries (a message to thousands of subscribers), both are dropped and
//! empty ones put back, so no thread keeps a large one for good.

use std::cell::Cell;
use std::sync::Weak;

use super::super::router::cache::MatchCache;
use super::super::router::Delivery;
use super::super::Session;
use super::Target;

/// The most entries a vector may hold room for and still be kept.
const KEPT: usize = 1024;

/// Both vectors and the cache, in one thread-local slot: each access to a slot cost tens of
/// instructions. The slot holds them boxed, so that taking them out and putting them back
/// moves a pointer, not the struct (about a hundred instructions per message).
#[derive(Debug, Default)]
pub(super) struct Scratch {
    /// The subscription tree's deliveries.
    pub(super) deliveries: Vec<Delivery>,
    /// The sessions they are for.
    pub(super) targets: Vec<Target>,
    /// The deliveries of topics matched lately, with their sessions. Weak: a thread-local
    /// must not keep a session, and the store it holds, alive past its broker.
    pub(super) matches: MatchCache<(Weak<Session>, Delivery)>,
}

thread_local! {
    static SCRATCH: Cell<Option<Box<Scratch>>> = const { Cell::new(None) };
}

/// The vectors for one message, empty: the thread's own, unless they are in use (or this is
/// the thread's first message).
pub(super) fn take() -> Box<Scratch> {
    SCRATCH.take().unwrap_or_default()
}

/// Returns the vectors, emptied, for the next message; one grown past [`KEPT`] is dropped.
pub(super) fn give_back(mut s: Box<Scratch>) {
    if s.deliveries.capacity() > KEPT || s.targets.capacity() > KEPT {
        s.deliveries = Vec::new();
        s.targets = Vec::new();
    }
    s.deliveries.clear();
    s.targets.clear();
    SCRATCH.set(Some(s));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(client: u64) -> Delivery {
        Delivery {
            client,
            qos: aviary_protocol::QoS::AtMostOnce,
            retain_as_published: false,
            identifiers: Vec::new(),
            shared: false,
        }
    }

    #[test]
    fn the_vectors_come_back_empty_with_their_room() {
        let mut s = take();
        s.deliveries.extend((0..10).map(delivery));
        let room = s.deliveries.capacity();
        give_back(s);
        let again = take();
        assert!(again.deliveries.is_empty());
        assert_eq!(again.deliveries.capacity(), room);
    }

    #[test]
    fn a_vector_grown_large_is_not_kept() {
        let mut s = take();
        s.deliveries.extend((0..KEPT as u64 + 1).map(delivery));
        give_back(s);
        assert_eq!(take().deliveries.capacity(), 0);
    }

    #[test]
    fn vectors_in_use_are_not_handed_out_twice() {
        let mut outer = take();
        outer.deliveries.push(delivery(1));
        let inner = take();
        assert!(inner.deliveries.is_empty());
        give_back(inner);
        assert_eq!(outer.deliveries.len(), 1);
    }
}
