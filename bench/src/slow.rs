//! Slow consumer (issue 13): N subscribers on one topic, one of which stops reading (its TCP
//! connection stays open, its socket is never read); the others' throughput must stay within
//! 10 % of a baseline run without the slow one.
//!
//! The slow subscriber connects with a 4 KiB receive buffer, so it pushes back on the broker
//! after a few KiB instead of after the megabytes loopback autotuning would take in, and the
//! load is far more than both sockets' buffers can hold (1 KiB messages, as many as the
//! readers alone take in 2 s, at least 200,000, by default): what the broker does with the
//! backlog (queue it, bounded, or drop it) decides whether the others notice. The runs last
//! seconds, not a fraction of one, because the bar is about the readers' steady rate: in
//! the first tens of milliseconds the slow one is found slow and its queue fills, and a run
//! of 200,000 messages on a fast broker is half a second, whose rate moves by more than the
//! bar from one run to the next. The brokers queue at most `--slow-max-queued` messages per
//! client here (10,000, Aviary's default), as the design promises a slow subscriber a
//! bounded queue. In each round every broker in `--brokers` runs three flows, each in a
//! fresh process: the readers alone, all N reading, and the readers beside the slow one;
//! `--only slow-consumer`. A round during which the host moved the machine's cores is run
//! again (`rounds`, `crate::cores`).

use std::time::Duration;

use aviary_protocol::QoS;

use crate::broker::{BrokerKind, BrokerSpec};
use crate::client::{self, Endpoint, Transport};
use crate::points::{Column, Measure, PointTable};
use crate::report::format_value;
use crate::scenarios::{self, client_options, FlowResult, FlowSpec, Params};

mod rounds;
mod verdict;
use rounds::rounds;
use verdict::{aviary_miss, verdict, BAR};

/// The topic [`scenarios::run_flow`] publishes on when each publisher does not have its own.
const FLOW_TOPIC: &str = "bench/flow";

/// The slow subscriber's socket receive buffer, in bytes.
const SLOW_RECV_BUFFER: u32 = 4 * 1024;

/// Sizes of the slow-consumer scenario.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SlowArgs {
    /// Slow consumer: subscribers on the topic, one of which stops reading (at least 2).
    #[arg(long, default_value_t = 5)]
    pub(crate) slow_subscribers: usize,
    /// Slow consumer: messages the one publisher sends in a run, at least (see
    /// `--slow-seconds`).
    #[arg(long, default_value_t = 200_000)]
    pub(crate) slow_messages: u64,
    /// Slow consumer: each broker's runs send as many messages as its readers alone take in
    /// this many seconds, measured on a first run of `--slow-messages` (0: that many, always).
    #[arg(long, default_value_t = 2.0)]
    pub(crate) slow_seconds: f64,
    /// Slow consumer: payload size in bytes.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(16..=65536))]
    pub(crate) slow_payload: u32,
    /// Slow consumer: QoS levels to run, publications and subscriptions alike.
    #[arg(long, value_delimiter = ',', default_values_t = [0, 1],
          value_parser = clap::value_parser!(u8).range(0..=1))]
    pub(crate) slow_qos: Vec<u8>,
    /// Slow consumer: rounds at least, whatever `--repeat` says: the readers' rate moves by
    /// more than the 10 % bar from one round to the next on a busy 2-core machine (one
    /// build's rounds spread over 78-99 %), so the median of 3 fell on either side of it.
    #[arg(long, default_value_t = 5)]
    pub(crate) slow_repeat: usize,
    /// Slow consumer: messages each broker may queue per client in this scenario, both
    /// alike (Aviary's default; the design promises a slow subscriber a bounded queue).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) slow_max_queued: usize,
}

impl SlowArgs {
    /// Subscribers on the topic, the slow one among them: at least 2.
    fn subscribers(&self) -> usize {
        self.slow_subscribers.max(2)
    }

    /// Whether each broker's runs are sized on a first run to last `--slow-seconds` (not for
    /// 0, as `--quick` sets, or anything but a positive number).
    fn sizes_runs(&self) -> bool {
        self.slow_seconds > 0.0
    }

