//! MQTT 5 properties (section 2.2.2): one struct per packet kind, decoded by
//! one loop that rejects properties the packet may not carry and properties
//! given twice, and written through the same `Sink` as the packets, so the
//! lengths are exact.

use core::num::{NonZeroU16, NonZeroU32};

use bytes::Bytes;
use bytestring::ByteString;

use crate::wire::{sink, Counter, Reader, Sink};
use crate::{DecodeError, EncodeError, PacketType};

/// A User Property: a name and a value, both UTF-8 strings. They may repeat,
/// and their order is kept [MQTT-3.3.2-18].
pub type UserProperty = (ByteString, ByteString);

/// Property identifiers (section 2.2.2.2, table 2-4).
#[allow(missing_docs)]
pub mod id {
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    pub const CONTENT_TYPE: u8 = 0x03;
    pub const RESPONSE_TOPIC: u8 = 0x08;
    pub const CORRELATION_DATA: u8 = 0x09;
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    pub const SERVER_REFERENCE: u8 = 0x1C;
    pub const REASON_STRING: u8 = 0x1F;
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub const TOPIC_ALIAS: u8 = 0x23;
    pub const MAXIMUM_QOS: u8 = 0x24;
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    pub const USER_PROPERTY: u8 = 0x26;
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

// ---------------------------------------------------------------- decoding

/// Reads a property block (length, then properties) and hands each property
/// identifier to `f`, which reads the value or rejects the property.
///
/// `f` is a `dyn` closure so that this loop is compiled once rather than once per packet
/// kind (the browser client's package was smaller by that much). It costs one indirect call
/// per property, and none for the usual empty block of a PUBLISH.
pub(crate) fn read_block(
    r: &mut Reader,
    f: &mut dyn FnMut(u8, &mut Reader) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let len = r.varint("property length")? as usize;
    let mut block = r.sub(len, "properties")?;
    while !block.is_empty() {
        // Identifiers are variable byte integers, but all defined ones fit one byte.
        let id = block.varint("property identifier")?;
        let id = u8::try_from(id).map_err(|_| {
            DecodeError::Malformed(crate::error::text(
                "unknown property identifier [MQTT-2.2.2]",
            ))
        })?;
        f(id, &mut block)?;
    }
    Ok(())
}

/// Stores a property that may appear at most once.
fn once<T>(slot: &mut Option<T>, v: T, id: u8, packet: PacketType) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::DuplicateProperty {
            property: id,
            packet,
        });
    }
    *slot = Some(v);
    Ok(())
}

// One reader per kind of value for the properties that may appear once: each arm of a
// property loop is then a single call, and each kind's reading and duplicate check is compiled
// once instead of at every arm (the browser client's package is smaller for it).

fn u16_once(
    r: &mut Reader,
    slot: &mut Option<u16>,
    id: u8,
    field: &'static str,
) -> Result<(), DecodeError> {
    let v = r.u16(field)?;
    once(slot, v, id, r.packet())
}

fn u32_once(
    r: &mut Reader,
    slot: &mut Option<u32>,
    id: u8,
    field: &'static str,
) -> Result<(), DecodeError> {
    let v = r.u32(field)?;
    once(slot, v, id, r.packet())
}

fn flag_once(
    r: &mut Reader,
    slot: &mut Option<bool>,
    id: u8,
    field: &'static str,
) -> Result<(), DecodeError> {
    let v = flag(r, field)?;
    once(slot, v, id, r.packet())
}

fn string_once(
    r: &mut Reader,
    slot: &mut Option<ByteString>,
    id: u8,
    field: &'static str,
) -> Result<(), DecodeError> {
    let v = r.string(field)?;
    once(slot, v, id, r.packet())
}

fn binary_once(
    r: &mut Reader,
    slot: &mut Option<Bytes>,
    id: u8,
    field: &'static str,
) -> Result<(), DecodeError> {
    let v = r.binary(field)?;
    once(slot, v, id, r.packet())
}

