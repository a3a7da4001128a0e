//! The floor under cross-node QoS 1: JetStream alone, with no gateway, measured on the same
//! NATS servers in the same run. A stream set up as Aviary's message stream is (file storage,
//! R3, interest retention), one durable pull consumer acknowledged as each gateway node's is
//! (`AckPolicy::All`, one acknowledgement per [`ACK_BATCH`] messages or [`ACK_DELAY`], as
//! `gateway/src/cluster/acks.rs` does for messages that wrote nothing to the store), and a
//! publisher paced at the latency flows' rate. Each message carries
//! its send time; the latency is publish to delivery, and the publish acknowledgement's
//! latency (what a gateway's PUBACK waits for) is reported beside it.
//!
//! What it is for: cross-node QoS 1 can be no faster than this, so the cluster's QoS 1 rows
//! read against it tell what the gateways add and what JetStream costs on this machine.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;

use super::section::{Round, Sample};
use crate::report::{format_value, percentile, Better};

/// The stream and consumer of the probe, apart from Aviary's own.
const STREAM: &str = "AVIARY_BENCH_FLOOR";
const SUBJECTS: &str = "aviary-bench.floor.>";
const CONSUMER: &str = "floor";
/// How long any one message or acknowledgement may take before the probe gives up.
const WAIT: Duration = Duration::from_secs(30);
/// A gateway node's acknowledgement batching (`cluster::acks::BATCH` and `DELAY`): each
/// acknowledgement costs every server a replicated write, so the floor batches alike.
const ACK_BATCH: usize = 64;
const ACK_DELAY: Duration = Duration::from_millis(20);

/// Latencies of one probe, in nanoseconds, sorted.
struct Measured {
    delivered: Vec<u64>,
    acknowledged: Vec<u64>,
}

/// The metric names, in the order [`measure`] pushes them; a single node pushes them empty.
fn metrics(rate: &str) -> [String; 4] {
    [
        format!("JetStream alone, publish→delivery at {rate} msg/s, p50, µs"),
        format!("JetStream alone, publish→delivery at {rate} msg/s, p99, µs"),
        format!("JetStream alone, publish→delivery at {rate} msg/s, p99.9, µs"),
        format!("JetStream alone, publish→stream ack at {rate} msg/s, p99, µs"),
    ]
}

/// Measures the floor through the NATS servers at `urls` (`None` on a single node: the rows
/// stay empty there) and pushes its rows and a note to `round`.
pub(crate) async fn measure(
    urls: Option<&[String]>,
    replicas: usize,
    rate: u32,
    secs: u64,
    round: &mut Round,
) {
    let label = format_value(Some(f64::from(rate)), 0);
    let [p50, p99, p999, ack99] = metrics(&label);
    let result = match urls {
        Some(urls) => Some(probe(urls, replicas, rate, secs).await),
        None => None,
    };
    let measured = match result {
        Some(Ok(m)) => {
            round.notes.push(format!(
                "JetStream alone: {} of {} delivered",
                m.delivered.len(),
                m.acknowledged.len()
            ));
            Some(m)
        }
        Some(Err(e)) => {
            round.notes.push(format!("JetStream alone: {e:#}"));
            None
        }
        None => None,
    };
    let at = |v: fn(&Measured) -> &Vec<u64>, p: f64| {
        measured
            .as_ref()
            .and_then(|m| percentile(v(m), p))
            .map(|ns| ns as f64 / 1e3)
    };
    let rows = [
        (p50, at(|m| &m.delivered, 50.0)),
        (p99, at(|m| &m.delivered, 99.0)),
        (p999, at(|m| &m.delivered, 99.9)),
        (ack99, at(|m| &m.acknowledged, 99.0)),
    ];
    for (metric, value) in rows {
        round
            .samples
            .push(Sample::new(metric, Better::Lower, 0, value));
    }
}

