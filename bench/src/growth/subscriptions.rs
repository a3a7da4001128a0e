//! One point of the routing-cost curve: a broker holding N subscriptions (exact, or with
//! wildcards), and a QoS 1 publisher whose every message matches exactly one of them.
//!
//! The messages go to subscriptions spread over the whole set (message `s` to subscription
//! `s * STRIDE mod N`), so a broker cannot win by caching the last match, and the same number
//! of clients holds the subscriptions at every point: only the subscription count changes
//! from point to point, not how deliveries spread over connections.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use aviary_protocol::{ByteString, QoS};

use super::hold::{hold, Holding};
use crate::broker::RunningBroker;
use crate::client::{self, Endpoint, PacketReader, PacketWriter, Transport};
use crate::jobs::{PublisherJob, SubscriberJob};
use crate::scenarios::{client_options, FlowResult, Params};

/// Spreads consecutive messages over the subscriptions; a prime, so it is coprime with the
/// powers of ten the curve uses and every subscription gets its turn.
const STRIDE: u64 = 7_919;

/// The shape of the filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Filters {
    /// `dev/{i}/temp`.
    Exact,
    /// `dev/{i}/+` and `dev/{i}/#`, alternating.
    Wildcard,
}

impl Filters {
    /// For the tables and charts.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Wildcard => "wildcard",
        }
    }

    /// The filter of subscription `i`; only [`topic`]`(i)` matches it.
    pub(crate) fn filter(self, i: usize) -> String {
        match self {
            Self::Exact => format!("dev/{i}/temp"),
            Self::Wildcard if i.is_multiple_of(2) => format!("dev/{i}/+"),
            Self::Wildcard => format!("dev/{i}/#"),
        }
    }
}

/// The topic that matches subscription `i` and no other.
pub(crate) fn topic(i: usize) -> String {
    format!("dev/{i}/temp")
}

/// One point: how many subscriptions of which shape, held how, and the load.
#[derive(Debug, Clone)]
pub(crate) struct Point {
    /// Subscriptions in all.
    pub(crate) subscriptions: usize,
    /// Their shape.
    pub(crate) filters: Filters,
    /// Clients holding them.
    pub(crate) clients: usize,
    /// Filters per SUBSCRIBE packet.
    pub(crate) per_packet: usize,
    /// QoS 1 messages to publish, each matching one subscription.
    pub(crate) messages: u64,
    /// Longest the setup may take.
    pub(crate) setup_timeout: Duration,
}

/// What one run of a point measured.
#[derive(Debug, Default)]
pub(crate) struct PointResult {
    /// Connecting the clients and getting every SUBACK.
    pub(crate) setup: Option<Duration>,
    /// Broker RSS once every subscription is held, in KiB.
    pub(crate) rss_after_setup_kib: Option<u64>,
    /// The publishing phase.
    pub(crate) flow: FlowResult,
    /// Broker CPU during the publishing phase.
    pub(crate) cpu: Option<Duration>,
    /// Why the point failed, or what qualifies it.
    pub(crate) error: Option<String>,
}

impl PointResult {
    /// Broker CPU per delivered publication, in µs.
    pub(crate) fn cpu_per_publish(&self) -> Option<f64> {
        let cpu = self.cpu?;
        (self.flow.delivered > 0).then(|| cpu.as_secs_f64() * 1e6 / self.flow.delivered as f64)
    }
}

/// Runs one point against `endpoint`; `broker`, when given, is read for CPU and memory.
pub(crate) async fn run_point(
    endpoint: &Endpoint,
    point: &Point,
    params: &Params,
    broker: Option<&RunningBroker>,
) -> PointResult {
    let mut result = PointResult::default();
    let filter = move |i: usize| point.filters.filter(i);
    let holding = Holding {
        subscriptions: point.subscriptions,
        clients: point.clients,
        per_packet: point.per_packet,
        filter: &filter,
    };
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + point.setup_timeout;
    let held = match hold(endpoint, &holding, params, deadline).await {
        Ok(held) => held,
        Err(e) => {
            result.error = Some(format!(
                "setup failed after {:.1} s: {e:#}",
                started.elapsed().as_secs_f64()
            ));
            return result;
        }
    };
    result.setup = Some(started.elapsed());
    result.rss_after_setup_kib = broker.and_then(|b| b.rss_kib().ok());
    match publish(endpoint, point, held, params, broker).await {
        Ok((flow, cpu)) => {
            if flow.timed_out {
                result.error = Some("publishing timed out".to_owned());
            }
            if let Some(first) = flow.errors.first() {
                result.error.get_or_insert_with(|| first.clone());
            }
            result.flow = flow;
            result.cpu = cpu;
        }
        Err(e) => result.error = Some(format!("{e:#}")),
    }
    result
}

/// The messages' topics, in order, and how many each holding client is owed.
fn targets(point: &Point, clients: usize) -> (Arc<[ByteString]>, Vec<u64>) {
    let n = point.subscriptions.max(1) as u64;
    let mut owed = vec![0u64; clients];
    let topics = (0..point.messages)
        .map(|s| {
            let k = (s.wrapping_mul(STRIDE) % n) as usize;
            owed[k % clients] += 1;
            ByteString::from(topic(k))
        })
        .collect();
    (topics, owed)
}

