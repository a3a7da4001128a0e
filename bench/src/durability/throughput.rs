//! QoS 1 throughput to a persistent subscriber: several publishers into one subscriber that
//! keeps a persistent session, is online and reads as fast as it can. With a store, each
//! message is written before its PUBACK and deleted once the subscriber acknowledges it: the
//! queue workload (append, then delete soon after), so the disk writes per message are
//! measured beside the rate.

use std::time::Duration;

use aviary_protocol::QoS;

use super::grid::Grid;
use super::{mib, Contestant, DurabilityArgs};
use crate::broker::{Durability, RunningBroker};
use crate::client::{Endpoint, Transport};
use crate::disk::{DirUsage, IoCounters};
use crate::report::{self, Better};
use crate::scenarios::{self, FlowResult, FlowSpec, Params};

/// What one run of one contestant measured.
#[derive(Debug, Default)]
struct Run {
    flow: FlowResult,
    cpu: Option<Duration>,
    io: Option<IoCounters>,
    usage: Option<DirUsage>,
    error: Option<String>,
}

impl Run {
    /// Disk bytes written per delivered message.
    fn write_bytes_per_message(&self) -> Option<f64> {
        let io = self.io?;
        (self.flow.delivered > 0).then(|| io.write_bytes as f64 / self.flow.delivered as f64)
    }

    /// Broker CPU per delivered message, in µs.
    fn cpu_per_message(&self) -> Option<f64> {
        let cpu = self.cpu?;
        (self.flow.delivered > 0).then(|| cpu.as_secs_f64() * 1e6 / self.flow.delivered as f64)
    }
}

/// The flow: `args.durable_publishers` publishers, one persistent subscriber, QoS 1.
fn spec(args: &DurabilityArgs) -> FlowSpec {
    let publishers = args.durable_publishers.max(1);
    FlowSpec {
        publishers,
        subscribers: 1,
        messages_per_publisher: (args.durable_messages / publishers as u64).max(1),
        qos: QoS::AtLeastOnce,
        pub_transport: Transport::Tcp,
        sub_transport: Transport::Tcp,
        per_publisher_topics: true,
        rate: None,
        record_latency: false,
        persistent_subscribers: true,
    }
}

