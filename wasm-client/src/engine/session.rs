//! Session state that outlives one connection: packet ids and everything awaiting an answer.
//!
//! Outgoing QoS 1/2 publishes, subscribes and unsubscribes wait here, keyed by packet id, until
//! the broker acknowledges them; after a reconnect they are sent again in their original order.
//! Incoming QoS 2 packet ids are remembered between PUBLISH and PUBREL so a redelivered message
//! is not handed to the application twice.

use alloc::vec::Vec;
use core::num::NonZeroU16;

use aviary_protocol::{
    Publish, SubscribeProperties, SubscriptionOptions, TopicFilter, Unsubscribe,
};

use super::small_map::SmallMap;
use super::Token;

/// Something sent that awaits the broker's answer.
#[derive(Debug, Clone)]
pub(crate) enum Pending {
    /// A QoS 1/2 PUBLISH; `released` once PUBREC arrived and PUBREL went out (QoS 2).
    Publish {
        /// The message as the application gave it (without a topic alias).
        publish: Publish,
        /// Whom to tell.
        token: Token,
        /// QoS 2: PUBREC received, PUBREL sent, waiting for PUBCOMP.
        released: bool,
    },
    /// A SUBSCRIBE; `token` is `None` for the client's own resubscription after a reconnect.
    Subscribe {
        /// The filters and options asked for.
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
        /// The SUBSCRIBE properties, resent as they were.
        properties: SubscribeProperties,
        /// Whom to tell.
        token: Option<Token>,
    },
    /// An UNSUBSCRIBE.
    Unsubscribe {
        /// The packet, resent as is after a reconnect.
        packet: Unsubscribe,
        /// Whom to tell.
        token: Token,
    },
}

/// Packet ids in use and the operations awaiting acknowledgement.
#[derive(Debug, Default)]
pub(crate) struct Session {
    last_id: u16,
    /// Pending operations in the order they were first sent (which is the order to resend
    /// them in); acknowledgements mostly come in that order too, so lookups stop early.
    pending: SmallMap<u16, Pending>,
    publishes: usize,
    /// Incoming QoS 2 packet ids between PUBLISH and PUBREL: a few at most.
    incoming_qos2: Vec<u16>,
}

impl Session {
    /// A free packet id, or `None` if all 65 535 are in use.
    pub(crate) fn free_id(&mut self) -> Option<NonZeroU16> {
        for _ in 0..u16::MAX {
            self.last_id = self.last_id.checked_add(1).unwrap_or(1);
            if !self.pending.contains(&self.last_id) {
                return NonZeroU16::new(self.last_id);
            }
        }
        None
    }

    /// Records `pending` under `id` (an id from [`free_id`](Self::free_id)).
    pub(crate) fn insert(&mut self, id: NonZeroU16, pending: Pending) {
        if matches!(pending, Pending::Publish { .. }) {
            self.publishes += 1;
        }
        self.pending.push(id.get(), pending);
    }

    /// Looks an operation up by packet id.
    pub(crate) fn get_mut(&mut self, id: NonZeroU16) -> Option<&mut Pending> {
        self.pending.get_mut(&id.get())
    }

    /// Removes and returns the operation with this packet id.
    pub(crate) fn remove(&mut self, id: NonZeroU16) -> Option<Pending> {
        let pending = self.pending.remove(&id.get())?;
        if matches!(pending, Pending::Publish { .. }) {
            self.publishes -= 1;
        }
        Some(pending)
    }

