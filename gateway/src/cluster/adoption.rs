//! The persistent sessions of a node that died, adopted by one that remains: their clients
//! reconnect anywhere and resume, with nothing the dead node acknowledged lost.
//!
//! Every node copies its store into JetStream ([`super::replica`]), and the dead node's
//! stream consumer still holds what the node was given and never acknowledged (it
//! acknowledges a message only once its store, and so the copy, holds what routing queued).
//! Between the two, nothing is missing. One node adopts a dead node whole:
//!
//! 1. **Claim.** The first to create the dead node's key in `AVIARY_ADOPTIONS` adopts it;
//!    the others wait for its word there (`adopted:<node>`, see [`claim`]). The claim holds
//!    once the node is known to hold no lease after it was written ([`confirm`]).
//! 2. **Open.** The adopter replays the dead node's log and opens each session it held,
//!    offline and subscribed, then waits until its own consumer listens to their filters:
//!    from then on every stream message for them reaches it too.
//! 3. **Mark.** It writes a marker into the stream, addressed to the dead node. Messages
//!    before the marker are the dead node's (in its log, or still in its consumer); the
//!    adopted sessions take from the adopter's own consumer only those after it, as a session
//!    moving between live nodes does (see [`super::handover`]).
//! 4. **Drain.** It reads what the dead node's consumer holds up to the marker and routes it
//!    to the adopted sessions only, but for what the dead node's store holds already
//!    ([`drain`]).
//! 5. **Settle.** Once its own store holds it all, the adoption is marked done; then the dead
//!    node's consumer and log go, under the key's hold ([`leftovers`]).
//!
//! Until step 5 nothing of the dead node's is changed, so an adoption can start again from
//! the beginning: an adopter that dies in it leaves its claim, and the node that adopts the
//! adopter takes over its unfinished adoptions too (by compare-and-set), leaving out the
//! stale copies of their sessions in the dead adopter's log ([`take_over`]). An adopter
//! killed and restarted before anyone noticed finds its own claim at start and does the same.
//! One that dies after step 5's word and before the dead node's consumer and log are gone
//! leaves them: whoever adopts it drops them again (as does the adopter, restarted), unless
//! the adopted node is back first, which drops its old consumer itself.
//!
//! `AVIARY_CLIENTS` still names the dead node for the adopted client ids: the wills of its
//! clients are settled as before (see [`super::orphans`]), and a client that reconnects, to
//! any node, finds the dead node silent. That node waits for the dead one's lease to run out
//! and for its adoption ([`Adoption::after_death`]), then moves the session from the adopter
//! as from any live node.
//!
//! A node that finds its own name in `AVIARY_ADOPTIONS` at start was adopted while it was
//! away: it forgets the sessions its store brought back, which live elsewhere now ([`back`]).

mod back;
mod claim;
mod confirm;
mod drain;
mod leftovers;
mod take_over;

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use self::claim::{Claim, Leftovers};
use self::confirm::Claimed;
use self::leftovers::Finished;
use self::take_over::Adoptee;
use super::handover::Sync;
use super::metrics::ClusterMetrics;
use super::orphans::Orphans;
use super::subject::{token, untoken};
use super::ClusterError;
use crate::broker::{Broker, ClientKey, WeakBroker};

/// The bucket of adoptions: per dead node, who adopts (or adopted) its sessions.
const BUCKET: &str = "AVIARY_ADOPTIONS";
/// How long a node waits for another's adoption, and an adopter for the dead node's
/// consumer to be read.
const WAIT: Duration = Duration::from_secs(30);
/// How often a waiting node looks again.
const POLL: Duration = Duration::from_millis(100);
/// How long an adopter keeps trying to finish adoptions claimed here.
const RETRY: Duration = Duration::from_secs(120);

