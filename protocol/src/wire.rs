//! The data representations of MQTT section 1.5: integers, variable byte
//! integers, UTF-8 strings and binary data, read from a received packet and
//! written to an output.
//!
//! Reading slices the packet's `Bytes`, so strings and payloads share the
//! receive buffer instead of being copied. Writing goes through [`Sink`],
//! which has two implementations: the output buffer and a byte counter, so
//! `encoded_len` and `encode` run the very same code and cannot disagree.

use core::num::NonZeroU16;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use crate::{DecodeError, EncodeError, PacketType};

/// Largest value of a variable byte integer (four bytes).
pub const MAX_VARINT: u32 = 268_435_455;

/// Reads the fields of one packet whose bytes have all arrived.
#[derive(Debug)]
pub(crate) struct Reader {
    buf: Bytes,
    packet: PacketType,
}

impl Reader {
    pub(crate) fn new(buf: Bytes, packet: PacketType) -> Self {
        Self { buf, packet }
    }

    pub(crate) fn packet(&self) -> PacketType {
        self.packet
    }

    #[cfg(feature = "client")]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn need(&self, n: usize, field: &'static str) -> Result<(), DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated {
                packet: self.packet,
                field: crate::error::text(field),
            });
        }
        Ok(())
    }

    /// The next `N` bytes. Taken as an array with `get` and `try_from` rather than with
    /// `Buf::get_u16` and the like, whose `copy_to_slice` brought a length-mismatch panic and
    /// its message into the browser client's package.
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        self.need(N, field)?;
        // `need` has checked the length: the fallback is never taken.
        let head = self.buf.get(..N).and_then(|b| <[u8; N]>::try_from(b).ok());
        self.buf.advance(N);
        Ok(head.unwrap_or([0; N]))
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        let [b] = self.array(field)?;
        Ok(b)
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_be_bytes)
    }

    pub(crate) fn varint(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        match read_varint(&self.buf)? {
            Some((value, len)) => {
                self.buf.advance(len);
                Ok(value)
            }
            None => Err(DecodeError::Truncated {
                packet: self.packet,
                field: crate::error::text(field),
            }),
        }
    }

    /// A packet identifier, which must not be zero [MQTT-2.2.1-3].
    pub(crate) fn packet_id(&mut self) -> Result<NonZeroU16, DecodeError> {
        NonZeroU16::new(self.u16("packet identifier")?).ok_or(DecodeError::ZeroPacketId)
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        self.need(n, field)?;
        Ok(self.buf.split_to(n))
    }

    /// Binary data: a two-byte length and that many bytes.
    pub(crate) fn binary(&mut self, field: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.u16(field)?;
        self.take(usize::from(len), field)
    }

    /// A UTF-8 encoded string (section 1.5.4): well-formed, no U+0000.
    pub(crate) fn string(&mut self, field: &'static str) -> Result<ByteString, DecodeError> {
        self.string_and_wildcards(field).map(|(s, _)| s)
    }

    /// [`Reader::string`], and whether it holds a topic wildcard (`+` or `#`): a PUBLISH's
    /// topic name must not, and one pass over its bytes finds both that and U+0000.
    pub(crate) fn string_and_wildcards(
        &mut self,
        field: &'static str,
    ) -> Result<(ByteString, bool), DecodeError> {
        let raw = self.binary(field)?;
        let wildcard = scan_topic(&raw)?;
        let s = ByteString::try_from(raw).map_err(|_| DecodeError::InvalidUtf8)?;
        Ok((s, wildcard))
    }

    /// Everything left: the payload of a PUBLISH.
    pub(crate) fn rest(&mut self) -> Bytes {
        core::mem::take(&mut self.buf)
    }

    /// Fails if any byte is left: every packet has an exact length.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.packet, self.buf.len()))
        }
    }

    /// A sub-reader over the next `n` bytes (a property block).
    pub(crate) fn sub(&mut self, n: usize, field: &'static str) -> Result<Reader, DecodeError> {
        Ok(Reader::new(self.take(n, field)?, self.packet))
    }
}

