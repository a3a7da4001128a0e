//! What a session has to send and has sent: the bounded queue of routed
//! messages, the QoS 1/2 messages in flight, and the retained messages its
//! new subscriptions have yet to pull ([`RetainedCursor`]).
//!
//! The queue is bounded (by messages and bytes) because live traffic has no
//! end: a subscriber that cannot keep up loses its oldest messages rather
//! than the broker's memory. Retained messages for a new subscription are a
//! finite set that already sits in the retained store, so they are not
//! copied into the queue at all: the writer pulls them a batch at a time,
//! where the queue would have held them, and nothing of them is dropped.
//!
//! Order: a cursor remembers how many queued messages were waiting when its
//! SUBSCRIBE came (`ahead`); those go first, then the cursor's messages,
//! then what was queued after. That is the order a queue holding the
//! retained messages would have given, without the queue's limits.

use std::collections::VecDeque;
use std::num::NonZeroU16;

use aviary_protocol::{Ack, Packet, QoS, TopicFilter};
use tokio::time::Instant;

use super::backlog::SlowAfter;
use super::cursor::{Pulled, Readable, RetainedCursor, SharedRetained};
use crate::broker::message::Outgoing;

/// Most retained entries one pull may look at, sent or skipped: bounds how
/// long a writer holds its session's lock and the retained store's read
/// lock, even when most entries are skipped (replaced since, or expired).
const PULL_BUDGET: usize = 4096;

mod acks;
mod adopt;
mod direct;
mod ids;
mod journal;
mod lazy;

pub(crate) use direct::{Direct, Encoded};
pub(crate) use journal::Event;
pub(crate) use lazy::Outbox;

/// Bounds of a session's queue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueLimits {
    pub(crate) max_messages: usize,
    pub(crate) max_bytes: usize,
    pub(crate) qos0_offline: bool,
    /// When a subscriber holding publishers back counts as slow (see `backlog`).
    pub(crate) slow: SlowAfter,
}

/// What became of an enqueued message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enqueued {
    /// Queued; `evicted` older messages were dropped to make room, and `dropped` in all so
    /// far (for the log, read under the lock that queued it rather than by taking it again
    /// for every message a full queue drops).
    Queued { evicted: usize, dropped: u64 },
    /// A QoS 0 message for an offline session, not queued by configuration.
    DroppedOffline,
    /// Larger than the whole queue's byte limit.
    DroppedTooLarge,
}

/// A QoS 1/2 message sent and not yet fully acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct Inflight {
    pub(crate) packet_id: NonZeroU16,
    pub(crate) out: Outgoing,
    /// QoS 2: PUBREC received, PUBREL sent, waiting for PUBCOMP.
    pub(crate) released: bool,
}

/// What the writer sends next, taken out of the session under its lock.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) control: Vec<Packet>,
    /// Deliveries their publishers encoded, sent after `control` and before `messages`.
    pub(crate) encoded: Encoded,
    /// Messages with their packet id (None for QoS 0) and DUP flag.
    pub(crate) messages: Vec<(Outgoing, Option<NonZeroU16>, bool)>,
    /// Messages dropped because they expired while queued.
    pub(crate) expired: usize,
    /// More is waiting: call again after writing this batch.
    pub(crate) more: bool,
    /// QoS 2 messages of the batch were recorded as sent in the store: the
    /// batch goes out only once that is committed, or a crash could make
    /// them go out again under new packet ids, and be delivered twice.
    pub(crate) wait_for_store: bool,
}

impl Batch {
    /// Nothing to write (though `more` may ask to be called again).
    pub(crate) fn is_empty(&self) -> bool {
        self.control.is_empty() && self.messages.is_empty() && self.encoded.messages == 0
    }
}

/// An outbox's state, once it has one ([`Outbox`] holds it).
#[derive(Debug, Default)]
pub(crate) struct Active {
    /// QoS 0 deliveries encoded by their publishers, ahead of everything queued (see
    /// `direct`).
    encoded: Encoded,
    queue: VecDeque<Outgoing>,
    queued_bytes: usize,
    queued_qos0: usize,
    inflight: VecDeque<Inflight>,
    next_packet_id: u16,
    /// In flight are ids not handed out here in turn, or the count came round to the
    /// oldest's: a new id is looked for among them all (see `ids`).
    mixed_ids: bool,
    /// Retained messages still to send, one cursor per new subscription, in
    /// the order of the SUBSCRIBEs.
    cursors: Vec<RetainedCursor>,
    /// Messages dropped from this session's queue, for the log.
    dropped: u64,
    /// What the store must learn of this outbox's QoS 1/2 messages, when the
    /// session persists (`None` otherwise): the session turns each event into
    /// a store operation while it still holds its lock.
    /// Boxed: every session has an outbox, and most never persist.
    #[expect(
        clippy::box_collection,
        reason = "a session that does not persist carries only a pointer"
    )]
    journal: Option<Box<Vec<Event>>>,
    /// The key of the next message the store keeps for this session.
    next_seq: u64,
}

