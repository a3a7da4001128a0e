//! The load itself: message flows (point-to-point, fan-out, fan-in, across transports, at a
//! fixed rate for latency) and idle connections (memory per connection, connections held).
//!
//! Every loop is bounded twice: by a message or connection count, and by a deadline after
//! which the scenario stops where it is and reports itself as timed out, so a broker that
//! stalls or drops messages cannot hang the benchmark.
//!
//! The publisher and subscriber loops themselves are in [`crate::jobs`].

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use aviary_protocol::{ByteString, Packet, ProtocolVersion, QoS};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::timeout_at;

use crate::broker::RunningBroker;
use crate::client::{self, ClientOptions, Endpoint, PacketReader, PacketWriter, Transport};
use crate::jobs::{PublisherJob, SubscriberJob};

/// Settings every scenario shares.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    /// MQTT version of every client.
    pub(crate) version: ProtocolVersion,
    /// Payload size in bytes, at least [`crate::jobs::PAYLOAD_HEADER`].
    pub(crate) payload: usize,
    /// Unacknowledged QoS 1 PUBLISH packets a publisher keeps in flight.
    pub(crate) window: u16,
    /// Receive Maximum our MQTT 5 subscribers announce (the broker's in-flight window).
    pub(crate) receive_maximum: u16,
    /// Longest a scenario may run before it is stopped and reported as timed out.
    pub(crate) timeout: Duration,
    /// After the publishers finish, how long subscribers wait without receiving anything
    /// before they count the rest as lost.
    pub(crate) idle: Duration,
    /// Connections opened at the same time in the idle-connection scenarios.
    pub(crate) connect_concurrency: usize,
    /// Keep alive of every client, in seconds (see [`crate::broker::KEEP_ALIVE`]).
    pub(crate) keep_alive: u16,
}

impl Params {
    /// These settings as the comparison's scenarios run them against a broker: with the keep
    /// alive armed ([`crate::broker::KEEP_ALIVE`]).
    pub(crate) fn for_brokers(&self) -> Self {
        Self {
            keep_alive: crate::broker::KEEP_ALIVE,
            ..self.clone()
        }
    }
}

/// A message flow: publishers, subscribers, how many messages, over what.
#[derive(Debug, Clone)]
pub(crate) struct FlowSpec {
    /// Publishing clients.
    pub(crate) publishers: usize,
    /// Subscribing clients.
    pub(crate) subscribers: usize,
    /// Messages each publisher sends.
    pub(crate) messages_per_publisher: u64,
    /// QoS of the publications and the subscriptions.
    pub(crate) qos: QoS,
    /// Transport of the publishers.
    pub(crate) pub_transport: Transport,
    /// Transport of the subscribers.
    pub(crate) sub_transport: Transport,
    /// Publisher `i` publishes to `bench/i` and subscribers subscribe to `bench/+` (fan-in);
    /// otherwise everyone uses the one topic `bench/flow`.
    pub(crate) per_publisher_topics: bool,
    /// Messages per second each publisher sends; `None` sends as fast as the window allows.
    pub(crate) rate: Option<u32>,
    /// Keep every message's latency (for the fixed-rate scenario).
    pub(crate) record_latency: bool,
    /// Subscribers keep a persistent session (clean session off, or a session expiry), so a
    /// broker with a store writes each message before it acknowledges it.
    pub(crate) persistent_subscribers: bool,
}

impl FlowSpec {
    /// Publishers into subscribers on one topic over TCP, as fast as the window allows: the
    /// shape most scenarios start from.
    pub(crate) fn tcp(publishers: usize, subscribers: usize, messages: u64, qos: QoS) -> Self {
        Self {
            publishers,
            subscribers,
            messages_per_publisher: messages,
            qos,
            pub_transport: Transport::Tcp,
            sub_transport: Transport::Tcp,
            per_publisher_topics: false,
            rate: None,
            record_latency: false,
            persistent_subscribers: false,
        }
    }

    /// Deliveries the subscribers should see in total.
    pub(crate) fn expected(&self) -> u64 {
        self.messages_per_publisher * self.publishers as u64 * self.subscribers as u64
    }
}

