//! Incremental decoding from a receive buffer, and the [`Codec`] a
//! connection keeps.
//!
//! Bytes arrive in arbitrary pieces (a TCP read, a WebSocket frame). The
//! decoder takes whole packets off the front of the buffer and leaves a
//! partial one in place, so calling it again after the next read resumes
//! where it stopped; this is what makes a read loop cancel-safe inside
//! `select!`. The fixed header is checked against the maximum packet size
//! before the body is waited for, so a peer cannot make us buffer a packet
//! we are going to refuse.

use core::num::NonZeroU16;

use bytes::{Buf, BytesMut};

use crate::wire::{read_varint, Reader};
use crate::{Ack, DecodeError, EncodeError, Packet, PacketType, ProtocolVersion};

/// The largest packet MQTT can express: 1 + 4 + 268,435,455 bytes.
pub const MAX_PACKET_SIZE: u32 = 268_435_460;

/// How far ahead of the bytes received the decoder reserves buffer space
/// for an incomplete packet.
const RESERVE_AHEAD: usize = 64 * 1024;

/// Takes one packet off the front of `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold a whole packet (and has
/// reserved room for the rest), `Ok(Some(packet))` after consuming exactly
/// that packet's bytes, or an error, after which the connection must close.
/// `version` is the connection's protocol version (a CONNECT sets its own);
/// `max_packet_size` counts the whole packet, fixed header included.
pub fn decode(
    buf: &mut BytesMut,
    version: ProtocolVersion,
    max_packet_size: u32,
) -> Result<Option<Packet>, DecodeError> {
    let Some(head) = header(buf, max_packet_size)? else {
        return Ok(None);
    };
    if buf.len() < head.size {
        // Room for the rest, but not all at once for a huge packet: a few
        // header bytes must not make us allocate the maximum packet size.
        // Past the first steps the room grows with what did arrive, so a
        // large packet is moved to a larger buffer a few times, not once
        // per read.
        let ahead = RESERVE_AHEAD.max(4 * buf.len());
        buf.reserve((head.size - buf.len()).min(ahead));
        return Ok(None);
    }
    if let Some(ack) = short_ack(&head, buf)? {
        buf.advance(head.size);
        return Ok(Some(ack));
    }
    let mut frame = buf.split_to(head.size).freeze();
    frame.advance(head.len);
    Packet::read(
        head.packet,
        head.flags,
        Reader::new(frame, head.packet),
        version,
    )
    .map(Some)
}

/// Like [`decode`], for a receive buffer kept as plain bytes (the browser client's, whose
/// package then carries none of `BytesMut`'s code): reads the packet at the start of `buf`
/// and returns it with the number of bytes it took, which the caller consumes. The packet's
/// body is copied out of `buf`, so its strings and payload do not borrow it.
#[cfg(feature = "client")]
pub fn decode_slice(
    buf: &[u8],
    version: ProtocolVersion,
    max_packet_size: u32,
) -> Result<Option<(Packet, usize)>, DecodeError> {
    let Some(head) = header(buf, max_packet_size)? else {
        return Ok(None);
    };
    // `get` rather than indexing: the browser package then links no slice panic.
    let Some(body) = buf.get(head.len..head.size) else {
        return Ok(None);
    };
    let body = Reader::new(bytes::Bytes::copy_from_slice(body), head.packet);
    let packet = Packet::read(head.packet, head.flags, body, version)?;
    Ok(Some((packet, head.size)))
}

/// An acknowledgement that is only a packet id (PUBACK, PUBREC, PUBREL or PUBCOMP: always in
/// MQTT 3.1.1, and in MQTT 5 for success without properties), read in place: a subscriber
/// sends one for every QoS 1 or 2 message, and splitting each off the buffer into a frame of
/// its own cost more than the rest of its decoding.
fn short_ack(head: &Header, buf: &[u8]) -> Result<Option<Packet>, DecodeError> {
    if head.size != head.len + 2 {
        return Ok(None);
    }
    use PacketType::{PubAck, PubComp, PubRec, PubRel};
    if !matches!(head.packet, PubAck | PubRec | PubRel | PubComp) {
        return Ok(None);
    }
    let id = match buf.get(head.len..head.size) {
        Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
        _ => return Ok(None),
    };
    let id = NonZeroU16::new(id).ok_or(DecodeError::ZeroPacketId)?;
    Ok(Some(Packet::acknowledgement(head.packet, Ack::new(id))))
}

