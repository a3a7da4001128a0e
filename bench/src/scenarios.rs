//! The load itself: message flows (point-to-point, fan-out, fan-in, across transports, at a
//! fixed rate for latency) and idle connections (memory per connection, connections held).
//!
//! Every loop is bounded twice: by a message or connection count, and by a deadline after
//! which the scenario stops where it is and reports itself as timed out, so a broker that
//! stalls or drops messages cannot hang the benchmark.
//!
//! Each payload carries the publisher's index, a sequence number and a send timestamp, so the
//! subscriber counts loss and reordering per publisher and measures latency without any clock
//! but this process's monotonic one.

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU16;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use aviary_protocol::{Ack, ByteString, Packet, ProtocolVersion, Publish, QoS};
use bytes::{BufMut as _, BytesMut};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::timeout_at;

use crate::broker::RunningBroker;
use crate::client::{self, ClientOptions, Endpoint, PacketReader, PacketWriter, Transport};

/// Bytes at the start of every payload: publisher index (u32), sequence (u32), timestamp (u64).
pub(crate) const PAYLOAD_HEADER: usize = 16;

/// Most PUBLISH packets a publisher encodes into one write.
const BATCH: u64 = 64;

/// How often a waiting subscriber looks at the clock and at the publishers' progress.
const POLL: Duration = Duration::from_millis(250);

/// Settings every scenario shares.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    /// MQTT version of every client.
    pub(crate) version: ProtocolVersion,
    /// Payload size in bytes, at least [`PAYLOAD_HEADER`].
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
}

