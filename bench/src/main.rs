//! `aviary-bench`: runs the same MQTT load against Aviary and its peers (Mosquitto in both
//! TCP_NODELAY settings, rumqttd, Aedes) and reports them side by side, with ratios.
//!
//! The load generator speaks MQTT itself through `aviary-protocol`, so the client side costs
//! the same whichever broker it measures. Each scenario starts a fresh broker process on free
//! loopback ports, one broker after the other and never two at once: on two cores a second
//! broker would steal the first one's CPU. With `--repeat N` the brokers take turns within
//! each round (A B C D, A B C D, ...), so a burst of load from elsewhere tends to hit them
//! all, and the table shows medians. The table goes to stdout and to `--out`; the raw numbers
//! of every run and a throughput chart go beside it ([`results`]).
//!
//! The durability scenarios (`--only durability`, in [`durability`]) run after the table's,
//! with brokers of their own (Aviary in each store mode, Mosquitto with persistence), and add
//! their own sections to the report.
//!
//! The growth curves (`--only growth`, in [`growth`]: routing cost against subscriptions,
//! throughput against payload size) and the slow-consumer scenario (`--only slow-consumer`,
//! in [`slow`]) run after those, with every broker, each in a section and the curves also as
//! SVG charts.
//!
//! The cluster scenarios (`--only cluster`, in [`cluster`]) run only when asked for: they
//! need nats-server and take minutes. They measure Aviary alone, a cluster of gateways over
//! NATS JetStream against a single node, in a section of their own.

mod broker;
mod charts;
mod client;
mod cluster;
mod disk;
mod durability;
mod growth;
mod jobs;
mod lineup;
mod plan;
mod points;
mod report;
mod results;
mod scenarios;
mod slow;
mod spread;
mod stats;
mod table;
#[cfg(test)]
mod testkit;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use aviary_protocol::ProtocolVersion;
use clap::{CommandFactory as _, FromArgMatches as _};

use crate::broker::{BrokerKind, BrokerSpec, RunningBroker};
use crate::client::{Endpoint, Transport};
use crate::cluster::ClusterArgs;
use crate::durability::{DurabilityArgs, Parts};
use crate::growth::GrowthArgs;
use crate::jobs::PAYLOAD_HEADER;
use crate::report::Report;
use crate::results::RunId;
use crate::scenarios::{FlowResult, FlowSpec, IdleResult, Params};
use crate::slow::SlowArgs;
use crate::table::{footnotes, load_average, preamble, rows, summary};

