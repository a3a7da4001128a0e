//! Restart time with a full store: retained messages and messages queued for an offline
//! persistent subscriber are filled (bounded, pipelined QoS 1), the broker is stopped with
//! SIGTERM, or SIGKILL for a crash and the journal replay it costs, and started again on the
//! same data directory. Timed from the spawn to Aviary's `listening` line (printed once the
//! store is loaded and the listeners bound) and to the first accepted TCP connection; then
//! a client counts what came back: the persistent subscriber resumes and takes its queue, and
//! a fresh subscriber takes every retained message.

use std::time::Duration;

use super::fill::{self, Count, Counted, Fill, Filled};
use super::grid::Grid;
use super::{aviary_metrics, mib, Contestant, DurabilityArgs};
use crate::broker::{Restart, RunningBroker, Stop};
use crate::client::Endpoint;
use crate::disk::{DirUsage, IoCounters};
use crate::report::{self, Better};
use crate::scenarios::Params;

/// The persistent subscriber whose queue is filled while it is away.
const SUBSCRIBER: &str = "durable-sub";

/// Everything one restart measured.
#[derive(Debug, Default)]
struct Outcome {
    queued_fill: Filled,
    retained_fill: Filled,
    fill_io: Option<IoCounters>,
    usage_full: Option<DirUsage>,
    rss_full_kib: Option<u64>,
    restart: Option<Restart>,
    rss_restarted_kib: Option<u64>,
    /// Aviary's `/metrics` right after the restart: retained, queued.
    metrics: Option<(Option<f64>, Option<f64>)>,
    queue: Option<Counted>,
    retained: Option<Counted>,
    error: Option<String>,
}

/// Runs a restart after SIGTERM and one after SIGKILL for every contestant, each on a
/// freshly filled broker; returns the report section.
pub(super) async fn run(
    args: &DurabilityArgs,
    contestants: &[Contestant],
    params: &Params,
) -> String {
    let mut columns = Vec::new();
    let mut outcomes = Vec::new();
    for contestant in contestants {
        for stop in [Stop::Term, Stop::Kill] {
            let label = format!("{}, {}", contestant.label, stop_name(stop));
            eprintln!(
                "==> [durability] restart with {} retained + {} queued: {label}",
                count(args.restart_retained),
                count(args.restart_queued)
            );
            let mut outcome = Outcome::default();
            if let Err(e) = run_one(args, contestant, stop, params, &mut outcome).await {
                outcome.error = Some(format!("{e:#}"));
            }
            eprintln!("    {}", summary(&outcome));
            columns.push(label);
            outcomes.push(outcome);
        }
    }
    section(args, params, columns, &outcomes)
}

fn stop_name(stop: Stop) -> &'static str {
    match stop {
        Stop::Term => "SIGTERM",
        Stop::Kill => "kill -9",
    }
}

fn count(n: u64) -> String {
    report::format_value(Some(n as f64), 0)
}

/// One fill, stop, start and count; what was measured goes into `out` as it comes, so a
/// failure late keeps what came before.
async fn run_one(
    args: &DurabilityArgs,
    contestant: &Contestant,
    stop: Stop,
    params: &Params,
    out: &mut Outcome,
) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(args.fill_timeout_secs.max(1));
    let mut broker = RunningBroker::start(&contestant.spec)?;
    let endpoint = |broker: &RunningBroker| Endpoint {
        tcp: broker.mqtt,
        ws_url: broker.ws_url.clone(),
    };
    let io_before = broker.io().ok();
    fill::leave_persistent_session(&endpoint(&broker), params, SUBSCRIBER, "queued/#").await?;
    let queued = Fill {
        prefix: "queued",
        messages: args.restart_queued,
        publishers: args.fill_publishers,
        retain: false,
    };
    out.queued_fill = fill::fill(&endpoint(&broker), params, &queued, timeout).await?;
    let retained = Fill {
        prefix: "retained",
        messages: args.restart_retained,
        publishers: args.fill_publishers,
        retain: true,
    };
    out.retained_fill = fill::fill(&endpoint(&broker), params, &retained, timeout).await?;
    out.fill_io = io_before
        .zip(broker.io().ok())
        .map(|(before, after)| after.since(before));
    out.usage_full = broker.data_usage().ok();
    out.rss_full_kib = broker.rss_kib().ok();

    out.restart = Some(broker.restart(stop, timeout)?);
    out.rss_restarted_kib = broker.rss_kib().ok();
    if !broker.kind.is_peer() {
        let names = ["aviary_retained_messages", "aviary_queued_messages"];
        let values = aviary_metrics(broker.http, &names).await?;
        out.metrics = Some((values[0], values[1]));
    }
    let resume = Count {
        client_id: SUBSCRIBER,
        resume: true,
        filter: None,
        expected: out.queued_fill.acked,
        publishers: args.fill_publishers,
    };
    out.queue = Some(fill::count(&endpoint(&broker), params, resume, timeout).await?);
    let take_retained = Count {
        client_id: "count-retained",
        resume: false,
        filter: Some("retained/#"),
        expected: out.retained_fill.acked,
        publishers: args.fill_publishers,
    };
    out.retained = Some(fill::count(&endpoint(&broker), params, take_retained, timeout).await?);
    broker.check_alive()
}

