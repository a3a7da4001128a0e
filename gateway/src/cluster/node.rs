//! One gateway node on NATS: the [`Backplane`] that carries this node's messages to the
//! others and theirs to it.
//!
//! - **Out.** A message published here goes to NATS once, under its topic's subject: QoS 0
//!   over core NATS (`aviary.t.…`, several of a topic in one NATS message when they queue
//!   up, see [`live`](super::live)), QoS 1/2 into the `AVIARY_MESSAGES` stream (`aviary.q.…`)
//!   with this node's name in a header, whose acknowledgement the publisher's PUBACK/PUBREC
//!   waits for. A retained message also goes into the retained stream
//!   ([`retained`]). One task sends them all, in the order they were
//!   published; the acknowledgements are awaited apart, so many are in flight at once.
//! - **In, QoS 0.** One core subscription per subject of each filter this node has
//!   subscribers for, counted by the subscription tree. NATS delivers a message once per
//!   matching subscription, so each copy goes to the subscribers of its own filter only.
//!   The connection asks NATS not to echo its own messages.
//! - **In, from the stream.** One durable consumer per node (not one per subscription),
//!   filtered to the same subjects: each message comes once and is routed to every local
//!   subscriber, then acknowledged once the local store holds what it queued. The node's own
//!   messages (known by their header) go to its persistent sessions only, which take QoS 1/2
//!   from the stream alone (see `broker::publish`).
//! - **Failure.** The wills of this node's clients are kept in the cluster ([`wills`]), and
//!   those of a node that is gone are published by one of the others ([`orphans`]). A node
//!   cut off from NATS disconnects its clients and takes none until it is back ([`link`]).
//!
//! [`wills`]: super::wills
//! [`orphans`]: super::orphans
//! [`link`]: super::link

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_nats::header::HeaderMap;
use async_nats::jetstream;
use aviary_protocol::ByteString;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::adoption::{self, Adoption};
use super::backlog::Backlog;
use super::handover::{self, Handover};
use super::interest::Interest;
use super::lease::{Addresses, Leases};
use super::link;
use super::live;
use super::membership::Membership;
use super::messages::{self, ORIGIN, STREAM_PREFIX};
use super::metrics::ClusterMetrics;
use super::outbound::{gate, send, stream_headers, Out};
use super::owners::Owners;
use super::retained;
use super::shared::SharedGroups;
use super::subject::{subject_to_topic, topic_to_subject};
use super::wills::Wills;
use super::ClusterError;
use crate::broker::{
    decode_wire, encode_wire, AckWait, Backplane, Broker, ClientKey, Exchange, ForwardError,
    Message, Room, Will,
};
use crate::config::ClusterConfig;
use crate::store::Forwarded;

/// Subject prefix of QoS 0 messages (core NATS).
pub(super) const LIVE: &str = "aviary.t";

/// This node's link to NATS. Cheap to share; stops its tasks when `shutdown` fires.
#[derive(Debug)]
pub(crate) struct Node {
    /// This node's lease, and the view of the others'.
    leases: Arc<Leases>,
    /// This node's claims on client ids.
    owners: Arc<Owners>,
    /// Sessions moving here from other nodes.
    handover: Arc<Handover>,
    /// The wills of this node's connections, as the cluster keeps them.
    wills: Arc<Wills>,
    /// What this node counts of its part in the cluster.
    metrics: Arc<ClusterMetrics>,
    /// This node's name.
    name: ByteString,
    /// The next QoS 2 exchange's token: counted from the nanoseconds since the Unix epoch
    /// when this run started, so that no earlier run of this node gave the same one.
    tokens: AtomicU64,
    out: mpsc::UnboundedSender<Out>,
    /// The QoS 0 bytes in `out`: its clients wait while there are too many.
    backlog: Arc<Backlog>,
    /// Groups of messages held back until their exchange is stored ([`gate`]).
    gated: mpsc::UnboundedSender<(AckWait, Vec<Out>)>,
    interest: mpsc::UnboundedSender<Vec<(Box<str>, bool)>>,
    /// Asks the interest task to say when the consumer listens to everything so far.
    sync: mpsc::UnboundedSender<handover::Sync>,
}

