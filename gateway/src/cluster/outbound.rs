//! What this node publishes to NATS, in the order it was published: one task sends it all,
//! and the stream's acknowledgements are awaited apart, so many are in flight at once.
//!
//! A stream publish that fails (a NATS server died, the stream's leader is being elected
//! again) is sent again, with backoff, for up to [`RETRY_FOR`]: the publisher's PUBACK waits
//! meanwhile, rather than the publisher being disconnected by a failover. Each message
//! carries a `Nats-Msg-Id` unique to this node's run, so JetStream keeps one copy however many
//! times it was sent. A message sent again may land after messages published after it: order
//! holds except across a failover.
//!
//! The message of a QoS 2 exchange carries the exchange's token in its id instead, which a
//! resend of the PUBLISH reuses, on any node. Its first copy is held back ([`gate`]) until the
//! store holds the exchange and its token: a node that adopts the session after this one
//! died must know the token of any copy that reached the stream.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::header::{HeaderMap, NATS_MESSAGE_ID};
use async_nats::jetstream;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::metrics::ClusterMetrics;
use super::node::{ORIGIN, PUBLISHER};
use crate::broker::{AckWait, ClientKey, ForwardError};

/// How long a stream publish is tried before the publisher is told it failed.
const RETRY_FOR: Duration = Duration::from_secs(20);
/// The first pause before sending again; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// What the sending task is asked to do.
pub(super) enum Out {
    /// A QoS 0 message, over core NATS.
    Live { subject: String, payload: Bytes },
    /// A message for the stream, with its [`stream_headers`]; its acknowledgement goes to
    /// `ack`.
    Stream {
        subject: String,
        payload: Bytes,
        headers: HeaderMap,
        ack: oneshot::Sender<Result<(), ForwardError>>,
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

/// Headers naming the node a message was published on.
pub(super) fn origin_headers(node: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(ORIGIN, node);
    headers
}

/// Headers of a stream message: the node it counts as published on, the local client that
/// published it (for No Local when it comes back), and the id under which the stream keeps
/// one copy of it (without one, [`send`] gives it one of this run's).
pub(super) fn stream_headers(
    origin: &str,
    publisher: Option<ClientKey>,
    id: Option<&str>,
) -> HeaderMap {
    let mut headers = origin_headers(origin);
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

/// Sends what this node publishes, in order; stream acknowledgements are awaited apart.
pub(super) async fn send(
    client: async_nats::Client,
    js: jetstream::Context,
    node: String,
    mut out: mpsc::UnboundedReceiver<Out>,
    metrics: Arc<ClusterMetrics>,
    shutdown: CancellationToken,
) {
    // This run's message ids: the node's name, when it started, and a count.
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let count = AtomicU64::new(0);
    loop {
        let next = tokio::select! {
            next = out.recv() => next,
            () = shutdown.cancelled() => None,
        };
        let Some(next) = next else { break };
        match next {
            Out::Live { subject, payload } => {
                if let Err(e) = client
                    .publish_with_headers(subject, origin_headers(&node), payload)
                    .await
                {
                    debug!(error = %e, "QoS 0 message not sent to the cluster");
                }
            }
            Out::Stream {
                subject,
                payload,
                mut headers,
                ack,
            } => {
                if headers.get(NATS_MESSAGE_ID).is_none() {
                    let id = format!("{node}-{run}-{}", count.fetch_add(1, Ordering::Relaxed));
                    headers.insert(NATS_MESSAGE_ID, id.as_str());
                }
                let first = js
                    .publish_with_headers(subject.clone(), headers.clone(), payload.clone())
                    .await;
                let message = Message {
                    metrics: metrics.clone(),
                    js: js.clone(),
                    subject,
                    headers,
                    payload,
                };
                tokio::spawn(async move {
                    let _ = ack.send(message.confirm(first).await);
                });
            }
        }
    }
}

/// A stream message, kept to be sent again.
struct Message {
    metrics: Arc<ClusterMetrics>,
    js: jetstream::Context,
    subject: String,
    headers: HeaderMap,
    payload: Bytes,
}

type Sent = Result<jetstream::context::PublishAckFuture, jetstream::context::PublishError>;

impl Message {
    /// Waits for JetStream to hold the message, sending it again while it fails, for up to
    /// [`RETRY_FOR`].
    async fn confirm(self, first: Sent) -> Result<(), ForwardError> {
        let deadline = tokio::time::Instant::now() + RETRY_FOR;
        let mut pause = FIRST_PAUSE;
        let mut sent = first;
        let mut attempts = 1;
        loop {
            let error = match sent {
                Ok(pending) => match pending.await {
                    Ok(_) => {
                        if attempts > 1 {
                            ClusterMetrics::count(&self.metrics.publishes_retried);
                            info!(subject = %self.subject, attempts, "taken by the stream after a retry");
                        }
                        return Ok(());
                    }
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() + pause > deadline {
                ClusterMetrics::count(&self.metrics.publishes_failed);
                return Err(ForwardError(format!("after {attempts} attempts: {error}")));
            }
            debug!(subject = %self.subject, %error, "the stream did not take a message; sending it again");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
            attempts += 1;
            sent = self
                .js
                .publish_with_headers(
                    self.subject.clone(),
                    self.headers.clone(),
                    self.payload.clone(),
                )
                .await;
        }
    }
}
