//! One connection per client id across the cluster, enforced by compare-and-set, not timing.
//!
//! The `AVIARY_CLIENTS` bucket holds, per client id, the node whose connection has it. A node
//! accepts a CONNECT only after it has written its name there over the last revision it read
//! (create, or update at that revision; a lost race reads again and retries). Every node
//! watches the bucket: when a client id it holds is written by another node at a later
//! revision than its own claim, it closes its connection of that id with DISCONNECT 0x8E
//! (Session taken over). The newest claim wins, wherever it was made, and each node decides
//! from the revisions alone.

use std::collections::HashMap;
use std::sync::Arc;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::subject::{token, untoken};
use super::ClusterError;
use crate::broker::{Broker, ForwardError};

/// The bucket of client-id owners.
const BUCKET: &str = "AVIARY_CLIENTS";
/// Compare-and-set attempts before a CONNECT is refused: each lost one means another node
/// claimed the same id in between, so this many in a row is a storm, not bad luck.
const ATTEMPTS: usize = 32;
/// Failed reads of the owner tolerated per claim, [`RETRY_DELAY`] apart and growing.
const TRANSIENT_ERRORS: u32 = 3;
const RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

/// This node's claims on client ids.
#[derive(Debug)]
pub(super) struct Owners {
    kv: kv::Store,
    node: String,
    /// The revision of this node's latest claim per key.
    claims: Mutex<HashMap<String, u64>>,
    /// Claims of one key on this node go one at a time (striped by key): they would only
    /// race each other at the bucket, and a storm of connects with one id would exhaust
    /// their attempts.
    stripes: Vec<tokio::sync::Mutex<()>>,
}

/// Claim stripes per node.
const STRIPES: usize = 64;

impl Owners {
    /// Opens the bucket and starts watching it until `shutdown`.
    pub(super) async fn start(
        js: &jetstream::Context,
        replicas: u8,
        node: String,
        broker: Broker,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, ClusterError> {
        let kv = super::bucket(js, BUCKET, replicas, std::time::Duration::ZERO).await?;
        let mut watch = super::setup::step(BUCKET, || kv.watch_all()).await?;
        let owners = Arc::new(Self {
            kv,
            node,
            claims: Mutex::new(HashMap::new()),
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
        });
        let watching = owners.clone();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    next = watch.next() => next,
                    () = shutdown.cancelled() => None,
                };
                match next {
                    None => break,
                    Some(Ok(entry)) => watching.seen(&broker, &entry),
                    Some(Err(e)) => debug!(error = %e, "client owner watch hiccup"),
                }
            }
        });
        Ok(owners)
    }

    /// The bucket of client-id owners.
    pub(super) fn kv(&self) -> &kv::Store {
        &self.kv
    }

    /// Claims `client_id` for this node, once the claim is written: the node that held it
    /// before, if another one.
    pub(super) async fn claim(&self, client_id: &str) -> Result<Option<String>, ForwardError> {
        let key = token(client_id);
        let stripe = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(&key, &mut h);
            std::hash::Hasher::finish(&h) as usize % STRIPES
        };
        let _one_at_a_time = self.stripes[stripe].lock().await;
        let value = Bytes::from(self.node.clone());
        // The owner before this claim. Kept across attempts: a write whose answer was lost
        // may have landed, and the next attempt then reads this node's own name.
        let mut previous = None;
        let mut errors = 0;
        for _ in 0..ATTEMPTS {
            let current = match self.kv.entry(&key).await {
                Ok(current) => current,
                // JetStream answers errors for a moment while a replica catches up or a
                // leader is elected: worth a few tries before the client is refused.
                Err(e) if errors < TRANSIENT_ERRORS => {
                    errors += 1;
                    debug!(error = %e, client_id, "reading the client id's owner failed; retrying");
                    tokio::time::sleep(RETRY_DELAY * errors).await;
                    continue;
                }
                Err(e) => {
                    return Err(ForwardError(format!(
                        "cannot read the client id's owner: {e}"
                    )))
                }
            };
            let written = match current {
                // A deleted or purged key is absent: `create` takes it over.
                Some(e) if e.operation == kv::Operation::Put => {
                    if e.value != self.node.as_bytes() {
                        previous = Some(String::from_utf8_lossy(&e.value).into_owned());
                    }
                    self.kv.update(&key, value.clone(), e.revision).await.ok()
                }
                _ => self.kv.create(&key, value.clone()).await.ok(),
            };
            if let Some(revision) = written {
                let mut claims = self.claims.lock();
                let slot = claims.entry(key).or_default();
                *slot = (*slot).max(revision);
                return Ok(previous);
            }
        }
        Err(ForwardError(format!(
            "the client id was claimed elsewhere {ATTEMPTS} times in a row"
        )))
    }

    /// Whether this node's claim of `client_id` stands: not overtaken by a later one from
    /// another node (see [`Owners::seen`]).
    pub(super) fn holds(&self, client_id: &str) -> bool {
        self.claims.lock().contains_key(&token(client_id))
    }

    /// A write to the bucket: if another node took a client id this node holds, later than
    /// this node's claim, this node's connection of it goes.
    fn seen(&self, broker: &Broker, entry: &kv::Entry) {
        if entry.operation != kv::Operation::Put || entry.value == self.node.as_bytes() {
            return;
        }
        let mut claims = self.claims.lock();
        let Some(&mine) = claims.get(&entry.key) else {
            return;
        };
        if entry.revision <= mine {
            return;
        }
        claims.remove(&entry.key);
        drop(claims);
        let Some(client_id) = untoken(&entry.key) else {
            warn!(key = %entry.key, "a client owner key that does not decode");
            return;
        };
        let owner = String::from_utf8_lossy(&entry.value);
        if broker.kick_client(&client_id, aviary_protocol::ReasonCode::SESSION_TAKEN_OVER) {
            info!(%client_id, %owner, "client taken over by a connection on another node");
        }
    }
}
