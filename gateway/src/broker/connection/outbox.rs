//! What the writer has encoded and not yet written.
//!
//! Small packets are encoded back to back into one buffer, so many go out
//! per syscall. A large PUBLISH payload is not copied there: the packet's
//! head is encoded into the buffer, and the payload, a `Bytes` shared with
//! the publisher's read buffer and every other subscriber, is queued by
//! reference after it; the socket gets both in one vectored write. Copying
//! a 1 MiB payload into a write buffer that grows to a whole batch of them
//! (up to the in-flight window, 100 MiB) cost more than the write itself.
//! Streams that do not write vectored (the WebSocket, which frames what it
//! is given) get everything copied into the buffer, as before.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use aviary_protocol::{EncodeError, Packet, ProtocolVersion, PublishRef};
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWrite;

/// Smallest payload sent by reference: below it, a copy costs less than
/// the extra slice of a vectored write (and keeps small packets together).
const BY_REFERENCE: usize = 8 * 1024;
/// Most slices handed to one vectored write (the OS takes up to 1,024).
const MAX_SLICES: usize = 64;

/// Encoded bytes waiting to be written; nothing while idle.
#[derive(Debug, Default)]
pub(super) struct Outbox(Option<Box<Pending>>);

/// What an outbox holds, in order: `parts`, then `buf`. Boxed, and there
/// only while something waits, as the outbox lives in every idle
/// connection's task.
#[derive(Debug, Default)]
struct Pending {
    /// Written before `buf`: runs of packets frozen out of `buf`, each
    /// followed by the large payload that ends it.
    parts: VecDeque<Bytes>,
    /// The newest encoded packets, copied in.
    buf: BytesMut,
    /// A buffer written out, its room kept, for the session to encode the next deliveries
    /// into (see `session::outbox::direct`).
    spare: BytesMut,
}

impl Outbox {
    pub(super) fn is_empty(&self) -> bool {
        self.0
            .as_ref()
            .is_none_or(|p| p.parts.is_empty() && p.buf.is_empty())
    }

