//! What one disk commit writes: each op turned into the engine's key and value
//! ([`encode`]), and the final write of each key ([`Pending`]).
//!
//! The encoding runs where the ops are made ([`super::Store::prepare`], on the connections'
//! threads), so the commit, which runs on one thread for every connection and which every
//! acknowledgement waits for, only coalesces ready bytes and hands them to fjall.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use aviary_protocol::ByteString;

use super::{codec, Op};

/// The record kinds, one fjall keyspace each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kind {
    Messages,
    Sessions,
    Queue,
    Qos2,
    Retained,
}

impl Kind {
    pub(super) const ALL: [Self; 5] = [
        Self::Messages,
        Self::Sessions,
        Self::Queue,
        Self::Qos2,
        Self::Retained,
    ];

    /// The kind whose `kind as u8` is `b`.
    pub(super) fn from_byte(b: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|k| *k as u8 == b)
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Messages => "messages",
            Self::Sessions => "sessions",
            Self::Queue => "queue",
            Self::Qos2 => "incoming_qos2",
            Self::Retained => "retained",
        }
    }
}

/// A request's ops, validated and made ready for its store's commit: see
/// [`super::Store::prepare`].
#[derive(Debug)]
pub struct Prepared(pub(super) Form);

/// What a store made of the ops.
#[derive(Debug)]
pub(super) enum Form {
    /// Kept as they are, for a store that applies ops.
    Ops(Vec<Op>),
    /// Encoded for the disk store.
    Staged(Vec<Staged>),
}

impl Prepared {
    /// Ops as they are.
    pub(super) fn ops(ops: Vec<Op>) -> Self {
        Self(Form::Ops(ops))
    }

    /// How many ops it holds.
    pub fn len(&self) -> usize {
        match &self.0 {
            Form::Ops(ops) => ops.len(),
            Form::Staged(staged) => staged.len(),
        }
    }

    /// Whether it holds no op.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One op as the engine sees it.
#[derive(Debug)]
pub(super) enum Staged {
    /// A write of one key: `value` `None` deletes it; `creates` as [`Op::creates`]; `once`
    /// for a delete of a key that was put once and never rewritten.
    Write {
        kind: Kind,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        creates: bool,
        once: bool,
    },
    /// [`Op::DeleteSession`]: which keys it deletes is read from the store at commit time.
    DeleteSession(ByteString),
    /// A write undone before its commit by a later delete of its record (see `super::undo`):
    /// nothing to write.
    Undone,
}

/// Encodes one op.
pub(super) fn encode(op: &Op) -> Staged {
    let creates = op.creates();
    let mut once = false;
    let (kind, key, value) = match op {
        Op::PutMessage { id, message } => (
            Kind::Messages,
            codec::message_key(*id).to_vec(),
            Some(codec::encode_message(message)),
        ),
        Op::DeleteMessage { id } => {
            // A record is written once under its id: ids are never reused (see `StoreSlot`).
            once = true;
            (Kind::Messages, codec::message_key(*id).to_vec(), None)
        }
        Op::PutSession(r) => (
            Kind::Sessions,
            r.client_id.as_bytes().to_vec(),
            Some(codec::encode_session(r)),
        ),
        Op::DeleteSession { client_id } => return Staged::DeleteSession(client_id.clone()),
        Op::PutQueued {
            client_id,
            seq,
            entry,
        } => (
            Kind::Queue,
            codec::queue_key(client_id, *seq),
            Some(codec::encode_queue_entry(entry)),
        ),
        Op::DeleteQueued {
            client_id,
            seq,
            written_once,
        } => {
            once = *written_once;
            (Kind::Queue, codec::queue_key(client_id, *seq), None)
        }
        Op::PutIncomingQos2 {
            client_id,
            packet_id,
            forwarded,
        } => (
            Kind::Qos2,
            codec::qos2_key(client_id, *packet_id),
            Some(codec::encode_forwarded(forwarded.as_ref())),
        ),
        Op::DeleteIncomingQos2 {
            client_id,
            packet_id,
        } => (Kind::Qos2, codec::qos2_key(client_id, *packet_id), None),
        Op::PutRetained { topic, message } => (
            Kind::Retained,
            topic.as_bytes().to_vec(),
            Some(codec::encode_message(message)),
        ),
        Op::DeleteRetained { topic } => (Kind::Retained, topic.as_bytes().to_vec(), None),
    };
    Staged::Write {
        kind,
        key,
        value,
        creates,
        once,
    }
}

/// The final write of each key in one commit. Coalescing matters because all items of a
/// fjall batch share one sequence number, so two writes of one key in a batch would be
/// ambiguous.
pub(super) type Pending = HashMap<(Kind, Vec<u8>), Write, BuildHasherDefault<KeyHasher>>;

/// An empty [`Pending`] with room for `ops` keys, so a big batch does not rehash as it grows.
pub(super) fn pending(ops: usize) -> Pending {
    Pending::with_capacity_and_hasher(ops, BuildHasherDefault::default())
}

/// What a commit writes under one key.
#[derive(Debug)]
pub(super) struct Write {
    /// The value, `None` to delete.
    pub(super) value: Option<Vec<u8>>,
    /// A delete of a key put once and never rewritten: see [`Op::DeleteQueued`].
    pub(super) once: bool,
    /// The commit's first write of the key created its record (see [`Op`]): no record was
    /// there before, so a later delete in the same commit leaves nothing to write at all.
    created: bool,
}

/// Stages a write of `key`: the last one wins, and deleting a record this commit created
/// writes neither. The queue workload's put and delete meet in one batch when a subscriber
/// acknowledges a message before the batch holding it is committed, as it may under load:
/// then neither reaches the engine's memtable or journal.
pub(super) fn stage_write(
    pending: &mut Pending,
    key: (Kind, Vec<u8>),
    value: Option<Vec<u8>>,
    creates: bool,
    once: bool,
) {
    match (pending.entry(key), value) {
        (Entry::Occupied(e), None) if e.get().created => {
            e.remove();
        }
        (Entry::Occupied(mut e), value) => {
            let write = e.get_mut();
            // A delete after a put in the same commit is of a key written more than once.
            write.once = false;
            write.value = value;
        }
        (Entry::Vacant(e), value) => {
            let created = creates && value.is_some();
            let once = once && value.is_none();
            e.insert(Write {
                value,
                once,
                created,
            });
        }
    }
}

/// The hasher of [`Pending`]'s keys, after rustc's FxHash: a multiply per 8 bytes. The
/// default SipHash took a tenth of the commit thread; its resistance to chosen keys buys
/// little here, where a batch holds at most `max_batch_ops` keys.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct KeyHasher(u64);

impl KeyHasher {
    const SEED: u64 = 0xf135_7aea_2e62_a9c5;

    fn add(&mut self, word: u64) {
        self.0 = self.0.wrapping_add(word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.add(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn write_isize(&mut self, n: isize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // hashbrown picks buckets from the low bits and tags from the high ones: the
        // rotation brings the well-mixed high bits of the product down.
        self.0.rotate_left(26)
    }
}
