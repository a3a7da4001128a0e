//! The two vectors every routed message fills, the subscription tree's deliveries and then
//! their sessions, kept per worker thread and reused rather than allocated, grown and freed
//! for each PUBLISH: that was about a tenth of the broker's instructions per message in
//! fan-in.
//!
//! A vector is taken out of its slot for the time it is used and put back after, so a route
//! within a route (none today) would only allocate afresh, never share one. A vector that
//! grew past [`KEPT`] entries (a message to thousands of subscribers) is dropped instead of
//! put back, so no thread keeps a large one for good.

use std::cell::Cell;

use super::super::router::Delivery;
use super::Target;

/// The most entries a vector may hold room for and still be kept.
const KEPT: usize = 1024;

thread_local! {
    static DELIVERIES: Cell<Vec<Delivery>> = const { Cell::new(Vec::new()) };
    static TARGETS: Cell<Vec<Target>> = const { Cell::new(Vec::new()) };
}

/// An empty vector for the tree's deliveries.
pub(super) fn deliveries() -> Vec<Delivery> {
    DELIVERIES.take()
}

/// Returns the deliveries' vector, emptied, for the next message.
pub(super) fn give_back_deliveries(v: Vec<Delivery>) {
    give_back(&DELIVERIES, v);
}

/// An empty vector for the sessions a message goes to.
pub(super) fn targets() -> Vec<Target> {
    TARGETS.take()
}

/// Returns the targets' vector, emptied, for the next message.
pub(super) fn give_back_targets(v: Vec<Target>) {
    give_back(&TARGETS, v);
}

fn give_back<T>(slot: &'static std::thread::LocalKey<Cell<Vec<T>>>, mut v: Vec<T>) {
    if v.capacity() <= KEPT {
        v.clear();
        slot.set(v);
    }
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
    fn a_vector_comes_back_empty_with_its_room() {
        let mut v = deliveries();
        v.extend((0..10).map(delivery));
        let room = v.capacity();
        give_back_deliveries(v);
        let again = deliveries();
        assert!(again.is_empty());
        assert_eq!(again.capacity(), room);
    }

    #[test]
    fn a_vector_grown_large_is_not_kept() {
        let mut v = deliveries();
        v.extend((0..KEPT as u64 + 1).map(delivery));
        give_back_deliveries(v);
        assert_eq!(deliveries().capacity(), 0);
    }

    #[test]
    fn a_vector_in_use_is_not_handed_out_twice() {
        let mut outer = deliveries();
        outer.push(delivery(1));
        let inner = deliveries();
        assert!(inner.is_empty());
        give_back_deliveries(inner);
        assert_eq!(outer.len(), 1);
    }
}
