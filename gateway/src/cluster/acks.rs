//! This node's acknowledgements to its stream consumer: in stream order, several messages at a
//! time. The consumer acknowledges with `AckPolicy::All`, where one acknowledgement of stream
//! sequence `s` covers every message the consumer delivered up to `s`. Each acknowledgement
//! costs every nats-server a replicated write of the consumer's state (a RAFT round, file
//! writes, and the message's removal from the interest-retained stream); on cores shared with
//! the servers, one per message competes with the delivery of the next.
//!
//! An acknowledgement must never cover a message not yet handled, so it goes up to the end of
//! the run of handled messages since the last one, no further:
//! - **Handled** means routed, and the local store holds what routing queued. A message whose
//!   commit failed stops the run until the stream sends it again (after the consumer's
//!   acknowledgement wait) and it is stored; the handled ones after it that come again too are
//!   not routed twice.
//! - **When.** A run holding a message whose routing wrote to the store (a persistent
//!   session's) is acknowledged at once, as with one acknowledgement per message: a node that
//!   dies leaves unacknowledged only what it may not have delivered (see
//!   [`super::adoption`]). Messages that wrote nothing (clean sessions only, lost with the node
//!   anyway) wait up to [`DELAY`] or [`BATCH`] messages.
//! - **Messages that never arrived.** A pull that fails drops what the client had buffered,
//!   and after a restart the server still holds what the previous run was delivered: the
//!   server sends those again only after the acknowledgement wait, after newer ones. Until
//!   then, an acknowledgement past the last message seen would cover them. So after a failed
//!   pull, and at start, acknowledgements stop at the last message seen (the *fence*) until
//!   the server counts no more messages awaiting acknowledgement than this node holds: it
//!   counts every one this node holds, so any missing one would show.
//! - **Messages read again from the stream.** A delivery lost on its way here is filled in
//!   from the stream (see [`super::replay`]): such a message is handled like the others, but
//!   has no delivery to acknowledge it. It is covered by the next acknowledgement of a
//!   delivery after it, as `AckPolicy::All` acknowledges by stream sequence.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use tokio::time::Instant;

/// At most this many handled messages wait for one acknowledgement.
pub(super) const BATCH: usize = 64;
/// How long a handled message that wrote nothing to the store may wait for its
/// acknowledgement: far below the consumer's acknowledgement wait (30 s).
pub(super) const DELAY: Duration = Duration::from_millis(20);
/// How often, while the fence holds acknowledgements back, the server is asked for its count.
pub(super) const FENCE_CHECK: Duration = Duration::from_millis(100);

/// A commit being waited for: true once it is done, false if it failed.
pub(super) type Commit = Pin<Box<dyn Future<Output = bool> + Send>>;

/// A commit with the stream sequence of the message waiting for it.
type Tagged = Pin<Box<dyn Future<Output = (u64, bool)> + Send>>;

/// How routing a message ended.
pub(super) enum Routed {
    /// Nothing to wait for. `durable`: routing wrote to the store (and it is committed).
    Handled { durable: bool },
    /// Routing wrote to the store: handled once this commit is done.
    Committing(Commit),
    /// Not held here: never acknowledged, so the stream sends it again.
    Failed,
}

/// What to do with a message the consumer brings.
pub(super) enum Admit<M> {
    /// Route it (then say how with [`Acks::routed`]).
    Route(M),
    /// Already acknowledged (the acknowledgement may have been lost): acknowledge it again.
    Ack(M),
    /// Already handled or under way: nothing to do.
    Held,
}

/// What [`Acks::next`] waited for.
pub(super) enum Event {
    /// The commit of the message with this stream sequence ended: true if done.
    Committed(u64, bool),
    /// Time to acknowledge what waits, or to ask the server for its count.
    Due,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handled,
    Committing,
    Failed,
}

struct Entry<M> {
    seq: u64,
    /// The newest delivery of the message: what acknowledges it. None for one read again
    /// from the stream and not delivered since.
    message: Option<M>,
    state: State,
    durable: bool,
}

/// The acknowledgement state of one consumer; `M` acknowledges a message (a JetStream
/// message in the node, anything in tests).
pub(super) struct Acks<M> {
    /// The highest stream sequence an acknowledgement was sent for.
    sent: u64,
    /// The end of the handled run (every message up to it is handled).
    handled: u64,
    /// The newest delivery in the handled run not acknowledged yet: what acknowledges it.
    ready: Option<(u64, M)>,
    /// How many messages the run holds, and how many of them come after `ready`.
    ready_count: usize,
    after_ready: usize,
    /// The run holds a message that wrote to the store: acknowledge it at once.
    urgent: bool,
    /// Messages routed and not yet in the run, by stream sequence.
    pending: VecDeque<Entry<M>>,
    commits: FuturesUnordered<Tagged>,
    due: Option<Instant>,
    /// Set to `due`: one timer, reset, rather than one registered per wait.
    timer: Pin<Box<tokio::time::Sleep>>,
    /// Acknowledgements go no further than this until the server's count says nothing is
    /// missing (see the module's notes).
    fence: Option<u64>,
    /// The highest stream sequence seen.
    highest: u64,
}

impl<M> Acks<M> {
    /// A consumer's acknowledgements at start: fenced, for what an earlier run left.
    pub(super) fn new() -> Self {
        Self {
            sent: 0,
            handled: 0,
            ready: None,
            ready_count: 0,
            after_ready: 0,
            urgent: false,
            pending: VecDeque::new(),
            commits: FuturesUnordered::new(),
            due: None,
            timer: Box::pin(tokio::time::sleep_until(Instant::now())),
            fence: Some(0),
            highest: 0,
        }
    }

