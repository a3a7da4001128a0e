//! Slow consumer (issue 13): N subscribers on one topic, one of which stops reading (its TCP
//! connection stays open, its socket is never read); the others' throughput must stay within
//! 10 % of a baseline run without the slow one.
//!
//! The slow subscriber connects with a 4 KiB receive buffer, so it pushes back on the broker
//! after a few KiB instead of after the megabytes loopback autotuning would take in, and the
//! load is far more than both sockets' buffers can hold (50,000 messages of 1 KiB by
//! default): what the broker does with the backlog (queue it, bounded, or drop it) decides
//! whether the others notice. Every broker in `--brokers` runs the baseline and the slow run
//! in each round, each in a fresh process; `--only slow-consumer`.

use std::time::Duration;

use aviary_protocol::QoS;

use crate::broker::{BrokerSpec, RunningBroker};
use crate::client::{self, Endpoint, Transport};
use crate::points::{Column, Measure, PointTable};
use crate::report::format_value;
use crate::scenarios::{self, client_options, FlowResult, FlowSpec, Params};

/// The topic [`scenarios::run_flow`] publishes on when each publisher does not have its own.
const FLOW_TOPIC: &str = "bench/flow";

/// The slow subscriber's socket receive buffer, in bytes.
const SLOW_RECV_BUFFER: u32 = 4 * 1024;

/// Sizes of the slow-consumer scenario.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SlowArgs {
    /// Slow consumer: subscribers on the topic, one of which stops reading (at least 2).
    #[arg(long, default_value_t = 5)]
    pub(crate) slow_subscribers: usize,
    /// Slow consumer: messages the one publisher sends.
    #[arg(long, default_value_t = 50_000)]
    pub(crate) slow_messages: u64,
    /// Slow consumer: payload size in bytes.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(16..=65536))]
    pub(crate) slow_payload: u32,
    /// Slow consumer: QoS levels to run, publications and subscriptions alike.
    #[arg(long, value_delimiter = ',', default_values_t = [0, 1],
          value_parser = clap::value_parser!(u8).range(0..=1))]
    pub(crate) slow_qos: Vec<u8>,
}