impl Backplane for Node {
    fn forward(
        &self,
        msg: &Message,
        publisher: Option<ClientKey>,
        exchange: Option<Exchange>,
    ) -> Option<AckWait> {
        let payload = Bytes::from(encode_wire(msg));
        let qos0 = msg.qos == aviary_protocol::QoS::AtMostOnce;
        // A QoS 2 message counts as published on the node that opened its exchange, where
        // it was routed: that node's own subscribers have it. A client key means nothing on
        // another node.
        let (origin, token, after) = match exchange {
            Some(Exchange { forwarded, after }) => (forwarded.node, Some(forwarded.token), after),
            None => (self.name.clone(), None, None),
        };
        let publisher = publisher.filter(|_| origin == self.name);
        let id = |kind: &str| token.map(|t| format!("{origin}-{kind}{t}"));
        // A QoS 2 message keeps its place behind the one before it on its line (see
        // `inflight`): its publisher's on the topic, or the topic's retained ones from here.
        let line = |subject: &str, publisher: Option<ClientKey>| {
            token.map(|_| match publisher {
                Some(key) => Arc::from(format!("{subject} {origin} {key}")),
                None => Arc::from(format!("{subject} {origin}")),
            })
        };
        let (mut group, mut waits) = (Vec::new(), Vec::new());
        // Every node's retained store follows the retained stream (see `retained`).
        if msg.retain {
            let subject = topic_to_subject(retained::PREFIX, &msg.topic);
            let headers = stream_headers(&origin, None, id("r").as_deref());
            let line = line(&subject, None);
            waits.push(stream_out(
                &mut group,
                subject,
                payload.clone(),
                headers,
                line,
            ));
        }
        if qos0 {
            self.backlog.add(payload.len());
            group.push(Out::Live {
                subject: topic_to_subject(LIVE, &msg.topic),
                payload,
            });
        } else {
            let subject = topic_to_subject(STREAM_PREFIX, &msg.topic);
            let headers = stream_headers(&origin, publisher, id("q").as_deref());
            let line = line(&subject, publisher);
            waits.push(stream_out(&mut group, subject, payload, headers, line));
        }
        match after {
            Some(after) => {
                let _ = self.gated.send((after, group));
            }
            None => group.into_iter().for_each(|o| {
                let _ = self.out.send(o);
            }),
        }
        if qos0 {
            return None;
        }
        Some(Box::pin(async move {
            for wait in waits {
                wait.await
                    .unwrap_or_else(|_| Err(ForwardError("the cluster link closed".into())))?;
            }
            Ok(())
        }))
    }

    fn room(&self) -> Option<Room> {
        self.backlog.room()
    }