    /// Says what to do with the message of stream sequence `seq`.
    pub(super) fn admit(&mut self, seq: u64, message: M) -> Admit<M> {
        if seq <= self.sent {
            return Admit::Ack(message);
        }
        if seq <= self.handled {
            if let Some((_, ready)) = self.ready.as_mut().filter(|(end, _)| seq == *end) {
                // Acknowledged by its newest delivery, as the server last sent it.
                *ready = message;
            }
            return Admit::Held;
        }
        match self.find(seq) {
            Ok(i) if self.pending[i].state == State::Failed => Admit::Route(message),
            Ok(i) => {
                self.pending[i].message = Some(message);
                Admit::Held
            }
            Err(_) => Admit::Route(message),
        }
    }

    /// Whether the message of stream sequence `seq`, read again from the stream, is handled
    /// or under way already (else route it, and say how with [`Acks::routed`]).
    pub(super) fn holds(&self, seq: u64) -> bool {
        seq <= self.handled
            || self
                .find(seq)
                .is_ok_and(|i| self.pending[i].state != State::Failed)
    }

    /// Records how routing the message of stream sequence `seq` ended; `message` is its
    /// delivery, None for one read again from the stream.
    pub(super) fn routed(&mut self, seq: u64, message: Option<M>, routed: Routed) {
        let (state, durable) = match routed {
            Routed::Handled { durable } => (State::Handled, durable),
            Routed::Committing(commit) => {
                self.commits
                    .push(Box::pin(async move { (seq, commit.await) }));
                (State::Committing, true)
            }
            Routed::Failed => (State::Failed, false),
        };
        let entry = Entry {
            seq,
            message,
            state,
            durable,
        };
        match self.find(seq) {
            Ok(i) => self.pending[i] = entry,
            Err(i) => self.pending.insert(i, entry),
        }
        self.highest = self.highest.max(seq);
        self.advance();
    }

    /// Records the end of a commit [`next`](Self::next) reported.
    pub(super) fn committed(&mut self, seq: u64, done: bool) {
        if let Ok(i) = self.find(seq) {
            if self.pending[i].state == State::Committing {
                self.pending[i].state = if done { State::Handled } else { State::Failed };
            }
        }
        self.advance();
    }

    /// A pull failed, and with it what the client had buffered: fences acknowledgements at
    /// the last message seen.
    pub(super) fn pull_failed(&mut self) {
        self.fence = Some(self.fence.map_or(self.highest, |f| f.min(self.highest)));
    }

    /// Whether the fence holds back a handled message: time to ask the server's count.
    pub(super) fn fenced(&self) -> bool {
        self.fence.is_some()
            && self
                .pending
                .front()
                .is_some_and(|e| e.state == State::Handled)
    }

    /// The server's count of messages awaiting acknowledgement: if this node holds that many
    /// (unacknowledged, delivered to it), none is missing and the fence goes.
    pub(super) fn server_pending(&mut self, count: u64) {
        let held = self.pending.len() + self.ready_count;
        if usize::try_from(count).is_ok_and(|count| count <= held) {
            self.fence = None;
            self.advance();
        }
    }

    /// The message to acknowledge now, if any: the run's end, if it must go at once (or
    /// `due`: its time has come).
    pub(super) fn take(&mut self, due: bool) -> Option<M> {
        let now = due || self.urgent || self.ready_count >= BATCH;
        let taken = self.ready.take_if(|_| now).map(|(end, message)| {
            self.sent = end;
            // Those read again after it wait for the next delivery's acknowledgement.
            self.ready_count = self.after_ready;
            self.urgent &= self.after_ready > 0;
            self.due = None;
            message
        });
        // Also when nothing went: the fence is checked again until it goes.
        self.arm();
        taken
    }

    /// Waits for a commit to end or for the time to acknowledge (or to check the fence).
    /// Cancel-safe.
    pub(super) async fn next(&mut self) -> Event {
        let event = tokio::select! {
            Some((seq, done)) = self.commits.next(), if !self.commits.is_empty() => {
                Event::Committed(seq, done)
            }
            () = &mut self.timer, if self.due.is_some() => Event::Due,
            else => std::future::pending().await,
        };
        if matches!(event, Event::Due) {
            self.due = None;
        }
        event
    }

    /// Moves the handled front of `pending` into the run, up to the fence.
    fn advance(&mut self) {
        while let Some(front) = self.pending.front() {
            let fenced = self.fence.is_some_and(|f| front.seq > f);
            if front.state != State::Handled || fenced {
                break;
            }
            let Some(e) = self.pending.pop_front() else {
                break;
            };
            self.urgent |= e.durable;
            self.ready_count += 1;
            self.handled = e.seq;
            match e.message {
                Some(message) => {
                    self.ready = Some((e.seq, message));
                    self.after_ready = 0;
                }
                None => self.after_ready += 1,
            }
        }
        self.arm();
    }

    /// Sets the timer: for the run's acknowledgement, or to check the fence.
    fn arm(&mut self) {
        let wait = if self.ready.is_some() {
            DELAY
        } else if self.fenced() {
            FENCE_CHECK
        } else {
            return;
        };
        if self.due.is_none() {
            let due = Instant::now() + wait;
            self.due = Some(due);
            self.timer.as_mut().reset(due);
        }
    }

    fn find(&self, seq: u64) -> Result<usize, usize> {
        self.pending.binary_search_by_key(&seq, |e| e.seq)
    }
}

#[cfg(test)]
#[path = "acks_tests.rs"]
mod tests;
