//! What makes a node a member of its cluster, started together: its lease ([`super::lease`]),
//! its claims on client ids ([`super::owners`]), its clients' wills ([`super::wills`]) and
//! its part in settling the wills of the nodes that go ([`super::orphans`]).

use std::sync::Arc;

use async_nats::jetstream;
use tokio_util::sync::CancellationToken;

use super::lease::{Addresses, LeaseSetup, Leases};
use super::link::Link;
use super::orphans::Orphans;
use super::owners::Owners;
use super::wills::Wills;
use super::ClusterError;
use crate::broker::Broker;
use crate::config::ClusterConfig;

/// What makes a node a member of its cluster: its lease, its claims on client ids, its
/// clients' wills, and its care for the wills of the nodes that go.
pub(super) struct Membership {
    pub(super) leases: Arc<Leases>,
    pub(super) owners: Arc<Owners>,
    pub(super) wills: Arc<Wills>,
    /// To run once the node is attached to its broker.
    pub(super) orphans: Arc<Orphans>,
}

impl Membership {
    /// Takes the node's lease and opens the buckets of client ids and wills.
    pub(super) async fn start(
        js: &jetstream::Context,
        config: &ClusterConfig,
        name: &str,
        addrs: Addresses,
        link: &Arc<Link>,
        broker: &Broker,
        shutdown: &CancellationToken,
    ) -> Result<Self, ClusterError> {
        let replicas = config.replicas();
        let last_writes = tokio_util::task::TaskTracker::new();
        let setup = LeaseSetup {
            node: name.to_owned(),
            addrs,
            lease: config.lease(),
            link: link.clone(),
            last_writes: last_writes.clone(),
        };
        let leases = Leases::start(js, replicas, setup, broker.clone(), shutdown.clone()).await?;
        let owners = Owners::start(
            js,
            replicas,
            name.to_owned(),
            broker.clone(),
            shutdown.clone(),
        )
        .await?;
        let wills = Wills::open(js, replicas, name.to_owned(), link.clone(), last_writes).await?;
        let orphans = Arc::new(Orphans {
            wills: wills.clone(),
            nodes: leases.kv().clone(),
            clients: owners.kv().clone(),
            broker: broker.clone(),
            lease: config.lease(),
            link: link.clone(),
            adoption: Default::default(),
            settling: Default::default(),
            shutdown: shutdown.clone(),
        });
        Ok(Self {
            leases,
            owners,
            wills,
            orphans,
        })
    }
}
