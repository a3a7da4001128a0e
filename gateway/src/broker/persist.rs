//! The broker's side of the store: which changes are written, and how the broker comes back
//! from what was written.
//!
//! Only what outlives a connection is written: retained messages, and persistent sessions
//! (Session Expiry Interval above zero, or a 3.x clean session off) with their subscriptions,
//! expiry and will. A clean session never touches the store. Writes go to the store's writer
//! without waiting ([`StoreHandle::send_detached`]), in the order the broker made the changes:
//! each is sent under the lock that orders the change itself.
//!
//! Not written yet: queued and in-flight messages and incoming QoS 2 ids (the next step of
//! issue 10), so a restart brings back sessions, subscriptions, wills and retained messages, but
//! not messages waiting in a session's queue.

mod convert;

use std::sync::Arc;

use aviary_protocol::{ByteString, ProtocolVersion, TopicFilter};
use tracing::{error, info, warn};

use super::session::RecoveredSession;
use super::{Broker, Message};
use crate::store::{Op, SessionRecord, Snapshot, StoreError, StoreHandle};
pub(crate) use convert::Clocks;

/// The broker's store, when it has one (`durability` other than `memory`).
#[derive(Debug)]
pub(crate) struct Persist {
    store: StoreHandle,
}

/// What a session's record says, gathered under its lock.
#[derive(Debug)]
pub(crate) struct RecordParts {
    pub(crate) subscriptions: Vec<(TopicFilter, super::router::Subscription)>,
    pub(crate) expiry_secs: u32,
    pub(crate) will: Option<super::Will>,
}

impl Persist {
    pub(crate) fn new(store: StoreHandle) -> Self {
        Self { store }
    }

    /// Sends `ops` to the writer; a stopped writer (shutdown) is logged, not fatal.
    fn send(&self, ops: Vec<Op>) {
        if let Err(e) = self.store.send_detached(ops) {
            warn!(error = %e, "not written to the store");
        }
    }

    /// Whether retained messages on `topic` are kept: the broker's own `$SYS` statistics are
    /// published anew after every start, so writing them would only wear the disk.
    fn keeps_retained(topic: &str) -> bool {
        !topic.starts_with("$SYS/")
    }

    /// A retained message was set (call under the retained store's write lock).
    pub(crate) fn retained_set(&self, msg: &Message) {
        if Self::keeps_retained(&msg.topic) {
            let message = convert::stored_message(msg, Clocks::now());
            self.send(vec![Op::PutRetained {
                topic: msg.topic.clone(),
                message,
            }]);
        }
    }

    /// A retained message was cleared (call under the retained store's write lock).
    pub(crate) fn retained_cleared(&self, topic: &ByteString) {
        if Self::keeps_retained(topic) {
            self.send(vec![Op::DeleteRetained {
                topic: topic.clone(),
            }]);
        }
    }

    /// Writes a persistent session's record: connected (`disconnected` None) or waiting for its
    /// client, with the will and when it is due.
    pub(crate) fn session(
        &self,
        client_id: &ByteString,
        parts: RecordParts,
        disconnected: Option<tokio::time::Instant>,
        will_due: Option<tokio::time::Instant>,
    ) {
        let clocks = Clocks::now();
        let record = SessionRecord {
            client_id: client_id.clone(),
            // The record is read back by this broker only, which speaks every version to
            // whichever client returns; the field is kept for tools that read the store.
            protocol: ProtocolVersion::V5,
            expiry_secs: parts.expiry_secs,
            disconnected_at_unix_ms: disconnected.map(|at| clocks.to_unix_ms(at)),
            subscriptions: parts
                .subscriptions
                .iter()
                .map(|(f, s)| convert::stored_subscription(f, s))
                .collect(),
            will: parts.will.as_ref().map(|w| convert::stored_will(w, clocks)),
            will_due_at_unix_ms: will_due.map(|at| clocks.to_unix_ms(at)),
        };
        self.send(vec![Op::PutSession(record)]);
    }

