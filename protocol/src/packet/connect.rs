//! CONNECT (section 3.1) and CONNACK (section 3.2).

#[cfg(feature = "server")]
use alloc::string::ToString;
use bytes::Bytes;
use bytestring::ByteString;

use crate::properties::{ConnAckProperties, ConnectProperties, PropertyBlock, WillProperties};
#[cfg(feature = "client")]
use crate::reason::allowed;
use crate::wire::{Reader, Sink};
use crate::{DecodeError, EncodeError, PacketType, ProtocolVersion, QoS, ReasonCode, TopicName};

/// The first packet a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// Protocol version the client speaks; it fixes the version of the connection.
    pub protocol: ProtocolVersion,
    /// Clean Session (3.x) / Clean Start (5.0).
    pub clean_start: bool,
    /// Keep alive in seconds; 0 turns it off.
    pub keep_alive: u16,
    /// Client identifier; may be empty, asking the server to assign one.
    pub client_id: ByteString,
    /// The will, published when the connection ends abnormally.
    pub will: Option<LastWill>,
    /// User name.
    pub username: Option<ByteString>,
    /// Password (binary data).
    pub password: Option<Bytes>,
    /// MQTT 5 properties.
    pub properties: ConnectProperties,
}

/// The will: an application message the server publishes for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    /// Where to publish it.
    pub topic: TopicName,
    /// What to publish.
    pub payload: Bytes,
    /// With which QoS.
    pub qos: QoS,
    /// Whether to retain it.
    pub retain: bool,
    /// MQTT 5 will properties.
    pub properties: WillProperties,
}

impl Connect {
    /// A CONNECT with the given version and client id, clean start, a
    /// 60 s keep alive and nothing else.
    pub fn new(protocol: ProtocolVersion, client_id: impl Into<ByteString>) -> Self {
        Self {
            protocol,
            clean_start: true,
            keep_alive: 60,
            client_id: client_id.into(),
            will: None,
            username: None,
            password: None,
            properties: ConnectProperties::default(),
        }
    }

    #[cfg(feature = "server")]
    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let name = r.string("protocol name")?;
        let level = r.u8("protocol level")?;
        let protocol = match (&*name, level) {
            ("MQTT", 4) => ProtocolVersion::V3_1_1,
            ("MQTT", 5) => ProtocolVersion::V5,
            ("MQIsdp", 3) => ProtocolVersion::V3_1,
            ("MQTT" | "MQIsdp", level) => return Err(DecodeError::UnsupportedProtocolLevel(level)),
            _ => return Err(DecodeError::InvalidProtocolName(name.to_string())),
        };
        let flags = r.u8("connect flags")?;
        if flags & 0x01 != 0 {
            return Err(DecodeError::Malformed(crate::error::text(
                "reserved connect flag is set [MQTT-3.1.2-3]",
            )));
        }
        let will_flag = flags & 0x04 != 0;
        let will_qos = QoS::from_bits((flags >> 3) & 0b11, "in the will [MQTT-3.1.2-12]")?;
        let will_retain = flags & 0x20 != 0;
        let has_password = flags & 0x40 != 0;
        let has_username = flags & 0x80 != 0;
        if !will_flag && will_qos != QoS::AtMostOnce {
            return Err(DecodeError::Malformed(crate::error::text(
                "will QoS without will flag [MQTT-3.1.2-11]",
            )));
        }
        if !will_flag && will_retain {
            return Err(DecodeError::Malformed(crate::error::text(
                "will retain without will flag [MQTT-3.1.2-13]",
            )));
        }
        if !protocol.is_v5() && has_password && !has_username {
            return Err(DecodeError::Malformed(crate::error::text(
                "password flag without user name flag [MQTT-3.1.2-22]",
            )));
        }
        let keep_alive = r.u16("keep alive")?;
        let properties = if protocol.is_v5() {
            ConnectProperties::read(r)?
        } else {
            ConnectProperties::default()
        };
        let client_id = r.string("client identifier")?;
        let will = if will_flag {
            let properties = if protocol.is_v5() {
                WillProperties::read(r)?
            } else {
                WillProperties::default()
            };
            let topic = TopicName::new(r.string("will topic")?)?;
            let payload = r.binary("will payload")?;
            Some(LastWill {
                topic,
                payload,
                qos: will_qos,
                retain: will_retain,
                properties,
            })
        } else {
            None
        };
        let username = has_username.then(|| r.string("user name")).transpose()?;
        let password = has_password.then(|| r.binary("password")).transpose()?;
        Ok(Self {
            protocol,
            clean_start: flags & 0x02 != 0,
            keep_alive,
            client_id,
            will,
            username,
            password,
            properties,
        })
    }

    #[cfg(feature = "client")]
    pub(crate) fn write<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        let v5 = self.protocol.is_v5();
        if !v5 && self.password.is_some() && self.username.is_none() {
            return Err(EncodeError::Invalid(
                "MQTT 3.x needs a user name to send a password",
            ));
        }
        s.put_string(self.protocol.protocol_name())?;
        s.put_u8(self.protocol.level());
        let mut flags = u8::from(self.clean_start) << 1;
        if let Some(will) = &self.will {
            flags |= 0x04 | (will.qos as u8) << 3 | u8::from(will.retain) << 5;
        }
        flags |= u8::from(self.password.is_some()) << 6;
        flags |= u8::from(self.username.is_some()) << 7;
        s.put_u8(flags);
        s.put_u16(self.keep_alive);
        if v5 {
            self.properties.write_block(s)?;
        }
        s.put_string(&self.client_id)?;
        if let Some(will) = &self.will {
            if v5 {
                will.properties.write_block(s)?;
            }
            s.put_string(will.topic.as_str())?;
            s.put_binary(&will.payload)?;
        }
        if let Some(username) = &self.username {
            s.put_string(username)?;
        }
        if let Some(password) = &self.password {
            s.put_binary(password)?;
        }
        Ok(())
    }
}

