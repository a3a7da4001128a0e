//! Shared subscriptions across nodes: the members of a `$share/{group}/{filter}` group may be
//! connected to different nodes and still share the group's messages, each message going to
//! one member in the whole cluster.
//!
//! NATS chooses the node, and the node chooses one of its members (round robin):
//! - **QoS 0**: a core queue subscription per subject of the filter, in a queue group named
//!   after the group and filter, so NATS delivers each message to one subscribed node. These
//!   subscriptions use a second connection that does hear the node's own messages (the main
//!   one asks NATS not to echo): a group whose members are all here must still get them.
//! - **QoS 1/2**: one durable consumer per group and filter on the message stream, which every
//!   node with members pulls from: a work queue. A node acknowledges a message once its store
//!   holds it queued for the member. What a dead node took and did not acknowledge is
//!   delivered again to another node once the consumer's acknowledgement wait runs out.
//!
//! A consumer no node pulls from any more (the group has no members left anywhere) is removed
//! by JetStream after [`IDLE`].

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{consumer, stream};
use futures_util::StreamExt;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::consume::ack_when_stored;
use super::live::unbatch;
use super::messages::{pull as pull_stream, STREAM_PREFIX};
use super::node::{decode, LIVE};
use super::subject::{filter_to_subjects, token};
use crate::broker::Broker;

/// How long a group's consumer outlives the last node pulling from it.
const IDLE: Duration = Duration::from_secs(600);
/// How long a node has to acknowledge a group's message before another gets it.
const ACK_WAIT: Duration = Duration::from_secs(10);

/// This node's part in the shared groups it has members of.
pub(super) struct SharedGroups {
    /// The connection that hears this node's own QoS 0 messages.
    echo: async_nats::Client,
    stream: stream::Stream,
    broker: Broker,
    /// Per `$share/{group}/{filter}`, the tasks taking its messages.
    tasks: HashMap<Box<str>, Vec<JoinHandle<()>>>,
}

impl SharedGroups {
    pub(super) fn new(echo: async_nats::Client, stream: stream::Stream, broker: Broker) -> Self {
        Self {
            echo,
            stream,
            broker,
            tasks: HashMap::new(),
        }
    }

    /// This node has its first member of `shared` (`$share/{group}/{filter}`): takes a share
    /// of the group's messages.
    pub(super) async fn join(&mut self, shared: Box<str>) {
        let Some((group, filter)) = split(&shared) else {
            warn!(%shared, "not a shared subscription");
            return;
        };
        let (group, filter): (Box<str>, Box<str>) = (group.into(), filter.into());
        let mut tasks = Vec::new();
        let queue = name(&group, &filter);
        for subject in filter_to_subjects(LIVE, &filter) {
            match self
                .echo
                .queue_subscribe(subject.clone(), queue.clone())
                .await
            {
                Ok(mut sub) => {
                    let (broker, group, filter) =
                        (self.broker.clone(), group.clone(), filter.clone());
                    tasks.push(tokio::spawn(async move {
                        while let Some(m) = sub.next().await {
                            for msg in unbatch(&m.subject, m.payload, LIVE) {
                                match msg {
                                    Ok(msg) => {
                                        broker.publish_shared(msg, &group, &filter);
                                    }
                                    Err(e) => warn!(subject = %m.subject, error = %e, "dropped a message from NATS"),
                                }
                            }
                        }
                    }));
                }
                Err(e) => warn!(%subject, error = %e, "cannot subscribe on NATS"),
            }
        }
        match self.consumer(&queue, &filter).await {
            Ok(consumer) => {
                let broker = self.broker.clone();
                tasks.push(tokio::spawn(pull(consumer, broker, group, filter)));
            }
            Err(e) => warn!(%shared, error = %e, "cannot open the shared group's consumer"),
        }
        if let Some(old) = self.tasks.insert(shared, tasks) {
            old.iter().for_each(JoinHandle::abort);
        }
    }

