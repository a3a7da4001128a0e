//! `aviary-bench`: runs the same MQTT load against Aviary and Mosquitto and reports the two
//! side by side, as ratios.
//!
//! The load generator speaks MQTT itself through `aviary-protocol`, so the client side costs
//! the same whichever broker it measures. Each scenario starts a fresh broker process on free
//! loopback ports, Aviary first and then Mosquitto, never both at once: on two cores a second
//! broker would steal the first one's CPU. The table goes to stdout and to `--out`.
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
mod points;
mod report;
mod scenarios;
mod slow;
mod table;
#[cfg(test)]
mod testkit;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use aviary_protocol::{ProtocolVersion, QoS};
use clap::Parser;

use crate::broker::{BrokerKind, BrokerSpec, RunningBroker};
use crate::client::{Endpoint, Transport};
use crate::cluster::ClusterArgs;
use crate::durability::{DurabilityArgs, Parts};
use crate::growth::GrowthArgs;
use crate::jobs::PAYLOAD_HEADER;
use crate::report::Report;
use crate::scenarios::{FlowResult, FlowSpec, IdleResult, Params};
use crate::slow::SlowArgs;
use crate::table::{footnotes, load_average, preamble, rows, summary};

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
    /// Another `aviary` executable, say one built before a change, measured in the same run
    /// right after Aviary and shown next to it, with the ratio Aviary / baseline.
    #[arg(long)]
    baseline: Option<PathBuf>,
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
    let parts = Parts::chosen(&cli.only);
    if parts.any() {
        report.sections = durability::run(&cli.durability, parts, &specs, &params, repeat).await;
    }
    let curves = growth::Parts::chosen(&cli.only);
    if curves.subscriptions || curves.payload {
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
    let mut kinds = cli.brokers.clone();
    if cli.baseline.is_some() && !kinds.contains(&BrokerKind::AviaryBaseline) {
        // Right after Aviary, so the two are measured as close together as they can be.
        let at = kinds
            .iter()
            .position(|k| *k == BrokerKind::Aviary)
            .map_or(0, |i| i + 1);
        kinds.insert(at, BrokerKind::AviaryBaseline);
    }
    let mut specs = Vec::new();
    for kind in kinds {
        let binary = match kind {
            BrokerKind::Aviary => match &cli.aviary {
                Some(path) => path.clone(),
                None => std::env::current_exe()?
                    .parent()
                    .context("this executable has no directory")?
                    .join("aviary"),
            },
            BrokerKind::AviaryBaseline => cli
                .baseline
                .clone()
                .context("the aviary-baseline broker needs --baseline PATH")?,
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
            durability: None,
            max_batch_ops: None,
        });
    }
    Ok(specs)
}

/// Every scenario, in the order they run.
fn scenarios(cli: &Cli) -> Vec<Scenario> {
    let mut list = tcp_flows(cli);
    list.extend(ws_flows(cli));
    list.extend(latency_flows(cli));
    list.extend(idle_scenarios(cli));
    list
}