/// This node's side of adoptions.
#[derive(Debug)]
pub(super) struct Adoption {
    node: String,
    replicas: u8,
    js: jetstream::Context,
    adoptions: kv::Store,
    /// `AVIARY_NODES`: a node whose lease is there is alive.
    nodes: kv::Store,
    /// Held through the broker's backplane: weak (see [`WeakBroker`]).
    broker: WeakBroker,
    sync: mpsc::UnboundedSender<Sync>,
    metrics: Arc<ClusterMetrics>,
    lease: Duration,
    /// Settles the wills of the nodes adopted here: set once the node is up.
    orphans: OnceLock<Weak<Orphans>>,
    /// Held from a claim to its adoption's end, and while adoptions left unfinished are
    /// done again, so that no adoption is taken over twice at once here.
    finishing: tokio::sync::Mutex<()>,
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
            broker: p.broker.downgrade(),
            sync: p.sync,
            metrics: p.metrics,
            lease: p.lease,
            orphans: OnceLock::new(),
            finishing: tokio::sync::Mutex::new(()),
        };
        if let Some(back) = this.back().await? {
            info!(
                forgotten = back.forgotten,
                by = %back.by,
                "this node's sessions were adopted while it was away: forgot them here"
            );
        }
        Ok(Arc::new(this))
    }

    /// The broker, unless the gateway is stopping.
    fn broker(&self) -> Result<Broker, &'static str> {
        self.broker.upgrade().ok_or("the gateway is stopping")
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
            Ok(e) => e.is_some_and(|e| {
                e.operation == kv::Operation::Put && super::lease::is_lease(&e.value)
            }),
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
        // Each server of the bucket drops a lease that ran out on its own clock: one read
        // may find it gone while the leader, which decides the mark, still holds it. A node
        // alive renews far more often than this waits.
        let settled = tokio::time::Instant::now() + self.lease / 2;
        let (finishing, claimed) = loop {
            let finishing = self.finishing.lock().await;
            match self.claim(&dead, &key).await? {
                Claimed::Withdrawn if tokio::time::Instant::now() < settled => {
                    drop(finishing);
                    tokio::time::sleep(POLL).await;
                }
                claimed => break (finishing, claimed),
            }
        };
        match claimed {
            Claimed::Confirmed => {
                info!(node = %dead, "a node is gone: adopting its persistent sessions");
                let adopted = self.adopt_claimed(dead).await;
                drop(finishing);
                if adopted.is_err() {
                    // Claimed here and unfinished: done again in the background, as after
                    // a restart, rather than left claimed until this node restarts or dies.
                    self.resume();
                }
                adopted.map(|()| self.node.clone())
            }
            Claimed::Withdrawn => Err(format!("{dead} holds its lease again")),
            Claimed::Taken if wait => {
                drop(finishing);
                self.adopted_by(&key).await
            }
            Claimed::Taken => Ok(String::new()),
        }
    }

    /// Adopts `dead`, claimed here, and what it left unfinished of its own adoptions.
    async fn adopt_claimed(&self, dead: String) -> Result<(), String> {
        let left = self.inherit(&dead).await?;
        let mut work = vec![Adoptee {
            node: dead,
            previous: Vec::new(),
        }];
        work.extend(left.unfinished);
        self.finish(work).await?;
        self.sweep(&left.finished).await;
        Ok(())
    }

    /// The adoptions claimed here and unfinished, done again in the background, tried
    /// for up to [`RETRY`]: at start, after a restart quick enough that no node noticed this
    /// one was gone, and after an adoption failed part-way.
    pub(super) fn resume(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move {
            let what = "finishing the adoptions claimed here";
            if let Err(e) = super::setup::retrying_for(what, RETRY, || this.finish_left()).await {
                warn!(error = %e, "adoptions claimed here are unfinished; the next start tries again");
            }
        });
    }

    /// The adoptions claimed here: the finished ones swept, the unfinished ones done.
    async fn finish_left(&self) -> Result<(), String> {
        let _finishing = self.finishing.lock().await;
        let left = self.left_by(&self.node, false).await?;
        self.sweep(&left.finished).await;
        if left.unfinished.is_empty() {
            return Ok(());
        }
        info!(
            nodes = left.unfinished.len(),
            "adopting again what this node left unfinished"
        );
        self.finish(left.unfinished).await
    }

    /// What `dead`'s adoptions left: the unfinished ones, taken over here.
    async fn inherit(&self, dead: &str) -> Result<Left, String> {
        let left = self.left_by(dead, true).await?;
        for adoptee in &left.unfinished {
            info!(node = %adoptee.node, from = %dead, "taking over an adoption a dead node left unfinished");
        }
        Ok(left)
    }

    /// What `holder`'s adoptions left: the ones it holds, each claimed for this node by
    /// compare-and-set (if `claim`: another may be first), which leaves out the ones it lost;
    /// and the nodes whose adoption it finished.
    async fn left_by(&self, holder: &str, claim: bool) -> Result<Left, String> {
        let mut keys = self.adoptions.keys().await.map_err(|e| e.to_string())?;
        let (mut found, mut finished) = (Vec::new(), Vec::new());
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| e.to_string())?;
            let Some(entry) = self
                .adoptions
                .entry(&key)
                .await
                .map_err(|e| e.to_string())?
            else {
                continue;
            };
            let (Some(node), Some(said)) = (untoken(&key), Claim::parse(&entry.value)) else {
                continue;
            };
            let holders = match said {
                // Never confirmed, so nothing of the node's was copied: withdrawn.
                Claim::Claiming(by) if by == holder => {
                    let withdrawn = self
                        .adoptions
                        .delete_expect_revision(&key, Some(entry.revision));
                    if withdrawn.await.is_ok() {
                        info!(%node, "withdrew a claim its holder never confirmed");
                    }
                    continue;
                }
                Claim::Adopting(holders) if holders[0] == holder => holders,
                // Left by the holder when it died, in its word or in its hands.
                Claim::Adopted { adopter, leftovers }
                    if matches!(&leftovers, Leftovers::Left if adopter == holder)
                        || matches!(&leftovers, Leftovers::Dropping(by) if by == holder) =>
                {
                    finished.push(Finished {
                        node,
                        adopter,
                        revision: entry.revision,
                    });
                    continue;
                }
                _ => continue,
            };
            let previous = match claim {
                true => holders,
                // This node's own claim: its stale copies are in this node, not a log.
                false => holders[1..].to_vec(),
            };
            if claim {
                let mine = Claim::adopting(&self.node, &previous).encode();
                if self
                    .adoptions
                    .update(&key, mine, entry.revision)
                    .await
                    .is_err()
                {
                    continue;
                }
            }
            found.push(Adoptee { node, previous });
        }
        Ok(Left {
            unfinished: found,
            finished,
        })
    }

    /// Steps 2 to 5 for `work`, claimed here.
    async fn finish(&self, work: Vec<Adoptee>) -> Result<(), String> {
        let adopted = self.take_over(&work).await?;
        // Done, and the leftovers held here to be dropped next.
        let done = Claim::adopted(&self.node, Leftovers::Dropping(self.node.clone())).encode();
        let mut revisions = Vec::with_capacity(work.len());
        for adoptee in &work {
            let put = self.adoptions.put(token(&adoptee.node), done.clone());
            revisions.push(put.await.map_err(|e| e.to_string())?);
        }
        let nodes: Vec<&str> = work.iter().map(|a| a.node.as_str()).collect();
        info!(?nodes, sessions = adopted, "adopted dead nodes' sessions");
        for (adoptee, revision) in work.iter().zip(revisions) {
            // A node that left in good order kept its delayed wills for its return; it
            // forgets its sessions then, so they are the cluster's to settle now.
            if let Some(orphans) = self.orphans.get().and_then(Weak::upgrade) {
                orphans.settle_node(&adoptee.node);
            }
            self.drop_held(&adoptee.node, &self.node, revision).await;
        }
        Ok(())
    }

    /// Waits until the adoption of the node under `key` is done: its adopter.
    async fn adopted_by(&self, key: &str) -> Result<String, String> {
        let waiting = async {
            loop {
                let entry = self.adoptions.get(key).await.map_err(|e| e.to_string())?;
                if let Some(Claim::Adopted { adopter, .. }) =
                    entry.as_deref().and_then(Claim::parse)
                {
                    return Ok(adopter);
                }
                tokio::time::sleep(POLL).await;
            }
        };
        tokio::time::timeout(WAIT, waiting)
            .await
            .map_err(|_| format!("no adoption done within {WAIT:?}"))?
    }
}

/// What a node's adoptions left (see [`Adoption::left_by`]).
struct Left {
    unfinished: Vec<Adoptee>,
    finished: Vec<Finished>,
}
