//! Properties of an application message: PUBLISH and the will carry the
//! same message properties, read by one function.

use alloc::vec::Vec;
use core::num::{NonZeroU16, NonZeroU32};

use bytes::Bytes;
use bytestring::ByteString;

use super::*;
use crate::topic;
use crate::wire::{Reader, Sink};
use crate::{DecodeError, EncodeError};

/// Reads the properties shared by PUBLISH and the will: both describe an
/// application message.
fn message_property(
    p: &mut MessageProperties,
    id: u8,
    r: &mut Reader,
) -> Result<bool, DecodeError> {
    let packet = r.packet();
    match id {
        id::PAYLOAD_FORMAT_INDICATOR => {
            flag_once(r, &mut p.payload_format_indicator, id, "payload format")?
        }
        id::MESSAGE_EXPIRY_INTERVAL => {
            u32_once(r, &mut p.message_expiry_interval, id, "message expiry")?
        }
        id::CONTENT_TYPE => string_once(r, &mut p.content_type, id, "content type")?,
        id::RESPONSE_TOPIC => {
            let t = r.string("response topic")?;
            // A response topic is a topic name: no wildcards [MQTT-3.3.2-14].
            topic::validate_topic_name(&t)?;
            once(&mut p.response_topic, t, id, packet)?;
        }
        id::CORRELATION_DATA => binary_once(r, &mut p.correlation_data, id, "correlation data")?,
        id::USER_PROPERTY => p.user_properties.push(user_property(r)?),
        _ => return Ok(false),
    }
    Ok(true)
}

/// Properties of an application message, carried by PUBLISH and by the will
/// (section 3.3.2.3 and 3.1.3.2). The broker forwards them untouched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageProperties {
    /// `Some(true)`: the payload is UTF-8 text; `Some(false)`: unspecified bytes.
    pub payload_format_indicator: Option<bool>,
    /// Lifetime of the message in seconds.
    pub message_expiry_interval: Option<u32>,
    /// MIME-like description of the payload.
    pub content_type: Option<ByteString>,
    /// Topic name for a response.
    pub response_topic: Option<ByteString>,
    /// Lets a requester match a response to its request.
    pub correlation_data: Option<Bytes>,
    /// Application-defined name/value pairs, in order.
    pub user_properties: Vec<UserProperty>,
}

/// The set of a message that has none: what an absent [`Sparse`] set reads as.
static NO_MESSAGE_PROPERTIES: MessageProperties = MessageProperties {
    payload_format_indicator: None,
    message_expiry_interval: None,
    content_type: None,
    response_topic: None,
    correlation_data: None,
    user_properties: Vec::new(),
};

impl Empty for MessageProperties {
    fn empty() -> &'static Self {
        &NO_MESSAGE_PROPERTIES
    }

    fn is_empty(&self) -> bool {
        MessageProperties::is_empty(self)
    }
}

impl MessageProperties {
    /// True when nothing is set. Field by field: comparing with a default value built for the
    /// purpose was larger code in the browser package.
    pub fn is_empty(&self) -> bool {
        self.message_expiry_interval.is_none() && self.is_empty_but_expiry()
    }

    /// True when nothing but (perhaps) the Message Expiry Interval is set.
    fn is_empty_but_expiry(&self) -> bool {
        self.payload_format_indicator.is_none()
            && self.content_type.is_none()
            && self.response_topic.is_none()
            && self.correlation_data.is_none()
            && self.user_properties.is_empty()
    }

    fn write<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        self.write_with_expiry(self.message_expiry_interval, s)
    }

    /// Writes the properties with `expiry` as the Message Expiry Interval, whatever this
    /// set holds: a server forwards what is left of it [MQTT-3.3.2-6].
    fn write_with_expiry<S: Sink + ?Sized>(
        &self,
        expiry: Option<u32>,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        put_flag(
            s,
            id::PAYLOAD_FORMAT_INDICATOR,
            self.payload_format_indicator,
        );
        put_u32(s, id::MESSAGE_EXPIRY_INTERVAL, expiry);
        put_str(s, id::CONTENT_TYPE, self.content_type.as_ref())?;
        put_str(s, id::RESPONSE_TOPIC, self.response_topic.as_ref())?;
        put_bin(s, id::CORRELATION_DATA, self.correlation_data.as_ref())?;
        put_user(s, &self.user_properties)
    }
}