/// Compare Aviary with its peers (Mosquitto, rumqttd, Aedes) on the same machine, in the same
/// run.
#[derive(Debug, clap::Parser)]
#[command(version, about)]
struct Cli {
    /// The `aviary` executable (default: next to this one).
    #[arg(long)]
    aviary: Option<PathBuf>,
    /// The `mosquitto` executable (default: found on PATH or in /usr/sbin).
    #[arg(long)]
    mosquitto: Option<PathBuf>,
    /// The `rumqttd` executable (default: where `cargo xtask bench` installs the pinned one,
    /// target/tools/rumqttd-VERSION/bin/rumqttd).
    #[arg(long)]
    rumqttd: Option<PathBuf>,
    /// Aedes' launcher, run by `node` (default: bench/peers/aedes/server.js, whose
    /// node_modules `cargo xtask bench` installs).
    #[arg(long)]
    aedes: Option<PathBuf>,
    /// Another `aviary` executable, say one built before a change, measured in the same run
    /// right after Aviary and shown next to it, with the ratio Aviary / baseline.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Brokers to measure, in this order (`mosquitto` in the settings `--mosquitto-nodelay`
    /// picks).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "aviary,mosquitto,rumqttd,aedes"
    )]
    brokers: Vec<BrokerKind>,
    /// Run only these scenario groups (default: all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<Group>,
    /// Messages for point-to-point QoS 0, and in total for fan-in QoS 0.
    #[arg(long, default_value_t = 100_000)]
    qos0_messages: u64,
    /// Messages for point-to-point QoS 1 (TCP and WebSocket), and in total for fan-in QoS 1.
    #[arg(long, default_value_t = 50_000)]
    qos1_messages: u64,
    /// Subscribers in fan-out, publishers in fan-in.
    #[arg(long, default_value_t = 50)]
    fan: usize,
    /// Messages the fan-out publisher sends (each reaches every subscriber).
    #[arg(long, default_value_t = 10_000)]
    fan_out_messages: u64,
    /// QoS 1 messages for each cross-transport flow (TCP -> WS, WS -> TCP).
    #[arg(long, default_value_t = 10_000)]
    cross_messages: u64,
    /// Payload size in bytes (16 to 65536; the first 16 carry ids and a timestamp).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(16..=65536))]
    payload: u32,
    /// Unacknowledged QoS 1 PUBLISH packets each publisher keeps in flight.
    #[arg(long, default_value_t = 100)]
    window: u16,
    /// The brokers' outgoing in-flight window per client (both configured alike).
    #[arg(long, default_value_t = 100)]
    inflight: u16,
    /// Messages a broker may queue per client (both configured alike).
    #[arg(long, default_value_t = 1_000_000)]
    max_queued: usize,
    /// Mosquitto's `set_tcp_nodelay`: `both` runs it twice, as two columns (Aviary always
    /// sets TCP_NODELAY; `false` is Mosquitto's own default, which lets Nagle's algorithm
    /// batch its small writes, and may be faster or slower depending on the scenario).
    #[arg(long, value_enum, default_value = "both")]
    mosquitto_nodelay: Nodelay,
    /// Messages per second in the latency scenarios (the rate issue 13's target names).
    #[arg(long, default_value_t = 1_000)]
    rate: u32,
    /// Seconds each latency scenario publishes for.
    #[arg(long, default_value_t = 5)]
    latency_secs: u64,
    /// Runs of each latency scenario at least, whatever `--repeat` says: one run's p99 rests
    /// on a few dozen samples, and the machine's noise moves it more than the brokers do.
    #[arg(long, default_value_t = 5)]
    latency_repeat: usize,
    /// Idle connections for the memory-per-connection scenario.
    #[arg(long, default_value_t = 5_000)]
    idle_connections: usize,
    /// Most connections to open in the connections-held scenario.
    #[arg(long, default_value_t = 15_000)]
    held_cap: usize,
    /// Idle TCP connections in the spread scenario: opened by several load-generator
    /// processes, each from its own 127.0.0.x (19,990 fit a broker limited to 20,000 files)
    #[arg(long, default_value_t = 19_990)]
    spread_connections: usize,
    /// Internal: run as one worker of the spread scenario (BROKER,SOURCE,FIRST,COUNT,KEEP_ALIVE)
    #[arg(long, hide = true)]
    idle_worker: Option<String>,
    /// Connections opened concurrently in the idle-connection scenarios.
    #[arg(long, default_value_t = 100)]
    connect_concurrency: usize,
    /// Seconds after which a scenario is stopped and reported as timed out.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
    /// Seconds subscribers wait for stragglers after the publishers finish.
    #[arg(long, default_value_t = 5)]
    idle_secs: u64,
    /// MQTT version of the load.
    #[arg(long, value_enum, default_value = "3.1.1")]
    mqtt_version: Version,
    /// Runs of every scenario per broker; the table shows the median of each number.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Small sizes (fewer messages and connections, one run, 1 s latency runs) for a whole
    /// comparison in under three minutes: to see that everything works, not to quote. Sizes
    /// given on the command line win.
    #[arg(long)]
    quick: bool,
    /// Where to write the Markdown report; the raw numbers (results.jsonl) and the chart
    /// (throughput.svg) go into the same directory.
    #[arg(long, default_value = "target/bench/report.md")]
    out: PathBuf,
    #[command(flatten)]
    durability: DurabilityArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(flatten)]
    growth: GrowthArgs,
    #[command(flatten)]
    slow: SlowArgs,
}

/// The MQTT version of the load.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Version {
    /// MQTT 3.1.1.
    #[value(name = "3.1.1")]
    V311,
    /// MQTT 5.0.
    #[value(name = "5")]
    V5,
}

/// Which of Mosquitto's TCP_NODELAY settings to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Nodelay {
    /// Both: columns "Mosquitto" (`set_tcp_nodelay true`) and "Mosquitto (Nagle)".
    Both,
    /// `set_tcp_nodelay true` only.
    #[value(name = "true")]
    On,
    /// Mosquitto's default only: Nagle's algorithm on.
    #[value(name = "false")]
    Off,
}

