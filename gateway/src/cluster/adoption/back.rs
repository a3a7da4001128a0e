//! A node back at start, finding its own name in `AVIARY_ADOPTIONS`: its sessions were
//! adopted while it was away, or are being adopted now, or claimed by a node that may yet
//! withdraw (see [`super::confirm`]; the key is read after the lease is written, and settled
//! by compare-and-set).
//!
//! It forgets the sessions its store brought back, which live elsewhere now, and drops its
//! old stream consumer (which holds what it was given before it died, and would bring that
//! to its new clients), then takes its key away by compare-and-set before it makes a new
//! consumer and log. Until then it waits for whoever is at work on its key: an adopter,
//! whose final word would otherwise land on a key this node purged and be read at its next
//! start as an adoption of what it holds by then; and a live node dropping its leftovers,
//! whose drop would otherwise take the new consumer and log (see [`super::leftovers`]).

use tracing::debug;

use super::claim::{Claim, Leftovers};
use super::confirm::Own;
use super::leftovers::drop_consumer;
use super::{Adoption, POLL, WAIT};
use crate::cluster::subject::token;
use crate::cluster::ClusterError;

/// What a node back learnt of its adoption.
pub(super) struct Back {
    /// Who adopted its sessions.
    pub(super) by: String,
    /// How many of them its store brought back and it forgot.
    pub(super) forgotten: usize,
}

impl Adoption {
    /// Settles this node's own key at start: `None` if nobody adopted its sessions.
    pub(super) async fn back(&self) -> Result<Option<Back>, ClusterError> {
        let mine = token(&self.node);
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut forgotten = 0;
        loop {
            let (entry, claim) = match self.own().await? {
                // Never adopted.
                Own::Yes => return Ok(None),
                Own::Claimed(entry, claim) => (entry, claim),
            };
            let adopter = match claim {
                Claim::Claiming(by) => Err(format!("being claimed by {by}")),
                Claim::Adopting(holders) => Err(format!("being adopted by {}", holders[0])),
                Claim::Adopted {
                    leftovers: Leftovers::Dropping(by),
                    ..
                } if self.alive(&by).await => Err(format!("its leftovers being dropped by {by}")),
                Claim::Adopted { adopter, .. } => Ok(adopter),
            };
            let adopter = match adopter {
                Ok(adopter) => adopter,
                Err(busy) if tokio::time::Instant::now() >= deadline => {
                    return Err(ClusterError::Stream(format!(
                        "this node's sessions are {busy}, not done within {WAIT:?}: start it \
                         again once that is done"
                    )))
                }
                Err(_) => {
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            };
            // Both before the key goes: a node that dies in between does them again.
            let broker = self
                .broker()
                .map_err(|e| ClusterError::Stream(e.to_owned()))?;
            forgotten += broker.forget_sessions();
            drop_consumer(&self.js, &self.node).await;
            match self
                .adoptions
                .purge_expect_revision(&mine, Some(entry.revision))
                .await
            {
                Ok(()) => {
                    return Ok(Some(Back {
                        by: adopter,
                        forgotten,
                    }))
                }
                // Taken meanwhile, say by a node dropping the leftovers: read it again.
                Err(e) => debug!(error = %e, "this node's adoption changed: reading it again"),
            }
        }
    }
}
