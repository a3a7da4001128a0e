//! What durable state costs and what it buys: the measurements of issue 10, each in its own
//! section of the report.
//!
//! - **throughput** (`--only durability-throughput`): QoS 1 from several publishers into one
//!   online persistent subscriber, with Aviary's store in each durability mode (memory,
//!   process, fsync: a separate process and a fresh data directory each) and Mosquitto with
//!   `persistence true`, in the same run; disk writes per message beside the rate.
//! - **restart** (`durability-restart`): fill a broker with retained messages and messages
//!   queued for an offline persistent subscriber, stop it (SIGTERM, or SIGKILL), start it on
//!   the same data directory, time it until it accepts connections, and count what came back.
//! - **steady** (`durability-steady`): a constant bounded load for a while, the store's size
//!   sampled as it runs, to show it does not grow without bound.
//!
//! `--only durability` runs all three. The brokers are the ones `--brokers` names: Aviary in
//! the modes above (then a `--baseline` build in the same modes, to compare a change within one run), Mosquitto
//! with persistence.

mod fill;
mod grid;
mod restart;
mod steady;
mod throughput;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::broker::{BrokerKind, BrokerSpec, Durability};
use crate::scenarios::Params;
use crate::Group;

/// Sizes and settings of the durability scenarios.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DurabilityArgs {
    /// Throughput to a persistent subscriber: QoS 1 messages in all, spread over the
    /// publishers (enough for Aviary's memory mode to run for a second, not a burst).
    #[arg(long, default_value_t = 200_000)]
    pub(crate) durable_messages: u64,
    /// Throughput to a persistent subscriber: Aviary's store modes to measure, in this order
    /// (all three by default; `memory,process` leaves out the slow fsync runs when only the
    /// process target is being worked on).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Durability::Memory, Durability::Process, Durability::Fsync])]
    pub(crate) durable_modes: Vec<Durability>,
    /// Throughput to a persistent subscriber: publishers, all into one subscriber.
    #[arg(long, default_value_t = 8)]
    pub(crate) durable_publishers: usize,
    /// Restart: retained messages (one topic each) filled before the restart.
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) restart_retained: u64,
    /// Restart: QoS 1 messages queued for an offline persistent subscriber before it.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) restart_queued: u64,
    /// Restart: publishers filling the broker, each keeping the publisher window in flight.
    #[arg(long, default_value_t = 4)]
    pub(crate) fill_publishers: usize,
    /// Restart: seconds the filling, and the counting after the restart, may each take.
    #[arg(long, default_value_t = 600)]
    pub(crate) fill_timeout_secs: u64,
    /// Aviary's `[store] max_batch_ops` (most operations per group commit) in every
    /// durability scenario; the gateway's default when not given.
    #[arg(long)]
    pub(crate) store_max_batch_ops: Option<usize>,
    /// Aviary's `[store] durability` in the restart and steady scenarios.
    #[arg(long, value_enum, default_value = "process")]
    pub(crate) store_durability: Durability,
    /// Steady: seconds of constant load (600 for the ten-minute figure).
    #[arg(long, default_value_t = 60)]
    pub(crate) steady_secs: u64,
    /// Steady: QoS 1 messages per second in all, from the throughput scenario's publishers
    /// to one online persistent subscriber.
    #[arg(long, default_value_t = 2_000)]
    pub(crate) steady_rate: u32,
    /// Steady: seconds between samples of the store's size.
    #[arg(long, default_value_t = 30)]
    pub(crate) steady_sample_secs: u64,
}

/// Which durability scenarios to run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Parts {
    /// QoS 1 throughput to a persistent subscriber, per durability mode.
    pub(crate) throughput: bool,
    /// Restart time with a full store, after SIGTERM and after SIGKILL.
    pub(crate) restart: bool,
    /// Store size under a steady load.
    pub(crate) steady: bool,
}

