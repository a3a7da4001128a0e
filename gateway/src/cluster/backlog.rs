//! The QoS 0 bytes this node's clients published that its sending task has not yet taken:
//! past [`HIGH`], a client that publishes waits (see `broker::publish::pressure`) until
//! they are down to [`LOW`].
//!
//! QoS 0 is the one flow to the other nodes that nothing else bounds: a QoS 1/2 publisher
//! waits for its acknowledgements, and has at most its Receive Maximum of them open. The
//! bounds are in bytes because payloads differ in size by orders of magnitude: wide enough
//! for a burst of some ten thousand small messages not to wait (milliseconds of sending),
//! and narrow because each queued byte costs the node several more (the queue's slots, the
//! subject). Flooding node A with 2 million QoS 0 messages in a bench run took its RSS to
//! 332 MiB without a bound and to 21 MiB with this one, the allocator returning freed pages
//! at once (`_RJEM_MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0`); with its default decay,
//! the pages it keeps for reuse put the peak at 47–111 MiB, the same after 6 million.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use crate::broker::Room;

/// Past this many bytes queued, publishers wait.
const HIGH: usize = 1 << 20;
/// Until the queue is down to this many.
const LOW: usize = 512 << 10;

/// The count, shared by the node (which adds) and its sending task (which takes).
#[derive(Debug, Default)]
pub(super) struct Backlog {
    bytes: AtomicUsize,
    /// Woken when the count comes down to [`LOW`].
    room: Notify,
}

impl Backlog {
    /// A message of `n` bytes was handed to the sending task.
    pub(super) fn add(&self, n: usize) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// The sending task took messages of `n` bytes in all.
    pub(super) fn taken(&self, n: usize) {
        let before = self.bytes.fetch_sub(n, Ordering::AcqRel);
        if before > LOW && before - n <= LOW {
            self.room.notify_waiters();
        }
    }

    /// While the count is past [`HIGH`]: what completes once it is down to [`LOW`].
    pub(super) fn room(self: &Arc<Self>) -> Option<Room> {
        if self.bytes.load(Ordering::Relaxed) <= HIGH {
            return None;
        }
        let backlog = Arc::clone(self);
        Some(Box::pin(async move {
            loop {
                // Enabled before looking, so that a wake-up in between is not missed.
                let notified = backlog.room.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if backlog.bytes.load(Ordering::Acquire) <= LOW {
                    return;
                }
                notified.await;
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::task::Poll;

    use super::*;

    #[tokio::test]
    async fn publishers_wait_past_the_high_mark_until_the_low_one() {
        let backlog = Arc::new(Backlog::default());
        backlog.add(HIGH);
        assert!(backlog.room().is_none(), "up to the mark, nobody waits");
        backlog.add(1);
        let mut room = backlog.room().expect("past the mark, publishers wait");
        assert_eq!(futures_util::poll!(&mut room), Poll::Pending);
        // Taken down to just above the low mark: still waiting.
        backlog.taken(HIGH - LOW);
        assert_eq!(futures_util::poll!(&mut room), Poll::Pending);
        backlog.taken(1);
        tokio::time::timeout(std::time::Duration::from_secs(5), room)
            .await
            .expect("woken at the low mark");
        assert!(backlog.room().is_none());
    }

    #[tokio::test]
    async fn a_wait_that_starts_below_the_low_mark_ends_at_once() {
        let backlog = Arc::new(Backlog::default());
        backlog.add(HIGH + 1);
        let room = backlog.room().expect("past the mark");
        backlog.taken(HIGH);
        tokio::time::timeout(std::time::Duration::from_secs(5), room)
            .await
            .expect("the count is below the low mark already");
    }
}
