//! The acknowledgements of messages in flight (PUBACK, PUBREC, PUBCOMP), and the messages
//! given up on unsent: each ends a delivery, or moves a QoS 2 one to its second half, and
//! tells the store so (see `journal`).

use std::num::NonZeroU16;

use aviary_protocol::QoS;

use super::{Active, Event};

impl Active {
    /// Where the message in flight under `id` is, in the first half of its exchange or
    /// (`released`, QoS 2) the second.
    fn inflight_position(&self, id: NonZeroU16, released: bool) -> Option<usize> {
        self.inflight
            .iter()
            .position(|i| i.packet_id == id && i.released == released)
    }

    /// PUBACK: a QoS 1 delivery is complete.
    pub(crate) fn puback(&mut self, id: NonZeroU16) -> bool {
        match self.inflight_position(id, false) {
            Some(pos) if self.inflight[pos].out.qos == QoS::AtLeastOnce => {
                self.complete(pos);
                true
            }
            _ => false,
        }
    }

    /// PUBREC: a QoS 2 message was received. Returns whether to answer
    /// PUBREL; an error reason ends the exchange [MQTT-4.3.3-4].
    pub(crate) fn pubrec(&mut self, id: NonZeroU16, failed: bool) -> bool {
        let Some(pos) = self
            .inflight
            .iter()
            .position(|i| i.packet_id == id && i.out.qos == QoS::ExactlyOnce)
        else {
            return false;
        };
        if failed {
            self.complete(pos);
            return false;
        }
        self.inflight[pos].released = true;
        let out = self.inflight[pos].out.clone();
        self.record(|| Event::Released(out.clone(), id), &out);
        true
    }

    /// PUBCOMP: a QoS 2 delivery is complete.
    pub(crate) fn pubcomp(&mut self, id: NonZeroU16) -> bool {
        match self.inflight_position(id, true) {
            Some(pos) => {
                self.complete(pos);
                true
            }
            None => false,
        }
    }

    /// Forgets an in-flight message that could not be sent (too large for
    /// the client), as if it had been acknowledged [MQTT-3.1.2-25].
    pub(crate) fn abandon(&mut self, id: NonZeroU16) {
        if let Some(pos) = self.inflight.iter().position(|i| i.packet_id == id) {
            self.complete(pos);
        }
    }

    /// Ends the delivery of the in-flight message at `pos`: acknowledged,
    /// refused or abandoned, the store forgets it.
    fn complete(&mut self, pos: usize) {
        // Acknowledgements mostly come in the order sent: the oldest goes by `pop_front`,
        // which `remove(0)` would reach only through a general shift of nothing.
        let done = if pos == 0 {
            self.inflight.pop_front()
        } else {
            self.inflight.remove(pos)
        };
        if let Some(done) = done {
            self.record(|| Event::Done(done.out.clone()), &done.out);
        }
    }
}