fn misplaced(id: u8, packet: PacketType) -> DecodeError {
    DecodeError::MisplacedProperty {
        property: id,
        packet,
    }
}

fn flag(r: &mut Reader, field: &'static str) -> Result<bool, DecodeError> {
    match r.u8(field)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::Protocol(crate::error::text(
            "a boolean property must be 0 or 1 [MQTT-2.2.2]",
        ))),
    }
}

fn non_zero_u16(
    r: &mut Reader,
    field: &'static str,
    rule: &'static str,
) -> Result<NonZeroU16, DecodeError> {
    NonZeroU16::new(r.u16(field)?).ok_or(DecodeError::Protocol(crate::error::text(rule)))
}

fn user_property(r: &mut Reader) -> Result<UserProperty, DecodeError> {
    Ok((
        r.string("user property name")?,
        r.string("user property value")?,
    ))
}

fn subscription_identifier(r: &mut Reader) -> Result<NonZeroU32, DecodeError> {
    NonZeroU32::new(r.varint("subscription identifier")?).ok_or(DecodeError::Protocol(
        crate::error::text("subscription identifier 0 [MQTT-3.8.2-1]"),
    ))
}

// ---------------------------------------------------------------- encoding

/// A set of properties that can be written as a property block.
pub(crate) trait PropertyBlock {
    fn write_properties<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError>;

    /// True when no property is set: the block is a single zero byte.
    fn is_empty_block(&self) -> bool {
        false
    }

    /// Writes the block: its length, then the properties.
    fn write_block<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        // The common case, and on the publish path: skip the counting pass.
        if self.is_empty_block() {
            s.put_u8(0);
            return Ok(());
        }
        let mut c = Counter::default();
        self.write_properties(sink(&mut c))?;
        s.put_varint(c.0)?;
        self.write_properties(s)
    }
}

fn put_u8<S: Sink + ?Sized>(s: &mut S, id: u8, v: Option<u8>) {
    if let Some(v) = v {
        s.put_u8(id);
        s.put_u8(v);
    }
}

fn put_flag<S: Sink + ?Sized>(s: &mut S, id: u8, v: Option<bool>) {
    put_u8(s, id, v.map(u8::from));
}

fn put_u16<S: Sink + ?Sized>(s: &mut S, id: u8, v: Option<u16>) {
    if let Some(v) = v {
        s.put_u8(id);
        s.put_u16(v);
    }
}

fn put_u32<S: Sink + ?Sized>(s: &mut S, id: u8, v: Option<u32>) {
    if let Some(v) = v {
        s.put_u8(id);
        s.put_u32(v);
    }
}

fn put_str<S: Sink + ?Sized>(s: &mut S, id: u8, v: Option<&ByteString>) -> Result<(), EncodeError> {
    if let Some(v) = v {
        s.put_u8(id);
        s.put_string(v)?;
    }
    Ok(())
}

fn put_bin<S: Sink + ?Sized>(s: &mut S, id: u8, v: Option<&Bytes>) -> Result<(), EncodeError> {
    if let Some(v) = v {
        s.put_u8(id);
        s.put_binary(v)?;
    }
    Ok(())
}

fn put_user<S: Sink + ?Sized>(s: &mut S, props: &[UserProperty]) -> Result<(), EncodeError> {
    for (k, v) in props {
        s.put_u8(id::USER_PROPERTY);
        s.put_string(k)?;
        s.put_string(v)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- the sets

mod ack;
mod connect;
mod message;
mod sparse;

#[cfg(feature = "server")]
pub(crate) use ack::read_user_properties;
pub use ack::{AckProperties, AuthProperties, DisconnectProperties, SubscribeProperties};
pub use connect::{ConnAckProperties, ConnectProperties};
pub use message::{MessageProperties, PublishProperties, PublishPropertiesRef, WillProperties};
pub use sparse::{Empty, Sparse};