    /// A session ended: its record goes, with everything filed under it.
    pub(crate) fn session_ended(&self, client_id: &ByteString) {
        self.send(vec![Op::DeleteSession {
            client_id: client_id.clone(),
        }]);
    }

    /// Commits what was sent and stops the writer: for graceful shutdown.
    pub(crate) async fn close(&self) {
        self.store.close().await;
    }
}

impl Broker {
    /// Rebuilds what the store kept: retained messages and persistent sessions, with their
    /// subscriptions, deadlines and wills. Call once, before the listeners open.
    pub(crate) fn recover(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let clocks = Clocks::now();
        let mut stale = Vec::new();
        let retained_count = {
            let mut retained = self.shared.retained.write();
            for (topic, stored) in snapshot.retained {
                let msg = convert::message(stored, clocks);
                if msg.is_expired(clocks.instant) {
                    stale.push(Op::DeleteRetained { topic });
                } else {
                    retained.set(&topic, Arc::new(msg));
                }
            }
            retained.len()
        };
        let mut sessions = 0;
        for (client_id, record) in snapshot.sessions {
            match recovered_session(record, clocks) {
                Ok(recovered) => {
                    let session = self.restore_session(recovered);
                    session.mark_stored();
                    sessions += 1;
                }
                Err(filter) => {
                    // Written by this broker, so it cannot happen short of a damaged store
                    // that still decodes; dropping one session beats refusing to start.
                    error!(%client_id, %filter, "stored session has an invalid topic filter; dropped");
                    stale.push(Op::DeleteSession { client_id });
                }
            }
        }
        // Messages of queues are not written yet; anything of them left behind goes.
        stale.extend(snapshot.messages.keys().map(|&id| Op::DeleteMessage { id }));
        if let Some(persist) = &self.shared.persist {
            if !stale.is_empty() {
                persist.send(stale);
            }
        }
        info!(
            retained = retained_count,
            sessions, "recovered the store's state"
        );
        Ok(())
    }

    /// The store, if the broker has one.
    pub(crate) fn persist(&self) -> Option<&Persist> {
        self.shared.persist.as_ref()
    }

    /// Commits everything written so far and stops the store's writer.
    pub async fn close_store(&self) {
        if let Some(persist) = &self.shared.persist {
            persist.close().await;
        }
    }
}

/// A stored session as the broker rebuilds it. A session whose client was connected when the
/// gateway stopped (no disconnection time) lost its connection then: its expiry and delayed will
/// count from the restart. Errs with a filter that does not parse.
fn recovered_session(record: SessionRecord, clocks: Clocks) -> Result<RecoveredSession, String> {
    let mut subscriptions = Vec::with_capacity(record.subscriptions.len());
    for s in record.subscriptions {
        let filter = TopicFilter::new(s.filter.to_string()).map_err(|_| s.filter.to_string())?;
        let subscription = super::router::Subscription {
            options: s.options,
            identifier: s.identifier,
        };
        subscriptions.push((filter, subscription));
    }
    let gone_at = record
        .disconnected_at_unix_ms
        .map_or(clocks.instant, |ms| clocks.to_instant(ms));
    let expiry = std::time::Duration::from_secs(u64::from(record.expiry_secs));
    let expires_at = (record.expiry_secs != u32::MAX)
        .then(|| gone_at.checked_add(expiry))
        .flatten();
    let pending_will = record.will.map(|stored| {
        let due = match record.will_due_at_unix_ms {
            Some(ms) => clocks.to_instant(ms),
            None => {
                let delay = stored.delay_secs.min(record.expiry_secs);
                gone_at + std::time::Duration::from_secs(u64::from(delay))
            }
        };
        (convert::will(stored, clocks), due)
    });
    Ok(RecoveredSession {
        client_id: record.client_id,
        subscriptions,
        expiry_secs: record.expiry_secs,
        expires_at,
        pending_will,
        ..RecoveredSession::default()
    })
}
