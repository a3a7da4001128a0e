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
use crate::jobs::{PubStats, PublisherJob, SubStats, SubscriberJob};
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
    /// QoS 1 messages to publish per round, each matching one subscription.
    pub(crate) messages: u64,
    /// Publishing rounds on the same subscriptions, each by a publisher of its own; the CPU
    /// per publish is their median.
    pub(crate) rounds: usize,
    /// Longest the setup may take.
    pub(crate) setup_timeout: Duration,
    /// A shell command to run between setup and publishing (`--growth-hook`).
    pub(crate) hook: Option<String>,
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
    /// Broker CPU during each publishing round, with the PUBLISHes the round sent.
    pub(crate) cpu: Vec<(Duration, u64)>,
    /// Why the point failed, or what qualifies it.
    pub(crate) error: Option<String>,
}

impl PointResult {
    /// Broker CPU per publication, in µs: the median of the rounds' CPU per PUBLISH sent.
    ///
    /// A burst of load from elsewhere on the machine moves one round's figure; the median of
    /// several does not move with one such burst. When messages were lost the rounds' figures
    /// do not hold (what was sent was not all routed), and the whole phase's CPU is divided by
    /// the deliveries instead, as it always was.
    pub(crate) fn cpu_per_publish(&self) -> Option<f64> {
        let total: Duration = self.cpu.iter().map(|(cpu, _)| *cpu).sum();
        if self.cpu.is_empty() || self.flow.delivered == 0 {
            return None;
        }
        if self.flow.lost() > 0 {
            return Some(total.as_secs_f64() * 1e6 / self.flow.delivered as f64);
        }
        let mut per: Vec<f64> = self
            .cpu
            .iter()
            .filter(|(_, sent)| *sent > 0)
            .map(|(cpu, sent)| cpu.as_secs_f64() * 1e6 / *sent as f64)
            .collect();
        crate::stats::median(&mut per)
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
    if let Some(hook) = &point.hook {
        if let Err(e) = run_hook(hook).await {
            result.error = Some(format!("{e:#}"));
            return result;
        }
    }
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

/// Runs `--growth-hook`'s command to its end: a profiler switched on between the phases
/// counts the publishing alone, and the setup runs at full speed.
async fn run_hook(command: &str) -> Result<()> {
    let mut child = std::process::Command::new("sh");
    child.arg("-c").arg(command);
    let status = tokio::task::spawn_blocking(move || child.status())
        .await
        .context("the growth hook panicked")?
        .with_context(|| format!("cannot run the growth hook `{command}`"))?;
    anyhow::ensure!(
        status.success(),
        "the growth hook `{command}` failed: {status}"
    );
    Ok(())
}

/// The messages' topics, in order (every round's, one after the other), and how many each
/// holding client is owed.
fn targets(point: &Point, clients: usize) -> (Vec<ByteString>, Vec<u64>) {
    let n = point.subscriptions.max(1) as u64;
    let mut owed = vec![0u64; clients];
    let total = point.messages * point.rounds.max(1) as u64;
    let topics = (0..total)
        .map(|s| {
            let k = (s.wrapping_mul(STRIDE) % n) as usize;
            owed[k % clients] += 1;
            ByteString::from(topic(k))
        })
        .collect();
    (topics, owed)
}

/// Publishes the point's messages, round after round, while the holders count them; returns
/// the flow and the broker CPU each round took.
///
/// Each round is a publisher of its own (its index in the payloads, so the holders check
/// each round's order apart). A round's CPU runs from the end of the one before to the last
/// PUBACK of its own, and the last round's to the last delivery: the windows follow one
/// another, so a delivery still on its way when a round ends is counted in the next.
async fn publish(
    endpoint: &Endpoint,
    point: &Point,
    held: Vec<(PacketReader, PacketWriter)>,
    params: &Params,
    broker: Option<&RunningBroker>,
) -> Result<(FlowResult, Vec<(Duration, u64)>)> {
    let rounds = point.rounds.max(1);
    let (topics, owed) = targets(point, held.len());
    let base = Instant::now();
    // Each round has the scenario timeout to itself, as the one round had: a broker slow
    // enough to need most of it is not cut off by the rounds added for the median.
    let deadline = tokio::time::Instant::now() + params.timeout * rounds as u32;
    let done = Arc::new(AtomicUsize::new(0));
    let sub_tasks: Vec<_> = held
        .into_iter()
        .zip(&owed)
        .map(|((reader, writer), expected)| {
            let job = SubscriberJob {
                expected: *expected,
                publishers: rounds,
                publishers_done: Arc::clone(&done),
                deadline,
                idle: params.idle,
                record_latency: false,
                base,
            };
            tokio::spawn(job.run(reader, writer))
        })
        .collect();
    let mut flow = FlowResult {
        expected: topics.len() as u64,
        ..FlowResult::default()
    };
    let cpu_time = || broker.and_then(|b| b.cpu_time().ok());
    let mut cpu = Vec::with_capacity(rounds);
    let mut before = cpu_time();
    let mut publishers = Vec::with_capacity(rounds);
    for (round, topics) in topics.chunks(point.messages.max(1) as usize).enumerate() {
        let round_deadline = (tokio::time::Instant::now() + params.timeout).min(deadline);
        let sent = publish_round(endpoint, round, topics, params, round_deadline, base).await;
        // However the round went, the holders are owed no more of its messages.
        done.fetch_add(1, Ordering::Release);
        let (stats, writer) = match sent {
            Ok(sent) => sent,
            Err(e) => {
                flow.errors.push(format!("{e:#}"));
                break;
            }
        };
        flow.sent += stats.sent;
        flow.timed_out |= stats.timed_out;
        flow.errors.extend(stats.error);
        publishers.push(writer);
        if round + 1 == rounds || flow.timed_out || !flow.errors.is_empty() {
            break;
        }
        let after = cpu_time();
        cpu.extend(
            before
                .zip(after)
                .map(|(b, a)| (a.saturating_sub(b), stats.sent)),
        );
        before = after;
    }
    // The rounds not run (one failed) owe the holders nothing either.
    done.store(rounds, Ordering::Release);
    let mut writers = publishers;
    writers.extend(count_deliveries(sub_tasks, &mut flow).await?);
    // The last round (or the one that failed) ends with the last delivery.
    let counted: u64 = cpu.iter().map(|(_, sent)| sent).sum();
    let last_sent = flow.sent - counted;
    cpu.extend(
        before
            .zip(cpu_time())
            .map(|(b, a)| (a.saturating_sub(b), last_sent)),
    );
    flow.errors.truncate(3);
    for writer in writers {
        writer.disconnect().await;
    }
    Ok((flow, cpu))
}

/// Waits for the holders; adds what they received to `flow`, with the span from the first
/// delivery to the last. Returns their writers, for a clean DISCONNECT.
async fn count_deliveries(
    holders: Vec<tokio::task::JoinHandle<(SubStats, PacketWriter)>>,
    flow: &mut FlowResult,
) -> Result<Vec<PacketWriter>> {
    let mut writers = Vec::with_capacity(holders.len());
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    for task in holders {
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
    flow.span = last.zip(first).map(|(l, f)| l - f).unwrap_or_default();
    Ok(writers)
}

/// One round: a publisher of its own sends `topics`' messages and waits for every PUBACK.
async fn publish_round(
    endpoint: &Endpoint,
    round: usize,
    topics: &[ByteString],
    params: &Params,
    deadline: tokio::time::Instant,
    base: Instant,
) -> Result<(PubStats, PacketWriter)> {
    let options = client_options(params, format!("growth-publisher-{round}"), None);
    let (reader, writer) = client::connect(endpoint, Transport::Tcp, &options)
        .await
        .context("publisher cannot connect")?;
    let job = PublisherJob {
        index: round as u32,
        messages: topics.len() as u64,
        qos: QoS::AtLeastOnce,
        topic: ByteString::from_static("dev"),
        topic_per_message: false,
        topics: Some(topics.into()),
        retain: false,
        payload: params.payload,
        window: params.window,
        rate: None,
        deadline,
        base,
    };
    Ok(job.run(reader, writer).await)
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
            messages: 1_000,
            rounds: 2,
            setup_timeout: Duration::from_secs(1),
            hook: None,
        };
        let (topics, owed) = targets(&point, 4);
        assert_eq!(topics.len(), 2_000);
        assert_eq!(owed.iter().sum::<u64>(), 2_000);
        assert!(owed.iter().all(|&n| n == 500), "{owed:?}");
        let distinct: std::collections::HashSet<&ByteString> = topics.iter().collect();
        assert_eq!(distinct.len(), 1_000);
    }

    #[test]
    fn cpu_per_publish_is_the_median_round_or_the_whole_phase_after_a_loss() {
        let ms = Duration::from_millis;
        let mut result = PointResult {
            flow: FlowResult {
                expected: 3_000,
                delivered: 3_000,
                sent: 3_000,
                ..FlowResult::default()
            },
            cpu: vec![(ms(10), 1_000), (ms(40), 1_000), (ms(20), 1_000)],
            ..PointResult::default()
        };
        let near = |got: Option<f64>, want: f64| got.is_some_and(|v| (v - want).abs() < 1e-9);
        // 10, 40 and 20 µs per publish: a burst of load in one round moves only that round.
        assert!(near(result.cpu_per_publish(), 20.0));
        // Lost messages were sent but not all routed: 70 ms over the 2,000 delivered.
        result.flow.delivered = 2_000;
        assert!(near(result.cpu_per_publish(), 35.0));
        result.cpu.clear();
        assert_eq!(result.cpu_per_publish(), None);
    }

    #[tokio::test]
    async fn a_hook_that_fails_fails_the_run() {
        assert!(run_hook("true").await.is_ok());
        let failed = run_hook("exit 3").await.unwrap_err();
        assert!(
            format!("{failed:#}").contains("`exit 3` failed"),
            "{failed:#}"
        );
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
                messages: 1_000,
                rounds: 2,
                setup_timeout: Duration::from_secs(30),
                hook: None,
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
