//! What a run leaves behind: the Markdown report, the raw measurements as JSON lines beside
//! it, and the throughput chart.
//!
//! The Markdown shows medians; the JSON lines keep every run of every broker in every
//! scenario, with every number measured, so a reader can check a median or compute anything
//! else. `cargo xtask bench` puts the three in `bench/` (RESULTS.md, results.jsonl,
//! throughput.svg) for the full default run and in `target/bench/` for any other.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde_json::{json, Map, Value};

use crate::broker::BrokerKind;
use crate::report::{Report, Row};
use crate::table::THROUGHPUT;
use crate::{charts, Measured, Outcome, Scenario};

/// The file names written beside the Markdown report.
pub(crate) const JSONL: &str = "results.jsonl";
/// The throughput chart's file name, linked from the report.
pub(crate) const THROUGHPUT_SVG: &str = "throughput.svg";

/// Which run of a scenario a measurement belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunId<'a> {
    /// When the whole benchmark started (UTC, RFC 3339), the same on every line of a run.
    pub(crate) started: &'a str,
    /// 1-based run number of this scenario.
    pub(crate) round: usize,
    /// Runs per scenario.
    pub(crate) rounds: usize,
}

/// One JSON line per broker for one run of a scenario: the table's metrics for that broker
/// (from `rows`, the rows of this run alone) and the raw measurement behind them.
pub(crate) fn json_lines(
    id: RunId<'_>,
    scenario: &Scenario,
    outcomes: &[(BrokerKind, Outcome)],
    rows: &[Row],
) -> Vec<String> {
    outcomes
        .iter()
        .map(|(kind, outcome)| {
            let metrics: Map<String, Value> = rows
                .iter()
                .filter_map(|row| Some((row.metric.clone(), json!(row.value(*kind)?))))
                .collect();
            let mut line = json!({
                "started": id.started,
                "scenario": scenario.title,
                "group": format!("{:?}", scenario.group),
                "run": id.round,
                "runs": id.rounds,
                "broker": kind.slug(),
                "metrics": metrics,
                "broker_cpu_s": outcome.cpu.map(|cpu| cpu.as_secs_f64()),
                "scenario_cpu_s": outcome.scenario_cpu.map(|cpu| cpu.as_secs_f64()),
            });
            line["measured"] = measured(&outcome.measured);
            line.to_string()
        })
        .collect()
}

/// The raw measurement of one broker in one run, or why there is none.
fn measured(measured: &Result<Measured, String>) -> Value {
    match measured {
        Err(error) => json!({ "error": error }),
        Ok(Measured::NotOffered(why)) => json!({ "not_offered": why }),
        Ok(Measured::Flow(flow)) => json!({
            "expected": flow.expected,
            "delivered": flow.delivered,
            "sent": flow.sent,
            "lost": flow.lost(),
            "out_of_order": flow.out_of_order,
            "downgraded_to_qos0": flow.downgraded,
            "span_s": flow.span.as_secs_f64(),
            "timed_out": flow.timed_out,
            "latency_samples": flow.latencies_ns.len(),
            "errors": flow.errors,
        }),
        Ok(Measured::Idle(idle)) => json!({
            "attempted": idle.attempted,
            "opened": idle.opened,
            "alive": idle.alive,
            "rss_before_kib": idle.rss_before_kib,
            "rss_after_kib": idle.rss_after_kib,
            "connect_s": idle.connect_time.as_secs_f64(),
            "timed_out": idle.timed_out,
            "first_error": idle.first_error,
        }),
    }
}

/// The throughput chart's data: for each scenario with a throughput row, its title and each
/// broker's median.
pub(crate) fn throughput_groups(report: &Report) -> Vec<charts::BarGroup> {
    report
        .rows
        .iter()
        .filter(|row| row.metric == THROUGHPUT && !row.values.is_empty())
        .map(|row| charts::BarGroup {
            label: row.scenario.clone(),
            bars: row
                .values
                .iter()
                .map(|(kind, value)| (kind.to_string(), *value))
                .collect(),
        })
        .collect()
}

