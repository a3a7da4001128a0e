//! The disk store's binary encoding of records and keys.
//!
//! Hand-written rather than serde + a format crate: the records are a dozen
//! fields, the protocol types they hold (`MessageProperties`,
//! `SubscriptionOptions`) have no serde impls, and owning every byte keeps
//! the format stable across dependency upgrades. Each value starts with a
//! record version byte, so a later format can read old records in place.
//! Integers are LEB128 varints (a queue entry is about 5 bytes), byte
//! strings are length-prefixed, and decoding slices one `Bytes` per record,
//! so payloads and topics are not copied again.
//!
//! Keys sort the way the store reads them: queue keys are the client id
//! (length-prefixed, so one client's keys are one contiguous range) then
//! the sequence number big-endian, so a prefix scan returns the queue in
//! order.

use std::num::{NonZeroU16, NonZeroU32};

use aviary_protocol::{
    ByteString, MessageProperties, ProtocolVersion, QoS, RetainHandling, SubscriptionOptions,
};
use bytes::Bytes;

use super::{
    DeliveryState, MessageId, QueueEntry, SessionRecord, StoredMessage, StoredSubscription,
    StoredWill,
};

mod exchange;
mod keys;
pub(crate) use exchange::*;
pub(crate) use keys::*;

/// The version byte every record value starts with.
const RECORD_VERSION: u8 = 1;

/// Why a record did not decode. Static text: the store adds the path and
/// the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecodeError(pub(crate) &'static str);

/// Reads a record value front to back.
struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    /// Starts at the record version byte, which must be one we know.
    fn new(buf: Bytes) -> Result<Self, DecodeError> {
        let mut r = Self { buf, pos: 0 };
        match r.u8()? {
            RECORD_VERSION => Ok(r),
            _ => Err(DecodeError("unknown record version")),
        }
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(DecodeError("record ends early"))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError("varint longer than 10 bytes"))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        u32::try_from(self.varint()?).map_err(|_| DecodeError("integer out of range"))
    }

    fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        let len = usize::try_from(self.varint()?).map_err(|_| DecodeError("length overflow"))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.buf.len())
            .ok_or(DecodeError("length past the end of the record"))?;
        let b = self.buf.slice(self.pos..end);
        self.pos = end;
        Ok(b)
    }

    fn string(&mut self) -> Result<ByteString, DecodeError> {
        ByteString::try_from(self.bytes()?).map_err(|_| DecodeError("string is not UTF-8"))
    }

    /// Every byte must have been read: trailing bytes mean a mismatch.
    fn finish(self) -> Result<(), DecodeError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(DecodeError("trailing bytes after the record"))
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn qos_bits(b: u8) -> Result<QoS, DecodeError> {
    QoS::from_bits(b & 0b11, "").map_err(|_| DecodeError("QoS 3"))
}

// Property presence bits of a message.
const P_FORMAT: u8 = 1;
const P_FORMAT_UTF8: u8 = 1 << 1;
const P_EXPIRY: u8 = 1 << 2;
const P_CONTENT_TYPE: u8 = 1 << 3;
const P_RESPONSE_TOPIC: u8 = 1 << 4;
const P_CORRELATION: u8 = 1 << 5;
const P_USER: u8 = 1 << 6;