/// The server's answer to CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// Whether the server resumed a stored session.
    pub session_present: bool,
    /// The result. 3.x return codes are mapped to these (see [`ReasonCode::to_v3_connack`]).
    pub reason_code: ReasonCode,
    /// MQTT 5 properties.
    pub properties: ConnAckProperties,
}

impl ConnAck {
    /// A CONNACK with this result and no properties.
    pub fn new(reason_code: ReasonCode, session_present: bool) -> Self {
        Self {
            session_present,
            reason_code,
            properties: ConnAckProperties::default(),
        }
    }

    #[cfg(feature = "client")]
    pub(crate) fn read(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let flags = r.u8("acknowledge flags")?;
        if flags & 0xFE != 0 {
            return Err(DecodeError::Malformed(crate::error::text(
                "reserved CONNACK flags are set [MQTT-3.2.2-1]",
            )));
        }
        let code = r.u8("reason code")?;
        let reason_code = if version.is_v5() {
            check_reason(code, allowed::CONNACK, PacketType::ConnAck)?
        } else {
            ReasonCode::from_v3_connack(code).ok_or(DecodeError::InvalidReasonCode {
                code,
                packet: PacketType::ConnAck,
            })?
        };
        // MQTT 3.1 has no session present flag: the byte is reserved and
        // "not used" (3.1 section 3.2), so bit 0 means nothing there.
        let session_present = flags & 0x01 != 0 && version != ProtocolVersion::V3_1;
        if session_present && reason_code.is_error() {
            return Err(DecodeError::Protocol(crate::error::text(
                "session present with an error code [MQTT-3.2.2-6]",
            )));
        }
        let properties = if version.is_v5() {
            ConnAckProperties::read(r)?
        } else {
            ConnAckProperties::default()
        };
        Ok(Self {
            session_present,
            reason_code,
            properties,
        })
    }

    #[cfg(feature = "server")]
    pub(crate) fn write<S: Sink + ?Sized>(
        &self,
        v: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        // MQTT 3.1 has no session present flag; the byte is reserved.
        s.put_u8(u8::from(self.session_present && v != ProtocolVersion::V3_1));
        if v.is_v5() {
            s.put_u8(self.reason_code.value());
            self.properties.write_block(s)
        } else {
            s.put_u8(self.reason_code.to_v3_connack());
            Ok(())
        }
    }
}

/// Checks a received reason code against those the packet may carry. A byte loop, not
/// `contains`, which is memchr for bytes: the browser client's package then links no memchr.
#[allow(clippy::manual_contains)] // on purpose, as said above
pub(crate) fn check_reason(
    code: u8,
    allowed: &[u8],
    packet: PacketType,
) -> Result<ReasonCode, DecodeError> {
    match ReasonCode::from_u8(code) {
        Some(rc) if allowed.iter().any(|&a| a == code) => Ok(rc),
        _ => Err(DecodeError::InvalidReasonCode { code, packet }),
    }
}