    /// This node's last member of `shared` left: it takes no more of the group's messages.
    /// One it pulled and did not acknowledge goes to another node after [`ACK_WAIT`].
    pub(super) fn leave(&mut self, shared: &str) {
        if let Some(tasks) = self.tasks.remove(shared) {
            tasks.iter().for_each(JoinHandle::abort);
        }
    }

    async fn consumer(&self, name: &str, filter: &str) -> Result<consumer::PullConsumer, String> {
        let config = consumer::pull::Config {
            durable_name: Some(name.to_owned()),
            ack_policy: consumer::AckPolicy::Explicit,
            deliver_policy: consumer::DeliverPolicy::New,
            filter_subjects: filter_to_subjects(STREAM_PREFIX, filter),
            ack_wait: ACK_WAIT,
            inactive_threshold: IDLE,
            max_ack_pending: 10_000,
            ..Default::default()
        };
        // Every node with members creates it, often at the same moment: the loser of that
        // race (or a node asking while the consumer has no leader yet) tries again.
        super::setup::retrying("a shared group's consumer", || {
            self.stream.get_or_create_consumer(name, config.clone())
        })
        .await
        .map_err(|e| e.to_string())
    }
}

impl Drop for SharedGroups {
    fn drop(&mut self) {
        for tasks in self.tasks.values() {
            tasks.iter().for_each(JoinHandle::abort);
        }
    }
}

/// Takes this node's share of a group's QoS 1/2 messages, acknowledging each once the local
/// store holds it.
async fn pull(consumer: consumer::PullConsumer, broker: Broker, group: Box<str>, filter: Box<str>) {
    loop {
        // A pull that fails (the consumer was created a moment ago by another node and is not
        // ready yet, or its server changed) ends the stream: pull again after a pause.
        match pull_stream(&consumer).await {
            Ok(messages) => take(messages, &broker, &group, &filter).await,
            Err(e) => debug!(%group, %filter, error = %e, "cannot read a shared group's consumer"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Routes what one pull brings until it fails.
async fn take(mut messages: consumer::pull::Stream, broker: &Broker, group: &str, filter: &str) {
    while let Some(next) = messages.next().await {
        let m = match next {
            Ok(m) => m,
            Err(e) => {
                debug!(error = %e, "shared group consumer hiccup: pulling again");
                return;
            }
        };
        // No stream sequence on the message: it came to this node alone, so a session moving
        // away must keep it (see `cluster::handover`).
        match decode(&m.subject, m.payload.clone(), STREAM_PREFIX) {
            Ok(msg) => {
                broker.publish_shared(msg, group, filter);
            }
            Err(e) => warn!(subject = %m.subject, error = %e, "dropped a message from the stream"),
        }
        ack_when_stored(broker, m).await;
    }
}

/// The group and filter of `$share/{group}/{filter}`.
fn split(shared: &str) -> Option<(&str, &str)> {
    shared.strip_prefix("$share/")?.split_once('/')
}

/// The name of a group's queue group and consumer: the same on every node and in every
/// version, and a valid NATS name (no `.`, `*`, `>` or whitespace). The filter is hashed
/// (FNV-1a) to keep the name short.
fn name(group: &str, filter: &str) -> String {
    let hash = filter.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("share-{}-{hash:016x}", token(group))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_distinct() {
        assert_eq!(name("g", "a/b"), name("g", "a/b"));
        assert_ne!(name("g", "a/b"), name("g", "a/c"));
        assert_ne!(name("g", "a/b"), name("h", "a/b"));
        let odd = name("a.b c*>", "x/#");
        assert!(!odd.contains(['.', ' ', '*', '>']), "{odd}");
    }

    #[test]
    fn a_shared_filter_splits_into_group_and_filter() {
        assert_eq!(split("$share/g/a/+/c"), Some(("g", "a/+/c")));
        assert_eq!(split("a/b"), None);
    }
}
