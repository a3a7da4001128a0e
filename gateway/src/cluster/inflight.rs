//! The stream messages this node sent and has not yet seen stored, in the order it sent them,
//! and what to send (again) and when: MQTT's order across a NATS failover, without NATS.
//!
//! Messages go out at once, many in flight, and JetStream stores them in the order they
//! reach the stream's leader. One that fails (its server died, the stream's leader is being
//! elected again, its acknowledgement timed out) may have been stored or not, while the ones
//! sent after it may be stored already: sent again alone, it would land after them. So, as
//! MQTT has it for QoS 1 with several messages in flight (section 4.6: the final copy of each
//! message arrives in order; 1, 2, 3, 2, 3, 4 is allowed, 1, 3, 2, 4 is not):
//! - **A failure stops the sending**: new messages wait until every message in flight has its
//!   answer. Then, after a pause that doubles with each failure in a row, the first failed
//!   message is sent again under its own id (if its first copy was stored, JetStream keeps
//!   that one), and every message after it, stored or not, under a new id, so that its last
//!   copy lands after. A QoS 1 message may so arrive twice, which MQTT allows, and only
//!   across a failover.
//! - **A message with an id of its own** (a QoS 2 exchange's token) must never be stored
//!   twice: once stored it is not sent again. Instead, each of its *lines* (a publisher's
//!   QoS 2 messages on one topic, or one topic's retained QoS 2 messages) has one message in
//!   flight at a time, so that none can pass one that failed.
//! - **The publisher is told** as soon as its message is stored (its PUBACK or PUBREC), or
//!   that it failed once [`RETRY_FOR`] has passed since the message came.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{info, warn};

use super::metrics::ClusterMetrics;
use crate::broker::ForwardError;

/// How long a stream message is tried before its publisher is told it failed.
pub(super) const RETRY_FOR: Duration = Duration::from_secs(20);
/// The first pause before sending again; it doubles up to [`MAX_PAUSE`].
pub(super) const FIRST_PAUSE: Duration = Duration::from_millis(50);
pub(super) const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Who waits for a message to be stored.
pub(super) type Ack = oneshot::Sender<Result<(), ForwardError>>;

/// A message to send now: `new_id` when it goes under a new `Nats-Msg-Id` (see the module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Due {
    pub(super) seq: u64,
    pub(super) new_id: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Waiting to be sent (again).
    Unsent {
        new_id: bool,
    },
    /// Sent; its answer is awaited.
    Sent,
    Stored,
    Failed(String),
    /// Given up on (its publisher was told), or stored and sent again in vain.
    Dropped,
}

struct Entry<M> {
    message: M,
    /// Taken when the publisher is told.
    ack: Option<Ack>,
    /// Its own id's line, if it has one (see the module); else it may take a new id.
    line: Option<Arc<str>>,
    deadline: Instant,
    attempts: u32,
    state: State,
}

/// The window of messages sent and not yet stored; `M` is what the sender needs to send one.
pub(super) struct InFlight<M> {
    entries: VecDeque<Entry<M>>,
    /// The sequence number of `entries[0]`.
    base: u64,
    /// Entries waiting to be sent, in order.
    unsent: VecDeque<u64>,
    /// Each line's entries not yet stored, in order: only the first may be in flight.
    lines: HashMap<Arc<str>, VecDeque<u64>>,
    sent: usize,
    /// A failure waits to be handled once nothing is in flight.
    failed: bool,
    resume_at: Option<Instant>,
    pause: Duration,
    metrics: Arc<ClusterMetrics>,
}

impl<M> InFlight<M> {
    pub(super) fn new(metrics: Arc<ClusterMetrics>) -> Self {
        Self {
            entries: VecDeque::new(),
            base: 0,
            unsent: VecDeque::new(),
            lines: HashMap::new(),
            sent: 0,
            failed: false,
            resume_at: None,
            pause: FIRST_PAUSE,
            metrics,
        }
    }

    /// Takes a new message, to be sent after every one before it: its sequence number.
    pub(super) fn push(
        &mut self,
        message: M,
        ack: Ack,
        line: Option<Arc<str>>,
        now: Instant,
    ) -> u64 {
        let seq = self.base + self.entries.len() as u64;
        if let Some(line) = &line {
            self.lines.entry(line.clone()).or_default().push_back(seq);
        }
        self.entries.push_back(Entry {
            message,
            ack: Some(ack),
            line,
            deadline: now + RETRY_FOR,
            attempts: 0,
            state: State::Unsent { new_id: false },
        });
        self.unsent.push_back(seq);
        seq
    }

    /// The message numbered `seq`, to send it.
    pub(super) fn message_mut(&mut self, seq: u64) -> &mut M {
        &mut self.entry(seq).message
    }

    /// When [`InFlight::ready`] will have something to send again after a failure.
    pub(super) fn wake_at(&self) -> Option<Instant> {
        self.resume_at
    }

