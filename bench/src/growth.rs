//! Growth curves (issue 13): how a broker's cost grows with what it holds and carries, each
//! curve a section of the report and an SVG chart.
//!
//! - **subscriptions** (`--only growth-subscriptions`, in [`subscriptions`]): broker CPU per
//!   publish and throughput against 1k, 10k, 100k and 1M subscriptions (`--subscriptions-max`
//!   stops earlier), exact and wildcard, each publication matching exactly one. A flat
//!   curve means routing costs O(topic levels); a rising one, that it scans subscriptions.
//!   The setup time (connect, subscribe, every SUBACK) is measured too.
//! - **payload** (`--only growth-payload`, in [`payload`]): QoS 1 point-to-point throughput
//!   in msg/s and MB/s against payloads of 16 B to 1 MiB.
//!
//! `--only growth` runs both. Every broker in `--brokers` runs every point, brokers
//! alternating within each round (A B A B …), a fresh process per run, and each number is
//! the median of `--repeat` runs. A broker that cannot set up a point in the setup timeout
//! has that point (and the larger ones, which would fail alike) reported as failed, with
//! the reason.

mod hold;
mod payload;
mod routing;
mod subscriptions;

use std::path::{Path, PathBuf};

use crate::broker::{BrokerSpec, RunningBroker};
use crate::charts;
use crate::client::Endpoint;
use crate::points::{Measure, PointTable};
use crate::report::format_value;
use crate::scenarios::Params;
use crate::Group;

/// Largest payload the payload curve accepts: a batch of 64 such messages is what the
/// publisher holds in memory at once.
const MAX_PAYLOAD: u32 = 4 << 20;

/// Sizes and settings of the growth curves.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct GrowthArgs {
    /// Subscriptions curve: the largest point; points are 1,000, 10,000, 100,000, ... up to
    /// it. The 1M point takes each broker seconds to set up and about 1 GB of memory.
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) subscriptions_max: usize,
    /// Subscriptions curve: clients holding the subscriptions, the same at every point.
    #[arg(long, default_value_t = 100)]
    pub(crate) subscription_clients: usize,
    /// Subscriptions curve: topic filters per SUBSCRIBE packet.
    #[arg(long, default_value_t = 100)]
    pub(crate) filters_per_subscribe: usize,
    /// Subscriptions curve: QoS 1 messages published per point, each matching one
    /// subscription.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) growth_messages: u64,
    /// Subscriptions curve: publishing rounds of `--growth-messages` each per run, on the
    /// same subscriptions; the CPU per publish is the median of the rounds'.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub(crate) growth_rounds: u64,
    /// Subscriptions curve: a shell command run, and waited for, after each run's setup and
    /// before its publishing: for a profiler, say `callgrind_control -i on` with the broker
    /// under `valgrind --tool=callgrind --instr-atstart=no` (see bench/PROFILE.md).
    #[arg(long)]
    pub(crate) growth_hook: Option<String>,
    /// Subscriptions curve: seconds the setup of one point may take before it is reported
    /// as failed.
    #[arg(long, default_value_t = 120)]
    pub(crate) setup_timeout_secs: u64,
    /// Payload curve: payload sizes in bytes (16 to 4 MiB).
    #[arg(long, value_delimiter = ',', default_values_t = [16, 256, 4_096, 65_536, 1_048_576],
          value_parser = clap::value_parser!(u32).range(16..=i64::from(MAX_PAYLOAD)))]
    pub(crate) payload_sizes: Vec<u32>,
    /// Payload curve: most messages per point.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) payload_messages: u64,
    /// Payload curve: payload bytes per point; larger payloads send fewer messages.
    #[arg(long, default_value_t = 256 << 20)]
    pub(crate) payload_budget: u64,
    /// Where the SVG charts of the curves go (default: beside the report, `--out`).
    #[arg(long)]
    pub(crate) chart_dir: Option<PathBuf>,
}

/// Which curves to run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Parts {
    /// Routing cost against subscriptions.
    pub(crate) subscriptions: bool,
    /// Throughput against payload size.
    pub(crate) payload: bool,
}