impl Parts {
    /// The scenarios `--only` asks for: all when it names no group, all three for
    /// `durability`, else the ones it names.
    pub(crate) fn chosen(only: &[Group]) -> Self {
        let wants =
            |group| only.is_empty() || only.contains(&Group::Durability) || only.contains(&group);
        Self {
            throughput: wants(Group::DurabilityThroughput),
            restart: wants(Group::DurabilityRestart),
            steady: wants(Group::DurabilitySteady),
        }
    }

    /// Whether any is to run.
    pub(crate) fn any(self) -> bool {
        self.throughput || self.restart || self.steady
    }
}

/// One broker configuration measured side by side with others: a column of a table.
#[derive(Debug, Clone)]
struct Contestant {
    /// The column heading, like "Aviary process" or "Mosquitto persistence".
    label: String,
    spec: BrokerSpec,
}

/// `spec` with durability `mode` (and the batch limit, if given), labelled for the tables.
fn contestant(spec: &BrokerSpec, mode: Durability, max_batch_ops: Option<usize>) -> Contestant {
    let label = match spec.kind {
        kind if kind.is_mosquitto() => "Mosquitto persistence".to_owned(),
        kind => match max_batch_ops {
            Some(n) => format!("{kind} {}, max_batch_ops {n}", mode.name()),
            None => format!("{kind} {}", mode.name()),
        },
    };
    Contestant {
        label,
        spec: BrokerSpec {
            durability: Some(mode),
            max_batch_ops,
            ..spec.clone()
        },
    }
}

/// Aviary in `modes` (then the `--baseline` build in them, to compare a change in one run),
/// then Mosquitto with persistence, as far as `specs` has them.
fn contestants(
    specs: &[BrokerSpec],
    modes: &[Durability],
    max_batch_ops: Option<usize>,
) -> Vec<Contestant> {
    let mut list = Vec::new();
    for kind in [BrokerKind::Aviary, BrokerKind::AviaryBaseline] {
        if let Some(aviary) = specs.iter().find(|s| s.kind == kind) {
            list.extend(
                modes
                    .iter()
                    .map(|&mode| contestant(aviary, mode, max_batch_ops)),
            );
        }
    }
    // One Mosquitto setting is enough: its TCP_NODELAY is not what these scenarios measure.
    if let Some(mosquitto) = specs.iter().find(|s| s.kind.is_mosquitto()) {
        list.push(contestant(mosquitto, Durability::Process, None));
    }
    list
}

/// Runs the chosen durability scenarios; returns the report's sections, as Markdown.
pub(crate) async fn run(
    args: &DurabilityArgs,
    parts: Parts,
    specs: &[BrokerSpec],
    params: &Params,
    repeat: usize,
) -> Vec<String> {
    let mut sections = vec![guarantees()];
    if parts.throughput {
        let list = contestants(specs, &args.durable_modes, args.store_max_batch_ops);
        sections.push(throughput::run(args, &list, params, repeat).await);
    }
    if parts.restart {
        let list = contestants(specs, &[args.store_durability], args.store_max_batch_ops);
        sections.push(restart::run(args, &list, params).await);
    }
    if parts.steady {
        match contestants(specs, &[args.store_durability], args.store_max_batch_ops)
            .into_iter()
            .find(|c| c.spec.kind == BrokerKind::Aviary)
        {
            Some(aviary) => sections.push(steady::run(args, &aviary, params).await),
            None => eprintln!("==> steady store size: skipped, Aviary is not among --brokers"),
        }
    }
    sections
}

/// What each configuration promises about acknowledged messages, said once above the tables.
fn guarantees() -> String {
    "## Durability: what each configuration guarantees\n\n\
     - **Aviary memory** (`[store] durability = \"memory\"`): nothing is written; a restart \
     loses every session, queued message and retained message.\n\
     - **Aviary process** (the default): a PUBACK/PUBREC for a message routed to a persistent \
     session goes out only after the batch holding it is written to the OS (fjall's journal, \
     `PersistMode::Buffer`), so a `kill -9` of the gateway loses nothing acknowledged; a power \
     loss or kernel crash may lose what the OS had not flushed yet. A QoS 1 message whose one \
     persistent subscriber is connected and acknowledges it within 1 ms is neither written nor \
     waited for: the publisher's PUBACK then follows the subscriber's.\n\
     - **Aviary fsync**: the same, and each batch is also `fdatasync`ed before its \
     acknowledgements: power-loss safe.\n\
     - **Mosquitto persistence** (`persistence true`, default `autosave_interval` 1,800 s): \
     Mosquitto acknowledges from memory and writes a snapshot of its whole state every \
     autosave interval and at a graceful shutdown, so a `kill -9` (or power loss) loses \
     everything since the last snapshot.\n"
        .to_owned()
}

