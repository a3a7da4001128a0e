//! Whether this node is still part of its cluster, and what it does when it is not.
//!
//! A node cut off from NATS must not go on serving as if nothing happened: once its lease runs
//! out the other nodes consider it dead and act on its clients' wills, and a client connecting
//! there while still connected here would be two connections of one client id, one on each
//! side of the cut (split brain). So a node that could not renew its lease for a grace
//! period, shorter than the lease, **cuts itself off**: it disconnects all its clients (MQTT
//! 5: DISCONNECT 0x9C Use another server, which tells the client to go elsewhere; 3.x: the
//! connection closes) and refuses new CONNECTs (CONNACK 0x88 Server unavailable, 3.x return
//! code 3) until NATS is back and its lease renewed.
//!
//! The link is judged by the lease renewals, which need the whole path to JetStream to work,
//! not only the TCP connection to a NATS server; async-nats's connection events add what
//! they know sooner. While the client is disconnected no CONNECT is taken (its client id
//! could not be claimed anyway), and the grace period is half a lease: a NATS cluster has
//! other servers to reconnect to within a second. While it is connected but renewals fail,
//! JetStream may be electing a new leader for the lease bucket, which takes nats-server some
//! seconds (about 6 s measured when the leader's server is killed), and every node fails
//! alike meanwhile, so the grace is four fifths of a lease: as long as it can be while still
//! ending before the lease does. A reconnect asks for a renewal at once.
//!
//! **Back after the grace.** A lease renewed again after the grace ran out (the node was cut
//! off, or its process was frozen past it) may have run out meanwhile, and another node may
//! have claimed this one's sessions. So the node stays cut off, disconnecting whatever is
//! still connected, until it has made sure by compare-and-set that nobody did (see
//! `adoption::confirm`). If somebody did, its sessions live elsewhere now and those here are
//! stale: the node is **fenced**, and the gateway starts again in its process, as a restart
//! would (which forgets them), rather than serve them (see `Gateway::run`).

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::ClusterError;
use crate::broker::{Broker, CUT_OFF};
use crate::config::ClusterConfig;

/// The longest wait between two attempts to reconnect to NATS (async-nats's default grows to
/// 4 s): a node whose NATS is back is cut off for less long.
const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(1);

/// How often a cut-off node disconnects again whatever connected in the meantime (a CONNECT
/// that was past its check when the node cut itself off).
const KICK_AGAIN: Duration = Duration::from_secs(1);

/// This node's view of its link to the cluster.
#[derive(Debug)]
pub(crate) struct Link {
    /// How long a lease lasts: the grace periods are parts of it.
    lease: Duration,
    state: Mutex<State>,
    /// Asks the lease task for a renewal now (NATS is back).
    pub(super) renew_now: Notify,
    /// Tells the wills' task that the node is back after being cut off.
    pub(super) back: Notify,
    /// Tells the adoption's task that the lease was renewed after the grace ran out.
    pub(super) returning: Notify,
    /// The client ids disconnected when the node cut itself off, whose wills it left
    /// unpublished (the cluster settles them: see `orphans`).
    left: Mutex<Vec<String>>,
    /// Why the node is fenced, once it is; set once, before `fenced_now` fires.
    fenced: std::sync::OnceLock<String>,
    fenced_now: CancellationToken,
}

#[derive(Debug)]
struct State {
    /// Whether async-nats says it is connected to a server.
    connected: bool,
    /// When the lease was last renewed.
    renewed: Instant,
    /// Whether the node has cut itself off (and not yet rejoined since).
    cut_off: bool,
    /// Cut off at a late renewal, its clients not yet disconnected.
    unkicked: bool,
}

