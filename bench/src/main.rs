//! `aviary-bench`: runs the same MQTT load against Aviary and Mosquitto and reports the two
//! side by side, as ratios.
//!
//! The load generator speaks MQTT itself through `aviary-protocol`, so the client side costs
//! the same whichever broker it measures. Each scenario starts a fresh broker process on free
//! loopback ports, Aviary first and then Mosquitto, never both at once: on two cores a second
//! broker would steal the first one's CPU. The table goes to stdout and to `--out`.

mod broker;
mod client;
mod report;
mod scenarios;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use aviary_protocol::{ProtocolVersion, QoS};
use clap::Parser;

use crate::broker::{BrokerKind, BrokerSpec, RunningBroker};
use crate::client::{Endpoint, Transport};
use crate::report::{percentile, Better, Report, Row};
use crate::scenarios::{FlowResult, FlowSpec, IdleResult, Params, PAYLOAD_HEADER};

/// Compare Aviary with Mosquitto on the same machine, in the same run.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The `aviary` executable (default: next to this one).
    #[arg(long)]
    aviary: Option<PathBuf>,
    /// The `mosquitto` executable (default: found on PATH or in /usr/sbin).
    #[arg(long)]
    mosquitto: Option<PathBuf>,
    /// Brokers to measure, in this order.
    #[arg(long, value_delimiter = ',', default_value = "aviary,mosquitto")]
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
    /// Mosquitto's `set_tcp_nodelay` (Aviary always sets TCP_NODELAY; `false` is Mosquitto's
    /// own default, which lets Nagle's algorithm batch its small writes).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    mosquitto_nodelay: bool,
    /// Messages per second in the latency scenarios.
    #[arg(long, default_value_t = 2_000)]
    rate: u32,
    /// Seconds each latency scenario publishes for.
    #[arg(long, default_value_t = 5)]
    latency_secs: u64,
    /// Idle connections for the memory-per-connection scenario.
    #[arg(long, default_value_t = 5_000)]
    idle_connections: usize,
    /// Most connections to open in the connections-held scenario.
    #[arg(long, default_value_t = 15_000)]
    held_cap: usize,
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
    /// Where to write the Markdown report.
    #[arg(long, default_value = "target/bench/report.md")]
    out: PathBuf,
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

/// Scenario groups for `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Group {
    /// Point-to-point over TCP, QoS 0 and 1.
    P2p,
    /// One publisher, many subscribers.
    FanOut,
    /// Many publishers, one subscriber.
    FanIn,
    /// WebSocket and cross-transport QoS 1.
    Ws,
    /// Latency percentiles at a fixed rate.
    Latency,
    /// Memory per idle connection.
    Memory,
    /// Connections held.
    Held,
}

/// What a scenario does.
#[derive(Debug, Clone)]
enum Kind {
    /// A throughput flow.
    Flow(FlowSpec),
    /// A fixed-rate flow whose latencies are reported.
    Latency(FlowSpec),
    /// N idle connections, memory measured.
    Memory(usize),
    /// Up to N idle connections, counted.
    Held(usize),
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
    let cli = Cli::parse();
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
    };
    debug_assert!(params.payload >= PAYLOAD_HEADER);
    raise_open_files_limit(cli.held_cap.max(cli.idle_connections));

    let specs = broker_specs(&cli)?;
    let scenarios: Vec<Scenario> = scenarios(&cli)
        .into_iter()
        .filter(|s| cli.only.is_empty() || cli.only.contains(&s.group))
        .collect();
    let load_before = load_average();
    let mut report = Report::default();
    let total = scenarios.len();
    let repeat = cli.repeat.max(1);
    for (n, scenario) in scenarios.iter().enumerate() {
        let mut runs = Vec::with_capacity(repeat);
        for round in 1..=repeat {
            let mut outcomes = Vec::new();
            // Brokers alternate within each round, so a burst of load from elsewhere on the
            // machine tends to hit both rather than one.
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
                outcomes.push((spec.kind, outcome));
                // Let sockets close and the CPU cool down before the next broker starts.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            runs.push(rows(scenario, &outcomes));
        }
        report.rows.extend(report::median_rows(runs));
    }
    report.preamble = preamble(&cli, &specs, &params, &load_before);
    report.footnotes = footnotes();
    let markdown = report.to_markdown();
    print!("{markdown}");
    if let Some(dir) = cli.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&cli.out, &markdown)
        .with_context(|| format!("cannot write {}", cli.out.display()))?;
    eprintln!("==> report written to {}", cli.out.display());
    Ok(())
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

