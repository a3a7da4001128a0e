//! The disk store: fjall, an embedded LSM tree, in `<data dir>/store`.
//!
//! Why an LSM tree: the hot workload is a queue, each record written once
//! and deleted soon after. An LSM tree appends both to its journal and lets
//! compaction drop the pairs; a B-tree rewrites pages and fsyncs on every
//! durable commit (see the measurement in the commit that added this file).
//!
//! Each commit is one fjall write batch, which the journal makes atomic:
//! recovery after a crash drops a torn last batch whole. Durability per
//! batch is [`SyncMode`]: the journal's buffer is written to the OS (kill -9
//! safe), or also `fdatasync`ed (power-loss safe).
//!
//! Layout: one keyspace per record kind, plus `meta` holding the format
//! version, checked before any other keyspace is opened.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use parking_lot::Mutex;

use super::codec::{self, DecodeError};
use super::lock::DirLock;
use super::records;
use super::replica::{self, GroupKind, GroupWriter, Replica, Replication};
use super::staging::{self, stage_write, Form, Kind, Pending, Prepared, Staged, Write};
use super::{validate, Op, Snapshot, Store, StoreError};

/// The store's format version: bump it when a key or keyspace changes
/// meaning, or records gain what an older Aviary cannot read.
///
/// 2: a queue entry may carry its message (`QueueEntry::inline`).
/// 3: a message may carry its cluster stream sequence (`StoredMessage::stream_seq`).
///
/// An older store is read as it is (its records are valid records of this version) and
/// marked with this version at open, so that an older Aviary refuses it with a clear error
/// instead of failing on the first new record.
pub(crate) const FORMAT_VERSION: u32 = 3;
/// The oldest format version this Aviary opens (and upgrades).
const OLDEST_FORMAT_VERSION: u32 = 1;
/// The subdirectory of the data directory that fjall owns.
pub(crate) const STORE_DIR: &str = "store";
/// The `meta` key holding [`FORMAT_VERSION`], big-endian.
pub(crate) const VERSION_KEY: &[u8] = b"format_version";

/// How far each committed batch goes before the commit returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Written to the OS: survives the gateway's crash or `kill -9`.
    Process,
    /// Also `fdatasync`ed: survives a power loss or an OS crash.
    Fsync,
}

/// The fjall-backed store. Holds the data directory's lock while open.
pub struct DiskStore {
    db: Database,
    keyspaces: [Keyspace; 5],
    path: PathBuf,
    persist: PersistMode,
    /// One commit at a time: a DeleteSession reads the keys it deletes, and
    /// nothing may slip in between the read and the write. Holds the replica's state, whose
    /// log takes the commits in their order.
    commit_lock: Mutex<Replication>,
    /// Where the store keeps a copy, once attached ([`Store::replicate_to`]).
    replica: OnceLock<Arc<dyn Replica>>,
}

impl std::fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStore")
            .field("path", &self.path)
            .field("persist", &self.persist)
            .finish_non_exhaustive()
    }
}

