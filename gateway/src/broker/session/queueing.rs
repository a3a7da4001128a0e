//! Queuing messages for a session: a run of them at once, under one lock.
//!
//! A publisher's read holds many PUBLISH packets, mostly on one topic, and so for the same
//! subscribers (see `publish::staged`). Each message queued on its own took the subscriber's
//! lock, pressed its backlog and noted a wake-up for its writer: atomic writes to cache lines
//! that the writer, on the other core, writes too. A run does each once, however many
//! messages it holds.

use std::sync::Arc;

use parking_lot::MutexGuard;
use tokio::sync::Notify;

use super::{Enqueued, Outgoing, QueueLimits, Session, SessionState};

/// What became of a run of messages queued for one session ([`Session::enqueue_run`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunQueued {
    /// Older messages dropped to make room for the run's.
    pub(crate) evicted: usize,
    /// Messages the session's queue has dropped so far, for the log.
    pub(crate) dropped: u64,
    /// QoS 0 messages not queued, the session being offline.
    pub(crate) offline: usize,
    /// Messages larger than the whole queue's byte limit, not queued.
    pub(crate) too_large: usize,
}

impl RunQueued {
    fn add(&mut self, enqueued: Enqueued) {
        match enqueued {
            // `dropped` is read once the run is queued (`Session::enqueue_run`).
            Enqueued::Queued { evicted, .. } => self.evicted += evicted,
            Enqueued::DroppedOffline => self.offline += 1,
            Enqueued::DroppedTooLarge => self.too_large += 1,
        }
    }
}

impl Session {
    /// Queues `outs` in order, within the queue limits, and wakes the writer once. Returns
    /// what became of them, and the room their publisher should wait for (with
    /// [`Session::room`]) before it sends more, if the queue runs far behind.
    ///
    /// `sole`: the messages go to this session alone. A QoS 0 delivery of theirs that
    /// nothing queued waits ahead of is then encoded for the writer instead, here, on the
    /// publisher's thread (see `outbox::direct`). A message that goes to many stays one
    /// shared message, queued for each: encoded for each, its bytes would be held once per
    /// subscriber.
    pub(crate) fn enqueue_run(
        &self,
        outs: impl IntoIterator<Item = Outgoing>,
        limits: &QueueLimits,
        sole: bool,
    ) -> (RunQueued, Option<Arc<Notify>>) {
        let mut st = self.state.lock();
        let online = st.link.is_attached();
        let direct = st.link.direct().filter(|_| sole);
        let mut queued = RunQueued::default();
        let mut any = false;
        for out in outs {
            if out
                .msg
                .stream_seq
                .is_some_and(|s| s.get() <= st.stream_floor)
            {
                // Queued already: the node it moved from had it (see `moving`).
                continue;
            }
            any = true;
            let outbox = &mut st.durable.outbox;
            if direct.is_some_and(|to| outbox.send_direct(&out, to, limits)) {
                continue;
            }
            queued.add(outbox.enqueue(out, limits, online));
        }
        queued.dropped = st.durable.outbox.dropped();
        let room = if any {
            self.settle(st, limits, online)
        } else {
            None
        };
        (queued, room)
    }

    /// After messages were queued: the room to wait for if the queue is far behind; the
    /// store told of what it must keep; the writer woken, once the lock is released.
    fn settle(
        &self,
        mut st: MutexGuard<'_, SessionState>,
        limits: &QueueLimits,
        online: bool,
    ) -> Option<Arc<Notify>> {
        let backlog = st.durable.outbox.backlog();
        let room = st.backlog.press(backlog, limits, online);
        self.flush_journal(&mut st);
        let outbox = &st.durable.outbox;
        let wake = st
            .link
            .notify_writer(|window| outbox.waits_for_window(window));
        drop(st);
        if let Some(wake) = wake {
            wake.wake_task();
        }
        room
    }

    /// Queues one message, as a run of one; the room as [`Session::enqueue_run`] gives it.
    #[cfg(test)]
    pub(crate) fn enqueue_pressing(
        &self,
        out: Outgoing,
        limits: &QueueLimits,
    ) -> (Enqueued, Option<Arc<Notify>>) {
        let (queued, room) = self.enqueue_run([out], limits, false);
        let enqueued = if queued.offline > 0 {
            Enqueued::DroppedOffline
        } else if queued.too_large > 0 {
            Enqueued::DroppedTooLarge
        } else {
            Enqueued::Queued {
                evicted: queued.evicted,
                dropped: queued.dropped,
            }
        };
        (enqueued, room)
    }

    /// Queues one message, within the queue limits.
    #[cfg(test)]
    pub(crate) fn enqueue(&self, out: Outgoing, limits: &QueueLimits) -> Enqueued {
        self.enqueue_pressing(out, limits).0
    }
}
