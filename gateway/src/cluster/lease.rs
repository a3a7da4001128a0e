//! Node leases: each node holds a key in the `AVIARY_NODES` key-value bucket, named after the
//! node, and renews it every fifth of the lease (`[cluster] lease_ms`, 15 s by default). The
//! bucket keeps a value a lease after its last write, so a node that dies (or is cut off from
//! NATS) drops out of the bucket on its own, without anyone deciding it: the list of live
//! nodes is the bucket's keys. The value says where the node serves and how many clients it
//! has, for `GET /api/v1/cluster`.
//!
//! A node that claims a dead node's sessions first writes a *mark* under its name, by
//! compare-and-set against the lease being gone, and takes it away the same way once its
//! claim is written: a lease renewed in between (the node was back) makes it withdraw the
//! claim (see `adoption::confirm`). A mark is not a lease: nobody reads it as a live node.
//!
//! Each renewal, or its failure, is what the node's [`Link`] judges the link by. A failed
//! renewal is tried again soon rather than a fifth of a lease later, so that a short hiccup
//! of NATS does not cut the node off. Renewals are that frequent (a few bytes each) because
//! the link's grace is counted from the last one: a JetStream leader election, which takes
//! seconds, must fit between it and the end of the grace.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::link::Link;
use super::ClusterError;
use crate::broker::{Broker, Metrics, WeakBroker};

/// The bucket of node leases.
pub(super) const BUCKET: &str = "AVIARY_NODES";
/// How long a read of the leases (for `GET /api/v1/cluster`) may take.
const READ_WAIT: Duration = Duration::from_secs(3);
/// How long a starting node tries to take its lease.
const TAKE_WAIT: Duration = Duration::from_secs(15);
/// How long a leaving node waits for its last writes, then for its lease to be given back.
const LEAVE_WAIT: Duration = Duration::from_secs(2);
/// How a mark begins; a lease is JSON, which begins with `{`.
const MARK: &str = "gone:";

/// The mark `by` writes under a dead node's name while it claims the node's sessions.
pub(super) fn mark(by: &str) -> bytes::Bytes {
    format!("{MARK}{by}").into()
}

/// Whether a value of the bucket is a lease (and not a mark).
pub(super) fn is_lease(value: &[u8]) -> bool {
    !value.starts_with(MARK.as_bytes())
}

/// A live node, as its lease describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Its name.
    pub node: String,
    /// Where it serves MQTT over TCP.
    pub mqtt: SocketAddr,
    /// Where it serves HTTP (the web app, WebSocket, the REST API).
    pub http: SocketAddr,
    /// Its connected clients when it last renewed.
    pub clients: u64,
    /// When it last renewed its lease, in Unix milliseconds.
    pub renewed_unix_ms: u64,
}

/// Where this node serves, for its lease.
#[derive(Debug, Clone, Copy)]
pub struct Addresses {
    /// MQTT over TCP.
    pub mqtt: SocketAddr,
    /// HTTP.
    pub http: SocketAddr,
}

/// This node's lease and the view of everyone's.
#[derive(Debug)]
pub(crate) struct Leases {
    kv: kv::Store,
    node: String,
    addrs: Addresses,
    /// Held through the broker's backplane: weak (see [`WeakBroker`]).
    broker: WeakBroker,
    /// How long a lease lasts.
    lease: Duration,
    link: Arc<Link>,
}

/// What [`Leases::start`] needs besides the bucket's place.
pub(super) struct LeaseSetup {
    pub(super) node: String,
    pub(super) addrs: Addresses,
    pub(super) lease: Duration,
    pub(super) link: Arc<Link>,
    /// Writes (will records) a leaving node finishes before it gives its lease back, so that
    /// no other node acts on what this one settled itself.
    pub(super) last_writes: TaskTracker,
}

