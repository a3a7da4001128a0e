//! Group commit: one writer task commits the operations of many connections
//! as one batch, and completes each submitter's [`Ticket`] only once the
//! batch holding its operations is committed. The broker sends a PUBACK or
//! PUBREC only after its ticket completes.
//!
//! The writer takes everything already waiting (up to `max_batch_ops`) and
//! commits it on a blocking thread; what arrives meanwhile forms the next
//! batch, so batches grow with the load and with the cost of a commit (an
//! fsync) by themselves. With `max_batch_delay` above zero the writer also
//! waits up to that long after a batch's first request for more. That is
//! off by default: publishers wait for their acknowledgement before the
//! next QoS 1 message, so a timer only slows them. Measured with the disk
//! store, 5 s runs, one PUT commit awaited plus one DELETE detached per
//! message: 1/8/64 publishers got 12.6k/32.5k/36.2k acks/s with no delay and
//! 0.4k/2.9k/14.0k with 1 ms ("process"); 0.7k/4.2k/13.4k against
//! 0.3k/1.4k/10.2k with fsync.
//!
//! A batch holding a consumable write (a QoS 1 delivery to a connected persistent
//! subscriber, see [`StoreHandle::send_consumable`]) is held up to [`CONSUME_WINDOW`] for the
//! subscriber's acknowledgement: its delete then undoes the write in the batch, and the
//! publisher's acknowledgement goes without waiting for the disk (see [`super::undo`]).
//!
//! Requests keep their order: a submitter's operations are committed in the
//! order its `enqueue` calls returned, and one request is never split
//! across batches (its operations are atomic).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::undo::Undo;
use super::{Op, Prepared, Snapshot, Store, StoreError};
use crate::config::StoreConfig;

type Done = oneshot::Sender<Result<(), StoreError>>;

/// How long the writer holds a batch that holds a consumable write (see
/// [`StoreHandle::send_consumable`]) for the delete that undoes it: about a
/// subscriber's round trip on a loaded machine, and within the 1 ms a group
/// commit may take to gather.
pub(crate) const CONSUME_WINDOW: Duration = Duration::from_millis(1);

/// What the writer task is asked to do.
enum Request {
    /// Commit these operations, then report on `done` if someone waits. A `consumable`
    /// request reports early if a later delete in its batch undoes every write it holds
    /// (see [`super::undo`]).
    Ops {
        ops: Prepared,
        done: Option<Done>,
        consumable: bool,
    },
    /// Commit everything sent before, then stop.
    Close(oneshot::Sender<()>),
}

impl Request {
    /// Whether the request writes anything (else it is a barrier, or a close).
    fn carries_ops(&self) -> bool {
        matches!(self, Request::Ops { ops, .. } if !ops.is_empty())
    }
}

/// Counters of the writer task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Batches committed.
    pub commits: u64,
    /// Operations committed.
    pub ops: u64,
    /// Batches whose commit failed.
    pub failed_commits: u64,
    /// Writes undone before their commit by a later delete of their record, and so never
    /// written (see [`super::undo`]); counted in `ops` too.
    pub undone: u64,
}

#[derive(Debug, Default)]
struct Counters {
    commits: AtomicU64,
    ops: AtomicU64,
    failed: AtomicU64,
    undone: AtomicU64,
    /// Requests with operations handed to the writer and not yet committed (or refused):
    /// at zero, a barrier has nothing to wait for (see [`StoreHandle::settled`]).
    unsettled: AtomicU64,
    /// Requests with operations ever handed to the writer (see [`StoreHandle::handed`]).
    handed: AtomicU64,
}

/// The broker's handle on the store: submits operations to the writer task.
/// Cheap to clone; every clone feeds the same writer.
#[derive(Debug, Clone)]
pub struct StoreHandle {
    tx: mpsc::UnboundedSender<Request>,
    store: Arc<dyn Store>,
    counters: Arc<Counters>,
}