    /// Bytes waiting.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |p| {
            p.parts.iter().map(Bytes::len).sum::<usize>() + p.buf.len()
        })
    }

    /// Appends `packet`; a large PUBLISH payload by reference if the
    /// stream writes `vectored`. On error nothing is appended.
    pub(super) fn push(
        &mut self,
        packet: &Packet,
        v: ProtocolVersion,
        vectored: bool,
    ) -> Result<(), EncodeError> {
        if let Packet::Publish(p) = packet {
            return self
                .push_publish(&p.borrowed(), v, vectored, usize::MAX)
                .map(drop);
        }
        packet.encode(v, &mut self.0.get_or_insert_default().buf)
    }

    /// Appends a PUBLISH as [`push`](Self::push) does if it takes at most `limit` bytes (the
    /// client's Maximum Packet Size); returns whether it did. A small one is encoded and
    /// then measured, taken back if too large: measuring first walked every packet a third
    /// time (the encoder measures its body once itself).
    pub(super) fn push_publish(
        &mut self,
        p: &PublishRef<'_>,
        v: ProtocolVersion,
        vectored: bool,
        limit: usize,
    ) -> Result<bool, EncodeError> {
        let pending = self.0.get_or_insert_default();
        if p.payload.len() >= BY_REFERENCE.min(limit) {
            if p.encoded_len(v)? > limit {
                return Ok(false);
            }
            if !vectored {
                p.encode(v, &mut pending.buf)?;
                return Ok(true);
            }
            p.encode_head(v, &mut pending.buf)?;
            pending.parts.push_back(pending.buf.split().freeze());
            pending.parts.push_back(p.payload.clone());
            return Ok(true);
        }
        let start = pending.buf.len();
        p.encode(v, &mut pending.buf)?;
        if pending.buf.len() - start > limit {
            pending.buf.truncate(start);
            return Ok(false);
        }
        Ok(true)
    }

    /// Appends packets encoded elsewhere (QoS 0 deliveries, by their publishers' threads):
    /// taken as the buffer when it is empty, copied in after what it holds otherwise. The
    /// buffer left over, emptied, is kept as the spare.
    pub(super) fn push_encoded(&mut self, bytes: Option<BytesMut>) {
        let Some(mut bytes) = bytes else {
            return;
        };
        if bytes.is_empty() {
            // Nothing encoded: the spare comes back as it went, and the buffer keeps its room
            // (swapped, every other batch would grow one anew). Nothing to keep it for if
            // nothing waits.
            if let Some(pending) = &mut self.0 {
                pending.spare = bytes;
            }
            return;
        }
        let pending = self.0.get_or_insert_default();
        if pending.buf.is_empty() {
            std::mem::swap(&mut pending.buf, &mut bytes);
        } else {
            pending.buf.extend_from_slice(&bytes);
        }
        bytes.clear();
        pending.spare = bytes;
    }

    /// The spare buffer (see [`push_encoded`](Self::push_encoded)), or a new one, empty.
    pub(super) fn take_spare(&mut self) -> BytesMut {
        self.0
            .as_mut()
            .map(|p| std::mem::take(&mut p.spare))
            .unwrap_or_default()
    }

    /// Makes room at once for PUBLISHes with these topic and payload lengths (properties
    /// aside): grown packet by packet, the buffer was copied over and over as it doubled,
    /// about one more copy of every byte of a batch.
    pub(super) fn reserve_publishes(
        &mut self,
        sizes: impl Iterator<Item = (usize, usize)>,
        vectored: bool,
    ) {
        // Fixed header (at most 5), topic length, packet id, MQTT 5 property length.
        const HEAD: usize = 5 + 2 + 2 + 1;
        let copied = |(topic, payload): (usize, usize)| {
            let by_reference = vectored && payload >= BY_REFERENCE;
            HEAD + topic + if by_reference { 0 } else { payload }
        };
        let room: usize = sizes.map(copied).sum();
        self.0.get_or_insert_default().buf.reserve(room);
    }

    /// Gives the memory back once everything is written: most connections
    /// are idle most of the time.
    pub(super) fn release(&mut self) {
        debug_assert!(self.is_empty());
        self.0 = None;
    }

    /// Writes some of what is waiting; returns how many bytes (0: the
    /// stream takes no more). Cancel-safe: what was written is gone from
    /// the outbox before it returns ready, and nothing else is.
    pub(super) fn poll_write<W: AsyncWrite>(
        &mut self,
        wr: Pin<&mut W>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let Some(pending) = self.0.as_deref_mut() else {
            return Poll::Ready(Ok(0));
        };
        if pending.parts.is_empty() {
            return tokio_util::io::poll_write_buf(wr, cx, &mut pending.buf);
        }
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let parts = pending.parts.iter().map(|p| &p[..]);
        let mut count = 0;
        for (slice, bytes) in slices.iter_mut().zip(parts.chain([&pending.buf[..]])) {
            *slice = IoSlice::new(bytes);
            count += 1;
        }
        let n = ready!(wr.poll_write_vectored(cx, &slices[..count]))?;
        pending.advance(n);
        Poll::Ready(Ok(n))
    }
}