/// Whether a string's bytes hold a topic wildcard (`+` or `#`); an error if they hold U+0000.
/// A word at a time: this runs on every PUBLISH's topic, and a byte loop's compare and branch
/// per byte were about 55 instructions for an 8-byte topic. All three are ASCII, so they never
/// occur inside a multi-byte sequence, and the bytes need no decoding first. Not memchr:
/// topics are short, and the browser package then carries no memchr.
fn scan_topic(bytes: &[u8]) -> Result<bool, DecodeError> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // Whether any byte of `w` is zero: exact for "any", which is all this asks (only which
    // byte it is can come out wrong, past the first zero).
    let any_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS != 0;
    let (plus, hash) = (ONES * u64::from(b'+'), ONES * u64::from(b'#'));
    let (mut nul, mut wildcard) = (false, false);
    let mut check = |w: u64| {
        nul |= any_zero(w);
        wildcard |= any_zero(w ^ plus) | any_zero(w ^ hash);
    };
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        // Always 8 bytes; `map_or`, not `unwrap`, keeps a panic out of the browser package.
        check(<[u8; 8]>::try_from(word).map_or(0, u64::from_ne_bytes));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        // The last 8 bytes, overlapping words already checked (which changes no answer);
        // when there are fewer, padded with a byte that is none of the three.
        let last = match bytes
            .len()
            .checked_sub(8)
            .and_then(|from| bytes.get(from..))
        {
            Some(last) => <[u8; 8]>::try_from(last).unwrap_or([b'a'; 8]),
            None => {
                let mut last = [b'a'; 8];
                last.iter_mut().zip(rest).for_each(|(to, from)| *to = *from);
                last
            }
        };
        check(u64::from_ne_bytes(last));
    }
    if nul {
        Err(DecodeError::NullCharacter)
    } else {
        Ok(wildcard)
    }
}

/// Decodes a variable byte integer at the start of `buf`: `Ok(None)` if it
/// is incomplete, its value and length otherwise.
pub(crate) fn read_varint(buf: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value = 0u32;
    for (i, &byte) in buf.iter().enumerate().take(4) {
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 4 {
        Err(DecodeError::MalformedVarInt)
    } else {
        Ok(None)
    }
}

/// Bytes a variable byte integer of this value takes.
pub(crate) const fn varint_len(v: usize) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Where encoded bytes go: the output buffer, or a counter of their length.
///
/// The encoders are generic over it, so the server side (the gateway's publish path) gets a
/// writing and a counting copy of each, statically dispatched. A build without the server
/// side (the browser client) calls them through [`sink`] as `dyn Sink`: one copy of every
/// encoder, at a few nanoseconds per field that a browser never notices.
pub(crate) trait Sink {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_slice(&mut self, s: &[u8]);

    fn put_varint(&mut self, v: usize) -> Result<(), EncodeError> {
        if v > MAX_VARINT as usize {
            return Err(EncodeError::VarIntTooLarge(v));
        }
        let mut v = v;
        loop {
            let mut byte = (v & 0x7F) as u8;
            v >>= 7;
            if v > 0 {
                byte |= 0x80;
            }
            self.put_u8(byte);
            if v == 0 {
                return Ok(());
            }
        }
    }

    /// Binary data or a string's bytes: two-byte length prefix.
    fn put_binary(&mut self, b: &[u8]) -> Result<(), EncodeError> {
        let len = u16::try_from(b.len()).map_err(|_| EncodeError::FieldTooLong(b.len()))?;
        self.put_u16(len);
        self.put_slice(b);
        Ok(())
    }

    fn put_string(&mut self, s: &str) -> Result<(), EncodeError> {
        self.put_binary(s.as_bytes())
    }
}

impl Sink for BytesMut {
    fn put_u8(&mut self, v: u8) {
        BufMut::put_u8(self, v);
    }
    fn put_u16(&mut self, v: u16) {
        BufMut::put_u16(self, v);
    }
    fn put_u32(&mut self, v: u32) {
        BufMut::put_u32(self, v);
    }
    fn put_slice(&mut self, s: &[u8]) {
        self.extend_from_slice(s);
    }
}

/// The browser client's output buffer: a plain vector, so its package carries none of
/// `BytesMut`'s code.
#[cfg(feature = "client")]
impl Sink for alloc::vec::Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_slice(&mut self, s: &[u8]) {
        self.extend_from_slice(s);
    }
}

