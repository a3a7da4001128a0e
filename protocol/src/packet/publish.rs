//! PUBLISH (section 3.3) and its four acknowledgements, PUBACK, PUBREC,
//! PUBREL and PUBCOMP, which share one layout and one decoder.

use core::num::NonZeroU16;

use bytes::Bytes;
use bytestring::ByteString;

use super::connect::check_reason;
#[cfg(feature = "server")]
use bytes::BytesMut;

use crate::properties::{AckProperties, PropertyBlock, PublishProperties, PublishPropertiesRef};
use crate::reason::allowed;
#[cfg(feature = "server")]
use crate::wire::{varint_len, Counter, MAX_VARINT};
use crate::wire::{Reader, Sink};
use crate::{DecodeError, EncodeError, PacketType, ProtocolVersion, QoS, ReasonCode, TopicError};

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
        let (topic, wildcard) = r.string_and_wildcards("topic name")?;
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
        } else if wildcard {
            // The rest of `topic::validate_topic_name`: no U+0000 was checked above, and a
            // two-byte length cannot exceed the longest topic.
            return Err(TopicError::WildcardInTopicName.into());
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
        self.borrowed().write(v, s)
    }

    /// The same PUBLISH, borrowed, as it is written.
    pub fn borrowed(&self) -> PublishRef<'_> {
        PublishRef {
            dup: self.dup,
            qos: self.qos,
            retain: self.retain,
            topic: &self.topic,
            packet_id: self.packet_id,
            properties: self.properties.borrowed(),
            payload: &self.payload,
        }
    }
}

/// A PUBLISH made of borrowed parts: what a server sends once per delivery, encoded
/// straight from the message it shares between subscribers and what differs per
/// subscriber, without building (and dropping) an owned [`Publish`] for each.
#[derive(Debug, Clone, Copy)]
pub struct PublishRef<'a> {
    /// Re-delivery of an earlier attempt.
    pub dup: bool,
    /// Quality of service.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// Topic name; empty when a topic alias stands for it.
    pub topic: &'a str,
    /// Packet identifier, present exactly when `qos` is 1 or 2.
    pub packet_id: Option<NonZeroU16>,
    /// MQTT 5 properties.
    pub properties: PublishPropertiesRef<'a>,
    /// The application message.
    pub payload: &'a Bytes,
}