/// Completes when the batch holding a request is committed: `Ok` once it
/// is as durable as the store's mode promises, or the commit's error.
#[derive(Debug)]
#[must_use = "a ticket does nothing unless awaited; drop it to not wait"]
pub struct Ticket(oneshot::Receiver<Result<(), StoreError>>);

impl Future for Ticket {
    type Output = Result<(), StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A dropped sender means the writer stopped without committing.
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(StoreError::Closed)))
    }
}

impl Ticket {
    /// A ticket already complete: for a barrier with nothing before it to wait for.
    pub fn done() -> Self {
        let (done, rx) = oneshot::channel();
        // The receiver is right here.
        let _ = done.send(Ok(()));
        Self(rx)
    }

    /// A ticket that fails with `error`: for a write refused before it reached the writer.
    pub fn failed(error: StoreError) -> Self {
        let (done, rx) = oneshot::channel();
        // The receiver is right here.
        let _ = done.send(Err(error));
        Self(rx)
    }
}

impl StoreHandle {
    /// Starts the writer task for `store`. Must be called inside a Tokio
    /// runtime.
    pub fn start(store: Arc<dyn Store>, config: &StoreConfig) -> Self {
        let max_ops = config.max_batch_ops.max(1);
        // Unbounded, because the broker submits from inside its locks, where
        // it can neither wait nor drop a write. What bounds it is upstream:
        // a publisher's acknowledgements wait for these commits, so each
        // connection has at most its Receive Maximum of messages pending.
        let (tx, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            rx,
            store: store.clone(),
            counters: counters.clone(),
            max_ops,
            delay: config.max_batch_delay(),
        };
        tokio::spawn(writer.run());
        Self {
            tx,
            store,
            counters,
        }
    }

    /// Hands `ops` to the writer and returns the ticket of their commit.
    /// Never waits, so it may be called under a lock; requests are
    /// committed in the order this is called. The ops are prepared
    /// ([`Store::prepare`]) here, on the caller's thread; ops the store
    /// refuses are an error here, and nothing of them is written.
    pub fn send(&self, ops: Vec<Op>) -> Result<Ticket, StoreError> {
        self.send_ticketed(ops, false)
    }

    /// Like [`send`](Self::send), for writes that only keep a message until its receiver
    /// acknowledges it: the ticket also completes, without a commit, once later deletes in
    /// the same batch undo every one of them (see [`super::undo`]). The writer then holds a
    /// batch up to [`CONSUME_WINDOW`] for those deletes.
    pub fn send_consumable(&self, ops: Vec<Op>) -> Result<Ticket, StoreError> {
        self.send_ticketed(ops, true)
    }

    fn send_ticketed(&self, ops: Vec<Op>, consumable: bool) -> Result<Ticket, StoreError> {
        let ops = self.store.prepare(ops)?;
        let (done, rx) = oneshot::channel();
        self.hand_over(Request::Ops {
            ops,
            done: Some(done),
            consumable,
        })?;
        Ok(Ticket(rx))
    }

    /// Like [`send`](Self::send) for writes nobody waits for; a failed
    /// commit is logged by the writer.
    pub fn send_detached(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let ops = self.store.prepare(ops)?;
        self.hand_over(Request::Ops {
            ops,
            done: None,
            consumable: false,
        })
    }

    /// Sends `request` to the writer, counted as unsettled (before it is sent, so that the
    /// writer's count down after its commit never comes first) if it carries operations.
    fn hand_over(&self, request: Request) -> Result<(), StoreError> {
        let carries = request.carries_ops();
        if carries {
            self.counters.unsettled.fetch_add(1, Ordering::SeqCst);
            self.counters.handed.fetch_add(1, Ordering::SeqCst);
        }
        self.tx.send(request).map_err(|_| {
            if carries {
                self.counters.unsettled.fetch_sub(1, Ordering::SeqCst);
            }
            StoreError::Closed
        })
    }

