//! Cluster mode: several gateways share one broker state over NATS JetStream (see DESIGN.md,
//! "Cluster: the backplane"). Each node routes locally and hands each publish to NATS; NATS
//! routes by interest to the nodes whose clients subscribed ([`node`]). Topics map to NATS
//! subjects one to one ([`subject`]).
//!
//! What works so far: live messages at QoS 0, 1 and 2 between nodes, and retained messages
//! kept cluster-wide ([`retained`]). Sessions, client-id ownership, node leases and `$share`
//! across nodes come next; until then each node keeps those for its own clients.

mod lease;
mod node;
mod owners;
mod retained;
mod subject;

pub use lease::{Addresses, NodeInfo};
pub(crate) use node::Node;

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