/// What a flow achieved.
#[derive(Debug, Clone, Default)]
pub(crate) struct FlowResult {
    /// Deliveries expected in total.
    pub(crate) expected: u64,
    /// Deliveries received in total.
    pub(crate) delivered: u64,
    /// PUBLISH packets the publishers sent.
    pub(crate) sent: u64,
    /// From the first delivery to the last, over all subscribers.
    pub(crate) span: Duration,
    /// The deadline stopped the flow.
    pub(crate) timed_out: bool,
    /// Deliveries whose sequence number was not above the previous one from that publisher
    /// (reordered or duplicated).
    pub(crate) out_of_order: u64,
    /// Deliveries of a QoS 1 flow that arrived at QoS 0: a broker that downgrades does less
    /// work (no PUBACK, nothing kept in flight), so its throughput is not comparable.
    pub(crate) downgraded: u64,
    /// Latency of every delivery, in nanoseconds (only when the spec asks for it).
    pub(crate) latencies_ns: Vec<u64>,
    /// Errors clients met (a connection closed by the broker, ...), first few only.
    pub(crate) errors: Vec<String>,
    /// The broker's CPU time (user + system) over the message flow alone, from when every
    /// client was connected and subscribed to the last delivery: only when the flow was
    /// given the broker's process ([`run_flow_metered`]).
    pub(crate) broker_cpu: Option<Duration>,
}

impl FlowResult {
    /// Deliveries per second, first to last delivery.
    pub(crate) fn rate(&self) -> Option<f64> {
        let secs = self.span.as_secs_f64();
        (self.delivered > 1 && secs > 0.0).then(|| self.delivered as f64 / secs)
    }

    /// Deliveries missing.
    pub(crate) fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.delivered)
    }
}

/// Runs a message flow against `endpoint`.
pub(crate) async fn run_flow(
    endpoint: &Endpoint,
    spec: &FlowSpec,
    params: &Params,
) -> Result<FlowResult> {
    run_flow_metered(endpoint, spec, params, None).await
}

