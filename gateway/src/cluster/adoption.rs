//! The persistent sessions of a node that died, adopted by one that remains: their clients
//! reconnect anywhere and resume, with nothing the dead node acknowledged lost.
//!
//! Every node copies its store into JetStream ([`super::replica`]), and the dead node's
//! stream consumer still holds what the node was given and never acknowledged (it
//! acknowledges a message only once its store, and so the copy, holds what routing queued).
//! Between the two, nothing is missing. One node adopts a dead node whole:
//!
//! 1. **Claim.** The first to create the dead node's key in `AVIARY_ADOPTIONS` adopts it;
//!    the others wait for its word there (`adopted by <node>`).
//! 2. **Open.** The adopter replays the dead node's log and opens each session it held,
//!    offline and subscribed, then waits until its own consumer listens to their filters:
//!    from then on every stream message for them reaches it too.
//! 3. **Mark.** It writes a marker into the stream, addressed to the dead node. Messages
//!    before the marker are the dead node's (in its log, or still in its consumer); the
//!    adopted sessions take from the adopter's own consumer only those after it, as a session
//!    moving between live nodes does (see [`super::handover`]).
//! 4. **Drain.** It reads the dead node's consumer up to the marker, its unacknowledged
//!    messages made to come again at once, and routes each to the adopted sessions only,
//!    but for those the dead node's store holds already (by their stream sequence numbers):
//!    it died between queueing them and acknowledging them to the stream.
//! 5. **Settle.** The dead node's consumer and log go, and the adoption is marked done.
//!
//! `AVIARY_CLIENTS` still names the dead node for the adopted client ids: the wills of its
//! clients are settled as before (see [`super::orphans`]), and a client that reconnects, to
//! any node, finds the dead node silent. That node waits for the dead one's lease to run out
//! and for its adoption ([`Adoption::after_death`]), then moves the session from the adopter
//! as from any live node.
//!
//! A node that finds its own name in `AVIARY_ADOPTIONS` at start was adopted while it was
//! away: it forgets the sessions its store brought back, which live elsewhere now.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::consume::ack_when_stored;
use super::handover::{mark_subject, Sync, MARK_PREFIX};
use super::metrics::ClusterMetrics;
use super::node::{consumer_name, decode, STREAM, STREAM_PREFIX};
use super::orphans::Orphans;
use super::subject::token;
use super::ClusterError;
use crate::broker::{Broker, ClientKey};
use crate::store::{self, Forwarded, QueueEntry, Snapshot};

/// The bucket of adoptions: per dead node, who adopts (or adopted) its sessions.
const BUCKET: &str = "AVIARY_ADOPTIONS";
/// How long a node waits for another's adoption, and an adopter for the dead node's
/// consumer to give up its messages.
const WAIT: Duration = Duration::from_secs(30);
/// How often a waiting node looks again.
const POLL: Duration = Duration::from_millis(100);
/// How soon the dead node's consumer gives again what it gave the dead node.
const REDELIVER: Duration = Duration::from_millis(500);

/// This node's side of adoptions.
#[derive(Debug)]
pub(super) struct Adoption {
    node: String,
    replicas: u8,
    js: jetstream::Context,
    adoptions: kv::Store,
    /// `AVIARY_NODES`: a node whose lease is there is alive.
    nodes: kv::Store,
    broker: Broker,
    sync: mpsc::UnboundedSender<Sync>,
    metrics: Arc<ClusterMetrics>,
    lease: Duration,
    /// Settles the wills of the nodes adopted here: set once the node is up.
    orphans: OnceLock<Weak<Orphans>>,
}

/// What [`Adoption::start`] needs.
pub(super) struct Parts {
    pub(super) node: String,
    pub(super) replicas: u8,
    pub(super) nodes: kv::Store,
    pub(super) broker: Broker,
    pub(super) sync: mpsc::UnboundedSender<Sync>,
    pub(super) metrics: Arc<ClusterMetrics>,
    pub(super) lease: Duration,
}