    /// The report's sentence on how many messages a run sends, and why.
    fn sizing_text(&self) -> String {
        let least = format_value(Some(self.slow_messages as f64), 0);
        if !self.sizes_runs() {
            return format!("Each run sends {least} messages.");
        }
        format!(
            "Each broker's runs send as many messages as its readers alone took in {} s on a \
             first run of {least} (and at least that many): the bar is about the readers' \
             steady rate, and in a run of a fraction of a second the slow one's start (found \
             slow, its queue filling) weighs as much as the bar, and the machine's noise more.",
            self.slow_seconds
        )
    }
}

/// The flow of the readers: one publisher, `readers` subscribers reading as fast as they can.
fn spec(readers: usize, messages: u64, qos: QoS) -> FlowSpec {
    FlowSpec::tcp(1, readers, messages, qos)
}

/// Runs the readers' flow against `endpoint`, with a subscriber that never reads beside
/// them when `with_slow`; what the readers received, and with `broker_pid` the broker's CPU
/// over the flow (every client connected and subscribed, the slow one too, to the last
/// delivery), as the throughput scenarios count it.
pub(crate) async fn run_point(
    endpoint: &Endpoint,
    readers: usize,
    messages: u64,
    qos: QoS,
    with_slow: bool,
    params: &Params,
    broker_pid: Option<u32>,
) -> anyhow::Result<FlowResult> {
    let slow = if with_slow {
        let mut options = client_options(params, "bench-slow".to_owned(), None);
        options.recv_buffer = Some(SLOW_RECV_BUFFER);
        let (mut reader, mut writer) = client::connect(endpoint, Transport::Tcp, &options).await?;
        client::subscribe(&mut reader, &mut writer, FLOW_TOPIC, qos).await?;
        // Held, never read, until the readers are done.
        Some((reader, writer))
    } else {
        None
    };
    let spec = spec(readers, messages, qos);
    let flow = scenarios::run_flow_metered(endpoint, &spec, params, broker_pid).await;
    drop(slow);
    flow
}

/// What one run of a variant gave.
#[derive(Debug)]
struct Outcome {
    /// What the readers received.
    flow: FlowResult,
    /// The broker's RSS at the end, in KiB.
    rss: Option<u64>,
    /// The broker's CPU time (user + system) during the flow.
    cpu: Option<Duration>,
}

/// One flow's outcome, or why there is nothing.
type Run = Result<Outcome, String>;

/// The readers' flow of a run that finished.
fn flow_of(run: &Run) -> Option<&FlowResult> {
    run.as_ref().ok().map(|o| &o.flow)
}

/// The three runs of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// The N - 1 readers alone: the baseline the bar is measured against.
    Alone,
    /// All N subscribers reading: the broker does the same work per message as with a slow
    /// one (a delivery or a queue entry per subscriber), so this baseline tells the cost of
    /// that work from any harm the slow one does.
    AllReading,
    /// The N - 1 readers beside one subscriber that never reads.
    WithSlow,
}

impl Variant {
    /// Subscribers that read, of `n`.
    fn readers(self, n: usize) -> usize {
        match self {
            Self::AllReading => n,
            Self::Alone | Self::WithSlow => n - 1,
        }
    }

    /// Deliveries per second per reading subscriber, so runs with N - 1 and N readers
    /// compare; none for a run that failed or delivered nothing.
    fn rate_per_reader(self, n: usize, run: &Run) -> Option<f64> {
        Some(flow_of(run)?.rate()? / self.readers(n) as f64)
    }

    /// For the notes.
    fn name(self) -> &'static str {
        match self {
            Self::Alone => "readers alone",
            Self::AllReading => "all reading",
            Self::WithSlow => "with a slow one",
        }
    }
}

/// The table's metric columns, in [`measure`]'s order.
const COLUMNS: [Column; 9] = [
    Column::up("per reader, N-1 alone, msg/s", 0),
    Column::up("per reader, all N reading, msg/s", 0),
    Column::up("per reader, with a slow one, msg/s", 0),
    Column::up("with a slow one / N-1 alone, %", 1),
    Column::up("with a slow one / all N reading, %", 1),
    Column::down("broker CPU per message published, N-1 alone, µs", 2),
    Column::down("broker CPU per message published, with a slow one, µs", 2),
    Column::down("readers' loss, with a slow one", 0),
    Column::down("broker RSS after the slow run, MiB", 1),
];