/// Publishes `rate × secs` messages at `rate` through the first server and consumes them
/// through the second, as gateway A and B would; the stream goes afterwards.
async fn probe(urls: &[String], replicas: usize, rate: u32, secs: u64) -> Result<Measured> {
    let second = urls.get(1).or(urls.first()).context("no NATS server")?;
    let publisher = async_nats::connect(urls[0].as_str()).await?;
    let subscriber = async_nats::connect(second.as_str()).await?;
    let js = jetstream::new(publisher);
    let stream = js
        .get_or_create_stream(stream::Config {
            name: STREAM.to_owned(),
            subjects: vec![SUBJECTS.to_owned()],
            retention: stream::RetentionPolicy::Interest,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .context("creating the probe's stream")?;
    let result = flow(&js, &jetstream::new(subscriber), rate, secs).await;
    drop(stream);
    let _ = js.delete_stream(STREAM).await;
    result
}

/// The paced flow over a stream that exists.
async fn flow(
    js: &jetstream::Context,
    consuming: &jetstream::Context,
    rate: u32,
    secs: u64,
) -> Result<Measured> {
    let consumer: consumer::PullConsumer = consuming
        .get_stream(STREAM)
        .await?
        .get_or_create_consumer(
            CONSUMER,
            consumer::pull::Config {
                durable_name: Some(CONSUMER.to_owned()),
                ack_policy: consumer::AckPolicy::All,
                deliver_policy: consumer::DeliverPolicy::New,
                max_ack_pending: 10_000,
                ..Default::default()
            },
        )
        .await
        .context("creating the probe's consumer")?;
    let mut messages = consumer.messages().await?;
    let total = u64::from(rate.max(1)) * secs.max(1);
    let start = Instant::now();
    let publishing = tokio::spawn(publish(js.clone(), start, rate.max(1), total));
    let mut delivered = Vec::with_capacity(total as usize);
    let (mut unacknowledged, mut last_ack) = (0, Instant::now());
    while (delivered.len() as u64) < total {
        let m = match tokio::time::timeout(WAIT, messages.next()).await {
            Ok(Some(m)) => m.map_err(|e| anyhow::anyhow!("{e}"))?,
            Ok(None) => bail!("the consumer's messages ended"),
            Err(_) => bail!(
                "no message for {WAIT:?} after {} of {total}",
                delivered.len()
            ),
        };
        let sent = m
            .payload
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .context("a message without its send time")?;
        delivered.push((start.elapsed().as_nanos() as u64).saturating_sub(sent));
        // A gateway acknowledges after the delay even with no message after it; here the
        // next message, a millisecond later at the latency flows' rate, stands in for it.
        unacknowledged += 1;
        let last = delivered.len() as u64 == total;
        if unacknowledged >= ACK_BATCH || last_ack.elapsed() >= ACK_DELAY || last {
            m.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            (unacknowledged, last_ack) = (0, Instant::now());
        }
    }
    let mut acknowledged = publishing.await??;
    delivered.sort_unstable();
    acknowledged.sort_unstable();
    Ok(Measured {
        delivered,
        acknowledged,
    })
}

/// Publishes `total` messages at `rate`, each stamped with its send time since `start`;
/// returns the publish acknowledgements' latencies, awaited apart so that many are in flight,
/// as a gateway does.
async fn publish(
    js: jetstream::Context,
    start: Instant,
    rate: u32,
    total: u64,
) -> Result<Vec<u64>> {
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut acks = Vec::with_capacity(total as usize);
    for i in 0..total {
        tick.tick().await;
        let sent = start.elapsed().as_nanos() as u64;
        let mut payload = sent.to_le_bytes().to_vec();
        payload.resize(64, 0);
        let pending = js
            .publish(format!("aviary-bench.floor.{i}"), payload.into())
            .await?;
        acks.push(tokio::spawn(async move {
            tokio::time::timeout(WAIT, pending)
                .await
                .map(|acked| acked.map(|_| (start.elapsed().as_nanos() as u64) - sent))
        }));
    }
    let mut latencies = Vec::with_capacity(acks.len());
    for ack in acks {
        let latency = ack.await?.context("a publish acknowledgement timed out")?;
        latencies.push(latency.map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    Ok(latencies)
}