impl Adoption {
    /// Opens the bucket of adoptions and forgets this node's sessions if another node
    /// adopted them while it was away.
    pub(super) async fn start(
        js: &jetstream::Context,
        p: Parts,
    ) -> Result<Arc<Self>, ClusterError> {
        let adoptions = super::bucket(js, BUCKET, p.replicas, Duration::ZERO).await?;
        let this = Self {
            node: p.node,
            replicas: p.replicas,
            js: js.clone(),
            adoptions,
            nodes: p.nodes,
            broker: p.broker,
            sync: p.sync,
            metrics: p.metrics,
            lease: p.lease,
            orphans: OnceLock::new(),
        };
        let mine = token(&this.node);
        // A bucket just created may have no leader for a moment.
        let adopted = super::setup::retrying(BUCKET, || this.adoptions.entry(&mine))
            .await
            .map_err(|e| ClusterError::Stream(e.to_string()))?;
        if let Some(e) = adopted.filter(|e| e.operation == kv::Operation::Put) {
            let forgotten = this.broker.forget_sessions();
            info!(
                forgotten,
                by = %String::from_utf8_lossy(&e.value),
                "this node's sessions were adopted while it was away: forgot them here"
            );
            super::setup::retrying(BUCKET, || this.adoptions.purge(&mine))
                .await
                .map_err(|e| ClusterError::Stream(e.to_string()))?;
        }
        Ok(Arc::new(this))
    }

    /// Sets who settles the wills of the nodes adopted here.
    pub(super) fn settle_with(&self, orphans: &Arc<Orphans>) {
        let _ = self.orphans.set(Arc::downgrade(orphans));
    }

