//! The replica's log: replayed, it gives back what the store loads, whatever the commits,
//! snapshots, failures and partial groups it went through. The whole store suite runs on a
//! replicated store too (`tests`, module `replicated`).

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use super::replica::CHUNK;
use super::tests::samples::{full_session, message, queue_entry};
use super::*;

/// A log in memory: positions count from 1, as a stream's sequence numbers do.
#[derive(Debug, Default)]
pub(super) struct MemoryLog {
    records: Mutex<Vec<(u64, Bytes)>>,
    next: Mutex<u64>,
    /// The next append fails.
    fail_next: AtomicBool,
}

impl Replica for MemoryLog {
    fn append(&self, records: Vec<Bytes>) -> Result<u64, String> {
        if self.fail_next.swap(false, Ordering::SeqCst) {
            return Err("the log is unreachable".to_owned());
        }
        let mut next = self.next.lock();
        let first = *next + 1;
        for r in records {
            *next += 1;
            self.records.lock().push((*next, r));
        }
        Ok(first)
    }

    fn truncate(&self, first: u64) -> Result<(), String> {
        self.records.lock().retain(|(at, _)| *at >= first);
        Ok(())
    }
}

impl MemoryLog {
    pub(super) fn replay(&self) -> Snapshot {
        let records: Vec<Bytes> = self.records.lock().iter().map(|(_, r)| r.clone()).collect();
        replay(records).expect("the log replays")
    }

    fn bytes(&self) -> usize {
        self.records.lock().iter().map(|(_, r)| r.len()).sum()
    }
}

/// A disk store with a log in memory, for the store suite too (see `tests`).
pub(super) fn replicated() -> (DiskStore, (Arc<MemoryLog>, tempfile::TempDir)) {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskStore::open(dir.path(), SyncMode::Process).unwrap();
    let log = Arc::new(MemoryLog::default());
    store.replicate_to(log.clone()).unwrap();
    (store, (log, dir))
}

fn queued(client: &str, seq: u64, payload: &'static [u8]) -> Op {
    let mut entry = queue_entry(seq, QoS::AtLeastOnce);
    entry.inline = Some(Box::new(message("t/1", payload)));
    Op::PutQueued {
        client_id: client.into(),
        seq,
        entry,
    }
}

#[test]
fn a_store_with_data_is_copied_whole_when_the_replica_is_attached() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskStore::open(dir.path(), SyncMode::Process).unwrap();
    store
        .commit(&[Op::PutSession(full_session("c")), queued("c", 1, b"before")])
        .unwrap();
    let log = Arc::new(MemoryLog::default());
    store.replicate_to(log.clone()).unwrap();
    assert_eq!(log.replay(), store.load().unwrap());
    assert_eq!(log.replay().queues["c"].len(), 1);
    let again = Arc::new(MemoryLog::default());
    assert!(store.replicate_to(again).is_err(), "one replica per store");
}

#[test]
fn snapshots_keep_the_log_small_and_complete() {
    let (store, (log, _dir)) = replicated();
    store.set_compact_min(64 * 1024);
    store.commit(&[Op::PutSession(full_session("c"))]).unwrap();
    // A queue that grows and drains, as a subscriber's does: the log would grow without end.
    for seq in 1..=2_000u64 {
        store.commit(&[queued("c", seq, &[7; 200])]).unwrap();
        if seq > 10 {
            store
                .commit(&[Op::DeleteQueued {
                    client_id: "c".into(),
                    seq: seq - 10,
                    written_once: true,
                }])
                .unwrap();
        }
    }
    assert_eq!(log.replay(), store.load().unwrap());
    assert_eq!(log.replay().queues["c"].len(), 10);
    assert!(
        log.bytes() < 400 * 1024,
        "the log holds {} bytes",
        log.bytes()
    );
}

#[test]
fn after_a_failed_append_the_commit_fails_and_the_log_catches_up() {
    let (store, (log, _dir)) = replicated();
    store.commit(&[Op::PutSession(full_session("c"))]).unwrap();
    log.fail_next.store(true, Ordering::SeqCst);
    let failed = store.commit(&[queued("c", 1, b"lost from the log")]);
    assert!(
        matches!(failed, Err(StoreError::Replica { .. })),
        "{failed:?}"
    );
    store.commit(&[queued("c", 2, b"next")]).unwrap();
    let replayed = log.replay();
    assert_eq!(replayed, store.load().unwrap());
    assert_eq!(
        replayed.queues["c"].keys().copied().collect::<Vec<_>>(),
        [1, 2]
    );
}

#[test]
fn a_value_bigger_than_a_record_spans_several() {
    let (store, (log, _dir)) = replicated();
    let big: &'static [u8] = Box::leak(vec![9u8; 3 * CHUNK + 5].into_boxed_slice());
    store
        .commit(&[
            Op::PutSession(full_session("c")),
            queued("c", 1, big),
            Op::PutRetained {
                topic: "r".into(),
                message: message("r", big),
            },
        ])
        .unwrap();
    assert!(log.records.lock().len() > 3);
    assert_eq!(log.replay(), store.load().unwrap());
}

#[test]
fn a_group_cut_short_by_a_crash_is_skipped() {
    let (store, (log, _dir)) = replicated();
    store.commit(&[Op::PutSession(full_session("c"))]).unwrap();
    let whole = store.load().unwrap();
    let big: &'static [u8] = Box::leak(vec![1u8; 2 * CHUNK].into_boxed_slice());
    store.commit(&[queued("c", 1, big)]).unwrap();
    // The writer died after the first record of its last group.
    let mut records = log.records.lock();
    let last_group = records.len() - 3;
    records.truncate(last_group + 1);
    drop(records);
    assert_eq!(log.replay(), whole);
}

#[test]
fn a_record_of_another_format_is_refused_by_name() {
    let err = replay([Bytes::from_static(b"not a log record at all")]).unwrap_err();
    assert!(err.to_string().contains("version 1 log record"), "{err}");
}
