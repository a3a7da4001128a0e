//! Durable broker state: retained messages, persistent sessions, their
//! queues, in-flight messages both ways and pending wills.
//!
//! The broker talks to the store through a few record types of its own
//! (not the broker's types: the broker converts, so either side can change
//! its internals) and one operation, [`Store::commit`], which applies a list
//! of [`Op`]s atomically. At start, [`Store::load`] returns everything as a
//! [`Snapshot`] from which the broker rebuilds its state.
//!
//! A message routed to many persistent sessions is stored once
//! ([`Op::PutMessage`]) and referenced by [`MessageId`] from each session's
//! queue ([`Op::PutQueued`]). The broker counts the references and deletes
//! the message with the last of them; [`Snapshot::unreferenced_messages`]
//! finds what a crash left behind between the two. The first queue entry of a
//! message may carry the message itself instead ([`QueueEntry::inline`]): a
//! message with one persistent subscriber, the common case, then costs one key
//! written and deleted rather than two, and a message with many is stored twice.
//!
//! Implementations: [`MemoryStore`], the reference that the unit tests run
//! against, and [`DiskStore`], an embedded LSM tree (fjall) in the data
//! directory. [`StoreHandle`] puts either behind one writer task that groups
//! the commits of many connections (group commit).

pub(crate) mod codec;
mod disk;
mod error;
mod lock;
mod memory;
mod records;
pub mod replica;
mod staging;
mod undo;
mod writer;

#[cfg(test)]
mod disk_tests;
#[cfg(test)]
mod process_tests;
#[cfg(test)]
mod replica_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod undo_tests;
#[cfg(test)]
mod writer_tests;

use std::collections::{BTreeMap, BTreeSet};
use std::num::{NonZeroU16, NonZeroU32};
use std::path::Path;
use std::sync::Arc;

use aviary_protocol::{ByteString, MessageProperties, ProtocolVersion, QoS, SubscriptionOptions};
use bytes::Bytes;

use crate::config::{Durability, StoreConfig};

pub use disk::{DiskStore, SyncMode};
pub use error::StoreError;
pub use memory::MemoryStore;
pub use replica::{replay, Replica};
pub use staging::Prepared;
pub use writer::{StoreHandle, Ticket, WriterStats};

/// Identifies a stored message. The broker allocates ids, increasing, from
/// [`Snapshot::next_message_id`] on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub u64);

/// An application message as stored: once per message, whatever the number
/// of queues that reference it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The topic it was published to.
    pub topic: ByteString,
    /// The payload, shared with the broker's copy.
    pub payload: Bytes,
    /// The QoS it was published with.
    pub qos: QoS,
    /// The RETAIN flag it was published with.
    pub retain: bool,
    /// MQTT 5 message properties, forwarded untouched.
    pub properties: MessageProperties,
    /// Wall-clock time (Unix ms) when its Message Expiry Interval runs out;
    /// wall clock because it must mean the same after a restart.
    pub expires_at_unix_ms: Option<u64>,
    /// In cluster mode, its sequence number in the cluster's message stream, when it came
    /// from there: a node adopting a dead node's sessions knows by it which of the messages
    /// the dead node's consumer gives again it had already queued.
    pub stream_seq: Option<u64>,
}

/// One subscription of a persistent session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    /// The topic filter as subscribed, `$share/group/` prefix included.
    pub filter: ByteString,
    /// QoS, No Local, Retain As Published and Retain Handling.
    pub options: SubscriptionOptions,
    /// The MQTT 5 Subscription Identifier, if the SUBSCRIBE had one.
    pub identifier: Option<NonZeroU32>,
}

/// A will message and its MQTT 5 Will Delay Interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWill {
    /// The message to publish.
    pub message: StoredMessage,
    /// Seconds to wait after the connection is lost (0 for MQTT 3.x).
    pub delay_secs: u32,
}

