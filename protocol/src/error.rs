//! Decode and encode errors. Each decode error names the rule of the
//! specification it enforces, so a log line tells an operator exactly what a
//! misbehaving client did, and maps to the MQTT 5 reason code to send back.

use crate::text::{concat, with_number};
use crate::{PacketType, ProtocolVersion, ReasonCode, TopicError};
use alloc::string::String;

/// A decode error's text (a field name, the rule it cites), or `""` with the `terse-errors`
/// feature: a client that discards decode errors (the browser package) then carries none of
/// these strings. Every construction of an error with such a text goes through here.
pub(crate) const fn text(t: &'static str) -> &'static str {
    if cfg!(feature = "terse-errors") {
        ""
    } else {
        t
    }
}

/// Why bytes received from a peer are not a valid packet.
///
/// Every variant closes the connection; [`DecodeError::reason_code`] says
/// which reason an MQTT 5 peer should get in the DISCONNECT (or CONNACK).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The fixed header announces more bytes than the receiver accepts.
    #[error(
        "packet of {size} bytes exceeds the maximum packet size of {max} bytes [MQTT-3.1.2-24]"
    )]
    PacketTooLarge {
        /// Size of the whole packet, fixed header included.
        size: usize,
        /// The limit in force.
        max: u32,
    },
    /// A variable byte integer longer than four bytes.
    #[error("malformed variable byte integer: more than 4 bytes [MQTT-1.5.5-1]")]
    MalformedVarInt,
    /// Packet type 0 (or 15 before MQTT 5) is reserved.
    #[error("reserved packet type {0} [MQTT-2.1.2]")]
    ReservedPacketType(u8),
    /// Fixed header flags that the packet type reserves.
    #[error("invalid fixed header flags {flags:#06b} for {packet} [MQTT-2.1.3-1]")]
    InvalidFlags {
        /// The packet whose flags are wrong.
        packet: PacketType,
        /// The low nibble received.
        flags: u8,
    },
    /// A packet that does not exist in the connection's protocol version.
    #[error("{packet} does not exist in MQTT {version}")]
    PacketNotInVersion {
        /// The packet received.
        packet: PacketType,
        /// The connection's version.
        version: ProtocolVersion,
    },
    /// A packet that only the other side of a connection receives, which this build of the
    /// codec does not decode (see [`PacketType::is_decoded`]): a server sending SUBSCRIBE to
    /// a client, say.
    #[error("{0} is not decoded by this side of a connection")]
    NotReceived(PacketType),
    /// CONNECT with a protocol name other than `MQTT` or `MQIsdp`.
    #[error("unknown protocol name {0:?} [MQTT-3.1.2-1]")]
    InvalidProtocolName(String),
    /// CONNECT with a protocol level this server does not speak; the server
    /// answers CONNACK 0x01 / 0x84 before closing [MQTT-3.1.2-2].
    #[error("unsupported protocol level {0} [MQTT-3.1.2-2]")]
    UnsupportedProtocolLevel(u8),
    /// QoS 3 in a PUBLISH, a will or a subscription.
    #[error("QoS 3 is not a valid QoS {0}")]
    InvalidQoS(&'static str),
    /// A packet identifier of zero where one is required.
    #[error("packet identifier 0 [MQTT-2.2.1-3]")]
    ZeroPacketId,
    /// A string field that is not well-formed UTF-8.
    #[error("string is not valid UTF-8 [MQTT-1.5.4-1]")]
    InvalidUtf8,
    /// A string field containing U+0000.
    #[error("string contains the null character U+0000 [MQTT-1.5.4-2]")]
    NullCharacter,
    /// A bad topic name or filter.
    #[error("{0}")]
    Topic(#[from] TopicError),
    /// A property not allowed in this packet.
    #[error("property {property:#04x} is not allowed in {packet} [MQTT-2.2.2-2]")]
    MisplacedProperty {
        /// The property identifier.
        property: u8,
        /// The packet it appeared in.
        packet: PacketType,
    },
    /// A property that may appear once appeared twice.
    #[error("property {property:#04x} appears more than once in {packet} [MQTT-2.2.2-2]")]
    DuplicateProperty {
        /// The property identifier.
        property: u8,
        /// The packet it appeared in.
        packet: PacketType,
    },
    /// A reason code the packet may not carry.
    #[error("reason code {code:#04x} is not valid in {packet} [MQTT-2.4]")]
    InvalidReasonCode {
        /// The byte received.
        code: u8,
        /// The packet it appeared in.
        packet: PacketType,
    },
    /// The packet ended before a field it announced.
    #[error("{packet} is truncated: {field} is missing [MQTT-1.5]")]
    Truncated {
        /// The packet being decoded.
        packet: PacketType,
        /// The missing field.
        field: &'static str,
    },
    /// Bytes left over after the last field of a packet.
    #[error("{0} has {1} unexpected trailing bytes")]
    TrailingBytes(PacketType, usize),
    /// Any other malformed packet; the text cites the rule.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// A well-formed packet that breaks a protocol rule; the text cites it.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
}

impl DecodeError {
    /// The MQTT 5 reason code to report this error with.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            Self::PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            Self::UnsupportedProtocolLevel(_) | Self::InvalidProtocolName(_) => {
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
            }
            Self::Topic(TopicError::InvalidShareName | TopicError::EmptySharedFilter) => {
                ReasonCode::TOPIC_FILTER_INVALID
            }
            Self::Protocol(_)
            | Self::DuplicateProperty { .. }
            | Self::MisplacedProperty { .. }
            | Self::PacketNotInVersion { .. }
            | Self::NotReceived(_) => ReasonCode::PROTOCOL_ERROR,
            _ => ReasonCode::MALFORMED_PACKET,
        }
    }
}