fn put_properties(out: &mut Vec<u8>, p: &MessageProperties) {
    let mut mask = 0;
    for (on, bit) in [
        (p.payload_format_indicator.is_some(), P_FORMAT),
        (p.payload_format_indicator == Some(true), P_FORMAT_UTF8),
        (p.message_expiry_interval.is_some(), P_EXPIRY),
        (p.content_type.is_some(), P_CONTENT_TYPE),
        (p.response_topic.is_some(), P_RESPONSE_TOPIC),
        (p.correlation_data.is_some(), P_CORRELATION),
        (!p.user_properties.is_empty(), P_USER),
    ] {
        mask |= if on { bit } else { 0 };
    }
    out.push(mask);
    if let Some(secs) = p.message_expiry_interval {
        put_varint(out, u64::from(secs));
    }
    for s in [&p.content_type, &p.response_topic].into_iter().flatten() {
        put_bytes(out, s.as_bytes());
    }
    if let Some(c) = &p.correlation_data {
        put_bytes(out, c);
    }
    if !p.user_properties.is_empty() {
        put_varint(out, p.user_properties.len() as u64);
        for (k, v) in &p.user_properties {
            put_bytes(out, k.as_bytes());
            put_bytes(out, v.as_bytes());
        }
    }
}

fn read_properties(r: &mut Reader) -> Result<MessageProperties, DecodeError> {
    let mask = r.u8()?;
    if mask & 0x80 != 0 {
        return Err(DecodeError("unknown message property bit"));
    }
    let on = |bit| mask & bit != 0;
    let mut p = MessageProperties {
        payload_format_indicator: on(P_FORMAT).then_some(on(P_FORMAT_UTF8)),
        ..MessageProperties::default()
    };
    if on(P_EXPIRY) {
        p.message_expiry_interval = Some(r.u32()?);
    }
    if on(P_CONTENT_TYPE) {
        p.content_type = Some(r.string()?);
    }
    if on(P_RESPONSE_TOPIC) {
        p.response_topic = Some(r.string()?);
    }
    if on(P_CORRELATION) {
        p.correlation_data = Some(r.bytes()?);
    }
    if on(P_USER) {
        let n = r.varint()?;
        for _ in 0..n {
            p.user_properties.push((r.string()?, r.string()?));
        }
    }
    Ok(p)
}

// Flag bits of a message.
const M_RETAIN: u8 = 1 << 2;
const M_EXPIRES: u8 = 1 << 3;
const M_STREAM_SEQ: u8 = 1 << 4;

/// A message without the version byte: also nested in a session's will.
fn put_message_body(out: &mut Vec<u8>, m: &StoredMessage) {
    let mut flags = m.qos as u8;
    flags |= if m.retain { M_RETAIN } else { 0 };
    flags |= if m.expires_at_unix_ms.is_some() {
        M_EXPIRES
    } else {
        0
    };
    flags |= if m.stream_seq.is_some() {
        M_STREAM_SEQ
    } else {
        0
    };
    out.push(flags);
    if let Some(at) = m.expires_at_unix_ms {
        put_varint(out, at);
    }
    if let Some(seq) = m.stream_seq {
        put_varint(out, seq);
    }
    put_bytes(out, m.topic.as_bytes());
    put_properties(out, &m.properties);
    put_bytes(out, &m.payload);
}

fn read_message_body(r: &mut Reader) -> Result<StoredMessage, DecodeError> {
    let flags = r.u8()?;
    if flags & !(0b11 | M_RETAIN | M_EXPIRES | M_STREAM_SEQ) != 0 {
        return Err(DecodeError("unknown message flag"));
    }
    let expires_at_unix_ms = if flags & M_EXPIRES != 0 {
        Some(r.varint()?)
    } else {
        None
    };
    let stream_seq = if flags & M_STREAM_SEQ != 0 {
        Some(r.varint()?)
    } else {
        None
    };
    Ok(StoredMessage {
        qos: qos_bits(flags)?,
        retain: flags & M_RETAIN != 0,
        expires_at_unix_ms,
        stream_seq,
        topic: r.string()?,
        properties: read_properties(r)?,
        payload: r.bytes()?,
    })
}

/// Encodes a stored or retained message.
pub(crate) fn encode_message(m: &StoredMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + m.topic.len() + m.payload.len());
    out.push(RECORD_VERSION);
    put_message_body(&mut out, m);
    out
}