    /// Whether nothing sent awaits an answer.
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.keys().next().is_none()
    }

    /// How many QoS 1/2 publishes are in flight (bounded by the broker's Receive Maximum).
    pub(crate) fn publishes_in_flight(&self) -> usize {
        self.publishes
    }

    /// The packet ids of all pending operations, in the order they were first sent.
    pub(crate) fn ids_in_order(&self) -> Vec<NonZeroU16> {
        // A loop, not `collect`, whose iterator specialisation was code of its own.
        let mut ids = Vec::new();
        for &key in self.pending.keys() {
            if let Some(id) = NonZeroU16::new(key) {
                ids.push(id);
            }
        }
        ids
    }

    /// Removes every pending operation (the client ended), in sending order, with its id.
    pub(crate) fn drain(&mut self) -> Vec<(u16, Pending)> {
        self.publishes = 0;
        self.pending.take_all()
    }

    /// Records an incoming QoS 2 PUBLISH; `false` if this id was already received (a
    /// redelivery, not to be handed to the application again).
    pub(crate) fn receive_qos2(&mut self, id: NonZeroU16) -> bool {
        if self.incoming_qos2.contains(&id.get()) {
            return false;
        }
        self.incoming_qos2.push(id.get());
        true
    }

    /// Forgets an incoming QoS 2 id once PUBREL arrived.
    pub(crate) fn release_qos2(&mut self, id: NonZeroU16) {
        // The ids are unique and their order does not matter: the last one takes the place of
        // the one released (`retain` was a copy of its own for this element type).
        let ids = &mut self.incoming_qos2;
        if let Some(i) = ids.iter().position(|&x| x == id.get()) {
            if let Some(last) = ids.pop() {
                if let Some(slot) = ids.get_mut(i) {
                    *slot = last;
                }
            }
        }
    }

    /// Forgets incoming QoS 2 state: the broker kept no session, so it will not send PUBREL.
    pub(crate) fn clear_incoming(&mut self) {
        self.incoming_qos2.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(token: u32) -> Pending {
        Pending::Publish {
            publish: Publish::new("t", &b""[..]),
            token: Token(token),
            released: false,
        }
    }

    #[test]
    fn ids_skip_those_in_use_and_wrap_past_zero() {
        let mut s = Session {
            last_id: u16::MAX - 1,
            ..Session::default()
        };
        let a = s.free_id().unwrap();
        assert_eq!(a.get(), u16::MAX);
        s.insert(a, publish(1));
        let b = s.free_id().unwrap();
        assert_eq!(b.get(), 1, "0 is never a packet id");
        s.insert(b, publish(2));
        s.last_id = u16::MAX - 1;
        assert_eq!(s.free_id().unwrap().get(), 2, "in-use ids are skipped");
        assert_eq!(s.publishes_in_flight(), 2);
    }

    #[test]
    fn pending_operations_come_back_in_sending_order() {
        let mut s = Session::default();
        for (id, token) in [(9, 1), (3, 2), (5, 3)] {
            s.insert(NonZeroU16::new(id).unwrap(), publish(token));
        }
        let ids: Vec<u16> = s.ids_in_order().iter().map(|id| id.get()).collect();
        assert_eq!(ids, [9, 3, 5]);
        assert!(s.remove(NonZeroU16::new(3).unwrap()).is_some());
        assert_eq!(s.drain().len(), 2);
        assert_eq!(s.publishes_in_flight(), 0);
    }

    #[test]
    fn a_redelivered_qos2_publish_is_recognised_until_released() {
        let mut s = Session::default();
        let id = NonZeroU16::new(7).unwrap();
        assert!(s.receive_qos2(id));
        assert!(!s.receive_qos2(id));
        s.release_qos2(id);
        assert!(s.receive_qos2(id));
    }

    #[test]
    fn releasing_one_qos2_id_keeps_the_others() {
        let mut s = Session::default();
        let ids: Vec<NonZeroU16> = (1..=4).filter_map(NonZeroU16::new).collect();
        for &id in &ids {
            assert!(s.receive_qos2(id));
        }
        s.release_qos2(ids[1]);
        s.release_qos2(ids[3]);
        assert!(!s.receive_qos2(ids[0]), "still held");
        assert!(!s.receive_qos2(ids[2]), "still held");
        assert!(s.receive_qos2(ids[1]), "released");
        assert!(s.receive_qos2(ids[3]), "released");
    }
}
