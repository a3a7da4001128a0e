//! The payload curve: QoS 1 point-to-point over TCP with payloads of each size, as many
//! messages as a byte budget allows (so a 1 MiB point moves as much data as the others, in a
//! bounded time), at least a hundred so the rate means something; every size on every
//! broker, brokers alternating; the report section and its chart.

use std::time::Duration;

use aviary_protocol::QoS;

use super::{count, died, draw, failed, section, start, GrowthArgs};
use crate::broker::{BrokerSpec, RunningBroker};
use crate::client::Endpoint;
use crate::points::{Column, Measure, PointTable};
use crate::scenarios::{self, FlowResult, FlowSpec, Params};

/// Fewest messages a point sends, whatever the budget.
const MIN_MESSAGES: u64 = 100;

/// How many messages of `size` bytes a point sends: the byte budget's worth, between
/// [`MIN_MESSAGES`] and `max_messages`.
pub(crate) fn messages_for(size: u32, budget_bytes: u64, max_messages: u64) -> u64 {
    (budget_bytes / u64::from(size.max(1))).clamp(MIN_MESSAGES, max_messages.max(MIN_MESSAGES))
}

/// The flow of one point: one publisher, one subscriber, QoS 1.
pub(crate) fn spec(messages: u64) -> FlowSpec {
    FlowSpec::tcp(1, 1, messages, QoS::AtLeastOnce)
}

/// What one run of a payload point measured.
#[derive(Debug, Default)]
pub(crate) struct PayloadResult {
    /// Payload size in bytes.
    pub(crate) size: u32,
    /// The flow.
    pub(crate) flow: FlowResult,
    /// Broker CPU over the run.
    pub(crate) cpu: Option<Duration>,
    /// Why it failed, or what qualifies it.
    pub(crate) error: Option<String>,
}

impl PayloadResult {
    /// Payload megabytes (10^6 bytes) delivered per second.
    pub(crate) fn megabytes_per_second(&self) -> Option<f64> {
        Some(self.flow.rate()? * f64::from(self.size) / 1e6)
    }

    /// Broker CPU per delivered message, in µs.
    pub(crate) fn cpu_per_message(&self) -> Option<f64> {
        let cpu = self.cpu?;
        (self.flow.delivered > 0).then(|| cpu.as_secs_f64() * 1e6 / self.flow.delivered as f64)
    }
}

/// Runs one point: `messages` of `size` bytes against `endpoint`; `broker`, when given, is
/// read for CPU.
pub(crate) async fn run_point(
    endpoint: &Endpoint,
    size: u32,
    messages: u64,
    params: &Params,
    broker: Option<&RunningBroker>,
) -> PayloadResult {
    let params = Params {
        payload: size as usize,
        ..params.clone()
    };
    let cpu_before = broker.and_then(|b| b.cpu_time().ok());
    let mut result = PayloadResult {
        size,
        ..PayloadResult::default()
    };
    match scenarios::run_flow(endpoint, &spec(messages), &params).await {
        Ok(flow) => {
            if flow.timed_out {
                result.error = Some("timed out".to_owned());
            }
            if let Some(first) = flow.errors.first() {
                result.error.get_or_insert_with(|| first.clone());
            }
            result.flow = flow;
        }
        Err(e) => result.error = Some(format!("{e:#}")),
    }
    result.cpu = cpu_before
        .zip(broker.and_then(|b| b.cpu_time().ok()))
        .map(|(before, after)| after.saturating_sub(before));
    result
}

/// The payload table's metric columns, in [`run_payload_point`]'s order.
const PAYLOAD_COLUMNS: [Column; 6] = [
    Column {
        name: "messages",
        better: None,
        decimals: 0,
    },
    Column::up("throughput, msg/s", 0),
    Column::up("throughput, MB/s", 1),
    Column::down("broker CPU, µs/msg", 2),
    Column::up("delivered", 0),
    Column::down("lost", 0),
];

/// One run of one payload point on a fresh broker.
async fn run_payload_point(
    spec: &BrokerSpec,
    size: u32,
    messages: u64,
    params: &Params,
) -> Measure {
    let params = &params.for_brokers();
    let (mut broker, endpoint) = match start(spec) {
        Ok(started) => started,
        Err(e) => return failed(PAYLOAD_COLUMNS.len(), e),
    };
    let guard = params.timeout + Duration::from_secs(60);
    let run = run_point(&endpoint, size, messages, params, Some(&broker));
    let Ok(mut result) = tokio::time::timeout(guard, run).await else {
        return failed(
            PAYLOAD_COLUMNS.len(),
            format!("did not finish within {guard:?}"),
        );
    };
    if let Some(e) = died(&mut broker) {
        result.error = Some(e);
    }
    Measure {
        values: vec![
            Some(messages as f64),
            result.flow.rate(),
            result.megabytes_per_second(),
            result.cpu_per_message(),
            Some(result.flow.delivered as f64),
            Some(result.flow.lost() as f64),
        ],
        note: result.error,
    }
}