/// One progress line.
fn summary(o: &Outcome) -> String {
    let secs = |d: Option<Duration>| {
        d.map_or_else(|| "–".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()))
    };
    format!(
        "filled {} queued + {} retained; restart: listening {}, accepting {}; got back {} \
         queued, {} retained{}",
        o.queued_fill.acked,
        o.retained_fill.acked,
        secs(o.restart.and_then(|r| r.listening)),
        secs(o.restart.map(|r| r.accepting)),
        o.queue.as_ref().map_or(0, |c| c.stats.count),
        o.retained.as_ref().map_or(0, |c| c.stats.count),
        o.error
            .as_ref()
            .map(|e| format!("; error: {e}"))
            .unwrap_or_default()
    )
}

/// One number per column.
fn col(outcomes: &[Outcome], f: impl Fn(&Outcome) -> Option<f64>) -> Vec<Option<f64>> {
    outcomes.iter().map(f).collect()
}

fn secs(d: Duration) -> Option<f64> {
    Some(d.as_secs_f64())
}

/// The rows about filling the broker and what it took.
fn fill_rows(grid: &mut Grid, outcomes: &[Outcome]) {
    let (up, down) = (Some(Better::Higher), Some(Better::Lower));
    let rate = |f: fn(&Outcome) -> &Filled| col(outcomes, move |o| f(o).rate());
    grid.numbers("fill: queued, msg/s", up, 0, rate(|o| &o.queued_fill));
    grid.numbers("fill: retained, msg/s", up, 0, rate(|o| &o.retained_fill));
    let per_message = col(outcomes, |o| {
        let acked = o.queued_fill.acked + o.retained_fill.acked;
        let written = o.fill_io?.write_bytes;
        (acked > 0).then(|| written as f64 / acked as f64)
    });
    grid.numbers("fill: disk writes, bytes/msg", down, 0, per_message);
    let usage = col(outcomes, |o| Some(mib(o.usage_full?.allocated)));
    grid.numbers("data dir when full (du), MiB", down, 1, usage);
    let journal = col(outcomes, |o| Some(mib(o.usage_full?.journal_allocated)));
    grid.numbers("of which journal, MiB", down, 1, journal);
    let rss = col(outcomes, |o| Some(o.rss_full_kib? as f64 / 1024.0));
    grid.numbers("RSS when full, MiB", down, 0, rss);
}

