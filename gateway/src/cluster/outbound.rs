//! What this node publishes to NATS, in the order it was published: one task sends it all,
//! stream messages many at a time, and keeps those not yet stored in an [`InFlight`] window.
//!
//! A stream publish that fails (a NATS server died, the stream's leader is being elected
//! again) is sent again, with backoff, for up to [`RETRY_FOR`](super::inflight::RETRY_FOR):
//! the publisher's PUBACK waits meanwhile, rather than the publisher being disconnected by a
//! failover. The messages sent after it go again after it, so each one's last copy keeps its
//! place (the window's module says how). Each message carries a `Nats-Msg-Id` unique to this
//! node's run, so JetStream keeps one copy of what is sent again under the same id.
//!
//! The message of a QoS 2 exchange carries the exchange's token in its id instead, which a
//! resend of the PUBLISH reuses, on any node. Its first copy is held back ([`gate`]) until the
//! store holds the exchange and its token: a node that adopts the session after this one
//! died must know the token of any copy that reached the stream.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_nats::header::{HeaderMap, NATS_MESSAGE_ID};
use async_nats::jetstream;
use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::backlog::Backlog;
use super::inflight::{Ack, InFlight};
use super::live::Batch;
use super::messages::{ORIGIN, PUBLISHER};
use super::metrics::ClusterMetrics;
use crate::broker::{AckWait, ClientKey, ForwardError};

/// What the sending task is asked to do.
pub(super) enum Out {
    /// A QoS 0 message, over core NATS (in a [`Batch`] with those queued behind it).
    Live { subject: String, payload: Bytes },
    /// A message for the stream, with its [`stream_headers`]; its acknowledgement goes to
    /// `ack`. A message with an id of its own has a `line` (see [`InFlight`]).
    Stream {
        subject: String,
        payload: Bytes,
        headers: HeaderMap,
        line: Option<Arc<str>>,
        ack: Ack,
    },
}

impl Out {
    /// Tells whoever waits for a stream message that it was not sent.
    fn fail(self, error: ForwardError) {
        if let Out::Stream { ack, .. } = self {
            let _ = ack.send(Err(error));
        }
    }
}

/// Headers of a stream message: the node it counts as published on, the local client that
/// published it (for No Local when it comes back), and the id under which the stream keeps
/// one copy of it (without one, [`send`] gives it one of this run's).
pub(super) fn stream_headers(
    origin: &str,
    publisher: Option<ClientKey>,
    id: Option<&str>,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(ORIGIN, origin);
    if let Some(key) = publisher {
        headers.insert(PUBLISHER, key.to_string().as_str());
    }
    if let Some(id) = id {
        headers.insert(NATS_MESSAGE_ID, id);
    }
    headers
}

/// Passes on each group of messages once what it waits for is done, groups in the order
/// they came (the QoS 2 messages of one publisher stay in order); if the wait fails, the
/// group's publishers are told.
pub(super) async fn gate(
    mut held: mpsc::UnboundedReceiver<(AckWait, Vec<Out>)>,
    out: mpsc::UnboundedSender<Out>,
    shutdown: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            next = held.recv() => next,
            () = shutdown.cancelled() => None,
        };
        let Some((after, group)) = next else { break };
        match after.await {
            Ok(()) => group.into_iter().for_each(|o| {
                let _ = out.send(o);
            }),
            Err(e) => group.into_iter().for_each(|o| o.fail(e.clone())),
        }
    }
}

/// What the sender keeps of a stream message, to send it (again).
struct Stream {
    subject: String,
    headers: HeaderMap,
    payload: Bytes,
}

/// A stream publish's answer: the message's number in the window, and whether it is stored.
type Answer = Pin<Box<dyn Future<Output = (u64, Result<(), String>)> + Send>>;

