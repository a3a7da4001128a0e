//! `aviary-bench`'s command line: what to run, against which brokers, with which load.

use std::path::PathBuf;

use crate::broker::BrokerKind;
use crate::cluster::ClusterArgs;
use crate::durability::DurabilityArgs;
use crate::growth::GrowthArgs;
use crate::slow::SlowArgs;

/// Compare Aviary with its peers (Mosquitto, rumqttd, Aedes) on the same machine, in the same
/// run.
#[derive(Debug, clap::Parser)]
#[command(version, about)]
pub(crate) struct Cli {
    /// The `aviary` executable (default: next to this one).
    #[arg(long)]
    pub(crate) aviary: Option<PathBuf>,
    /// The `mosquitto` executable (default: found on PATH or in /usr/sbin).
    #[arg(long)]
    pub(crate) mosquitto: Option<PathBuf>,
    /// The `rumqttd` executable (default: where `cargo xtask bench` installs the pinned one,
    /// target/tools/rumqttd-VERSION/bin/rumqttd).
    #[arg(long)]
    pub(crate) rumqttd: Option<PathBuf>,
    /// Aedes' launcher, run by `node` (default: bench/peers/aedes/server.js, whose
    /// node_modules `cargo xtask bench` installs).
    #[arg(long)]
    pub(crate) aedes: Option<PathBuf>,
    /// Another `aviary` executable, say one built before a change, measured in the same run
    /// right after Aviary and shown next to it, with the ratio Aviary / baseline.
    #[arg(long)]
    pub(crate) baseline: Option<PathBuf>,
    /// Brokers to measure, in this order (`mosquitto` in the settings `--mosquitto-nodelay`
    /// picks).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "aviary,mosquitto,rumqttd,aedes"
    )]
    pub(crate) brokers: Vec<BrokerKind>,
    /// Run only these scenario groups (default: all).
    #[arg(long, value_delimiter = ',')]
    pub(crate) only: Vec<Group>,
    /// Messages for point-to-point QoS 0, and in total for fan-in QoS 0.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) qos0_messages: u64,
    /// Messages for point-to-point QoS 1 (TCP and WebSocket), and in total for fan-in QoS 1.
    #[arg(long, default_value_t = 50_000)]
    pub(crate) qos1_messages: u64,
    /// Subscribers in fan-out, publishers in fan-in.
    #[arg(long, default_value_t = 50)]
    pub(crate) fan: usize,
    /// Messages the fan-out publisher sends (each reaches every subscriber).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) fan_out_messages: u64,
    /// QoS 1 messages for each cross-transport flow (TCP -> WS, WS -> TCP); as many as the
    /// other QoS 1 pairs: at 10,000 a run lasted 12-25 ms, too short to rank brokers.
    #[arg(long, default_value_t = 50_000)]
    pub(crate) cross_messages: u64,
    /// Payload size in bytes (16 to 65536; the first 16 carry ids and a timestamp).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(16..=65536))]
    pub(crate) payload: u32,
    /// Unacknowledged QoS 1 PUBLISH packets each publisher keeps in flight.
    #[arg(long, default_value_t = 100)]
    pub(crate) window: u16,
    /// The brokers' outgoing in-flight window per client (both configured alike).
    #[arg(long, default_value_t = 100)]
    pub(crate) inflight: u16,
    /// Messages a broker may queue per client (both configured alike).
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) max_queued: usize,
    /// Mosquitto's `set_tcp_nodelay`: `both` runs it twice, as two columns (Aviary always
    /// sets TCP_NODELAY; `false` is Mosquitto's own default, which lets Nagle's algorithm
    /// batch its small writes, and may be faster or slower depending on the scenario).
    #[arg(long, value_enum, default_value = "both")]
    pub(crate) mosquitto_nodelay: Nodelay,
    /// Messages per second in the latency scenarios (the rate issue 13's target names).
    #[arg(long, default_value_t = 1_000)]
    pub(crate) rate: u32,
    /// Seconds each latency scenario publishes for.
    #[arg(long, default_value_t = 5)]
    pub(crate) latency_secs: u64,
    /// Runs of each latency scenario at least, whatever `--repeat` says: one run's p99 rests
    /// on a few dozen samples, and the machine's noise moves it more than the brokers do.
    #[arg(long, default_value_t = 5)]
    pub(crate) latency_repeat: usize,
    /// Runs of each QoS 0 fan-in and fan-out scenario at least, whatever `--repeat` says: the
    /// broker-CPU targets rest on them, and one run measures only a few tens of milliseconds
    /// of CPU, which a moment of load elsewhere on the machine can double.
    #[arg(long, default_value_t = 3)]
    pub(crate) cpu_repeat: usize,
    /// Idle connections for the memory-per-connection scenario.
    #[arg(long, default_value_t = 5_000)]
    pub(crate) idle_connections: usize,
    /// Most connections to open in the connections-held scenario.
    #[arg(long, default_value_t = 15_000)]
    pub(crate) held_cap: usize,
    /// Idle TCP connections in the spread scenario: opened by several load-generator
    /// processes, each from its own 127.0.0.x (19,990 fit a broker limited to 20,000 files)
    #[arg(long, default_value_t = 19_990)]
    pub(crate) spread_connections: usize,
    /// Internal: run as one worker of the spread scenario (BROKER,SOURCE,FIRST,COUNT,KEEP_ALIVE)
    #[arg(long, hide = true)]
    pub(crate) idle_worker: Option<String>,
    /// Connections opened concurrently in the idle-connection scenarios.
    #[arg(long, default_value_t = 100)]
    pub(crate) connect_concurrency: usize,
    /// Seconds after which a scenario is stopped and reported as timed out.
    #[arg(long, default_value_t = 60)]
    pub(crate) timeout_secs: u64,
    /// Seconds subscribers wait for stragglers after the publishers finish.
    #[arg(long, default_value_t = 5)]
    pub(crate) idle_secs: u64,
    /// MQTT version of the load.
    #[arg(long, value_enum, default_value = "3.1.1")]
    pub(crate) mqtt_version: Version,
    /// Runs of every scenario per broker; the table shows the median of each number.
    #[arg(long, default_value_t = 1)]
    pub(crate) repeat: usize,
    /// Small sizes (fewer messages and connections, one run, 1 s latency runs) for a whole
    /// comparison in under three minutes: to see that everything works, not to quote. Sizes
    /// given on the command line win.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Where to write the Markdown report; the raw numbers (results.jsonl) and the chart
    /// (throughput.svg) go into the same directory.
    #[arg(long, default_value = "target/bench/report.md")]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) durability: DurabilityArgs,
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
    #[command(flatten)]
    pub(crate) growth: GrowthArgs,
    #[command(flatten)]
    pub(crate) slow: SlowArgs,
}

/// The MQTT version of the load.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Version {
    /// MQTT 3.1.1.
    #[value(name = "3.1.1")]
    V311,
    /// MQTT 5.0.
    #[value(name = "5")]
    V5,
}

/// Which of Mosquitto's TCP_NODELAY settings to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Nodelay {
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
pub(crate) enum Group {
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