/// The durable part of a persistent session, without its queue (which is
/// written entry by entry, [`Op::PutQueued`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The client identifier: the session's key.
    pub client_id: ByteString,
    /// The protocol version of the last CONNECT.
    pub protocol: ProtocolVersion,
    /// The Session Expiry Interval granted, in seconds; `u32::MAX` is never.
    pub expiry_secs: u32,
    /// When the client went away (Unix ms); `None` while it is connected.
    /// Expiry counts from here, across restarts.
    pub disconnected_at_unix_ms: Option<u64>,
    /// Its subscriptions, in the order the broker keeps them.
    pub subscriptions: Vec<StoredSubscription>,
    /// The will of the current or last connection, if any.
    pub will: Option<StoredWill>,
    /// When a delayed will is due (Unix ms), once the connection is lost.
    pub will_due_at_unix_ms: Option<u64>,
    /// The username of the last connection: the ACL decides the session's
    /// deliveries, and whether its will may be published, for it.
    pub username: Option<ByteString>,
}

/// Where a queued message is in its delivery to the subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not sent yet.
    Queued,
    /// Sent as a PUBLISH with this packet id, not yet acknowledged (PUBACK
    /// for QoS 1, PUBREC for QoS 2): resent with DUP after a restart.
    Sent {
        /// The packet id it was sent with.
        packet_id: NonZeroU16,
    },
    /// QoS 2: PUBREC received and PUBREL sent; only PUBREL is resent.
    Released {
        /// The packet id of the exchange.
        packet_id: NonZeroU16,
    },
}

/// One entry of a session's queue: a reference to a stored message (or the message itself)
/// and how this subscriber gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// The message, stored once by [`Op::PutMessage`]; with [`inline`](Self::inline), the
    /// broker's id of the message, under which no record is stored for this entry.
    pub message: MessageId,
    /// The message itself, carried by the entry instead of a record. The broker does this for
    /// the first session that queues a message: when it is the only one (the common case), a
    /// delivery writes and deletes one key instead of two. Later sessions share one record.
    pub inline: Option<Box<StoredMessage>>,
    /// The QoS for this subscriber (the publish QoS capped by the
    /// subscription's).
    pub qos: QoS,
    /// The RETAIN flag as this subscriber sees it.
    pub retain: bool,
    /// Identifiers of the matching subscriptions (MQTT 5).
    pub subscription_ids: Vec<NonZeroU32>,
    /// Delivery progress.
    pub state: DeliveryState,
}

/// One change to durable state. A [`Store::commit`] applies a list of them
/// atomically and in order: a later op on the same record wins.
///
/// [`Op::PutMessage`] and an [`Op::PutQueued`] in state [`DeliveryState::Queued`] create their
/// record: the broker writes them under an id or sequence number that holds no record (ids
/// only grow, and a queue's numbers restart only after [`Op::DeleteSession`]). A commit that
/// creates a record and deletes it again may therefore write neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Stores a message under its id.
    PutMessage {
        /// The id the broker allocated.
        id: MessageId,
        /// The message.
        message: StoredMessage,
    },
    /// Deletes a message once no queue references it.
    DeleteMessage {
        /// Its id.
        id: MessageId,
    },
    /// Creates or replaces a session record.
    PutSession(SessionRecord),
    /// Deletes a session with its queue entries and incoming QoS 2 ids.
    /// The messages they referenced are the broker's to delete.
    DeleteSession {
        /// The client identifier.
        client_id: ByteString,
    },
    /// Creates or replaces one entry of a session's queue.
    PutQueued {
        /// The session.
        client_id: ByteString,
        /// Position in the queue: the queue is loaded ordered by it.
        seq: u64,
        /// The entry.
        entry: QueueEntry,
    },
    /// Deletes one queue entry (acknowledged, expired or dropped).
    DeleteQueued {
        /// The session.
        client_id: ByteString,
        /// Its position.
        seq: u64,
        /// The entry was put once under this key and never rewritten (a QoS 1 entry this
        /// broker queued): the disk store may then let the put and the delete vanish together
        /// when they meet, rather than keep the delete until compaction reaches the bottom.
        /// False when unsure: an older version of the entry would come back.
        written_once: bool,
    },
    /// Records an incoming QoS 2 packet id awaiting PUBREL, so that the
    /// message is not delivered twice after a restart.
    PutIncomingQos2 {
        /// The session.
        client_id: ByteString,
        /// The publisher's packet id.
        packet_id: NonZeroU16,
        /// In cluster mode, how its message was forwarded to the other nodes.
        forwarded: Option<Forwarded>,
    },
    /// Forgets an incoming QoS 2 packet id (PUBREL received).
    DeleteIncomingQos2 {
        /// The session.
        client_id: ByteString,
        /// The publisher's packet id.
        packet_id: NonZeroU16,
    },
    /// Sets the retained message of a topic, the message stored inline.
    PutRetained {
        /// The topic.
        topic: ByteString,
        /// The message.
        message: StoredMessage,
    },
    /// Clears the retained message of a topic.
    DeleteRetained {
        /// The topic.
        topic: ByteString,
    },
}