impl PublishRef<'_> {
    fn write<S: Sink + ?Sized>(&self, v: ProtocolVersion, s: &mut S) -> Result<(), EncodeError> {
        self.write_head(v, s)?;
        s.put_slice(self.payload);
        Ok(())
    }

    fn write_head<S: Sink + ?Sized>(
        &self,
        v: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        s.put_string(self.topic)?;
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

#[cfg(feature = "server")]
impl PublishRef<'_> {
    fn first_byte(&self) -> u8 {
        (PacketType::Publish as u8) << 4
            | u8::from(self.dup) << 3
            | (self.qos as u8) << 1
            | u8::from(self.retain)
    }

    /// The remaining length: the body, payload included.
    fn remaining_len(&self, v: ProtocolVersion) -> Result<usize, EncodeError> {
        let mut c = Counter::default();
        self.write_head(v, &mut c)?;
        let n = c.0 + self.payload.len();
        if n > MAX_VARINT as usize {
            return Err(EncodeError::VarIntTooLarge(n));
        }
        Ok(n)
    }

    /// Bytes this packet takes on the wire, fixed header included.
    pub fn encoded_len(&self, v: ProtocolVersion) -> Result<usize, EncodeError> {
        let n = self.remaining_len(v)?;
        Ok(1 + varint_len(n) + n)
    }

    /// Appends the packet, as `v` encodes it, to `dst`. On error nothing is appended.
    pub fn encode(&self, v: ProtocolVersion, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let n = self.remaining_len(v)?;
        dst.reserve(1 + varint_len(n) + n);
        Sink::put_u8(dst, self.first_byte());
        Sink::put_varint(dst, n)?;
        self.write(v, dst)
    }

    /// Appends the packet without its payload, which the caller sends right after: a large
    /// payload then goes out without being copied. On error nothing is appended.
    pub fn encode_head(&self, v: ProtocolVersion, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let n = self.remaining_len(v)?;
        dst.reserve(1 + varint_len(n) + n - self.payload.len());
        Sink::put_u8(dst, self.first_byte());
        Sink::put_varint(dst, n)?;
        self.write_head(v, dst)
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

#[cfg(all(test, feature = "server"))]
mod tests {
    use super::*;
    use crate::{MessageProperties, Packet};
    use core::num::NonZeroU32;

    fn message() -> Publish {
        let mut p = Publish::new("pets/1/location", &b"{\"lat\":1}"[..]);
        p.qos = QoS::AtLeastOnce;
        p.packet_id = NonZeroU16::new(7);
        p.properties.message = MessageProperties {
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(60),
            content_type: Some("application/json".into()),
            user_properties: vec![("k".into(), "v".into())],
            ..Default::default()
        }
        .into();
        p
    }

    /// A PUBLISH is moved whole from the decoder to where a server uses it (the reader, the
    /// broker's message), and a `Packet` with it: their sizes are what each move copies. The
    /// message's properties are boxed for that ([`Sparse`](crate::Sparse)); inline, they made
    /// both 240 bytes. A change that puts something large back in shows here.
    #[test]
    fn a_publish_stays_small() {
        let publish = core::mem::size_of::<Publish>();
        assert!(publish <= 112, "a Publish grew to {publish} bytes");
        let packet = core::mem::size_of::<Packet>();
        assert!(packet <= 128, "a Packet grew to {packet} bytes");
    }

    /// A PUBLISH built from borrowed parts is the bytes of the owned one it stands for,
    /// with what differs per delivery (expiry left, alias, subscription ids) in its place.
    #[test]
    fn a_borrowed_publish_encodes_as_the_owned_one() {
        let mut owned = message();
        let shared = owned.properties.message.clone();
        owned.properties.message.to_mut().message_expiry_interval = Some(59);
        owned.properties.topic_alias = NonZeroU16::new(3);
        owned.properties.subscription_identifiers = vec![NonZeroU32::new(200).unwrap()];
        let ids = owned.properties.subscription_identifiers.clone();
        let borrowed = PublishRef {
            properties: PublishPropertiesRef {
                message: &shared,
                message_expiry_interval: Some(59),
                topic_alias: NonZeroU16::new(3),
                subscription_identifiers: &ids,
            },
            ..owned.borrowed()
        };
        for v in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
            let (mut want, mut got, mut head) = (BytesMut::new(), BytesMut::new(), BytesMut::new());
            Packet::Publish(owned.clone()).encode(v, &mut want).unwrap();
            borrowed.encode(v, &mut got).unwrap();
            assert_eq!(got, want, "{v:?}");
            assert_eq!(borrowed.encoded_len(v).unwrap(), want.len());
            borrowed.encode_head(v, &mut head).unwrap();
            assert_eq!(&want[..head.len()], &head[..]);
            assert_eq!(&want[head.len()..], &owned.payload[..]);
        }
    }

    /// An expiry left of none, with a message that had one, writes none: the interval
    /// written is the borrowed one, never the shared message's.
    #[test]
    fn the_expiry_written_is_the_one_given() {
        let shared = message();
        let borrowed = PublishRef {
            properties: PublishPropertiesRef {
                message_expiry_interval: None,
                ..shared.properties.borrowed()
            },
            ..shared.borrowed()
        };
        let mut want = shared.clone();
        want.properties.message.to_mut().message_expiry_interval = None;
        let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
        Packet::Publish(want)
            .encode(ProtocolVersion::V5, &mut a)
            .unwrap();
        borrowed.encode(ProtocolVersion::V5, &mut b).unwrap();
        assert_eq!(a, b);
    }
}
