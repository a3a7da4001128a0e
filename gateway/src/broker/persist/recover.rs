//! How the broker comes back from what the store kept: retained messages, persistent
//! sessions with their subscriptions, deadlines and wills, and their queues put back in
//! order (see [`super`] for what is written).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use aviary_protocol::TopicFilter;
use tracing::{error, info};

use super::convert::{self, Clocks};
use crate::broker::message::StoreSlot;
use crate::broker::router::Subscription;
use crate::broker::session::{Inflight, RecoveredSession};
use crate::broker::{Broker, Message, Outgoing};
use crate::store::{DeliveryState, MessageId, Op, QueueEntry, SessionRecord, Snapshot, StoreError};

impl Broker {
    /// Rebuilds what the store kept: retained messages and persistent sessions, with their
    /// subscriptions, deadlines and wills. Call once, before the listeners open.
    pub(crate) fn recover(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let clocks = Clocks::now();
        let next_message_id = snapshot.next_message_id();
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
        if let Some(persist) = &self.shared.persist {
            persist
                .next_message_id
                .store(next_message_id.0, Ordering::Relaxed);
        }
        let messages: HashMap<MessageId, Arc<Message>> = snapshot
            .messages
            .into_iter()
            .map(|(id, stored)| {
                let msg = Message {
                    stored: StoreSlot::recovered(id),
                    ..convert::message(stored, clocks)
                };
                (id, Arc::new(msg))
            })
            .collect();
        let (mut queues, mut incoming) = (snapshot.queues, snapshot.incoming_qos2);
        let (mut sessions, mut queued) = (0, 0);
        for (client_id, record) in snapshot.sessions {
            match recovered_session(record, clocks) {
                Ok(mut recovered) => {
                    let entries = queues.remove(&client_id).unwrap_or_default();
                    queued += entries.len();
                    restore_queue(&mut recovered, entries, &messages, clocks, &mut stale);
                    recovered.incoming_qos2 = incoming
                        .remove(&client_id)
                        .map(|ids| ids.into_iter().collect())
                        .unwrap_or_default();
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
        // Queues and QoS 2 ids of sessions that are gone, and messages nobody refers to.
        let orphans = queues.into_keys().chain(incoming.into_keys());
        stale.extend(orphans.map(|client_id| Op::DeleteSession { client_id }));
        stale.extend(
            messages
                .values()
                .filter_map(|m| m.stored.unreferenced())
                .map(|id| Op::DeleteMessage { id }),
        );
        if let Some(persist) = &self.shared.persist {
            if !stale.is_empty() {
                persist.send(stale);
            }
        }
        info!(
            retained = retained_count,
            sessions, queued, "recovered the store's state"
        );
        Ok(())
    }
}

/// Puts a session's stored queue back, in order: messages not sent yet queue again; those
/// sent and not acknowledged go back in flight, to be resent with DUP (or their PUBREL) when
/// the client returns. An entry whose message is missing (cut off by a crash between the two
/// writes, before anything was acknowledged) is dropped.
fn restore_queue(
    recovered: &mut RecoveredSession,
    entries: BTreeMap<u64, QueueEntry>,
    messages: &HashMap<MessageId, Arc<Message>>,
    clocks: Clocks,
    stale: &mut Vec<Op>,
) {
    for (seq, entry) in entries {
        let msg = if let Some(carried) = entry.inline {
            let slot = StoreSlot::recovered_inline(recovered.client_id.clone(), seq, entry.message);
            Arc::new(Message {
                stored: slot,
                ..convert::message(*carried, clocks)
            })
        } else if let Some(msg) = messages.get(&entry.message) {
            msg.stored.recovered_reference();
            msg.clone()
        } else {
            stale.push(Op::DeleteQueued {
                client_id: recovered.client_id.clone(),
                seq,
                written_once: false,
            });
            continue;
        };
        let out = Outgoing {
            msg,
            qos: entry.qos,
            retain: entry.retain,
            subscription_ids: entry.subscription_ids,
            seq: Some(seq),
        };
        match entry.state {
            DeliveryState::Queued => recovered.queued.push(out),
            DeliveryState::Sent { packet_id } | DeliveryState::Released { packet_id } => {
                let released = matches!(entry.state, DeliveryState::Released { .. });
                recovered.inflight.push(Inflight {
                    packet_id,
                    out,
                    released,
                });
            }
        }
    }
}

/// A stored session as the broker rebuilds it. A session whose client was connected when the
/// gateway stopped (no disconnection time) lost its connection then: its expiry and delayed will
/// count from the restart. Errs with a filter that does not parse.
pub(in crate::broker) fn recovered_session(
    record: SessionRecord,
    clocks: Clocks,
) -> Result<RecoveredSession, String> {
    let mut subscriptions = Vec::with_capacity(record.subscriptions.len());
    for s in record.subscriptions {
        let filter = TopicFilter::new(s.filter.to_string()).map_err(|_| s.filter.to_string())?;
        let subscription = Subscription {
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
        let owner = record.username.as_deref().map(Arc::from);
        (convert::will(stored, clocks, owner), due)
    });
    Ok(RecoveredSession {
        client_id: record.client_id,
        subscriptions,
        expiry_secs: record.expiry_secs,
        expires_at,
        pending_will,
        username: record.username.as_deref().map(Arc::from),
        ..RecoveredSession::default()
    })
}