/// PUBLISH properties (section 3.3.2.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishProperties {
    /// The application message's own properties, forwarded to subscribers. Nearly always
    /// absent, so behind a pointer in a build with the server side: inline they were most of
    /// a [`Publish`](crate::Publish)'s size, copied with it on every move. Read through it;
    /// set them with [`Sparse::to_mut`] or `.into()`.
    pub message: Sparse<MessageProperties>,
    /// Topic alias: stands for the topic name on this connection.
    pub topic_alias: Option<NonZeroU16>,
    /// Identifiers of the subscriptions that matched (server to client only).
    pub subscription_identifiers: Vec<NonZeroU32>,
}

impl PublishProperties {
    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        read_block(r, &mut |id, r| match id {
            id::TOPIC_ALIAS => once(
                &mut p.topic_alias,
                non_zero_u16(r, "topic alias", "topic alias 0 [MQTT-3.3.2-8]")?,
                id,
                r.packet(),
            ),
            id::SUBSCRIPTION_IDENTIFIER => {
                p.subscription_identifiers.push(subscription_identifier(r)?);
                Ok(())
            }
            // The message's set is allocated by its first property (or by a misplaced one,
            // which fails the packet anyway); a topic alias alone allocates nothing.
            _ if message_property(p.message.to_mut(), id, r)? => Ok(()),
            _ => Err(misplaced(id, r.packet())),
        })?;
        Ok(p)
    }

    /// True when nothing is set, the common case: the block is one zero byte.
    pub fn is_empty(&self) -> bool {
        self.message.is_empty()
            && self.topic_alias.is_none()
            && self.subscription_identifiers.is_empty()
    }

    /// The same properties, borrowed, as they are written.
    pub fn borrowed(&self) -> PublishPropertiesRef<'_> {
        PublishPropertiesRef {
            message: &self.message,
            message_expiry_interval: self.message.message_expiry_interval,
            topic_alias: self.topic_alias,
            subscription_identifiers: &self.subscription_identifiers,
        }
    }
}

/// PUBLISH properties borrowed from where a server keeps them: the message's own, shared by
/// every subscriber, and what differs per delivery. Both [`PublishProperties`] and
/// [`PublishRef`](crate::PublishRef) are written through it, so there is one encoder.
#[derive(Debug, Clone, Copy)]
pub struct PublishPropertiesRef<'a> {
    /// The application message's properties; their Message Expiry Interval is not written.
    pub message: &'a MessageProperties,
    /// The Message Expiry Interval written instead: what is left of it when forwarded.
    pub message_expiry_interval: Option<u32>,
    /// Topic alias on this connection.
    pub topic_alias: Option<NonZeroU16>,
    /// Identifiers of the subscriptions that matched.
    pub subscription_identifiers: &'a [NonZeroU32],
}

impl PropertyBlock for PublishPropertiesRef<'_> {
    fn is_empty_block(&self) -> bool {
        self.message_expiry_interval.is_none()
            && self.topic_alias.is_none()
            && self.subscription_identifiers.is_empty()
            && self.message.is_empty_but_expiry()
    }

    fn write_properties<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        self.message
            .write_with_expiry(self.message_expiry_interval, s)?;
        put_u16(s, id::TOPIC_ALIAS, self.topic_alias.map(NonZeroU16::get));
        for sid in self.subscription_identifiers {
            s.put_u8(id::SUBSCRIPTION_IDENTIFIER);
            s.put_varint(sid.get() as usize)?;
        }
        Ok(())
    }
}

/// Will properties (section 3.1.3.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WillProperties {
    /// The will's application message properties.
    pub message: MessageProperties,
    /// Seconds to wait after the connection ends before publishing the will.
    pub will_delay_interval: Option<u32>,
}

impl WillProperties {
    #[cfg(feature = "server")]
    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        read_block(r, &mut |id, r| {
            if message_property(&mut p.message, id, r)? {
                return Ok(());
            }
            match id {
                id::WILL_DELAY_INTERVAL => {
                    u32_once(r, &mut p.will_delay_interval, id, "will delay")
                }
                _ => Err(misplaced(id, r.packet())),
            }
        })?;
        Ok(p)
    }
}

#[cfg(feature = "client")]
impl PropertyBlock for WillProperties {
    fn write_properties<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_u32(s, id::WILL_DELAY_INTERVAL, self.will_delay_interval);
        self.message.write(s)
    }
}