/// The payload curve: every size on every broker, `repeat` rounds; the section.
pub(super) async fn curve(
    args: &GrowthArgs,
    specs: &[BrokerSpec],
    params: &Params,
    repeat: usize,
) -> String {
    let mut table = PointTable::new(&["Payload", "Broker"], &PAYLOAD_COLUMNS);
    let mut series: Vec<(String, Vec<(f64, f64)>)> = specs
        .iter()
        .map(|spec| (spec.kind.to_string(), Vec::new()))
        .collect();
    for &size in &args.payload_sizes {
        let messages = messages_for(size, args.payload_budget, args.payload_messages);
        let mut runs: Vec<Vec<Measure>> = vec![Vec::new(); specs.len()];
        for round in 1..=repeat.max(1) {
            for (s, spec) in specs.iter().enumerate() {
                eprintln!(
                    "==> [growth] {} payloads, {} QoS 1 msgs on {} (run {round}/{repeat})",
                    size_label(size),
                    count(messages as usize),
                    spec.kind
                );
                let measure = run_payload_point(spec, size, messages, params).await;
                eprintln!("    {}", measure.summary(&PAYLOAD_COLUMNS));
                runs[s].push(measure);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        for (s, spec) in specs.iter().enumerate() {
            let keys = vec![size_label(size), spec.kind.to_string()];
            let medians = table.push(keys, &runs[s]);
            series[s].1.extend(medians[2].map(|v| (f64::from(size), v)));
        }
    }
    let charts = [draw(
        &args
            .chart_dir
            .clone()
            .unwrap_or_default()
            .join("growth-payload.svg"),
        "QoS 1 point-to-point throughput against payload size",
        "payload, bytes",
        "MB/s (payload bytes, 10^6)",
        series,
        true,
    )];
    let intro = format!(
        "Each run: a fresh broker, one publisher and one subscriber over TCP, QoS 1, window \
         {window}; messages per point: {budget} MiB of payload, between 100 and {max}. \
         Throughput is counted at the subscriber, first to last delivery; MB/s counts payload \
         bytes (10^6 B). Median of {repeat} run(s), brokers alternating per point.",
        window = params.window,
        budget = args.payload_budget >> 20,
        max = count(args.payload_messages as usize),
    );
    section(
        "Growth: throughput against payload size",
        &intro,
        &table,
        &charts,
    )
}

/// A payload size for the table: `16 B`, `4 KiB`, `1 MiB`, or bytes when not a round size.
fn size_label(size: u32) -> String {
    match size {
        s if s >= 1 << 20 && s % (1 << 20) == 0 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 && s % (1 << 10) == 0 => format!("{} KiB", s >> 10),
        s => format!("{} B", count(s as usize)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::TestBroker;

    #[test]
    fn the_byte_budget_sets_the_count_within_bounds() {
        let budget = 256 << 20;
        assert_eq!(messages_for(16, budget, 20_000), 20_000);
        assert_eq!(messages_for(65_536, budget, 20_000), 4_096);
        assert_eq!(messages_for(1 << 20, budget, 20_000), 256);
        assert_eq!(messages_for(1 << 20, 1 << 20, 20_000), 100);
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(size_label(16), "16 B");
        assert_eq!(size_label(4_096), "4 KiB");
        assert_eq!(size_label(1 << 20), "1 MiB");
        assert_eq!(size_label(1_500), "1,500 B");
    }

    /// 16 B and 64 KiB payloads, a few hundred messages each: all delivered, none lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn smoke_small_and_large_payloads_all_arrive() {
        let broker = TestBroker::start().await;
        let params = crate::testkit::smoke_params(16);
        for size in [16, 65_536] {
            let result = run_point(&broker.endpoint, size, 300, &params, None).await;
            assert_eq!(result.error, None, "{size} B");
            assert_eq!(result.flow.delivered, 300, "{size} B");
            assert_eq!(result.flow.lost(), 0);
            assert_eq!(result.flow.out_of_order, 0);
        }
    }
}
