//! QoS 0 deliveries encoded on their publisher's thread, straight into the bytes the
//! subscriber's writer sends next.
//!
//! Queued, a message crosses from its publisher's core to the subscriber's writer as an `Arc`
//! that the writer reads, encodes and frees there: its allocation, its counts, its queue entry
//! and the publisher's read buffer (which its topic and payload share) all pass between the
//! two cores, and in fan-in those passes, more than the instructions, are what a message
//! costs (`bench/PROFILE.md`). A QoS 0 delivery needs nothing of its message once encoded,
//! so while nothing queued is ahead of it, its publisher encodes it under the session's lock
//! and drops the message on its own thread; the writer takes the bytes as they are.
//!
//! Only for a message that goes to this subscriber alone (fan-in, a pair): one that goes to
//! many stays one message, shared by their queues, as its bytes would otherwise be held once
//! per subscriber, and encoded on the publisher's thread alone rather than by the writers.
//!
//! What keeps this right:
//! - order: only while the queue and the retained cursors are empty, so that everything
//!   queued was routed after everything encoded, and the writer sends the encoded bytes
//!   first (after the control packets, as it did queued messages);
//! - the connection: the bytes are encoded for the one attached (its protocol version and
//!   Maximum Packet Size), and are dropped with it, as what its socket's buffer held is;
//!   not for a connection that assigns topic aliases (only its writer knows them), nor
//!   while in-flight messages wait to be sent again, which go first;
//! - the bounds: encoded messages count as queued ones, for backpressure, which holds
//!   publishers back at the queue's high-water mark, and for the queue's limits. Past that
//!   mark (a slow subscriber holds no one back) messages queue as before, and when the
//!   queue must make room, the encoded ones go first, all together: they are the oldest,
//!   and QoS 0;
//! - the message: a QoS 0 delivery of a message that does not expire (the interval left is
//!   reckoned when it is sent), encoded within the client's Maximum Packet Size; one too
//!   large is queued, and the writer drops it and counts it as it does any other.

use aviary_protocol::ProtocolVersion;
use bytes::BytesMut;

use super::{Active, Batch, QueueLimits};
use crate::broker::message::Outgoing;

/// The room made for the first delivery encoded after the writer took the bytes: a run
/// (up to 64 messages, see `publish::staged`) of small ones, without growing.
const FIRST: usize = 8 * 1024;

/// Whether and how a connection takes deliveries encoded by their publishers: in its
/// protocol version (the top bit: MQTT 5), up to its client's Maximum Packet Size (the
/// rest); 0 if it does not. Four bytes, as every connection's link holds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Direct(u32);

/// The top bit of a [`Direct`]: MQTT 5.
const V5: u32 = 1 << 31;

impl Direct {
    /// A connection that takes none.
    pub(crate) const NONE: Self = Self(0);

    /// For a connection in `version` whose client takes packets of up to `max_packet_size`
    /// bytes; none if its writer assigns topic aliases.
    pub(crate) fn new(
        version: ProtocolVersion,
        max_packet_size: u32,
        assigns_aliases: bool,
    ) -> Self {
        if assigns_aliases || max_packet_size == 0 {
            return Self::NONE;
        }
        // No MQTT packet comes near 2 GiB (the largest is 268,435,460 bytes).
        let limit = max_packet_size.min(!V5);
        Self(limit | if version.is_v5() { V5 } else { 0 })
    }

    /// Whether the connection takes encoded deliveries at all.
    pub(crate) fn is_some(self) -> bool {
        self != Self::NONE
    }

    fn version(self) -> ProtocolVersion {
        // 3.1 and 3.1.1 encode a PUBLISH alike.
        if self.0 & V5 != 0 {
            ProtocolVersion::V5
        } else {
            ProtocolVersion::V3_1_1
        }
    }

    fn limit(self) -> usize {
        (self.0 & !V5) as usize
    }
}

/// Deliveries encoded by their publishers, in order, and how many.
///
/// The writer hands back the buffer it has written out (its room kept) each time it takes
/// one, so that in a steady stream the two buffers go back and forth and nothing is
/// allocated or grown; a session whose writer found nothing new keeps none.
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    pub(crate) bytes: Option<BytesMut>,
    pub(crate) messages: usize,
}

impl Encoded {
    pub(crate) const fn new() -> Self {
        Self {
            bytes: None,
            messages: 0,
        }
    }

    /// Bytes encoded.
    pub(crate) fn len(&self) -> usize {
        self.bytes.as_ref().map_or(0, BytesMut::len)
    }
}

impl Active {
    /// Encodes `out` for the connection `to` into the bytes its writer takes next, if it is a
    /// delivery that may go so (see the module documentation); false leaves it to be queued.
    // Inline: once per message of a run, under the subscriber's lock.
    #[inline]
    pub(crate) fn send_direct(&mut self, out: &Outgoing, to: Direct, limits: &QueueLimits) -> bool {
        let Some(publish) = out.publish_now() else {
            return false;
        };
        let (high_messages, high_bytes) = limits.high_water();
        let full = self.encoded.messages >= high_messages || self.encoded.len() >= high_bytes;
        if full || !self.queue.is_empty() || !self.cursors.is_empty() {
            return false;
        }
        let bytes = self.encoded.bytes.get_or_insert_with(BytesMut::new);
        if bytes.capacity() == 0 {
            bytes.reserve(FIRST);
        }
        let start = bytes.len();
        let encoded = publish.encode(to.version(), bytes).is_ok();
        if !encoded || bytes.len() - start > to.limit() {
            bytes.truncate(start);
            return false;
        }
        self.encoded.messages += 1;
        true
    }

    /// Hands the encoded deliveries to `batch`, keeping the writer's `spare` buffer (empty,
    /// its room kept) for the next ones. With none since the writer last looked, `spare`
    /// goes back in `batch` and the session keeps no buffer: its writer may be about to wait.
    pub(crate) fn take_encoded(&mut self, batch: &mut Batch, spare: BytesMut) {
        if self.encoded.messages == 0 {
            self.encoded.bytes = None;
            batch.encoded.bytes = Some(spare);
            return;
        }
        let room = Encoded {
            bytes: Some(spare),
            messages: 0,
        };
        batch.encoded = std::mem::replace(&mut self.encoded, room);
    }

    /// The room the session keeps for encoded deliveries.
    #[cfg(test)]
    pub(crate) fn encoding_room(&self) -> usize {
        self.encoded.bytes.as_ref().map_or(0, BytesMut::capacity)
    }

    /// Deliveries encoded and not yet taken by the writer.
    #[cfg(test)]
    pub(crate) fn encoded_messages(&self) -> usize {
        self.encoded.messages
    }

    /// Forgets what was encoded: for a connection that has gone, or to make room in the
    /// queue.
    pub(crate) fn drop_encoded(&mut self) {
        self.encoded = Encoded::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The version and the limit come back as given, a limit past what four bytes hold
    /// less one bit as "any packet"; a connection that assigns aliases, or names no room
    /// at all, takes none.
    #[test]
    fn a_connection_s_terms_come_back_as_given() {
        let d = Direct::new(ProtocolVersion::V5, 1000, false);
        assert_eq!((d.version(), d.limit()), (ProtocolVersion::V5, 1000));
        let d = Direct::new(ProtocolVersion::V3_1, u32::MAX, false);
        assert_eq!(d.version(), ProtocolVersion::V3_1_1);
        assert!(d.limit() > 268_435_460);
        assert!(d.is_some());
        assert!(!Direct::new(ProtocolVersion::V5, 1000, true).is_some());
        assert!(!Direct::new(ProtocolVersion::V5, 0, false).is_some());
    }
}
