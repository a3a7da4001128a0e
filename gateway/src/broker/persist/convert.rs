//! Between the broker's live types and the store's records.
//!
//! The broker measures time with tokio's monotonic `Instant` (so tests can pause it); the store
//! keeps wall-clock Unix milliseconds, which still mean something after a restart. Every
//! conversion takes one reading of both clocks ([`Clocks`]) so that a batch of them agrees.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use aviary_protocol::{ByteString, ProtocolVersion};

use super::RecordParts;
use crate::broker::router::Subscription;
use crate::broker::{Message, Will};
use crate::store::{SessionRecord, StoredMessage, StoredSubscription, StoredWill};

/// One reading of the monotonic and the wall clock, taken together.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clocks {
    /// tokio's clock (paused in tests).
    pub(crate) instant: Instant,
    /// Milliseconds since the Unix epoch.
    pub(crate) unix_ms: u64,
}

impl Clocks {
    /// Reads both clocks now.
    pub(crate) fn now() -> Self {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            instant: Instant::now(),
            unix_ms,
        }
    }

    /// `at` on the wall clock.
    pub(crate) fn to_unix_ms(self, at: Instant) -> u64 {
        if at >= self.instant {
            self.unix_ms.saturating_add(millis(at - self.instant))
        } else {
            self.unix_ms.saturating_sub(millis(self.instant - at))
        }
    }

    /// A wall-clock time as an `Instant`; a time already past is now (an `Instant` before the
    /// process started may not exist).
    pub(crate) fn to_instant(self, unix_ms: u64) -> Instant {
        self.instant + Duration::from_millis(unix_ms.saturating_sub(self.unix_ms))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A session's record as the store keeps it: connected (`disconnected` None) or waiting for
/// its client, with the will and when it is due.
pub(crate) fn session_record(
    client_id: &ByteString,
    parts: RecordParts,
    disconnected: Option<Instant>,
    will_due: Option<Instant>,
) -> SessionRecord {
    let clocks = Clocks::now();
    SessionRecord {
        client_id: client_id.clone(),
        // The record is read back by this broker only, which speaks every version to
        // whichever client returns; the field is kept for tools that read the store.
        protocol: ProtocolVersion::V5,
        expiry_secs: parts.expiry_secs,
        disconnected_at_unix_ms: disconnected.map(|at| clocks.to_unix_ms(at)),
        subscriptions: parts
            .subscriptions
            .iter()
            .map(|(f, s)| stored_subscription(f, s))
            .collect(),
        will: parts.will.as_ref().map(|w| stored_will(w, clocks)),
        will_due_at_unix_ms: will_due.map(|at| clocks.to_unix_ms(at)),
        username: parts.username.as_deref().map(ByteString::from),
    }
}

/// A message as the store keeps it.
pub(crate) fn stored_message(msg: &Message, clocks: Clocks) -> StoredMessage {
    stored_message_with(msg, || clocks)
}

/// [`stored_message`], reading the clocks only for a message that expires: most do not, and
/// a reading is two clock calls, which showed in the cluster's per-message profile.
pub(crate) fn stored_message_with(msg: &Message, clocks: impl FnOnce() -> Clocks) -> StoredMessage {
    StoredMessage {
        topic: msg.topic.clone(),
        payload: msg.payload.clone(),
        qos: msg.qos,
        retain: msg.retain,
        properties: (*msg.properties).clone(),
        expires_at_unix_ms: msg.expires_at.map(|at| clocks().to_unix_ms(at)),
        stream_seq: msg.stream_seq.map(std::num::NonZeroU64::get),
    }
}

/// A stored message back in the broker, its expiry on the monotonic clock again.
pub(crate) fn message(stored: StoredMessage, clocks: Clocks) -> Message {
    message_with(stored, || clocks)
}

/// [`message`], reading the clocks only for a message that expires.
pub(crate) fn message_with(stored: StoredMessage, clocks: impl FnOnce() -> Clocks) -> Message {
    Message {
        topic: stored.topic,
        payload: stored.payload,
        qos: stored.qos,
        retain: stored.retain,
        properties: stored.properties.into(),
        expires_at: stored.expires_at_unix_ms.map(|ms| clocks().to_instant(ms)),
        stored: Default::default(),
        stream_seq: stored.stream_seq.and_then(std::num::NonZeroU64::new),
    }
}

/// A subscription as the store keeps it.
pub(crate) fn stored_subscription(
    filter: &aviary_protocol::TopicFilter,
    sub: &Subscription,
) -> StoredSubscription {
    StoredSubscription {
        filter: filter.as_str().into(),
        options: sub.options,
        identifier: sub.identifier,
    }
}

/// A will as the store keeps it.
pub(crate) fn stored_will(will: &Will, clocks: Clocks) -> StoredWill {
    StoredWill {
        message: stored_message(&will.message, clocks),
        delay_secs: will.delay_secs,
    }
}

/// A stored will back in the broker.
/// A stored will, with the username of the session it belongs to.
pub(crate) fn will(stored: StoredWill, clocks: Clocks, owner: Option<Arc<str>>) -> Will {
    Will {
        message: Arc::new(message(stored.message, clocks)),
        delay_secs: stored.delay_secs,
        owner,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_convert_both_ways_and_clamp_the_past() {
        let clocks = Clocks {
            instant: Instant::now(),
            unix_ms: 1_000_000,
        };
        let later = clocks.instant + Duration::from_millis(2_500);
        assert_eq!(clocks.to_unix_ms(later), 1_002_500);
        assert_eq!(clocks.to_instant(1_002_500), later);
        // A deadline that passed while the gateway was down is due now.
        assert_eq!(clocks.to_instant(999_000), clocks.instant);
    }
}