/// Writes the report to `out`, the JSON lines and the chart beside it; returns what was
/// written. The chart is left out (and not linked) when no scenario measured throughput.
pub(crate) fn write_all(out: &Path, report: &mut Report, lines: &[String]) -> Result<Vec<PathBuf>> {
    let dir = out.parent().unwrap_or(Path::new(""));
    if !dir.as_os_str().is_empty() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut written = Vec::new();
    let groups = throughput_groups(report);
    if !groups.is_empty() {
        let svg = dir.join(THROUGHPUT_SVG);
        charts::bar_chart(
            &svg,
            "Throughput per scenario (median; higher is better)",
            "messages per second delivered (log scale)",
            &groups,
        )?;
        report.preamble.push(format!(
            "- Chart: [throughput per scenario and broker]({THROUGHPUT_SVG}); raw numbers of \
             every run: [{JSONL}]({JSONL})."
        ));
        written.push(svg);
    } else {
        report
            .preamble
            .push(format!("- Raw numbers of every run: [{JSONL}]({JSONL})."));
    }
    let jsonl = dir.join(JSONL);
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    std::fs::write(&jsonl, text).with_context(|| format!("cannot write {}", jsonl.display()))?;
    written.push(jsonl);
    std::fs::write(out, report.to_markdown())
        .with_context(|| format!("cannot write {}", out.display()))?;
    written.insert(0, out.to_path_buf());
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::client::Transport;
    use crate::report::Better;
    use crate::scenarios::FlowResult;
    use crate::{Group, IdleResult, Kind};

    fn scenario() -> Scenario {
        Scenario {
            group: Group::Memory,
            title: "10 idle TCP connections".to_owned(),
            kind: Kind::Memory(10, Transport::Tcp),
            min_runs: 1,
        }
    }

    #[test]
    fn one_json_line_per_broker_with_its_metrics_and_raw_numbers() {
        let idle = IdleResult {
            attempted: 10,
            opened: 10,
            alive: 9,
            rss_before_kib: 1000,
            rss_after_kib: 1100,
            connect_time: Duration::from_millis(250),
            timed_out: false,
            first_error: None,
        };
        let outcomes = vec![
            (
                BrokerKind::Aviary,
                Outcome {
                    measured: Ok(Measured::Idle(idle)),
                    cpu: Some(Duration::from_millis(30)),
                    scenario_cpu: Some(Duration::from_millis(30)),
                },
            ),
            (
                BrokerKind::Aedes,
                Outcome {
                    measured: Ok(Measured::NotOffered("MQTT 3.1.1 only")),
                    cpu: None,
                    scenario_cpu: None,
                },
            ),
            (
                BrokerKind::Rumqttd,
                Outcome {
                    measured: Err("boom".to_owned()),
                    cpu: None,
                    scenario_cpu: None,
                },
            ),
        ];
        let mut row = Row::new(
            "10 idle TCP connections",
            "connections held",
            Better::Higher,
            0,
        );
        row.values.insert(BrokerKind::Aviary, 9.0);
        let id = RunId {
            started: "2026-01-01T00:00:00Z",
            round: 2,
            rounds: 3,
        };
        let lines = json_lines(id, &scenario(), &outcomes, &[row]);
        assert_eq!(lines.len(), 3);
        let parsed: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(lines.iter().all(|l| !l.contains('\n')));
        assert_eq!(parsed[0]["broker"], "aviary");
        assert_eq!(parsed[0]["run"], 2);
        assert_eq!(parsed[0]["group"], "Memory");
        assert_eq!(parsed[0]["metrics"]["connections held"], 9.0);
        assert_eq!(parsed[0]["measured"]["alive"], 9);
        assert_eq!(parsed[0]["broker_cpu_s"], 0.03);
        assert_eq!(parsed[1]["measured"]["not_offered"], "MQTT 3.1.1 only");
        assert_eq!(parsed[1]["metrics"], json!({}));
        assert_eq!(parsed[2]["measured"]["error"], "boom");
    }

    #[test]
    fn flows_record_loss_and_timing() {
        let flow = FlowResult {
            expected: 100,
            delivered: 90,
            sent: 100,
            span: Duration::from_millis(500),
            timed_out: true,
            out_of_order: 0,
            downgraded: 3,
            latencies_ns: vec![1, 2],
            errors: vec!["late".to_owned()],
            broker_cpu: Some(Duration::from_millis(40)),
        };
        let value = measured(&Ok(Measured::Flow(flow)));
        assert_eq!(value["lost"], 10);
        assert_eq!(value["downgraded_to_qos0"], 3);
        assert_eq!(value["span_s"], 0.5);
        assert_eq!(value["latency_samples"], 2);
        assert_eq!(value["errors"][0], "late");
    }

    #[test]
    fn writes_report_jsonl_and_chart_side_by_side() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("RESULTS.md");
        let mut row = Row::new("p2p", THROUGHPUT, Better::Higher, 0);
        row.values.insert(BrokerKind::Aviary, 2000.0);
        row.values.insert(BrokerKind::Mosquitto, 1000.0);
        let mut report = Report {
            rows: vec![row],
            ..Report::default()
        };
        let written = write_all(&out, &mut report, &["{}".to_owned()]).unwrap();
        assert_eq!(
            written,
            [
                out.clone(),
                dir.path().join(THROUGHPUT_SVG),
                dir.path().join(JSONL)
            ]
        );
        let markdown = std::fs::read_to_string(&out).unwrap();
        assert!(markdown.contains("(throughput.svg)"), "{markdown}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(JSONL)).unwrap(),
            "{}\n"
        );
        let svg = std::fs::read_to_string(dir.path().join(THROUGHPUT_SVG)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("Mosquitto"),
            "{svg}"
        );
    }
}