    fn forwarding(&self) -> Forwarded {
        Forwarded {
            node: self.name.clone(),
            token: self.tokens.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn claim(&self, client_id: &str, clean_start: bool) -> AckWait {
        let (owners, handover) = (self.owners.clone(), self.handover.clone());
        let client_id = client_id.to_owned();
        // Spawned: a client that hangs up mid-way must not leave a session half moved.
        let task = tokio::spawn(async move {
            if let Some(from) = owners.claim(&client_id).await? {
                handover.move_here(&client_id, &from, clean_start).await;
            }
            Ok(())
        });
        Box::pin(async move {
            task.await
                .unwrap_or_else(|e| Err(ForwardError(format!("the claim failed: {e}"))))
        })
    }

    fn holds(&self, client_id: &str) -> bool {
        self.owners.holds(client_id)
    }

    fn interest(&self, changes: Vec<(Box<str>, bool)>) {
        let _ = self.interest.send(changes);
    }

    fn synced(&self) -> AckWait {
        let (synced, confirmed) = oneshot::channel();
        let sent = self.sync.send(synced);
        Box::pin(async move {
            sent.map_err(|_| ForwardError("the node is stopping".into()))?;
            confirmed
                .await
                .map_err(|_| ForwardError("the node is stopping".into()))
        })
    }

    fn will_set(&self, client_id: &str, will: Option<&Will>, expiry_secs: u32) -> Option<AckWait> {
        self.wills.set(client_id, will, expiry_secs)
    }

    fn will_gone(&self, client_id: &str) {
        self.wills.gone(client_id);
    }

    fn accepting(&self) -> bool {
        self.leases.link().accepting()
    }
}

impl Node {
    /// This node's lease, and the view of the others'.
    pub(crate) fn leases(&self) -> &Leases {
        &self.leases
    }

    /// Waits until this node is fenced (see [`link`]): why. The gateway must start again then.
    pub(crate) async fn fenced(&self) -> String {
        self.leases.link().fenced().await
    }

    /// What this node counts of its part in the cluster.
    pub(crate) fn metrics(&self) -> &ClusterMetrics {
        &self.metrics
    }

    /// Connects to NATS, makes sure the stream and this node's consumer exist, attaches to
    /// `broker` and starts the tasks that carry messages both ways.
    pub(crate) async fn start(
        config: &ClusterConfig,
        name: String,
        addrs: Addresses,
        broker: &Broker,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, ClusterError> {
        let urls = config.nats.join(", ");
        let (client, link) = link::connect(config, &name).await?;
        // QoS 0 both ways; and for shared groups, whose members here must hear this node's
        // own messages too.
        let live = live::connect(config, &name, "live", false).await?;
        let echo = live::connect(config, &name, "shared", true).await?;
        let js = jetstream::new(client.clone());
        let stream = messages::open(&js, config.replicas()).await?;
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (gated_tx, gated_rx) = mpsc::unbounded_channel();
        let (interest_tx, interest_rx) = mpsc::unbounded_channel();
        let (sync_tx, sync_rx) = mpsc::unbounded_channel();
        let metrics = Arc::new(ClusterMetrics::default());
        let backlog = Arc::new(Backlog::default());
        let handover = Handover::start(
            client.clone(),
            js.clone(),
            &name,
            broker.clone(),
            sync_tx.clone(),
            metrics.clone(),
            shutdown.clone(),
        )
        .await
        .map_err(|e| ClusterError::Stream(e.to_string()))?;
        let Membership {
            leases,
            owners,
            wills,
            orphans,
        } = Membership::start(&js, config, &name, addrs, &link, broker, &shutdown).await?;
        let parts = adoption::Parts {
            node: name.clone(),
            replicas: config.replicas(),
            nodes: leases.kv().clone(),
            broker: broker.clone(),
            sync: sync_tx.clone(),
            metrics: metrics.clone(),
            lease: config.lease(),
        };
        // Before the store's copy: sessions adopted elsewhere while this node was away go.
        let adoption = Adoption::start(&js, parts).await?;
        // After: a node adopted while away drops a consumer its adopter left (see there).
        let consumer = messages::node_consumer(&stream, &name).await?;
        replicate_store(&js, config.replicas(), &name, broker).await?;
        handover.adopt_with(adoption.clone());
        adoption.settle_with(&orphans);
        orphans.adopt_with(adoption.clone());
        let node = Arc::new(Self {
            leases,
            owners,
            handover,
            wills,
            metrics: metrics.clone(),
            name: name.as_str().into(),
            tokens: AtomicU64::new(started_nanos()),
            out: out_tx.clone(),
            backlog: backlog.clone(),
            gated: gated_tx,
            interest: interest_tx,
            sync: sync_tx.clone(),
        });
        // Before attaching: the retained store must be the cluster's before clients come.
        retained::follow(
            &js,
            config.replicas(),
            name.clone(),
            broker.clone(),
            shutdown.clone(),
        )
        .await?;
        // A consumer made before acknowledgements went in batches keeps its explicit ones.
        let acks = consumer.cached_info().config.ack_policy;
        let filters = broker.attach_backplane(node.clone());
        let reader = client.clone();
        let reading = stream.clone();
        // Attached first: the wills they publish must reach the other nodes.
        tokio::spawn(orphans.run());
        adoption.resume();
        tokio::spawn(adoption.follow_returns(link.clone(), shutdown.clone()));
        tokio::spawn(link::watch(link, broker.clone(), shutdown.clone()));
        tokio::spawn(gate(gated_rx, out_tx, shutdown.clone()));
        tokio::spawn(send(
            live.clone(),
            js,
            name.clone(),
            out_rx,
            metrics.clone(),
            backlog,
            shutdown.clone(),
        ));
        tokio::spawn(
            Interest {
                connection: live,
                shared: SharedGroups::new(echo, stream.clone(), broker.clone()),
                stream,
                node: name.clone(),
                acks,
                broker: broker.clone(),
                live: HashMap::new(),
                shutdown: shutdown.clone(),
            }
            .run(filters, interest_rx, sync_rx),
        );
        let consumer = super::consume::Consumer {
            consumer,
            stream: reading,
            client: reader,
            metrics,
            node: name.clone(),
            broker: broker.clone(),
        };
        tokio::spawn(consumer.run(shutdown));
        info!(node = %name, nats = %urls, "joined the cluster");
        Ok(node)
    }
}

/// Adds a stream message to `group`: the receiver gets JetStream's answer. If the sending
/// task is gone, the message's `ack` is dropped with it, and the receiver says so.
fn stream_out(
    group: &mut Vec<Out>,
    subject: String,
    payload: Bytes,
    headers: HeaderMap,
    line: Option<Arc<str>>,
) -> oneshot::Receiver<Result<(), ForwardError>> {
    let (ack, done) = oneshot::channel();
    group.push(Out::Stream {
        subject,
        payload,
        headers,
        line,
        ack,
    });
    done
}

/// Nanoseconds since the Unix epoch, now.
fn started_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The node a message from NATS was published on.
pub(super) fn origin(headers: Option<&HeaderMap>) -> Option<&str> {
    headers.and_then(|h| h.get(ORIGIN)).map(|v| v.as_str())
}

/// The message of a subject and payload from another node.
pub(super) fn decode(subject: &str, payload: Bytes, prefix: &str) -> Result<Message, String> {
    let topic = subject_to_topic(prefix, subject).map_err(|e| e.to_string())?;
    decode_on(&topic, payload)
}

/// The message of `payload`, which came on the subject of `topic`.
pub(super) fn decode_on(topic: &str, payload: Bytes) -> Result<Message, String> {
    let msg = decode_wire(payload)?;
    if *msg.topic != *topic {
        return Err(format!(
            "the payload's topic {:?} is not the subject's",
            &*msg.topic
        ));
    }
    Ok(msg)
}

/// Copies this node's store, and from now on each of its commits, into its log in
/// JetStream (see [`super::replica`]). A node with `durability = "memory"` keeps nothing.
async fn replicate_store(
    js: &jetstream::Context,
    replicas: u8,
    name: &str,
    broker: &Broker,
) -> Result<(), ClusterError> {
    let Some(persist) = broker.persist() else {
        return Ok(());
    };
    let log = Arc::new(super::replica::JetStreamLog::open(js, replicas, name).await?);
    let store = persist.store().clone();
    // The first copy blocks on the log's appends: not on this task's thread.
    tokio::task::spawn_blocking(move || store.replicate_to(log))
        .await
        .map_err(|e| ClusterError::Stream(format!("copying the store to JetStream: {e}")))?
        .map_err(|e| ClusterError::Stream(format!("copying the store to JetStream: {e}")))
}
