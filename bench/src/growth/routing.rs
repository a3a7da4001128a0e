//! The routing-cost curve: every subscription count and filter shape on every broker, a
//! fresh broker per run, brokers alternating within each round; the report section with the
//! issue target's verdict, and the two charts (CPU per publish, throughput).

use std::time::Duration;

use super::subscriptions::{self, Filters, Point, PointResult};
use super::{count, died, draw, failed, section, start, subscription_points, GrowthArgs};
use crate::broker::{BrokerKind, BrokerSpec};
use crate::points::{Column, Measure, PointTable};
use crate::report::format_value;
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
    let params = &params.for_brokers();
    let (mut broker, endpoint) = match start(spec) {
        Ok(started) => started,
        Err(e) => return failed(SUBSCRIPTION_COLUMNS.len(), e),
    };
    // The point's own loops have deadlines; this only guards against a bug in them.
    let guard =
        point.setup_timeout + params.timeout * point.rounds.max(1) as u32 + Duration::from_secs(60);
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

/// The filter shapes, one curve per broker each.
const SHAPES: [Filters; 2] = [Filters::Exact, Filters::Wildcard];

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
    // Per shape and broker: the chart's points, and the point at which setup failed (larger
    // ones would fail alike, only slower).
    let mut cpu = vec![vec![Vec::new(); specs.len()]; SHAPES.len()];
    let mut rate = cpu.clone();
    let mut failed_at = vec![vec![None; specs.len()]; SHAPES.len()];
    for n in subscription_points(args.subscriptions_max) {
        for (f, &filters) in SHAPES.iter().enumerate() {
            let point = Point {
                subscriptions: n,
                filters,
                clients: args.subscription_clients,
                per_packet: args.filters_per_subscribe,
                messages: args.growth_messages.max(1),
                rounds: args.growth_rounds as usize,
                setup_timeout: Duration::from_secs(args.setup_timeout_secs.max(1)),
                hook: args.growth_hook.clone(),
            };
            let runs = rounds(&point, specs, params, repeat, &mut failed_at[f]).await;
            for (s, spec) in specs.iter().enumerate() {
                let keys = vec![count(n), filters.name().to_owned(), spec.kind.to_string()];
                let medians = table.push(keys, &runs[s]);
                cpu[f][s].extend(medians[2].map(|v| (n as f64, v)));
                rate[f][s].extend(medians[3].map(|v| (n as f64, v)));
            }
        }
    }
    let kinds: Vec<BrokerKind> = specs.iter().map(|spec| spec.kind).collect();
    let verdict = verdict(&kinds, &cpu);
    let charts = charts(args, specs, cpu, rate);
    let section = section(
        "Growth: routing cost against subscriptions",
        &intro(args, params, repeat),
        &table,
        &charts,
    );
    format!("{section}\n{verdict}\n")
}

/// What the profile found, said after this run's own figures: the instructions, which do not
/// move from run to run as the CPU time does, and what the growth in time comes from.
const PROFILED: &str = "Under callgrind, in the publishing phase alone, routing \
     (`SubscriptionTree::matches` and what it calls) executes 993 instructions per publish with \
     1,000 exact subscriptions and 1,003 with 1,000,000 (941 and 951 wildcard): +1 %, from the \
     longer topic level, so it is O(topic levels), as the target asks, and the whole broker's \
     count moves by 2 %. What grows is cache misses: routing misses the last-level cache 0.4 \
     times per publish at 1,000 subscriptions and 10 times at 1,000,000, a chain of dependent \
     loads into a tree that no cache holds; at about 350 ns each (a DRAM load, and in this VM a \
     nested page walk, which callgrind does not simulate) ten are the 3 to 5 µs that 1,000,000 \
     subscriptions add in this machine's runs, whose figures also move by a third from run to \
     run. Fewer cache lines per level would about halve it; no layout makes it flat. The \
     profile, and what it would take: \
     [PROFILE.md](PROFILE.md#routing-cost-against-subscriptions).";

/// The target against this run: Aviary's CPU per publish at the smallest and the
/// largest point of each filter shape, and their ratio; then what the profile found.
/// `cpu` holds the chart's points, by shape and then broker (`kinds`).
fn verdict(kinds: &[BrokerKind], cpu: &[Vec<Vec<(f64, f64)>>]) -> String {
    let target = "**The issue's target, \"routing cost flat (O(topic levels), not \
                  O(subscriptions)) up to 1M subscriptions\":**";
    let aviary = kinds.iter().position(|&kind| kind == BrokerKind::Aviary);
    let growth: Vec<String> = SHAPES
        .iter()
        .zip(cpu)
        .filter_map(|(shape, per_broker)| {
            let line = per_broker.get(aviary?)?;
            let (&(n0, v0), &(n1, v1)) = (line.first()?, line.last()?);
            (n1 > n0 && v0 > 0.0).then(|| {
                let shown = |v| format_value(Some(v), 2);
                format!(
                    "{} filters {} µs at {} subscriptions and {} µs at {} (× {:.2})",
                    shape.name(),
                    shown(v0),
                    count(n0 as usize),
                    shown(v1),
                    count(n1 as usize),
                    v1 / v0
                )
            })
        })
        .collect();
    if growth.is_empty() {
        return format!("{target} not judged: this run has no two points of Aviary's.");
    }
    format!(
        "{target} Aviary's broker CPU per publish in this run: {}. {PROFILED}",
        growth.join("; ")
    )
}

