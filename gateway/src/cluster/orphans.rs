//! The wills of a node that is gone: its clients' wills fire once, published by one of the
//! nodes that remain, as a single broker publishes the will of a connection it lost.
//!
//! **Noticing a dead node.** Every node follows the `AVIARY_NODES` bucket. A lease that runs
//! out is not an event the bucket reports unless it was made with JetStream's limit markers,
//! a setting that the buckets of running clusters lack; so each node notes when it last saw
//! each lease renewed and, once one has gone a whole lease without renewal, asks the bucket,
//! whose word is final: a key that is gone is a node that is gone. A node that cannot renew
//! its own lease decides nothing: it may be the one cut off.
//!
//! A lease given back (a purge) is a node that left in good order, not a death: it published
//! its clients' wills as it closed their connections, except delayed ones, which wait in the
//! persistent sessions it keeps, and which it publishes when it is back, as a single broker
//! does after a restart. Settling them here as well would send them twice. Unless one of its
//! clients reconnects elsewhere meanwhile: its sessions are then adopted there (see
//! [`super::adoption`]), and forgotten when it is back, so the adopter settles their wills
//! as a dead node's ([`Orphans::settle_node`]).
//!
//! **Settling a will.** For each record in `AVIARY_WILLS` naming the dead node, every node
//! waits the will's delay, counted from now, the moment the node is known dead (a
//! connection's loss is known no sooner). Then it reads the record again: a record written
//! since belongs to a newer connection of that client. The nodes race to delete the record
//! by compare-and-set at the revision they read, and the one that wins publishes the will,
//! so it is published exactly once, unless `AVIARY_CLIENTS` shows another node holding the
//! client id: the client reconnected elsewhere before the delay ran out, which cancels the
//! will, as in MQTT.
//!
//! A node that cut itself off from the cluster (see [`super::link`]) left its clients' wills
//! unpublished; once back, it settles those records itself, the same way, unless its lease
//! ran out meanwhile and others did. A node starting settles the records of nodes that hold
//! no lease (whose end nobody saw, or that left and never came back), and those of its own
//! previous run that no session of its store brought back: it was killed and restarted
//! before its lease ran out, so nobody else noticed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::adoption::Adoption;
use super::link::Link;
use super::subject::{token, untoken};
use super::wills::{Record, Wills};
use crate::broker::Broker;

/// Settles the wills of the nodes that go.
pub(super) struct Orphans {
    pub(super) wills: Arc<Wills>,
    /// `AVIARY_NODES`.
    pub(super) nodes: kv::Store,
    /// `AVIARY_CLIENTS`: who holds each client id now.
    pub(super) clients: kv::Store,
    pub(super) broker: Broker,
    pub(super) lease: Duration,
    pub(super) link: Arc<Link>,
    /// Who adopts the sessions of the nodes that go: set once the node is up.
    pub(super) adoption: std::sync::OnceLock<Arc<Adoption>>,
    /// Records being settled here, so that a second sweep does not settle one twice.
    pub(super) settling: Mutex<HashSet<String>>,
    pub(super) shutdown: CancellationToken,
}

/// The next change of the leases, if they are followed; never, while they are not.
async fn next(watch: &mut Option<kv::Watch>) -> Option<Result<kv::Entry, kv::WatcherError>> {
    match watch {
        Some(w) => w.next().await,
        None => std::future::pending().await,
    }
}

/// What a sweep does with a will record.
enum Pick {
    /// Not this sweep's business.
    Leave,
    /// Waits its delay and claims it.
    Settle,
    /// This node's own: it removes the record once it publishes or discards the will.
    Adopt,
}

/// How a record was settled.
#[derive(Debug, PartialEq, Eq)]
enum Settled {
    /// This node won the record and publishes the will.
    Publish,
    /// This node won the record, but the client is connected elsewhere: no will.
    Cancelled,
    /// The record changed or went: a newer connection, or another node was first.
    Elsewhere,
}

impl Orphans {
    /// Sets who adopts the sessions of the nodes that go.
    pub(super) fn adopt_with(&self, adoption: Arc<Adoption>) {
        let _ = self.adoption.set(adoption);
    }