impl Active {
    /// Queues a message within `limits`, evicting older ones if need be.
    // Inline: on every delivery, which inlined it before the outbox was boxed.
    #[inline]
    pub(crate) fn enqueue(
        &mut self,
        out: Outgoing,
        limits: &QueueLimits,
        online: bool,
    ) -> Enqueued {
        if !online && out.qos == QoS::AtMostOnce && !limits.qos0_offline {
            return Enqueued::DroppedOffline;
        }
        let size = out.msg.size();
        if size > limits.max_bytes {
            return Enqueued::DroppedTooLarge;
        }
        let mut evicted = 0;
        // The backlog: deliveries encoded for the writer count, waiting as queued ones do.
        let full = |(messages, bytes): (usize, usize)| {
            messages >= limits.max_messages || bytes + size > limits.max_bytes
        };
        while full(self.backlog()) {
            // Make room: the oldest QoS 0 messages go first, as they carry no delivery
            // promise. Those encoded are the oldest of all (nothing was queued ahead of
            // them), and go together, being one run of bytes; then the oldest queued QoS 0
            // message; otherwise the oldest message.
            if self.encoded.messages > 0 {
                evicted += self.encoded.messages;
                self.drop_encoded();
                continue;
            }
            let idx = if self.queued_qos0 > 0 {
                self.queue
                    .iter()
                    .position(|o| o.qos == QoS::AtMostOnce)
                    .unwrap_or(0)
            } else {
                0
            };
            let Some(gone) = self.remove_queued(idx) else {
                // Nothing left to drop (cannot be: an empty queue is within the limits).
                break;
            };
            self.record(|| Event::Done(gone.clone()), &gone);
            evicted += 1;
        }
        self.dropped += evicted as u64;
        let mut out = out;
        if let Some(journal) = &mut self.journal {
            if out.qos != QoS::AtMostOnce {
                out.seq = Some(self.next_seq);
                self.next_seq += 1;
                journal.push(Event::Queued {
                    out: out.clone(),
                    online,
                });
            }
        }
        self.account(&out, true);
        self.queue.push_back(out);
        Enqueued::Queued {
            evicted,
            dropped: self.dropped,
        }
    }

    /// Takes the queued message at `idx` out, keeping the byte counts and
    /// the cursors' places in the queue right.
    // Inline: on every delivery, which inlined it before the outbox was boxed.
    #[inline]
    fn remove_queued(&mut self, idx: usize) -> Option<Outgoing> {
        // The oldest, as nearly always (a full queue drops it): `remove(0)` goes through a
        // general shift of nothing.
        let out = match idx {
            0 => self.queue.pop_front(),
            _ => self.queue.remove(idx),
        }?;
        self.account(&out, false);
        for cursor in &mut self.cursors {
            if idx < cursor.ahead {
                cursor.ahead -= 1;
            }
        }
        Some(out)
    }

    fn account(&mut self, out: &Outgoing, added: bool) {
        let size = out.msg.size();
        let qos0 = usize::from(out.qos == QoS::AtMostOnce);
        if added {
            self.queued_bytes += size;
            self.queued_qos0 += qos0;
        } else {
            self.queued_bytes -= size;
            self.queued_qos0 -= qos0;
        }
    }

    /// Messages waiting to be sent (queued, or encoded for the writer), plus those in
    /// flight. Retained messages not pulled yet are not counted: they are not held here.
    pub(crate) fn queued(&self) -> usize {
        self.backlog().0 + self.inflight.len()
    }

    /// Messages and bytes waiting in the queue, and encoded for the writer: what the queue's
    /// limits bound, and what holds publishers back past the high-water mark (see `backlog`).
    pub(crate) fn backlog(&self) -> (usize, usize) {
        let encoded = &self.encoded;
        (
            self.queue.len() + encoded.messages,
            self.queued_bytes + encoded.len(),
        )
    }

    /// Messages dropped from the queue so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether the front of the queue waits for the in-flight window (`window` messages):
    /// until an acknowledgement frees it, nothing queued goes out, as messages go in order.
    pub(crate) fn waits_for_window(&self, window: usize) -> bool {
        self.queue
            .front()
            .is_some_and(|front| self.must_wait(front.qos, window))
    }

    /// Whether a message of `qos` must wait for the in-flight window (`window` messages): QoS
    /// 1 and 2 messages do while it is full; QoS 0 ones never take a place in it.
    fn must_wait(&self, qos: QoS, window: usize) -> bool {
        qos != QoS::AtMostOnce && self.inflight.len() >= window
    }

    /// Whether any QoS 1/2 message awaits its acknowledgement.
    pub(crate) fn has_inflight(&self) -> bool {
        !self.inflight.is_empty()
    }

    /// Starts sending the retained messages of a new subscription, after
    /// what is queued now. A cursor for the same filter starts over: each
    /// SUBSCRIBE with Retain Handling 0 sends them all again [MQTT-3.3.1-9].
    pub(crate) fn start_retained(&mut self, mut cursor: RetainedCursor) {
        self.stop_retained(cursor.filter());
        cursor.ahead = self.queue.len();
        self.cursors.push(cursor);
    }