/// Publishes the point's messages while the holders count them; returns the flow and the
/// broker CPU the publishing phase took.
async fn publish(
    endpoint: &Endpoint,
    point: &Point,
    held: Vec<(PacketReader, PacketWriter)>,
    params: &Params,
    broker: Option<&RunningBroker>,
) -> Result<(FlowResult, Option<Duration>)> {
    let (topics, owed) = targets(point, held.len());
    let options = client_options(params, "growth-publisher".to_owned(), None);
    let (reader, writer) = client::connect(endpoint, Transport::Tcp, &options)
        .await
        .context("publisher cannot connect")?;
    let base = Instant::now();
    let deadline = tokio::time::Instant::now() + params.timeout;
    let done = Arc::new(AtomicUsize::new(0));
    let cpu_before = broker.and_then(|b| b.cpu_time().ok());
    let mut sub_tasks = Vec::with_capacity(held.len());
    for ((reader, writer), expected) in held.into_iter().zip(&owed) {
        let job = SubscriberJob {
            expected: *expected,
            publishers: 1,
            publishers_done: Arc::clone(&done),
            deadline,
            idle: params.idle,
            record_latency: false,
            base,
        };
        sub_tasks.push(tokio::spawn(job.run(reader, writer)));
    }
    let job = PublisherJob {
        index: 0,
        messages: point.messages,
        qos: QoS::AtLeastOnce,
        topic: ByteString::from_static("dev"),
        topic_per_message: false,
        topics: Some(topics),
        retain: false,
        payload: params.payload,
        window: params.window,
        rate: None,
        deadline,
        base,
    };
    let (stats, writer) = job.run(reader, writer).await;
    done.fetch_add(1, Ordering::Release);
    let mut flow = FlowResult {
        expected: point.messages,
        sent: stats.sent,
        timed_out: stats.timed_out,
        errors: stats.error.into_iter().collect(),
        ..FlowResult::default()
    };
    let mut writers = vec![writer];
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    for task in sub_tasks {
        let (stats, writer) = task.await.map_err(|e| anyhow!("holder panicked: {e}"))?;
        flow.delivered += stats.count;
        flow.out_of_order += stats.out_of_order;
        flow.timed_out |= stats.timed_out;
        flow.errors.extend(stats.error);
        first = match (first, stats.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        last = last.max(stats.last);
        writers.push(writer);
    }
    let cpu = cpu_before
        .zip(broker.and_then(|b| b.cpu_time().ok()))
        .map(|(before, after)| after.saturating_sub(before));
    flow.span = last.zip(first).map(|(l, f)| l - f).unwrap_or_default();
    flow.errors.truncate(3);
    for writer in writers {
        writer.disconnect().await;
    }
    Ok((flow, cpu))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::TestBroker;

    #[test]
    fn each_filter_matches_its_topic_only() {
        for filters in [Filters::Exact, Filters::Wildcard] {
            let names: Vec<String> = (0..3).map(|i| filters.filter(i)).collect();
            assert!(names[0].starts_with("dev/0/") && names[1].starts_with("dev/1/"));
        }
        assert_eq!(Filters::Wildcard.filter(4), "dev/4/+");
        assert_eq!(Filters::Wildcard.filter(5), "dev/5/#");
        assert_eq!(topic(5), "dev/5/temp");
    }

    #[test]
    fn messages_spread_over_every_holder() {
        let point = Point {
            subscriptions: 1_000,
            filters: Filters::Exact,
            clients: 4,
            per_packet: 100,
            messages: 2_000,
            setup_timeout: Duration::from_secs(1),
        };
        let (topics, owed) = targets(&point, 4);
        assert_eq!(topics.len(), 2_000);
        assert_eq!(owed.iter().sum::<u64>(), 2_000);
        assert!(owed.iter().all(|&n| n == 500), "{owed:?}");
        let distinct: std::collections::HashSet<&ByteString> = topics.iter().collect();
        assert_eq!(distinct.len(), 1_000);
    }

    /// A second's worth: 1,000 subscriptions of each shape over 4 clients, every message
    /// delivered once, none lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn smoke_every_message_reaches_its_one_subscription() {
        let broker = TestBroker::start().await;
        let params = crate::testkit::smoke_params(64);
        for filters in [Filters::Exact, Filters::Wildcard] {
            let point = Point {
                subscriptions: 1_000,
                filters,
                clients: 4,
                per_packet: 100,
                messages: 2_000,
                setup_timeout: Duration::from_secs(30),
            };
            let result = run_point(&broker.endpoint, &point, &params, None).await;
            assert_eq!(result.error, None, "{filters:?}");
            assert!(result.setup.is_some());
            assert_eq!(result.flow.delivered, 2_000, "{filters:?}");
            assert_eq!(result.flow.lost(), 0);
            assert_eq!(result.flow.out_of_order, 0);
        }
    }
}