    /// After `dead` failed to answer for a session: once its lease has run out, and its
    /// sessions are adopted (here or elsewhere), the adopter's name. `None` while the node
    /// still holds its lease after a whole lease of waiting (it is alive, only silent).
    pub(super) async fn after_death(self: &Arc<Self>, dead: &str) -> Option<String> {
        let deadline = tokio::time::Instant::now() + self.lease + self.lease / 2;
        while self.alive(dead).await {
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
        match self.clone().adopt(dead.to_owned(), true).await {
            Ok(adopter) => Some(adopter),
            Err(e) => {
                warn!(node = %dead, error = %e, "the dead node's sessions were not adopted");
                None
            }
        }
    }

    /// Whether `node` holds its lease (or the bucket cannot say).
    async fn alive(&self, node: &str) -> bool {
        match self.nodes.entry(node).await {
            Ok(e) => e.is_some_and(|e| e.operation == kv::Operation::Put),
            Err(e) => {
                debug!(%node, error = %e, "cannot read a node's lease");
                true
            }
        }
    }

    /// Adopts `dead`'s sessions here, unless another node does: the adopter's name, once
    /// its adoption is done (or at once, if it is another's and `wait` is false).
    pub(super) async fn adopt(self: Arc<Self>, dead: String, wait: bool) -> Result<String, String> {
        let key = token(&dead);
        let claim = format!("adopting:{}", self.node);
        match self.adoptions.create(&key, Bytes::from(claim)).await {
            Ok(_) => {
                info!(node = %dead, "a node is gone: adopting its persistent sessions");
                let adopted = self.take_over(&dead).await?;
                let done = format!("adopted:{}", self.node);
                self.adoptions
                    .put(&key, Bytes::from(done))
                    .await
                    .map_err(|e| e.to_string())?;
                info!(node = %dead, sessions = adopted, "adopted a dead node's sessions");
                // A node that left in good order kept its delayed wills for its return; it
                // forgets its sessions then, so they are the cluster's to settle now.
                if let Some(orphans) = self.orphans.get().and_then(Weak::upgrade) {
                    orphans.settle_node(&dead);
                }
                Ok(self.node.clone())
            }
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists && wait => {
                self.adopted_by(&key).await
            }
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(String::new()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Waits until the adoption of the node under `key` is done: its adopter.
    async fn adopted_by(&self, key: &str) -> Result<String, String> {
        let waiting = async {
            loop {
                let entry = self.adoptions.get(key).await.map_err(|e| e.to_string())?;
                if let Some(adopter) = entry
                    .as_deref()
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.strip_prefix("adopted:"))
                {
                    return Ok(adopter.to_owned());
                }
                tokio::time::sleep(POLL).await;
            }
        };
        tokio::time::timeout(WAIT, waiting)
            .await
            .map_err(|_| format!("no adoption done within {WAIT:?}"))?
    }

    /// Steps 2 to 5: how many sessions came here.
    async fn take_over(&self, dead: &str) -> Result<usize, String> {
        let log = super::replica::read(&self.js, self.replicas, dead)
            .await
            .map_err(|e| e.to_string())?;
        let mut snapshot = store::replay(log).map_err(|e| e.to_string())?;
        let queued = stream_seqs(&snapshot);
        let mut opened = Vec::new();
        for record in std::mem::take(&mut snapshot.sessions).into_values() {
            let client_id = record.client_id.clone();
            match self.broker.open_adopted_session(record) {
                Ok(session) => opened.push(session),
                Err(e) => warn!(%client_id, error = %e, "a dead node's session was not adopted"),
            }
        }
        let (synced, confirmed) = oneshot::channel();
        self.sync.send(synced).map_err(|_| "the node is stopping")?;
        confirmed.await.map_err(|_| "the node is stopping")?;
        let marker = self
            .js
            .publish(mark_subject(dead), Bytes::new())
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?
            .sequence;
        for session in &opened {
            let client_id = session.client_id.to_string();
            let (entries, incoming) = messages_of(&mut snapshot, &client_id);
            if let Err(e) = crate::broker::fill_adopted_session(session, entries, incoming, marker)
            {
                warn!(%client_id, error = %e, "a dead node's session came without its messages");
            }
        }
        let keys: HashSet<ClientKey> = opened.iter().map(|s| s.key).collect();
        self.drain(dead, marker, &keys, &queued).await?;
        for _ in &opened {
            ClusterMetrics::count(&self.metrics.sessions_moved_in);
        }
        self.forget(dead).await;
        Ok(opened.len())
    }

    /// Step 4: routes what `dead`'s consumer holds before `marker` to the adopted `sessions`,
    /// but for the stream messages its store had `queued` already: it died after queueing them
    /// and before its acknowledgement reached the stream, which gives them again.
    async fn drain(
        &self,
        dead: &str,
        marker: u64,
        sessions: &HashSet<ClientKey>,
        queued: &HashSet<u64>,
    ) -> Result<(), String> {
        let stream = self
            .js
            .get_stream(STREAM)
            .await
            .map_err(|e| e.to_string())?;
        let name = consumer_name(dead);
        match stream.consumer_info(&name).await {
            Ok(_) => {}
            Err(e) if e.kind() == jetstream::context::ConsumerInfoErrorKind::NotFound => {
                return Ok(())
            }
            Err(e) => return Err(e.to_string()),
        }
        let mut consumer: consumer::PullConsumer = stream
            .get_consumer(&name)
            .await
            .map_err(|e| e.to_string())?;
        // What the dead node was given and never acknowledged comes again, and soon.
        let mut config = consumer.cached_info().config.clone();
        config.ack_wait = REDELIVER;
        stream
            .update_consumer(config)
            .await
            .map_err(|e| e.to_string())?;
        let mut routed = 0usize;
        let draining = async {
            loop {
                let mut batch = consumer
                    .fetch()
                    .max_messages(256)
                    .expires(Duration::from_secs(1))
                    .messages()
                    .await
                    .map_err(|e| e.to_string())?;
                while let Some(m) = batch.next().await {
                    let m = m.map_err(|e| e.to_string())?;
                    let seq = m.info().map_err(|e| e.to_string())?.stream_sequence;
                    let routed_before = queued.contains(&seq) || seq >= marker;
                    if !routed_before && !m.subject.starts_with(MARK_PREFIX) {
                        match decode(&m.subject, m.payload.clone(), STREAM_PREFIX) {
                            Ok(msg) => routed += self.broker.publish_adopted(msg, sessions),
                            Err(e) => {
                                warn!(subject = %m.subject, error = %e, "dropped a message from the stream")
                            }
                        }
                        ack_when_stored(&self.broker, m).await;
                    } else if let Err(e) = m.ack().await {
                        debug!(error = %e, "acknowledgement failed; the message may come again");
                    }
                }
                let info = consumer.info().await.map_err(|e| e.to_string())?;
                if info.ack_floor.stream_sequence >= marker {
                    return Ok::<_, String>(());
                }
            }
        };
        tokio::time::timeout(WAIT, draining)
            .await
            .map_err(|_| format!("{dead}'s consumer was not drained within {WAIT:?}"))??;
        debug!(node = %dead, routed, "drained a dead node's consumer");
        Ok(())
    }

    /// Step 5's end: the dead node's consumer and log go.
    async fn forget(&self, dead: &str) {
        match self.js.get_stream(STREAM).await {
            Ok(stream) => {
                if let Err(e) = stream.delete_consumer(&consumer_name(dead)).await {
                    debug!(node = %dead, error = %e, "the dead node's consumer did not go");
                }
            }
            Err(e) => debug!(error = %e, "cannot open the message stream"),
        }
        if let Err(e) = super::replica::drop_log(&self.js, self.replicas, dead).await {
            warn!(node = %dead, error = %e, "the dead node's log did not go");
        }
    }
}

/// The stream sequence numbers of the messages queued in `snapshot`.
fn stream_seqs(snapshot: &Snapshot) -> HashSet<u64> {
    let shared = snapshot.messages.values().filter_map(|m| m.stream_seq);
    let inline = snapshot
        .queues
        .values()
        .flat_map(|q| q.values())
        .filter_map(|e| e.inline.as_ref().and_then(|m| m.stream_seq));
    shared.chain(inline).collect()
}

/// Takes `client_id`'s queue out of `snapshot`, each entry carrying its message, and its
/// incoming QoS 2 exchanges.
fn messages_of(
    snapshot: &mut Snapshot,
    client_id: &str,
) -> (
    Vec<QueueEntry>,
    Vec<(std::num::NonZeroU16, Option<Forwarded>)>,
) {
    let entries = snapshot
        .queues
        .remove(client_id)
        .unwrap_or_default()
        .into_values()
        .filter_map(|mut entry| {
            if entry.inline.is_none() {
                let shared = snapshot.messages.get(&entry.message)?.clone();
                entry.inline = Some(Box::new(shared));
            }
            Some(entry)
        })
        .collect();
    let incoming = snapshot
        .incoming_qos2
        .remove(client_id)
        .unwrap_or_default()
        .into_iter()
        .collect();
    (entries, incoming)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use aviary_protocol::QoS;
    use bytes::Bytes;

    use super::*;
    use crate::store::{DeliveryState, MessageId, StoredMessage};

    fn message(stream_seq: Option<u64>) -> StoredMessage {
        StoredMessage {
            topic: "pets/1/location".into(),
            payload: Bytes::from_static(b"x"),
            qos: QoS::ExactlyOnce,
            retain: false,
            properties: Default::default(),
            expires_at_unix_ms: None,
            stream_seq,
        }
    }

    fn entry(id: u64, inline: Option<StoredMessage>) -> QueueEntry {
        QueueEntry {
            message: MessageId(id),
            inline: inline.map(Box::new),
            qos: QoS::ExactlyOnce,
            retain: false,
            subscription_ids: Vec::new(),
            state: DeliveryState::Queued,
        }
    }

    #[test]
    fn the_stream_messages_a_dead_node_had_queued_are_known_and_taken_with_their_message() {
        let mut s = Snapshot::default();
        s.messages.insert(MessageId(2), message(Some(20)));
        s.queues.insert(
            "a".into(),
            BTreeMap::from([(1, entry(1, Some(message(Some(10))))), (2, entry(2, None))]),
        );
        // Published on the dead node to a subscriber there, not through the stream.
        s.queues.insert(
            "b".into(),
            BTreeMap::from([(1, entry(3, Some(message(None))))]),
        );
        assert_eq!(stream_seqs(&s), HashSet::from([10, 20]));
        let (entries, incoming) = messages_of(&mut s, "a");
        assert!(incoming.is_empty());
        let seqs: Vec<_> = entries
            .iter()
            .map(|e| e.inline.as_ref().expect("carries its message").stream_seq)
            .collect();
        assert_eq!(seqs, [Some(10), Some(20)]);
        assert!(!s.queues.contains_key("a"), "taken out");
    }
}