impl FlowSpec {
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
    /// Latency of every delivery, in nanoseconds (only when the spec asks for it).
    pub(crate) latencies_ns: Vec<u64>,
    /// Errors clients met (a connection closed by the broker, ...), first few only.
    pub(crate) errors: Vec<String>,
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

/// What one subscriber saw.
#[derive(Debug, Default)]
struct SubStats {
    count: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    out_of_order: u64,
    latencies_ns: Vec<u64>,
    timed_out: bool,
    error: Option<String>,
}

/// What one publisher did.
#[derive(Debug, Default)]
struct PubStats {
    sent: u64,
    timed_out: bool,
    error: Option<String>,
}

/// Runs a message flow against `endpoint`.
pub(crate) async fn run_flow(
    endpoint: &Endpoint,
    spec: &FlowSpec,
    params: &Params,
) -> Result<FlowResult> {
    // The one clock: timestamps in payloads are nanoseconds since `base`.
    let base = Instant::now();
    let filter = if spec.per_publisher_topics {
        "bench/+"
    } else {
        "bench/flow"
    };
    let mut subscribers = Vec::with_capacity(spec.subscribers);
    for i in 0..spec.subscribers {
        let options = client_options(params, format!("bench-sub-{i}"), None);
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
    result.errors.truncate(3);
    for writer in writers {
        writer.disconnect().await;
    }
    Ok(result)
}

/// Client options for one connection of this run.
fn client_options(params: &Params, client_id: String, bind: Option<IpAddr>) -> ClientOptions {
    ClientOptions {
        version: params.version,
        client_id,
        keep_alive: 0,
        receive_maximum: params.receive_maximum,
        bind,
        small_buffers: false,
    }
}

/// One subscriber's receive loop and what it needs to know.
#[derive(Debug)]
struct SubscriberJob {
    expected: u64,
    publishers: usize,
    publishers_done: Arc<AtomicUsize>,
    deadline: tokio::time::Instant,
    idle: Duration,
    record_latency: bool,
    base: Instant,
}

impl SubscriberJob {
    /// Receives until every expected message arrived, the deadline passed, or the publishers
    /// are done and nothing arrived for `idle`. Returns the writer for a clean DISCONNECT.
    async fn run(
        self,
        mut reader: PacketReader,
        mut writer: PacketWriter,
    ) -> (SubStats, PacketWriter) {
        let mut stats = SubStats::default();
        if self.record_latency {
            stats.latencies_ns.reserve(self.expected as usize);
        }
        let mut last_seq: Vec<Option<u32>> = vec![None; self.publishers];
        let mut quiet_since = Instant::now();
        while stats.count < self.expected {
            let now = tokio::time::Instant::now();
            if now >= self.deadline {
                stats.timed_out = true;
                break;
            }
            let wait = (self.deadline - now).min(POLL);
            let packet = match tokio::time::timeout(wait, reader.next()).await {
                Ok(Ok(packet)) => packet,
                Ok(Err(e)) => {
                    stats.error = Some(format!("subscriber: {e:#}"));
                    break;
                }
                Err(_) => {
                    let all_done = self.publishers_done.load(Ordering::Acquire) == self.publishers;
                    if all_done && quiet_since.elapsed() >= self.idle {
                        break;
                    }
                    continue;
                }
            };
            // One clock read per network read: the packets of one read arrived together.
            let now = Instant::now();
            quiet_since = now;
            let mut next = Some(packet);
            while let Some(packet) = next {
                if let Err(e) = self.handle(packet, now, &mut stats, &mut last_seq, &mut writer) {
                    stats.error = Some(format!("subscriber: {e:#}"));
                    return (stats, writer);
                }
                next = match reader.try_next() {
                    Ok(packet) => packet,
                    Err(e) => {
                        stats.error = Some(format!("subscriber: {e:#}"));
                        return (stats, writer);
                    }
                };
            }
            // The PUBACKs of the whole read go out together.
            if let Err(e) = writer.flush().await {
                stats.error = Some(format!("subscriber: {e:#}"));
                break;
            }
        }
        (stats, writer)
    }

    /// Counts one packet; queues a PUBACK for a QoS 1 delivery.
    fn handle(
        &self,
        packet: Packet,
        now: Instant,
        stats: &mut SubStats,
        last_seq: &mut [Option<u32>],
        writer: &mut PacketWriter,
    ) -> Result<()> {
        let Packet::Publish(publish) = packet else {
            return Ok(());
        };
        if let Some(id) = publish.packet_id {
            writer.queue(&Packet::PubAck(Ack::new(id)))?;
        }
        stats.count += 1;
        stats.first.get_or_insert(now);
        stats.last = Some(now);
        if let Some((publisher, seq, sent_ns)) = read_header(&publish.payload) {
            if let Some(slot) = last_seq.get_mut(publisher as usize) {
                if slot.is_some_and(|previous| seq <= previous) {
                    stats.out_of_order += 1;
                }
                *slot = Some(seq);
            }
            if self.record_latency {
                let received_ns = now.duration_since(self.base).as_nanos() as u64;
                stats.latencies_ns.push(received_ns.saturating_sub(sent_ns));
            }
        }
        Ok(())
    }
}

/// One publisher's send loop and what it needs to know.
#[derive(Debug)]
struct PublisherJob {
    index: u32,
    messages: u64,
    qos: QoS,
    topic: ByteString,
    payload: usize,
    window: u16,
    rate: Option<u32>,
    deadline: tokio::time::Instant,
    base: Instant,
}

impl PublisherJob {
    /// Publishes every message (at the spec's rate, or as fast as the QoS 1 window allows),
    /// then waits for the outstanding PUBACKs. Returns the writer for a clean DISCONNECT.
    async fn run(
        self,
        mut reader: PacketReader,
        mut writer: PacketWriter,
    ) -> (PubStats, PacketWriter) {
        let mut stats = PubStats::default();
        // The window: one permit per PUBLISH that may be unacknowledged. The reader returns a
        // permit per PUBACK. For QoS 0 the reader only drains what the broker sends (a
        // WebSocket ping must be read to be answered).
        let window = Arc::new(Semaphore::new(usize::from(self.window)));
        let acked = Arc::new(AtomicU64::new(0));
        let ack_reader = {
            let window = Arc::clone(&window);
            let acked = Arc::clone(&acked);
            tokio::spawn(async move {
                loop {
                    match reader.next().await {
                        Ok(Packet::PubAck(_)) => {
                            acked.fetch_add(1, Ordering::Relaxed);
                            window.add_permits(1);
                        }
                        Ok(_) => {}
                        Err(e) => return Some(format!("publisher: {e:#}")),
                    }
                }
            })
        };
        if let Err(e) = self.send_all(&window, &mut writer, &mut stats).await {
            stats.error = Some(format!("publisher: {e:#}"));
        }
        if self.qos == QoS::AtLeastOnce && stats.error.is_none() {
            // Every permit back means every PUBLISH acknowledged.
            let all = u32::from(self.window);
            match timeout_at(self.deadline, window.acquire_many(all)).await {
                Ok(Ok(permits)) => permits.forget(),
                Ok(Err(_)) => {}
                Err(_) => stats.timed_out = true,
            }
        }
        ack_reader.abort();
        if let Ok(Some(error)) = ack_reader.await {
            stats.error.get_or_insert(error);
        }
        (stats, writer)
    }

    async fn send_all(
        &self,
        window: &Semaphore,
        writer: &mut PacketWriter,
        stats: &mut PubStats,
    ) -> Result<()> {
        let period = self
            .rate
            .map(|rate| Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
        let start = tokio::time::Instant::now();
        let mut payloads = BytesMut::new();
        let mut seq: u64 = 0;
        while seq < self.messages {
            let mut n = BATCH.min(self.messages - seq);
            if let Some(period) = period {
                // Message `seq` is due at start + seq * period. Sleep until the next one is
                // due, then send all that are (tokio's timer ticks in milliseconds, so at
                // 2,000 msg/s two go out per tick).
                let due_at = start + period.mul_f64(seq as f64);
                if tokio::time::Instant::now() < due_at {
                    if due_at >= self.deadline {
                        stats.timed_out = true;
                        return Ok(());
                    }
                    tokio::time::sleep_until(due_at).await;
                }
                let elapsed = start.elapsed().as_secs_f64();
                let due = (elapsed / period.as_secs_f64()) as u64 + 1;
                n = n.min(due.saturating_sub(seq).max(1));
            }
            if self.qos == QoS::AtLeastOnce {
                n = match take_permits(window, n, self.deadline).await {
                    Some(n) => n,
                    None => {
                        stats.timed_out = true;
                        return Ok(());
                    }
                };
            }
            let sent_ns = self.base.elapsed().as_nanos() as u64;
            payloads.reserve(n as usize * self.payload);
            for _ in 0..n {
                payloads.put_u32(self.index);
                payloads.put_u32(seq as u32);
                payloads.put_u64(sent_ns);
                payloads.put_bytes(0, self.payload.saturating_sub(PAYLOAD_HEADER));
                let mut publish = Publish::new(self.topic.clone(), payloads.split().freeze());
                publish.qos = self.qos;
                if self.qos != QoS::AtMostOnce {
                    // Ids cycle through 1..=65535; the window is far smaller, so an id is
                    // always free again by the time it comes round.
                    publish.packet_id = NonZeroU16::new((seq % 65_535) as u16 + 1);
                }
                writer.queue(&Packet::Publish(publish))?;
                seq += 1;
            }
            match timeout_at(self.deadline, writer.flush()).await {
                Ok(result) => result?,
                Err(_) => {
                    stats.timed_out = true;
                    return Ok(());
                }
            }
            stats.sent = seq;
            if tokio::time::Instant::now() >= self.deadline && seq < self.messages {
                stats.timed_out = true;
                return Ok(());
            }
        }
        Ok(())
    }
}

/// Waits for at least one window permit, then takes up to `want` that are free at once.
/// `None` when the deadline passes first.
async fn take_permits(
    window: &Semaphore,
    want: u64,
    deadline: tokio::time::Instant,
) -> Option<u64> {
    let first = timeout_at(deadline, window.acquire()).await.ok()?.ok()?;
    first.forget();
    let mut got = 1;
    while got < want {
        match window.try_acquire() {
            Ok(permit) => {
                permit.forget();
                got += 1;
            }
            Err(_) => break,
        }
    }
    Some(got)
}

/// The publisher index, sequence number and send time at the start of a payload.
pub(crate) fn read_header(payload: &[u8]) -> Option<(u32, u32, u64)> {
    let header = payload.get(..PAYLOAD_HEADER)?;
    let publisher = u32::from_be_bytes(header[0..4].try_into().ok()?);
    let seq = u32::from_be_bytes(header[4..8].try_into().ok()?);
    let sent_ns = u64::from_be_bytes(header[8..16].try_into().ok()?);
    Some((publisher, seq, sent_ns))
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
    let mut result = IdleResult {
        attempted: count,
        rss_before_kib: broker.rss_kib()?,
        ..IdleResult::default()
    };
    let deadline = tokio::time::Instant::now() + params.timeout;
    let limit = Arc::new(Semaphore::new(params.connect_concurrency.max(1)));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    let mut connections = Vec::with_capacity(count);
    for i in 0..count {
        let permit = match timeout_at(deadline, Arc::clone(&limit).acquire_owned()).await {
            Ok(permit) => permit?,
            Err(_) => {
                result.timed_out = true;
                break;
            }
        };
        // The first 20,000 connections let `connect` pick the source port: it may reuse a
        // port that an earlier run left in TIME_WAIT towards another broker port, which a
        // bind before connect may not. Beyond that the ~28,000 ephemeral ports of one source
        // address run short, so further connections come from 127.0.0.2, 127.0.0.3, ...
        let source =
            (i >= 20_000).then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i / 20_000) as u8)));
        let mut options = client_options(params, format!("bench-idle-{i}"), source);
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
    // Let the broker settle (deferred allocations, freed handshake buffers) before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    result.rss_after_kib = broker.rss_kib()?;
    result.alive = ping_all(&mut connections).await;
    drop(connections);
    Ok(result)
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
async fn ping_all(connections: &mut [(PacketReader, PacketWriter)]) -> usize {
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
    fn payload_header_round_trips() {
        let mut buf = BytesMut::new();
        buf.put_u32(7);
        buf.put_u32(42);
        buf.put_u64(123_456_789);
        buf.put_bytes(0, 48);
        assert_eq!(read_header(&buf), Some((7, 42, 123_456_789)));
        assert_eq!(read_header(&buf[..15]), None);
    }

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

    #[tokio::test]
    async fn waits_for_one_permit_then_takes_what_is_free() {
        let window = Semaphore::new(3);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        assert_eq!(take_permits(&window, 10, deadline).await, Some(3));
        let soon = tokio::time::Instant::now() + Duration::from_millis(20);
        assert_eq!(take_permits(&window, 10, soon).await, None);
        window.add_permits(2);
        assert_eq!(take_permits(&window, 1, deadline).await, Some(1));
    }
}
