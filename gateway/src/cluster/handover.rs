//! A persistent session moves with its client: when the client connects to node B while its
//! session is on node A, B takes the session over, and nothing A had for it is lost or
//! delivered twice.
//!
//! 1. **Prepare.** B asks A (core NATS request to `aviary.n.<A>.prepare`) for the session's
//!    record. A clean start ends A's session there instead, will and all, and nothing moves.
//! 2. **Open.** B opens the session from the record, offline and subscribed, and waits until
//!    its stream consumer listens to the session's filters. From then on every stream message
//!    for the session reaches B too.
//! 3. **Mark.** B writes a marker into the message stream, addressed to A. Stream messages
//!    come to every node in the stream's order, and persistent sessions take their QoS 1/2
//!    messages from the stream only (`broker::publish`), so when A's consumer reaches the
//!    marker, A has had every message before it: delivered, queued or in flight.
//! 4. **Hand over.** A takes the session out (closing its connection there, if any) and sends
//!    it to B's inbox. B puts A's messages first and keeps, of its own, only those after the
//!    marker's sequence number.
//!
//! If A does not answer, it died or stopped: once its lease has run out, one of the nodes
//! that remain adopts its sessions from the copy of its store (see [`super::adoption`]), and
//! B moves the session from the adopter. A node that holds its lease but does not answer
//! leaves B with a fresh session.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::adoption::Adoption;
use super::metrics::ClusterMetrics;
use super::subject::token;
use crate::broker::{Broker, WeakBroker};

/// Subject prefix of handover markers, inside the message stream's subjects. No topic maps to
/// it: an escape is `_` and two hex digits.
pub(super) const MARK_PREFIX: &str = "aviary.q._mark_";
/// How long B waits for A to reach the marker and answer.
const WAIT: Duration = Duration::from_secs(10);

/// The marker subject addressed to `node`, which its consumer always listens to.
pub(super) fn mark_subject(node: &str) -> String {
    format!("{MARK_PREFIX}.{}", token(node))
}

fn prepare_subject(node: &str) -> String {
    format!("aviary.n.{}.prepare", token(node))
}

/// Asks the interest task to confirm that the consumer listens to everything subscribed so
/// far; the sender completes once it does.
pub(super) type Sync = oneshot::Sender<()>;

/// This node's side of session moves, both ways.
#[derive(Debug)]
pub(super) struct Handover {
    client: async_nats::Client,
    js: jetstream::Context,
    /// Held through the broker's backplane: weak (see [`WeakBroker`]).
    broker: WeakBroker,
    sync: mpsc::UnboundedSender<Sync>,
    metrics: Arc<ClusterMetrics>,
    /// This node's name.
    node: String,
    /// Who adopts the sessions of a node that died: set once the node is up.
    adoption: std::sync::OnceLock<Arc<Adoption>>,
}

impl Handover {
    /// Sets who adopts the sessions of a node that died.
    pub(super) fn adopt_with(&self, adoption: Arc<Adoption>) {
        let _ = self.adoption.set(adoption);
    }