/// How a cluster node forwarded the message of an incoming QoS 2 exchange to the other
/// nodes: the node, and the token its copy in the cluster's stream is known by there. A
/// resend of the PUBLISH, on whichever node the publisher reconnects to, forwards the message
/// again under the same token, and the stream keeps one copy of the two: the message goes
/// out once, whether the first copy made it before its node died or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// The node the exchange was opened on.
    pub node: ByteString,
    /// Unique among that node's exchanges, across its restarts.
    pub token: u64,
}

impl Op {
    /// Whether this op creates its record; see [`Op`].
    pub fn creates(&self) -> bool {
        match self {
            Op::PutMessage { .. } => true,
            Op::PutQueued { entry, .. } => entry.state == DeliveryState::Queued,
            _ => false,
        }
    }
}

/// Everything in a store, read once at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Stored messages by id.
    pub messages: BTreeMap<MessageId, StoredMessage>,
    /// Session records by client identifier.
    pub sessions: BTreeMap<ByteString, SessionRecord>,
    /// Each client's queue, ordered by sequence number.
    pub queues: BTreeMap<ByteString, BTreeMap<u64, QueueEntry>>,
    /// Each client's incoming QoS 2 packet ids awaiting PUBREL, each with how its message
    /// was forwarded to the other nodes (cluster mode).
    pub incoming_qos2: BTreeMap<ByteString, BTreeMap<NonZeroU16, Option<Forwarded>>>,
    /// Retained messages by topic.
    pub retained: BTreeMap<ByteString, StoredMessage>,
}

impl Snapshot {
    /// The first message id not in use, by a record or by an entry carrying its message:
    /// where the broker's counter resumes.
    pub fn next_message_id(&self) -> MessageId {
        let records = self.messages.keys().next_back().copied();
        let entries = self
            .queues
            .values()
            .flat_map(|q| q.values())
            .map(|e| e.message);
        let last = entries.chain(records).max();
        MessageId(last.map_or(1, |id| id.0 + 1))
    }

    /// The first queue sequence number not in use for `client_id`.
    pub fn next_seq(&self, client_id: &str) -> u64 {
        self.queues
            .get(client_id)
            .and_then(|q| q.keys().next_back())
            .map_or(0, |seq| seq + 1)
    }

    /// Messages that no queue entry references: left behind when a crash
    /// came between a session's end and the broker's cleanup. The broker
    /// deletes them at start.
    pub fn unreferenced_messages(&self) -> Vec<MessageId> {
        let used: BTreeSet<MessageId> = self
            .queues
            .values()
            .flat_map(|q| q.values())
            .filter(|e| e.inline.is_none())
            .map(|e| e.message)
            .collect();
        self.messages
            .keys()
            .filter(|id| !used.contains(id))
            .copied()
            .collect()
    }
}

