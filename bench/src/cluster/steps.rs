//! The measurements of one run on one setup, each turned into samples and notes: cross-node
//! throughput and latency, takeover and resume. A step that fails leaves its samples empty
//! (shown as a dash) and says why in the notes; the next step still runs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aviary_protocol::QoS;

use super::flows::{self, CrossFlow};
use super::gateway::Gateway;
use super::section::{Round, Sample};
use super::{resume, session, ClusterArgs};
use crate::report::{format_value, percentile, Better};
use crate::scenarios::{FlowResult, Params};

/// Where the clients go: publishers and first connections to `a`, the rest to `b`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Nodes {
    pub(crate) a: SocketAddr,
    pub(crate) b: SocketAddr,
}

/// What names the flows with a topic per message.
pub(crate) const SPREAD: &str = ", a topic per message";

/// A number for notes, with thousands separators.
fn count(v: u64) -> String {
    format_value(Some(v as f64), 0)
}

/// Milliseconds of a duration.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Full-speed cross-node flow at `qos`, on one topic or (`topic_per_message`) a topic per
/// message: throughput, and loss beside it. Returns the deliveries, for the CPU per message.
pub(crate) async fn throughput(
    nodes: Nodes,
    args: &ClusterArgs,
    (qos, topic_per_message): (QoS, bool),
    params: &Params,
    tag: &str,
    round: &mut Round,
) -> u64 {
    let q = qos as u8;
    let (what, spread) = match topic_per_message {
        true => (format!("QoS {q} throughput{SPREAD}"), "s"),
        false => (format!("QoS {q} throughput"), ""),
    };
    let messages = match qos {
        QoS::AtMostOnce => args.cluster_qos0_messages,
        _ => args.cluster_qos1_messages,
    };
    let flow = CrossFlow {
        publishers: args.cluster_publishers.max(1),
        messages: (messages / args.cluster_publishers.max(1) as u64).max(1),
        qos,
        rate: None,
        record_latency: false,
        topic_per_message,
        tag: format!("{tag}-tput{q}{spread}"),
    };
    let result = flows::run(nodes.a, nodes.b, &flow, params).await;
    let result = note_flow(&what, result, round);
    round.samples.push(Sample::new(
        format!("{what} A→B, msg/s"),
        Better::Higher,
        0,
        result.as_ref().and_then(FlowResult::rate),
    ));
    round.samples.push(Sample::new(
        format!("{what}: loss (sent vs received), %"),
        Better::Lower,
        2,
        result.as_ref().and_then(loss_percent),
    ));
    result.map_or(0, |r| r.delivered)
}