/// The packet id of the PUBACK at the start of `buf`, if it starts with one that is only a
/// packet id (always so in MQTT 3.1.1; in MQTT 5, a success without properties): four bytes
/// that need no decoding. A sender of QoS 1 messages gets one for each, often many in one
/// read, and can take a run of them off its buffer at once. `None` for anything else, a
/// PUBACK with packet id 0 included, which [`decode`] refuses.
pub fn short_puback(buf: &[u8]) -> Option<NonZeroU16> {
    match *buf {
        [0x40, 0x02, hi, lo, ..] => NonZeroU16::new(u16::from_be_bytes([hi, lo])),
        _ => None,
    }
}

/// A fixed header that has been read and checked.
struct Header {
    packet: PacketType,
    flags: u8,
    /// Bytes of the fixed header.
    len: usize,
    /// Bytes of the whole packet.
    size: usize,
}

/// Reads and checks the fixed header at the start of `buf`; `Ok(None)` until it is whole.
fn header(buf: &[u8], max_packet_size: u32) -> Result<Option<Header>, DecodeError> {
    let Some((&first, rest)) = buf.split_first() else {
        return Ok(None);
    };
    // Refuse a bad packet type or flags at once rather than after its body.
    let packet = PacketType::from_nibble(first >> 4)?;
    let flags = first & 0x0F;
    if packet != PacketType::Publish && flags != packet.required_flags() {
        return Err(DecodeError::InvalidFlags { packet, flags });
    }
    if packet == PacketType::Publish && flags & 0b0110 == 0b0110 {
        return Err(DecodeError::InvalidQoS(crate::error::text(
            "in PUBLISH [MQTT-3.3.1-4]",
        )));
    }
    let Some((remaining, len_bytes)) = read_varint(rest)? else {
        return Ok(None);
    };
    let len = 1 + len_bytes;
    let size = len + remaining as usize;
    if size > max_packet_size as usize {
        return Err(DecodeError::PacketTooLarge {
            size,
            max: max_packet_size,
        });
    }
    Ok(Some(Header {
        packet,
        flags,
        len,
        size,
    }))
}

/// The codec state of one connection: its protocol version and the largest
/// packet it accepts.
#[derive(Debug, Clone, Copy)]
pub struct Codec {
    /// Version used for packets other than CONNECT.
    pub version: ProtocolVersion,
    /// Largest packet accepted, fixed header included.
    pub max_packet_size: u32,
}

impl Codec {
    /// A codec for a connection of this version.
    pub fn new(version: ProtocolVersion, max_packet_size: u32) -> Self {
        Self {
            version,
            max_packet_size,
        }
    }

    /// Decodes the next packet; a CONNECT switches the codec to its version.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let packet = decode(buf, self.version, self.max_packet_size)?;
        if let Some(Packet::Connect(c)) = &packet {
            self.version = c.protocol;
        }
        Ok(packet)
    }

    /// Appends `packet` to `dst` in this connection's version.
    pub fn encode(&self, packet: &Packet, dst: &mut BytesMut) -> Result<(), EncodeError> {
        packet.encode(self.version, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_pubacks_are_read_in_place_and_nothing_else_is() {
        assert_eq!(
            short_puback(&[0x40, 0x02, 0x01, 0x02]),
            NonZeroU16::new(0x0102)
        );
        assert_eq!(
            short_puback(&[0x40, 0x02, 0x00, 0x07, 0x40]),
            NonZeroU16::new(7)
        );
        // Packet id 0: left for `decode`, which refuses it.
        assert_eq!(short_puback(&[0x40, 0x02, 0x00, 0x00]), None);
        // Incomplete, with a reason code, or another acknowledgement.
        assert_eq!(short_puback(&[0x40, 0x02, 0x00]), None);
        assert_eq!(short_puback(&[0x40, 0x03, 0x00, 0x07, 0x10]), None);
        assert_eq!(short_puback(&[0x50, 0x02, 0x00, 0x07]), None);
    }
}
