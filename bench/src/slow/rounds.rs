//! The slow consumer's runs: one variant on a fresh broker, a round of the three with the
//! cores timed around each run, and a QoS level's rounds on every broker, each run again
//! while the host moved the cores during it (see [`crate::cores`]), all of a broker's runs
//! sized on a first one to last about `--slow-seconds`.

use std::time::Duration;

use aviary_protocol::QoS;

use crate::broker::{BrokerSpec, RunningBroker};
use crate::client::Endpoint;
use crate::cores;
use crate::points::Measure;
use crate::scenarios::Params;

use super::verdict::RoundRatio;
use super::{measure, run_point, Outcome, Run, SlowArgs, Variant, COLUMNS};

/// Most messages a run sends, however fast the broker: bounds a run's time (about 10 s at
/// Aviary's rate here).
const MAX_MESSAGES: u64 = 5_000_000;

/// One run of one variant on a fresh broker: what the readers got, the broker's RSS at the
/// end, or why there is nothing.
async fn run_once(
    spec: &BrokerSpec,
    args: &SlowArgs,
    variant: Variant,
    qos: QoS,
    params: &Params,
    messages: u64,
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
        messages,
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
    messages: u64,
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
        *run = run_once(spec, args, *variant, qos, params, messages).await;
        timed.extend(time_cores().await);
        // Let sockets close and the CPU cool down before the next broker starts.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Round { runs, cores: timed }
}

/// How many messages each run on `spec` sends: as many as its readers alone take in
/// `--slow-seconds`, measured on a first run of `--slow-messages`, and at least that many.
async fn size_runs(spec: &BrokerSpec, args: &SlowArgs, qos: QoS, params: &Params) -> u64 {
    let least = args.slow_messages;
    if !args.sizes_runs() {
        return least;
    }
    eprintln!(
        "==> [slow consumer] QoS {}, sizing the runs on {}: the readers alone, {least} messages",
        qos as u8, spec.kind
    );
    let run = run_once(spec, args, Variant::Alone, qos, params, least).await;
    let rate = Variant::Alone.rate_per_reader(args.subscribers(), &run);
    if let Err(e) = &run {
        eprintln!("    no rate ({e}): {least} messages per run");
    }
    let messages = rate.map_or(least, |rate| sized(rate, args.slow_seconds, least));
    if let Some(rate) = rate {
        eprintln!("    {rate:.0} msg/s per reader: {messages} messages per run");
    }
    // As between the runs of a round.
    tokio::time::sleep(Duration::from_millis(500)).await;
    messages
}

/// Messages for a run of `seconds` at `rate` per second, rounded up to ten thousand, at least
/// `least` and at most [`MAX_MESSAGES`] (or `least`, if more).
fn sized(rate: f64, seconds: f64, least: u64) -> u64 {
    let wanted = (rate * seconds / 10_000.0).ceil() as u64 * 10_000;
    wanted.clamp(least, MAX_MESSAGES.max(least))
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
    /// Messages each run sent (see [`size_runs`]).
    pub(super) messages: u64,
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
    let mut brokers: Vec<Rounds> = Vec::with_capacity(specs.len());
    for spec in specs {
        brokers.push(Rounds {
            messages: size_runs(spec, args, qos, params).await,
            ..Rounds::default()
        });
    }
    for round in 1..=repeat {
        for (spec, done) in specs.iter().zip(&mut brokers) {
            loop {
                eprintln!(
                    "==> [slow consumer] QoS {}, {n} subscribers on {} (run {round}/{repeat})",
                    qos as u8, spec.kind
                );
                // Every other round runs them backwards, so that a machine getting busier or
                // quieter during a round does not favour the same variant every time.
                let backwards = round % 2 == 0;
                let ran = run_round(spec, args, qos, params, backwards, done.messages).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_sized_to_the_seconds_within_bounds() {
        // 440,000 msg/s for 2 s, in tens of thousands.
        assert_eq!(sized(440_000.0, 2.0, 200_000), 880_000);
        assert_eq!(sized(440_001.0, 2.0, 200_000), 890_000);
        // A slow broker still sends the least...
        assert_eq!(sized(27_000.0, 2.0, 200_000), 200_000);
        // ...and a fast one no more than the most, unless the least is more.
        assert_eq!(sized(1e9, 2.0, 200_000), MAX_MESSAGES);
        assert_eq!(sized(1e9, 2.0, 2 * MAX_MESSAGES), 2 * MAX_MESSAGES);
    }
}