/// Why a packet could not be encoded. The packet model allows values the
/// wire format cannot carry (a string over 64 KiB, say); encoding checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A string or binary field longer than 65,535 bytes.
    #[error("a string or binary field of {0} bytes exceeds 65,535 bytes [MQTT-1.5.4-1]")]
    FieldTooLong(usize),
    /// A variable byte integer above 268,435,455.
    #[error("{0} does not fit a variable byte integer [MQTT-1.5.5]")]
    VarIntTooLarge(usize),
    /// A packet this protocol version does not have (AUTH before MQTT 5).
    #[error("{packet} does not exist in MQTT {version}")]
    PacketNotInVersion {
        /// The packet type.
        packet: PacketType,
        /// The version asked for.
        version: ProtocolVersion,
    },
    /// A packet that only the other side of a connection sends, which this build of the codec
    /// does not encode (see [`PacketType::is_encoded`]).
    #[error("{0} is not encoded by this side of a connection")]
    NotSent(PacketType),
    /// A field combination the specification forbids.
    #[error("invalid packet: {0}")]
    Invalid(&'static str),
}

impl EncodeError {
    /// The same text as `Display`, put together without `core::fmt`: the browser client shows
    /// it, and its package would pay for the formatting machinery (see `text.rs`).
    pub fn message(&self) -> String {
        match self {
            Self::FieldTooLong(n) => with_number(
                "a string or binary field of ",
                *n,
                " bytes exceeds 65,535 bytes [MQTT-1.5.4-1]",
            ),
            Self::VarIntTooLarge(n) => {
                with_number("", *n, " does not fit a variable byte integer [MQTT-1.5.5]")
            }
            Self::PacketNotInVersion { packet, version } => {
                concat(&[packet.name(), " does not exist in MQTT ", version.name()])
            }
            Self::NotSent(packet) => concat(&[
                packet.name(),
                " is not encoded by this side of a connection",
            ]),
            Self::Invalid(what) => concat(&["invalid packet: ", what]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_error_messages_are_their_display() {
        for e in [
            EncodeError::FieldTooLong(70_000),
            EncodeError::VarIntTooLarge(268_435_456),
            EncodeError::PacketNotInVersion {
                packet: PacketType::Auth,
                version: ProtocolVersion::V3_1_1,
            },
            EncodeError::NotSent(PacketType::ConnAck),
            EncodeError::Invalid("MQTT 3.x needs a user name to send a password"),
        ] {
            assert_eq!(e.message(), e.to_string());
        }
    }
}