/// `GET path` from an HTTP/1.0 server on `addr`; the body, when the status is 200.
async fn http_get(addr: SocketAddr, path: &str) -> Result<String> {
    let request = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let head = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        anyhow::Ok(String::from_utf8_lossy(&response).into_owned())
    };
    let response = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .context("no HTTP response within 10 s")??;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("HTTP response without a header end")?;
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200 ") {
        bail!("GET {path}: {status}");
    }
    Ok(body.to_owned())
}

/// The value of an unlabelled sample `name` in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (key, value) = line.split_once(' ')?;
            (key == name).then(|| value.trim().parse().ok())?
        })
}

/// Aviary's `/metrics`, fetched from `addr`: the values of `names`, in order.
async fn aviary_metrics(addr: SocketAddr, names: &[&str]) -> Result<Vec<Option<f64>>> {
    let text = http_get(addr, "/metrics").await?;
    Ok(names.iter().map(|name| metric(&text, name)).collect())
}

/// Bytes as MiB.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_unlabelled_prometheus_samples() {
        let text = "# HELP aviary_retained_messages Retained messages.\n\
                    # TYPE aviary_retained_messages gauge\n\
                    aviary_retained_messages 1000000\n\
                    aviary_queued_messages 42\n\
                    aviary_messages_dropped_total{reason=\"expired\"} 3\n";
        assert_eq!(metric(text, "aviary_retained_messages"), Some(1e6));
        assert_eq!(metric(text, "aviary_queued_messages"), Some(42.0));
        assert_eq!(metric(text, "aviary_queued"), None);
        assert_eq!(metric(text, "aviary_messages_dropped_total"), None);
    }

    #[test]
    fn only_picks_the_durability_parts() {
        let all = Parts {
            throughput: true,
            restart: true,
            steady: true,
        };
        assert_eq!(Parts::chosen(&[]), all);
        assert_eq!(Parts::chosen(&[Group::P2p, Group::Durability]), all);
        assert!(!Parts::chosen(&[Group::P2p]).any());
        let restart = Parts::chosen(&[Group::DurabilityRestart]);
        assert!(restart.restart && !restart.throughput && !restart.steady);
    }

    #[test]
    fn three_aviary_modes_then_mosquitto() {
        let spec = |kind| BrokerSpec {
            kind,
            binary: "/bin/true".into(),
            inflight: 100,
            max_queued: 1000,
            protocol: aviary_protocol::ProtocolVersion::V3_1_1,
            max_connections: 1000,
            durability: None,
            max_batch_ops: None,
        };
        let specs = [spec(BrokerKind::Aviary), spec(BrokerKind::Mosquitto)];
        let modes = [Durability::Memory, Durability::Process, Durability::Fsync];
        let list = contestants(&specs, &modes, None);
        let labels: Vec<&str> = list.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "Aviary memory",
                "Aviary process",
                "Aviary fsync",
                "Mosquitto persistence"
            ]
        );
        assert!(list.iter().all(|c| c.spec.durability.is_some()));
        assert_eq!(contestants(&specs[1..], &modes, None).len(), 1);
        let with_baseline = [spec(BrokerKind::Aviary), spec(BrokerKind::AviaryBaseline)];
        let labels: Vec<String> = contestants(&with_baseline, &modes[..2], None)
            .into_iter()
            .map(|c| c.label)
            .collect();
        assert_eq!(
            labels,
            [
                "Aviary memory",
                "Aviary process",
                "Aviary baseline memory",
                "Aviary baseline process"
            ]
        );
    }
}
