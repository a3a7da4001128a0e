//! A claim on a dead node's sessions holds only if the node held no lease at some moment
//! after the claim was written; and a node back (restarted, or renewing again after its
//! grace ran out) looks for claims only after its lease is written again. Then one of the two
//! always sees the other: the claimer finds the lease and withdraws, or the node finds the
//! claim and leaves its sessions to it.
//!
//! Reads cannot decide this: the buckets answer reads from any replica (direct gets), one of
//! which may still show a lease that ran out, or not yet show a claim. Compare-and-set can,
//! as the stream's leader decides it. So:
//!
//! 1. **Mark.** The claimer writes a mark under the dead node's name in `AVIARY_NODES`,
//!    created only where no lease is (see [`crate::cluster::lease`]).
//! 2. **Claim.** It creates the node's key in `AVIARY_ADOPTIONS`: `claiming:<claimer>`.
//! 3. **Confirm.** It takes its mark away at the mark's revision. That fails if the node
//!    renewed its lease since step 1 (a renewal overwrites the mark): the claimer then
//!    withdraws its claim, at the claim's revision. Otherwise the node held no lease when
//!    the claim was there, and the claim becomes `adopting:<claimer>`.
//!
//! The node back settles its own key by compare-and-set as well, even when it reads none:
//! it purges the key at the revision it read, which fails if a claim it did not see was
//! there. A claim still `claiming:` or `adopting:` it waits for (it may be withdrawn);
//! one done means its sessions live elsewhere: at start it forgets them ([`super::back`]),
//! and while running it is fenced (see [`crate::cluster::link`]).
//!
//! A claimer that dies between steps 1 and 3 leaves a mark, which runs out as a lease does,
//! and perhaps a `claiming:` claim, which whoever adopts the claimer withdraws: nothing of
//! the dead node's was copied yet. The dead node's sessions stay in its log until a client
//! of it reconnects (its adoption is done then) or it is back.

use std::sync::Arc;

use async_nats::jetstream::kv;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use super::claim::Claim;
use super::{Adoption, POLL, WAIT};
use crate::cluster::lease;
use crate::cluster::link::Link;
use crate::cluster::subject::token;
use crate::cluster::ClusterError;

/// How often a claimer tries to mark a dead node whose bucket entry it cannot make out.
const MARK_TRIES: usize = 5;

/// What step 1 found under the dead node's name.
pub(super) enum Mark {
    /// Marked here, at this revision.
    Made(u64),
    /// The node holds its lease.
    Alive,
    /// Another claimer's mark: that one claims the node.
    Other,
}

/// How steps 2 and 3 went.
pub(super) enum Claimed {
    /// Claimed and confirmed: `adopting:` this node.
    Confirmed,
    /// The node renewed its lease meanwhile: the claim is withdrawn.
    Withdrawn,
    /// Another node claimed it first.
    Taken,
}

/// Whether a node's own key says its sessions are still its own.
pub(super) enum Own {
    /// Nobody claims them: the key is purged at the revision read.
    Yes,
    /// A claim, read at this entry.
    Claimed(kv::Entry, Claim),
}