/// A flow over TCP on one topic, as fast as the window allows; scenarios change what differs.
fn flow(publishers: usize, subscribers: usize, messages: u64, qos: QoS) -> FlowSpec {
    FlowSpec {
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

/// A number for a title, with thousands separators.
fn count(v: u64) -> String {
    report::format_value(Some(v as f64), 0)
}

/// Point-to-point, fan-out and fan-in over TCP.
fn tcp_flows(cli: &Cli) -> Vec<Scenario> {
    let fan = cli.fan.max(1);
    let mut list = vec![
        Scenario {
            group: Group::P2p,
            title: format!("p2p TCP QoS 0, 1→1, {} msgs", count(cli.qos0_messages)),
            kind: Kind::Flow(flow(1, 1, cli.qos0_messages, QoS::AtMostOnce)),
        },
        Scenario {
            group: Group::P2p,
            title: format!("p2p TCP QoS 1, 1→1, {} msgs", count(cli.qos1_messages)),
            kind: Kind::Flow(flow(1, 1, cli.qos1_messages, QoS::AtLeastOnce)),
        },
        Scenario {
            group: Group::FanOut,
            title: format!(
                "fan-out TCP QoS 0, 1→{fan}, {} msgs",
                count(cli.fan_out_messages)
            ),
            kind: Kind::Flow(flow(1, fan, cli.fan_out_messages, QoS::AtMostOnce)),
        },
    ];
    for (qos, total) in [
        (QoS::AtMostOnce, cli.qos0_messages),
        (QoS::AtLeastOnce, cli.qos1_messages),
    ] {
        let spec = FlowSpec {
            per_publisher_topics: true,
            ..flow(fan, 1, (total / fan as u64).max(1), qos)
        };
        list.push(Scenario {
            group: Group::FanIn,
            title: format!(
                "fan-in TCP QoS {}, {fan}→1, {} msgs",
                qos as u8,
                count(spec.expected())
            ),
            kind: Kind::Flow(spec),
        });
    }
    list
}

/// Over WebSocket: point-to-point QoS 0, fan-out, then QoS 1 within and across transports.
fn ws_flows(cli: &Cli) -> Vec<Scenario> {
    let fan = cli.fan.max(1);
    let over = |from: Transport, to: Transport, spec: FlowSpec| FlowSpec {
        pub_transport: from,
        sub_transport: to,
        ..spec
    };
    let ws = Transport::Ws;
    let mut list = vec![
        Scenario {
            group: Group::Ws,
            title: format!("p2p WS→WS QoS 0, 1→1, {} msgs", count(cli.qos0_messages)),
            kind: Kind::Flow(over(ws, ws, flow(1, 1, cli.qos0_messages, QoS::AtMostOnce))),
        },
        Scenario {
            group: Group::Ws,
            title: format!(
                "fan-out WS→WS QoS 0, 1→{fan}, {} msgs",
                count(cli.fan_out_messages)
            ),
            kind: Kind::Flow(over(
                ws,
                ws,
                flow(1, fan, cli.fan_out_messages, QoS::AtMostOnce),
            )),
        },
    ];
    for (from, to, messages) in [
        (ws, ws, cli.qos1_messages),
        (Transport::Tcp, ws, cli.cross_messages),
        (ws, Transport::Tcp, cli.cross_messages),
    ] {
        list.push(Scenario {
            group: Group::Ws,
            title: format!(
                "p2p {}→{} QoS 1, {} msgs",
                from.name(),
                to.name(),
                count(messages)
            ),
            kind: Kind::Flow(over(from, to, flow(1, 1, messages, QoS::AtLeastOnce))),
        });
    }
    list
}

/// Latency percentiles at a fixed rate, over TCP.
fn latency_flows(cli: &Cli) -> Vec<Scenario> {
    let rate = cli.rate.max(1);
    [QoS::AtMostOnce, QoS::AtLeastOnce]
        .into_iter()
        .map(|qos| Scenario {
            group: Group::Latency,
            title: format!(
                "latency TCP QoS {}, {} msg/s for {} s",
                qos as u8,
                count(u64::from(cli.rate)),
                cli.latency_secs
            ),
            kind: Kind::Latency(FlowSpec {
                rate: Some(rate),
                record_latency: true,
                ..flow(1, 1, u64::from(rate) * cli.latency_secs.max(1), qos)
            }),
        })
        .collect()
}

/// Memory per idle connection over TCP and over WebSocket, and connections held.
fn idle_scenarios(cli: &Cli) -> Vec<Scenario> {
    let mut list = Vec::new();
    if cli.idle_connections > 0 {
        for transport in [Transport::Tcp, Transport::Ws] {
            list.push(Scenario {
                group: Group::Memory,
                title: format!(
                    "{} idle {} connections",
                    count(cli.idle_connections as u64),
                    transport.name()
                ),
                kind: Kind::Memory(cli.idle_connections, transport),
            });
        }
    }
    if cli.held_cap > 0 {
        list.push(Scenario {
            group: Group::Held,
            title: format!("connections held (cap {})", count(cli.held_cap as u64)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_come_in_group_order_with_their_sizes() {
        let cli = Cli::parse_from(["aviary-bench"]);
        let titles: Vec<String> = scenarios(&cli).into_iter().map(|s| s.title).collect();
        assert_eq!(
            titles,
            [
                "p2p TCP QoS 0, 1→1, 100,000 msgs",
                "p2p TCP QoS 1, 1→1, 50,000 msgs",
                "fan-out TCP QoS 0, 1→50, 10,000 msgs",
                "fan-in TCP QoS 0, 50→1, 100,000 msgs",
                "fan-in TCP QoS 1, 50→1, 50,000 msgs",
                "p2p WS→WS QoS 0, 1→1, 100,000 msgs",
                "fan-out WS→WS QoS 0, 1→50, 10,000 msgs",
                "p2p WS→WS QoS 1, 50,000 msgs",
                "p2p TCP→WS QoS 1, 10,000 msgs",
                "p2p WS→TCP QoS 1, 10,000 msgs",
                "latency TCP QoS 0, 2,000 msg/s for 5 s",
                "latency TCP QoS 1, 2,000 msg/s for 5 s",
                "5,000 idle TCP connections",
                "5,000 idle WS connections",
                "connections held (cap 15,000)",
            ]
        );
    }
}
