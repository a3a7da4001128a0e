//! The two setups the cluster scenarios compare, started and stopped: a single node, or 3
//! nats-servers with 2 or 3 gateways on them (see [`super`]).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::gateway::{self, Gateway};
use super::nats::NatsCluster;
use super::steps::Nodes;
use super::ClusterArgs;
use crate::broker::{BrokerSpec, RunningBroker};

/// The nats-server version xtask installs (xtask/src/tools.rs, `NATS_SERVER`).
pub(super) const NATS_VERSION: &str = "2.12.8";

/// Which setup a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Single,
    Cluster,
}

/// Running processes of one setup; dropping it kills them all (gateways before NATS, and the
/// processes before their directory goes).
pub(super) enum Setup {
    Single(RunningBroker),
    Cluster {
        gateways: Vec<Gateway>,
        nats: NatsCluster,
        _dir: tempfile::TempDir,
    },
}

impl Setup {
    /// Starts `kind` and waits until every process of it is ready; a gateway that fails to
    /// start is tried again, up to [`GATEWAY_ATTEMPTS`] times, each failure noted in `notes`.
    pub(super) fn start(
        kind: Kind,
        args: &ClusterArgs,
        aviary: &BrokerSpec,
        notes: &mut Vec<String>,
    ) -> Result<Self> {
        if kind == Kind::Single {
            return Ok(Self::Single(RunningBroker::start(aviary)?));
        }
        let dir = tempfile::Builder::new()
            .prefix("aviary-bench-cluster-")
            .disable_cleanup(args.cluster_keep)
            .tempdir()
            .context("cannot create a temporary directory")?;
        if args.cluster_keep {
            notes.push(format!("kept in {}", dir.path().display()));
        }
        let nats = NatsCluster::start(&nats_binary(args)?, dir.path(), 3)?;
        let urls = nats.urls();
        let mut gateways = Vec::new();
        // gw-a alone first: it creates the streams and buckets the others then open.
        for node in ["gw-a", "gw-b", "gw-c"]
            .iter()
            .take(usize::from(args.cluster_gateways))
        {
            gateways.push(start_gateway(aviary, dir.path(), node, &urls, notes)?);
        }
        Ok(Self::Cluster {
            gateways,
            nats,
            _dir: dir,
        })
    }

    /// Node A and node B.
    pub(super) fn nodes(&self) -> Nodes {
        match self {
            Self::Single(broker) => Nodes {
                a: broker.mqtt,
                b: broker.mqtt,
            },
            Self::Cluster { gateways, .. } => Nodes {
                a: gateways[0].mqtt,
                b: gateways[1].mqtt,
            },
        }
    }

    /// The NATS servers' URLs (cluster only).
    pub(super) fn nats_urls(&self) -> Option<Vec<String>> {
        match self {
            Self::Single(_) => None,
            Self::Cluster { nats, .. } => Some(nats.urls()),
        }
    }

    /// One more gateway node, `node`, to be killed (cluster only).
    pub(super) fn extra_gateway(
        &self,
        aviary: &BrokerSpec,
        node: &str,
        notes: &mut Vec<String>,
    ) -> Option<Result<Gateway>> {
        match self {
            Self::Single(_) => None,
            Self::Cluster { nats, _dir, .. } => Some(start_gateway(
                aviary,
                _dir.path(),
                node,
                &nats.urls(),
                notes,
            )),
        }
    }

    /// CPU time used so far by the gateways (or the single node) and by the nats-servers
    /// (`None` on the single node, which has none).
    pub(super) fn cpu(&self) -> (Option<Duration>, Option<Duration>) {
        let sum = |pids: &mut dyn Iterator<Item = u32>| {
            pids.map(|pid| crate::broker::process_cpu(pid).ok())
                .sum::<Option<Duration>>()
        };
        match self {
            Self::Single(broker) => (broker.cpu_time().ok(), None),
            Self::Cluster { gateways, nats, .. } => (
                sum(&mut gateways.iter().map(Gateway::pid)),
                sum(&mut nats.pids().into_iter()),
            ),
        }
    }

    /// The most resident memory any gateway (or the single node) has had so far, in MiB.
    pub(super) fn peak_rss_mib(&self) -> Option<f64> {
        let pids = match self {
            Self::Single(broker) => vec![broker.pid()],
            Self::Cluster { gateways, .. } => gateways.iter().map(Gateway::pid).collect(),
        };
        let peaks: Option<Vec<u64>> = pids.into_iter().map(gateway::proc_peak_rss_kib).collect();
        Some(peaks?.into_iter().max()? as f64 / 1024.0)
    }

    /// Fails if any process of the setup has exited.
    pub(super) fn check_alive(&mut self) -> Result<()> {
        match self {
            Self::Single(broker) => broker.check_alive(),
            Self::Cluster { gateways, nats, .. } => {
                for gateway in gateways {
                    gateway.check_alive()?;
                }
                nats.check_alive()
            }
        }
    }
}

/// How many times a gateway is started before its setup counts as failed.
const GATEWAY_ATTEMPTS: usize = 3;

/// Starts gateway `node`, again (in a fresh directory) if it exits while starting: on a loaded
/// machine a JetStream request of its start-up (a stream, a bucket, its consumer) can time
/// out, and these scenarios measure a running cluster, not its start. Failures are noted.
fn start_gateway(
    aviary: &BrokerSpec,
    dir: &std::path::Path,
    node: &str,
    urls: &[String],
    notes: &mut Vec<String>,
) -> Result<Gateway> {
    let mut attempt = 1;
    loop {
        let parent = dir.join(format!("attempt-{attempt}"));
        match Gateway::start(aviary, &parent, node, urls) {
            Ok(gateway) => return Ok(gateway),
            Err(e) if attempt < GATEWAY_ATTEMPTS => {
                notes.push(format!("{node} failed to start (attempt {attempt}): {e:#}"));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The nats-server to run: `--nats-server`, or the pinned one under target/tools.
fn nats_binary(args: &ClusterArgs) -> Result<PathBuf> {
    if let Some(path) = &args.nats_server {
        return Ok(path.clone());
    }
    let exe = std::env::current_exe()?;
    let target = exe
        .parent()
        .and_then(|release| release.parent())
        .context("this executable is not inside a target directory")?;
    Ok(target.join(format!("tools/nats-server-{NATS_VERSION}/nats-server")))
}