/// Runs every contestant `repeat` times, alternating, and returns the report section.
pub(super) async fn run(
    args: &DurabilityArgs,
    contestants: &[Contestant],
    params: &Params,
    repeat: usize,
) -> String {
    let flow = spec(args);
    let title = format!(
        "QoS 1 to a persistent subscriber, {}→1, {} msgs",
        flow.publishers,
        report::format_value(Some(flow.expected() as f64), 0)
    );
    let mut runs: Vec<Vec<Run>> = contestants.iter().map(|_| Vec::new()).collect();
    for round in 1..=repeat.max(1) {
        for (contestant, runs) in contestants.iter().zip(&mut runs) {
            eprintln!(
                "==> [durability] {title} on {} (run {round}/{repeat})",
                contestant.label
            );
            let run = run_one(contestant, &flow, params).await;
            eprintln!(
                "    {}/{} delivered, {} msg/s, {} bytes written/msg{}",
                run.flow.delivered,
                run.flow.expected,
                report::format_value(run.flow.rate(), 0),
                report::format_value(run.write_bytes_per_message(), 0),
                run.error
                    .as_ref()
                    .map(|e| format!(", error: {e}"))
                    .unwrap_or_default()
            );
            runs.push(run);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    section(&title, contestants, &runs, repeat)
}

/// Starts the contestant's broker on a fresh data directory and runs the flow against it.
async fn run_one(contestant: &Contestant, flow: &FlowSpec, params: &Params) -> Run {
    let mut broker = match RunningBroker::start(&contestant.spec) {
        Ok(broker) => broker,
        Err(e) => {
            return Run {
                error: Some(format!("{e:#}")),
                ..Run::default()
            }
        }
    };
    let endpoint = Endpoint {
        tcp: broker.mqtt,
        ws_url: broker.ws_url.clone(),
    };
    let (cpu_before, io_before) = (broker.cpu_time().ok(), broker.io().ok());
    let mut run = Run::default();
    match scenarios::run_flow(&endpoint, flow, params).await {
        Ok(flow) => {
            run.error = flow.errors.first().cloned();
            if flow.timed_out {
                run.error.get_or_insert_with(|| "timed out".to_owned());
            }
            run.flow = flow;
        }
        Err(e) => run.error = Some(format!("{e:#}")),
    }
    run.cpu = cpu_before
        .zip(broker.cpu_time().ok())
        .map(|(before, after)| after.saturating_sub(before));
    run.io = io_before
        .zip(broker.io().ok())
        .map(|(before, after)| after.since(before));
    run.usage = broker.data_usage().ok();
    if let Err(e) = broker.check_alive() {
        run.error = Some(format!("broker died: {e:#}"));
    }
    run
}

/// The median over runs of one number.
fn median_of(runs: &[Run], f: impl Fn(&Run) -> Option<f64>) -> Option<f64> {
    let mut values: Vec<f64> = runs.iter().filter_map(f).collect();
    report::median(&mut values)
}

/// The table: one column per contestant, the median of its runs in each row.
fn grid(contestants: &[Contestant], runs: &[Vec<Run>]) -> Grid {
    let mut grid = Grid::new(contestants.iter().map(|c| c.label.clone()));
    let col = |f: &dyn Fn(&Run) -> Option<f64>| -> Vec<Option<f64>> {
        runs.iter().map(|r| median_of(r, f)).collect()
    };
    let (up, down) = (Some(Better::Higher), Some(Better::Lower));
    let rates = col(&|r| r.flow.rate());
    let memory = contestants
        .iter()
        .position(|c| c.spec.durability == Some(Durability::Memory))
        .and_then(|i| rates[i])
        .filter(|m| *m > 0.0);
    let share: Vec<Option<f64>> = rates
        .iter()
        .map(|r| Some(r.as_ref()? / memory? * 100.0))
        .collect();
    grid.numbers("throughput, msg/s", up, 0, rates);
    grid.numbers("% of Aviary memory", up, 0, share);
    grid.numbers("delivered", up, 0, col(&|r| Some(r.flow.delivered as f64)));
    grid.numbers("lost", down, 0, col(&|r| Some(r.flow.lost() as f64)));
    let disorder = col(&|r| Some(r.flow.out_of_order as f64));
    grid.numbers("out of order or duplicated", down, 0, disorder);
    grid.numbers("broker CPU, µs/msg", down, 2, col(&Run::cpu_per_message));
    let written = col(&Run::write_bytes_per_message);
    grid.numbers("disk writes (write_bytes), bytes/msg", down, 0, written);
    let usage = col(&|r| Some(mib(r.usage?.allocated)));
    grid.numbers("data dir at the end (du), MiB", down, 2, usage);
    grid
}

/// The report section: the table, then what qualifies it.
fn section(title: &str, contestants: &[Contestant], runs: &[Vec<Run>], repeat: usize) -> String {
    let mut out = format!("## Durability: {title}\n\n");
    out.push_str(&grid(contestants, runs).to_markdown());
    out.push_str(&format!(
        "\nMedian of {repeat} run(s) per configuration, configurations alternating within each \
         round; each run is a fresh broker process on a fresh data directory. Throughput is \
         counted at the subscriber, first to last delivery; targets: Aviary process ≥ 50 % and \
         fsync ≥ 20 % of Aviary memory. Disk writes: the broker's `write_bytes` in \
         `/proc/PID/io` over the run (connection setup included), divided by deliveries. \
         Mosquitto writes nothing during the run: its snapshot comes at autosave or shutdown.\n"
    ));
    for (contestant, runs) in contestants.iter().zip(runs) {
        for (i, run) in runs.iter().enumerate() {
            if let Some(error) = &run.error {
                out.push_str(&format!(
                    "\n- {}, run {}: {}",
                    contestant.label,
                    i + 1,
                    error.replace('\n', " ")
                ));
            }
        }
    }
    out.push('\n');
    out
}