/// Durable state behind one atomic operation.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Applies `ops` in order, all or nothing. When it returns `Ok`, the
    /// changes are as durable as the store's mode promises.
    fn commit(&self, ops: &[Op]) -> Result<(), StoreError>;

    /// Checks `ops` and readies them for [`commit_prepared`](Self::commit_prepared). The
    /// group commit's writer calls it on the submitter's thread, before the request joins a
    /// batch: work done here is off the one thread that commits for every connection, and a
    /// request it refuses fails alone rather than with its whole batch.
    fn prepare(&self, ops: Vec<Op>) -> Result<Prepared, StoreError> {
        validate(&ops)?;
        Ok(Prepared::ops(ops))
    }

    /// Commits prepared requests as one, in order, as [`commit`](Self::commit) of all their
    /// ops would.
    fn commit_prepared(&self, requests: Vec<Prepared>) -> Result<(), StoreError> {
        let mut ops = Vec::new();
        for request in requests {
            match request.0 {
                staging::Form::Ops(more) => ops.extend(more),
                staging::Form::Staged(_) => {
                    return Err(StoreError::Invalid {
                        reason: "a request prepared by another store".to_owned(),
                    })
                }
            }
        }
        self.commit(&ops)
    }

    /// Reads everything, for recovery at start.
    fn load(&self) -> Result<Snapshot, StoreError>;

    /// Bytes the store takes on disk (0 for memory).
    fn disk_bytes(&self) -> u64;

    /// Keeps a copy of the store in `replica`'s log from now on: everything the store holds
    /// at once, then every commit before it returns (see [`replica`]). Blocks while the
    /// first copy is written: not to be called on an async task's thread.
    fn replicate_to(&self, replica: Arc<dyn Replica>) -> Result<(), StoreError> {
        let _ = replica;
        Err(StoreError::Invalid {
            reason: "this store keeps nothing to replicate".to_owned(),
        })
    }
}

/// Opens the store that `config` asks for in `data_dir` and starts its
/// writer task; `None` for `durability = "memory"`, where nothing is
/// written. Must be called inside a Tokio runtime.
pub fn open(config: &StoreConfig, data_dir: &Path) -> Result<Option<StoreHandle>, StoreError> {
    let mode = match config.durability {
        Durability::Memory => return Ok(None),
        Durability::Process => SyncMode::Process,
        Durability::Fsync => SyncMode::Fsync,
    };
    let store = DiskStore::open(data_dir, mode)?;
    Ok(Some(StoreHandle::start(Arc::new(store), config)))
}

/// Longest client identifier a store accepts: the disk store's keys carry
/// it with a sequence number and must stay under the engine's 64 KiB.
pub const MAX_CLIENT_ID_BYTES: usize = 65_000;

/// Checks what the record types cannot express, before anything is applied,
/// so that a rejected commit changes nothing in either implementation.
fn validate(ops: &[Op]) -> Result<(), StoreError> {
    for op in ops {
        let client_id = match op {
            Op::PutSession(record) => &record.client_id,
            Op::DeleteSession { client_id }
            | Op::PutQueued { client_id, .. }
            | Op::DeleteQueued { client_id, .. }
            | Op::PutIncomingQos2 { client_id, .. }
            | Op::DeleteIncomingQos2 { client_id, .. } => client_id,
            Op::PutRetained { topic, .. } | Op::DeleteRetained { topic } => {
                // MQTT strings are at most 65,535 bytes; the engine's keys too.
                if topic.len() > usize::from(u16::MAX) {
                    return Err(StoreError::Invalid {
                        reason: format!("retained topic of {} bytes is too long", topic.len()),
                    });
                }
                continue;
            }
            Op::PutMessage { .. } | Op::DeleteMessage { .. } => continue,
        };
        if client_id.len() > MAX_CLIENT_ID_BYTES {
            return Err(StoreError::Invalid {
                reason: format!(
                    "client identifier of {} bytes is longer than the store's limit of \
                     {MAX_CLIENT_ID_BYTES}",
                    client_id.len()
                ),
            });
        }
    }
    Ok(())
}
