//! From measurements to the report: the progress line of each run, the table rows of each
//! scenario (with what qualifies them: loss, timeouts, errors, loads a broker does not offer),
//! and the lines around the table.

use crate::broker::{self, BrokerKind, BrokerSpec};
use crate::report::{self, percentile, Better, Goal, Row};
use crate::scenarios::Params;
use crate::{Cli, Kind, Measured, Outcome, Scenario};

/// The metric of every flow's first row, which the chart draws.
pub(crate) const THROUGHPUT: &str = "throughput, msg/s";

/// One progress line for stderr.
pub(crate) fn summary(outcome: &Outcome) -> String {
    match &outcome.measured {
        Err(e) => format!("error: {e}"),
        Ok(Measured::NotOffered(why)) => format!("not offered: {why}"),
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
pub(crate) fn rows(scenario: &Scenario, outcomes: &[(BrokerKind, Outcome)]) -> Vec<Row> {
    let row =
        |metric: &str, better: Better, decimals: usize, f: &dyn Fn(&Outcome) -> Option<f64>| {
            let mut row = Row::new(&scenario.title, metric, better, decimals);
            row.values = outcomes
                .iter()
                .filter_map(|(kind, outcome)| Some((*kind, f(outcome)?)))
                .collect();
            row
        };
    let flow = |o: &Outcome| match &o.measured {
        Ok(Measured::Flow(flow)) => Some(flow.clone()),
        _ => None,
    };
    // Memory with no connection open measures nothing: no row should make it a winner.
    let idle = |o: &Outcome| match &o.measured {
        Ok(Measured::Idle(idle)) if idle.opened > 0 => {
            Some((idle.clone(), idle.kib_per_connection()))
        }
        _ => None,
    };
    let mut rows = match &scenario.kind {
        Kind::Flow(_) => vec![
            Row {
                goal: Goal::BestPeerAndTwiceMosquitto,
                ..row(THROUGHPUT, Better::Higher, 0, &|o| flow(o)?.rate())
            },
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
        Kind::Memory(..) | Kind::Spread(_) => vec![
            row("RSS per idle connection, bytes", Better::Lower, 0, &|o| {
                idle(o).and_then(|i| i.1).map(|kib| kib * 1024.0)
            }),
            row("RSS per idle connection, KiB", Better::Lower, 2, &|o| {
                idle(o)?.1
            }),
            row("RSS with all connected, MiB", Better::Lower, 1, &|o| {
                Some(idle(o)?.0.rss_after_kib as f64 / 1024.0)
            }),
            Row {
                // Context for the rows above, not a contest: a Node.js process starts bigger
                // than a C one whatever it does with connections.
                goal: Goal::None,
                ..row("RSS at start, MiB", Better::Lower, 1, &|o| {
                    Some(idle(o)?.0.rss_before_kib as f64 / 1024.0)
                })
            },
            row("connect rate, conn/s", Better::Higher, 0, &|o| {
                let summary = idle(o)?.0;
                let secs = summary.connect_time.as_secs_f64();
                (secs > 0.0).then(|| summary.opened as f64 / secs)
            }),
            row("connections held", Better::Higher, 0, &|o| {
                Some(idle(o)?.0.alive as f64)
            }),
        ],
        Kind::Held(_) => vec![row(
            "connections held",
            Better::Higher,
            0,
            &|o| match &o.measured {
                Ok(Measured::Idle(idle)) => Some(idle.alive as f64),
                _ => None,
            },
        )],
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
            Ok(Measured::NotOffered(why)) => mine.push(format!("not offered ({why})")),
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
                if flow.downgraded > 0 {
                    mine.push(format!("{} delivered at QoS 0, not 1", flow.downgraded));
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
pub(crate) fn preamble(
    cli: &Cli,
    specs: &[BrokerSpec],
    params: &Params,
    load_before: &str,
) -> Vec<String> {
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let mut lines = Vec::new();
    if cli.quick {
        lines.push(
            "- **Quick run** (`--quick`): few messages and connections, one run each, to see \
             that everything works; too small and too noisy to quote."
                .to_owned(),
        );
    }
    lines.push(format!(
        "- Run: {date} on {}; load average before {load_before}, after {}.",
        machine(),
        load_average()
    ));
    let args: Vec<String> = std::env::args().skip(1).collect();
    lines.push(format!("- Command: `aviary-bench {}`.", args.join(" ")));
    for spec in specs {
        lines.push(format!(
            "- {}: `{}` ({}).",
            spec.kind,
            spec.binary.display(),
            broker::version_line(spec)
        ));
    }
    lines.push(format!(
        "- Load: {} MQTT {}, {}-byte payloads, publisher window {} unacked QoS 1, brokers' \
         in-flight window {} and queue {} messages per client (where a broker has the setting; \
         see the notes below the table), scenario timeout {} s.",
        runs_line(cli),
        params.version,
        params.payload,
        params.window,
        cli.inflight,
        report::format_value(Some(cli.max_queued as f64), 0),
        params.timeout.as_secs(),
    ));
    lines
}

/// How many runs each number is the median of: `--repeat`, and more for the scenarios a
/// target rests on.
fn runs_line(cli: &Cli) -> String {
    let at_least = |runs: usize| runs.max(cli.repeat.max(1));
    let base = match cli.repeat.max(1) {
        1 => "one run per broker and scenario".to_owned(),
        n => format!("median of {n} runs per broker and scenario, brokers taking turns"),
    };
    format!(
        "{base} (the median of {} for QoS 0 fan-in and fan-out, which the CPU target rests on, \
         and of {} for latency);",
        at_least(cli.cpu_repeat),
        at_least(cli.latency_repeat)
    )
}

/// The CPU model, core count and memory, from `/proc`.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name")?.split_once(':'))
        .map_or("unknown CPU", |(_, model)| model.trim())
        .to_owned();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kib: f64 = m
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some(format!(", {:.1} GiB RAM", kib / 1024.0 / 1024.0))
        })
        .unwrap_or_default();
    format!("{cores} cores ({model}){memory}")
}

/// How to read the table.
pub(crate) fn footnotes() -> Vec<String> {
    [
        "↑: higher is better, so a ratio above 1 favours Aviary; ↓: lower is better, a ratio \
         below 1 favours Aviary. The best peer's value is in bold.",
        "Aviary / best peer divides by the best value of any peer in the row; Aviary / \
         Mosquitto by the better of Mosquitto's two settings. Target: ✓ when Aviary is at \
         least as good as the best peer, and for throughput also at least twice Mosquitto; – \
         when there is nothing to compare or the row is context only.",
        "Mosquitto runs twice: with `set_tcp_nodelay true` (column Mosquitto; Aviary sets \
         TCP_NODELAY on every socket) and with its default, Nagle's algorithm on (column \
         Mosquitto (Nagle)), because either may be the faster one depending on the scenario.",
        "Limits: Aviary and Mosquitto get the same in-flight window and queue length. rumqttd \
         0.20 has a fixed outgoing window of 100, no per-client queue (a commit log per topic \
         instead) and never sets TCP_NODELAY (bench/peers/rumqttd.toml). Aedes has no \
         per-client window or queue and sets TCP_NODELAY (bench/peers/aedes/server.js). Every \
         client announces a keep alive of 30 minutes: armed, as devices' are, so each broker \
         keeps what it needs to enforce it, and longer than any scenario (no PINGREQ needed). \
         \"not offered\": the broker cannot serve that load (rumqttd's WebSocket listener and \
         Aedes speak MQTT 3.1.1 only).",
        "Each scenario runs on a fresh broker process, one broker after the other, never two at \
         once. The load generator (this program: aviary-protocol over tokio) shares the \
         machine's cores with the broker, the same for all; Mosquitto and Aedes (Node.js) are \
         single-threaded, rumqttd runs a router thread and a thread per listener, Aviary a \
         multi-threaded tokio runtime.",
        "Throughput is counted at the subscribers, from the first delivery to the last; \
         broker CPU is user + system time of the broker process over the message flow, from \
         when every client is connected and subscribed to the last delivery, divided by \
         deliveries (for the idle scenarios: over the whole scenario). Connection setup is \
         left out since 2026-12-05: in a fan-in of 100,000 messages its 51 connections, \
         opened one after the other, cost Aviary about 4 ms, nearly a tenth of the run. \
         results.jsonl keeps both: `broker_cpu_s` and, with setup, `scenario_cpu_s`.",
        "Latency: publish time to receive time, both from this process's monotonic clock, \
         nearest-rank percentiles.",
        "Memory: broker RSS (VmRSS) with the idle connections open (upgraded, for WebSocket, \
         and past CONNACK) minus RSS before, per connection. Connections held: connections \
         that still answered PINGREQ after all were opened.",
        "Aviary baseline (with `--baseline PATH`): another Aviary build, say from before a \
         change, started and measured exactly like Aviary, right after it.",
        "All traffic goes to 127.0.0.1. Mosquitto 2.0.11's WebSocket listener \
         (libwebsockets) binds every interface whatever address its config names, so the \
         brokers get ports below the kernel's ephemeral range.",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The 1, 5 and 15 minute load averages, to judge how quiet the machine was.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}