/// The brokers to run, with the limits they share.
fn broker_specs(cli: &Cli) -> Result<Vec<BrokerSpec>> {
    let mut specs = Vec::new();
    for &kind in &cli.brokers {
        let binary = match kind {
            BrokerKind::Aviary => match &cli.aviary {
                Some(path) => path.clone(),
                None => std::env::current_exe()?
                    .parent()
                    .context("this executable has no directory")?
                    .join("aviary"),
            },
            BrokerKind::Mosquitto => match &cli.mosquitto {
                Some(path) => path.clone(),
                None => broker::find_mosquitto().context(
                    "mosquitto not found on PATH or in /usr/sbin: apt-get install mosquitto, \
                     or pass --mosquitto PATH",
                )?,
            },
        };
        if !binary.is_file() {
            bail!(
                "{kind} executable {} does not exist (build it with `cargo build --release -p \
                 aviary`, or pass its path)",
                binary.display()
            );
        }
        specs.push(BrokerSpec {
            kind,
            binary,
            inflight: cli.inflight.max(1),
            max_queued: cli.max_queued.max(1),
            mosquitto_nodelay: cli.mosquitto_nodelay,
        });
    }
    Ok(specs)
}

/// Every scenario, in the order they run.
fn scenarios(cli: &Cli) -> Vec<Scenario> {
    let fan = cli.fan.max(1);
    let flow = |publishers: usize, subscribers: usize, messages: u64, qos: QoS| FlowSpec {
        publishers,
        subscribers,
        messages_per_publisher: messages,
        qos,
        pub_transport: Transport::Tcp,
        sub_transport: Transport::Tcp,
        per_publisher_topics: false,
        rate: None,
        record_latency: false,
    };
    let cross = |from: Transport, to: Transport, messages: u64| FlowSpec {
        pub_transport: from,
        sub_transport: to,
        ..flow(1, 1, messages, QoS::AtLeastOnce)
    };
    let fan_in = |total: u64, qos: QoS| FlowSpec {
        per_publisher_topics: true,
        ..flow(fan, 1, (total / fan as u64).max(1), qos)
    };
    let latency = |qos: QoS| FlowSpec {
        rate: Some(cli.rate.max(1)),
        record_latency: true,
        ..flow(
            1,
            1,
            u64::from(cli.rate.max(1)) * cli.latency_secs.max(1),
            qos,
        )
    };
    let n = |v: u64| report::format_value(Some(v as f64), 0);
    let mut list = vec![
        Scenario {
            group: Group::P2p,
            title: format!("p2p TCP QoS 0, 1→1, {} msgs", n(cli.qos0_messages)),
            kind: Kind::Flow(flow(1, 1, cli.qos0_messages, QoS::AtMostOnce)),
        },
        Scenario {
            group: Group::P2p,
            title: format!("p2p TCP QoS 1, 1→1, {} msgs", n(cli.qos1_messages)),
            kind: Kind::Flow(flow(1, 1, cli.qos1_messages, QoS::AtLeastOnce)),
        },
        Scenario {
            group: Group::FanOut,
            title: format!(
                "fan-out TCP QoS 0, 1→{fan}, {} msgs",
                n(cli.fan_out_messages)
            ),
            kind: Kind::Flow(flow(1, fan, cli.fan_out_messages, QoS::AtMostOnce)),
        },
    ];
    for (qos, total) in [
        (QoS::AtMostOnce, cli.qos0_messages),
        (QoS::AtLeastOnce, cli.qos1_messages),
    ] {
        let spec = fan_in(total, qos);
        list.push(Scenario {
            group: Group::FanIn,
            title: format!(
                "fan-in TCP QoS {}, {fan}→1, {} msgs",
                qos as u8,
                n(spec.expected())
            ),
            kind: Kind::Flow(spec),
        });
    }
    for (from, to, messages) in [
        (Transport::Ws, Transport::Ws, cli.qos1_messages),
        (Transport::Tcp, Transport::Ws, cli.cross_messages),
        (Transport::Ws, Transport::Tcp, cli.cross_messages),
    ] {
        list.push(Scenario {
            group: Group::Ws,
            title: format!(
                "p2p {}→{} QoS 1, {} msgs",
                from.name(),
                to.name(),
                n(messages)
            ),
            kind: Kind::Flow(cross(from, to, messages)),
        });
    }
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
        list.push(Scenario {
            group: Group::Latency,
            title: format!(
                "latency TCP QoS {}, {} msg/s for {} s",
                qos as u8,
                n(u64::from(cli.rate)),
                cli.latency_secs
            ),
            kind: Kind::Latency(latency(qos)),
        });
    }
    if cli.idle_connections > 0 {
        list.push(Scenario {
            group: Group::Memory,
            title: format!("{} idle TCP connections", n(cli.idle_connections as u64)),
            kind: Kind::Memory(cli.idle_connections),
        });
    }
    if cli.held_cap > 0 {
        list.push(Scenario {
            group: Group::Held,
            title: format!("connections held (cap {})", n(cli.held_cap as u64)),
            kind: Kind::Held(cli.held_cap),
        });
    }
    list
}

