//! The application message as the broker routes it: decoded once from the
//! publisher's PUBLISH and shared (`Arc`) by every subscriber's queue, with
//! its payload still a slice of the publisher's receive buffer.

use std::num::{NonZeroU16, NonZeroU32};
use std::sync::Arc;

use aviary_protocol::{
    ByteString, MessageProperties, Publish, PublishPropertiesRef, PublishRef, QoS, Sparse,
};
use bytes::Bytes;
use tokio::time::Instant;

mod slot;
pub(crate) use slot::StoreSlot;

/// A routed application message.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) topic: ByteString,
    pub(crate) payload: Bytes,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    /// The MQTT 5 properties, forwarded untouched; the PUBLISH's own box, moved, so that a
    /// message without any (nearly every one) is small and allocates nothing for them.
    pub(crate) properties: Sparse<MessageProperties>,
    /// When the MQTT 5 Message Expiry Interval runs out.
    pub(crate) expires_at: Option<Instant>,
    /// Its record in the store, once a persistent session queued it: written
    /// once however many sessions queue it, and removed with the last.
    pub(crate) stored: StoreSlot,
    /// Its sequence number in the cluster's message stream, when it came from there: a
    /// session moving between nodes tells by it which messages the old node already had.
    pub(crate) stream_seq: Option<std::num::NonZeroU64>,
}

impl Message {
    /// The message of a PUBLISH whose topic alias has been resolved, received now.
    pub(crate) fn from_publish(p: Publish, topic: ByteString) -> Self {
        let properties = p.properties.message;
        // The clock is read only for a message that expires: most do not, and a clock read
        // per PUBLISH showed in the publish path's profile.
        let expires_at = properties
            .message_expiry_interval
            .map(|secs| Instant::now() + std::time::Duration::from_secs(u64::from(secs)));
        Self {
            topic,
            payload: p.payload,
            qos: p.qos,
            retain: p.retain,
            properties,
            expires_at,
            stored: Default::default(),
            stream_seq: None,
        }
    }

    /// The message with its Message Expiry Interval counting from `now`:
    /// for a will, which is published long after the CONNECT carrying it.
    pub(crate) fn published_at(self: Arc<Self>, now: Instant) -> Arc<Self> {
        match self.properties.message_expiry_interval {
            Some(secs) => Arc::new(Self {
                expires_at: Some(now + std::time::Duration::from_secs(u64::from(secs))),
                stored: Default::default(),
                stream_seq: None,
                ..Self::clone(&self)
            }),
            None => self,
        }
    }

    /// True once the message's expiry interval has passed.
    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// Bytes this message holds, for queue limits.
    pub(crate) fn size(&self) -> usize {
        self.topic.len() + self.payload.len()
    }
}

/// One message on its way to one subscriber.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) msg: Arc<Message>,
    /// Publish QoS downgraded to the subscription's.
    pub(crate) qos: QoS,
    /// The RETAIN flag as this subscriber sees it.
    pub(crate) retain: bool,
    /// Identifiers of the matching subscriptions (MQTT 5).
    pub(crate) subscription_ids: Vec<NonZeroU32>,
    /// Its key in the session's stored queue, if the store keeps it.
    pub(crate) seq: Option<u64>,
}

impl Outgoing {
    /// The PUBLISH to send, borrowed from the shared message, with the remaining expiry
    /// forwarded [MQTT-3.3.2-6] and the given packet id and DUP flag. With a `topic_alias`,
    /// the topic goes too only if the alias is `new` on this connection [MQTT-3.3.2-12].
    pub(crate) fn publish(
        &self,
        packet_id: Option<NonZeroU16>,
        dup: bool,
        now: Instant,
        topic_alias: Option<NonZeroU16>,
        new: bool,
    ) -> PublishRef<'_> {
        let topic = if topic_alias.is_some() && !new {
            ""
        } else {
            &self.msg.topic
        };
        self.publish_ref(topic, packet_id, dup, self.expiry_left(now), topic_alias)
    }

    /// The PUBLISH of a QoS 0 delivery encoded as it is routed (no packet id, no topic
    /// alias), if no time it waits could change it: `None` for a message that expires, whose
    /// interval left is reckoned when it is sent.
    pub(crate) fn publish_now(&self) -> Option<PublishRef<'_>> {
        if self.qos != QoS::AtMostOnce || self.msg.expires_at.is_some() {
            return None;
        }
        let expiry = self.msg.properties.message_expiry_interval;
        Some(self.publish_ref(&self.msg.topic, None, false, expiry, None))
    }

    #[inline]
    fn publish_ref<'a>(
        &'a self,
        topic: &'a str,
        packet_id: Option<NonZeroU16>,
        dup: bool,
        message_expiry_interval: Option<u32>,
        topic_alias: Option<NonZeroU16>,
    ) -> PublishRef<'a> {
        PublishRef {
            dup,
            qos: self.qos,
            retain: self.retain,
            topic,
            packet_id,
            properties: PublishPropertiesRef {
                message: &self.msg.properties,
                message_expiry_interval,
                topic_alias,
                subscription_identifiers: &self.subscription_ids,
            },
            payload: &self.msg.payload,
        }
    }

    /// What is left of the Message Expiry Interval at `now`, rounded up, so a message never
    /// arrives "expired now".
    fn expiry_left(&self, now: Instant) -> Option<u32> {
        let Some(at) = self.msg.expires_at else {
            return self.msg.properties.message_expiry_interval;
        };
        let left = at.saturating_duration_since(now);
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        Some(u32::try_from(secs).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    /// Every routed message is one allocation of this (with the `Arc`'s two counts), and
    /// every queued one stays that size: a change that puts something large back in shows
    /// here. 120 + 16 bytes fall in jemalloc's 160-byte class: 320 with the MQTT 5 properties
    /// inline (248 bytes), 384 with the store slot inline too.
    #[test]
    fn a_message_stays_small() {
        let size = std::mem::size_of::<super::Message>();
        assert!(size <= 120, "a Message grew to {size} bytes");
    }
}