impl DiskStore {
    /// Opens (or creates) the store in `data_dir`: takes the directory's
    /// lock, recovers the journal and checks the format version.
    pub fn open(data_dir: &Path, mode: SyncMode) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::data_dir(data_dir, e))?;
        let lock = DirLock::acquire(data_dir)?;
        tracing::debug!(lock = %lock.path().display(), "store lock taken");
        let path = data_dir.join(STORE_DIR);
        let existed = path
            .try_exists()
            .map_err(|e| StoreError::data_dir(&path, e))?;
        let db = Database::builder(&path)
            // Each batch says how durable it is; see `commit`.
            .manual_journal_persist(true)
            // The journal is replayed at start, item by item, and kept until its
            // memtables are flushed: fjall's smallest limit (its default is 512 MiB)
            // bounds both the restart time and the disk a steady queue workload takes.
            .max_journaling_size(64 * 1024 * 1024)
            .open()
            .map_err(|e| match e {
                // Open elsewhere: the lock file names who.
                fjall::Error::Locked => StoreError::Locked {
                    path: data_dir.to_owned(),
                    holder: lock.holder(),
                },
                e => open_error(&path, e),
            })?;
        lock.opened()?;
        let meta = open_keyspace(&db, &path, "meta")?;
        check_version(&db, &meta, &path, existed)?;
        let [a, b, c, d, e] = Kind::ALL.map(|k| open_keyspace(&db, &path, k.name()));
        let keyspaces = [a?, b?, c?, d?, e?];
        Ok(Self {
            db,
            keyspaces,
            path,
            persist: match mode {
                SyncMode::Process => PersistMode::Buffer,
                SyncMode::Fsync => PersistMode::SyncData,
            },
            commit_lock: Mutex::new(Replication::default()),
            replica: OnceLock::new(),
        })
    }

    /// The directory fjall owns, `<data dir>/store`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn keyspace(&self, kind: Kind) -> &Keyspace {
        &self.keyspaces[kind as usize]
    }

    /// Adds one op to the commit's final writes.
    fn stage(&self, pending: &mut Pending, staged: Staged) -> Result<(), StoreError> {
        match staged {
            Staged::Write {
                kind,
                key,
                value,
                creates,
                once,
            } => stage_write(pending, (kind, key), value, creates, once),
            Staged::DeleteSession(client_id) => {
                self.stage_delete_session(pending, &client_id)?;
                let key = (Kind::Sessions, client_id.as_bytes().to_vec());
                stage_write(pending, key, None, false, false);
            }
            Staged::Undone => {}
        }
        Ok(())
    }

    /// Deletes a client's queue entries and QoS 2 ids: those on disk and
    /// those staged earlier in this commit.
    fn stage_delete_session(
        &self,
        pending: &mut Pending,
        client_id: &str,
    ) -> Result<(), StoreError> {
        let prefix = codec::client_prefix(client_id);
        let filed = |k: &Kind, key: &[u8]| {
            matches!(k, Kind::Queue | Kind::Qos2) && key.starts_with(&prefix)
        };
        let staged: Vec<_> = pending
            .keys()
            .filter(|(k, key)| filed(k, key))
            .cloned()
            .collect();
        for key in staged {
            stage_write(pending, key, None, false, false);
        }
        for kind in [Kind::Queue, Kind::Qos2] {
            for item in self.keyspace(kind).prefix(&prefix) {
                let (key, _) = item.into_inner().map_err(|e| self.read_error(e))?;
                stage_write(pending, (kind, key.to_vec()), None, false, false);
            }
        }
        Ok(())
    }

    /// Reads one keyspace in key order, decoding each record with `f`.
    fn scan(
        &self,
        kind: Kind,
        mut f: impl FnMut(&[u8], Bytes) -> Result<(), DecodeError>,
    ) -> Result<(), StoreError> {
        for item in self.keyspace(kind).iter() {
            let (key, value) = item.into_inner().map_err(|e| self.read_error(e))?;
            f(&key, Bytes::copy_from_slice(&value)).map_err(|DecodeError(reason)| {
                StoreError::Corrupt {
                    path: self.path.clone(),
                    detail: format!(
                        "a record in keyspace `{}` (key {}) does not decode: {reason}",
                        kind.name(),
                        show_key(&key)
                    ),
                }
            })?;
        }
        Ok(())
    }

    /// An engine error while reading: damaged files, or I/O.
    fn read_error(&self, e: fjall::Error) -> StoreError {
        match e {
            fjall::Error::Io(e) if !is_damage(&e) => StoreError::Io {
                path: self.path.clone(),
                detail: e.to_string(),
            },
            other => StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("reading failed: {other:?}"),
            },
        }
    }
}