/// Starts a fresh broker, runs one scenario against it, and stops it.
async fn run_one(spec: &BrokerSpec, scenario: &Scenario, params: &Params) -> Outcome {
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
            Kind::Memory(count) | Kind::Held(count) => {
                scenarios::run_idle(&broker, &endpoint, *count, params)
                    .await
                    .map(Measured::Idle)
            }
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

/// One progress line for stderr.
fn summary(outcome: &Outcome) -> String {
    match &outcome.measured {
        Err(e) => format!("error: {e}"),
        Ok(Measured::Flow(flow)) => format!(
            "{}/{} delivered, {} msg/s{}{}",
            flow.delivered,
            flow.expected,
            report::format_value(flow.rate(), 0),
            if flow.timed_out { ", TIMED OUT" } else { "" },
            flow.errors
                .first()
                .map(|e| format!(", error: {e}"))
                .unwrap_or_default(),
        ),
        Ok(Measured::Idle(idle)) => format!(
            "{}/{} opened in {:.2} s, {} alive, RSS {} -> {} KiB{}",
            idle.opened,
            idle.attempted,
            idle.connect_time.as_secs_f64(),
            idle.alive,
            idle.rss_before_kib,
            idle.rss_after_kib,
            idle.first_error
                .as_ref()
                .map(|e| format!(", first error: {e}"))
                .unwrap_or_default(),
        ),
    }
}

/// The table rows of one scenario.
fn rows(scenario: &Scenario, outcomes: &[(BrokerKind, Outcome)]) -> Vec<Row> {
    let value = |kind: BrokerKind, f: &dyn Fn(&Outcome) -> Option<f64>| {
        outcomes
            .iter()
            .find(|(k, _)| *k == kind)
            .and_then(|(_, outcome)| f(outcome))
    };
    let row =
        |metric: &str, better: Better, decimals: usize, f: &dyn Fn(&Outcome) -> Option<f64>| Row {
            scenario: scenario.title.clone(),
            metric: metric.to_owned(),
            better,
            aviary: value(BrokerKind::Aviary, f),
            mosquitto: value(BrokerKind::Mosquitto, f),
            decimals,
            notes: String::new(),
        };
    let flow = |o: &Outcome| match &o.measured {
        Ok(Measured::Flow(flow)) => Some(flow.clone()),
        _ => None,
    };
    let idle = |o: &Outcome| match &o.measured {
        Ok(Measured::Idle(idle)) => Some((idle.clone(), idle.kib_per_connection())),
        _ => None,
    };
    let mut rows = match &scenario.kind {
        Kind::Flow(_) => vec![
            row("throughput, msg/s", Better::Higher, 0, &|o| flow(o)?.rate()),
            row("broker CPU, µs/msg", Better::Lower, 2, &|o| {
                let flow = flow(o)?;
                let cpu = o.cpu?;
                (flow.delivered > 0).then(|| cpu.as_secs_f64() * 1e6 / flow.delivered as f64)
            }),
        ],
        Kind::Latency(_) => {
            let mut rows = Vec::new();
            for (name, p) in [
                ("latency p50, µs", 50.0),
                ("latency p90, µs", 90.0),
                ("latency p99, µs", 99.0),
                ("latency p99.9, µs", 99.9),
                ("latency max, µs", 100.0),
            ] {
                rows.push(row(name, Better::Lower, 0, &|o| {
                    let mut samples = flow(o)?.latencies_ns;
                    samples.sort_unstable();
                    percentile(&samples, p).map(|ns| ns as f64 / 1e3)
                }));
            }
            rows
        }
        Kind::Memory(_) => vec![
            row("RSS per idle connection, KiB", Better::Lower, 2, &|o| {
                idle(o)?.1
            }),
            row("RSS with all connected, MiB", Better::Lower, 1, &|o| {
                Some(idle(o)?.0.rss_after_kib as f64 / 1024.0)
            }),
            row("RSS at start, MiB", Better::Lower, 1, &|o| {
                Some(idle(o)?.0.rss_before_kib as f64 / 1024.0)
            }),
            row("connect rate, conn/s", Better::Higher, 0, &|o| {
                let summary = idle(o)?.0;
                let secs = summary.connect_time.as_secs_f64();
                (secs > 0.0).then(|| summary.opened as f64 / secs)
            }),
        ],
        Kind::Held(_) => vec![row("connections held", Better::Higher, 0, &|o| {
            Some(idle(o)?.0.alive as f64)
        })],
    };
    if let Some(first) = rows.first_mut() {
        first.notes = notes(outcomes);
    }
    rows
}

/// Everything that qualifies a scenario's numbers: loss, reordering, timeouts, errors.
fn notes(outcomes: &[(BrokerKind, Outcome)]) -> String {
    let mut notes = Vec::new();
    for (kind, outcome) in outcomes {
        let mut mine = Vec::new();
        match &outcome.measured {
            Err(e) => mine.push(format!("error: {}", shorten(e))),
            Ok(Measured::Flow(flow)) => {
                if flow.lost() > 0 {
                    mine.push(format!(
                        "lost {} of {}",
                        report::format_value(Some(flow.lost() as f64), 0),
                        report::format_value(Some(flow.expected as f64), 0)
                    ));
                }
                if flow.out_of_order > 0 {
                    mine.push(format!("{} out of order or duplicated", flow.out_of_order));
                }
                if flow.timed_out {
                    mine.push("timed out".to_owned());
                }
                mine.extend(flow.errors.first().map(|e| shorten(e)));
            }
            Ok(Measured::Idle(idle)) => {
                if idle.opened < idle.attempted {
                    mine.push(format!("opened {} of {}", idle.opened, idle.attempted));
                }
                if idle.alive < idle.opened {
                    mine.push(format!(
                        "{} did not answer PINGREQ",
                        idle.opened - idle.alive
                    ));
                }
                if idle.timed_out {
                    mine.push("timed out".to_owned());
                }
                mine.extend(idle.first_error.as_deref().map(shorten));
            }
        }
        if !mine.is_empty() {
            notes.push(format!("{kind}: {}", mine.join(", ")));
        }
    }
    notes.join("; ")
}

/// An error message cut to fit a table cell, on one line.
fn shorten(text: &str) -> String {
    let line = text.replace('\n', " ");
    if line.chars().count() > 160 {
        format!("{}…", line.chars().take(160).collect::<String>())
    } else {
        line
    }
}

/// The lines before the table: when, where, what, with which settings.
fn preamble(cli: &Cli, specs: &[BrokerSpec], params: &Params, load_before: &str) -> Vec<String> {
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut lines = vec![format!(
        "- Run: {date} on {cores} cores; load average before {load_before}, after {}.",
        load_average()
    )];
    for spec in specs {
        let version = match spec.kind {
            BrokerKind::Aviary => broker::version_line(&spec.binary, &["--version"]),
            BrokerKind::Mosquitto => broker::version_line(&spec.binary, &["-h"]),
        };
        lines.push(format!(
            "- {}: `{}` ({version}).",
            spec.kind,
            spec.binary.display()
        ));
    }
    lines.push(format!(
        "- Load: {} MQTT {}, {}-byte payloads, publisher window {} unacked QoS 1, brokers' \
         in-flight window {} and queue {} messages per client, TCP_NODELAY {}, \
         scenario timeout {} s.",
        if cli.repeat > 1 {
            format!("median of {} runs per broker and scenario;", cli.repeat)
        } else {
            "one run per broker and scenario;".to_owned()
        },
        params.version,
        params.payload,
        params.window,
        cli.inflight,
        report::format_value(Some(cli.max_queued as f64), 0),
        if cli.mosquitto_nodelay {
            "on both sides"
        } else {
            "on Aviary and the clients, off on Mosquitto (its default)"
        },
        params.timeout.as_secs(),
    ));
    lines
}

/// How to read the table.
fn footnotes() -> Vec<String> {
    [
        "↑: higher is better, so a ratio above 1 favours Aviary; ↓: lower is better, a ratio \
         below 1 favours Aviary.",
        "Each scenario runs on a fresh broker process, Aviary then Mosquitto, never both at once. \
         The load generator (this program: aviary-protocol over tokio) shares the machine's cores \
         with the broker, the same for both; Mosquitto is single-threaded, Aviary runs a \
         multi-threaded tokio runtime.",
        "Throughput is counted at the subscribers, from the first delivery to the last; \
         broker CPU is user + system time of the broker process over the whole scenario \
         (connection setup included) divided by deliveries.",
        "Latency: publish time to receive time, both from this process's monotonic clock, \
         nearest-rank percentiles.",
        "Memory: broker RSS (VmRSS) with the idle connections open minus RSS before, per \
         connection. Connections held: connections that still answered PINGREQ after all \
         were opened.",
        "All traffic goes to 127.0.0.1. Mosquitto 2.0.11's WebSocket listener \
         (libwebsockets) binds every interface whatever address its config names, so the \
         brokers get ports below the kernel's ephemeral range.",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The 1, 5 and 15 minute load averages, to judge how quiet the machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}
