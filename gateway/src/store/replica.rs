//! A copy of the disk store kept elsewhere, as a log: what lets a cluster node's persistent
//! sessions outlive the node (see `cluster::replica`, which keeps the log in JetStream).
//!
//! Once a [`Replica`] is attached, every commit of the disk store appends its final writes
//! to the replica's log, after the local commit and before the commit returns: whatever a
//! client was acknowledged is in the log too. The log is made of *groups*, each written as
//! one or more records of at most [`CHUNK`] bytes (a record fits in a NATS message whatever
//! the size of one value):
//! - a **batch**: the writes of one commit;
//! - a **snapshot**: every record of the store. The first group after the replica is
//!   attached (the store held data before), after the log failed once (it may have missed a
//!   batch), and whenever the batches since the last snapshot outweigh it: once a snapshot
//!   is whole in the log, what came before it is dropped ([`Replica::truncate`]), so the log
//!   stays within a small multiple of the store's size.
//!
//! [`replay`] reads a log back into a [`Snapshot`], as the store's own `load` would have
//! returned it. A group applies only once its last record is read: a node that died while
//! writing one leaves a partial group, which replay skips, as the store's journal skips a
//! torn batch.
//!
//! Record layout: a version byte, the group's kind, a byte saying whether it is the group's
//! last record, the group's id (u64 big-endian), then a slice of the group's bytes. A group's
//! bytes are its writes, each: keyspace byte, key length (u32 BE) and key, then 0 (delete)
//! or 1, value length (u32 BE) and value.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes};

use super::records;
use super::staging::Kind;
use super::{Snapshot, StoreError};

/// Where a store's log is kept.
pub trait Replica: Send + Sync + std::fmt::Debug {
    /// Appends `records` to the log, in order, and returns once the log holds them all: the
    /// log position of the first. Called on the store's commit thread, which it may block.
    fn append(&self, records: Vec<Bytes>) -> Result<u64, String>;

    /// Drops the log's records before position `first`.
    fn truncate(&self, first: u64) -> Result<(), String>;
}

/// The log format's version, first byte of every record.
const VERSION: u8 = 1;
/// Bytes of a record's header: version, kind, last, group id.
const HEADER: usize = 3 + 8;
/// Most group bytes per record: well under NATS's default 1 MiB message limit.
pub(super) const CHUNK: usize = 256 * 1024;
/// Log bytes since the last snapshot below which no new snapshot is written, however small
/// the store: a snapshot per few batches would cost more than the batches.
const COMPACT_MIN_BYTES: u64 = 16 * 1024 * 1024;
/// Records sent to the replica at once while a snapshot is written, so that a big store
/// is not held in memory twice.
const SNAPSHOT_RECORDS_PER_APPEND: usize = 16;

/// What a group holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GroupKind {
    Batch = 1,
    Snapshot = 2,
}

/// Encodes one group into records.
#[derive(Debug)]
pub(super) struct GroupWriter {
    kind: GroupKind,
    id: u64,
    buf: Vec<u8>,
    records: Vec<Bytes>,
    /// Bytes of all the group's records so far.
    pub(super) bytes: u64,
}

impl GroupWriter {
    pub(super) fn new(kind: GroupKind, id: u64) -> Self {
        let mut w = Self {
            kind,
            id,
            buf: Vec::new(),
            records: Vec::new(),
            bytes: 0,
        };
        w.start_record();
        w
    }

    fn start_record(&mut self) {
        self.buf = Vec::with_capacity(HEADER + 4096);
        self.buf.put_u8(VERSION);
        self.buf.put_u8(self.kind as u8);
        self.buf.put_u8(0);
        self.buf.put_u64(self.id);
    }

    /// Adds the write of `key` in keyspace `kind`: `value`, or a delete.
    pub(super) fn write(&mut self, kind: Kind, key: &[u8], value: Option<&[u8]>) {
        self.put(&[kind as u8]);
        self.put(&(key.len() as u32).to_be_bytes());
        self.put(key);
        match value {
            None => self.put(&[0]),
            Some(v) => {
                self.put(&[1]);
                self.put(&(v.len() as u32).to_be_bytes());
                self.put(v);
            }
        }
    }

    /// Appends group bytes, starting a new record whenever one is full.
    fn put(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = HEADER + CHUNK - self.buf.len();
            if room == 0 {
                let full = std::mem::take(&mut self.buf);
                self.push(full);
                self.start_record();
                continue;
            }
            let n = room.min(bytes.len());
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
    }

    fn push(&mut self, record: Vec<u8>) {
        self.bytes += record.len() as u64;
        self.records.push(Bytes::from(record));
    }

    /// The records completed so far, taken (the group goes on).
    pub(super) fn take_records(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.records)
    }

    /// Ends the group: the remaining records, the last one marked so.
    pub(super) fn finish(mut self) -> (Vec<Bytes>, u64) {
        let mut last = std::mem::take(&mut self.buf);
        last[2] = 1;
        self.push(last);
        (self.records, self.bytes)
    }
}