    /// Whether [`InFlight::ready`] may have something to send or to recover from.
    pub(super) fn has_work(&self) -> bool {
        self.failed || !self.unsent.is_empty()
    }

    /// What to send now, in order; each is then in flight until [`InFlight::settled`].
    pub(super) fn ready(&mut self, now: Instant) -> Vec<Due> {
        if self.failed {
            match self.resume_at {
                Some(at) if at <= now => self.recover(now),
                _ => return Vec::new(),
            }
        }
        let mut due = Vec::new();
        // Held ones go round to the back, in their order, and the deque keeps its buffer.
        for _ in 0..self.unsent.len() {
            let seq = self.unsent.pop_front().expect("counted");
            let i = self.index(seq);
            let first_of_line = match &self.entries[i].line {
                Some(line) => self.lines[line].front() == Some(&seq),
                None => true,
            };
            if !first_of_line {
                self.unsent.push_back(seq);
                continue;
            }
            let entry = &mut self.entries[i];
            let State::Unsent { new_id } = entry.state else {
                unreachable!("only unsent entries are listed as such")
            };
            entry.state = State::Sent;
            entry.attempts += 1;
            self.sent += 1;
            due.push(Due { seq, new_id });
        }
        due
    }

    /// JetStream's answer for message `seq`, or why it did not come.
    pub(super) fn settled(&mut self, seq: u64, answer: Result<(), String>, now: Instant) {
        self.sent -= 1;
        let i = self.index(seq);
        let entry = &mut self.entries[i];
        debug_assert_eq!(entry.state, State::Sent);
        match answer {
            Ok(()) => {
                entry.state = State::Stored;
                if let Some(ack) = entry.ack.take() {
                    if entry.attempts > 1 {
                        ClusterMetrics::count(&self.metrics.publishes_retried);
                        info!(
                            attempts = entry.attempts,
                            "taken by the stream after a retry"
                        );
                    }
                    let _ = ack.send(Ok(()));
                }
                self.leave_line(seq);
                self.pop_done();
            }
            Err(error) => {
                entry.state = State::Failed(error);
                self.failed = true;
            }
        }
        if self.failed && self.sent == 0 {
            self.resume_at = Some(now + self.pause);
            self.pause = (self.pause * 2).min(MAX_PAUSE);
        }
    }

    /// After a failure, with nothing in flight: gives up on what has had its time, and lists
    /// the first failed message and everything after it to be sent again (see the module).
    fn recover(&mut self, now: Instant) {
        self.failed = false;
        self.resume_at = None;
        let mut first = None;
        for i in 0..self.entries.len() {
            let seq = self.base + i as u64;
            let entry = &mut self.entries[i];
            match (&entry.state, first) {
                (State::Failed(error), _) if entry.deadline <= now => {
                    match entry.ack.take() {
                        Some(ack) => {
                            ClusterMetrics::count(&self.metrics.publishes_failed);
                            let why = format!("after {} attempts: {error}", entry.attempts);
                            let _ = ack.send(Err(ForwardError(why)));
                        }
                        None => warn!(%error, "a stored message's later copy was not taken"),
                    }
                    entry.state = State::Dropped;
                    self.leave_line(seq);
                }
                (State::Failed(_), None) => {
                    entry.state = State::Unsent { new_id: false };
                    first = Some(i);
                }
                (State::Failed(_), Some(_)) => {
                    let new_id = entry.line.is_none();
                    entry.state = State::Unsent { new_id };
                }
                (State::Stored, Some(_)) if entry.line.is_none() => {
                    entry.state = State::Unsent { new_id: true };
                }
                _ => {}
            }
        }
        self.unsent = (0..self.entries.len())
            .filter(|&i| matches!(self.entries[i].state, State::Unsent { .. }))
            .map(|i| self.base + i as u64)
            .collect();
        self.pop_done();
    }

    fn leave_line(&mut self, seq: u64) {
        let Some(line) = self.entry(seq).line.clone() else {
            return;
        };
        let queue = self.lines.get_mut(&line).expect("a line holds its entries");
        debug_assert_eq!(queue.front(), Some(&seq), "only a line's first is sent");
        queue.pop_front();
        if queue.is_empty() {
            self.lines.remove(&line);
        }
    }

    /// Forgets the stored and dropped messages at the front.
    fn pop_done(&mut self) {
        while let Some(front) = self.entries.front() {
            if !matches!(front.state, State::Stored | State::Dropped) {
                break;
            }
            self.entries.pop_front();
            self.base += 1;
        }
        if self.entries.is_empty() {
            self.pause = FIRST_PAUSE;
        }
    }

    fn index(&self, seq: u64) -> usize {
        usize::try_from(seq - self.base).expect("a window fits in memory")
    }

    fn entry(&mut self, seq: u64) -> &mut Entry<M> {
        let i = self.index(seq);
        &mut self.entries[i]
    }
}

#[cfg(test)]
#[path = "inflight_tests.rs"]
mod tests;
