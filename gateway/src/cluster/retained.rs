//! Retained messages across the cluster. Every retained publish, whatever its QoS, also goes
//! into the `AVIARY_RETAINED` stream, which keeps the last message per topic (an empty one
//! clears the topic), replicated and on disk, so it outlives a restart of every node. Each
//! node keeps its own index, the broker's retained store, fed by the stream: at start it
//! reads the stream's last message per topic before it takes clients, then follows it.
//!
//! Its own messages the node kept when they were published; it skips them when they come
//! back, except while catching up at start (its store may be new).

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::node::{decode, origin};
use super::ClusterError;
use crate::broker::Broker;

/// Subject prefix of the retained stream.
pub(super) const PREFIX: &str = "aviary.r";
/// The stream of retained messages.
const STREAM: &str = "AVIARY_RETAINED";
/// How long the catch-up at start may take before the node gives up starting.
const CATCH_UP: Duration = Duration::from_secs(60);

/// Makes sure the stream exists, brings the broker's retained store up to date with it, and
/// keeps it so until `shutdown`.
pub(super) async fn follow(
    js: &jetstream::Context,
    replicas: u8,
    node: String,
    broker: Broker,
    shutdown: CancellationToken,
) -> Result<(), ClusterError> {
    let config = stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![format!("{PREFIX}.>")],
        max_messages_per_subject: 1,
        storage: stream::StorageType::File,
        num_replicas: usize::from(replicas),
        ..Default::default()
    };
    let stream = super::setup::step(STREAM, || js.get_or_create_stream(config.clone())).await?;
    let stored = super::setup::step(STREAM, || stream.get_info())
        .await?
        .state
        .messages;
    let consumer: consumer::OrderedPullConsumer = super::setup::step(STREAM, || {
        stream.create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::LastPerSubject,
            filter_subject: format!("{PREFIX}.>"),
            ..Default::default()
        })
    })
    .await?;
    let mut messages = super::setup::step(STREAM, || consumer.clone().messages()).await?;
    let mut caught_up = stored == 0;
    let catch_up = async {
        while !caught_up {
            let Some(next) = messages.next().await else {
                return Err(ClusterError::Stream("the retained stream ended".into()));
            };
            let m = next.map_err(|e| ClusterError::Stream(e.to_string()))?;
            apply(&broker, &m, None);
            caught_up = m.info().is_ok_and(|i| i.pending == 0);
        }
        Ok(())
    };
    tokio::time::timeout(CATCH_UP, catch_up)
        .await
        .map_err(|_| ClusterError::Stream(format!("reading {STREAM} took over {CATCH_UP:?}")))??;
    info!(
        retained = broker.retained_count(),
        "retained messages caught up with the cluster"
    );
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                () = shutdown.cancelled() => None,
            };
            match next {
                None => break,
                Some(Ok(m)) => apply(&broker, &m, Some(&node)),
                Some(Err(e)) => debug!(error = %e, "retained stream hiccup"),
            }
        }
    });
    Ok(())
}

/// Keeps (or clears) one retained message, unless it is this node's own (`skip_from`).
fn apply(broker: &Broker, m: &jetstream::Message, skip_from: Option<&str>) {
    if skip_from.is_some() && origin(m.headers.as_ref()) == skip_from {
        return;
    }
    match decode(&m.subject, m.payload.clone(), PREFIX) {
        Ok(msg) => broker.retain_remote(msg),
        Err(e) => {
            warn!(subject = %m.subject, error = %e, "dropped a retained message from the stream")
        }
    }
}