/// The flow of the readers: one publisher, `readers` subscribers reading as fast as they can.
fn spec(readers: usize, messages: u64, qos: QoS) -> FlowSpec {
    FlowSpec {
        publishers: 1,
        subscribers: readers,
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

/// Runs the readers' flow against `endpoint`, with a subscriber that never reads beside
/// them when `with_slow`; what the readers received.
pub(crate) async fn run_point(
    endpoint: &Endpoint,
    readers: usize,
    messages: u64,
    qos: QoS,
    with_slow: bool,
    params: &Params,
) -> anyhow::Result<FlowResult> {
    let slow = if with_slow {
        let mut options = client_options(params, "bench-slow".to_owned(), None);
        options.recv_buffer = Some(SLOW_RECV_BUFFER);
        let (mut reader, mut writer) = client::connect(endpoint, Transport::Tcp, &options).await?;
        client::subscribe(&mut reader, &mut writer, FLOW_TOPIC, qos).await?;
        // Held, never read, until the readers are done.
        Some((reader, writer))
    } else {
        None
    };
    let flow = scenarios::run_flow(endpoint, &spec(readers, messages, qos), params).await;
    drop(slow);
    flow
}

/// One flow's outcome: what the readers received and the broker's RSS at the end, or why
/// there is nothing.
type Run = Result<(FlowResult, Option<u64>), String>;

/// The readers' flow of a run that finished.
fn flow_of(run: &Run) -> Option<&FlowResult> {
    run.as_ref().ok().map(|(flow, _)| flow)
}

/// The table's metric columns, in [`measure`]'s order.
const COLUMNS: [Column; 6] = [
    Column::up("baseline, msg/s", 0),
    Column::up("with a slow one, msg/s", 0),
    Column::up("with / baseline, %", 1),
    Column::down("lost, baseline", 0),
    Column::down("lost, with a slow one", 0),
    Column::down("broker RSS after the slow run, MiB", 1),
];

/// One run of one flow on a fresh broker: what the readers got, the broker's RSS at the end,
/// or why there is nothing.
async fn run_once(
    spec: &BrokerSpec,
    args: &SlowArgs,
    qos: QoS,
    with_slow: bool,
    params: &Params,
) -> Run {
    let mut broker = RunningBroker::start(spec).map_err(|e| format!("{e:#}"))?;
    let endpoint = Endpoint {
        tcp: broker.mqtt,
        ws_url: broker.ws_url.clone(),
    };
    let readers = args.slow_subscribers.max(2) - 1;
    let run = run_point(
        &endpoint,
        readers,
        args.slow_messages,
        qos,
        with_slow,
        params,
    );
    let guard = params.timeout + Duration::from_secs(60);
    let flow = match tokio::time::timeout(guard, run).await {
        Ok(Ok(flow)) => flow,
        Ok(Err(e)) => return Err(format!("{e:#}")),
        Err(_) => return Err(format!("did not finish within {guard:?}")),
    };
    let rss = broker.rss_kib().ok();
    broker
        .check_alive()
        .map_err(|e| format!("broker died: {e:#}"))?;
    Ok((flow, rss))
}

/// One round: the baseline, then the run with a slow subscriber, as table values.
fn measure(baseline: &Run, slow: &Run) -> Measure {
    let base_rate = flow_of(baseline).and_then(FlowResult::rate);
    let slow_rate = flow_of(slow).and_then(FlowResult::rate);
    let mut notes = Vec::new();
    for (name, run) in [("baseline", baseline), ("with a slow one", slow)] {
        match run {
            Err(e) => notes.push(format!("{name}: {e}")),
            Ok((flow, _)) => {
                if flow.timed_out {
                    notes.push(format!("{name}: timed out"));
                }
                if let Some(e) = flow.errors.first() {
                    notes.push(format!("{name}: {e}"));
                }
            }
        }
    }
    Measure {
        values: vec![
            base_rate,
            slow_rate,
            base_rate.zip(slow_rate).map(|(b, s)| s / b * 100.0),
            flow_of(baseline).map(|f| f.lost() as f64),
            flow_of(slow).map(|f| f.lost() as f64),
            slow.as_ref()
                .ok()
                .and_then(|(_, rss)| *rss)
                .map(|kib| kib as f64 / 1024.0),
        ],
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    }
}

/// Runs every QoS level on every broker, `repeat` rounds; returns the report section.
pub(crate) async fn run(
    args: &SlowArgs,
    specs: &[BrokerSpec],
    params: &Params,
    repeat: usize,
) -> String {
    let params = Params {
        payload: args.slow_payload as usize,
        ..params.clone()
    };
    let mut table = PointTable::new(&["QoS", "Broker"], &COLUMNS);
    let mut verdicts = Vec::new();
    for &level in &args.slow_qos {
        let qos = if level == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        let mut runs: Vec<Vec<Measure>> = vec![Vec::new(); specs.len()];
        for round in 1..=repeat.max(1) {
            for (s, spec) in specs.iter().enumerate() {
                eprintln!(
                    "==> [slow consumer] QoS {level}, {} subscribers on {} (run {round}/{repeat})",
                    args.slow_subscribers.max(2),
                    spec.kind
                );
                let baseline = run_once(spec, args, qos, false, &params).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
                let slow = run_once(spec, args, qos, true, &params).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
                let measure = measure(&baseline, &slow);
                eprintln!("    {}", measure.summary(&COLUMNS));
                runs[s].push(measure);
            }
        }
        for (s, spec) in specs.iter().enumerate() {
            let medians = table.push(vec![level.to_string(), spec.kind.to_string()], &runs[s]);
            verdicts.push(verdict(&spec.kind.to_string(), level, medians[2]));
        }
    }
    let readers = args.slow_subscribers.max(2) - 1;
    format!(
        "## Slow consumer\n\nEach run: a fresh broker, one publisher sending {messages} \
         messages of {payload} B on one topic to {readers} subscribers that read as fast as \
         they can; in the slow run a further subscriber (4 KiB socket receive buffer) \
         subscribes first and then never reads its socket, keeping the connection open. \
         Throughput is the readers' deliveries per second, first to last delivery, with their \
         loss beside it; the bar: with a slow one ≥ 90 % of the baseline. Median of {repeat} \
         round(s), each a baseline and a slow run per broker, brokers alternating.\n\n{}\n{}\n",
        table.to_markdown(),
        verdicts.join("\n"),
        messages = format_value(Some(args.slow_messages as f64), 0),
        payload = args.slow_payload,
    )
}

/// Whether the readers kept within 10 % of their baseline, in a line.
fn verdict(broker: &str, qos: u8, ratio_percent: Option<f64>) -> String {
    match ratio_percent {
        Some(r) if r >= 90.0 => {
            format!("- {broker}, QoS {qos}: {r:.1} % of baseline: within 10 %.")
        }
        Some(r) => format!("- {broker}, QoS {qos}: {r:.1} % of baseline: NOT within 10 %."),
        None => format!("- {broker}, QoS {qos}: not measured (see the notes)."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{smoke_params, TestBroker};

    #[test]
    fn the_verdict_names_the_bar() {
        assert!(verdict("Aviary", 1, Some(95.0)).ends_with("within 10 %."));
        assert!(verdict("Aviary", 1, Some(80.0)).contains("NOT"));
        assert!(verdict("Aviary", 0, None).contains("not measured"));
    }

    /// Three subscribers, one of them never reading: the two readers get every message,
    /// in order, none lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn smoke_readers_get_everything_beside_a_slow_one() {
        let broker = TestBroker::start().await;
        let params = smoke_params(1024);
        let flow = run_point(&broker.endpoint, 2, 5_000, QoS::AtLeastOnce, true, &params)
            .await
            .unwrap();
        assert_eq!(flow.expected, 10_000);
        assert_eq!(flow.delivered, 10_000);
        assert_eq!(flow.lost(), 0);
        assert_eq!(flow.out_of_order, 0);
        assert!(flow.errors.is_empty(), "{:?}", flow.errors);
    }
}
