//! Group commit: batches are shared, bounded, ordered, and every ticket
//! learns the fate of its batch. Paused time, so delays are exact.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::tests::samples::{message, queue_entry};
use super::*;
use crate::config::StoreConfig;

/// The memory store, recording the size of each commit, optionally failing.
#[derive(Debug, Default)]
struct Recording {
    inner: MemoryStore,
    batches: Mutex<Vec<usize>>,
    fail: AtomicBool,
    /// Set once a commit has returned.
    committed: AtomicUsize,
}

impl Store for Recording {
    fn commit(&self, ops: &[Op]) -> Result<(), StoreError> {
        self.batches.lock().push(ops.len());
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Io {
                path: "/test".into(),
                detail: "disk on fire".to_owned(),
            });
        }
        self.inner.commit(ops)?;
        self.committed.fetch_add(ops.len(), Ordering::SeqCst);
        Ok(())
    }
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.inner.load()
    }
    fn disk_bytes(&self) -> u64 {
        0
    }
}

fn config(max_batch_ops: usize, delay_ms: u64) -> StoreConfig {
    StoreConfig {
        max_batch_ops,
        max_batch_delay_ms: delay_ms,
        ..StoreConfig::default()
    }
}

fn start(max_batch_ops: usize, delay_ms: u64) -> (StoreHandle, Arc<Recording>) {
    let store = Arc::new(Recording::default());
    let handle = StoreHandle::start(store.clone(), &config(max_batch_ops, delay_ms));
    (handle, store)
}

fn put(id: u64) -> Op {
    Op::PutMessage {
        id: MessageId(id),
        message: message("t", b"p"),
    }
}

