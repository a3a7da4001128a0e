//! The broker's side of the store: which changes are written, and how the broker comes back
//! from what was written.
//!
//! Only what outlives a connection is written: retained messages, and persistent sessions
//! (Session Expiry Interval above zero, or a 3.x clean session off) with their subscriptions,
//! expiry and will. A clean session never touches the store. Writes go to the store's writer
//! without waiting ([`StoreHandle::send_detached`]), in the order the broker made the changes:
//! each is sent under the lock that orders the change itself.
//!
//! A persistent session's queued and in-flight QoS 1/2 messages are written as queue entries
//! ([`Persist::journal`]); the first entry of a message carries the message itself, later ones
//! share a record of it (see [`StoreSlot`]). Incoming QoS 2 ids are written too, so a restart
//! brings back sessions, their queues, wills and retained messages.

pub(super) mod convert;

use std::num::NonZeroU16;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aviary_protocol::{ByteString, QoS, TopicFilter};
use tracing::{error, info, warn};

use std::collections::{BTreeMap, HashMap};

use super::message::StoreSlot;
use super::session::{Event, Inflight, RecoveredSession};
use super::{Broker, Message, Outgoing};
use crate::store::{
    DeliveryState, Forwarded, MessageId, Op, QueueEntry, SessionRecord, Snapshot, StoreError,
    StoreHandle, Ticket,
};
pub(crate) use convert::Clocks;

/// What happened to an incoming QoS 2 exchange of a persistent session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Qos2Change {
    /// It opened; in cluster mode, its message was forwarded so to the other nodes.
    Opened(Option<Forwarded>),
    /// PUBREL came, or an error PUBREC ended it.
    Closed,
}

/// The broker's store, when it has one (`durability` other than `memory`).
#[derive(Debug)]
pub(crate) struct Persist {
    store: StoreHandle,
    /// The id of the next message written.
    next_message_id: AtomicU64,
}

/// What a session's record says, gathered under its lock.
#[derive(Debug)]
pub(crate) struct RecordParts {
    pub(crate) subscriptions: Vec<(TopicFilter, super::router::Subscription)>,
    pub(crate) expiry_secs: u32,
    pub(crate) will: Option<super::Will>,
    pub(crate) username: Option<Arc<str>>,
}

impl Persist {
    pub(crate) fn new(store: StoreHandle) -> Self {
        Self {
            store,
            next_message_id: AtomicU64::new(1),
        }
    }

    /// The store's handle.
    pub(crate) fn store(&self) -> &StoreHandle {
        &self.store
    }

    /// A ticket that completes once everything sent before it is committed: an
    /// acknowledgement waits for it, so it goes out only for what is safe on disk.
    /// Complete at once when the writer holds nothing uncommitted: no trip through it.
    pub(crate) fn barrier(&self) -> Result<Ticket, StoreError> {
        if self.settled() {
            return Ok(Ticket::done());
        }
        self.store.send(Vec::new())
    }

    /// True if everything sent to the store so far is committed: see
    /// [`StoreHandle::settled`](crate::store::StoreHandle::settled).
    pub(crate) fn settled(&self) -> bool {
        self.store.settled()
    }

    /// Writes ever sent to the store: see
    /// [`StoreHandle::handed`](crate::store::StoreHandle::handed).
    pub(crate) fn writes(&self) -> u64 {
        self.store.handed()
    }

    /// What the acknowledgement of `msg` waits for: the commit of the last write that queued
    /// it, or, if there is none to reuse (a retained message, written apart), a barrier. Saves
    /// an empty request through the writer per acknowledgement.
    pub(crate) fn ack_ticket(&self, msg: &Message) -> Result<Ticket, StoreError> {
        match msg.stored.take_ticket() {
            Some(ticket) if !msg.retain => Ok(ticket),
            _ => self.barrier(),
        }
    }

