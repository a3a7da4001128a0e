//! The `AVIARY_MESSAGES` stream, which carries QoS 1/2 and retained messages between the
//! nodes: its subjects and headers, how it is made, and each node's durable consumer of it
//! (its name, its filters, and how it is pulled).

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use super::cover::cover;
use super::handover::mark_subject;
use super::setup::step;
use super::ClusterError;

/// Subject prefix of the stream's messages.
pub(super) const STREAM_PREFIX: &str = "aviary.q";
/// The stream of QoS 1/2 and retained messages.
pub(super) const STREAM: &str = "AVIARY_MESSAGES";
/// The header naming the node a message was published on.
pub(super) const ORIGIN: &str = "Aviary-Node";
/// The header naming, on its own node, the client that published a message.
pub(super) const PUBLISHER: &str = "Aviary-Publisher";
/// How long a message may wait in the stream for a node that was away.
const STREAM_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Makes sure the stream exists, with `replicas` copies of each message, and returns it.
pub(super) async fn open(
    js: &jetstream::Context,
    replicas: u8,
) -> Result<stream::Stream, ClusterError> {
    let config = stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![format!("{STREAM_PREFIX}.>")],
        retention: stream::RetentionPolicy::Interest,
        storage: stream::StorageType::File,
        num_replicas: usize::from(replicas),
        max_age: STREAM_MAX_AGE,
        ..Default::default()
    };
    step(STREAM, || js.get_or_create_stream(config.clone())).await
}

/// This node's durable consumer: made with batched acknowledgements and only the handover
/// markers as filters if it is new (the interest task sets the filters), as it was otherwise.
pub(super) async fn node_consumer(
    stream: &stream::Stream,
    node: &str,
) -> Result<consumer::PullConsumer, ClusterError> {
    let durable = consumer_name(node);
    step("this node's consumer", || {
        let config = consumer_config(node, consumer::AckPolicy::All, Vec::new());
        stream.get_or_create_consumer(&durable, config)
    })
    .await
}

/// The name of `node`'s durable consumer.
pub(super) fn consumer_name(node: &str) -> String {
    format!("node-{node}")
}

/// The consumer's configuration: the subjects of this node's filters, and always its
/// handover markers (which also keep the filter from being empty, which would mean all).
/// `acks`: `All` for a new consumer (see [`super::acks`]); an existing consumer's own, which
/// JetStream does not let change.
pub(super) fn consumer_config(
    node: &str,
    acks: consumer::AckPolicy,
    mut subjects: Vec<String>,
) -> consumer::pull::Config {
    subjects.push(mark_subject(node));
    // JetStream refuses overlapping filter subjects, which overlapping MQTT filters make.
    let subjects = cover(STREAM_PREFIX, subjects);
    consumer::pull::Config {
        durable_name: Some(consumer_name(node)),
        ack_policy: acks,
        deliver_policy: consumer::DeliverPolicy::New,
        filter_subjects: subjects,
        max_ack_pending: 10_000,
        ..Default::default()
    }
}

/// Starts pulling from `consumer`, with heartbeats every second: a pull lost with its
/// server (which then sends no heartbeat) is noticed within a few seconds, not the default
/// 30, and pulled again.
pub(super) async fn pull(
    consumer: &consumer::PullConsumer,
) -> Result<consumer::pull::Stream, consumer::StreamError> {
    consumer
        .stream()
        .expires(Duration::from_secs(5))
        .heartbeat(Duration::from_secs(1))
        .messages()
        .await
}
