//! The store under a steady load: QoS 1 at a constant, bounded rate to one online persistent
//! subscriber for a while, the data directory's size and the bytes written sampled at a fixed
//! interval as it runs. A store that keeps up with its deletes (tombstones compacted away,
//! journals dropped once flushed) levels off; one that does not grows with every sample.

use std::time::{Duration, Instant};

use aviary_protocol::QoS;

use super::grid::Grid;
use super::{aviary_metrics, mib, Contestant, DurabilityArgs};
use crate::broker::RunningBroker;
use crate::client::{Endpoint, Transport};
use crate::disk::DirUsage;
use crate::report::format_value;
use crate::scenarios::{self, FlowResult, FlowSpec, Params};

/// One look at the broker.
#[derive(Debug, Clone, Default)]
struct Sample {
    at: Duration,
    usage: Option<DirUsage>,
    written: Option<u64>,
    rss_kib: Option<u64>,
    received: Option<f64>,
    queued: Option<f64>,
}

/// Runs the steady load against `aviary` and returns the report section.
pub(super) async fn run(args: &DurabilityArgs, aviary: &Contestant, params: &Params) -> String {
    let publishers = args.durable_publishers.max(1);
    let per_publisher = (args.steady_rate / publishers as u32).max(1);
    let secs = args.steady_secs.max(1);
    let spec = FlowSpec {
        publishers,
        subscribers: 1,
        messages_per_publisher: u64::from(per_publisher) * secs,
        qos: QoS::AtLeastOnce,
        pub_transport: Transport::Tcp,
        sub_transport: Transport::Tcp,
        per_publisher_topics: true,
        rate: Some(per_publisher),
        record_latency: false,
        persistent_subscribers: true,
    };
    let title = format!(
        "store size under a steady load, {} msg/s QoS 1 to a persistent subscriber for {secs} s",
        format_value(Some(f64::from(per_publisher) * publishers as f64), 0)
    );
    eprintln!("==> [durability] {title}, on {}", aviary.label);
    let (samples, flow, error) = match measure(args, aviary, spec, params).await {
        Ok((samples, flow)) => (samples, Some(flow), None),
        Err(e) => (Vec::new(), None, Some(format!("{e:#}"))),
    };
    section(&title, aviary, &samples, flow.as_ref(), error)
}

/// Starts the broker, runs the flow in the background and samples until it ends.
async fn measure(
    args: &DurabilityArgs,
    aviary: &Contestant,
    spec: FlowSpec,
    params: &Params,
) -> anyhow::Result<(Vec<Sample>, FlowResult)> {
    let mut broker = RunningBroker::start(&aviary.spec)?;
    let endpoint = Endpoint {
        tcp: broker.mqtt,
        ws_url: broker.ws_url.clone(),
    };
    let io_start = broker.io()?;
    let params = Params {
        // The flow's own deadline: its length and a margin for the last deliveries.
        timeout: Duration::from_secs(args.steady_secs.max(1) + 120),
        ..params.clone()
    };
    let started = Instant::now();
    let mut flow =
        tokio::spawn(async move { scenarios::run_flow(&endpoint, &spec, &params).await });
    let interval = Duration::from_secs(args.steady_sample_secs.max(1));
    let mut samples = vec![sample(&broker, started, io_start.write_bytes).await];
    let result = loop {
        let next = tokio::time::Instant::from_std(started) + interval * samples.len() as u32;
        tokio::select! {
            result = &mut flow => break result??,
            () = tokio::time::sleep_until(next) => {
                let s = sample(&broker, started, io_start.write_bytes).await;
                eprintln!("    {}", progress(&s));
                samples.push(s);
            }
        }
    };
    let last = sample(&broker, started, io_start.write_bytes).await;
    eprintln!("    end: {}", progress(&last));
    samples.push(last);
    broker.check_alive()?;
    Ok((samples, result))
}

/// Looks at the broker now; what cannot be read stays `None`.
async fn sample(broker: &RunningBroker, started: Instant, written_before: u64) -> Sample {
    let names = ["aviary_messages_received_total", "aviary_queued_messages"];
    let metrics = aviary_metrics(broker.http, &names).await.ok();
    Sample {
        at: started.elapsed(),
        usage: broker.data_usage().ok(),
        written: broker
            .io()
            .ok()
            .map(|io| io.write_bytes.saturating_sub(written_before)),
        rss_kib: broker.rss_kib().ok(),
        received: metrics.as_ref().and_then(|m| m[0]),
        queued: metrics.as_ref().and_then(|m| m[1]),
    }
}

fn progress(s: &Sample) -> String {
    format!(
        "t={:.0} s: {} received, data dir {} MiB (du), {} MiB written",
        s.at.as_secs_f64(),
        format_value(s.received, 0),
        format_value(s.usage.map(|u| mib(u.allocated)), 1),
        format_value(s.written.map(mib), 1),
    )
}

/// The report section: one row per sample, then the flow's totals.
fn section(
    title: &str,
    aviary: &Contestant,
    samples: &[Sample],
    flow: Option<&FlowResult>,
    error: Option<String>,
) -> String {
    let columns = [
        "messages received",
        "queued now",
        "data dir (du), MiB",
        "of which journal, MiB",
        "apparent size, MiB",
        "files",
        "written since start, MiB",
        "written, bytes/msg",
        "RSS, MiB",
    ];
    let mut grid = Grid::new(columns.map(str::to_owned));
    for s in samples {
        let per_message = s
            .written
            .zip(s.received.filter(|r| *r > 0.0))
            .map(|(w, r)| w as f64 / r);
        grid.text(
            &format!("t = {:.0} s", s.at.as_secs_f64()),
            [
                format_value(s.received, 0),
                format_value(s.queued, 0),
                format_value(s.usage.map(|u| mib(u.allocated)), 1),
                format_value(s.usage.map(|u| mib(u.journal_allocated)), 1),
                format_value(s.usage.map(|u| mib(u.apparent)), 1),
                format_value(s.usage.map(|u| u.files as f64), 0),
                format_value(s.written.map(mib), 1),
                format_value(per_message, 0),
                format_value(s.rss_kib.map(|k| k as f64 / 1024.0), 0),
            ],
        );
    }
    let mut out = format!("## Durability: {title}\n\n{}: ", aviary.label);
    match (flow, error) {
        (_, Some(error)) => out.push_str(&format!("error: {}", error.replace('\n', " "))),
        (Some(flow), None) => out.push_str(&format!(
            "{} of {} delivered ({} lost, {} out of order or duplicated){}{}.",
            format_value(Some(flow.delivered as f64), 0),
            format_value(Some(flow.expected as f64), 0),
            format_value(Some(flow.lost() as f64), 0),
            flow.out_of_order,
            if flow.timed_out { ", timed out" } else { "" },
            flow.errors
                .first()
                .map(|e| format!("; first error: {}", e.replace('\n', " ")))
                .unwrap_or_default(),
        )),
        (None, None) => {}
    }
    out.push_str("\n\n");
    out.push_str(&grid.to_markdown());
    out.push_str(
        "\n\"Messages received\" is the broker's `aviary_messages_received_total`; \"written\" \
         its `write_bytes` from `/proc/PID/io` since the start (journal, flushes and \
         compactions); \"du\" counts allocated blocks, \"apparent\" the files' lengths (fjall \
         creates each journal file at its full size).\n",
    );
    out
}
