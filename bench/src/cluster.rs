//! What cluster mode costs (issue 12, "Measure"): `--only cluster` runs these, and the default
//! run does not (they need nats-server and add minutes; see xtask/src/bench.rs).
//!
//! Two setups, measured alike and interleaved round by round (single node first in odd
//! rounds, the cluster first in even ones), each started fresh for its round and killed after
//! it, never both at once:
//! - **single node**: one Aviary without `[cluster]`; "node A" and "node B" are that node;
//! - **cluster**: 3 nats-servers clustered with JetStream ([`nats`]) and 2 or 3 gateways
//!   whose `[cluster]` points at them with `replicas = 3` ([`gateway`]); node A is gw-a, node
//!   B gw-b.
//!
//! Each round runs, on each setup ([`steps`]): full-speed throughput A→B at QoS 0 and 1 with
//! loss beside it, latency A→B at a fixed rate (QoS 0 and 1), takeovers of a client id from A
//! to B, and the resume on B of a persistent session left on A with queued QoS 1 messages.
//! The report section shows the medians side by side with the ratio cluster / single node.

mod floor;
mod flows;
mod gateway;
mod nats;
mod resume;
mod section;
mod session;
mod setup;
mod steps;

use std::path::PathBuf;
use std::time::Duration;

use aviary_protocol::QoS;

use self::section::{Round, Sample};
use self::setup::{Kind, Setup, NATS_VERSION};
use crate::broker::BrokerSpec;
use crate::report::{format_value, Better};
use crate::scenarios::Params;
use crate::table::load_average;

/// Sizes and settings of the cluster scenarios.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ClusterArgs {
    /// The nats-server executable (default: the pinned one xtask installs, in
    /// target/tools/ next to this executable's target/release/).
    #[arg(long)]
    pub(crate) nats_server: Option<PathBuf>,
    /// Gateways in the cluster (2 or 3); publishers use the first, subscribers the second.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub(crate) cluster_gateways: u8,
    /// QoS 0 messages in the cross-node throughput flow.
    #[arg(long, default_value_t = 200_000)]
    pub(crate) cluster_qos0_messages: u64,
    /// QoS 1 messages in the cross-node throughput flow.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) cluster_qos1_messages: u64,
    /// Publishers on node A in the throughput flows (messages are split among them).
    #[arg(long, default_value_t = 1)]
    pub(crate) cluster_publishers: usize,
    /// Messages per second in the cross-node latency flows.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) cluster_rate: u32,
    /// Seconds each cross-node latency flow publishes for.
    #[arg(long, default_value_t = 5)]
    pub(crate) cluster_latency_secs: u64,
    /// Takeovers (A → B) per run.
    #[arg(long, default_value_t = 20)]
    pub(crate) cluster_takeovers: usize,
    /// QoS 1 messages queued for the session that resumes on B.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) cluster_queued: u64,
    /// Run only the latency flows and the JetStream floor beside them: a round in seconds
    /// rather than minutes, for comparing changes to the cross-node path.
    #[arg(long)]
    pub(crate) cluster_latency_only: bool,
    /// Keep each cluster run's directory (the gateways' logs, the NATS servers' data and
    /// logs) rather than remove it; the run's notes say where it is.
    #[arg(long)]
    pub(crate) cluster_keep: bool,
}

/// Runs every round on both setups and returns the report section.
pub(crate) async fn run(
    args: &ClusterArgs,
    aviary: &BrokerSpec,
    params: &Params,
    repeat: usize,
) -> String {
    let load_before = load_average();
    let (mut single, mut cluster) = (Vec::new(), Vec::new());
    // Ctrl-C or SIGTERM while a setup runs: stop where we are, so that dropping the setup
    // kills its processes instead of leaving them to outlive this one. Installed up front,
    // because a signal that arrives with no handler kills this process at once.
    let mut stop = match Stop::install() {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("==> [cluster] cannot catch signals: {e}");
            return String::new();
        }
    };
    let mut interrupted = false;
    'rounds: for round in 1..=repeat.max(1) {
        let order = if round % 2 == 1 {
            [Kind::Single, Kind::Cluster]
        } else {
            [Kind::Cluster, Kind::Single]
        };
        for kind in order {
            eprintln!("==> [cluster] {kind:?} (run {round}/{repeat})");
            let outcome = tokio::select! {
                biased;
                () = stop.requested() => {
                    eprintln!("==> [cluster] interrupted: its processes are stopped");
                    interrupted = true;
                    break 'rounds;
                }
                outcome = run_round(kind, args, aviary, params, round) => outcome,
            };
            eprintln!("    {}", outcome.notes.join("; "));
            match kind {
                Kind::Single => single.push(outcome),
                Kind::Cluster => cluster.push(outcome),
            }
            // Let sockets close and the CPU cool down before the next setup starts.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let intro = intro(args, params, repeat, &load_before);
    let mut outro = targets(&single, &cluster);
    if interrupted {
        outro.push("Interrupted (SIGINT or SIGTERM) before every run was done.".to_owned());
    }
    section::render(&intro, &single, &cluster, &outro)
}