impl Leases {
    /// Opens the bucket, takes this node's lease and keeps renewing it until `shutdown`.
    pub(super) async fn start(
        js: &jetstream::Context,
        replicas: u8,
        setup: LeaseSetup,
        broker: Broker,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, ClusterError> {
        let kv = super::bucket(js, BUCKET, replicas, setup.lease).await?;
        let leases = Arc::new(Self {
            kv,
            node: setup.node,
            addrs: setup.addrs,
            broker: broker.downgrade(),
            lease: setup.lease,
            link: setup.link,
        });
        leases.take().await?;
        let renewing = leases.clone();
        tokio::spawn(async move {
            renewing.keep_renewing(shutdown).await;
            // Leaving: others need not wait for the lease to run out.
            setup.last_writes.close();
            let _ = tokio::time::timeout(LEAVE_WAIT, setup.last_writes.wait()).await;
            let _ = tokio::time::timeout(LEAVE_WAIT, renewing.kv.purge(&renewing.node)).await;
        });
        Ok(leases)
    }

    /// Takes the lease for the first time. A bucket just created may have no leader yet
    /// ("no stream found"): asked again for a while.
    async fn take(&self) -> Result<(), ClusterError> {
        let deadline = tokio::time::Instant::now() + TAKE_WAIT;
        loop {
            match self.renew().await {
                Ok(()) => break,
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    let why = format!("cannot take this node's lease: {e}");
                    return Err(ClusterError::Stream(why));
                }
                Err(e) => debug!(error = %e, "cannot take this node's lease yet; retrying"),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        self.link.taken();
        Ok(())
    }

    /// Renews the lease every fifth of it until `shutdown`, at once when NATS is back, and
    /// soon again after a failure; tells the link of each success.
    async fn keep_renewing(&self, shutdown: CancellationToken) {
        let every = self.lease / 5;
        let retry = (every / 4).max(Duration::from_millis(100));
        let (mut next, mut failing) = (every, false);
        loop {
            tokio::select! {
                () = tokio::time::sleep(next) => {}
                () = self.link.renew_now.notified() => {}
                () = shutdown.cancelled() => return,
            }
            // Bounded: a request into a dead connection would otherwise wait for its timeout.
            let renewed = tokio::time::timeout(every, self.renew())
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {every:?}")));
            match renewed {
                Ok(()) => {
                    if std::mem::take(&mut failing) {
                        info!("this node's lease is renewed again");
                    }
                    if self.link.renewed() {
                        // Perhaps taken for dead meanwhile: the node stays cut off until it
                        // has made sure nobody claimed its sessions (see `adoption::confirm`).
                        self.link.returning.notify_one();
                    }
                    next = every;
                }
                Err(e) => {
                    if !std::mem::replace(&mut failing, true) {
                        warn!(error = %e, "cannot renew this node's lease; retrying");
                    }
                    next = retry;
                }
            }
        }
    }

    async fn renew(&self) -> Result<(), String> {
        let info = NodeInfo {
            node: self.node.clone(),
            mqtt: self.addrs.mqtt,
            http: self.addrs.http,
            clients: self
                .broker
                .upgrade()
                .map_or(0, |b| Metrics::get(&b.metrics().clients_connected)),
            renewed_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        };
        let value = serde_json::to_vec(&info).map_err(|e| e.to_string())?;
        self.kv
            .put(&self.node, value.into())
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// The nodes whose leases are live, by name. Bounded: while JetStream elects a leader
    /// for the bucket, a request would otherwise wait for the client's 10 s timeout.
    pub(crate) async fn nodes(&self) -> Result<Vec<NodeInfo>, String> {
        tokio::time::timeout(READ_WAIT, self.read_nodes())
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {READ_WAIT:?}")))
    }

    async fn read_nodes(&self) -> Result<Vec<NodeInfo>, String> {
        let mut keys = self.kv.keys().await.map_err(|e| e.to_string())?;
        let mut nodes = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| e.to_string())?;
            // A lease that ran out between the listing and the read is simply gone.
            let value = self.kv.get(&key).await.map_err(|e| e.to_string())?;
            if let Some(value) = value.filter(|v| is_lease(v)) {
                match serde_json::from_slice::<NodeInfo>(&value) {
                    Ok(info) => nodes.push(info),
                    Err(e) => warn!(%key, error = %e, "a node lease that does not parse"),
                }
            }
        }
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(nodes)
    }

    /// This node's name.
    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// The lease bucket.
    pub(super) fn kv(&self) -> &kv::Store {
        &self.kv
    }

    /// This node's link to the cluster.
    pub(crate) fn link(&self) -> &Link {
        &self.link
    }
}