/// One round's three runs (in [`Variant`]'s order) as table values; `moved` says where the
/// cores were when the host moved them during the round.
fn measure(n: usize, runs: &[(Variant, Run); 3], moved: Option<&str>) -> Measure {
    let [alone, all, slow] = runs
        .each_ref()
        .map(|(variant, run)| variant.rate_per_reader(n, run));
    let percent = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b * 100.0);
    let mut notes = Vec::new();
    if let Some(cores) = moved {
        notes.push(format!(
            "the host moved the cores during the round ({cores})"
        ));
    }
    for (variant, run) in runs {
        match run {
            Err(e) => notes.push(format!("{}: {e}", variant.name())),
            Ok(Outcome { flow, .. }) => {
                if flow.timed_out {
                    notes.push(format!("{}: timed out", variant.name()));
                }
                if let Some(e) = flow.errors.first() {
                    notes.push(format!("{}: {e}", variant.name()));
                }
                // The slow run's loss has its column; a baseline's, when any, is said here.
                if flow.lost() > 0 && *variant != Variant::WithSlow {
                    notes.push(format!("{}: {} lost", variant.name(), flow.lost()));
                }
            }
        }
    }
    let lost = flow_of(&runs[2].1).map(|f| f.lost() as f64);
    let rss = runs[2].1.as_ref().ok().and_then(|o| o.rss);
    let cpu_per_message = |run: &Run| {
        let o = run.as_ref().ok()?;
        let cpu = o.cpu?;
        (o.flow.sent > 0).then(|| cpu.as_secs_f64() * 1e6 / o.flow.sent as f64)
    };
    Measure {
        values: vec![
            alone,
            all,
            slow,
            percent(slow, alone),
            percent(slow, all),
            cpu_per_message(&runs[0].1),
            cpu_per_message(&runs[2].1),
            lost,
            rss.map(|kib| kib as f64 / 1024.0),
        ],
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    }
}

