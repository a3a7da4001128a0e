//! What only the disk store has: reopening, the lock, the format version,
//! corruption, a torn last batch and an unusable data directory.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::disk::{FORMAT_VERSION, STORE_DIR, VERSION_KEY};
use super::lock::LOCK_FILE;
use super::tests::samples::{full_session, message, queue_entry};
use super::*;

fn open_disk(dir: &Path) -> Result<DiskStore, StoreError> {
    DiskStore::open(dir, SyncMode::Process)
}

fn put(id: u64, payload: &'static [u8]) -> Op {
    Op::PutMessage {
        id: MessageId(id),
        message: message("t/1", payload),
    }
}

/// One of everything, for a client.
fn everything(client: &str) -> Vec<Op> {
    let client_id = ByteString::from(client);
    vec![
        put(1, b"m"),
        Op::PutSession(full_session(client)),
        Op::PutQueued {
            client_id: client_id.clone(),
            seq: 3,
            entry: queue_entry(1, QoS::AtLeastOnce),
        },
        Op::PutIncomingQos2 {
            client_id,
            packet_id: NonZeroU16::new(5).unwrap(),
            forwarded: Some(Forwarded {
                node: "gw-a".into(),
                token: 7,
            }),
        },
        Op::PutRetained {
            topic: "r".into(),
            message: message("r", b"ret"),
        },
    ]
}

/// Opens fjall directly, as a damaged or future store would look to us.
fn raw_keyspace(dir: &Path, name: &str) -> (fjall::Database, fjall::Keyspace) {
    let db = fjall::Database::builder(dir.join(STORE_DIR))
        .open()
        .unwrap();
    let ks = db
        .keyspace(name, fjall::KeyspaceCreateOptions::default)
        .unwrap();
    (db, ks)
}

fn corrupt_detail(e: StoreError) -> String {
    match &e {
        StoreError::Corrupt { .. } => e.to_string(),
        other => panic!("expected a corrupt store, got: {other}"),
    }
}

#[test]
fn everything_survives_a_reopen_in_both_modes() {
    for mode in [SyncMode::Process, SyncMode::Fsync] {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path(), mode).unwrap();
        store.commit(&everything("dev")).unwrap();
        let before = store.load().unwrap();
        assert!(store.disk_bytes() > 0);
        drop(store);
        let store = DiskStore::open(dir.path(), mode).unwrap();
        assert_eq!(store.load().unwrap(), before, "{mode:?}");
    }
}

#[test]
fn a_second_open_in_the_same_process_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let first = open_disk(dir.path()).unwrap();
    let e = open_disk(dir.path()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, StoreError::Locked { .. }), "{msg}");
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    assert!(
        msg.contains(&dir.path().join(LOCK_FILE).display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("--data-dir"), "{msg}");
    drop(first);
    open_disk(dir.path()).unwrap();
}

#[test]
fn a_stale_lock_file_does_not_block() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(LOCK_FILE), "4000000\n").unwrap();
    let _store = open_disk(dir.path()).unwrap();
    let pid = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
    assert_eq!(pid.trim(), std::process::id().to_string());
}

#[test]
fn a_store_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open_disk(dir.path()).unwrap());
    let (db, meta) = raw_keyspace(dir.path(), "meta");
    meta.insert(VERSION_KEY, (FORMAT_VERSION + 1).to_be_bytes())
        .unwrap();
    db.persist(fjall::PersistMode::SyncAll).unwrap();
    drop((meta, db));
    let e = open_disk(dir.path()).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, StoreError::NewerFormat { found, supported, .. }
            if found == FORMAT_VERSION + 1 && supported == FORMAT_VERSION),
        "{msg}"
    );
    assert!(
        msg.contains(&dir.path().join(STORE_DIR).display().to_string()),
        "{msg}"
    );
}