    /// Stops sending the retained messages of `filter` (unsubscribed).
    pub(crate) fn stop_retained(&mut self, filter: &TopicFilter) {
        self.cursors.retain(|c| c.filter() != filter);
    }

    /// Adds every in-flight message to `batch` again, in the original
    /// order, with DUP [MQTT-4.4.0-1]: for a resumed session.
    pub(crate) fn resend(&self, batch: &mut Batch) {
        for i in &self.inflight {
            if i.released {
                batch.control.push(Packet::PubRel(Ack::new(i.packet_id)));
            } else {
                batch
                    .messages
                    .push((i.out.clone(), Some(i.packet_id), true));
            }
        }
    }

    /// Adds new messages to `batch`, up to `max` in all and `window` in
    /// flight: queued ones and retained ones, in the order described in the
    /// module documentation. Locks `retained` (for reading) only if a cursor
    /// is due.
    pub(crate) fn fill(
        &mut self,
        batch: &mut Batch,
        window: usize,
        max: usize,
        now: Instant,
        retained: (&SharedRetained, Readable<'_>),
    ) {
        while batch.messages.len() < max {
            let progressed = match self.cursors.first() {
                Some(cursor) if cursor.ahead == 0 => {
                    self.pull_retained(batch, window, max, now, retained)
                }
                _ => self.pop_queued(batch, window, now),
            };
            if !progressed {
                break;
            }
        }
        batch.more |= batch.messages.len() >= max;
    }

    /// Moves the front of the queue into `batch`. False if the queue is
    /// empty or its front must wait for the window.
    fn pop_queued(&mut self, batch: &mut Batch, window: usize, now: Instant) -> bool {
        if self.waits_for_window(window) {
            return false;
        }
        let Some(out) = self.remove_queued(0) else {
            return false;
        };
        if out.msg.is_expired(now) {
            self.record(|| Event::Done(out.clone()), &out);
            batch.expired += 1;
        } else {
            self.send(out, batch);
        }
        true
    }

    /// Pulls the front cursor's next messages into `batch`. True if the
    /// cursor is finished and `fill` may go on with what follows it.
    fn pull_retained(
        &mut self,
        batch: &mut Batch,
        window: usize,
        max: usize,
        now: Instant,
        (retained, readable): (&SharedRetained, Readable<'_>),
    ) -> bool {
        // Out of the list while it pulls, so `send` can borrow the rest.
        // A few at most (one per new subscription): a Vec is 8 bytes smaller than a VecDeque.
        if self.cursors.is_empty() {
            return false;
        }
        let mut cursor = self.cursors.remove(0);
        let store = retained.read();
        let pulled = cursor.pull(&store, now, PULL_BUDGET, readable, |out| {
            let room = batch.messages.len() < max;
            // Wait for the window rather than send a later message first.
            let fits = !self.must_wait(out.qos, window);
            if room && fits {
                self.send(out, batch);
            }
            room && fits
        });
        drop(store);
        match pulled {
            Pulled::Finished => return true,
            Pulled::Stopped => {}
            // Only skipped entries so far: come back soon, lock released.
            Pulled::Paused => batch.more = true,
        }
        self.cursors.insert(0, cursor);
        false
    }

    /// Adds a message to `batch`, with a packet id and a place in flight
    /// unless it is QoS 0.
    fn send(&mut self, out: Outgoing, batch: &mut Batch) {
        if out.qos == QoS::AtMostOnce {
            batch.messages.push((out, None, false));
            return;
        }
        let packet_id = self.alloc_packet_id();
        // Only QoS 2 needs its sending written: the receiver keeps the packet id until PUBREL,
        // so a restart must resend it with the same id, or a second copy would be delivered.
        // A QoS 1 message stays stored as queued: after a crash it is sent again, first and
        // in order, under a new id and without DUP, which a QoS 1 receiver takes as it takes
        // any resend [MQTT-4.3.2]. That saves a store write per persistent delivery.
        if out.qos == QoS::ExactlyOnce {
            self.record(|| Event::Sent(out.clone(), packet_id), &out);
        }
        self.inflight.push_back(Inflight {
            packet_id,
            out: out.clone(),
            released: false,
        });
        batch.messages.push((out, Some(packet_id), false));
    }

    /// The messages in flight, in the order sent.
    pub(crate) fn inflight(&self) -> &VecDeque<Inflight> {
        &self.inflight
    }

    /// The queued messages, oldest first.
    pub(crate) fn queue(&self) -> &VecDeque<Outgoing> {
        &self.queue
    }

    /// Bytes the queue holds.
    #[cfg(test)]
    pub(super) fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Retained-message cursors still running.
    #[cfg(test)]
    pub(super) fn cursors(&self) -> usize {
        self.cursors.len()
    }

    /// Sets the last packet id used, to test wrapping.
    #[cfg(test)]
    pub(super) fn set_last_packet_id(&mut self, id: u16) {
        self.next_packet_id = id;
        self.mix_ids();
    }
}