/// Scenario groups for `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Group {
    /// Point-to-point over TCP, QoS 0 and 1.
    P2p,
    /// One publisher, many subscribers.
    FanOut,
    /// Many publishers, one subscriber.
    FanIn,
    /// Over WebSocket: point-to-point QoS 0 and 1, fan-out, and cross-transport QoS 1.
    Ws,
    /// Latency percentiles at a fixed rate.
    Latency,
    /// Memory per idle connection, over TCP and over WebSocket.
    Memory,
    /// Connections held.
    Held,
    /// Many idle TCP connections (19,990 by default) from several processes: RSS per
    /// connection, held and lost.
    Spread,
    /// All three durability scenarios below.
    Durability,
    /// QoS 1 to a persistent subscriber, Aviary in each store mode, Mosquitto persisting.
    DurabilityThroughput,
    /// Restart time with retained and queued messages, after SIGTERM and after kill -9.
    DurabilityRestart,
    /// Store size sampled under a steady load.
    DurabilitySteady,
    /// Both growth curves below.
    Growth,
    /// Broker CPU per publish and throughput against 1k to 1M subscriptions.
    GrowthSubscriptions,
    /// QoS 1 throughput against payload size, 16 B to 1 MiB.
    GrowthPayload,
    /// The others' throughput beside a subscriber that stops reading.
    SlowConsumer,
    /// Cluster mode against a single node: cross-node throughput, latency, takeover and
    /// session resume (only when named: needs nats-server).
    Cluster,
}

/// What a scenario does.
#[derive(Debug, Clone)]
enum Kind {
    /// A throughput flow.
    Flow(FlowSpec),
    /// A fixed-rate flow whose latencies are reported.
    Latency(FlowSpec),
    /// N idle connections over a transport, memory measured.
    Memory(usize, Transport),
    /// Up to N idle connections, counted.
    Held(usize),
    /// N idle TCP connections from several worker processes, memory measured.
    Spread(usize),
}

/// One scenario of the comparison.
#[derive(Debug, Clone)]
struct Scenario {
    group: Group,
    title: String,
    kind: Kind,
}

/// What one broker did in one scenario.
#[derive(Debug)]
enum Measured {
    Flow(FlowResult),
    Idle(IdleResult),
    /// The broker cannot serve this load (an MQTT version or transport it lacks), and why.
    NotOffered(&'static str),
}

impl Kind {
    /// The transports the scenario's clients use.
    fn transports(&self) -> Vec<Transport> {
        match self {
            Self::Flow(flow) | Self::Latency(flow) => vec![flow.pub_transport, flow.sub_transport],
            Self::Memory(_, transport) => vec![*transport],
            Self::Held(_) | Self::Spread(_) => vec![Transport::Tcp],
        }
    }
}

/// One broker's outcome in one scenario: the measurement (or why there is none) and the CPU
/// time the broker used meanwhile.
#[derive(Debug)]
struct Outcome {
    measured: Result<Measured, String>,
    cpu: Option<Duration>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches)?;
    if cli.quick {
        plan::apply_quick(&mut cli, &matches);
    }
    let params = Params {
        version: match cli.mqtt_version {
            Version::V311 => ProtocolVersion::V3_1_1,
            Version::V5 => ProtocolVersion::V5,
        },
        payload: cli.payload as usize,
        window: cli.window.max(1),
        receive_maximum: cli.inflight.max(1),
        timeout: Duration::from_secs(cli.timeout_secs.max(1)),
        idle: Duration::from_secs(cli.idle_secs),
        connect_concurrency: cli.connect_concurrency,
        keep_alive: 0,
    };
    debug_assert!(params.payload >= PAYLOAD_HEADER);
    raise_open_files_limit(cli.held_cap.max(cli.idle_connections));
    if let Some(arg) = &cli.idle_worker {
        return spread::worker_main(arg, &params).await;
    }