    /// True if every write handed to the writer so far is committed (or was refused): a
    /// barrier now would complete at the writer's next turn without writing anything, so
    /// whoever would wait for one need not. A write sent by this thread before the call is
    /// always seen. False once the writer is closed, whose barriers fail.
    pub fn settled(&self) -> bool {
        !self.tx.is_closed() && self.counters.unsettled.load(Ordering::SeqCst) == 0
    }

    /// How many requests with operations were ever handed to the writer: a caller that reads
    /// the same count before and after some work knows the work wrote nothing (a write sent
    /// by this thread is always counted by the time `send` returns; other threads' writes
    /// only make the count move when nothing of the caller's was written).
    pub fn handed(&self) -> u64 {
        self.counters.handed.load(Ordering::SeqCst)
    }

    /// [`send`](Self::send), for async callers.
    pub async fn enqueue(&self, ops: Vec<Op>) -> Result<Ticket, StoreError> {
        self.send(ops)
    }

    /// Commits `ops` and waits until they are committed.
    pub async fn submit(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.enqueue(ops).await?.await
    }

    /// Hands `ops` to the writer without waiting for the commit: for writes
    /// nobody acknowledges. A failure is logged by the writer.
    pub async fn submit_detached(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.send_detached(ops)
    }

    /// Commits everything submitted so far and stops the writer; later
    /// submissions fail with [`StoreError::Closed`]. For graceful shutdown.
    pub async fn close(&self) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Request::Close(done)).is_ok() {
            // An error here means the writer already stopped.
            let _ = rx.await;
        }
    }

    /// Reads the whole store, for recovery at start. Blocks: call it
    /// before serving, or from `spawn_blocking`.
    pub fn load(&self) -> Result<Snapshot, StoreError> {
        self.store.load()
    }

    /// Keeps a copy of the store in `replica`'s log: see [`Store::replicate_to`].
    pub fn replicate_to(&self, replica: Arc<dyn super::Replica>) -> Result<(), StoreError> {
        self.store.replicate_to(replica)
    }

    /// Bytes the store takes on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.store.disk_bytes()
    }

    /// The writer's counters so far.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            ops: self.counters.ops.load(Ordering::Relaxed),
            failed_commits: self.counters.failed.load(Ordering::Relaxed),
            undone: self.counters.undone.load(Ordering::Relaxed),
        }
    }
}

/// One batch being gathered: each request's ops as they came, not copied into one list
/// (an op is a couple of hundred bytes, and the copy showed in profiles).
#[derive(Default)]
struct Batch {
    requests: Vec<Prepared>,
    ops: usize,
    tickets: Vec<Done>,
    /// Writes that later deletes in this batch undo, and the consumable requests waiting
    /// for theirs to be.
    undo: Undo,
    /// Requests in it that carry operations (see [`Counters::unsettled`]).
    carrying: u64,
}

impl Batch {
    fn push(&mut self, ops: Prepared, done: Option<Done>, consumable: bool) {
        self.ops += ops.len();
        if ops.is_empty() {
            self.tickets.extend(done);
            return;
        }
        self.carrying += 1;
        self.requests.push(ops);
        let index = self.requests.len() - 1;
        let (early, done) = if consumable {
            (done, None)
        } else {
            (None, done)
        };
        let waits = self.undo.add(&mut self.requests, index, early);
        self.tickets.extend(done.or(waits));
    }

    fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.tickets.is_empty() && !self.undo.has_waiting()
    }

    /// The requests to commit and everyone who waits for the commit.
    fn into_parts(self) -> (Vec<Prepared>, Vec<Done>) {
        let mut tickets = self.tickets;
        tickets.extend(self.undo.into_waiting());
        (self.requests, tickets)
    }
}

/// The writer task's state.
struct Writer {
    rx: mpsc::UnboundedReceiver<Request>,
    store: Arc<dyn Store>,
    counters: Arc<Counters>,
    max_ops: usize,
    delay: Duration,
}