/// A store written before queue entries could carry their message opens with what it holds,
/// and is marked with the current version so that an older Aviary refuses it.
#[test]
fn a_version_1_store_opens_and_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_disk(dir.path()).unwrap();
    store.commit(&everything("dev")).unwrap();
    let before = store.load().unwrap();
    drop(store);
    let set_version = |v: u32| {
        let (db, meta) = raw_keyspace(dir.path(), "meta");
        meta.insert(VERSION_KEY, v.to_be_bytes()).unwrap();
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    };
    set_version(1);
    let store = open_disk(dir.path()).unwrap();
    assert_eq!(store.load().unwrap(), before);
    drop(store);
    let (_db, meta) = raw_keyspace(dir.path(), "meta");
    let version = meta.get(VERSION_KEY).unwrap().unwrap();
    assert_eq!(*version, FORMAT_VERSION.to_be_bytes());
}

#[test]
fn a_store_that_lost_its_version_record_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    open_disk(dir.path())
        .unwrap()
        .commit(&everything("dev"))
        .unwrap();
    let (db, meta) = raw_keyspace(dir.path(), "meta");
    meta.remove(VERSION_KEY).unwrap();
    db.persist(fjall::PersistMode::SyncAll).unwrap();
    drop((meta, db));
    let msg = corrupt_detail(open_disk(dir.path()).unwrap_err());
    assert!(msg.contains("format version record is missing"), "{msg}");
}

#[test]
fn a_record_that_does_not_decode_is_corrupt_and_named() {
    let dir = tempfile::tempdir().unwrap();
    open_disk(dir.path())
        .unwrap()
        .commit(&everything("dev"))
        .unwrap();
    let (db, queue) = raw_keyspace(dir.path(), "queue");
    queue
        .insert(codec::queue_key("dev", 4), [1u8, 0x80])
        .unwrap();
    db.persist(fjall::PersistMode::SyncAll).unwrap();
    drop((queue, db));
    let store = open_disk(dir.path()).unwrap();
    let msg = corrupt_detail(store.load().unwrap_err());
    assert!(
        msg.contains("`queue`") && msg.contains("does not decode"),
        "{msg}"
    );
    assert!(
        msg.contains(&dir.path().join(STORE_DIR).display().to_string()),
        "{msg}"
    );
}

/// The newest journal file, and where its written part ends (the rest is
/// fjall's zero preallocation).
fn journal_end(dir: &Path) -> (PathBuf, u64) {
    let journal = std::fs::read_dir(dir.join(STORE_DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jnl"))
        .max_by_key(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            stem.parse::<u64>().unwrap_or(0)
        })
        .expect("a journal file");
    let bytes = std::fs::read(&journal).unwrap();
    // Chunk by chunk: comparing slices is a memcmp even in debug builds.
    const ZEROS: [u8; 4096] = [0; 4096];
    let chunk = bytes
        .chunks(4096)
        .rposition(|c| c != &ZEROS[..c.len()])
        .unwrap_or(0);
    let tail = &bytes[chunk * 4096..];
    let end = chunk * 4096 + tail.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    (journal, end as u64)
}

/// Commits batch A (message 1) and the larger batch B (messages 2..=40),
/// drops the store, and returns the journal with where each batch ends.
fn two_batches(dir: &Path) -> (PathBuf, u64, u64) {
    let store = open_disk(dir).unwrap();
    store.commit(&[put(1, b"batch A")]).unwrap();
    let (_, end_a) = journal_end(dir);
    let payload: &'static [u8] = &[7; 512];
    let b: Vec<Op> = (2..=40).map(|i| put(i, payload)).collect();
    store.commit(&b).unwrap();
    let (journal, end_b) = journal_end(dir);
    drop(store);
    assert!(end_b > end_a + 39 * 512, "{end_a} {end_b}");
    (journal, end_a, end_b)
}

#[test]
fn a_record_created_and_deleted_in_one_commit_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_disk(dir.path()).unwrap();
    store.commit(&[put(1, b"earlier")]).unwrap();
    let (_, before) = journal_end(dir.path());
    let payload: &'static [u8] = &[7; 512];
    let mut ops = vec![Op::DeleteMessage { id: MessageId(1) }];
    for i in 2..=40 {
        let client_id = ByteString::from("c");
        ops.push(put(i, payload));
        ops.push(Op::PutQueued {
            client_id: client_id.clone(),
            seq: i,
            entry: queue_entry(i, QoS::AtLeastOnce),
        });
        ops.push(Op::DeleteQueued {
            client_id,
            seq: i,
            written_once: true,
        });
        ops.push(Op::DeleteMessage { id: MessageId(i) });
    }
    store.commit(&ops).unwrap();
    // Only the delete of message 1, written before, reaches the journal.
    let (_, after) = journal_end(dir.path());
    assert!(
        after - before < 512,
        "the journal grew by {}",
        after - before
    );
    drop(store);
    assert_eq!(message_ids(dir.path()), Vec::<u64>::new());
}

