//! Small value types shared by every packet: protocol version, QoS, packet
//! types and subscription options.

use core::fmt;

use crate::DecodeError;

/// The protocol level a connection speaks, fixed by its CONNECT packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3.
    V3_1,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    V3_1_1,
    /// MQTT 5.0: protocol name `MQTT`, level 5.
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte of the CONNECT variable header.
    pub const fn level(self) -> u8 {
        match self {
            Self::V3_1 => 3,
            Self::V3_1_1 => 4,
            Self::V5 => 5,
        }
    }

    /// The protocol name of the CONNECT variable header.
    pub const fn protocol_name(self) -> &'static str {
        match self {
            Self::V3_1 => "MQIsdp",
            Self::V3_1_1 | Self::V5 => "MQTT",
        }
    }

    /// True for MQTT 5.0, the only version with properties and reason codes
    /// on every acknowledgement.
    pub const fn is_v5(self) -> bool {
        matches!(self, Self::V5)
    }

    /// The version for a protocol level byte, if it is one we speak.
    pub const fn from_level(level: u8) -> Option<Self> {
        match level {
            3 => Some(Self::V3_1),
            4 => Some(Self::V3_1_1),
            5 => Some(Self::V5),
            _ => None,
        }
    }
}

impl ProtocolVersion {
    /// The version as people write it: `3.1`, `3.1.1` or `5.0`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::V3_1 => "3.1",
            Self::V3_1_1 => "3.1.1",
            Self::V5 => "5.0",
        }
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Quality of service of a message or a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum QoS {
    /// QoS 0: fire and forget.
    #[default]
    AtMostOnce = 0,
    /// QoS 1: acknowledged by PUBACK, may be duplicated.
    AtLeastOnce = 1,
    /// QoS 2: four-way handshake, delivered exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for its two-bit encoding; 3 is malformed in every version.
    pub fn from_bits(bits: u8, rule: &'static str) -> Result<Self, DecodeError> {
        match bits {
            0 => Ok(Self::AtMostOnce),
            1 => Ok(Self::AtLeastOnce),
            2 => Ok(Self::ExactlyOnce),
            _ => Err(DecodeError::InvalidQoS(crate::error::text(rule))),
        }
    }
}

impl TryFrom<u8> for QoS {
    type Error = DecodeError;
    fn try_from(v: u8) -> Result<Self, DecodeError> {
        Self::from_bits(v, "[MQTT-3.3.1-4]")
    }
}

/// The kind of a control packet: the high nibble of the fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[allow(missing_docs)] // the names are the specification's
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    Auth = 15,
}

impl PacketType {
    /// The packet type for the high nibble of a fixed header byte.
    pub fn from_nibble(n: u8) -> Result<Self, DecodeError> {
        Ok(match n {
            1 => Self::Connect,
            2 => Self::ConnAck,
            3 => Self::Publish,
            4 => Self::PubAck,
            5 => Self::PubRec,
            6 => Self::PubRel,
            7 => Self::PubComp,
            8 => Self::Subscribe,
            9 => Self::SubAck,
            10 => Self::Unsubscribe,
            11 => Self::UnsubAck,
            12 => Self::PingReq,
            13 => Self::PingResp,
            14 => Self::Disconnect,
            15 => Self::Auth,
            _ => return Err(DecodeError::ReservedPacketType(n)),
        })
    }

    /// The fixed header flags every packet but PUBLISH must carry
    /// [MQTT-2.1.3-1]: `0b0010` for PUBREL, SUBSCRIBE and UNSUBSCRIBE.
    pub const fn required_flags(self) -> u8 {
        match self {
            Self::PubRel | Self::Subscribe | Self::Unsubscribe => 0b0010,
            _ => 0,
        }
    }