impl Writer {
    async fn run(mut self) {
        let mut carried = None;
        loop {
            let first = match carried.take() {
                Some(r) => r,
                None => match self.rx.recv().await {
                    Some(r) => r,
                    None => return,
                },
            };
            let (batch, next, closing) = self.gather(first).await;
            carried = next;
            self.commit(batch).await;
            if let Some(done) = closing {
                self.refuse_the_rest();
                // Let go of the store before saying so: once the last
                // handle is dropped too, the store is closed.
                drop(self);
                let _ = done.send(());
                return;
            }
        }
    }

    /// Gathers a batch starting with `first`: what is waiting, and what
    /// arrives before the delay is up, or, while a consumable request waits
    /// to be undone, before [`CONSUME_WINDOW`] is. Returns the batch, a
    /// request that did not fit, and a close request if one came.
    async fn gather(
        &mut self,
        first: Request,
    ) -> (Batch, Option<Request>, Option<oneshot::Sender<()>>) {
        let mut batch = Batch::default();
        let start = Instant::now();
        let deadline = start + self.delay;
        let held = start + self.delay.max(CONSUME_WINDOW);
        let mut next = Some(first);
        loop {
            let request = match next.take() {
                Some(r) => r,
                None => match self.rx.try_recv() {
                    Ok(r) => r,
                    Err(mpsc::error::TryRecvError::Empty)
                        if !self.delay.is_zero() || batch.undo.has_waiting() =>
                    {
                        let until = if batch.undo.has_waiting() {
                            held
                        } else {
                            deadline
                        };
                        match tokio::time::timeout_at(until, self.rx.recv()).await {
                            Ok(Some(r)) => r,
                            Ok(None) | Err(_) => return (batch, None, None),
                        }
                    }
                    Err(_) => return (batch, None, None),
                },
            };
            match request {
                Request::Close(done) => return (batch, None, Some(done)),
                // One request is never split: it goes whole into the next
                // batch, alone if it is bigger than a batch.
                Request::Ops {
                    ops,
                    done,
                    consumable,
                } => {
                    if !batch.is_empty() && batch.ops + ops.len() > self.max_ops {
                        let request = Request::Ops {
                            ops,
                            done,
                            consumable,
                        };
                        return (batch, Some(request), None);
                    }
                    batch.push(ops, done, consumable);
                }
            }
            if batch.ops >= self.max_ops {
                return (batch, None, None);
            }
        }
    }

    /// Commits a batch on a blocking thread and completes its tickets.
    async fn commit(&self, batch: Batch) {
        let (n, requests) = (batch.ops, batch.requests.len());
        let undone = batch.undo.undone() as u64;
        let carrying = batch.carrying;
        self.counters.undone.fetch_add(undone, Ordering::Relaxed);
        let (ops, tickets) = batch.into_parts();
        let result = if n == 0 {
            Ok(())
        } else {
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || store.commit_prepared(ops))
                .await
                .unwrap_or_else(|e| {
                    Err(StoreError::Invalid {
                        reason: format!("the commit task failed: {e}"),
                    })
                })
        };
        match &result {
            Ok(()) => {
                self.counters.commits.fetch_add(1, Ordering::Relaxed);
                self.counters.ops.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    error = %e,
                    ops = n,
                    requests,
                    "store commit failed; its submitters are told and acknowledge nothing"
                );
            }
        }
        // Before the tickets: whoever a ticket wakes may ask whether the store is settled.
        self.counters
            .unsettled
            .fetch_sub(carrying, Ordering::SeqCst);
        for done in tickets {
            // A dropped ticket means its submitter stopped waiting.
            let _ = done.send(result.clone());
        }
    }

    /// After a close: requests that came after it are refused, not lost
    /// silently.
    fn refuse_the_rest(&mut self) {
        self.rx.close();
        while let Ok(request) = self.rx.try_recv() {
            if request.carries_ops() {
                self.counters.unsettled.fetch_sub(1, Ordering::SeqCst);
            }
            if let Request::Ops {
                done: Some(done), ..
            } = request
            {
                let _ = done.send(Err(StoreError::Closed));
            }
        }
    }
}
