//! The offline queue: publishes made while disconnected (or beyond the in-flight window).
//!
//! MQTT.js keeps QoS 0 messages made offline in an unbounded queue; a tab left offline for a
//! day grows without limit. This queue is bounded by count and bytes, and when a new message
//! does not fit, the oldest ones are dropped (and reported, so their promises can reject with
//! `QUEUE_FULL`): in a live feed fresh data is worth more than stale data.

use alloc::vec::Vec;

use aviary_protocol::Publish;

use super::options::QueueLimits;
use super::Token;

/// A publish waiting for a connection (or for room in the in-flight window).
#[derive(Debug, Clone)]
pub struct Queued {
    /// The message, without a packet id yet: ids are assigned when it is sent.
    pub publish: Publish,
    /// Whom to tell when it is acknowledged (or dropped).
    pub token: Token,
}

impl Queued {
    /// The bytes this message counts against the queue's byte limit.
    fn size(&self) -> usize {
        self.publish.topic.len() + self.publish.payload.len()
    }
}

/// A bounded FIFO of [`Queued`] publishes.
///
/// Two vectors rather than a `VecDeque`: new messages go on the back of `back`, the oldest come
/// off the end of `front`, which holds them newest first and is refilled from `back` by
/// popping and pushing (which reverses it, with no code but `push` and `pop`) when it runs
/// out, so each message is moved once. `Vec<Queued>` is compiled into the package
/// anyway, and the ring buffer's code (with its range checks and their panic messages) was not
/// needed for anything else.
#[derive(Debug)]
pub struct OfflineQueue {
    /// The oldest messages, newest first: the next to go is the last.
    front: Vec<Queued>,
    /// The newest messages, oldest first.
    back: Vec<Queued>,
    bytes: usize,
    limits: QueueLimits,
}

impl OfflineQueue {
    /// An empty queue with these bounds.
    pub fn new(limits: QueueLimits) -> Self {
        Self {
            front: Vec::new(),
            back: Vec::new(),
            bytes: 0,
            limits,
        }
    }

    /// Whether `item` may be queued at all: it is not bigger than the whole queue may be.
    pub fn admits(&self, item: &Queued) -> bool {
        item.size() <= self.limits.max_bytes && self.limits.max_messages > 0
    }

    /// Removes and returns the oldest message while the queue has no room for `item`; `None`
    /// once it fits. The caller reports each one dropped, then [`push`](Self::push)es.
    /// (Handed over one at a time rather than collected: the vector of them, and the
    /// iteration over it, were code of their own in the package.)
    pub fn evict_for(&mut self, item: &Queued) -> Option<Queued> {
        let full = self.len() >= self.limits.max_messages
            || self.bytes + item.size() > self.limits.max_bytes;
        if full {
            self.pop()
        } else {
            None
        }
    }

    /// Appends `item`, which [`admits`](Self::admits) accepted and
    /// [`evict_for`](Self::evict_for) made room for.
    pub fn push(&mut self, item: Queued) {
        self.bytes += item.size();
        self.back.push(item);
    }

    /// The oldest message, if any.
    pub fn front(&self) -> Option<&Queued> {
        self.front.last().or(self.back.first())
    }

    /// Removes the oldest message.
    pub fn pop(&mut self) -> Option<Queued> {
        if self.front.is_empty() {
            while let Some(item) = self.back.pop() {
                self.front.push(item);
            }
        }
        let item = self.front.pop()?;
        self.bytes -= item.size();
        Some(item)
    }

    /// How many messages are queued.
    pub fn len(&self) -> usize {
        self.front.len() + self.back.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.front.is_empty() && self.back.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(token: u32, payload: &'static [u8]) -> Queued {
        Queued {
            publish: Publish::new("t", payload),
            token: Token(token),
        }
    }

    /// Queues `item` as the client does: `None` (queueing nothing) if it is bigger than the
    /// whole queue may be, else what was dropped to make room, oldest first.
    fn push(q: &mut OfflineQueue, item: Queued) -> Option<Vec<Queued>> {
        if !q.admits(&item) {
            return None;
        }
        let dropped = core::iter::from_fn(|| q.evict_for(&item)).collect();
        q.push(item);
        Some(dropped)
    }

    /// Everything queued, oldest first, as the client takes it when it ends.
    fn drain(q: &mut OfflineQueue) -> Vec<Queued> {
        core::iter::from_fn(|| q.pop()).collect()
    }

    fn tokens(items: &[Queued]) -> Vec<u32> {
        items.iter().map(|q| q.token.0).collect()
    }

    #[test]
    fn drops_oldest_when_count_is_reached() {
        let mut q = OfflineQueue::new(QueueLimits {
            max_messages: 2,
            max_bytes: 1_000,
        });
        assert!(push(&mut q, item(1, b"a")).unwrap().is_empty());
        assert!(push(&mut q, item(2, b"b")).unwrap().is_empty());
        assert_eq!(tokens(&push(&mut q, item(3, b"c")).unwrap()), [1]);
        assert_eq!(tokens(&drain(&mut q)), [2, 3]);
        assert!(q.is_empty());
    }

    #[test]
    fn interleaved_pushes_and_pops_keep_the_order() {
        let mut q = OfflineQueue::new(QueueLimits {
            max_messages: 100,
            max_bytes: 1_000,
        });
        push(&mut q, item(1, b"a")).unwrap();
        push(&mut q, item(2, b"b")).unwrap();
        assert_eq!(q.front().map(|f| f.token.0), Some(1));
        assert_eq!(q.pop().map(|f| f.token.0), Some(1));
        push(&mut q, item(3, b"c")).unwrap();
        assert_eq!(q.front().map(|f| f.token.0), Some(2));
        assert_eq!(q.pop().map(|f| f.token.0), Some(2));
        push(&mut q, item(4, b"d")).unwrap();
        push(&mut q, item(5, b"e")).unwrap();
        assert_eq!(q.pop().map(|f| f.token.0), Some(3));
        push(&mut q, item(6, b"f")).unwrap();
        assert_eq!(q.len(), 3);
        assert_eq!(tokens(&drain(&mut q)), [4, 5, 6]);
        assert!(q.is_empty());
        assert!(q.pop().is_none());
    }

    #[test]
    fn drops_oldest_until_the_bytes_fit() {
        let mut q = OfflineQueue::new(QueueLimits {
            max_messages: 100,
            max_bytes: 10,
        });
        push(&mut q, item(1, b"aaa")).unwrap(); // 4 bytes with the topic
        push(&mut q, item(2, b"bbb")).unwrap();
        assert_eq!(tokens(&push(&mut q, item(3, b"cccccc")).unwrap()), [1, 2]);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn rejects_a_message_larger_than_the_queue() {
        let mut q = OfflineQueue::new(QueueLimits {
            max_messages: 100,
            max_bytes: 4,
        });
        push(&mut q, item(1, b"a")).unwrap();
        assert!(push(&mut q, item(2, b"toolong")).is_none());
        assert_eq!(q.len(), 1, "the queue is untouched");
    }
}