impl DiskStore {
    /// Commits validated `requests` as one fjall batch: the final write of each key, in one
    /// journal entry, made as durable as the mode says.
    fn commit_requests(&self, requests: Vec<Prepared>) -> Result<(), StoreError> {
        let n = requests.iter().map(Prepared::len).sum();
        let mut replication = self.commit_lock.lock();
        let mut pending = staging::pending(n);
        for request in requests {
            match request.0 {
                Form::Staged(staged) => {
                    for one in staged {
                        self.stage(&mut pending, one)?;
                    }
                }
                Form::Ops(ops) => {
                    for op in &ops {
                        self.stage(&mut pending, staging::encode(op))?;
                    }
                }
            }
        }
        if pending.is_empty() {
            // Every write was undone (see `super::undo`) or cancelled by a later one.
            return Ok(());
        }
        let replica = self.replica.get();
        // Encoded before the writes move into fjall's batch; a snapshot to come holds them.
        let logged = match replica {
            Some(_) if !replication.needs_snapshot => {
                let mut group = GroupWriter::new(GroupKind::Batch, replication.group_id());
                for ((kind, key), write) in &pending {
                    group.write(*kind, key, write.value.as_deref());
                }
                Some(group)
            }
            _ => None,
        };
        let mut batch = fjall::OwnedWriteBatch::with_capacity(self.db.clone(), pending.len())
            .durability(Some(self.persist));
        for ((kind, key), Write { value, once, .. }) in pending {
            let ks = self.keyspace(kind);
            match value {
                Some(v) => batch.insert(ks, key, v),
                // A weak tombstone vanishes with the put it meets, at the memtable's flush or
                // in a compaction, where a plain one stays until the last level: the queue
                // workload's flushes then write next to nothing. It would bring back an older
                // version of the key, so only keys put once get one (fjall marks it
                // experimental; its compaction stream drops the pair only in that case).
                None if once => batch.remove_weak(ks, key),
                None => batch.remove(ks, key),
            }
        }
        batch.commit().map_err(|e| StoreError::Io {
            path: self.path.clone(),
            detail: format!("commit failed: {e:?}"),
        })?;
        match replica {
            Some(replica) => self.replicate(&mut replication, replica.as_ref(), logged),
            None => Ok(()),
        }
    }

    /// Lowers the log bytes after which a snapshot is due, for tests that want several.
    #[cfg(test)]
    pub(super) fn set_compact_min(&self, bytes: u64) {
        self.commit_lock.lock().compact_min = bytes;
    }

    /// Appends a committed batch to the replica's log, with a snapshot first or after when
    /// one is due. A failure leaves the log behind the store: a snapshot then goes first.
    fn replicate(
        &self,
        r: &mut Replication,
        replica: &dyn Replica,
        logged: Option<GroupWriter>,
    ) -> Result<(), StoreError> {
        let appended = match logged {
            Some(group) => {
                let (records, bytes) = group.finish();
                replica.append(records).map(|_| r.since_snapshot += bytes)
            }
            None => Ok(()),
        };
        let result = appended.and_then(|()| match r.needs_snapshot || r.compaction_due() {
            true => self.snapshot_to(r, replica),
            false => Ok(()),
        });
        result.map_err(|detail| {
            r.needs_snapshot = true;
            StoreError::Replica { detail }
        })
    }

    /// Writes everything the store holds to the replica's log, which then drops what came
    /// before.
    fn snapshot_to(&self, r: &mut Replication, replica: &dyn Replica) -> Result<(), String> {
        let all = Kind::ALL.into_iter().flat_map(|kind| {
            self.keyspace(kind).iter().map(move |item| {
                let (key, value) = item.into_inner().map_err(|e| format!("reading: {e:?}"))?;
                Ok((kind, key.to_vec(), value.to_vec()))
            })
        });
        let id = r.group_id();
        r.snapshot_bytes = replica::write_snapshot(replica, id, all)?;
        r.since_snapshot = 0;
        r.needs_snapshot = false;
        Ok(())
    }
}

impl Store for DiskStore {
    fn commit(&self, ops: &[Op]) -> Result<(), StoreError> {
        validate(ops)?;
        let staged = ops.iter().map(staging::encode).collect();
        self.commit_requests(vec![Prepared(Form::Staged(staged))])
    }

    fn prepare(&self, ops: Vec<Op>) -> Result<Prepared, StoreError> {
        validate(&ops)?;
        Ok(Prepared(Form::Staged(
            ops.iter().map(staging::encode).collect(),
        )))
    }

    fn commit_prepared(&self, requests: Vec<Prepared>) -> Result<(), StoreError> {
        self.commit_requests(requests)
    }

    fn load(&self) -> Result<Snapshot, StoreError> {
        let mut s = Snapshot::default();
        for kind in Kind::ALL {
            self.scan(kind, |k, v| records::decode_into(&mut s, kind, k, v))?;
        }
        Ok(s)
    }

