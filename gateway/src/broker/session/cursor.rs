//! A new subscription's place in the retained store: which of its retained
//! messages are still to be sent [MQTT-3.3.1-9].
//!
//! A cursor holds no messages, only where to resume (the last topic it gave
//! out) in the store's ordered walk, so a subscription matching 100,000
//! retained messages costs a few words until the writer has room for them.
//! Messages are read when they are pulled, not when the SUBSCRIBE came, so
//! the retained set may have changed in between:
//!
//! - a topic whose message was replaced since gets the current one: the
//!   newest state, never an older one. The replacement also went out live
//!   (queued behind this cursor), so it may arrive twice, in order; a
//!   duplicate loses nothing, where skipping it would lose the topic if the
//!   live copy were dropped (queue full, or QoS 0 while offline);
//! - a topic cleared since is skipped: there is nothing to send;
//! - a message expired since is skipped [MQTT-3.3.2-5];
//! - a topic first retained after the SUBSCRIBE is skipped: it was not
//!   among the retained messages the subscription asked for, and reached
//!   the subscription live.

use std::num::NonZeroU32;
use std::sync::Arc;

use aviary_protocol::{ByteString, QoS, TopicFilter};
use parking_lot::RwLock;
use tokio::time::Instant;

use crate::broker::message::{Message, Outgoing};
use crate::broker::retained::RetainedStore;

/// Whether the subscriber may read a topic (the ACL's answer).
pub(crate) type Readable<'a> = &'a dyn Fn(&str) -> bool;

/// The broker's retained messages, as the writers pull from them.
pub(crate) type SharedRetained = RwLock<RetainedStore<Arc<Message>>>;

/// The retained messages one SUBSCRIBE has yet to send; see the module
/// documentation.
#[derive(Debug, Clone)]
pub(crate) struct RetainedCursor {
    filter: TopicFilter,
    /// The QoS granted: messages go out at the lower of it and their own.
    granted: QoS,
    /// The SUBSCRIBE's Subscription Identifier, sent with each message.
    identifier: Option<NonZeroU32>,
    /// The store's version once the subscription was in place: topics
    /// retained after it reached the subscription live.
    as_of: u64,
    /// The last topic given out; `None` before the first.
    after: Option<ByteString>,
    /// Queued messages that were waiting when the SUBSCRIBE came, and so go
    /// before this cursor's messages; set and kept by the outbox.
    pub(super) ahead: usize,
}

/// How a [`RetainedCursor::pull`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pulled {
    /// Every message has been given out: drop the cursor.
    Finished,
    /// The taker refused a message (no room); it will come first next time.
    Stopped,
    /// The budget of entries looked at ran out; call again.
    Paused,
}

impl RetainedCursor {
    /// A cursor over the retained messages matching `filter` as of the
    /// store's `version`. Not for a shared subscription: those get no
    /// retained messages (MQTT 5.0 section 4.8.2).
    pub(crate) fn new(
        filter: TopicFilter,
        granted: QoS,
        identifier: Option<NonZeroU32>,
        version: u64,
    ) -> Self {
        Self {
            filter,
            granted,
            identifier,
            as_of: version,
            after: None,
            ahead: 0,
        }
    }

    /// The subscription's filter.
    pub(crate) fn filter(&self) -> &TopicFilter {
        &self.filter
    }

    /// Offers the next messages, in topic order, to `take` until it refuses
    /// one (returns false), the walk ends, or `budget` entries have been
    /// looked at. Skipped and taken entries are not offered again; so are
    /// those whose topic the subscriber may not read (`readable` says).
    pub(crate) fn pull(
        &mut self,
        store: &RetainedStore<Arc<Message>>,
        now: Instant,
        budget: usize,
        readable: Readable<'_>,
        mut take: impl FnMut(Outgoing) -> bool,
    ) -> Pulled {
        let mut last = None;
        let mut pulled = Pulled::Finished;
        let walk = store.walk(self.filter.as_str(), self.after.as_deref());
        for (looked, entry) in walk.enumerate() {
            if looked == budget {
                pulled = Pulled::Paused;
                break;
            }
            let owed = entry.created <= self.as_of
                && !entry.msg.is_expired(now)
                && readable(&entry.msg.topic);
            if owed && !take(self.outgoing(&entry.msg)) {
                pulled = Pulled::Stopped;
                break;
            }
            last = Some(&entry.topic);
        }
        if let Some(topic) = last {
            self.after = Some(topic.clone());
        }
        pulled
    }

    /// The PUBLISH of a retained message for this subscription.
    fn outgoing(&self, msg: &Arc<Message>) -> Outgoing {
        Outgoing {
            msg: msg.clone(),
            qos: msg.qos.min(self.granted),
            // Sent because of a new subscription: RETAIN stays set [MQTT-3.3.1-9].
            retain: true,
            subscription_ids: self.identifier.into_iter().collect(),
            seq: None,
        }
    }
}