impl Adoption {
    /// Steps 1 to 3 on `dead`, under the key `key`.
    pub(super) async fn claim(&self, dead: &str, key: &str) -> Result<Claimed, String> {
        let mark = match self.mark(dead).await? {
            Mark::Made(revision) => revision,
            Mark::Alive => return Ok(Claimed::Withdrawn),
            Mark::Other => return Ok(Claimed::Taken),
        };
        let claiming = Claim::Claiming(self.node.clone()).encode();
        let revision = match self.adoptions.create(key, claiming).await {
            Ok(revision) => revision,
            Err(e) => {
                // Not this node's to claim: the mark goes, or the node waits for it to run out.
                let _ = self.nodes.delete_expect_revision(dead, Some(mark)).await;
                return match e.kind() {
                    kv::CreateErrorKind::AlreadyExists => Ok(Claimed::Taken),
                    _ => Err(e.to_string()),
                };
            }
        };
        if let Err(e) = self.nodes.delete_expect_revision(dead, Some(mark)).await {
            debug!(node = %dead, error = %e, "the mark changed: the node is back");
            if let Err(e) = self
                .adoptions
                .delete_expect_revision(key, Some(revision))
                .await
            {
                warn!(node = %dead, error = %e, "cannot withdraw a claim on a live node");
            }
            return Ok(Claimed::Withdrawn);
        }
        let adopting = Claim::adopting(&self.node, &[]).encode();
        self.adoptions
            .update(key, adopting, revision)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Claimed::Confirmed)
    }

    /// Step 1: marks `dead` in `AVIARY_NODES` where it holds no lease.
    async fn mark(&self, dead: &str) -> Result<Mark, String> {
        let mark = lease::mark(&self.node);
        for _ in 0..MARK_TRIES {
            match self.nodes.create(dead, mark.clone()).await {
                Ok(revision) => return Ok(Mark::Made(revision)),
                Err(e) => debug!(node = %dead, error = %e, "cannot mark a node gone"),
            }
            // Something is there, or a replica is behind on what: read it.
            match self.nodes.entry(dead).await.map_err(|e| e.to_string())? {
                Some(e) if e.operation == kv::Operation::Put && lease::is_lease(&e.value) => {
                    return Ok(Mark::Alive)
                }
                Some(e) if e.operation == kv::Operation::Put => return Ok(Mark::Other),
                _ => tokio::time::sleep(POLL).await,
            }
        }
        Err(format!("cannot mark {dead} gone in {}", lease::BUCKET))
    }

    /// Reads this node's own key and, if nobody claims its sessions, purges it at the
    /// revision read, which a claim not seen makes fail: then it reads again.
    pub(super) async fn own(&self) -> Result<Own, ClusterError> {
        let mine = token(&self.node);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            // A bucket just created may have no leader for a moment.
            let read = crate::cluster::setup::step(super::BUCKET, || self.adoptions.entry(&mine));
            let entry = read.await?;
            match entry {
                Some(e) if e.operation == kv::Operation::Put => {
                    let claim = Claim::parse(&e.value).ok_or_else(|| {
                        ClusterError::Stream(format!(
                            "{} holds {:?} under this node's name, which is not an adoption: \
                             remove it",
                            super::BUCKET,
                            String::from_utf8_lossy(&e.value)
                        ))
                    })?;
                    return Ok(Own::Claimed(e, claim));
                }
                gone => {
                    let revision = gone.map_or(0, |e| e.revision);
                    match self
                        .adoptions
                        .purge_expect_revision(&mine, Some(revision))
                        .await
                    {
                        Ok(()) => return Ok(Own::Yes),
                        Err(e) if tokio::time::Instant::now() >= deadline => {
                            let why =
                                format!("cannot settle this node's key in {}: {e}", super::BUCKET);
                            return Err(ClusterError::Stream(why));
                        }
                        Err(e) => {
                            // Changed meanwhile, or JetStream is not answering: not at once.
                            debug!(error = %e, "this node's key changed: reading it again");
                            tokio::time::sleep(POLL).await;
                        }
                    }
                }
            }
        }
    }

    /// Once the lease is renewed after its grace ran out, until `shutdown`: makes sure nobody
    /// claimed this node's sessions, and lets it take clients again, or fences it.
    pub(in crate::cluster) async fn follow_returns(
        self: Arc<Self>,
        link: Arc<Link>,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                () = link.returning.notified() => {}
                () = shutdown.cancelled() => return,
            }
            match self.returned().await {
                Ok(None) => link.rejoined(),
                Ok(Some(why)) => {
                    error!("{why}: this node is fenced");
                    link.fence(why);
                    return;
                }
                // Still cut off: tried again at the next renewal.
                Err(e) => debug!(error = %e, "cannot read this node's adoption"),
            }
        }
    }

    /// Whether this node's sessions were adopted while its lease went unrenewed: why it is
    /// fenced, if they were. A claim under way is waited for: it may be withdrawn.
    async fn returned(&self) -> Result<Option<String>, ClusterError> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let claim = match self.own().await? {
                Own::Yes => return Ok(None),
                Own::Claimed(_, claim) => claim,
            };
            match claim {
                Claim::Adopted { adopter, .. } => {
                    let why = "this node's sessions were adopted by";
                    return Ok(Some(format!(
                        "{why} {adopter} while its lease was not renewed"
                    )));
                }
                _ if tokio::time::Instant::now() >= deadline => {
                    let why = "this node's sessions are claimed by another node";
                    return Ok(Some(format!("{why}, not settled within {WAIT:?}")));
                }
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }
}
