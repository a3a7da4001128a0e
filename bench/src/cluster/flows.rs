//! Message flows across nodes: publishers connected to node A, one subscriber connected to
//! node B (on a single node, A and B are the same), at full speed for throughput or at a
//! fixed rate for latency. The loops are the comparison's own ([`crate::jobs`]), so the two
//! measure alike; what differs is that publishers and subscriber dial different gateways.
//!
//! Before the clock starts, the subscriber's interest must have reached A: QoS 0 crosses
//! nodes over core NATS, where a subscription made on B's NATS server reaches the others
//! asynchronously. A warm-up publishes QoS 0 probes on A until one arrives on B (bounded), so
//! the first measured messages are not lost to propagation.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use aviary_protocol::{ByteString, Packet, Publish, QoS};
use bytes::Bytes;

use crate::client::{self, Endpoint, PacketReader, PacketWriter, Transport};
use crate::jobs::{PublisherJob, SubscriberJob};
use crate::scenarios::{client_options, FlowResult, Params};

/// How long the warm-up may try to get a probe across.
const WARM_UP: Duration = Duration::from_secs(10);

/// One cross-node flow.
#[derive(Debug, Clone)]
pub(crate) struct CrossFlow {
    /// Publishing clients, all on A.
    pub(crate) publishers: usize,
    /// Messages each publisher sends.
    pub(crate) messages: u64,
    /// QoS of publications and subscription.
    pub(crate) qos: QoS,
    /// Messages per second per publisher; `None`: as fast as the window allows.
    pub(crate) rate: Option<u32>,
    /// Keep each delivery's latency.
    pub(crate) record_latency: bool,
    /// Each message on a topic of its own (`bench/{tag}/{n}`, the subscriber takes
    /// `bench/{tag}/+`), as from many devices: nothing for a node to send together.
    pub(crate) topic_per_message: bool,
    /// Unique per run: topic and client ids, so nothing of an earlier run interferes.
    pub(crate) tag: String,
}

/// An endpoint for a TCP address (the WebSocket URL is unused here).
fn endpoint(addr: SocketAddr) -> Endpoint {
    Endpoint {
        tcp: addr,
        ws_url: String::new(),
    }
}

/// Runs `flow` from publishers on `a` to one subscriber on `b`.
pub(crate) async fn run(
    a: SocketAddr,
    b: SocketAddr,
    flow: &CrossFlow,
    params: &Params,
) -> Result<FlowResult> {
    let base = Instant::now();
    let topic = format!("bench/{}", flow.tag);
    let options = client_options(params, format!("{}-sub", flow.tag), None);
    let (mut reader, mut writer) = client::connect(&endpoint(b), Transport::Tcp, &options)
        .await
        .context("the subscriber cannot connect to node B")?;
    let (filter, probe_topic) = match flow.topic_per_message {
        true => (format!("{topic}/+"), format!("{topic}/probe")),
        false => (topic.clone(), topic.clone()),
    };
    client::subscribe(&mut reader, &mut writer, &filter, flow.qos).await?;
    let mut publishers = Vec::with_capacity(flow.publishers);
    for i in 0..flow.publishers {
        let options = client_options(params, format!("{}-pub-{i}", flow.tag), None);
        let connection = client::connect(&endpoint(a), Transport::Tcp, &options)
            .await
            .with_context(|| format!("publisher {i} cannot connect to node A"))?;
        publishers.push(connection);
    }
    let probe = publishers.first_mut().context("a flow needs a publisher")?;
    warm_up(&probe_topic, &mut probe.1, &mut reader).await?;

    let deadline = tokio::time::Instant::now() + params.timeout;
    let done = Arc::new(AtomicUsize::new(0));
    let subscriber = SubscriberJob {
        expected: flow.messages * flow.publishers as u64,
        publishers: flow.publishers,
        publishers_done: Arc::clone(&done),
        deadline,
        idle: params.idle,
        record_latency: flow.record_latency,
        base,
    };
    let sub_task = tokio::spawn(subscriber.run(reader, writer));
    let mut pub_tasks = Vec::new();
    for (index, (reader, writer)) in publishers.into_iter().enumerate() {
        let job = PublisherJob {
            index: index as u32,
            messages: flow.messages,
            qos: flow.qos,
            topic: ByteString::from(topic.clone()),
            topic_per_message: flow.topic_per_message,
            topics: None,
            retain: false,
            payload: params.payload,
            window: params.window,
            rate: flow.rate,
            deadline,
            base,
        };
        let done = Arc::clone(&done);
        pub_tasks.push(tokio::spawn(async move {
            let out = job.run(reader, writer).await;
            done.fetch_add(1, Ordering::Release);
            out
        }));
    }
    collect(flow, pub_tasks, sub_task).await
}

type Joined<T> = tokio::task::JoinHandle<(T, PacketWriter)>;

/// Waits for every job and sums up what they saw; disconnects every client.
async fn collect(
    flow: &CrossFlow,
    pub_tasks: Vec<Joined<crate::jobs::PubStats>>,
    sub_task: Joined<crate::jobs::SubStats>,
) -> Result<FlowResult> {
    let mut result = FlowResult {
        expected: flow.messages * flow.publishers as u64,
        ..FlowResult::default()
    };
    let mut writers = Vec::new();
    for task in pub_tasks {
        let (stats, writer) = task.await.map_err(|e| anyhow!("publisher panicked: {e}"))?;
        result.sent += stats.sent;
        result.timed_out |= stats.timed_out;
        result.errors.extend(stats.error);
        writers.push(writer);
    }
    let (stats, writer) = sub_task
        .await
        .map_err(|e| anyhow!("subscriber panicked: {e}"))?;
    writers.push(writer);
    result.delivered = stats.count;
    result.out_of_order = stats.out_of_order;
    result.timed_out |= stats.timed_out;
    result.errors.extend(stats.error);
    result.latencies_ns = stats.latencies_ns;
    if let (Some(first), Some(last)) = (stats.first, stats.last) {
        result.span = last - first;
    }
    result.errors.truncate(3);
    for writer in writers {
        writer.disconnect().await;
    }
    Ok(result)
}

/// Publishes QoS 0 probes (an empty payload, which the subscriber job would not count as a
/// numbered message, but none is left for it) on `topic` until one reaches `reader`, then
/// drains the probes still on their way.
async fn warm_up(topic: &str, writer: &mut PacketWriter, reader: &mut PacketReader) -> Result<()> {
    let deadline = Instant::now() + WARM_UP;
    let probe = Packet::Publish(Publish::new(
        ByteString::from(topic.to_owned()),
        Bytes::new(),
    ));
    loop {
        writer.send(&probe).await?;
        let arrived = tokio::time::timeout(Duration::from_millis(100), reader.next()).await;
        match arrived {
            Ok(Ok(Packet::Publish(_))) => break,
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(e)) => return Err(e.context("the subscriber lost its connection")),
        }
        if Instant::now() > deadline {
            bail!("no probe from node A reached node B within {WARM_UP:?}");
        }
    }
    // Quiet for 300 ms: the probes sent meanwhile have arrived or are gone.
    let drain_until = Instant::now() + WARM_UP;
    while Instant::now() < drain_until {
        match tokio::time::timeout(Duration::from_millis(300), reader.next()).await {
            Ok(packet) => drop(packet?),
            Err(_) => break,
        }
    }
    Ok(())
}
