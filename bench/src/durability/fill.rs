//! Filling a broker and counting what it gives back, with the same publisher and subscriber
//! loops as the throughput flows ([`crate::jobs`]).
//!
//! Filling is bounded and pipelined: a few publishers, each keeping the publisher window of
//! QoS 1 messages unacknowledged, so the broker's acknowledgements pace it and nothing piles
//! up unacknowledged. Counting reconnects a subscriber and reads until it has everything or
//! nothing more comes for the idle time.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use aviary_protocol::QoS;

use crate::client::{self, Endpoint, Transport};
use crate::jobs::{PublisherJob, SubStats, SubscriberJob};
use crate::scenarios::{client_options, Params};

/// What to publish.
#[derive(Debug, Clone)]
pub(super) struct Fill {
    /// Publisher `p` publishes to `{prefix}/{p}`, or with `retain` to `{prefix}/{p}/{n}`.
    pub(super) prefix: &'static str,
    /// Messages in all.
    pub(super) messages: u64,
    /// Publishers sharing them.
    pub(super) publishers: usize,
    /// Retained, one topic per message; otherwise one topic per publisher.
    pub(super) retain: bool,
}

/// How a fill went.
#[derive(Debug, Clone, Default)]
pub(super) struct Filled {
    /// Messages acknowledged by the broker.
    pub(super) acked: u64,
    /// From the first PUBLISH to the last PUBACK.
    pub(super) elapsed: Duration,
    /// The first error or timeout, if any.
    pub(super) error: Option<String>,
}

impl Filled {
    /// Acknowledged messages per second.
    pub(super) fn rate(&self) -> Option<f64> {
        let secs = self.elapsed.as_secs_f64();
        (secs > 0.0).then(|| self.acked as f64 / secs)
    }
}

/// Publishes `fill` at QoS 1 and waits for every PUBACK, or until `timeout`.
pub(super) async fn fill(
    endpoint: &Endpoint,
    params: &Params,
    fill: &Fill,
    timeout: Duration,
) -> Result<Filled> {
    let publishers = fill.publishers.max(1);
    let each = fill.messages.div_ceil(publishers as u64);
    let mut connections = Vec::with_capacity(publishers);
    for p in 0..publishers {
        let options = client_options(params, format!("fill-{}-{p}", fill.prefix), None);
        let connection = client::connect(endpoint, Transport::Tcp, &options)
            .await
            .with_context(|| format!("filling publisher {p} cannot connect"))?;
        connections.push(connection);
    }
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut tasks = Vec::with_capacity(publishers);
    for (p, (reader, writer)) in connections.into_iter().enumerate() {
        let messages = each.min(fill.messages.saturating_sub(each * p as u64));
        let job = PublisherJob {
            index: p as u32,
            messages,
            qos: QoS::AtLeastOnce,
            topic: format!("{}/{p}", fill.prefix).into(),
            topic_per_message: fill.retain,
            topics: None,
            retain: fill.retain,
            payload: params.payload,
            window: params.window,
            rate: None,
            deadline,
            base: started,
        };
        tasks.push(tokio::spawn(job.run(reader, writer)));
    }
    let mut filled = Filled::default();
    for task in tasks {
        let (stats, writer) = task.await.map_err(|e| anyhow!("publisher panicked: {e}"))?;
        if stats.timed_out {
            filled.error.get_or_insert_with(|| "timed out".to_owned());
        } else if stats.error.is_none() {
            // At QoS 1 the job returns only once every PUBLISH is acknowledged.
            filled.acked += stats.sent;
        }
        if let Some(error) = stats.error {
            filled.error.get_or_insert(error);
        }
        writer.disconnect().await;
    }
    filled.elapsed = started.elapsed();
    Ok(filled)
}

/// Connects `client_id` with a persistent session, subscribes it to `filter` at QoS 1 and
/// disconnects it cleanly: from then on the broker queues the filter's messages for it.
pub(super) async fn leave_persistent_session(
    endpoint: &Endpoint,
    params: &Params,
    client_id: &str,
    filter: &str,
) -> Result<()> {
    let mut options = client_options(params, client_id.to_owned(), None);
    options.persistent = true;
    let (mut reader, mut writer) = client::connect(endpoint, Transport::Tcp, &options).await?;
    client::subscribe(&mut reader, &mut writer, filter, QoS::AtLeastOnce).await?;
    writer.disconnect().await;
    Ok(())
}

/// What a counting subscriber got.
#[derive(Debug, Default)]
pub(super) struct Counted {
    /// The broker resumed a stored session (CONNACK Session Present).
    pub(super) session_present: bool,
    /// What arrived.
    pub(super) stats: SubStats,
    /// From CONNACK until the last message, if any came.
    pub(super) elapsed: Option<Duration>,
}

/// Who counts, and what.
#[derive(Debug, Clone, Copy)]
pub(super) struct Count<'a> {
    /// Client identifier.
    pub(super) client_id: &'a str,
    /// Resume a persistent session (and take what is queued for it) rather than subscribe.
    pub(super) resume: bool,
    /// Subscribe to this at QoS 1 (for retained messages).
    pub(super) filter: Option<&'a str>,
    /// Messages expected.
    pub(super) expected: u64,
    /// Publishers that sent them (payloads name one of `0..publishers`).
    pub(super) publishers: usize,
}

/// Connects, optionally subscribes, and counts PUBLISH packets (acknowledging each) until
/// `count.expected` arrived, nothing came for `params.idle`, or `timeout` passed.
pub(super) async fn count(
    endpoint: &Endpoint,
    params: &Params,
    count: Count<'_>,
    timeout: Duration,
) -> Result<Counted> {
    let mut options = client_options(params, count.client_id.to_owned(), None);
    options.persistent = count.resume;
    let (mut reader, mut writer, session_present) =
        client::connect_session(endpoint, Transport::Tcp, &options).await?;
    let started = Instant::now();
    if let Some(filter) = count.filter {
        client::subscribe(&mut reader, &mut writer, filter, QoS::AtLeastOnce).await?;
    }
    let publishers = count.publishers.max(1);
    let job = SubscriberJob {
        expected: count.expected,
        publishers,
        // Everything was published before: the idle rule applies from the start.
        publishers_done: Arc::new(AtomicUsize::new(publishers)),
        deadline: tokio::time::Instant::now() + timeout,
        // At least a few seconds: a broker that just started may pause before it sends.
        idle: params.idle.max(Duration::from_secs(3)),
        record_latency: false,
        base: started,
    };
    let (stats, writer) = job.run(reader, writer).await;
    let elapsed = stats.last.map(|last| last - started);
    writer.disconnect().await;
    Ok(Counted {
        session_present,
        stats,
        elapsed,
    })
}