    /// Starts answering other nodes' requests for this node's sessions, until `shutdown`.
    pub(super) async fn start(
        client: async_nats::Client,
        js: jetstream::Context,
        node: &str,
        broker: Broker,
        sync: mpsc::UnboundedSender<Sync>,
        metrics: Arc<ClusterMetrics>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, async_nats::SubscribeError> {
        let mut requests = client.subscribe(prepare_subject(node)).await?;
        let (answering, answer_broker) = (client.clone(), broker.clone());
        tokio::spawn(async move {
            loop {
                let request = tokio::select! {
                    r = requests.next() => r,
                    () = shutdown.cancelled() => None,
                };
                let Some(request) = request else { break };
                let Some(reply) = request.reply else { continue };
                let answer = prepare(&answer_broker, request.payload);
                if let Err(e) = answering.publish(reply, answer.into()).await {
                    debug!(error = %e, "cannot answer a session handover request");
                }
            }
        });
        Ok(Arc::new(Self {
            client,
            js,
            broker: broker.downgrade(),
            sync,
            metrics,
            node: node.to_owned(),
            adoption: Default::default(),
        }))
    }

    /// Moves `client_id`'s session here from node `from` (see the module documentation).
    pub(super) async fn move_here(&self, client_id: &str, from: &str, clean_start: bool) {
        let mut request = BytesMut::with_capacity(1 + client_id.len());
        request.put_u8(u8::from(clean_start));
        request.put_slice(client_id.as_bytes());
        let request = request.freeze();
        let mut from = from.to_owned();
        let record = loop {
            match self
                .client
                .request(prepare_subject(&from), request.clone())
                .await
            {
                Ok(reply) => break reply.payload,
                Err(e) => {
                    // Silent: the node died, or stopped. Once one of the nodes that remain
                    // has adopted its sessions, the session moves from there.
                    debug!(%client_id, %from, error = %e, "no answer for the session");
                    let adopter = match self.adoption.get() {
                        Some(adoption) => adoption.after_death(&from).await,
                        None => None,
                    };
                    match adopter {
                        Some(adopter) if adopter != self.node && adopter != from => {
                            from = adopter;
                        }
                        // Adopted here (the session is here now), or not at all.
                        _ => return,
                    }
                }
            }
        };
        let from = from.as_str();
        if clean_start || record.is_empty() {
            return;
        }
        // Gone: the gateway is stopping.
        let Some(broker) = self.broker.upgrade() else {
            return;
        };
        let session = match broker.open_moving_session(record) {
            Ok(s) => s,
            Err(e) => {
                warn!(%client_id, %from, error = %e, "session not moved");
                return;
            }
        };
        let result = self.take_from(client_id, from, &session).await;
        match result {
            Ok(after) => {
                ClusterMetrics::count(&self.metrics.sessions_moved_in);
                info!(%client_id, %from, after, "session moved here");
            }
            Err(e) => {
                warn!(%client_id, %from, error = %e, "session moved without its messages")
            }
        }
    }

    /// Steps 2–4 for a session opened here: its messages from `from`, merged.
    async fn take_from(
        &self,
        client_id: &str,
        from: &str,
        session: &crate::broker::Session,
    ) -> Result<u64, String> {
        let (synced, confirmed) = oneshot::channel();
        self.sync.send(synced).map_err(|_| "the node is stopping")?;
        confirmed.await.map_err(|_| "the node is stopping")?;
        let inbox = self.client.new_inbox();
        let mut answer = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| e.to_string())?;
        let mut marker = BytesMut::new();
        marker.put_u16(inbox.len() as u16);
        marker.put_slice(inbox.as_bytes());
        marker.put_slice(client_id.as_bytes());
        let ack = self
            .js
            .publish(mark_subject(from), marker.freeze())
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        let handed = tokio::time::timeout(WAIT, answer.next())
            .await
            .map_err(|_| format!("{from} did not answer within {WAIT:?}"))?
            .ok_or("the inbox closed")?;
        if handed.payload.is_empty() {
            return Err(format!("{from} no longer had the session"));
        }
        crate::broker::adopt_session(session, handed.payload, ack.sequence)
            .map_err(|e| e.to_string())?;
        Ok(ack.sequence)
    }
}

/// Answers a prepare request: the session's record, or nothing (no such session, or a clean
/// start, which ends it).
fn prepare(broker: &Broker, mut payload: Bytes) -> Vec<u8> {
    if payload.is_empty() {
        return Vec::new();
    }
    let clean_start = payload.get_u8() != 0;
    let Ok(client_id) = std::str::from_utf8(&payload) else {
        return Vec::new();
    };
    if clean_start {
        broker.end_moved_session(client_id);
        return Vec::new();
    }
    broker.describe_session(client_id).unwrap_or_default()
}

/// A marker addressed to this node reached its consumer: every message before it has been
/// routed here, so the session goes to the inbox the marker names.
pub(super) async fn marked(
    client: &async_nats::Client,
    broker: &Broker,
    metrics: &ClusterMetrics,
    mut payload: Bytes,
) {
    if payload.remaining() < 2 {
        return;
    }
    let len = usize::from(payload.get_u16());
    if payload.remaining() < len {
        return;
    }
    let inbox = payload.split_to(len);
    let (Ok(inbox), Ok(client_id)) = (std::str::from_utf8(&inbox), std::str::from_utf8(&payload))
    else {
        warn!("a handover marker that does not decode");
        return;
    };
    let handed = broker.hand_over(client_id).unwrap_or_default();
    if !handed.is_empty() {
        ClusterMetrics::count(&metrics.sessions_moved_out);
        info!(%client_id, "session handed over to another node");
    }
    if let Err(e) = client.publish(inbox.to_owned(), handed.into()).await {
        warn!(%client_id, error = %e, "cannot send a session to the node taking it over");
    }
}