    /// Follows the leases until shutdown, and settles the wills of the nodes that go.
    pub(super) async fn run(self: Arc<Self>) {
        // Nodes already gone, with wills left behind (every node that saw them die is gone
        // too, or restarted).
        tokio::spawn(self.clone().sweep_at_start());
        let mut seen: HashMap<String, Instant> = HashMap::new();
        let mut tick = tokio::time::interval((self.lease / 20).max(Duration::from_millis(50)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let me = self.wills.node().to_owned();
        // Opened at the first tick, and again at a tick after it ends (NATS went away): it
        // brings every live lease first, then their changes.
        let mut watch = None;
        loop {
            tokio::select! {
                entry = next(&mut watch) => match entry {
                    Some(Ok(e)) if e.key == me => {}
                    Some(Ok(e)) if e.operation == kv::Operation::Put => {
                        // A mark is a claim on a node already found gone, not a renewal.
                        if super::lease::is_lease(&e.value) {
                            seen.insert(e.key, Instant::now());
                        }
                    }
                    // Given back: the node left in good order (see the module's notes); or a
                    // mark taken away.
                    Some(Ok(e)) => {
                        if seen.remove(&e.key).is_some() {
                            info!(node = %e.key, "a node left the cluster");
                        }
                    }
                    Some(Err(e)) => debug!(error = %e, "node lease watch hiccup"),
                    None => watch = None,
                },
                _ = tick.tick() => {
                    if watch.is_none() {
                        watch = self.nodes.watch_with_history(">").await.inspect_err(|e| {
                            debug!(error = %e, "cannot follow the node leases; trying again");
                        }).ok();
                    }
                    self.check_overdue(&mut seen).await;
                }
                () = self.link.back.notified() => {
                    tokio::spawn(self.clone().settle_left_behind());
                }
                () = self.shutdown.cancelled() => break,
            }
        }
    }

    /// Asks the bucket about every lease not seen renewed for a whole lease.
    async fn check_overdue(self: &Arc<Self>, seen: &mut HashMap<String, Instant>) {
        if !self.link.accepting() {
            return;
        }
        let overdue: Vec<String> = seen
            .iter()
            .filter(|(_, at)| at.elapsed() >= self.lease)
            .map(|(node, _)| node.clone())
            .collect();
        for node in overdue {
            // Bounded, so that a slow answer does not hold up the watch for long.
            let read = tokio::time::timeout(self.lease / 4, self.nodes.get(node.as_str()));
            match read.await {
                Ok(Ok(None)) => {
                    seen.remove(&node);
                    self.node_gone(&node, "its lease ran out");
                }
                // Renewed late, or not yet expired: asked again at the next tick.
                Ok(Ok(Some(_))) => {}
                Ok(Err(e)) => debug!(%node, error = %e, "cannot read a node's lease"),
                Err(_) => debug!(%node, "cannot read a node's lease: no answer"),
            }
        }
    }

    /// Settles the wills of `node`, apart from the watch: there may be many.
    fn node_gone(self: &Arc<Self>, node: &str, why: &str) {
        info!(%node, why, "a node is gone: settling its clients' wills");
        if let Some(adoption) = self.adoption.get() {
            // Every node that saw it tries; the first adopts, the others leave it.
            let (adoption, node) = (adoption.clone(), node.to_owned());
            tokio::spawn(async move {
                if let Err(e) = adoption.adopt(node.clone(), false).await {
                    warn!(%node, error = %e, "the dead node's sessions were not adopted");
                }
            });
        }
        self.settle_node(node);
    }

    /// Settles the will records naming `node`, apart from the caller: there may be many. A
    /// record being settled here already is left to that.
    pub(super) fn settle_node(self: &Arc<Self>, node: &str) {
        let (this, node) = (self.clone(), node.to_owned());
        tokio::spawn(async move {
            this.sweep(move |_, record| match record.node == node {
                true => Pick::Settle,
                false => Pick::Leave,
            })
            .await;
        });
    }

    /// At start: the records of nodes that hold no lease, whose end no node saw, and those
    /// of this node's previous run, if it was killed and came back before its lease ran out
    /// (no other node noticed). Of those, a session the store brought back keeps its will
    /// (and publishes it, as a single broker does); the others are orphans.
    async fn sweep_at_start(self: Arc<Self>) {
        let live: HashSet<String> = match self.nodes.keys().await {
            Ok(keys) => keys.filter_map(|k| async move { k.ok() }).collect().await,
            Err(e) => {
                debug!(error = %e, "cannot list the node leases");
                return;
            }
        };
        let (me, broker) = (self.wills.node().to_owned(), self.broker.clone());
        self.sweep(move |key, record| {
            if record.node == me {
                match untoken(key).is_some_and(|id| broker.has_session(&id)) {
                    true => Pick::Adopt,
                    false => Pick::Settle,
                }
            } else if live.contains(&record.node) {
                Pick::Leave
            } else {
                Pick::Settle
            }
        })
        .await;
    }

    /// Once back after being cut off: the records of the clients this node disconnected then.
    async fn settle_left_behind(self: Arc<Self>) {
        let keys: HashSet<String> = self.link.take_left().iter().map(|id| token(id)).collect();
        if keys.is_empty() {
            return;
        }
        let me = self.wills.node().to_owned();
        self.sweep_keys(keys.into_iter().collect(), move |_, record| {
            match record.node == me {
                true => Pick::Settle,
                false => Pick::Leave,
            }
        })
        .await;
    }

    /// Acts on every record as `pick` says.
    async fn sweep(self: &Arc<Self>, pick: impl Fn(&str, &Record) -> Pick) {
        let keys: Vec<String> = match self.wills.kv.keys().await {
            Ok(keys) => keys.filter_map(|k| async move { k.ok() }).collect().await,
            Err(e) => {
                warn!(error = %e, "cannot list the will records");
                return;
            }
        };
        self.sweep_keys(keys, pick).await;
    }

    async fn sweep_keys(self: &Arc<Self>, keys: Vec<String>, pick: impl Fn(&str, &Record) -> Pick) {
        for key in keys {
            let entry = match self.wills.kv.entry(key.as_str()).await {
                Ok(Some(e)) if e.operation == kv::Operation::Put => e,
                Ok(_) => continue,
                Err(e) => {
                    debug!(%key, error = %e, "cannot read a will record");
                    continue;
                }
            };
            let record = match Record::decode(entry.value) {
                Ok(r) => r,
                Err(e) => {
                    warn!(%key, error = %e, "a will record that does not decode");
                    continue;
                }
            };
            match pick(&key, &record) {
                Pick::Leave => {}
                Pick::Adopt => self.wills.adopt(key, entry.revision),
                Pick::Settle => {
                    if self.settling.lock().insert(key.clone()) {
                        tokio::spawn(self.clone().settle(key, entry.revision, record));
                    }
                }
            }
        }
    }

    /// Waits the will's delay, then claims the record and publishes the will if it won.
    async fn settle(self: Arc<Self>, key: String, revision: u64, record: Record) {
        let delay = Duration::from_secs(u64::from(record.will.delay_secs));
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = self.shutdown.cancelled() => return,
        }
        let settled = self.claim(&key, revision, &record).await;
        self.settling.lock().remove(&key);
        let client_id = untoken(&key).unwrap_or_else(|| key.clone());
        match settled {
            Ok(Settled::Publish) => {
                info!(%client_id, node = %record.node, topic = %record.will.message.topic, "publishing the will of a client of a node that is gone");
                self.broker.publish_will_of(&client_id, record.will);
            }
            Ok(Settled::Cancelled) => {
                info!(%client_id, node = %record.node, "will not published: the client reconnected to another node");
            }
            Ok(Settled::Elsewhere) => debug!(%client_id, "will settled elsewhere"),
            Err(e) => warn!(%client_id, error = %e, "cannot settle a will; leaving it"),
        }
    }

    /// Takes the record at `revision`, if it is still there, by compare-and-set.
    async fn claim(&self, key: &str, revision: u64, record: &Record) -> Result<Settled, String> {
        let current = self.wills.kv.entry(key).await.map_err(|e| e.to_string())?;
        if !current.is_some_and(|e| e.revision == revision && e.operation == kv::Operation::Put) {
            return Ok(Settled::Elsewhere);
        }
        let holder = self.clients.get(key).await.map_err(|e| e.to_string())?;
        let moved = holder.is_some_and(|h| h != record.node.as_bytes());
        if self
            .wills
            .kv
            .delete_expect_revision(key, Some(revision))
            .await
            .is_err()
        {
            return Ok(Settled::Elsewhere);
        }
        self.wills.disown(key);
        Ok(if moved {
            Settled::Cancelled
        } else {
            Settled::Publish
        })
    }
}