fn message_ids(dir: &Path) -> Vec<u64> {
    let snap = open_disk(dir).unwrap().load().unwrap();
    snap.messages.keys().map(|id| id.0).collect()
}

#[test]
fn a_torn_last_batch_is_dropped_whole_and_the_rest_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, end_a, end_b) = two_batches(dir.path());
    // A crash in the middle of writing batch B.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&journal)
        .unwrap();
    file.set_len(end_a + (end_b - end_a) / 2).unwrap();
    drop(file);
    assert_eq!(message_ids(dir.path()), [1]);
    // Recovery cut the torn bytes off: the store works and stays consistent.
    let store = open_disk(dir.path()).unwrap();
    store.commit(&[put(50, b"after")]).unwrap();
    drop(store);
    assert_eq!(message_ids(dir.path()), [1, 50]);
}

#[test]
fn a_batch_cut_just_before_its_end_is_dropped_and_a_complete_one_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _, end_b) = two_batches(dir.path());
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), copy.path());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&journal)
        .unwrap()
        .set_len(end_b)
        .unwrap();
    assert_eq!(message_ids(dir.path()).len(), 40);
    let copied = copy.path().join(journal.strip_prefix(dir.path()).unwrap());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&copied)
        .unwrap()
        .set_len(end_b - 1)
        .unwrap();
    assert_eq!(message_ids(copy.path()), [1]);
}

#[test]
fn damage_inside_a_journal_batch_is_corrupt_not_a_silent_loss() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, end_a, end_b) = two_batches(dir.path());
    // Garbage in the middle of batch B's payload bytes.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&journal)
        .unwrap();
    file.seek(SeekFrom::Start(end_a + (end_b - end_a) / 2))
        .unwrap();
    file.write_all(b"garbage!").unwrap();
    drop(file);
    let e = open_disk(dir.path()).and_then(|s| s.load()).unwrap_err();
    let msg = corrupt_detail(e);
    assert!(
        msg.contains(&dir.path().join(STORE_DIR).display().to_string()),
        "{msg}"
    );
}

#[test]
fn damage_in_a_table_file_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let ops: Vec<Op> = (1..=200).map(|i| put(i, &[b'x'; 300])).collect();
    open_disk(dir.path()).unwrap().commit(&ops).unwrap();
    // Flush the memtable into a table file, then damage that file.
    let (db, messages) = raw_keyspace(dir.path(), "messages");
    messages.rotate_memtable_and_wait().unwrap();
    let tables = messages.path().join("tables");
    drop((messages, db));
    let table = std::fs::read_dir(&tables)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let len = std::fs::metadata(&table).unwrap().len();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&table)
        .unwrap();
    file.seek(SeekFrom::Start(len / 3)).unwrap();
    file.write_all(&[0xa5; 64]).unwrap();
    drop(file);
    let e = open_disk(dir.path()).and_then(|s| s.load()).unwrap_err();
    corrupt_detail(e);
}

#[test]
fn an_unusable_data_dir_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let e = open_disk(&file.join("data")).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, StoreError::DataDir { .. }), "{msg}");
    assert!(
        msg.contains("a-file") && msg.contains("--data-dir"),
        "{msg}"
    );
}

#[test]
fn a_missing_data_dir_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("x").join("y");
    open_disk(&nested)
        .unwrap()
        .commit(&everything("c"))
        .unwrap();
    assert!(nested.join(LOCK_FILE).exists());
    assert_eq!(
        open_disk(&nested).unwrap().load().unwrap().sessions.len(),
        1
    );
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