/// Runs every QoS level on every broker, `repeat` rounds; returns the report section.
pub(crate) async fn run(
    args: &SlowArgs,
    specs: &[BrokerSpec],
    params: &Params,
    repeat: usize,
) -> String {
    let params = Params {
        payload: args.slow_payload as usize,
        ..params.clone()
    };
    // The other scenarios let brokers queue far more, so nothing is dropped there; here the
    // queue limit is what keeps the slow subscriber's backlog from costing the readers.
    let specs: Vec<BrokerSpec> = specs
        .iter()
        .map(|spec| BrokerSpec {
            max_queued: args.slow_max_queued.max(1),
            ..spec.clone()
        })
        .collect();
    let repeat = repeat.max(args.slow_repeat).max(1);
    let n = args.subscribers();
    let mut table = PointTable::new(&["QoS", "Broker"], &COLUMNS);
    let mut verdicts = Vec::new();
    let mut sizes = Vec::new();
    for &level in &args.slow_qos {
        let qos = if level == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        let brokers = rounds(&specs, args, &params, qos, repeat).await;
        let sized = specs.iter().zip(&brokers).map(|(spec, done)| {
            format!(
                "{} {}",
                spec.kind,
                format_value(Some(done.messages as f64), 0)
            )
        });
        sizes.push(format!(
            "QoS {level}: {}",
            sized.collect::<Vec<_>>().join(", ")
        ));
        for (spec, done) in specs.iter().zip(brokers) {
            let medians = table.push(
                vec![level.to_string(), spec.kind.to_string()],
                &done.measures,
            );
            let rounds: Vec<f64> = done.ratios.iter().map(|r| r.percent).collect();
            verdicts.push(verdict(
                &spec.kind.to_string(),
                level,
                medians[3],
                &done.ratios,
                done.again,
            ));
            if spec.kind == BrokerKind::Aviary && medians[3].is_some_and(|r| r < BAR) {
                verdicts.push(aviary_miss(&medians, &rounds, n));
            }
        }
    }
    format!(
        "## Slow consumer\n\nEach round, per broker, three runs on fresh brokers: one publisher \
         sends messages of {payload} B on one topic (a) to {readers} subscribers that \
         read as fast as they can, (b) to all {n} reading, (c) to the {readers} readers and one \
         more subscriber (4 KiB socket receive buffer) that subscribes first and then never \
         reads its socket, keeping the connection open. Throughput is per reading subscriber, \
         deliveries per second first to last delivery, with the readers' loss beside it. The \
         bar: (c) ≥ 90 % of (a), the readers alone. (b) does the same work per message as (c) \
         (a delivery, or a queue entry, per subscriber), so (c) / (b) tells that work from any \
         harm the slow one does. The broker's CPU time per message published, beside the \
         rates, tells what the slow one costs the broker itself: on this shared 2-core machine \
         the readers' rate also moves with the load generator and the neighbours. It is \
         counted over the flow, from when every client is connected and subscribed to the \
         last delivery, as in the throughput table. Median of \
         {repeat} round(s), brokers alternating, the three runs in reverse order every other \
         round; the ratios \
         are medians of each round's own ratio (a round's runs are paired), so they need not \
         equal the ratio of the medians beside them. Before and after each run the bench \
         times a cache line's round trip between the machine's two cores \
         (`bench/src/cores.rs`): the host of this virtual machine moves its cores between \
         places about 55 and 320 ns apart, which moves every broker's CPU per message by up to \
         2×, so a round whose round trips differ by more than 2× is run again (per broker \
         and QoS, at most as many times as there are rounds), and each round's ratio is \
         listed with its round trips. Both brokers may queue {queued} messages \
         per client here (`--slow-max-queued`; the rest of the report lets them queue \
         `--max-queued`), so beyond that the slow one's messages are dropped, as a broker \
         with a bounded queue does. {sizing}\n\n{}\n{}\n- Messages per run: {}.\n",
        table.to_markdown(),
        verdicts.join("\n"),
        sizes.join("; "),
        readers = n - 1,
        sizing = args.sizing_text(),
        payload = args.slow_payload,
        queued = format_value(Some(args.slow_max_queued.max(1) as f64), 0),
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::testkit::{smoke_params, TestBroker};

    #[test]
    fn the_report_says_how_runs_are_sized() {
        let sized = crate::cli::Cli::parse_from(["aviary-bench"]).slow;
        assert!(sized.sizes_runs());
        let text = sized.sizing_text();
        assert!(
            text.contains("took in 2 s on a first run of 200,000"),
            "{text}"
        );
        let fixed = crate::cli::Cli::parse_from(["aviary-bench", "--slow-seconds", "0"]).slow;
        assert!(!fixed.sizes_runs());
        assert_eq!(fixed.sizing_text(), "Each run sends 200,000 messages.");
    }

    #[test]
    fn rates_compare_per_reader() {
        let flow = |delivered: u64, expected: u64| FlowResult {
            expected,
            delivered,
            sent: 100,
            span: Duration::from_secs(1),
            ..FlowResult::default()
        };
        let outcome = |flow, rss, cpu_ms| {
            Ok(Outcome {
                flow,
                rss,
                cpu: Some(Duration::from_millis(cpu_ms)),
            })
        };
        let runs = [
            (Variant::Alone, outcome(flow(400, 400), None, 30)),
            (Variant::AllReading, outcome(flow(400, 500), None, 40)),
            (Variant::WithSlow, outcome(flow(360, 400), Some(2048), 33)),
        ];
        let measure = measure(5, &runs, None);
        let v = &measure.values;
        assert_eq!(&v[..3], [Some(100.0), Some(80.0), Some(90.0)]);
        assert_eq!(v[3], Some(90.0));
        assert_eq!(v[4], Some(112.5));
        // 100 messages published (each run's `sent`): 30 ms and 33 ms of CPU.
        assert_eq!(v[5], Some(300.0));
        assert_eq!(v[6], Some(330.0));
        assert_eq!(v[7], Some(40.0));
        assert_eq!(v[8], Some(2.0));
        assert_eq!(measure.note.as_deref(), Some("all reading: 100 lost"));
    }

    /// Three subscribers, one of them never reading: the two readers get every message,
    /// in order, none lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn smoke_readers_get_everything_beside_a_slow_one() {
        let broker = TestBroker::start().await;
        let params = smoke_params(1024);
        let flow = run_point(
            &broker.endpoint,
            2,
            5_000,
            QoS::AtLeastOnce,
            true,
            &params,
            None,
        )
        .await
        .unwrap();
        assert_eq!(flow.expected, 10_000);
        assert_eq!(flow.delivered, 10_000);
        assert_eq!(flow.lost(), 0);
        assert_eq!(flow.out_of_order, 0);
        assert!(flow.errors.is_empty(), "{:?}", flow.errors);
    }
}