/// `repeat` rounds of one point, brokers alternating within each; per broker, its runs. A
/// broker whose setup failed at a smaller point (`failed_at`) is not run again.
async fn rounds(
    point: &Point,
    specs: &[BrokerSpec],
    params: &Params,
    repeat: usize,
    failed_at: &mut [Option<usize>],
) -> Vec<Vec<Measure>> {
    let n = point.subscriptions;
    let mut runs: Vec<Vec<Measure>> = vec![Vec::new(); specs.len()];
    for round in 1..=repeat.max(1) {
        for (s, spec) in specs.iter().enumerate() {
            if let Some(at) = failed_at[s] {
                let why = format!("not run: setup failed at {} subscriptions", count(at));
                runs[s].push(failed(SUBSCRIPTION_COLUMNS.len(), why));
                continue;
            }
            let title = format!("{} {} subscriptions", count(n), point.filters.name());
            eprintln!(
                "==> [growth] {title} on {} (run {round}/{repeat})",
                spec.kind
            );
            let measure = run_subscriptions_point(spec, point, params).await;
            eprintln!("    {}", measure.summary(&SUBSCRIPTION_COLUMNS));
            if measure.values[0].is_none() {
                failed_at[s] = Some(n);
            }
            runs[s].push(measure);
            // Let sockets close and the CPU cool down before the next broker starts.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    runs
}

/// Draws the two charts (CPU per publish, throughput; a line per broker and shape) from
/// points indexed by shape, then broker; the lines the section shows for them.
fn charts(
    args: &GrowthArgs,
    specs: &[BrokerSpec],
    cpu: Vec<Vec<Vec<(f64, f64)>>>,
    rate: Vec<Vec<Vec<(f64, f64)>>>,
) -> [String; 2] {
    let lines = |points: Vec<Vec<Vec<(f64, f64)>>>| -> Vec<(String, Vec<(f64, f64)>)> {
        let mut named = Vec::new();
        for (f, per_broker) in points.into_iter().enumerate() {
            for (spec, line) in specs.iter().zip(per_broker) {
                named.push((format!("{} {}", spec.kind, SHAPES[f].name()), line));
            }
        }
        named
    };
    [
        draw(
            &args
                .chart_dir
                .clone()
                .unwrap_or_default()
                .join("growth-subscriptions.svg"),
            "Broker CPU per publish against subscriptions",
            "subscriptions",
            "broker CPU per publish, µs",
            lines(cpu),
            true,
        ),
        draw(
            &args
                .chart_dir
                .clone()
                .unwrap_or_default()
                .join("growth-subscriptions-rate.svg"),
            "Publish throughput against subscriptions",
            "subscriptions",
            "msg/s",
            lines(rate),
            true,
        ),
    ]
}

/// What the section measured, said above its table.
fn intro(args: &GrowthArgs, params: &Params, repeat: usize) -> String {
    format!(
        "Each run: a fresh broker; {clients} clients subscribe (QoS 1, {per} filters per \
         SUBSCRIBE, all clients at once) to N filters: exact `dev/{{i}}/temp`, or wildcard \
         `dev/{{i}}/+` and `dev/{{i}}/#` alternating. Setup is from the first connect to the \
         last SUBACK. Then {rounds} round(s), each a publisher of its own sending {messages} \
         QoS 1 messages of {payload} B (window {window}), message s (counted over all rounds) \
         to `dev/{{k}}/temp` with k = s × 7919 mod N: each matches exactly one subscription, \
         and they spread over all of them. Broker CPU per publish is the broker's user + \
         system time (the kernel's CPU clock of the process) over a round divided by the round's \
         PUBLISHes, the median of the rounds (over the whole phase per delivery if any was \
         lost); it includes the PUBLISH in, its PUBACK, the delivery and its PUBACK, which \
         cost the same at every point, so a flat curve means routing does not grow with \
         subscriptions. Throughput is counted at the subscribers, first to last delivery of \
         all rounds, with the loss beside it. Median of {repeat} run(s), brokers alternating \
         per point.",
        clients = args.subscription_clients,
        per = args.filters_per_subscribe,
        rounds = args.growth_rounds,
        messages = count(args.growth_messages as usize),
        payload = params.payload,
        window = params.window,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_gives_aviarys_growth_per_shape_and_links_the_profile() {
        let kinds = [BrokerKind::Mosquitto, BrokerKind::Aviary];
        let line = |a: f64, b: f64| vec![(1_000.0, a), (10_000.0, 15.0), (1_000_000.0, b)];
        let cpu = vec![
            vec![line(30.0, 30.0), line(10.0, 15.0)],
            vec![line(30.0, 30.0), line(12.0, 12.0)],
        ];
        let verdict = verdict(&kinds, &cpu);
        assert!(
            verdict.contains(
                "exact filters 10.00 µs at 1,000 subscriptions and 15.00 µs at 1,000,000 \
                 (× 1.50); wildcard filters 12.00 µs at 1,000 subscriptions and 12.00 µs at \
                 1,000,000 (× 1.00)."
            ),
            "{verdict}"
        );
        assert!(verdict.contains("PROFILE.md#routing-cost-against-subscriptions"));
    }

    #[test]
    fn no_verdict_without_two_points_of_aviarys() {
        let one = vec![vec![vec![(1_000.0, 10.0)]]; 2];
        assert!(verdict(&[BrokerKind::Aviary], &one).contains("not judged"));
        let other = vec![vec![vec![(1_000.0, 10.0), (10_000.0, 11.0)]]; 2];
        assert!(verdict(&[BrokerKind::Mosquitto], &other).contains("not judged"));
    }

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