/// Fixed-rate cross-node flow at `qos`: latency percentiles.
pub(crate) async fn latency(
    nodes: Nodes,
    args: &ClusterArgs,
    qos: QoS,
    params: &Params,
    tag: &str,
    round: &mut Round,
) {
    let q = qos as u8;
    let rate = args.cluster_rate.max(1);
    let flow = CrossFlow {
        publishers: 1,
        messages: u64::from(rate) * args.cluster_latency_secs.max(1),
        qos,
        rate: Some(rate),
        record_latency: true,
        topic_per_message: false,
        tag: format!("{tag}-lat{q}"),
    };
    let result = flows::run(nodes.a, nodes.b, &flow, params).await;
    let mut sorted = note_flow(&format!("QoS {q} latency"), result, round)
        .map(|r| r.latencies_ns)
        .unwrap_or_default();
    sorted.sort_unstable();
    // The run's own tail beside its counts: the median over runs hides how far they spread.
    if let (Some(p99), Some(note)) = (percentile(&sorted, 99.0), round.notes.last_mut()) {
        note.push_str(&format!(", p99 {} µs", count(p99 / 1_000)));
    }
    let rate = count(u64::from(rate));
    for (name, p) in [("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9)] {
        round.samples.push(Sample::new(
            format!("QoS {q} latency at {rate} msg/s, {name}, µs"),
            Better::Lower,
            0,
            percentile(&sorted, p).map(|ns| ns as f64 / 1e3),
        ));
    }
}

/// Notes the counts of a flow (sent, received, reordered, timeouts, errors); the result, if
/// there is one.
fn note_flow(
    what: &str,
    result: anyhow::Result<FlowResult>,
    round: &mut Round,
) -> Option<FlowResult> {
    match result {
        Ok(flow) => {
            let mut note = format!(
                "{what}: sent {}, received {} of {}",
                count(flow.sent),
                count(flow.delivered),
                count(flow.expected)
            );
            if flow.out_of_order > 0 {
                note.push_str(&format!(
                    ", {} out of order or duplicated",
                    flow.out_of_order
                ));
            }
            if flow.timed_out {
                note.push_str(", timed out");
            }
            if let Some(error) = flow.errors.first() {
                note.push_str(&format!(", error: {error}"));
            }
            round.notes.push(note);
            Some(flow)
        }
        Err(e) => {
            round.notes.push(format!("{what}: error: {e:#}"));
            None
        }
    }
}

/// Deliveries missing from what the publishers sent, in % of it.
fn loss_percent(flow: &FlowResult) -> Option<f64> {
    (flow.sent > 0)
        .then(|| flow.sent.saturating_sub(flow.delivered) as f64 * 100.0 / flow.sent as f64)
}

/// `args.cluster_takeovers` takeovers A → B: median and worst of each time.
pub(crate) async fn takeovers(
    nodes: Nodes,
    args: &ClusterArgs,
    params: &Params,
    tag: &str,
    round: &mut Round,
) {
    let mut connacks = Vec::new();
    let mut disconnects = Vec::new();
    let mut errors = Vec::new();
    let mut untold = 0;
    let total = args.cluster_takeovers.max(1);
    for i in 0..total {
        let id = format!("{tag}-takeover-{i}");
        match session::takeover(nodes.a, nodes.b, &id, params.receive_maximum).await {
            Ok(t) => {
                connacks.push(t.connack.as_nanos() as u64);
                match t.disconnect {
                    Some(d) => disconnects.push(d.as_nanos() as u64),
                    None => untold += 1,
                }
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    connacks.sort_unstable();
    disconnects.sort_unstable();
    let mut note = format!(
        "takeover: {} of {total} done, {untold} without DISCONNECT 0x8E",
        connacks.len()
    );
    if let Some(error) = errors.first() {
        note.push_str(&format!(", first error: {error}"));
    }
    round.notes.push(note);
    let as_ms = |v: Option<u64>| v.map(|ns| ns as f64 / 1e6);
    for (what, samples) in [
        ("CONNECT→CONNACK on B", &connacks),
        ("CONNECT→DISCONNECT 0x8E on A", &disconnects),
    ] {
        round.samples.push(Sample::new(
            format!("takeover {what}, median, ms"),
            Better::Lower,
            2,
            as_ms(percentile(samples, 50.0)),
        ));
        round.samples.push(Sample::new(
            format!("takeover {what}, max, ms"),
            Better::Lower,
            2,
            as_ms(samples.last().copied()),
        ));
    }
}

/// A persistent session left on A with queued messages, resumed on B.
pub(crate) async fn resume(
    nodes: Nodes,
    args: &ClusterArgs,
    params: &Params,
    tag: &str,
    round: &mut Round,
) {
    let queued = args.cluster_queued.max(1);
    let outcome = resume::resume(nodes.a, nodes.b, &format!("{tag}-resume"), queued, params).await;
    resume_samples("resume", "CONNECT", queued, outcome, round);
}

/// A persistent session left with queued messages on `doomed`, which is then killed
/// (SIGKILL), resumed on B: timed from the kill.
pub(crate) async fn killed_resume(
    doomed: Gateway,
    b: SocketAddr,
    args: &ClusterArgs,
    params: &Params,
    tag: &str,
    round: &mut Round,
) {
    let queued = args.cluster_queued.max(1);
    let tag = format!("{tag}-killed");
    let outcome = async {
        let client_id = resume::leave(doomed.mqtt, &tag, queued, params).await?;
        let killed = Instant::now();
        // Dropping it kills it (SIGKILL) and waits for it.
        drop(doomed);
        resume::come_back(b, &client_id, queued, params, killed).await
    }
    .await;
    resume_samples(
        "resume after SIGKILL of its node",
        "kill",
        queued,
        outcome,
        round,
    );
}

/// A resume's notes and samples, timed from `from`.
fn resume_samples(
    what: &str,
    from: &str,
    queued: u64,
    outcome: anyhow::Result<resume::Resume>,
    round: &mut Round,
) {
    let (connack, all) = match outcome {
        Ok(r) => {
            round.notes.push(format!(
                "{what}: session present {}, {} of {} queued arrived ({} PUBLISH packets)",
                u8::from(r.session_present),
                count(r.distinct),
                count(queued),
                count(r.received)
            ));
            // A CONNACK without the session is not a resume: no number for it.
            let ok = r.session_present;
            (
                ok.then_some(ms(r.connack)),
                r.all_arrived.filter(|_| ok).map(ms),
            )
        }
        Err(e) => {
            round.notes.push(format!("{what}: error: {e:#}"));
            (None, None)
        }
    };
    let n = count(queued);
    round.samples.push(Sample::new(
        format!("{what} with {n} queued: {from}→CONNACK, ms"),
        Better::Lower,
        2,
        connack,
    ));
    round.samples.push(Sample::new(
        format!("{what} with {n} queued: {from}→all arrived, ms"),
        Better::Lower,
        1,
        all,
    ));
}