/// Decodes what [`encode_message`] wrote.
pub(crate) fn decode_message(buf: Bytes) -> Result<StoredMessage, DecodeError> {
    let mut r = Reader::new(buf)?;
    let m = read_message_body(&mut r)?;
    r.finish()?;
    Ok(m)
}

// Flag bits of a session record.
const S_DISCONNECTED: u8 = 1;
const S_WILL: u8 = 1 << 1;
const S_WILL_DUE: u8 = 1 << 2;
const S_USERNAME: u8 = 1 << 3;

/// The subscription options byte, laid out as in an MQTT 5 SUBSCRIBE.
fn options_byte(o: SubscriptionOptions) -> u8 {
    o.qos as u8
        | u8::from(o.no_local) << 2
        | u8::from(o.retain_as_published) << 3
        | (o.retain_handling as u8) << 4
}

fn read_options(b: u8) -> Result<SubscriptionOptions, DecodeError> {
    let retain_handling = match (b >> 4) & 0b11 {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendIfNew,
        2 => RetainHandling::DoNotSend,
        _ => return Err(DecodeError("retain handling 3")),
    };
    if b & 0b1100_0000 != 0 {
        return Err(DecodeError("unknown subscription option bit"));
    }
    Ok(SubscriptionOptions {
        qos: qos_bits(b)?,
        no_local: b & 0b0100 != 0,
        retain_as_published: b & 0b1000 != 0,
        retain_handling,
    })
}

/// Encodes a session record.
pub(crate) fn encode_session(s: &SessionRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + s.client_id.len());
    out.push(RECORD_VERSION);
    put_bytes(&mut out, s.client_id.as_bytes());
    out.push(s.protocol.level());
    put_varint(&mut out, u64::from(s.expiry_secs));
    let mut flags = 0;
    flags |= if s.disconnected_at_unix_ms.is_some() {
        S_DISCONNECTED
    } else {
        0
    };
    flags |= if s.will.is_some() { S_WILL } else { 0 };
    flags |= if s.will_due_at_unix_ms.is_some() {
        S_WILL_DUE
    } else {
        0
    };
    flags |= if s.username.is_some() { S_USERNAME } else { 0 };
    out.push(flags);
    for at in [s.disconnected_at_unix_ms, s.will_due_at_unix_ms]
        .into_iter()
        .flatten()
    {
        put_varint(&mut out, at);
    }
    put_varint(&mut out, s.subscriptions.len() as u64);
    for sub in &s.subscriptions {
        put_bytes(&mut out, sub.filter.as_bytes());
        out.push(options_byte(sub.options));
        put_varint(&mut out, sub.identifier.map_or(0, |i| u64::from(i.get())));
    }
    if let Some(will) = &s.will {
        put_varint(&mut out, u64::from(will.delay_secs));
        put_message_body(&mut out, &will.message);
    }
    if let Some(user) = &s.username {
        put_bytes(&mut out, user.as_bytes());
    }
    out
}

/// Decodes what [`encode_session`] wrote.
pub(crate) fn decode_session(buf: Bytes) -> Result<SessionRecord, DecodeError> {
    let mut r = Reader::new(buf)?;
    let client_id = r.string()?;
    let protocol =
        ProtocolVersion::from_level(r.u8()?).ok_or(DecodeError("unknown protocol level"))?;
    let expiry_secs = r.u32()?;
    let flags = r.u8()?;
    if flags & !(S_DISCONNECTED | S_WILL | S_WILL_DUE | S_USERNAME) != 0 {
        return Err(DecodeError("unknown session flag"));
    }
    let disconnected_at_unix_ms = (flags & S_DISCONNECTED != 0)
        .then(|| r.varint())
        .transpose()?;
    let will_due_at_unix_ms = (flags & S_WILL_DUE != 0).then(|| r.varint()).transpose()?;
    let count = r.varint()?;
    let mut subscriptions = Vec::new();
    for _ in 0..count {
        subscriptions.push(StoredSubscription {
            filter: r.string()?,
            options: read_options(r.u8()?)?,
            identifier: NonZeroU32::new(r.u32()?),
        });
    }
    let will = if flags & S_WILL != 0 {
        let delay_secs = r.u32()?;
        Some(StoredWill {
            delay_secs,
            message: read_message_body(&mut r)?,
        })
    } else {
        None
    };
    let username = (flags & S_USERNAME != 0).then(|| r.string()).transpose()?;
    r.finish()?;
    Ok(SessionRecord {
        client_id,
        protocol,
        expiry_secs,
        disconnected_at_unix_ms,
        subscriptions,
        will,
        will_due_at_unix_ms,
        username,
    })
}