/// Runs `n` submitters at once, each committing one message.
async fn submit_concurrently(handle: &StoreHandle, n: u64) -> Vec<Result<(), StoreError>> {
    let tasks: Vec<_> = (1..=n)
        .map(|i| {
            let h = handle.clone();
            tokio::spawn(async move { h.submit(vec![put(i)]).await })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    results
}

#[tokio::test(start_paused = true)]
async fn concurrent_submitters_share_batches() {
    let (handle, store) = start(512, 0);
    let results = submit_concurrently(&handle, 200).await;
    assert!(results.iter().all(Result::is_ok));
    let stats = handle.stats();
    assert!(stats.commits < 200, "{stats:?}");
    assert_eq!(stats.ops, 200);
    assert_eq!(store.load().unwrap().messages.len(), 200);
}

#[tokio::test(start_paused = true)]
async fn batches_hold_at_most_max_batch_ops() {
    let (handle, store) = start(16, 1);
    submit_concurrently(&handle, 100).await;
    let batches = store.batches.lock().clone();
    assert!(batches.iter().all(|&n| n <= 16), "{batches:?}");
    assert!(batches.len() >= 100 / 16, "{batches:?}");
    // A request bigger than a batch is committed whole, alone.
    handle
        .submit((1000..1040).map(put).collect())
        .await
        .unwrap();
    assert_eq!(store.batches.lock().last(), Some(&40));
}

#[tokio::test(start_paused = true)]
async fn a_ticket_completes_only_after_its_commit() {
    let (handle, store) = start(512, 1);
    let ticket = handle.enqueue(vec![put(1), put(2)]).await.unwrap();
    ticket.await.unwrap();
    assert_eq!(store.committed.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_commit_fails_every_ticket_in_it() {
    let (handle, store) = start(512, 1);
    store.fail.store(true, Ordering::SeqCst);
    let results = submit_concurrently(&handle, 20).await;
    for r in &results {
        let e = r.as_ref().unwrap_err();
        assert!(e.to_string().contains("disk on fire"), "{e}");
    }
    let stats = handle.stats();
    assert_eq!((stats.commits, stats.ops), (0, 0));
    assert_eq!(stats.failed_commits as usize, store.batches.lock().len());
    // The writer keeps going once the store recovers.
    store.fail.store(false, Ordering::SeqCst);
    handle.submit(vec![put(1)]).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn with_no_delay_nobody_waits_for_a_timer() {
    let (handle, _store) = start(512, 0);
    let t0 = Instant::now();
    handle.submit(vec![put(1)]).await.unwrap();
    submit_concurrently(&handle, 20).await;
    assert_eq!(t0.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn with_a_delay_a_batch_waits_for_it_unless_full() {
    let (handle, store) = start(4, 5);
    let t0 = Instant::now();
    handle.submit(vec![put(1)]).await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_millis(5));
    // Arrivals within the delay join the batch.
    let later = handle.clone();
    let second = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2)).await;
        later.submit(vec![put(3)]).await
    });
    let t0 = Instant::now();
    handle.submit(vec![put(2)]).await.unwrap();
    second.await.unwrap().unwrap();
    assert_eq!(t0.elapsed(), Duration::from_millis(5));
    assert_eq!(store.batches.lock().clone(), [1, 2]);
    // A full batch does not wait.
    let t0 = Instant::now();
    handle.submit((10..14).map(put).collect()).await.unwrap();
    assert_eq!(t0.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn requests_are_committed_in_the_order_enqueued() {
    let (handle, store) = start(1, 0);
    let client_id = ByteString::from("c");
    let entry = queue_entry(1, QoS::AtLeastOnce);
    // Separate batches (max one op each), enqueued before any commit.
    let a = handle
        .enqueue(vec![Op::PutQueued {
            client_id: client_id.clone(),
            seq: 0,
            entry,
        }])
        .await
        .unwrap();
    let b = handle
        .enqueue(vec![Op::DeleteQueued {
            client_id,
            seq: 0,
            written_once: false,
        }])
        .await
        .unwrap();
    b.await.unwrap();
    a.await.unwrap();
    assert!(store.load().unwrap().queues.is_empty());
    assert_eq!(store.batches.lock().clone(), [1, 1]);
}

#[tokio::test(start_paused = true)]
async fn close_commits_what_is_pending_then_refuses() {
    let (handle, store) = start(4, 1);
    for i in 0..10 {
        handle.submit_detached(vec![put(i)]).await.unwrap();
    }
    let ticket = handle.send(vec![put(10)]).unwrap();
    handle.close().await;
    ticket.await.unwrap();
    assert_eq!(store.load().unwrap().messages.len(), 11);
    let e = handle.submit(vec![put(11)]).await.unwrap_err();
    assert!(matches!(e, StoreError::Closed), "{e}");
    assert!(handle.send(vec![put(11)]).is_err());
    handle.close().await;
}

#[tokio::test(start_paused = true)]
async fn settled_until_a_write_is_sent_and_again_once_it_is_committed_or_failed() {
    let (handle, store) = start(512, 1);
    assert!(handle.settled());
    // A barrier writes nothing: it leaves the store settled.
    let barrier = handle.send(Vec::new()).unwrap();
    assert!(handle.settled());
    barrier.await.unwrap();
    // Seen at once by the thread that sent it, before the writer ran.
    handle.submit_detached(vec![put(1)]).await.unwrap();
    let ticket = handle.send(vec![put(2)]).unwrap();
    assert!(!handle.settled());
    ticket.await.unwrap();
    assert!(handle.settled());
    // A failed commit settles too: its submitters were told.
    store.fail.store(true, Ordering::SeqCst);
    let failed = handle.send(vec![put(3)]).unwrap();
    assert!(!handle.settled());
    failed.await.unwrap_err();
    assert!(handle.settled());
    // Closed: a barrier would fail, so nothing counts as settled.
    store.fail.store(false, Ordering::SeqCst);
    handle.close().await;
    assert!(!handle.settled());
}

#[tokio::test]
async fn open_gives_no_store_for_memory_and_a_working_one_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let memory = StoreConfig {
        durability: crate::config::Durability::Memory,
        ..StoreConfig::default()
    };
    assert!(open(&memory, dir.path()).unwrap().is_none());
    assert!(
        !dir.path().join(disk::STORE_DIR).exists(),
        "memory writes nothing"
    );
    for durability in [
        crate::config::Durability::Process,
        crate::config::Durability::Fsync,
    ] {
        let config = StoreConfig {
            durability,
            ..StoreConfig::default()
        };
        let handle = open(&config, dir.path()).unwrap().unwrap();
        handle.submit(vec![put(1)]).await.unwrap();
        assert_eq!(handle.load().unwrap().messages.len(), 1);
        assert!(handle.disk_bytes() > 0);
        handle.close().await;
        drop(handle);
    }
}