/// The replica's side of a disk store: whether the next commit must write a snapshot, and
/// how much was logged since the last one.
#[derive(Debug)]
pub(super) struct Replication {
    /// A snapshot goes first: at attach, and after a failed append.
    pub(super) needs_snapshot: bool,
    /// Bytes of the last snapshot.
    pub(super) snapshot_bytes: u64,
    /// Bytes of batches since.
    pub(super) since_snapshot: u64,
    /// Log bytes since the last snapshot below which no new one is written.
    pub(super) compact_min: u64,
    /// The next group's id. Ids start from the clock, so that a restarted node's first
    /// group is not taken for the continuation of one it left partial.
    pub(super) next_group: u64,
}

impl Default for Replication {
    fn default() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self {
            needs_snapshot: true,
            snapshot_bytes: 0,
            since_snapshot: 0,
            compact_min: COMPACT_MIN_BYTES,
            next_group: now,
        }
    }
}

impl Replication {
    /// A new group's id.
    pub(super) fn group_id(&mut self) -> u64 {
        self.next_group = self.next_group.wrapping_add(1);
        self.next_group
    }

    /// Whether the batches logged since the last snapshot call for a new one.
    pub(super) fn compaction_due(&self) -> bool {
        self.since_snapshot > self.compact_min.max(2 * self.snapshot_bytes)
    }
}

/// Writes a snapshot group made of `records`, all of the store's, to `replica`, then drops
/// what the log held before it. Returns the snapshot's bytes.
pub(super) fn write_snapshot<I>(replica: &dyn Replica, id: u64, records: I) -> Result<u64, String>
where
    I: IntoIterator<Item = Result<(Kind, Vec<u8>, Vec<u8>), String>>,
{
    let mut group = GroupWriter::new(GroupKind::Snapshot, id);
    let mut first = None;
    for record in records {
        let (kind, key, value) = record?;
        group.write(kind, &key, Some(&value));
        if group.records.len() >= SNAPSHOT_RECORDS_PER_APPEND {
            let at = replica.append(group.take_records())?;
            first.get_or_insert(at);
        }
    }
    let (rest, bytes) = group.finish();
    let at = replica.append(rest)?;
    replica.truncate(first.unwrap_or(at))?;
    Ok(bytes)
}

/// Rebuilds what the store held from its log's records, oldest first.
pub fn replay<I>(log: I) -> Result<Snapshot, StoreError>
where
    I: IntoIterator<Item = Bytes>,
{
    let corrupt = |detail: String| StoreError::Corrupt {
        path: "<replica log>".into(),
        detail,
    };
    let mut state: BTreeMap<(u8, Vec<u8>), Bytes> = BTreeMap::new();
    // The group being read: its kind, id and bytes so far.
    let mut open: Option<(u8, u64, Vec<u8>)> = None;
    for (i, mut record) in log.into_iter().enumerate() {
        if record.len() < HEADER || record[0] != VERSION {
            return Err(corrupt(format!(
                "record {i} is not a version {VERSION} log record"
            )));
        }
        let (kind, last) = (record[1], record[2] == 1);
        record.advance(3);
        let id = record.get_u64();
        let group = match open.take() {
            Some((k, g, bytes)) if k == kind && g == id => (k, g, bytes),
            // Whatever was open was cut short: its writer died mid-group.
            _ => (kind, id, Vec::new()),
        };
        let (kind, id, mut bytes) = group;
        bytes.extend_from_slice(&record);
        if !last {
            open = Some((kind, id, bytes));
            continue;
        }
        let writes =
            decode_writes(Bytes::from(bytes)).map_err(|e| corrupt(format!("group {id}: {e}")))?;
        match kind {
            k if k == GroupKind::Batch as u8 => {
                for (key, value) in writes {
                    match value {
                        Some(v) => state.insert(key, v),
                        None => state.remove(&key),
                    };
                }
            }
            k if k == GroupKind::Snapshot as u8 => {
                state = writes
                    .into_iter()
                    .filter_map(|(key, value)| Some((key, value?)))
                    .collect();
            }
            other => return Err(corrupt(format!("group {id} is of unknown kind {other}"))),
        }
    }
    let mut s = Snapshot::default();
    for ((kind, key), value) in state {
        let kind =
            Kind::from_byte(kind).ok_or_else(|| corrupt(format!("unknown keyspace {kind}")))?;
        records::decode_into(&mut s, kind, &key, value).map_err(|e| {
            corrupt(format!(
                "a record of keyspace `{}` does not decode: {}",
                kind.name(),
                e.0
            ))
        })?;
    }
    Ok(s)
}

/// One decoded write: the key (with its keyspace) and the value, `None` for a delete.
type LoggedWrite = ((u8, Vec<u8>), Option<Bytes>);

/// Decodes a group's bytes into its writes.
fn decode_writes(mut b: Bytes) -> Result<Vec<LoggedWrite>, &'static str> {
    let mut writes = Vec::new();
    while b.has_remaining() {
        let kind = b.try_get_u8().map_err(|_| "truncated write")?;
        let len = b.try_get_u32().map_err(|_| "truncated key length")? as usize;
        if b.remaining() < len {
            return Err("truncated key");
        }
        let key = b.split_to(len).to_vec();
        let value = match b.try_get_u8().map_err(|_| "truncated value tag")? {
            0 => None,
            1 => {
                let len = b.try_get_u32().map_err(|_| "truncated value length")? as usize;
                if b.remaining() < len {
                    return Err("truncated value");
                }
                Some(b.split_to(len))
            }
            _ => return Err("bad value tag"),
        };
        writes.push(((kind, key), value));
    }
    Ok(writes)
}
