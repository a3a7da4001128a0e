//! A gateway's lives: a cluster node fenced (its sessions adopted elsewhere while its lease
//! lapsed, see `cluster::link`) ends its life as at shutdown and starts again in its process,
//! as a restart would (see [`Gateway::run`]). What that waits for and what it tries again.

use std::time::Duration;

use tracing::warn;

use super::{Error, Gateway};
use crate::broker::WeakBroker;
use crate::config::Config;
use crate::store::StoreError;

/// How a life of the gateway ended (see [`Gateway::run`]).
pub(super) enum Life {
    /// Shutdown: the gateway stops.
    Stopped,
    /// Fenced, for this reason: the gateway starts again.
    Fenced(String),
}

/// How long a fenced gateway waits for its previous life to let go of the broker, and so of
/// the store it reopens: the cluster link's tasks stop on their own once told to.
pub(super) const RESTART_WAIT: Duration = Duration::from_secs(10);

/// Waits until the previous life's broker is gone.
pub(super) async fn ended(life: &WeakBroker, why: &str) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + RESTART_WAIT;
    while life.holders() > 0 {
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Fenced {
                why: why.to_owned(),
                held: life.holders(),
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// The first pause of [`start_again`] after a failed attempt, and the longest.
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(10);

/// Starts a fenced gateway again as at start, trying again while what failed may pass: NATS
/// unreachable (partitions that heal often come back for a moment first) or the store not
/// yet let go of by a failed attempt's tasks. A gateway that served before has the right
/// configuration: unlike a first start, it waits for the cluster rather than exit.
pub(super) async fn start_again(config: Config) -> Result<Gateway, Error> {
    let mut pause = FIRST_RETRY;
    loop {
        match Gateway::bind(config.clone()).await {
            Err(e) if e.may_pass() => {
                warn!(error = %e, "cannot start again yet, trying again in {pause:?}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_RETRY);
            }
            started => return started,
        }
    }
}

impl Error {
    /// Whether starting again may succeed later, with nothing changed: the cluster was not
    /// reachable, or the store was still held in this process.
    fn may_pass(&self) -> bool {
        matches!(
            self,
            Error::Cluster(_) | Error::Store(StoreError::Locked { .. })
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterError;

    #[test]
    fn a_fenced_gateway_waits_for_the_cluster_and_the_store_not_for_a_bad_setup() {
        let cluster = Error::Cluster(ClusterError::Connect {
            urls: "nats://127.0.0.1:4222".into(),
            error: "connection refused".into(),
        });
        let held = Error::Store(StoreError::Locked {
            path: "/tmp/aviary-data".into(),
            holder: format!("pid {}", std::process::id()),
        });
        assert!(cluster.may_pass() && held.may_pass());
        let taken = Error::Bind {
            what: "mqtt",
            addr: "127.0.0.1:1883".parse().unwrap(),
            error: std::io::ErrorKind::AddrInUse.into(),
        };
        let fenced = Error::Fenced {
            why: "adopted by gw-b".into(),
            held: 1,
        };
        assert!(!taken.may_pass() && !fenced.may_pass());
    }
}
