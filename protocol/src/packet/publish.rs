//! PUBLISH (section 3.3) and its four acknowledgements, PUBACK, PUBREC,
//! PUBREL and PUBCOMP, which share one layout and one decoder.

use core::num::NonZeroU16;

use bytes::Bytes;
use bytestring::ByteString;

use super::connect::check_reason;
use crate::properties::{AckProperties, PropertyBlock, PublishProperties};
use crate::reason::allowed;
use crate::wire::{Reader, Sink};
use crate::{
    topic, DecodeError, EncodeError, PacketType, ProtocolVersion, QoS, ReasonCode, TopicError,
};

/// An application message on its way from a client to the server or back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Re-delivery of an earlier attempt.
    pub dup: bool,
    /// Quality of service.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// Topic name. Validated on decode; empty only in MQTT 5 with a topic alias.
    pub topic: ByteString,
    /// Packet identifier, present exactly when `qos` is 1 or 2.
    pub packet_id: Option<NonZeroU16>,
    /// MQTT 5 properties.
    pub properties: PublishProperties,
    /// The application message, shared with the receive buffer.
    pub payload: Bytes,
}

impl Publish {
    /// A QoS 0 message with no properties.
    pub fn new(topic: impl Into<ByteString>, payload: impl Into<Bytes>) -> Self {
        Self {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: topic.into(),
            packet_id: None,
            properties: PublishProperties::default(),
            payload: payload.into(),
        }
    }

    pub(crate) fn flags(&self) -> u8 {
        u8::from(self.dup) << 3 | (self.qos as u8) << 1 | u8::from(self.retain)
    }

    pub(crate) fn read(
        flags: u8,
        r: &mut Reader,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let qos = QoS::from_bits((flags >> 1) & 0b11, "in PUBLISH [MQTT-3.3.1-4]")?;
        let dup = flags & 0x08 != 0;
        if dup && qos == QoS::AtMostOnce {
            return Err(DecodeError::Malformed(crate::error::text(
                "DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2]",
            )));
        }
        let topic = r.string("topic name")?;
        let packet_id = if qos == QoS::AtMostOnce {
            None
        } else {
            Some(r.packet_id()?)
        };
        let properties = if version.is_v5() {
            PublishProperties::read(r)?
        } else {
            PublishProperties::default()
        };
        if topic.is_empty() {
            // An empty topic is how MQTT 5 uses an established alias [MQTT-3.3.2-8].
            if properties.topic_alias.is_none() {
                return Err(TopicError::Empty.into());
            }
        } else {
            topic::validate_topic_name(&topic)?;
        }
        Ok(Self {
            dup,
            qos,
            retain: flags & 0x01 != 0,
            topic,
            packet_id,
            properties,
            payload: r.rest(),
        })
    }

    pub(crate) fn write<S: Sink + ?Sized>(
        &self,
        v: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        self.write_head(v, s)?;
        s.put_slice(&self.payload);
        Ok(())
    }

    /// The variable header: everything of the body before the payload.
    pub(crate) fn write_head<S: Sink + ?Sized>(
        &self,
        v: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        s.put_string(&self.topic)?;
        match (self.qos, self.packet_id) {
            (QoS::AtMostOnce, None) => {}
            (QoS::AtMostOnce, Some(_)) => {
                return Err(EncodeError::Invalid(
                    "QoS 0 PUBLISH with a packet identifier",
                ))
            }
            (_, Some(id)) => s.put_u16(id.get()),
            (_, None) => {
                return Err(EncodeError::Invalid(
                    "QoS 1/2 PUBLISH without a packet identifier",
                ))
            }
        }
        if v.is_v5() {
            self.properties.write_block(s)?;
        }
        Ok(())
    }
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP: which one is given by the
/// [`Packet`](crate::Packet) variant that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The packet identifier being acknowledged.
    pub packet_id: NonZeroU16,
    /// MQTT 5 reason; always success in 3.x.
    pub reason_code: ReasonCode,
    /// MQTT 5 properties.
    pub properties: AckProperties,
}

impl Ack {
    /// A successful acknowledgement of `packet_id`.
    pub fn new(packet_id: NonZeroU16) -> Self {
        Self::with_reason(packet_id, ReasonCode::SUCCESS)
    }

    /// An acknowledgement with a reason code.
    pub fn with_reason(packet_id: NonZeroU16, reason_code: ReasonCode) -> Self {
        Self {
            packet_id,
            reason_code,
            properties: AckProperties::default(),
        }
    }

    pub(crate) fn read(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet = r.packet();
        let packet_id = r.packet_id()?;
        let mut ack = Self::new(packet_id);
        // MQTT 5 lets the reason code and the properties be omitted when
        // they are "success" and empty [MQTT-3.4.2-1].
        if version.is_v5() && !r.is_empty() {
            let allowed = match packet {
                PacketType::PubRel | PacketType::PubComp => allowed::PUBREL,
                _ => allowed::PUBACK,
            };
            ack.reason_code = check_reason(r.u8("reason code")?, allowed, packet)?;
            if !r.is_empty() {
                ack.properties = AckProperties::read(r)?;
            }
        }
        Ok(ack)
    }

    pub(crate) fn write<S: Sink + ?Sized>(
        &self,
        v: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        s.put_u16(self.packet_id.get());
        if v.is_v5() && (self.reason_code != ReasonCode::SUCCESS || !self.properties.is_empty()) {
            s.put_u8(self.reason_code.value());
            if !self.properties.is_empty() {
                self.properties.write_block(s)?;
            }
        }
        Ok(())
    }
}