    /// Writes a persistent session's outbox events (see [`Event`]); a message is written with
    /// the first queue entry that refers to it and removed with the last (see [`StoreSlot`]).
    /// True if QoS 2 messages were recorded as sent.
    pub(crate) fn journal(&self, client_id: &ByteString, events: Vec<Event>) -> bool {
        let mut ops = Vec::with_capacity(events.len() + 1);
        let mut qos2_sent = false;
        // The message this call queues, whose publisher's acknowledgement waits for the write
        // (see `ack_ticket`), whether it queues more than one, and whether its delivery may
        // end before the write is committed (see `StoreHandle::send_consumable`).
        let (mut queued, mut several, mut consumable) = (None::<Arc<Message>>, false, false);
        // Read once a message is written, not per call: most calls write no message (a
        // delivery's end, or a message some other session wrote first).
        let mut clocks = None;
        for event in events {
            let (out, state) = match event {
                Event::Queued { out, online } => {
                    // QoS 1 in and out: the entry is all that keeps the message, so its
                    // receiver's acknowledgement makes it safe. A QoS 2 publisher's PUBREC
                    // also vouches for the packet id written before, which needs a commit.
                    consumable =
                        online && out.qos == QoS::AtLeastOnce && out.msg.qos == QoS::AtLeastOnce;
                    (out, DeliveryState::Queued)
                }
                Event::Sent(out, packet_id) => {
                    qos2_sent |= out.qos == QoS::ExactlyOnce;
                    (out, DeliveryState::Sent { packet_id })
                }
                Event::Released(out, packet_id) => (out, DeliveryState::Released { packet_id }),
                Event::Done(out) => {
                    let Some(seq) = out.seq else { continue };
                    ops.push(Op::DeleteQueued {
                        client_id: client_id.clone(),
                        seq,
                        written_once: written_once(&out),
                    });
                    if let Some(id) = out.msg.stored.release(client_id, seq) {
                        ops.push(Op::DeleteMessage { id });
                    }
                    continue;
                }
            };
            let Some(seq) = out.seq else { continue };
            let (id, inline) = if matches!(state, DeliveryState::Queued) {
                if let Some(other) = queued.replace(out.msg.clone()) {
                    several = true;
                    // One ticket cannot serve two messages, and the ticket a message holds
                    // does not cover this write: both acknowledgements take a barrier.
                    other.stored.take_ticket();
                }
                if several {
                    out.msg.stored.take_ticket();
                }
                self.reference(client_id, seq, &out.msg, &mut clocks, &mut ops)
            } else {
                match out.msg.stored.held(client_id, seq) {
                    Some(held) => held,
                    None => continue,
                }
            };
            // An entry carrying its message carries it in every state it is rewritten in.
            let inline = inline.then(|| {
                let at = *clocks.get_or_insert_with(Clocks::now);
                Box::new(convert::stored_message(&out.msg, at))
            });
            ops.push(Op::PutQueued {
                client_id: client_id.clone(),
                seq,
                entry: QueueEntry {
                    message: id,
                    inline,
                    qos: out.qos,
                    retain: out.retain,
                    subscription_ids: out.subscription_ids.clone(),
                    state,
                },
            });
        }
        match queued {
            Some(msg) if !several => match self.send_queued(ops, consumable) {
                Ok(ticket) => msg.stored.set_ticket(ticket),
                Err(e) => {
                    // The acknowledgement must not go: an earlier session's ticket, or a
                    // barrier, would let it.
                    warn!(error = %e, "not written to the store");
                    msg.stored.set_ticket(Ticket::failed(e));
                }
            },
            _ if !ops.is_empty() => self.send(ops),
            _ => {}
        }
        qos2_sent
    }

    fn send_queued(&self, ops: Vec<Op>, consumable: bool) -> Result<Ticket, StoreError> {
        if consumable {
            self.store.send_consumable(ops)
        } else {
            self.store.send(ops)
        }
    }

    /// The message's id for `client_id`'s entry at `seq`, and whether the entry carries the
    /// message; writes the message's record first if the entry is the first to refer to one.
    fn reference(
        &self,
        client_id: &ByteString,
        seq: u64,
        msg: &Message,
        clocks: &mut Option<Clocks>,
        ops: &mut Vec<Op>,
    ) -> (MessageId, bool) {
        let reference = msg.stored.reference(client_id, seq, || {
            MessageId(self.next_message_id.fetch_add(1, Ordering::Relaxed))
        });
        if reference.write {
            ops.push(Op::PutMessage {
                id: reference.id,
                message: convert::stored_message(msg, *clocks.get_or_insert_with(Clocks::now)),
            });
        }
        (reference.id, reference.inline)
    }

    /// An incoming QoS 2 exchange of a persistent session opened or closed.
    pub(crate) fn incoming_qos2(
        &self,
        client_id: &ByteString,
        packet_id: NonZeroU16,
        change: Qos2Change,
    ) {
        let client_id = client_id.clone();
        self.send(vec![match change {
            Qos2Change::Opened(forwarded) => Op::PutIncomingQos2 {
                client_id,
                packet_id,
                forwarded,
            },
            Qos2Change::Closed => Op::DeleteIncomingQos2 {
                client_id,
                packet_id,
            },
        }]);
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
        let record = convert::session_record(client_id, parts, disconnected, will_due);
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

    /// The store, if the broker has one.
    pub(crate) fn persist(&self) -> Option<&Persist> {
        self.shared.persist.as_deref()
    }

    /// The store for a new session to write to.
    pub(crate) fn session_store(&self) -> Option<Arc<Persist>> {
        self.shared.persist.clone()
    }

    /// Commits everything written so far and stops the store's writer.
    pub async fn close_store(&self) {
        if let Some(persist) = &self.shared.persist {
            persist.close().await;
        }
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

/// Whether `out`'s queue entry was put once and never rewritten: a QoS 1 entry is written
/// when queued and not again (see `Outbox::send`), unless an older version wrote it before
/// the restart. QoS 2 entries are rewritten as their exchange goes on.
fn written_once(out: &Outgoing) -> bool {
    out.qos == aviary_protocol::QoS::AtLeastOnce && !out.msg.stored.recovered_from_store()
}

/// A stored session as the broker rebuilds it. A session whose client was connected when the
/// gateway stopped (no disconnection time) lost its connection then: its expiry and delayed will
/// count from the restart. Errs with a filter that does not parse.
pub(super) fn recovered_session(
    record: SessionRecord,
    clocks: Clocks,
) -> Result<RecoveredSession, String> {
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
