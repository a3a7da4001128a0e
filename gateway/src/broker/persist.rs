//! The broker's side of the store: which changes are written, and how the broker comes back
//! from what was written ([`recover`]).
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
mod recover;

use std::num::NonZeroU16;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aviary_protocol::{ByteString, QoS, TopicFilter};
use tracing::warn;

use super::session::Event;
use super::{Broker, Message, Outgoing};
use crate::store::{
    DeliveryState, Forwarded, MessageId, Op, QueueEntry, StoreError, StoreHandle, Ticket,
};
pub(crate) use convert::Clocks;
pub(super) use recover::recovered_session;

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
            let message = convert::stored_message_with(msg, Clocks::now);
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

/// Whether `out`'s queue entry was put once and never rewritten: a QoS 1 entry is written
/// when queued and not again (see `Outbox::send`), unless an older version wrote it before
/// the restart. QoS 2 entries are rewritten as their exchange goes on.
fn written_once(out: &Outgoing) -> bool {
    out.qos == aviary_protocol::QoS::AtLeastOnce && !out.msg.stored.recovered_from_store()
}