/// SIGINT and SIGTERM, caught.
struct Stop {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Stop {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves when either signal arrives.
    async fn requested(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// One round on one setup: start it, run every step, stop it.
async fn run_round(
    kind: Kind,
    args: &ClusterArgs,
    aviary: &BrokerSpec,
    params: &Params,
    round: usize,
) -> Round {
    // The machine is shared: each run says how loaded it was when it started.
    let mut out = Round {
        notes: vec![format!("load average at start {}", load_average())],
        ..Round::default()
    };
    let mut setup = match Setup::start(kind, args, aviary, &mut out.notes) {
        Ok(setup) => setup,
        Err(e) => {
            out.notes.push(format!("setup failed: {e:#}"));
            return out;
        }
    };
    let nodes = setup.nodes();
    let tag = format!("r{round}");
    // Every step bounds its own loops; this only guards against a bug in them.
    let guard = params.timeout * 3 + Duration::from_secs(60);
    let all = !args.cluster_latency_only;
    let steps = async {
        // QoS 0 on one topic, which a node may send several at a time, and on a topic per
        // message, which it may not.
        let throughput = if all {
            [
                (QoS::AtMostOnce, false),
                (QoS::AtMostOnce, true),
                (QoS::AtLeastOnce, false),
            ]
            .as_slice()
        } else {
            &[]
        };
        for &flow in throughput {
            let before = setup.cpu();
            let delivered = steps::throughput(nodes, args, flow, params, &tag, &mut out).await;
            let spread = if flow.1 { steps::SPREAD } else { "" };
            let label = format!("QoS {} throughput{spread}", flow.0 as u8);
            cpu_samples(&label, before, setup.cpu(), delivered, &mut out);
        }
        if all {
            // A publisher faster than the cluster must be held back, not queued for.
            out.samples.push(Sample::new(
                "gateways' peak RSS after the throughput flows, MiB".to_owned(),
                Better::Lower,
                1,
                setup.peak_rss_mib(),
            ));
        }
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
            // CPU per message moves far less with the machine's other load than a tail does:
            // what an A/B of the cross-node path reads first.
            let before = setup.cpu();
            steps::latency(nodes, args, qos, params, &tag, &mut out).await;
            let sent = u64::from(args.cluster_rate.max(1)) * args.cluster_latency_secs.max(1);
            let label = format!(
                "QoS {} latency at {} msg/s",
                qos as u8,
                format_value(Some(f64::from(args.cluster_rate)), 0)
            );
            cpu_samples(&label, before, setup.cpu(), sent, &mut out);
        }
        if all {
            steps::takeovers(nodes, args, params, &tag, &mut out).await;
            steps::resume(nodes, args, params, &tag, &mut out).await;
        }
        let (rate, secs) = (args.cluster_rate, args.cluster_latency_secs);
        floor::measure(setup.nats_urls().as_deref(), 3, rate, secs, &mut out).await;
        if !all {
            return;
        }
        // Last: the node killed here stays dead, and its death is noticed by the others.
        match setup.extra_gateway(aviary, "gw-doomed", &mut out.notes) {
            Some(Ok(doomed)) => {
                steps::killed_resume(doomed, nodes.b, args, params, &tag, &mut out).await;
            }
            Some(Err(e)) => out.notes.push(format!("gw-doomed did not start: {e:#}")),
            None => {}
        }
    };
    if tokio::time::timeout(guard, steps).await.is_err() {
        out.notes.push(format!("stopped after {guard:?}"));
    }
    if let Err(e) = setup.check_alive() {
        out.notes.push(format!("a process died: {e:#}"));
    }
    out
}

/// Server CPU per message in a flow (`label`), gateways and nats-servers apart: where a
/// cluster spends what a single node does not.
fn cpu_samples(
    label: &str,
    before: (Option<Duration>, Option<Duration>),
    after: (Option<Duration>, Option<Duration>),
    delivered: u64,
    round: &mut Round,
) {
    let per_message = |b: Option<Duration>, a: Option<Duration>| {
        let used = a?.checked_sub(b?)?;
        (delivered > 0).then(|| used.as_secs_f64() * 1e6 / delivered as f64)
    };
    round.samples.push(section::Sample::new(
        format!("{label}: gateway CPU, µs/msg"),
        crate::report::Better::Lower,
        2,
        per_message(before.0, after.0),
    ));
    round.samples.push(section::Sample::new(
        format!("{label}: nats-server CPU, µs/msg"),
        crate::report::Better::Lower,
        2,
        per_message(before.1, after.1),
    ));
}

/// The lines above the table: what ran, with which sizes, and how loaded the machine was.
fn intro(args: &ClusterArgs, params: &Params, repeat: usize, load_before: &str) -> Vec<String> {
    let n = |v: u64| format_value(Some(v as f64), 0);
    vec![
        format!(
            "- Setups: a single Aviary without `[cluster]`, and a cluster of 3 nats-server \
             {NATS_VERSION} processes (JetStream, file storage, one store each) with {} Aviary \
             gateways (`replicas = 3`), all on this machine's {} cores with the load generator. \
             Publishers and first connections go to node A, subscribers and second connections \
             to node B; on the single node A and B are the same.",
            args.cluster_gateways,
            std::thread::available_parallelism().map_or(0, |n| n.get()),
        ),
        format!(
            "- Load: MQTT {} for the flows, 5.0 for takeover and resume; {}-byte payloads; \
             throughput {} QoS 0 and {} QoS 1 messages from {} publisher(s); latency at {} \
             msg/s for {} s; {} takeovers; resume with {} queued QoS 1 messages, and the \
             same (cluster only) from a third gateway killed with SIGKILL, timed from the kill \
             (default 15 s lease: its clients wait for it to run out and for the adoption).",
            params.version,
            params.payload,
            n(args.cluster_qos0_messages),
            n(args.cluster_qos1_messages),
            args.cluster_publishers.max(1),
            n(u64::from(args.cluster_rate)),
            args.cluster_latency_secs,
            args.cluster_takeovers,
            n(args.cluster_queued),
        ),
        "- Throughput is counted at the subscriber from its first delivery to its last; loss \
         is sent minus received, in % of sent. Latency: publish to receive on this process's \
         monotonic clock, nearest-rank percentiles. Takeover and resume: from CONNECT written \
         (after the TCP handshake) to CONNACK, to the old connection's DISCONNECT 0x8E, or to \
         the last queued message; a run's takeovers give its median and max. CPU: user + \
         system time of the gateways (on the single node: the one Aviary) and of the \
         nats-servers over a whole throughput flow, connecting and warm-up included, per \
         delivered message. Peak RSS: the largest VmHWM of the gateways once the throughput \
         flows are over; it counts the pages the allocator keeps for reuse after a flood, \
         not only what the gateways hold."
            .to_owned(),
        format!(
            "- {}; rounds interleaved (single node first in odd rounds, cluster first in even \
             ones). Load average before {load_before}, after {}.",
            if repeat > 1 {
                format!("Median of {repeat} runs per setup")
            } else {
                "One run per setup".to_owned()
            },
            load_average(),
        ),
    ]
}

/// The targets against the medians: QoS 0 cross-node at least 25 % of the single
/// node, and p99 under 5 ms at 1,000 msg/s.
fn targets(single: &[Round], cluster: &[Round]) -> Vec<String> {
    let find = |rounds: &[Round], prefix: &str| {
        let i = rounds
            .iter()
            .flat_map(|r| r.samples.iter().position(|s| s.metric.starts_with(prefix)))
            .next()?;
        section::median_at(rounds, i)
    };
    let mut lines = Vec::new();
    for (flow, metric) in [
        ("", "QoS 0 throughput A→B, msg/s".to_owned()),
        (
            steps::SPREAD,
            format!("QoS 0 throughput{} A→B, msg/s", steps::SPREAD),
        ),
    ] {
        if let (Some(s), Some(c)) = (find(single, &metric), find(cluster, &metric)) {
            let ratio = c / s;
            lines.push(format!(
                "Target: cross-node QoS 0{flow} at least 25 % of the single node: {:.0} % ({}).",
                ratio * 100.0,
                if ratio >= 0.25 { "met" } else { "missed" }
            ));
        }
    }
    for q in [0, 1] {
        if let Some(p99) = find(cluster, &format!("QoS {q} latency at 1,000 msg/s, p99,")) {
            lines.push(format!(
                "Target: cross-node QoS {q} p99 under 5 ms at 1,000 msg/s: {:.2} ms ({}).",
                p99 / 1e3,
                if p99 < 5_000.0 { "met" } else { "missed" }
            ));
        }
    }
    lines
}
