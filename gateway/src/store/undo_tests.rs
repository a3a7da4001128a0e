//! Writes undone in the batch being gathered (see `super::undo`), on the disk store, whose
//! prepared requests are what the writer can undo: a consumable write's ticket completes
//! once its receiver's delete arrives, nothing of either reaches the disk, and everything
//! else still waits for its commit. Paused time, so the consume window is exact.

use aviary_protocol::{ByteString, QoS};
use tokio::time::Instant;

use super::tests::samples::{message, queue_entry};
use super::writer::CONSUME_WINDOW;
use super::*;
use crate::config::StoreConfig;

/// A writer over a fresh disk store.
fn start() -> (StoreHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskStore::open(dir.path(), SyncMode::Process).unwrap();
    let handle = StoreHandle::start(Arc::new(store), &StoreConfig::default());
    (handle, dir)
}

/// A QoS 1 queue entry carrying its message, as the broker writes one per delivery.
fn queued(seq: u64) -> Op {
    let mut entry = queue_entry(seq + 100, QoS::AtLeastOnce);
    entry.inline = Some(Box::new(message("t", b"p")));
    Op::PutQueued {
        client_id: ByteString::from("sub"),
        seq,
        entry,
    }
}

/// The receiver's acknowledgement of the entry at `seq`.
fn acked(seq: u64) -> Op {
    Op::DeleteQueued {
        client_id: ByteString::from("sub"),
        seq,
        written_once: true,
    }
}

fn queue_len(handle: &StoreHandle) -> usize {
    handle
        .load()
        .unwrap()
        .queues
        .get("sub")
        .map_or(0, |q| q.len())
}

#[tokio::test(start_paused = true)]
async fn an_acknowledged_delivery_completes_its_ticket_and_writes_nothing() {
    let (handle, _dir) = start();
    let t0 = Instant::now();
    let ticket = handle.send_consumable(vec![queued(0)]).unwrap();
    handle.send_detached(vec![acked(0)]).unwrap();
    ticket.await.unwrap();
    // No timer ran out: the delete completed the ticket.
    assert!(t0.elapsed() < CONSUME_WINDOW, "{:?}", t0.elapsed());
    handle.close().await;
    let stats = handle.stats();
    assert_eq!(stats.undone, 2, "{stats:?}");
    assert_eq!(queue_len(&handle), 0);
}

#[tokio::test(start_paused = true)]
async fn an_unacknowledged_delivery_is_committed_after_the_window() {
    let (handle, _dir) = start();
    let t0 = Instant::now();
    handle
        .send_consumable(vec![queued(0)])
        .unwrap()
        .await
        .unwrap();
    assert!(t0.elapsed() >= CONSUME_WINDOW, "{:?}", t0.elapsed());
    assert_eq!(queue_len(&handle), 1);
    // The acknowledgement after the commit is written as a delete.
    handle.submit(vec![acked(0)]).await.unwrap();
    assert_eq!(queue_len(&handle), 0);
    assert_eq!(handle.stats().undone, 0);
}

#[tokio::test(start_paused = true)]
async fn a_plain_ticket_waits_for_the_commit_even_when_undone() {
    let (handle, _dir) = start();
    let put = handle.send(vec![queued(0)]).unwrap();
    let ack = handle.send(vec![acked(0)]).unwrap();
    let consumable = handle.send_consumable(vec![queued(1)]).unwrap();
    // Nothing holds the batch for the undone plain write: the consumable one does, and the
    // plain tickets complete with that batch's commit, not before.
    let t0 = Instant::now();
    put.await.unwrap();
    assert!(t0.elapsed() >= CONSUME_WINDOW, "{:?}", t0.elapsed());
    ack.await.unwrap();
    consumable.await.unwrap();
    assert_eq!(handle.stats().undone, 2);
    assert_eq!(queue_len(&handle), 1);
}

#[tokio::test(start_paused = true)]
async fn a_write_is_undone_only_once_every_write_of_its_request_is() {
    let (handle, _dir) = start();
    let ticket = handle.send_consumable(vec![queued(0), queued(1)]).unwrap();
    handle.send_detached(vec![acked(0)]).unwrap();
    let t0 = Instant::now();
    ticket.await.unwrap();
    assert!(t0.elapsed() >= CONSUME_WINDOW, "{:?}", t0.elapsed());
    assert_eq!(queue_len(&handle), 1);
}

#[tokio::test(start_paused = true)]
async fn a_session_delete_between_stops_the_undoing() {
    let (handle, _dir) = start();
    let ticket = handle.send_consumable(vec![queued(0)]).unwrap();
    handle
        .send_detached(vec![Op::DeleteSession {
            client_id: ByteString::from("sub"),
        }])
        .unwrap();
    handle.send_detached(vec![acked(0)]).unwrap();
    ticket.await.unwrap();
    handle.close().await;
    assert_eq!(handle.stats().undone, 0);
    assert_eq!(queue_len(&handle), 0);
}

#[tokio::test(start_paused = true)]
async fn a_rewritten_entry_is_undone_with_every_version() {
    let (handle, _dir) = start();
    let ticket = handle.send_consumable(vec![queued(0)]).unwrap();
    let Op::PutQueued {
        client_id,
        seq,
        mut entry,
    } = queued(0)
    else {
        unreachable!()
    };
    entry.state = DeliveryState::Sent {
        packet_id: std::num::NonZeroU16::new(1).unwrap(),
    };
    handle
        .send_detached(vec![Op::PutQueued {
            client_id,
            seq,
            entry,
        }])
        .unwrap();
    handle.send_detached(vec![acked(0)]).unwrap();
    ticket.await.unwrap();
    handle.close().await;
    assert_eq!(handle.stats().undone, 3);
    assert_eq!(queue_len(&handle), 0);
}