impl Parts {
    /// The curves `--only` asks for: both when it names no group or `growth`.
    pub(crate) fn chosen(only: &[Group]) -> Self {
        let wants =
            |group| only.is_empty() || only.contains(&Group::Growth) || only.contains(&group);
        Self {
            subscriptions: wants(Group::GrowthSubscriptions),
            payload: wants(Group::GrowthPayload),
        }
    }
}

/// Runs the chosen curves; returns the report's sections, as Markdown.
pub(crate) async fn run(
    args: &GrowthArgs,
    parts: Parts,
    specs: &[BrokerSpec],
    params: &Params,
    repeat: usize,
) -> Vec<String> {
    let mut sections = Vec::new();
    if parts.subscriptions {
        sections.push(routing::curve(args, specs, params, repeat).await);
    }
    if parts.payload {
        sections.push(payload::curve(args, specs, params, repeat).await);
    }
    sections
}

/// 1,000, 10,000, ... up to `max`, and `max` itself if it falls between.
fn subscription_points(max: usize) -> Vec<usize> {
    let mut points: Vec<usize> = std::iter::successors(Some(1_000usize), |n| n.checked_mul(10))
        .take_while(|n| *n <= max)
        .collect();
    if points.last() != Some(&max) && max > 0 {
        points.push(max);
    }
    points
}

/// A fresh broker and where it listens, or why it would not start.
fn start(spec: &BrokerSpec) -> Result<(RunningBroker, Endpoint), String> {
    let broker = RunningBroker::start(spec).map_err(|e| format!("{e:#}"))?;
    let endpoint = Endpoint {
        tcp: broker.mqtt,
        ws_url: broker.ws_url.clone(),
    };
    Ok((broker, endpoint))
}

/// Why a run's broker is no longer usable, if it died.
fn died(broker: &mut RunningBroker) -> Option<String> {
    broker
        .check_alive()
        .err()
        .map(|e| format!("broker died: {e:#}"))
}

/// A run that measured nothing, and why.
fn failed(columns: usize, why: String) -> Measure {
    Measure {
        values: vec![None; columns],
        note: Some(why),
    }
}

/// Writes one chart; the line the section shows for it.
fn draw(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: Vec<(String, Vec<(f64, f64)>)>,
    log_x: bool,
) -> String {
    match charts::line_chart(path, title, x_label, y_label, &series, log_x) {
        Ok(()) => {
            eprintln!("==> chart written to {}", path.display());
            // The report sits in the same directory: the link is the file's name.
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            format!("![{title}]({name})")
        }
        Err(e) => {
            eprintln!("warning: {e:#}");
            format!("Chart not written: {e:#}.")
        }
    }
}

/// A section: heading, what was measured, the table, the charts.
fn section(heading: &str, intro: &str, table: &PointTable, charts: &[String]) -> String {
    format!(
        "## {heading}\n\n{intro}\n\n{}\n{}\n",
        table.to_markdown(),
        charts.join(" ")
    )
}

/// A count with thousands separators.
fn count(n: usize) -> String {
    format_value(Some(n as f64), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_decades_up_to_the_maximum() {
        assert_eq!(subscription_points(100_000), [1_000, 10_000, 100_000]);
        assert_eq!(
            subscription_points(1_000_000),
            [1_000, 10_000, 100_000, 1_000_000]
        );
        assert_eq!(subscription_points(50_000), [1_000, 10_000, 50_000]);
        assert_eq!(subscription_points(500), [500]);
    }

    #[test]
    fn only_picks_the_curves() {
        let both = Parts {
            subscriptions: true,
            payload: true,
        };
        assert_eq!(Parts::chosen(&[]), both);
        assert_eq!(Parts::chosen(&[Group::Growth]), both);
        let payload = Parts::chosen(&[Group::GrowthPayload]);
        assert!(payload.payload && !payload.subscriptions);
        assert_eq!(Parts::chosen(&[Group::SlowConsumer]), Parts::default());
    }
}