impl Link {
    /// A link that is up, its `lease` just taken.
    pub(super) fn new(lease: Duration) -> Arc<Self> {
        Arc::new(Self {
            lease,
            state: Mutex::new(State {
                connected: true,
                renewed: Instant::now(),
                cut_off: false,
                unkicked: false,
            }),
            renew_now: Notify::new(),
            back: Notify::new(),
            returning: Notify::new(),
            left: Mutex::new(Vec::new()),
            fenced: std::sync::OnceLock::new(),
            fenced_now: CancellationToken::new(),
        })
    }

    /// What async-nats reports about its connection.
    pub(super) fn event(&self, event: &async_nats::Event) {
        match event {
            async_nats::Event::Disconnected => {
                self.state.lock().connected = false;
                warn!("disconnected from NATS; reconnecting");
            }
            async_nats::Event::Connected => {
                self.state.lock().connected = true;
                info!("connected to NATS");
                self.renew_now.notify_one();
            }
            other => info!(event = %other, "NATS connection event"),
        }
    }

    /// The lease was taken at start.
    pub(super) fn taken(&self) {
        let mut st = self.state.lock();
        st.renewed = Instant::now();
        st.connected = true;
    }

    /// The lease was renewed. True if that came after the grace ran out: the node is cut
    /// off (if it was not yet) until [`Link::rejoined`] (see the module's notes).
    pub(super) fn renewed(&self) -> bool {
        let mut st = self.state.lock();
        let late = st.cut_off || st.renewed.elapsed() >= self.grace(st.connected);
        st.renewed = Instant::now();
        st.connected = true;
        if late && !st.cut_off {
            st.cut_off = true;
            st.unkicked = true;
        }
        late
    }

    /// Nobody claimed this node's sessions while its lease went unrenewed: it is back in the
    /// cluster.
    pub(super) fn rejoined(&self) {
        if std::mem::take(&mut self.state.lock().cut_off) {
            info!("lease renewed: back in the cluster, taking clients again");
            self.back.notify_one();
        }
    }

    /// This node's sessions were adopted elsewhere while its lease went unrenewed: it stays
    /// cut off, and the gateway starts again.
    pub(super) fn fence(&self, why: String) {
        self.state.lock().cut_off = true;
        let _ = self.fenced.set(why);
        self.fenced_now.cancel();
    }

    /// Waits until the node is fenced: why.
    pub(crate) async fn fenced(&self) -> String {
        self.fenced_now.cancelled().await;
        self.fenced.get().cloned().unwrap_or_default()
    }

    /// Whether the node was cut off at a late renewal and its clients not yet disconnected;
    /// they are now the caller's to disconnect.
    fn take_unkicked(&self) -> bool {
        std::mem::take(&mut self.state.lock().unkicked)
    }

    /// Whether this node may take a client now.
    pub(crate) fn accepting(&self) -> bool {
        let st = self.state.lock();
        st.connected && !st.cut_off
    }

    /// Whether this node has cut itself off from its clients.
    pub(super) fn is_cut_off(&self) -> bool {
        self.state.lock().cut_off
    }

    /// The node's state in words, for `GET /api/v1/cluster`: `up`, `disconnected` (from NATS,
    /// still within the grace period) or `cut off`.
    pub(crate) fn state(&self) -> &'static str {
        let st = self.state.lock();
        match (st.cut_off, st.connected) {
            _ if self.fenced_now.is_cancelled() => "fenced",
            (true, _) => "cut off",
            (false, true) => "up",
            (false, false) => "disconnected",
        }
    }

    /// The client ids disconnected since the node cut itself off, taken.
    pub(super) fn take_left(&self) -> Vec<String> {
        std::mem::take(&mut self.left.lock())
    }

    /// Disconnects every client of this node, noting which, since it is cut off.
    fn kick_all(&self, broker: &Broker) -> usize {
        let kicked = broker.kick_all(CUT_OFF);
        let count = kicked.len();
        self.left.lock().extend(kicked);
        count
    }

    /// How long the lease may go unrenewed before the node cuts itself off (see the module's
    /// notes).
    fn grace(&self, connected: bool) -> Duration {
        match connected {
            true => self.lease - self.lease / 5,
            false => self.lease / 2,
        }
    }

    /// Cuts the node off if the lease went unrenewed for the grace period; true if it just did.
    fn cut_off_if_overdue(&self) -> bool {
        let mut st = self.state.lock();
        let overdue = !st.cut_off && st.renewed.elapsed() >= self.grace(st.connected);
        st.cut_off |= overdue;
        overdue
    }
}