// Flag bits of a queue entry: QoS in bits 0-1, then these.
const Q_RETAIN: u8 = 1 << 2;
const Q_SENT: u8 = 1 << 3;
const Q_RELEASED: u8 = 2 << 3;
/// The entry carries its message, after the subscription ids (format version 2).
const Q_INLINE: u8 = 1 << 5;

/// Encodes a queue entry: about 5 bytes for the common case, plus the message when the entry
/// carries it.
pub(crate) fn encode_queue_entry(e: &QueueEntry) -> Vec<u8> {
    let carried = e
        .inline
        .as_ref()
        .map_or(0, |m| 16 + m.topic.len() + m.payload.len());
    let mut out = Vec::with_capacity(8 + 4 * e.subscription_ids.len() + carried);
    out.push(RECORD_VERSION);
    put_varint(&mut out, e.message.0);
    let (state, packet_id) = match e.state {
        DeliveryState::Queued => (0, None),
        DeliveryState::Sent { packet_id } => (Q_SENT, Some(packet_id)),
        DeliveryState::Released { packet_id } => (Q_RELEASED, Some(packet_id)),
    };
    let inline = if e.inline.is_some() { Q_INLINE } else { 0 };
    out.push(e.qos as u8 | if e.retain { Q_RETAIN } else { 0 } | state | inline);
    if let Some(id) = packet_id {
        out.extend_from_slice(&id.get().to_be_bytes());
    }
    put_varint(&mut out, e.subscription_ids.len() as u64);
    for id in &e.subscription_ids {
        put_varint(&mut out, u64::from(id.get()));
    }
    if let Some(m) = &e.inline {
        put_message_body(&mut out, m);
    }
    out
}

/// Decodes what [`encode_queue_entry`] wrote.
pub(crate) fn decode_queue_entry(buf: Bytes) -> Result<QueueEntry, DecodeError> {
    let mut r = Reader::new(buf)?;
    let message = MessageId(r.varint()?);
    let flags = r.u8()?;
    let mut packet_id = || {
        let id = u16::from_be_bytes([r.u8()?, r.u8()?]);
        NonZeroU16::new(id).ok_or(DecodeError("packet id 0"))
    };
    let state = match flags & !(0b11 | Q_RETAIN | Q_INLINE) {
        0 => DeliveryState::Queued,
        Q_SENT => DeliveryState::Sent {
            packet_id: packet_id()?,
        },
        Q_RELEASED => DeliveryState::Released {
            packet_id: packet_id()?,
        },
        _ => return Err(DecodeError("unknown queue entry flag")),
    };
    let count = r.varint()?;
    let mut subscription_ids = Vec::new();
    for _ in 0..count {
        let id = NonZeroU32::new(r.u32()?).ok_or(DecodeError("subscription identifier 0"))?;
        subscription_ids.push(id);
    }
    let inline = (flags & Q_INLINE != 0)
        .then(|| read_message_body(&mut r).map(Box::new))
        .transpose()?;
    r.finish()?;
    Ok(QueueEntry {
        message,
        inline,
        qos: qos_bits(flags)?,
        retain: flags & Q_RETAIN != 0,
        subscription_ids,
        state,
    })
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
