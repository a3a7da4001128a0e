//! Cluster mode: several gateways share one broker state over NATS JetStream (see DESIGN.md,
//! "Cluster: the backplane"). Each node routes locally and hands each publish to NATS; NATS
//! routes by interest to the nodes whose clients subscribed ([`node`]). Topics map to NATS
//! subjects one to one ([`subject`]).
//!
//! What works so far: live messages at QoS 0, 1 and 2 between nodes, retained messages
//! kept cluster-wide ([`retained`]), one connection per client id ([`owners`]), node leases
//! ([`lease`]), the wills of a dead node's clients ([`wills`], [`orphans`]) and a node that
//! stops serving when cut off from NATS ([`link`]). Sessions and `$share` across nodes come
//! next; until then each node keeps those for its own clients.

mod lease;
mod link;
mod membership;
mod node;
mod orphans;
mod owners;
mod retained;
mod subject;
mod wills;

pub use lease::{Addresses, NodeInfo};
pub(crate) use node::Node;

/// Opens (creating or updating) one of Aviary's key-value buckets: one value per key, on
/// disk, `replicas` copies; values older than `max_age` go (zero: never).
async fn bucket(
    js: &async_nats::jetstream::Context,
    name: &str,
    replicas: u8,
    max_age: std::time::Duration,
) -> Result<async_nats::jetstream::kv::Store, ClusterError> {
    let config = async_nats::jetstream::kv::Config {
        bucket: name.to_owned(),
        history: 1,
        max_age,
        storage: async_nats::jetstream::stream::StorageType::File,
        num_replicas: usize::from(replicas),
        ..Default::default()
    };
    placed(|| js.create_or_update_key_value(config.clone())).await
}

/// How long a node at start waits for JetStream to be able to place its streams.
const PLACEMENT_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Runs `create` (of a replicated stream or bucket) again while JetStream says it has no
/// servers to place it on, for up to [`PLACEMENT_WAIT`]: a NATS cluster that is (re)starting
/// learns which of its servers are online from their periodic reports, and until then
/// refuses with "no suitable peers for placement, peer offline", which passes.
async fn placed<T, E, F>(mut create: impl FnMut() -> F) -> Result<T, ClusterError>
where
    E: std::fmt::Display,
    F: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + PLACEMENT_WAIT;
    loop {
        match create().await {
            Ok(done) => return Ok(done),
            Err(e) => {
                let why = e.to_string();
                let waiting = why.contains("no suitable peers");
                if !waiting || tokio::time::Instant::now() >= deadline {
                    return Err(ClusterError::Stream(why));
                }
                tracing::info!(error = %why, "JetStream cannot place a stream yet; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        }
    }
}

/// Why a node could not join its cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No NATS server answered.
    #[error(
        "cannot connect to the cluster's NATS servers ({urls}): {error}; check [cluster] nats \
         and that nats-server is running with JetStream"
    )]
    Connect {
        /// The servers tried.
        urls: String,
        /// Why.
        error: String,
    },
    /// JetStream refused to create or open Aviary's stream or this node's consumer.
    #[error("cannot set up Aviary's JetStream stream: {0} (is JetStream enabled, with enough servers for [cluster] replicas?)")]
    Stream(String),
}