impl Pending {
    /// Drops the first `n` bytes waiting.
    fn advance(&mut self, mut n: usize) {
        while let Some(front) = self.parts.front_mut() {
            if n < front.len() {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.parts.pop_front();
        }
        self.buf.advance(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aviary_protocol::{Publish, QoS};
    use std::num::NonZeroU16;
    use tokio::io::AsyncReadExt;

    fn publish(payload: usize, id: u16) -> Packet {
        let mut p = Publish::new("t", vec![id as u8; payload]);
        p.qos = QoS::AtLeastOnce;
        p.packet_id = NonZeroU16::new(id);
        Packet::Publish(p)
    }

    fn pushed_within(
        outbox: &mut Outbox,
        p: &Packet,
        v: ProtocolVersion,
        vectored: bool,
        limit: usize,
    ) -> bool {
        let Packet::Publish(p) = p else {
            unreachable!("a PUBLISH")
        };
        outbox
            .push_publish(&p.borrowed(), v, vectored, limit)
            .unwrap()
    }

    /// A packet above the limit is left out, whichever way it would have gone, and what was
    /// there before stays; one at the limit goes in.
    #[test]
    fn a_packet_above_the_limit_is_not_pushed() {
        let v = ProtocolVersion::V3_1_1;
        for (payload, vectored) in [(10, true), (BY_REFERENCE, true), (BY_REFERENCE, false)] {
            let mut outbox = Outbox::default();
            outbox.push(&Packet::PingResp, v, vectored).unwrap();
            let big = publish(payload, 1);
            let size = big.encoded_len(v).unwrap();
            assert!(!pushed_within(&mut outbox, &big, v, vectored, size - 1));
            assert_eq!(outbox.len(), 2, "only the PINGRESP");
            assert!(pushed_within(&mut outbox, &big, v, vectored, size));
            assert_eq!(outbox.len(), 2 + size);
        }
    }

    /// Packets encoded elsewhere go after what waits, or are the buffer when nothing does.
    #[test]
    fn encoded_bytes_go_after_what_waits() {
        let v = ProtocolVersion::V3_1_1;
        let mut outbox = Outbox::default();
        outbox.push_encoded(None);
        outbox.push_encoded(Some(BytesMut::new()));
        assert!(outbox.0.is_none(), "nothing kept for nothing");
        outbox.push_encoded(Some(BytesMut::from(&b"ab"[..])));
        assert_eq!(
            outbox.take_spare().capacity(),
            0,
            "the buffer it took the place of"
        );
        outbox.push(&Packet::PingResp, v, true).unwrap();
        let with_room = BytesMut::with_capacity(100);
        outbox.push_encoded(Some(with_room));
        outbox.push_encoded(Some(BytesMut::from(&b"cd"[..])));
        assert_eq!(&outbox.0.as_ref().unwrap().buf[..], b"ab\xd0\x00cd");
        let spare = outbox.take_spare();
        assert!(
            spare.is_empty() && spare.capacity() >= 2,
            "the one copied from, emptied"
        );
        assert_eq!(outbox.take_spare().capacity(), 0, "taken once");
    }

    /// The bytes written are the packets encoded one after the other,
    /// however the stream splits the writes.
    #[tokio::test]
    async fn writes_the_packets_in_order() {
        let v = ProtocolVersion::V3_1_1;
        let packets = [
            publish(10, 1),
            publish(BY_REFERENCE, 2),
            Packet::PingResp,
            publish(3 * BY_REFERENCE, 3),
            publish(5, 4),
        ];
        let mut want = BytesMut::new();
        for p in &packets {
            p.encode(v, &mut want).unwrap();
        }
        for vectored in [true, false] {
            let mut outbox = Outbox::default();
            for p in &packets {
                outbox.push(p, v, vectored).unwrap();
            }
            assert_eq!(outbox.len(), want.len());
            let parts = &outbox.0.as_ref().unwrap().parts;
            assert_eq!(parts.is_empty(), !vectored, "payloads by reference");
            // A small pipe: writes stop part-way through parts.
            let (mut client, mut server) = tokio::io::duplex(1000);
            let reader = tokio::spawn(async move {
                let mut got = Vec::new();
                client.read_to_end(&mut got).await.unwrap();
                got
            });
            while !outbox.is_empty() {
                assert!(
                    std::future::poll_fn(|cx| outbox.poll_write(Pin::new(&mut server), cx))
                        .await
                        .unwrap()
                        > 0
                );
            }
            drop(server);
            assert_eq!(reader.await.unwrap(), &want[..]);
            outbox.release();
        }
    }
}
