//! The routing-cost curve: every subscription count and filter shape on every broker, a
//! fresh broker per run, brokers alternating within each round; the report section and the
//! two charts (CPU per publish, throughput).

use std::time::Duration;

use super::subscriptions::{self, Filters, Point, PointResult};
use super::{count, died, draw, failed, section, start, subscription_points, GrowthArgs};
use crate::broker::BrokerSpec;
use crate::points::{Column, Measure, PointTable};
use crate::scenarios::Params;

/// The subscriptions table's metric columns, in [`measure_point`]'s order.
const SUBSCRIPTION_COLUMNS: [Column; 6] = [
    Column::down("setup, s", 2),
    Column::down("RSS after setup, MiB", 1),
    Column::down("broker CPU per publish, µs", 2),
    Column::up("throughput, msg/s", 0),
    Column::up("delivered", 0),
    Column::down("lost", 0),
];

/// One run of one subscriptions point on a fresh broker.
async fn run_subscriptions_point(spec: &BrokerSpec, point: &Point, params: &Params) -> Measure {
    let (mut broker, endpoint) = match start(spec) {
        Ok(started) => started,
        Err(e) => return failed(SUBSCRIPTION_COLUMNS.len(), e),
    };
    // The point's own loops have deadlines; this only guards against a bug in them.
    let guard = point.setup_timeout + params.timeout + Duration::from_secs(60);
    let run = subscriptions::run_point(&endpoint, point, params, Some(&broker));
    let mut result = match tokio::time::timeout(guard, run).await {
        Ok(result) => result,
        Err(_) => PointResult {
            error: Some(format!("did not finish within {guard:?}")),
            ..PointResult::default()
        },
    };
    if let Some(e) = died(&mut broker) {
        result.error = Some(e);
    }
    measure_point(&result)
}

/// A subscriptions point's numbers, in [`SUBSCRIPTION_COLUMNS`]' order.
fn measure_point(result: &PointResult) -> Measure {
    let ran = result.setup.is_some();
    Measure {
        values: vec![
            result.setup.map(|d| d.as_secs_f64()),
            result.rss_after_setup_kib.map(|kib| kib as f64 / 1024.0),
            result.cpu_per_publish(),
            result.flow.rate(),
            ran.then_some(result.flow.delivered as f64),
            ran.then_some(result.flow.lost() as f64),
        ],
        note: result.error.clone(),
    }
}

/// The routing-cost curve: every point on every broker, `repeat` rounds; the section.
pub(super) async fn curve(
    args: &GrowthArgs,
    specs: &[BrokerSpec],
    params: &Params,
    repeat: usize,
) -> String {
    let mut table = PointTable::new(
        &["Subscriptions", "Filters", "Broker"],
        &SUBSCRIPTION_COLUMNS,
    );
    let shapes = [Filters::Exact, Filters::Wildcard];
    let curves = specs.len() * shapes.len();
    let mut cpu: Vec<Vec<(f64, f64)>> = vec![Vec::new(); curves];
    let mut rate: Vec<Vec<(f64, f64)>> = vec![Vec::new(); curves];
    // Per curve, the point at which setup failed: larger ones would fail alike, slower.
    let mut failed_at: Vec<Option<usize>> = vec![None; curves];
    for n in subscription_points(args.subscriptions_max) {
        for (f, &filters) in shapes.iter().enumerate() {
            let point = Point {
                subscriptions: n,
                filters,
                clients: args.subscription_clients,
                per_packet: args.filters_per_subscribe,
                messages: args.growth_messages.max(1),
                setup_timeout: Duration::from_secs(args.setup_timeout_secs.max(1)),
            };
            let mut runs: Vec<Vec<Measure>> = vec![Vec::new(); specs.len()];
            for round in 1..=repeat.max(1) {
                for (s, spec) in specs.iter().enumerate() {
                    let curve = s * shapes.len() + f;
                    if let Some(at) = failed_at[curve] {
                        let why = format!("not run: setup failed at {} subscriptions", count(at));
                        runs[s].push(failed(SUBSCRIPTION_COLUMNS.len(), why));
                        continue;
                    }
                    let title = format!("{} {} subscriptions", count(n), filters.name());
                    eprintln!(
                        "==> [growth] {title} on {} (run {round}/{repeat})",
                        spec.kind
                    );
                    let measure = run_subscriptions_point(spec, &point, params).await;
                    eprintln!("    {}", measure.summary(&SUBSCRIPTION_COLUMNS));
                    if measure.values[0].is_none() {
                        failed_at[curve] = Some(n);
                    }
                    runs[s].push(measure);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            for (s, spec) in specs.iter().enumerate() {
                let keys = vec![count(n), filters.name().to_owned(), spec.kind.to_string()];
                let medians = table.push(keys, &runs[s]);
                let curve = s * shapes.len() + f;
                cpu[curve].extend(medians[2].map(|v| (n as f64, v)));
                rate[curve].extend(medians[3].map(|v| (n as f64, v)));
            }
        }
    }
    let names: Vec<String> = specs
        .iter()
        .flat_map(|spec| shapes.map(|f| format!("{} {}", spec.kind, f.name())))
        .collect();
    let charts = [
        draw(
            &args.chart_dir.join("growth-subscriptions.svg"),
            "Broker CPU per publish against subscriptions",
            "subscriptions",
            "broker CPU per publish, µs",
            names.iter().cloned().zip(cpu).collect(),
            true,
        ),
        draw(
            &args.chart_dir.join("growth-subscriptions-rate.svg"),
            "Publish throughput against subscriptions",
            "subscriptions",
            "msg/s",
            names.into_iter().zip(rate).collect(),
            true,
        ),
    ];
    let intro = format!(
        "Each run: a fresh broker; {clients} clients subscribe (QoS 1, {per} filters per \
         SUBSCRIBE, all clients at once) to N filters: exact `dev/{{i}}/temp`, or wildcard \
         `dev/{{i}}/+` and `dev/{{i}}/#` alternating. Setup is from the first connect to the \
         last SUBACK. Then one publisher sends {messages} QoS 1 messages of {payload} B \
         (window {window}), message s to `dev/{{k}}/temp` with k = s × 7919 mod N: each matches \
         exactly one subscription, and they spread over all of them. Broker CPU per publish is \
         the broker's user + system time (`/proc/PID/stat`) over the publishing phase divided \
         by deliveries; it includes the PUBLISH in, its PUBACK, the delivery and its PUBACK, \
         which cost the same at every point, so a flat curve means routing does not grow with \
         subscriptions. Throughput is counted at the subscribers, first to last delivery, \
         with the loss beside it. Median of {repeat} run(s), brokers alternating per point.",
        clients = args.subscription_clients,
        per = args.filters_per_subscribe,
        messages = count(args.growth_messages as usize),
        payload = params.payload,
        window = params.window,
    );
    section(
        "Growth: routing cost against subscriptions",
        &intro,
        &table,
        &charts,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_point_keeps_its_reason_and_no_numbers() {
        let result = PointResult {
            error: Some("setup failed after 300.0 s: 3 of 100 clients not subscribed".into()),
            ..PointResult::default()
        };
        let measure = measure_point(&result);
        assert!(measure.values.iter().all(Option::is_none));
        assert!(measure
            .summary(&SUBSCRIPTION_COLUMNS)
            .contains("setup failed"));
    }
}
