//! This node's interest, kept in step with its subscriptions: a core NATS subscription per
//! subject of each filter with subscribers here (QoS 0), the stream consumer's filter subjects
//! (QoS 1/2, as a cover without overlaps), and the shared groups it has members of. Changes
//! come from the subscription tree in order; a [`Sync`] asks to be told once the consumer
//! listens to everything subscribed so far (a session moving here waits for that).

use std::collections::HashMap;

use async_nats::jetstream::{consumer, stream};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::handover::Sync;
use super::live::unbatch;
use super::messages::{consumer_config, STREAM_PREFIX};
use super::node::LIVE;
use super::shared::SharedGroups;
use super::subject::filter_to_subjects;
use crate::broker::Broker;

/// Keeps this node's NATS interest in step with its subscriptions: core subscriptions for
/// QoS 0 messages, and the consumer's filters for the stream.
pub(super) struct Interest {
    /// The connection of QoS 0 messages (see [`live`](super::live)).
    pub(super) connection: async_nats::Client,
    /// The shared groups this node has members of.
    pub(super) shared: SharedGroups,
    pub(super) stream: stream::Stream,
    pub(super) node: String,
    /// The consumer's acknowledgement policy, which an update must keep.
    pub(super) acks: consumer::AckPolicy,
    pub(super) broker: Broker,
    /// Per filter, the tasks reading its core subscriptions.
    pub(super) live: HashMap<Box<str>, Vec<JoinHandle<()>>>,
    pub(super) shutdown: CancellationToken,
}

impl Interest {
    pub(super) async fn run(
        mut self,
        initial: Vec<Box<str>>,
        mut changes: mpsc::UnboundedReceiver<Vec<(Box<str>, bool)>>,
        mut syncs: mpsc::UnboundedReceiver<Sync>,
    ) {
        let mut batch: Vec<(Box<str>, bool)> = initial.into_iter().map(|f| (f, true)).collect();
        let mut waiting: Vec<Sync> = Vec::new();
        loop {
            for (filter, present) in batch.drain(..) {
                match (filter.starts_with("$share/"), present) {
                    (true, true) => self.shared.join(filter).await,
                    (true, false) => self.shared.leave(&filter),
                    (false, true) => self.subscribe(filter).await,
                    (false, false) => {
                        if let Some(tasks) = self.live.remove(&filter) {
                            tasks.iter().for_each(JoinHandle::abort);
                        }
                    }
                }
            }
            self.update_consumer().await;
            for synced in waiting.drain(..) {
                let _ = synced.send(());
            }
            tokio::select! {
                next = changes.recv() => match next {
                    Some(next) => batch = next,
                    None => break,
                },
                sync = syncs.recv() => waiting.extend(sync),
                () = self.shutdown.cancelled() => break,
            }
            // Everything already waiting, in one consumer update. A sync comes after the
            // changes it must see, which are in the channel by then.
            while let Ok(sync) = syncs.try_recv() {
                waiting.push(sync);
            }
            while let Ok(more) = changes.try_recv() {
                batch.extend(more);
            }
        }
        for tasks in self.live.values() {
            tasks.iter().for_each(JoinHandle::abort);
        }
    }

    async fn subscribe(&mut self, filter: Box<str>) {
        let mut tasks = Vec::new();
        for subject in filter_to_subjects(LIVE, &filter) {
            match self.connection.subscribe(subject.clone()).await {
                Ok(mut sub) => {
                    let broker = self.broker.clone();
                    let filter = filter.clone();
                    tasks.push(tokio::spawn(async move {
                        while let Some(m) = sub.next().await {
                            deliver_live(&broker, &filter, m);
                        }
                    }));
                }
                Err(e) => warn!(%subject, error = %e, "cannot subscribe on NATS"),
            }
        }
        if let Some(old) = self.live.insert(filter, tasks) {
            old.iter().for_each(JoinHandle::abort);
        }
    }

    async fn update_consumer(&self) {
        let mut subjects: Vec<String> = self
            .live
            .keys()
            .flat_map(|f| filter_to_subjects(STREAM_PREFIX, f))
            .collect();
        subjects.sort();
        subjects.dedup();
        let config = consumer_config(&self.node, self.acks, subjects);
        if let Err(e) = self.stream.update_consumer(config).await {
            warn!(error = %e, "cannot update this node's stream consumer");
        }
    }
}

/// QoS 0 messages from another node, for the subscribers of `filter`.
fn deliver_live(broker: &Broker, filter: &str, m: async_nats::Message) {
    for msg in unbatch(&m.subject, m.payload, LIVE) {
        match msg {
            Ok(msg) => {
                broker.publish_live(msg, filter);
            }
            Err(e) => warn!(subject = %m.subject, error = %e, "dropped a message from NATS"),
        }
    }
}
