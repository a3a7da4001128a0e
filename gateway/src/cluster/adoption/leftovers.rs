//! Step 5's end (see [`super`]): an adopted node's stream consumer and log dropped, by a node
//! that holds the node's key in `AVIARY_ADOPTIONS` while it does so.
//!
//! Left, the consumer would keep the interest-retained stream holding whatever matches its
//! filters, and the adopted node, back, would take up from it what it was given before it
//! died. But the node may come back at any moment and make a new consumer and log under the
//! same names, and a drop that lands after that would take its live ones. So a drop is done
//! only under [`Leftovers::Dropping`], entered by compare-and-set from the revision the
//! dropper read, and the node back takes its key away the same way before it makes anything
//! (see [`super::back`]): the two never overlap. A dropper that dies leaves `Dropping` with
//! its name: whoever adopts it (or it, restarted) drops them again; the node back waits for a
//! live dropper and takes the key from a dead one.

use async_nats::jetstream::{self, context::ConsumerInfoErrorKind, kv};
use tracing::{debug, warn};

use super::claim::{Claim, Leftovers};
use super::Adoption;
use crate::cluster::messages::{consumer_name, STREAM};
use crate::cluster::subject::token;

/// An adopted node whose leftovers are to be dropped here: what its key said, at which
/// revision.
#[derive(Debug)]
pub(super) struct Finished {
    pub(super) node: String,
    pub(super) adopter: String,
    pub(super) revision: u64,
}

impl Adoption {
    /// Drops the leftovers of each of `finished`, adopted by a node that may have died
    /// between saying so and dropping them: unless someone else took the key first (the
    /// node, back; another dropper).
    pub(super) async fn sweep(&self, finished: &[Finished]) {
        for f in finished {
            let holding = Claim::adopted(&f.adopter, Leftovers::Dropping(self.node.clone()));
            match self
                .adoptions
                .update(token(&f.node), holding.encode(), f.revision)
                .await
            {
                Ok(revision) => self.drop_held(&f.node, &f.adopter, revision).await,
                Err(e) => {
                    debug!(node = %f.node, error = %e, "another took the adopted node's key first")
                }
            }
        }
    }

    /// Drops `node`'s leftovers while its key says [`Leftovers::Dropping`] by this node (at
    /// `revision`), then says what became of them: `Dropped`, or `Left` for another try if
    /// a part did not go.
    pub(super) async fn drop_held(&self, node: &str, adopter: &str, revision: u64) {
        let leftovers = match self.forget(node).await {
            true => Leftovers::Dropped,
            false => Leftovers::Left,
        };
        let said = Claim::adopted(adopter, leftovers).encode();
        let key = token(node);
        let mut revision = Some(revision);
        // Tried again, or the node back would wait on this hold until it gives up. An
        // answer lost on the way may hide a write that happened: each retry reads first.
        let saying = || {
            let (said, key, known) = (said.clone(), &key, revision.take());
            async move {
                let revision = match known {
                    Some(revision) => revision,
                    None => match self.held(key).await? {
                        Some(revision) => revision,
                        None => return Ok(()),
                    },
                };
                let update = self.adoptions.update(key, said, revision).await;
                update.map(|_| ()).map_err(|e| e.to_string())
            }
        };
        let what = "saying what became of an adopted node's leftovers";
        if let Err(e) = crate::cluster::setup::retrying(what, saying).await {
            warn!(%node, error = %e, "cannot say what became of an adopted node's leftovers");
        }
    }

    /// The revision at which `key` says this node drops its leftovers; `None` if it no
    /// longer does (said already, or taken by another).
    async fn held(&self, key: &str) -> Result<Option<u64>, String> {
        let entry = self.adoptions.entry(key).await.map_err(|e| e.to_string())?;
        Ok(entry.and_then(|e| match Claim::parse(&e.value) {
            Some(Claim::Adopted {
                leftovers: Leftovers::Dropping(by),
                ..
            }) if by == self.node && e.operation == kv::Operation::Put => Some(e.revision),
            _ => None,
        }))
    }

    /// The dead node's consumer and log go: whether both did.
    async fn forget(&self, dead: &str) -> bool {
        let consumer = drop_consumer(&self.js, dead).await;
        match crate::cluster::replica::drop_log(&self.js, self.replicas, dead).await {
            Ok(()) => consumer,
            Err(e) => {
                warn!(node = %dead, error = %e, "the dead node's log did not go");
                false
            }
        }
    }
}

/// Deletes `node`'s stream consumer, if it has one: whether it is gone.
pub(super) async fn drop_consumer(js: &jetstream::Context, node: &str) -> bool {
    let stream = match js.get_stream(STREAM).await {
        Ok(stream) => stream,
        Err(e) => {
            debug!(error = %e, "cannot open the message stream");
            return false;
        }
    };
    let name = consumer_name(node);
    match stream.delete_consumer(&name).await {
        Ok(_) => {
            debug!(%node, "dropped a node's stream consumer");
            true
        }
        // Deleting one that is not there is an error too: whether it is there says more.
        Err(e) => match stream.consumer_info(&name).await {
            Err(i) if i.kind() == ConsumerInfoErrorKind::NotFound => true,
            _ => {
                debug!(%node, error = %e, "the node's stream consumer did not go");
                false
            }
        },
    }
}
