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
mod cli;
mod client;
mod cluster;
mod cores;
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
mod targets;
#[cfg(test)]
mod testkit;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};
use aviary_protocol::ProtocolVersion;
use clap::{CommandFactory as _, FromArgMatches as _};

use crate::broker::{BrokerKind, BrokerSpec, RunningBroker};
use crate::cli::{Cli, Group, Nodelay, Version};
use crate::client::{Endpoint, Transport};
use crate::durability::Parts;
use crate::jobs::PAYLOAD_HEADER;
use crate::report::Report;
use crate::results::RunId;
use crate::scenarios::{FlowResult, FlowSpec, IdleResult, Params};
use crate::table::{footnotes, load_average, preamble, rows, summary};

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
    /// Runs at least, whatever `--repeat` says: the scenarios a target rests on (latency,
    /// broker CPU) are repeated by default, as one run of them moves with the machine's noise.
    min_runs: usize,
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
    /// The broker's CPU time the report divides by deliveries: over the message flow alone
    /// for a flow, over the whole scenario otherwise.
    cpu: Option<Duration>,
    /// The broker's CPU time over the whole scenario, connection setup included.
    scenario_cpu: Option<Duration>,
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
    warn_of_inherited_descriptors();
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
        let repeat = repeat.max(scenario.min_runs);
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
                    // Let sockets close and the CPU cool down before the next broker starts;
                    // briefly in a quick run, which is not for quoting (88 pauses in it).
                    let pause = if cli.quick { 100 } else { 500 };
                    tokio::time::sleep(Duration::from_millis(pause)).await;
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

/// Warns of file descriptors this process inherited open across `exec` (beyond stdin, stdout
/// and stderr): every broker started from here inherits them too, and each takes the place of
/// a connection under the open-files limit. Aviary holds 10 of its own (3 standard, 2 listeners,
/// tokio's epoll, its duplicate and its eventfd, the store's lock and journal), so 19,990
/// connections fill a limit of 20,000 exactly; one inherited descriptor, say a terminal tool's
/// pipe, and the last connections wait in the listen queue until they time out. Closing them in
/// the shell (`cargo xtask bench 10>&- 251>&-`) keeps them from the brokers.
fn warn_of_inherited_descriptors() {
    let inherited = inherited_descriptors();
    if !inherited.is_empty() {
        eprintln!(
            "warning: file descriptors {inherited:?} were inherited open and pass on to every \
             broker, each in the place of a connection under the open-files limit; close them \
             in the shell that starts the benchmark (`N>&-`)"
        );
    }
}

/// This process's descriptors above 2 without close-on-exec, from `/proc/self/fdinfo`.
fn inherited_descriptors() -> Vec<u32> {
    /// `O_CLOEXEC` in the octal `flags:` line of `fdinfo`.
    const CLOEXEC: u32 = 0o2_000_000;
    let Ok(entries) = std::fs::read_dir("/proc/self/fdinfo") else {
        return Vec::new();
    };
    let mut fds: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|fd| *fd > 2)
        .filter(|fd| {
            let info =
                std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap_or_default();
            info.lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
                .is_some_and(|flags| flags & CLOEXEC == 0)
        })
        .collect();
    fds.sort_unstable();
    fds
}

/// Starts a fresh broker, runs one scenario against it, and stops it.
async fn run_one(spec: &BrokerSpec, scenario: &Scenario, params: &Params) -> Outcome {
    if let Some(why) = broker::not_offered(spec.kind, params.version, &scenario.kind.transports()) {
        return Outcome {
            measured: Ok(Measured::NotOffered(why)),
            cpu: None,
            scenario_cpu: None,
        };
    }
    let params = &params.for_brokers();
    let mut broker = match RunningBroker::start(spec) {
        Ok(broker) => broker,
        Err(e) => {
            return Outcome {
                measured: Err(format!("{e:#}")),
                cpu: None,
                scenario_cpu: None,
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
            Kind::Flow(flow) | Kind::Latency(flow) => {
                scenarios::run_flow_metered(&endpoint, flow, params, Some(broker.pid()))
                    .await
                    .map(Measured::Flow)
            }
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
    let scenario_cpu = match (cpu_before, broker.cpu_time().ok()) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    let measured = match broker.check_alive() {
        Ok(()) => measured,
        Err(e) => Err(format!("broker died: {e:#}")),
    };
    let cpu = match &measured {
        Ok(Measured::Flow(flow)) => flow.broker_cpu,
        _ => scenario_cpu,
    };
    Outcome {
        measured,
        cpu,
        scenario_cpu,
    }
}
