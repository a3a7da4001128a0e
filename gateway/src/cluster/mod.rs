//! Cluster mode: several gateways share one broker state over NATS JetStream (see DESIGN.md,
//! "Cluster: the backplane"). Each node routes locally and hands each publish to NATS; NATS
//! routes by interest to the nodes whose clients subscribed ([`node`]). Topics map to NATS
//! subjects one to one ([`subject`]).
//!
//! What works so far: live messages at QoS 0, 1 and 2 between nodes, retained messages kept
//! cluster-wide ([`retained`]), node leases ([`lease`]), one connection per client id across
//! the cluster ([`owners`]), persistent sessions moving with their client between live nodes
//! ([`handover`]), shared subscriptions whose members are on several nodes ([`shared`]), the
//! wills of a dead node's clients ([`wills`], [`orphans`]), a node that stops serving
//! when cut off from NATS ([`link`]), and each node's store copied into JetStream
//! ([`replica`]), from which one of the nodes that remain adopts a dead node's persistent
//! sessions ([`adoption`]), their open QoS 2 exchanges included, whose messages a resend
//! forwards again under the exchange's token, kept once by the stream ([`outbound`]). A
//! publisher's messages keep their order when a NATS server fails under them ([`inflight`]).

mod acks;
mod adoption;
mod backlog;
mod consume;
mod cover;
mod handover;
mod inflight;
mod interest;
mod lease;
mod link;
mod live;
mod membership;
mod messages;
mod metrics;
mod node;
mod orphans;
mod outbound;
mod owners;
mod replay;
pub mod replica;
mod retained;
mod setup;
mod shared;
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
    setup::step(name, || js.create_or_update_key_value(config.clone())).await
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