/// [`run_flow`], reading the CPU clock of the broker's process `broker_pid` when the last
/// client is connected and subscribed and again after the last delivery. Per message, the
/// cost of setting up the connections one after the other would otherwise count too: in a
/// fan-in of 100,000 messages, its 51 connections cost Aviary about 4 ms of CPU, nearly a
/// tenth of the run.
pub(crate) async fn run_flow_metered(
    endpoint: &Endpoint,
    spec: &FlowSpec,
    params: &Params,
    broker_pid: Option<u32>,
) -> Result<FlowResult> {
    let cpu = || broker_pid.and_then(|pid| crate::broker::process_cpu(pid).ok());
    // The one clock: timestamps in payloads are nanoseconds since `base`.
    let base = Instant::now();
    let filter = if spec.per_publisher_topics {
        "bench/+"
    } else {
        "bench/flow"
    };
    let mut subscribers = Vec::with_capacity(spec.subscribers);
    for i in 0..spec.subscribers {
        let mut options = client_options(params, format!("bench-sub-{i}"), None);
        options.persistent = spec.persistent_subscribers;
        let (mut reader, mut writer) = client::connect(endpoint, spec.sub_transport, &options)
            .await
            .with_context(|| format!("subscriber {i} cannot connect"))?;
        client::subscribe(&mut reader, &mut writer, filter, spec.qos)
            .await
            .with_context(|| format!("subscriber {i} cannot subscribe"))?;
        subscribers.push((reader, writer));
    }
    let mut publishers = Vec::with_capacity(spec.publishers);
    for i in 0..spec.publishers {
        let options = client_options(params, format!("bench-pub-{i}"), None);
        let connection = client::connect(endpoint, spec.pub_transport, &options)
            .await
            .with_context(|| format!("publisher {i} cannot connect"))?;
        publishers.push(connection);
    }

    let cpu_before = cpu();
    let deadline = tokio::time::Instant::now() + params.timeout;
    let publishers_done = Arc::new(AtomicUsize::new(0));
    let expected_per_subscriber = spec.messages_per_publisher * spec.publishers as u64;
    let mut sub_tasks = Vec::with_capacity(spec.subscribers);
    for (reader, writer) in subscribers {
        let job = SubscriberJob {
            expected: expected_per_subscriber,
            publishers: spec.publishers,
            publishers_done: Arc::clone(&publishers_done),
            deadline,
            idle: params.idle,
            record_latency: spec.record_latency,
            base,
        };
        sub_tasks.push(tokio::spawn(job.run(reader, writer)));
    }
    let mut pub_tasks = Vec::with_capacity(spec.publishers);
    for (index, (reader, writer)) in publishers.into_iter().enumerate() {
        let job = PublisherJob {
            index: index as u32,
            messages: spec.messages_per_publisher,
            qos: spec.qos,
            topic: if spec.per_publisher_topics {
                format!("bench/{index}").into()
            } else {
                ByteString::from_static("bench/flow")
            },
            topic_per_message: false,
            topics: None,
            retain: false,
            payload: params.payload,
            window: params.window,
            rate: spec.rate,
            deadline,
            base,
        };
        let done = Arc::clone(&publishers_done);
        pub_tasks.push(tokio::spawn(async move {
            let (stats, writer) = job.run(reader, writer).await;
            done.fetch_add(1, Ordering::Release);
            (stats, writer)
        }));
    }

    let mut result = FlowResult {
        expected: spec.expected(),
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
    let mut first: Option<Instant> = None;
    let mut last: Option<Instant> = None;
    for task in sub_tasks {
        let (stats, writer) = task
            .await
            .map_err(|e| anyhow!("subscriber panicked: {e}"))?;
        result.delivered += stats.count;
        result.out_of_order += stats.out_of_order;
        if spec.qos != QoS::AtMostOnce {
            result.downgraded += stats.at_qos0;
        }
        result.timed_out |= stats.timed_out;
        result.errors.extend(stats.error);
        result.latencies_ns.extend(stats.latencies_ns);
        first = match (first, stats.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        last = last.max(stats.last);
        writers.push(writer);
    }
    if let (Some(first), Some(last)) = (first, last) {
        result.span = last - first;
    }
    result.broker_cpu = cpu_before
        .zip(cpu())
        .map(|(before, after)| after.saturating_sub(before));
    result.errors.truncate(3);
    for writer in writers {
        writer.disconnect().await;
    }
    Ok(result)
}

/// Client options for one connection of this run: clean session, the run's keep alive.
pub(crate) fn client_options(
    params: &Params,
    client_id: String,
    bind: Option<IpAddr>,
) -> ClientOptions {
    ClientOptions {
        version: params.version,
        client_id,
        keep_alive: params.keep_alive,
        receive_maximum: params.receive_maximum,
        bind,
        small_buffers: false,
        persistent: false,
        recv_buffer: None,
    }
}

/// Idle connections that were opened, and how it went.
#[derive(Debug, Clone, Default)]
pub(crate) struct IdleResult {
    /// Connections attempted.
    pub(crate) attempted: usize,
    /// Connections that got a CONNACK.
    pub(crate) opened: usize,
    /// Of those, connections that still answered a PINGREQ at the end.
    pub(crate) alive: usize,
    /// Broker RSS before the first connection, in KiB.
    pub(crate) rss_before_kib: u64,
    /// Broker RSS with every connection open, in KiB.
    pub(crate) rss_after_kib: u64,
    /// Time to open them all.
    pub(crate) connect_time: Duration,
    /// The deadline stopped the opening.
    pub(crate) timed_out: bool,
    /// The first connection error, if any.
    pub(crate) first_error: Option<String>,
}

impl IdleResult {
    /// Broker memory per open connection, in KiB.
    pub(crate) fn kib_per_connection(&self) -> Option<f64> {
        (self.opened > 0)
            .then(|| (self.rss_after_kib as f64 - self.rss_before_kib as f64) / self.opened as f64)
    }
}

/// Opens up to `count` idle MQTT connections over `transport` (CONNECT with keep alive 0,
/// then nothing), measures the broker's RSS before and after, and checks with a PINGREQ that
/// they are still open. Used for both memory per connection and connections held.
pub(crate) async fn run_idle(
    broker: &RunningBroker,
    endpoint: &Endpoint,
    count: usize,
    transport: Transport,
    params: &Params,
) -> Result<IdleResult> {
    // Let the broker finish starting up (threads, allocator arenas) before the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before_kib = broker.rss_kib()?;
    // One source address has about 28,000 ephemeral ports, so beyond 20,000 connections
    // further ones come from 127.0.0.2, 127.0.0.3, ...
    let source = |i: usize| {
        (i >= 20_000).then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i / 20_000) as u8)))
    };
    let (mut connections, mut result) =
        open_idle(endpoint, 0..count, transport, params, &source).await;
    result.rss_before_kib = rss_before_kib;
    // Let the broker settle (deferred allocations, freed handshake buffers) before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    result.rss_after_kib = broker.rss_kib()?;
    result.alive = ping_all(&mut connections).await;
    drop(connections);
    Ok(result)
}

