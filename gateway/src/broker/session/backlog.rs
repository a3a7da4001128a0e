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
/// When a subscriber that holds its publishers back is marked slow (`[mqtt]`
/// `slow_subscriber_stall_ms` and `slow_subscriber_patience_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlowAfter {
    /// How long its writer may take nothing while publishers wait (default 20 ms). A writer
    /// with a reading client takes a batch every few microseconds; one blocked on a full
    /// socket takes nothing. A machine starved of CPU for longer looks the same, so tests of
    /// holding back (not of slow detection) raise it.
    pub(crate) stall: Duration,
    /// The longest a publisher waits for it, however it progresses (default 1 s): a
    /// subscriber slower than its publishers for that long is marked slow too.
    pub(crate) patience: Duration,
}

impl SlowAfter {
    /// As `[mqtt]` has it by default.
    #[cfg(test)]
    pub(crate) const DEFAULT: Self = {
        use crate::config::mqtt::{SLOW_SUBSCRIBER_PATIENCE_MS, SLOW_SUBSCRIBER_STALL_MS};
        Self {
            stall: Duration::from_millis(SLOW_SUBSCRIBER_STALL_MS),
            patience: Duration::from_millis(SLOW_SUBSCRIBER_PATIENCE_MS),
        }
    };
}

impl QueueLimits {
    /// The high-water mark, messages and bytes: half the queue's limits, at most
    /// [`HIGH_MESSAGES`] and [`HIGH_BYTES`].
    pub(super) fn high_water(&self) -> (usize, usize) {
        (
            (self.max_messages / 2).min(HIGH_MESSAGES),
            (self.max_bytes / 2).min(HIGH_BYTES),
        )
    }

    /// The most messages a publisher queues for a session in one run (see
    /// `publish::staged`), at most `most`. A publisher sees that it passed the high-water
    /// mark only once its run is queued, so each publisher may overshoot the mark by a run:
    /// a run is an eighth of the way from the mark to the queue's limit, and several
    /// publishers at once stay short of dropping (a queue of 100 messages takes runs of 6).
    pub(crate) fn run_length(&self, most: usize) -> usize {
        let slack = self.max_messages - self.high_water().0;
        (slack / 8).clamp(1, most)
    }
}

/// A session's side of backpressure, under the session's lock. One pointer, as every session
/// has one: the state is boxed, and there only while publishers wait or the subscriber is
/// slow.
#[derive(Debug, Default)]
pub(super) struct Backlog(Option<Box<State>>);

#[derive(Debug)]
struct State {
    /// Publishers wait on it; `None` while the queue is below its high-water mark.
    room: Option<Arc<Notify>>,
    /// The low-water mark: messages and bytes.
    low: (usize, usize),
    /// Batches the writer has taken since the room was made: how a waiting publisher tells
    /// progress.
    taken: u64,
    /// When it counts as slow.
    slow_after: SlowAfter,
    /// The subscriber holds no one back: it stopped taking messages. Cleared once it has
    /// emptied its queue.
    slow: bool,
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
        if !online || self.0.as_ref().is_some_and(|s| s.slow) {
            return None;
        }
        let high = limits.high_water();
        if backlog.0 < high.0.max(1) && backlog.1 < high.1.max(1) {
            return None;
        }
        let state = self.0.get_or_insert_with(|| {
            Box::new(State {
                room: None,
                low: (0, 0),
                taken: 0,
                slow_after: limits.slow,
                slow: false,
            })
        });
        state.slow_after = limits.slow;
        let room = state.room.get_or_insert_with(|| {
            state.low = (high.0 / 2, high.1 / 2);
            state.taken = 0;
            Arc::new(Notify::new())
        });
        Some(room.clone())
    }

    /// The writer took a batch, leaving `backlog`: publishers waiting go on once it is down
    /// to the low-water mark, and a slow subscriber that emptied its queue is slow no more.
    pub(super) fn taken(&mut self, backlog: (usize, usize)) {
        let Some(state) = &mut self.0 else {
            return;
        };
        let mut released = false;
        if state.room.is_some() {
            state.taken = state.taken.wrapping_add(1);
            released = backlog.0 <= state.low.0 && backlog.1 <= state.low.1;
        }
        if backlog.0 == 0 {
            state.slow = false;
        }
        if released {
            self.release();
        } else {
            self.tidy();
        }
    }

    /// Wakes every waiting publisher: the queue has room, or the subscriber went away.
    pub(super) fn release(&mut self) {
        if let Some(room) = self.0.as_mut().and_then(|s| s.room.take()) {
            room.notify_waiters();
        }
        self.tidy();
    }

    /// Frees the state once no one waits and the subscriber is not slow.
    fn tidy(&mut self) {
        if self.0.as_ref().is_some_and(|s| s.room.is_none() && !s.slow) {
            self.0 = None;
        }
    }

    /// How many batches the writer has taken while publishers wait on `notify`, and when it
    /// counts as slow; `None` once they wait no more.
    fn taken_for(&self, notify: &Arc<Notify>) -> Option<(u64, SlowAfter)> {
        self.0
            .as_ref()
            .filter(|s| s.room.as_ref().is_some_and(|r| Arc::ptr_eq(r, notify)))
            .map(|s| (s.taken, s.slow_after))
    }

    /// The subscriber stopped taking messages: it holds no one back from now on.
    fn give_up(&mut self) {
        if let Some(state) = &mut self.0 {
            state.slow = true;
        }
        self.release();
    }
}

impl Session {
    /// Waits until this session's queue is down to its low-water mark, its client has gone,
    /// or it is found slow: its writer took nothing for [`SlowAfter::stall`], or
    /// [`SlowAfter::patience`] ran out. `room` is what [`Session::enqueue_run`] gave.
    pub(crate) async fn room(&self, room: Arc<Notify>) {
        let mut deadline = None;
        loop {
            // Enabled before looking, so that a wake-up in between is not missed.
            let notified = room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let Some((taken, slow_after)) = self.state.lock().backlog.taken_for(&room) else {
                return;
            };
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + slow_after.patience);
            let until = (Instant::now() + slow_after.stall).min(deadline);
            if tokio::time::timeout_at(until, notified).await.is_ok() {
                continue;
            }
            let mut st = self.state.lock();
            let Some((now_taken, _)) = st.backlog.taken_for(&room) else {
                return;
            };
            if now_taken == taken || Instant::now() >= deadline {
                tracing::debug!(client_id = %self.client_id, "slow subscriber: its publishers go on without it");
                st.backlog.give_up();
                return;
            }
        }
    }
}