/// How the encoders reach a sink: statically with the server side compiled in (see [`Sink`]).
#[cfg(feature = "server")]
pub(crate) fn sink<S: Sink>(s: &mut S) -> &mut S {
    s
}

/// How the encoders reach a sink: through `dyn Sink` without the server side (see [`Sink`]).
#[cfg(not(feature = "server"))]
pub(crate) fn sink<S: Sink + 'static>(s: &mut S) -> &mut dyn Sink {
    s
}

/// Counts the bytes that would be written.
#[derive(Debug, Default)]
pub(crate) struct Counter(pub(crate) usize);

impl Sink for Counter {
    fn put_u8(&mut self, _: u8) {
        self.0 += 1;
    }
    fn put_u16(&mut self, _: u16) {
        self.0 += 2;
    }
    fn put_u32(&mut self, _: u32) {
        self.0 += 4;
    }
    fn put_slice(&mut self, s: &[u8]) {
        self.0 += s.len();
    }
    fn put_varint(&mut self, v: usize) -> Result<(), EncodeError> {
        if v > MAX_VARINT as usize {
            return Err(EncodeError::VarIntTooLarge(v));
        }
        self.0 += varint_len(v);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// [`scan_topic`] a byte at a time: what it must agree with.
    fn scan_bytewise(bytes: &[u8]) -> Result<bool, DecodeError> {
        if bytes.contains(&0) {
            return Err(DecodeError::NullCharacter);
        }
        Ok(bytes.iter().any(|&b| b == b'+' || b == b'#'))
    }

    proptest! {
        #[test]
        fn the_topic_scan_agrees_with_a_byte_loop(
            // Mostly the bytes it looks for and their neighbours, at every length and offset.
            bytes in prop::collection::vec(
                prop_oneof![Just(0u8), Just(b'+'), Just(b'#'), Just(b'*'), Just(b'$'),
                    Just(1u8), Just(0x80), Just(0xab), any::<u8>()],
                0..40,
            ),
            from in 0usize..8,
        ) {
            let bytes = bytes.get(from..).unwrap_or_default();
            prop_assert_eq!(scan_topic(bytes), scan_bytewise(bytes));
        }
    }

    #[test]
    fn the_topic_scan_finds_each_byte_at_every_position() {
        for len in 1..=17 {
            for at in 0..len {
                for (b, expected) in [
                    (0, Err(DecodeError::NullCharacter)),
                    (b'+', Ok(true)),
                    (b'#', Ok(true)),
                    (b'/', Ok(false)),
                ] {
                    let mut bytes = vec![b'x'; len];
                    bytes[at] = b;
                    assert_eq!(scan_topic(&bytes), expected, "{b} at {at} of {len}");
                }
            }
        }
    }

    #[test]
    fn varint_boundaries_from_the_spec() {
        // Section 1.5.5, table 1-1.
        for (value, bytes) in [
            (0usize, &[0x00][..]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ] {
            let mut out = BytesMut::new();
            out.put_varint(value).unwrap();
            assert_eq!(&out[..], bytes, "encode {value}");
            assert_eq!(varint_len(value), bytes.len());
            assert_eq!(
                read_varint(bytes).unwrap(),
                Some((value as u32, bytes.len()))
            );
        }
    }

    #[test]
    fn varint_rejects_fifth_byte_and_waits_for_more() {
        assert_eq!(
            read_varint(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            Err(DecodeError::MalformedVarInt)
        );
        assert_eq!(read_varint(&[0xFF, 0xFF]), Ok(None));
        assert_eq!(read_varint(&[]), Ok(None));
        assert!(BytesMut::new().put_varint(268_435_456).is_err());
    }

    #[test]
    fn strings_reject_null_and_bad_utf8() {
        let mut r = Reader::new(Bytes::from_static(b"\x00\x03a\x00b"), PacketType::Publish);
        assert_eq!(r.string("topic"), Err(DecodeError::NullCharacter));
        let mut r = Reader::new(Bytes::from_static(b"\x00\x02\xC3\x28"), PacketType::Publish);
        assert_eq!(r.string("topic"), Err(DecodeError::InvalidUtf8));
        let mut r = Reader::new(Bytes::from_static(b"\x00\x05ab"), PacketType::Publish);
        assert!(matches!(
            r.string("topic"),
            Err(DecodeError::Truncated { .. })
        ));
    }
}
