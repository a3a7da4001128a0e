//! This node's durable consumer of the message stream: each message routed here once, in the
//! stream's order, and acknowledged once the local store (and its copy in JetStream) holds
//! what routing queued, so that a node that dies leaves in its consumer exactly what it had
//! not taken in (see [`super::adoption`]).

use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::handover::{self, mark_subject, MARK_PREFIX};
use super::metrics::ClusterMetrics;
use super::node::{decode, origin, pull, PUBLISHER, STREAM_PREFIX};
use crate::broker::{Broker, ClientKey, Origin};

/// Routes what this node's consumer brings, once each, and acknowledges it once the local
/// store holds what it queued.
pub(super) async fn consume(
    consumer: consumer::PullConsumer,
    client: async_nats::Client,
    metrics: Arc<ClusterMetrics>,
    node: String,
    broker: Broker,
    shutdown: CancellationToken,
) {
    let mut pulling = None;
    while !shutdown.is_cancelled() {
        let messages = match &mut pulling {
            Some(messages) => messages,
            None => match pull(&consumer).await {
                Ok(messages) => pulling.insert(messages),
                Err(e) => {
                    warn!(error = %e, "cannot read this node's stream consumer; trying again");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                        () = shutdown.cancelled() => {}
                    }
                    continue;
                }
            },
        };
        let next = tokio::select! {
            next = messages.next() => next,
            () = shutdown.cancelled() => None,
        };
        // A failed pull (a server or leader change) may end the stream: pull again. What it
        // had fetched and not handed out comes again later, nothing is lost.
        let m = match next {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                debug!(error = %e, "stream consumer hiccup: pulling again");
                pulling = None;
                // Not at once: a consumer without a leader answers at once, "no responders".
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                    () = shutdown.cancelled() => {}
                }
                continue;
            }
            None => {
                pulling = None;
                continue;
            }
        };
        if m.subject.starts_with(MARK_PREFIX) {
            // Another node's filter may take in markers addressed to this one's neighbours.
            if *m.subject == *mark_subject(&node) {
                handover::marked(&client, &broker, &metrics, m.payload.clone()).await;
            }
            if let Err(e) = m.ack().await {
                debug!(error = %e, "marker acknowledgement failed");
            }
            continue;
        }
        let from = if origin(m.headers.as_ref()) == Some(node.as_str()) {
            Origin::Here(
                m.headers
                    .as_ref()
                    .and_then(|h| h.get(PUBLISHER))
                    .and_then(|v| v.as_str().parse::<ClientKey>().ok()),
            )
        } else {
            Origin::Elsewhere
        };
        match decode(&m.subject, m.payload.clone(), STREAM_PREFIX) {
            Ok(mut msg) => {
                msg.stream_seq = m
                    .info()
                    .ok()
                    .and_then(|i| NonZeroU64::new(i.stream_sequence));
                broker.publish_streamed(msg, from);
            }
            Err(e) => {
                warn!(subject = %m.subject, error = %e, "dropped a message from the stream")
            }
        }
        ack_when_stored(&broker, m).await;
    }
}

/// Acknowledges `m` to the stream once the local store holds what routing it queued: at once
/// without a store, or when the store holds everything already (routing queued nothing
/// durable, as for clean sessions: no task and no trip through the store's writer per
/// message); otherwise when the store's next commit is done, without holding up the messages
/// after it. A commit that fails leaves it unacknowledged: the stream sends it again.
pub(super) async fn ack_when_stored(broker: &Broker, m: jetstream::Message) {
    let Some(ticket) = broker
        .persist()
        .filter(|p| !p.settled())
        .and_then(|p| p.barrier().ok())
    else {
        return ack(&m).await;
    };
    tokio::spawn(async move {
        match ticket.await {
            Ok(()) => ack(&m).await,
            Err(e) => warn!(error = %e, "not acknowledged to the stream: the store failed"),
        }
    });
}

async fn ack(m: &jetstream::Message) {
    if let Err(e) = m.ack().await {
        debug!(error = %e, "stream acknowledgement failed; the message may come again");
    }
}