    let specs = lineup::broker_specs(&cli, params.version)?;
    let scenarios: Vec<Scenario> = plan::scenarios(&cli)
        .into_iter()
        .filter(|s| cli.only.is_empty() || cli.only.contains(&s.group))
        .collect();
    let load_before = load_average();
    let started = utc_now();
    let mut report = Report {
        columns: specs.iter().map(|s| s.kind).collect(),
        ..Report::default()
    };
    let mut json_lines = Vec::new();
    let total = scenarios.len();
    let repeat = cli.repeat.max(1);
    for (n, scenario) in scenarios.iter().enumerate() {
        let repeat = match scenario.group {
            Group::Latency => repeat.max(cli.latency_repeat),
            _ => repeat,
        };
        let mut runs = Vec::with_capacity(repeat);
        for round in 1..=repeat {
            let mut outcomes = Vec::new();
            // Brokers alternate within each round, so a burst of load from elsewhere on the
            // machine tends to hit all of them rather than one.
            for spec in &specs {
                let round_note = if repeat > 1 {
                    format!(" (run {round}/{repeat})")
                } else {
                    String::new()
                };
                eprintln!(
                    "==> [{}/{total}] {} on {}{round_note}",
                    n + 1,
                    scenario.title,
                    spec.kind
                );
                let outcome = run_one(spec, scenario, &params).await;
                eprintln!("    {}", summary(&outcome));
                let offered = !matches!(outcome.measured, Ok(Measured::NotOffered(_)));
                outcomes.push((spec.kind, outcome));
                if offered {
                    // Let sockets close and the CPU cool down before the next broker starts.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            let rows = rows(scenario, &outcomes);
            let id = RunId {
                started: &started,
                round,
                rounds: repeat,
            };
            json_lines.extend(results::json_lines(id, scenario, &outcomes, &rows));
            runs.push(rows);
        }
        report.rows.extend(report::median_rows(runs));
    }
    let parts = Parts::chosen(&cli.only);
    if parts.any() {
        report.sections = durability::run(&cli.durability, parts, &specs, &params, repeat).await;
    }
    let curves = growth::Parts::chosen(&cli.only);
    if curves.subscriptions || curves.payload {
        let beside_report = || cli.out.parent().map(Path::to_path_buf).unwrap_or_default();
        let dir = cli.growth.chart_dir.get_or_insert_with(beside_report);
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(&*dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let sections = growth::run(&cli.growth, curves, &specs, &params, repeat).await;
        report.sections.extend(sections);
    }
    if cli.only.is_empty() || cli.only.contains(&Group::SlowConsumer) {
        let section = slow::run(&cli.slow, &specs, &params, repeat).await;
        report.sections.push(section);
    }
    if cli.only.contains(&Group::Cluster) {
        match specs.iter().find(|s| s.kind == BrokerKind::Aviary) {
            Some(aviary) => report
                .sections
                .push(cluster::run(&cli.cluster, aviary, &params, repeat).await),
            None => eprintln!("==> cluster: skipped, Aviary is not among --brokers"),
        }
    }
    report.preamble = preamble(&cli, &specs, &params, &load_before);
    report.footnotes = footnotes();
    let written = results::write_all(&cli.out, &mut report, &json_lines)?;
    print!("{}", report.to_markdown());
    for path in written {
        eprintln!("==> wrote {}", path.display());
    }
    Ok(())
}

/// Now, in UTC, as RFC 3339 (from `date`, so no time crate for one line).
fn utc_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Raises this process's soft open-files limit to its hard limit, so thousands of client
/// sockets fit; the brokers, started from here, inherit it.
fn raise_open_files_limit(connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < connections as u64 + 200 => eprintln!(
            "warning: open-files limit is {limit}; scenarios with {connections} connections \
             will hit it"
        ),
        Ok(_) => {}
        Err(e) => eprintln!("warning: cannot raise the open-files limit: {e}"),
    }
}

/// Starts a fresh broker, runs one scenario against it, and stops it.
async fn run_one(spec: &BrokerSpec, scenario: &Scenario, params: &Params) -> Outcome {
    if let Some(why) = broker::not_offered(spec.kind, params.version, &scenario.kind.transports()) {
        return Outcome {
            measured: Ok(Measured::NotOffered(why)),
            cpu: None,
        };
    }
    let params = &params.for_broker(spec.kind);
    let mut broker = match RunningBroker::start(spec) {
        Ok(broker) => broker,
        Err(e) => {
            return Outcome {
                measured: Err(format!("{e:#}")),
                cpu: None,
            }
        }
    };
    let endpoint = Endpoint {
        tcp: broker.mqtt,
        ws_url: broker.ws_url.clone(),
    };
    let cpu_before = broker.cpu_time().ok();
    // Every loop inside has its own deadline; this one only guards against a bug in them.
    let guard = params.timeout + Duration::from_secs(60);
    let run = async {
        match &scenario.kind {
            Kind::Flow(flow) | Kind::Latency(flow) => scenarios::run_flow(&endpoint, flow, params)
                .await
                .map(Measured::Flow),
            Kind::Memory(count, transport) => {
                scenarios::run_idle(&broker, &endpoint, *count, *transport, params)
                    .await
                    .map(Measured::Idle)
            }
            Kind::Held(count) => {
                scenarios::run_idle(&broker, &endpoint, *count, Transport::Tcp, params)
                    .await
                    .map(Measured::Idle)
            }
            Kind::Spread(count) => spread::run_spread(&broker, &endpoint, *count, params)
                .await
                .map(Measured::Idle),
        }
    };
    let measured = match tokio::time::timeout(guard, run).await {
        Ok(Ok(measured)) => Ok(measured),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err(format!("did not finish within {guard:?}")),
    };
    let cpu = match (cpu_before, broker.cpu_time().ok()) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    let measured = match broker.check_alive() {
        Ok(()) => measured,
        Err(e) => Err(format!("broker died: {e:#}")),
    };
    Outcome { measured, cpu }
}