/// Opens the idle connections numbered `ids` (client ids `bench-idle-{i}`), connection `i`
/// from `source(i)` when that names an address, as many at once as the parameters allow.
/// Returns the open ones and the counts (RSS left for the caller to fill in).
pub(crate) async fn open_idle(
    endpoint: &Endpoint,
    ids: std::ops::Range<usize>,
    transport: Transport,
    params: &Params,
    source: &(dyn Fn(usize) -> Option<IpAddr> + Sync),
) -> (Vec<(PacketReader, PacketWriter)>, IdleResult) {
    let mut result = IdleResult {
        attempted: ids.len(),
        ..IdleResult::default()
    };
    let deadline = tokio::time::Instant::now() + params.timeout;
    let limit = Arc::new(Semaphore::new(params.connect_concurrency.max(1)));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    let mut connections = Vec::with_capacity(ids.len());
    for i in ids {
        let permit = match timeout_at(deadline, Arc::clone(&limit).acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) | Err(_) => {
                result.timed_out = true;
                break;
            }
        };
        let mut options = client_options(params, format!("bench-idle-{i}"), source(i));
        options.small_buffers = true;
        let endpoint = endpoint.clone();
        tasks.spawn(async move {
            let connection = client::connect(&endpoint, transport, &options).await;
            drop(permit);
            connection
        });
        // Collect finished connections as we go, so errors surface early.
        while let Some(done) = tasks.try_join_next() {
            collect(done, &mut connections, &mut result);
        }
    }
    while let Some(done) = tasks.join_next().await {
        collect(done, &mut connections, &mut result);
    }
    result.connect_time = started.elapsed();
    result.opened = connections.len();
    (connections, result)
}

/// Keeps an opened connection or records why it failed.
fn collect(
    done: std::result::Result<Result<(PacketReader, PacketWriter)>, tokio::task::JoinError>,
    connections: &mut Vec<(PacketReader, PacketWriter)>,
    result: &mut IdleResult,
) {
    match done {
        Ok(Ok(connection)) => connections.push(connection),
        Ok(Err(e)) => {
            result.first_error.get_or_insert_with(|| format!("{e:#}"));
        }
        Err(e) => {
            result.first_error.get_or_insert_with(|| format!("{e}"));
        }
    }
}

/// Sends PINGREQ on every connection and counts the PINGRESPs that come back within ten
/// seconds in all.
pub(crate) async fn ping_all(connections: &mut [(PacketReader, PacketWriter)]) -> usize {
    for (_, writer) in connections.iter_mut() {
        let _ = writer.send(&Packet::PingReq).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut alive = 0;
    for (reader, _) in connections.iter_mut() {
        if let Ok(Ok(Packet::PingResp)) = timeout_at(deadline, reader.next()).await {
            alive += 1;
        }
    }
    alive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_deliveries_multiply_out() {
        let spec = FlowSpec {
            publishers: 50,
            subscribers: 1,
            messages_per_publisher: 1_000,
            qos: QoS::AtLeastOnce,
            pub_transport: Transport::Tcp,
            sub_transport: Transport::Tcp,
            per_publisher_topics: true,
            rate: None,
            record_latency: false,
            persistent_subscribers: false,
        };
        assert_eq!(spec.expected(), 50_000);
        let result = FlowResult {
            expected: 50_000,
            delivered: 49_000,
            span: Duration::from_secs(2),
            ..FlowResult::default()
        };
        assert_eq!(result.lost(), 1_000);
        assert_eq!(result.rate(), Some(24_500.0));
    }
}