/// Sends what this node publishes, in order, stream messages many at a time; [`InFlight`]
/// says what to send again after a failure.
pub(super) async fn send(
    live: async_nats::Client,
    js: jetstream::Context,
    node: String,
    mut out: mpsc::UnboundedReceiver<Out>,
    metrics: Arc<ClusterMetrics>,
    backlog: Arc<Backlog>,
    shutdown: CancellationToken,
) {
    let mut sender = Sender {
        live,
        js,
        // This run's message ids: the node's name, when it started, and a count.
        run: format!(
            "{node}-{}",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ),
        count: 0,
        window: InFlight::new(metrics.clone()),
        answers: FuturesUnordered::new(),
        metrics,
        backlog,
    };
    // A message a QoS 0 batch did not take, to handle before the next from the channel.
    let mut held: Option<Out> = None;
    loop {
        // The clock is read only when the window has work: not per QoS 0 batch.
        if sender.window.has_work() {
            sender.send_ready().await;
        }
        let resume = sender.window.wake_at();
        let woke = match held.take() {
            Some(next) => Woke::Out(Some(next)),
            None => tokio::select! {
                next = out.recv() => Woke::Out(next),
                Some((seq, answer)) = sender.answers.next(), if !sender.answers.is_empty() => {
                    Woke::Answer(seq, answer)
                }
                () = sleep_until(resume.unwrap_or_else(Instant::now)), if resume.is_some() => {
                    Woke::Resume
                }
                () = shutdown.cancelled() => Woke::Out(None),
            },
        };
        match woke {
            Woke::Out(Some(Out::Live { subject, payload })) => {
                let mut batch = Batch::new(subject, &payload);
                held = batch.fill(&mut out);
                sender.send_live(batch).await;
            }
            Woke::Out(Some(Out::Stream {
                subject,
                payload,
                headers,
                line,
                ack,
            })) => {
                let stream = Stream {
                    subject,
                    headers,
                    payload,
                };
                sender.window.push(stream, ack, line, Instant::now());
            }
            Woke::Out(None) => break,
            Woke::Answer(seq, answer) => {
                if let Err(error) = &answer {
                    debug!(%error, "the stream did not take a message; it goes again");
                }
                sender.window.settled(seq, answer, Instant::now());
            }
            Woke::Resume => {}
        }
    }
}

/// The sending task's state.
struct Sender {
    /// The connection of QoS 0 messages.
    live: async_nats::Client,
    js: jetstream::Context,
    /// The node and its start: the prefix of this run's message ids.
    run: String,
    /// Message ids given so far.
    count: u64,
    window: InFlight<Stream>,
    answers: FuturesUnordered<Answer>,
    metrics: Arc<ClusterMetrics>,
    backlog: Arc<Backlog>,
}

impl Sender {
    /// Sends the stream messages the window has ready; their answers come in `answers`.
    async fn send_ready(&mut self) {
        for due in self.window.ready(Instant::now()) {
            let stream = self.window.message_mut(due.seq);
            if due.new_id || stream.headers.get(NATS_MESSAGE_ID).is_none() {
                self.count += 1;
                let id = format!("{}-{}", self.run, self.count);
                stream.headers.insert(NATS_MESSAGE_ID, id.as_str());
            }
            let sent = self
                .js
                .publish_with_headers(
                    stream.subject.clone(),
                    stream.headers.clone(),
                    stream.payload.clone(),
                )
                .await;
            match sent {
                Ok(pending) => self.answers.push(Box::pin(async move {
                    (due.seq, pending.await.map(drop).map_err(|e| e.to_string()))
                })),
                Err(e) => self
                    .window
                    .settled(due.seq, Err(e.to_string()), Instant::now()),
            }
        }
    }

    /// Sends a batch of QoS 0 messages, taken off the queue.
    async fn send_live(&mut self, batch: Batch) {
        self.backlog.taken(batch.message_bytes());
        let messages = batch.len() as u64;
        self.metrics
            .live_messages
            .fetch_add(messages, Ordering::Relaxed);
        ClusterMetrics::count(&self.metrics.live_batches);
        let (subject, payload) = batch.finish();
        if let Err(e) = self.live.publish(subject, payload).await {
            debug!(error = %e, "QoS 0 messages not sent to the cluster");
        }
    }
}

/// What the sending task woke up for.
enum Woke {
    /// The next message to send, or `None` to stop.
    Out(Option<Out>),
    /// A stream message's answer.
    Answer(u64, Result<(), String>),
    /// The pause after a failure is over.
    Resume,
}