/// The rows about the restart and what came back.
fn restart_rows(grid: &mut Grid, outcomes: &[Outcome]) {
    let down = Some(Better::Lower);
    let stopped = col(outcomes, |o| secs(o.restart?.stopped_in));
    grid.numbers("stop: signal to exit, s", down, 2, stopped);
    let usage = col(outcomes, |o| Some(mib(o.restart?.stopped_usage?.allocated)));
    grid.numbers("data dir once stopped (du), MiB", down, 1, usage);
    let listening = col(outcomes, |o| secs(o.restart?.listening?));
    grid.numbers("restart: spawn to `listening` line, s", down, 2, listening);
    let accepting = col(outcomes, |o| secs(o.restart?.accepting));
    grid.numbers("restart: spawn to accepting TCP, s", down, 2, accepting);
    let cpu = col(outcomes, |o| secs(o.restart?.ready_cpu?));
    grid.numbers("restart: CPU time until ready, s", down, 2, cpu);
    let rss = col(outcomes, |o| Some(o.rss_restarted_kib? as f64 / 1024.0));
    grid.numbers("RSS after restart, MiB", down, 0, rss);
    grid.numbers(
        "`/metrics` retained after restart",
        None,
        0,
        col(outcomes, |o| o.metrics?.0),
    );
    grid.numbers(
        "`/metrics` queued after restart",
        None,
        0,
        col(outcomes, |o| o.metrics?.1),
    );
    grid.text(
        "session present on resume",
        outcomes.iter().map(|o| match &o.queue {
            Some(c) => if c.session_present { "yes" } else { "no" }.to_owned(),
            None => "–".to_owned(),
        }),
    );
    let got = |counted: &Option<Counted>, acked: u64| {
        let back = counted.as_ref().map_or(0, |c| c.stats.count);
        format!("{} / {}", count(back), count(acked))
    };
    let queued = outcomes.iter().map(|o| got(&o.queue, o.queued_fill.acked));
    grid.text("queued: got back / acked", queued);
    let disorder = col(outcomes, |o| {
        Some(o.queue.as_ref()?.stats.out_of_order as f64)
    });
    grid.numbers("queued: out of order or duplicated", down, 0, disorder);
    let retained = outcomes
        .iter()
        .map(|o| got(&o.retained, o.retained_fill.acked));
    grid.text("retained: got back / acked", retained);
    let taken = col(outcomes, |o| secs(o.retained.as_ref()?.elapsed?));
    grid.numbers("retained: all to a new subscriber, s", down, 2, taken);
}

/// The report section.
fn section(
    args: &DurabilityArgs,
    params: &Params,
    columns: Vec<String>,
    outcomes: &[Outcome],
) -> String {
    let mut grid = Grid::new(columns.clone());
    fill_rows(&mut grid, outcomes);
    restart_rows(&mut grid, outcomes);
    let mut out = format!(
        "## Durability: restart with {} retained and {} queued messages\n\n",
        count(args.restart_retained),
        count(args.restart_queued)
    );
    out.push_str(&grid.to_markdown());
    out.push_str(&format!(
        "\nEach column is its own broker process, filled from empty: an offline persistent \
         subscriber (`{SUBSCRIBER}`, `queued/#` at QoS 1) gets the queued messages, and each \
         retained message has its own topic `retained/P/N`; {} publishers keep {} QoS 1 \
         messages each unacknowledged, {}-byte payloads. Then the broker is stopped (SIGTERM: \
         graceful; kill -9: a crash) and started on the same data directory. Target: under \
         5 s to accepting connections. \"CPU time until ready\": user + system time of the \
         new process (the kernel's CPU clock of the process) when Aviary printed its \
         `listening` line or Mosquitto first accepted a connection; it counts no time spent \
         waiting for a core that other load holds, so it varies less than the wall-clock \
         times (a busy machine still slows it: caches and SMT siblings are shared). \"Got \
         back\" counts deliveries after the restart: the \
         subscriber resumes its session, then a new one subscribes to `retained/#` at QoS 1. \
         Disk writes: the broker's `write_bytes` in `/proc/PID/io` during the fill, divided \
         by the messages acknowledged.\n",
        args.fill_publishers, params.window, params.payload,
    ));
    for (column, outcome) in columns.iter().zip(outcomes) {
        let errors = [
            ("queued fill", &outcome.queued_fill.error),
            ("retained fill", &outcome.retained_fill.error),
            ("run", &outcome.error),
        ];
        for (what, error) in errors {
            if let Some(error) = error {
                let error = error.replace('\n', " ");
                out.push_str(&format!("\n- {column}, {what}: {error}"));
            }
        }
    }
    out.push('\n');
    out
}
