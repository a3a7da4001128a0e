//! The slow consumer's runs: one variant on a fresh broker, a round of the three with the
//! cores timed around each run, and a QoS level's rounds on every broker, each run again
//! while the host moved the cores during it (see [`crate::cores`]).

use std::time::Duration;

use aviary_protocol::QoS;

use crate::broker::{BrokerSpec, RunningBroker};
use crate::client::Endpoint;
use crate::cores;
use crate::points::Measure;
use crate::scenarios::Params;

use super::verdict::RoundRatio;
use super::{measure, run_point, Outcome, Run, SlowArgs, Variant, COLUMNS};

/// One run of one variant on a fresh broker: what the readers got, the broker's RSS at the
/// end, or why there is nothing.
async fn run_once(
    spec: &BrokerSpec,
    args: &SlowArgs,
    variant: Variant,
    qos: QoS,
    params: &Params,
) -> Run {
    let params = &params.for_brokers();
    let mut broker = RunningBroker::start(spec).map_err(|e| format!("{e:#}"))?;
    let endpoint = Endpoint {
        tcp: broker.mqtt,
        ws_url: broker.ws_url.clone(),
    };
    let readers = variant.readers(args.subscribers());
    let with_slow = variant == Variant::WithSlow;
    let run = run_point(
        &endpoint,
        readers,
        args.slow_messages,
        qos,
        with_slow,
        params,
        Some(broker.pid()),
    );
    let guard = params.timeout + Duration::from_secs(60);
    let flow = match tokio::time::timeout(guard, run).await {
        Ok(Ok(flow)) => flow,
        Ok(Err(e)) => return Err(format!("{e:#}")),
        Err(_) => return Err(format!("did not finish within {guard:?}")),
    };
    let rss = broker.rss_kib().ok();
    // The broker's CPU per message published: what one more subscriber costs it, which the
    // machine's noise moves far less than the readers' rate.
    let cpu = flow.broker_cpu;
    broker
        .check_alive()
        .map_err(|e| format!("broker died: {e:#}"))?;
    Ok(Outcome { flow, rss, cpu })
}

/// A round's three runs, in [`Variant`]'s order, and the cores' round trips timed before
/// and after each run.
struct Round {
    runs: [(Variant, Run); 3],
    cores: Vec<Duration>,
}

/// Runs a round on `spec`, the variants in [`Variant`]'s order or `backwards`, timing the
/// cores before and after each run (see [`cores`]): a round whose runs saw them in different
/// places compares the host's two states, not the variants.
async fn run_round(
    spec: &BrokerSpec,
    args: &SlowArgs,
    qos: QoS,
    params: &Params,
    backwards: bool,
) -> Round {
    let mut runs = [Variant::Alone, Variant::AllReading, Variant::WithSlow]
        .map(|variant| (variant, Err(String::new())));
    let mut timed = Vec::new();
    let mut order = [0, 1, 2];
    if backwards {
        order.reverse();
    }
    for i in order {
        timed.extend(time_cores().await);
        let (variant, run) = &mut runs[i];
        *run = run_once(spec, args, *variant, qos, params).await;
        timed.extend(time_cores().await);
        // Let sockets close and the CPU cool down before the next broker starts.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Round { runs, cores: timed }
}

/// [`cores::round_trip`], off the runtime's threads.
async fn time_cores() -> Option<Duration> {
    tokio::task::spawn_blocking(cores::round_trip)
        .await
        .ok()
        .flatten()
}

/// What a broker's rounds at one QoS level gave.
#[derive(Default)]
pub(super) struct Rounds {
    /// Each round's table values.
    pub(super) measures: Vec<Measure>,
    /// Each round's ratio of the readers' rates, and where the cores were.
    pub(super) ratios: Vec<RoundRatio>,
    /// Rounds run again because the host moved the cores during them.
    pub(super) again: usize,
}

/// `repeat` rounds at `qos` on every broker, alternating, each round run again while the host
/// moved the cores during it, at most `repeat` times per broker (a host that keeps moving them
/// costs a bounded time).
pub(super) async fn rounds(
    specs: &[BrokerSpec],
    args: &SlowArgs,
    params: &Params,
    qos: QoS,
    repeat: usize,
) -> Vec<Rounds> {
    let n = args.subscribers();
    let mut brokers: Vec<Rounds> = specs.iter().map(|_| Rounds::default()).collect();
    for round in 1..=repeat {
        for (spec, done) in specs.iter().zip(&mut brokers) {
            loop {
                eprintln!(
                    "==> [slow consumer] QoS {}, {n} subscribers on {} (run {round}/{repeat})",
                    qos as u8, spec.kind
                );
                // Every other round runs them backwards, so that a machine getting busier or
                // quieter during a round does not favour the same variant every time.
                let ran = run_round(spec, args, qos, params, round % 2 == 0).await;
                let moved = !cores::unmoved(&ran.cores);
                let place = cores::describe(&ran.cores);
                if moved && done.again < repeat {
                    done.again += 1;
                    eprintln!("    the host moved the cores during the round ({place}): again");
                    continue;
                }
                let measure = measure(n, &ran.runs, moved.then_some(place.as_str()));
                eprintln!("    {} (cores: {place})", measure.summary(&COLUMNS));
                if let Some(percent) = measure.values[3] {
                    done.ratios.push(RoundRatio {
                        percent,
                        cores: place,
                    });
                }
                done.measures.push(measure);
                break;
            }
        }
    }
    brokers
}
