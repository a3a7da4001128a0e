//! Backpressure from a subscriber to the clients publishing to it: a subscriber whose queue
//! runs far behind holds its publishers back, rather than lose what they send, for as long as
//! its writer keeps taking messages out; one whose writer stops taking them is *slow*, and
//! holds no one back.
//!
//! Why: a queue is bounded, and publishers at QoS 0 have no flow control of their own. Fifty
//! clients publishing into one subscriber outrun any single connection's writer, and without
//! backpressure the queue drops most of what they send, however fast the subscriber reads.
//! Holding a publisher back is what TCP does between two peers: the publisher's connection
//! stops being read, its socket buffers fill, and its client slows down to the rate the
//! subscriber takes. But a subscriber that does not read at all must not stop everyone
//! else: its writer, blocked on a full socket, takes nothing, and after [`STALL`] without
//! progress (or [`PATIENCE`] in all) it is marked slow. Its queue then drops its oldest
//! messages as before, until it has caught up and emptied it.
//!
//! The marks: a publisher that queues a message for a session past its high-water mark (half
//! its queue's limits, at most [`HIGH_MESSAGES`] and [`HIGH_BYTES`]) gets the session's
//! `room` to wait on; the session's writer wakes the waiters when it has taken the queue down
//! to half that.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{QueueLimits, Session};

/// Most messages a session's queue holds before it holds its publishers back.
const HIGH_MESSAGES: usize = 4096;
/// Most bytes a session's queue holds before it holds its publishers back.
const HIGH_BYTES: usize = 4 << 20;
/// How long a subscriber's writer may take nothing while publishers wait before the
/// subscriber is marked slow. A writer with a reading client takes a batch every few
/// microseconds; one blocked on a full socket takes nothing.
pub(crate) const STALL: Duration = Duration::from_millis(20);
/// The longest a publisher waits for one subscriber, however it progresses: a subscriber
/// slower than its publishers for that long is marked slow too.
pub(crate) const PATIENCE: Duration = Duration::from_secs(1);

/// A session's side of backpressure, under the session's lock.
#[derive(Debug, Default)]
pub(super) struct Backlog {
    /// Publishers wait on it; `None` while the queue is below its high-water mark.
    room: Option<Room>,
    /// The subscriber holds no one back: it stopped taking messages. Cleared once it has
    /// emptied its queue.
    slow: bool,
    /// Batches its writer has taken: how a waiting publisher tells progress.
    taken: u64,
}

#[derive(Debug)]
struct Room {
    notify: Arc<Notify>,
    /// The low-water mark: messages and bytes.
    low: (usize, usize),
}

impl Backlog {
    /// After a message was queued: the room to wait on, if the queue (`backlog`: messages
    /// and bytes) is past its high-water mark and the subscriber is online and not slow.
    pub(super) fn press(
        &mut self,
        backlog: (usize, usize),
        limits: &QueueLimits,
        online: bool,
    ) -> Option<Arc<Notify>> {
        if !online || self.slow {
            return None;
        }
        let high = (
            (limits.max_messages / 2).min(HIGH_MESSAGES),
            (limits.max_bytes / 2).min(HIGH_BYTES),
        );
        if backlog.0 < high.0.max(1) && backlog.1 < high.1.max(1) {
            return None;
        }
        let room = self.room.get_or_insert_with(|| Room {
            notify: Arc::new(Notify::new()),
            low: (high.0 / 2, high.1 / 2),
        });
        Some(room.notify.clone())
    }

    /// The writer took a batch, leaving `backlog`: publishers waiting go on once it is down
    /// to the low-water mark, and a slow subscriber that emptied its queue is slow no more.
    pub(super) fn taken(&mut self, backlog: (usize, usize)) {
        self.taken = self.taken.wrapping_add(1);
        if let Some(room) = &self.room {
            if backlog.0 <= room.low.0 && backlog.1 <= room.low.1 {
                self.release();
            }
        }
        if backlog.0 == 0 {
            self.slow = false;
        }
    }

    /// Wakes every waiting publisher: the queue has room, or the subscriber went away.
    pub(super) fn release(&mut self) {
        if let Some(room) = self.room.take() {
            room.notify.notify_waiters();
        }
    }

    /// Whether publishers still wait on `notify`.
    fn waits_on(&self, notify: &Arc<Notify>) -> bool {
        self.room
            .as_ref()
            .is_some_and(|r| Arc::ptr_eq(&r.notify, notify))
    }

    /// The subscriber stopped taking messages: it holds no one back from now on.
    fn give_up(&mut self) {
        self.slow = true;
        self.release();
    }
}

impl Session {
    /// Waits until this session's queue is down to its low-water mark, its client has gone,
    /// or it is found slow: its writer took nothing for [`STALL`], or [`PATIENCE`] ran out.
    /// `room` is what [`Session::enqueue_pressing`] gave.
    pub(crate) async fn room(&self, room: Arc<Notify>) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            // Enabled before looking, so that a wake-up in between is not missed.
            let notified = room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let taken = {
                let st = self.state.lock();
                if !st.backlog.waits_on(&room) {
                    return;
                }
                st.backlog.taken
            };
            let until = (Instant::now() + STALL).min(deadline);
            if tokio::time::timeout_at(until, notified).await.is_ok() {
                continue;
            }
            let mut st = self.state.lock();
            if !st.backlog.waits_on(&room) {
                return;
            }
            if st.backlog.taken == taken || Instant::now() >= deadline {
                tracing::debug!(client_id = %self.client_id, "slow subscriber: its publishers go on without it");
                st.backlog.give_up();
                return;
            }
        }
    }
}