/// How long a connection to NATS waits before its `attempts`-th try to reconnect: doubling
/// from 2 ms, at most [`RECONNECT_DELAY_MAX`].
pub(super) fn reconnect_delay(attempts: usize) -> Duration {
    let exp = u32::try_from(attempts).unwrap_or(u32::MAX).min(16);
    Duration::from_millis(2_u64.pow(exp)).min(RECONNECT_DELAY_MAX)
}

/// Connects to the cluster's NATS servers, with a [`Link`] that hears what the connection
/// goes through.
pub(super) async fn connect(
    config: &ClusterConfig,
    name: &str,
) -> Result<(async_nats::Client, Arc<Link>), ClusterError> {
    let link = Link::new(config.lease());
    let events = link.clone();
    let client = async_nats::ConnectOptions::new()
        .name(format!("aviary {name}"))
        // This node routes its own messages itself.
        .no_echo()
        .connection_timeout(Duration::from_secs(5))
        .event_callback(move |event| {
            events.event(&event);
            async {}
        })
        .reconnect_delay_callback(reconnect_delay)
        .connect(config.nats.as_slice())
        .await
        .map_err(|e| ClusterError::Connect {
            urls: config.nats.join(", "),
            error: e.to_string(),
        })?;
    Ok((client, link))
}

/// Watches the link until `shutdown`: when the lease has gone unrenewed for the grace period,
/// disconnects every client, and again every [`KICK_AGAIN`] while cut off.
pub(super) async fn watch(link: Arc<Link>, broker: Broker, shutdown: CancellationToken) {
    // Fine enough that the cut comes soon after the grace period, coarse enough to cost
    // nothing: a lock and a clock read.
    let mut tick = tokio::time::interval((link.lease / 40).max(Duration::from_millis(25)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_kick = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        if link.cut_off_if_overdue() || link.take_unkicked() {
            let kicked = link.kick_all(&broker);
            warn!(
                kicked,
                "lease not renewed within the grace period: cut off from the cluster, \
                 disconnecting every client and refusing new ones until it is back"
            );
            last_kick = Instant::now();
        } else if link.is_cut_off() && last_kick.elapsed() >= KICK_AGAIN {
            link.kick_all(&broker);
            last_kick = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn a_renewal_within_the_grace_keeps_the_node_up() {
        let link = Link::new(LEASE);
        tokio::time::advance(LEASE / 5).await;
        assert!(!link.renewed());
        assert!(link.accepting());
        assert!(!link.take_unkicked());
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_after_the_grace_cuts_the_node_off_until_it_rejoins() {
        let link = Link::new(LEASE);
        // Frozen past the grace: nothing noticed it, the renewal is the first to.
        tokio::time::advance(LEASE).await;
        assert!(link.renewed(), "late");
        assert!(!link.accepting());
        assert!(link.take_unkicked(), "its clients are to be disconnected");
        assert!(!link.take_unkicked());
        // Renewals go on while it checks: still late, still cut off.
        assert!(link.renewed());
        assert!(!link.accepting());
        link.rejoined();
        assert!(link.accepting());
        assert!(!link.renewed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_fenced_node_stays_cut_off_and_says_why() {
        let link = Link::new(LEASE);
        tokio::time::advance(LEASE).await;
        assert!(link.renewed());
        link.fence("adopted by gw-b".to_owned());
        assert_eq!(link.fenced().await, "adopted by gw-b");
        assert_eq!(link.state(), "fenced");
        assert!(!link.accepting());
    }
}