    /// Whether this build of the codec decodes packets of this type. The cargo features pick
    /// the directions: `client` decodes what a server sends, `server` what a client sends
    /// (`full`, the default, both). PUBLISH, its acknowledgements, DISCONNECT and AUTH go
    /// both ways and always decode.
    pub const fn is_decoded(self) -> bool {
        match self {
            Self::Connect | Self::Subscribe | Self::Unsubscribe | Self::PingReq => {
                cfg!(feature = "server")
            }
            Self::ConnAck | Self::SubAck | Self::UnsubAck | Self::PingResp => {
                cfg!(feature = "client")
            }
            _ => true,
        }
    }

    /// Whether this build of the codec encodes packets of this type: the mirror image of
    /// [`is_decoded`](Self::is_decoded).
    pub const fn is_encoded(self) -> bool {
        match self {
            Self::Connect | Self::Subscribe | Self::Unsubscribe | Self::PingReq => {
                cfg!(feature = "client")
            }
            Self::ConnAck | Self::SubAck | Self::UnsubAck | Self::PingResp => {
                cfg!(feature = "server")
            }
            _ => true,
        }
    }

    /// The specification's upper-case name, as used in log lines.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Connect => "CONNECT",
            Self::ConnAck => "CONNACK",
            Self::Publish => "PUBLISH",
            Self::PubAck => "PUBACK",
            Self::PubRec => "PUBREC",
            Self::PubRel => "PUBREL",
            Self::PubComp => "PUBCOMP",
            Self::Subscribe => "SUBSCRIBE",
            Self::SubAck => "SUBACK",
            Self::Unsubscribe => "UNSUBSCRIBE",
            Self::UnsubAck => "UNSUBACK",
            Self::PingReq => "PINGREQ",
            Self::PingResp => "PINGRESP",
            Self::Disconnect => "DISCONNECT",
            Self::Auth => "AUTH",
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// MQTT 5 Retain Handling subscription option (section 3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum RetainHandling {
    /// Send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe = 0,
    /// Send retained messages only if the subscription did not exist yet.
    SendIfNew = 1,
    /// Never send retained messages for this subscription.
    DoNotSend = 2,
}

/// The options byte that follows each topic filter in a SUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    /// Maximum QoS the subscriber accepts.
    pub qos: QoS,
    /// MQTT 5: do not send the client its own publications.
    pub no_local: bool,
    /// MQTT 5: keep the RETAIN flag as published instead of clearing it.
    pub retain_as_published: bool,
    /// MQTT 5: when to send retained messages.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options with the given QoS and every MQTT 5 option at its default.
    pub const fn qos(qos: QoS) -> Self {
        Self {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        }
    }

    #[cfg(feature = "client")]
    pub(crate) fn to_byte(self, version: ProtocolVersion) -> u8 {
        let mut b = self.qos as u8;
        if version.is_v5() {
            b |= u8::from(self.no_local) << 2;
            b |= u8::from(self.retain_as_published) << 3;
            b |= (self.retain_handling as u8) << 4;
        }
        b
    }

    #[cfg(feature = "server")]
    pub(crate) fn from_byte(b: u8, version: ProtocolVersion) -> Result<Self, DecodeError> {
        if version.is_v5() {
            if b & 0b1100_0000 != 0 {
                return Err(DecodeError::Malformed(crate::error::text(
                    "reserved bits of subscription options set [MQTT-3.8.3-5]",
                )));
            }
        } else if b & 0b1111_1100 != 0 {
            return Err(DecodeError::Malformed(crate::error::text(
                "reserved bits of requested QoS set [MQTT-3.8.3-4]",
            )));
        }
        let retain_handling = match (b >> 4) & 0b11 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            _ => {
                return Err(DecodeError::Protocol(crate::error::text(
                    "retain handling 3 is reserved [MQTT-3.8.3-5]",
                )))
            }
        };
        Ok(Self {
            qos: QoS::from_bits(b & 0b11, "[MQTT-3.8.3-4]")?,
            no_local: b & 0b0100 != 0,
            retain_as_published: b & 0b1000 != 0,
            retain_handling,
        })
    }
}
