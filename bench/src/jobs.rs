//! The two loops every flow runs: a publisher that keeps a window of QoS 1 messages in flight
//! (or sends at a fixed rate), and a subscriber that counts, checks the order of and times
//! what it receives.
//!
//! Each payload carries the publisher's index, a sequence number and a send timestamp, so the
//! subscriber counts loss and reordering per publisher and measures latency without any clock
//! but this process's monotonic one. Both loops stop at a deadline, so a broker that stalls
//! cannot hang the benchmark.

use std::num::NonZeroU16;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use aviary_protocol::{Ack, ByteString, Packet, Publish, QoS};
use bytes::{BufMut as _, BytesMut};
use tokio::sync::Semaphore;
use tokio::time::timeout_at;

use crate::client::{PacketReader, PacketWriter};

/// Bytes at the start of every payload: publisher index (u32), sequence (u32), timestamp (u64).
pub(crate) const PAYLOAD_HEADER: usize = 16;

/// Most PUBLISH packets a publisher encodes into one write.
const BATCH: u64 = 64;

/// How often a waiting subscriber looks at the clock and at the publishers' progress.
pub(crate) const POLL: Duration = Duration::from_millis(250);

/// What one subscriber saw.
#[derive(Debug, Default)]
pub(crate) struct SubStats {
    /// PUBLISH packets received.
    pub(crate) count: u64,
    /// When the first arrived.
    pub(crate) first: Option<Instant>,
    /// When the last arrived.
    pub(crate) last: Option<Instant>,
    /// Deliveries whose sequence number was not above the previous one from that publisher.
    pub(crate) out_of_order: u64,
    /// Deliveries at QoS 0 (for a QoS 1 flow: downgraded by the broker, which then does less).
    pub(crate) at_qos0: u64,
    /// Latency of every delivery in nanoseconds, when the job records them.
    pub(crate) latencies_ns: Vec<u64>,
    /// The deadline stopped it.
    pub(crate) timed_out: bool,
    /// Why it stopped early, if it did.
    pub(crate) error: Option<String>,
}

/// What one publisher did.
#[derive(Debug, Default)]
pub(crate) struct PubStats {
    /// PUBLISH packets sent; at QoS 1, all acknowledged unless it timed out or failed.
    pub(crate) sent: u64,
    /// The deadline stopped it.
    pub(crate) timed_out: bool,
    /// Why it stopped early, if it did.
    pub(crate) error: Option<String>,
}

/// One subscriber's receive loop and what it needs to know.
#[derive(Debug)]
pub(crate) struct SubscriberJob {
    /// Deliveries to wait for.
    pub(crate) expected: u64,
    /// Publishers feeding it (payloads name one of `0..publishers`).
    pub(crate) publishers: usize,
    /// Publishers finished so far; once all are, `idle` without a delivery ends the wait.
    pub(crate) publishers_done: Arc<AtomicUsize>,
    /// When to give up.
    pub(crate) deadline: tokio::time::Instant,
    /// How long to wait for stragglers once the publishers are done.
    pub(crate) idle: Duration,
    /// Keep every delivery's latency.
    pub(crate) record_latency: bool,
    /// The clock the payloads' timestamps count from.
    pub(crate) base: Instant,
}

impl SubscriberJob {
    /// Receives until every expected message arrived, the deadline passed, or the publishers
    /// are done and nothing arrived for `idle`. Returns the writer for a clean DISCONNECT.
    pub(crate) async fn run(
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
        if publish.qos == QoS::AtMostOnce {
            stats.at_qos0 += 1;
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
pub(crate) struct PublisherJob {
    /// Its index, written into every payload.
    pub(crate) index: u32,
    /// Messages to send.
    pub(crate) messages: u64,
    /// Their QoS.
    pub(crate) qos: QoS,
    /// Where to publish them.
    pub(crate) topic: ByteString,
    /// Publish message `n` to `{topic}/{n}` instead, one topic per message (to fill a broker
    /// with retained messages).
    pub(crate) topic_per_message: bool,
    /// Publish message `n` to `topics[n % len]` instead of `topic`: traffic spread over
    /// many subscriptions (the routing-cost curve), `None` for the one topic.
    pub(crate) topics: Option<Arc<[ByteString]>>,
    /// Set the RETAIN flag.
    pub(crate) retain: bool,
    /// Payload size in bytes.
    pub(crate) payload: usize,
    /// QoS 1 messages kept unacknowledged at most.
    pub(crate) window: u16,
    /// Messages per second; `None` sends as fast as the window allows.
    pub(crate) rate: Option<u32>,
    /// When to give up.
    pub(crate) deadline: tokio::time::Instant,
    /// The clock the payloads' timestamps count from.
    pub(crate) base: Instant,
}

impl PublisherJob {
    /// Publishes every message (at the spec's rate, or as fast as the QoS 1 window allows),
    /// then waits for the outstanding PUBACKs. Returns the writer for a clean DISCONNECT.
    pub(crate) async fn run(
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
                let topic = match &self.topics {
                    Some(topics) if !topics.is_empty() => {
                        topics[(seq % topics.len() as u64) as usize].clone()
                    }
                    _ if self.topic_per_message => format!("{}/{seq}", self.topic).into(),
                    _ => self.topic.clone(),
                };
                let mut publish = Publish::new(topic, payloads.split().freeze());
                publish.qos = self.qos;
                publish.retain = self.retain;
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