    fn disk_bytes(&self) -> u64 {
        self.db.disk_space().unwrap_or(0)
    }

    fn replicate_to(&self, replica: Arc<dyn Replica>) -> Result<(), StoreError> {
        let mut r = self.commit_lock.lock();
        if self.replica.set(replica.clone()).is_err() {
            return Err(StoreError::Invalid {
                reason: "the store already has a replica".to_owned(),
            });
        }
        self.snapshot_to(&mut r, replica.as_ref())
            .map_err(|detail| {
                r.needs_snapshot = true;
                StoreError::Replica { detail }
            })
    }
}

/// Largest memtable of a keyspace created from now on (fjall's default is 64 MiB, kept by
/// keyspaces created before). Memtables are what the store holds in memory: the queue
/// workload fills one with puts and their tombstones, and five keyspaces of 64 MiB (plus
/// sealed ones waiting for their flush) took a steady gateway's RSS from 7 to over 300 MiB.
/// Smaller ones also flush sooner, which lets fjall drop the journals they pin.
const MEMTABLE_BYTES: u64 = 8 * 1024 * 1024;

fn open_keyspace(db: &Database, path: &Path, name: &str) -> Result<Keyspace, StoreError> {
    // The options apply when the keyspace is created; an existing one keeps its own.
    db.keyspace(name, || {
        KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
    })
    .map_err(|e| open_error(path, e))
}

/// Writes the format version into a new store; refuses a store from a newer
/// Aviary, or an old one that lost its version record.
fn check_version(
    db: &Database,
    meta: &Keyspace,
    path: &Path,
    existed: bool,
) -> Result<(), StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        path: path.to_owned(),
        detail,
    };
    match meta.get(VERSION_KEY).map_err(|e| open_error(path, e))? {
        Some(v) => {
            let found = <[u8; 4]>::try_from(&*v)
                .map(u32::from_be_bytes)
                .map_err(|_| corrupt(format!("the format version record is {} bytes", v.len())))?;
            match found {
                FORMAT_VERSION => Ok(()),
                f if f > FORMAT_VERSION => Err(StoreError::NewerFormat {
                    path: path.to_owned(),
                    found: f,
                    supported: FORMAT_VERSION,
                }),
                OLDEST_FORMAT_VERSION.. => write_version(db, meta, path),
                f => Err(corrupt(format!("unknown format version {f}"))),
            }
        }
        // A store created but killed before its version was written has
        // no keyspace besides `meta` yet: still new.
        None if !existed || db.keyspace_count() <= 1 => write_version(db, meta, path),
        None => Err(corrupt("the format version record is missing".to_owned())),
    }
}

/// Marks the store as [`FORMAT_VERSION`], durably, before anything is written in it.
fn write_version(db: &Database, meta: &Keyspace, path: &Path) -> Result<(), StoreError> {
    let mut batch = db.batch().durability(Some(PersistMode::SyncAll));
    batch.insert(meta, VERSION_KEY, FORMAT_VERSION.to_be_bytes().to_vec());
    batch.commit().map_err(|e| open_error(path, e))
}

/// Maps an error of opening fjall: lock, damage or I/O.
fn open_error(path: &Path, e: fjall::Error) -> StoreError {
    match e {
        fjall::Error::Locked => StoreError::Locked {
            path: path.to_owned(),
            holder: format!(
                "a process that opened {} without the gateway's lock",
                path.display()
            ),
        },
        fjall::Error::Io(e) if !is_damage(&e) => StoreError::data_dir(path, e),
        fjall::Error::InvalidVersion(v) => StoreError::Corrupt {
            path: path.to_owned(),
            detail: format!("the storage engine does not know its on-disk version {v:?}"),
        },
        other => StoreError::Corrupt {
            path: path.to_owned(),
            detail: format!("recovery failed: {other:?}"),
        },
    }
}

/// I/O errors that mean damaged file contents rather than a failing disk or
/// a permission problem.
fn is_damage(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
    )
}

/// A key for an error message: printable bytes as they are, others escaped,
/// so a client id or topic in it stays readable.
fn show_key(key: &[u8]) -> String {
    format!("\"{}\"", key.escape_ascii())
}
