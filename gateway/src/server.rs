//! The gateway's lifecycle: bind the listeners (port 0 picks a free port),
//! log the bound addresses in one parseable line, serve until the shutdown
//! future completes, then stop accepting and close every connection
//! (MQTT 5 clients get DISCONNECT 0x8B) while keeping the sessions.
//! On unix, SIGHUP re-reads the TLS certificates and the password and ACL
//! files ([`Reloaders`]) without dropping a connection.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::broker::Broker;
use crate::config::{Config, ConfigError};
use crate::http::{self, AppState, HandshakeFailures, HttpServer};
use crate::store::{self, StoreError, StoreHandle};
use crate::transport;
use crate::transport::tls::{TlsAcceptor, TlsError};

mod restart;

use restart::{ended, start_again, Life, RESTART_WAIT};

/// Why the gateway could not start, or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listener address could not be bound.
    #[error(
        "cannot listen on {addr} for {what}: {error}{}",
        bind_hint(error, what)
    )]
    Bind {
        /// Which listener: `mqtt` or `http`, as the flag and the config key are named.
        what: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error; shown in the message, which is the whole story on one line.
        error: std::io::Error,
    },
    /// The store in the data dir cannot be used: locked by another gateway, corrupt, from a
    /// newer version, or not writable. Its message names the path and what to do.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The password file or the ACL file cannot be used; the message names
    /// the file (and the line).
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// The configuration is invalid, or opens the gateway to the network
    /// without authentication.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A `[tls]` file cannot be used; the message names it.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Cluster mode is configured and the node could not join.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// This cluster node found, once back from a lapse of its lease, that another node
    /// adopted its sessions meanwhile, and could not start again in this process (see
    /// [`Gateway::run`]): its previous life did not let go of the store.
    #[error(
        "{why}; the gateway could not start again: {held} handles on its previous life's \
         broker, and so on the store, were still held after {RESTART_WAIT:?}. Start it \
         again: it forgets the sessions adopted elsewhere"
    )]
    Fenced {
        /// Why the node was fenced, naming the adopter.
        why: String,
        /// How many handles on the old broker were left.
        held: usize,
    },
}

/// What to do about a listener that could not be bound, naming the flag and config key that
/// move it: on a machine with a Mosquitto service, 1883 is taken before Aviary ever starts.
fn bind_hint(source: &std::io::Error, what: &str) -> String {
    let fix = format!(
        "pick another address with --{what} ADDR (or `{what}` in the config's [listen] \
         section; port 0 picks a free one)"
    );
    match source.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "; another program is listening there (a Mosquitto service or another Aviary?): \
             stop it, or {fix}"
        ),
        std::io::ErrorKind::PermissionDenied => {
            format!("; ports below 1024 need privileges: {fix}")
        }
        std::io::ErrorKind::AddrNotAvailable => {
            format!("; this machine has no such address: {fix}")
        }
        _ => format!("; {fix}"),
    }
}

/// How long shutdown waits for connections to say goodbye.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A gateway whose listeners are bound, ready to [`run`](Gateway::run).
#[derive(Debug)]
pub struct Gateway {
    config: Config,
    broker: Broker,
    mqtt: TcpListener,
    mqtt_addr: SocketAddr,
    http: TcpListener,
    http_addr: SocketAddr,
    /// MQTT over TLS and HTTPS, when configured.
    mqtts: Option<(TcpListener, SocketAddr)>,
    https: Option<(TcpListener, SocketAddr)>,
    /// The certificates, when `[tls]` has them.
    tls: Option<Arc<TlsAcceptor>>,
    /// Stops the cluster link's tasks (after the connections' last words went out).
    cluster_stop: CancellationToken,
    /// This node's link to the others, in cluster mode.
    cluster: Option<Arc<crate::cluster::Node>>,
    /// Wakes once per SIGHUP, when the process listens for signals ([`Gateway::reload_on`]).
    reloads: Option<Arc<tokio::sync::Notify>>,
}

/// Connections the kernel may hold for a listener before it is accepted (capped by
/// `net.core.somaxconn`, 4096 on current Linux). Tokio's default of 1024 overflows when
/// thousands of devices reconnect at once, say after a restart: the dropped SYNs come back
/// only after the client's 1 s retransmission timeout, then 3 s, 7 s.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds one listener and learns its address (port 0 picks one).
fn listen(what: &'static str, addr: SocketAddr) -> Result<(TcpListener, SocketAddr), Error> {
    let bind_error = |error| Error::Bind { what, addr, error };
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(bind_error)?;
    // What `TcpListener::bind` does too: a restarted gateway rebinds its port at once,
    // even with connections of its previous life in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true).map_err(bind_error)?;
    socket.bind(addr).map_err(bind_error)?;
    let listener = socket.listen(LISTEN_BACKLOG).map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

impl Gateway {
    /// Opens the store in the data dir and brings back what it kept, then binds the listeners
    /// of `config`: a client that can connect finds the state of before the restart.
    pub async fn bind(config: Config) -> Result<Self, Error> {
        config.validate()?;
        // Before the store: a bad certificate should not wait for recovery.
        let tls = match config.tls.is_configured() {
            true => Some(Arc::new(TlsAcceptor::load(&config.tls)?)),
            false => None,
        };
        // The files first: a typo in them is found before the store is locked.
        let auth = crate::auth::Authorizer::load(&config.auth, &config.tls, &config.listen)?;
        let store = store::open(&config.store, &config.data_dir)?;
        let snapshot = store.as_ref().map(StoreHandle::load).transpose()?;
        let broker = Broker::with_auth(config.mqtt.clone(), &config.history, store, Arc::new(auth));
        if let Some(snapshot) = snapshot {
            broker.recover(snapshot)?;
        }
        let (mqtt, mqtt_addr) = listen("mqtt", config.listen.mqtt)?;
        let (http, http_addr) = listen("http", config.listen.http)?;
        let mqtts = match config.listen.mqtts {
            Some(addr) => Some(listen("mqtts", addr)?),
            None => None,
        };
        let https = match config.listen.https {
            Some(addr) => Some(listen("https", addr)?),
            None => None,
        };
        // Last: the node is named after its MQTT port, and its link must see the recovered
        // subscriptions before any client comes.
        let cluster_stop = CancellationToken::new();
        let mut cluster = None;
        if config.cluster.enabled() {
            let name = config.cluster.node_name(mqtt_addr.port());
            let addrs = crate::cluster::Addresses {
                mqtt: mqtt_addr,
                http: http_addr,
            };
            let node = crate::cluster::Node::start(
                &config.cluster,
                name,
                addrs,
                &broker,
                cluster_stop.clone(),
            )
            .await
            // What it started stops, and lets go of the broker (see `start_again`).
            .inspect_err(|_| cluster_stop.cancel())?;
            cluster = Some(node);
        }
        Ok(Self {
            broker,
            config,
            mqtt,
            mqtt_addr,
            http,
            http_addr,
            mqtts,
            https,
            tls,
            cluster_stop,
            cluster,
            reloads: None,
        })
    }

    /// Reloads the certificates, the password file and the ACL each time `reloads` wakes:
    /// the process's SIGHUP (see [`crate::signals`]).
    pub fn reload_on(&mut self, reloads: Arc<tokio::sync::Notify>) {
        self.reloads = Some(reloads);
    }

    /// The address MQTT over TLS is served on, if it is.
    pub fn mqtts_addr(&self) -> Option<SocketAddr> {
        self.mqtts.as_ref().map(|(_, a)| *a)
    }

    /// The address HTTPS (and wss) is served on, if it is.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https.as_ref().map(|(_, a)| *a)
    }

    /// `mqtt=ADDR http=ADDR`, then `mqtts=` and `https=` when they listen:
    /// the `listening` line scripts read.
    fn addresses(&self) -> String {
        let mut line = format!("mqtt={} http={}", self.mqtt_addr, self.http_addr);
        for (key, addr) in [("mqtts", self.mqtts_addr()), ("https", self.https_addr())] {
            if let Some(addr) = addr {
                line += &format!(" {key}={addr}");
            }
        }
        line
    }

    /// What SIGHUP re-reads.
    fn reloaders(&self) -> Reloaders {
        Reloaders {
            tls: self.tls.clone(),
            auth: self.broker.authorizer().clone(),
        }
    }

    /// The address MQTT over TCP is served on.
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt_addr
    }

    /// The address HTTP (web app, WebSocket, API) is served on.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The broker, for in-process use (tests, the REST API).
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Serves until `shutdown` completes, then closes every connection.
    ///
    /// A cluster node that finds, back from a lapse of its lease, that another node adopted
    /// its sessions meanwhile is fenced (see `cluster::link`): serving them here would split
    /// the brain. Its gateway then ends this life as at shutdown and starts again in this
    /// process, as a restart would: on the same addresses and data dir, it forgets the
    /// sessions adopted elsewhere and takes clients as any node does.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let again = self.config_again();
            let reloads = self.reloads.clone();
            let life = self.broker.downgrade();
            let why = match self.serve(shutdown.as_mut()).await {
                Life::Stopped => return Ok(()),
                Life::Fenced(why) => why,
            };
            warn!(%why, "fenced: starting again, without the sessions adopted elsewhere");
            let start = async {
                ended(&life, &why).await?;
                start_again(again).await
            };
            self = tokio::select! {
                gateway = start => gateway?,
                () = shutdown.as_mut() => return Ok(()),
            };
            self.reloads = reloads;
        }
    }

    /// What [`Gateway::run`] starts again with: the addresses bound now (port 0 picked
    /// them), where clients know the gateway, and which name a cluster node by default.
    fn config_again(&self) -> Config {
        let mut config = self.config.clone();
        config.listen.mqtt = self.mqtt_addr;
        config.listen.http = self.http_addr;
        config.listen.mqtts = self.mqtts_addr();
        config.listen.https = self.https_addr();
        config
    }

    /// One life of the gateway: serves until `shutdown` completes or its cluster node is
    /// fenced, then closes every connection.
    async fn serve(self, shutdown: impl Future<Output = ()>) -> Life {
        let token = CancellationToken::new();
        let tasks = TaskTracker::new();
        info!("listening {}", self.addresses());
        self.broker.spawn_background(token.clone());
        if let Some(reloads) = self.reloads.clone() {
            tasks.spawn(reload_when(reloads, self.reloaders(), token.clone()));
        }
        let broker = self.broker.clone();
        let cluster_stop = self.cluster_stop.clone();
        let node = self.cluster.clone();
        let fenced = async move {
            match node {
                Some(node) => node.fenced().await,
                None => std::future::pending().await,
            }
        };
        self.spawn_listeners(&token, &tasks);
        let outcome = tokio::select! {
            () = shutdown => Life::Stopped,
            why = fenced => Life::Fenced(why),
        };
        match outcome {
            Life::Stopped => info!("shutting down: closing connections, sessions are kept"),
            // Those adopted elsewhere are forgotten at the start that follows.
            Life::Fenced(_) => info!("fenced: closing connections"),
        }
        token.cancel();
        // Connections past their handshake wait for a kick, not for the token
        // (see `connection::serve`); those attached after this see the token.
        broker.kick_all(aviary_protocol::ReasonCode::SERVER_SHUTTING_DOWN);
        tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
            .await
            .is_err()
        {
            warn!("some connections did not close within {SHUTDOWN_GRACE:?}");
        }
        cluster_stop.cancel();
        // Last: the connections' final writes (sessions left, wills set) are in.
        broker.close_store().await;
        outcome
    }

    /// Starts serving every listener, each in a task of `tasks`.
    fn spawn_listeners(self, token: &CancellationToken, tasks: &TaskTracker) {
        tasks.spawn(transport::tcp::serve_mqtt(
            self.mqtt,
            self.broker.clone(),
            token.clone(),
            tasks.clone(),
        ));
        if let (Some((listener, _)), Some(tls)) = (self.mqtts, &self.tls) {
            tasks.spawn(transport::tcp::serve_mqtts(
                listener,
                self.broker.clone(),
                tls.clone(),
                token.clone(),
                tasks.clone(),
            ));
        }
        let app = http::router(AppState {
            broker: self.broker.clone(),
            websocket: Arc::new(self.config.websocket.clone()),
            handshake_failures: Arc::new(HandshakeFailures::default()),
            static_dir: self.config.http.static_dir.clone(),
            web: Arc::new(self.config.web.clone()),
            history_filters: Arc::new(self.config.history.filters.clone()),
            tasks: tasks.clone(),
            shutdown: token.clone(),
            cluster: self.cluster.clone(),
        });
        let server = HttpServer::new(
            app,
            &self.config.http,
            self.broker.clone(),
            token.clone(),
            tasks.clone(),
        );
        if let (Some((listener, _)), Some(tls)) = (self.https, &self.tls) {
            tasks.spawn(server.clone().serve(listener, Some(tls.clone())));
        }
        tasks.spawn(server.serve(self.http, None));
    }
}

/// What SIGHUP re-reads. Each part logs how its reload went; one that
/// fails keeps what it had.
#[derive(Debug, Clone)]
struct Reloaders {
    /// The TLS certificates and CA, when configured.
    tls: Option<Arc<TlsAcceptor>>,
    /// The password and ACL files.
    auth: Arc<crate::auth::Authorizer>,
}

impl Reloaders {
    /// Re-reads everything SIGHUP reloads. New TLS handshakes use the new
    /// certificates, open connections keep theirs; each connection's next
    /// operation is decided by the new password and ACL rules.
    fn reload(&self) {
        if self.auth.has_files() {
            match self.auth.reload() {
                Ok(()) => info!("password and ACL files reloaded"),
                Err(e) => {
                    error!(error = %e, "password and ACL files not reloaded, the rules in force stay")
                }
            }
        }
        if let Some(tls) = &self.tls {
            match tls.reload() {
                Ok(()) => info!("TLS certificates reloaded"),
                Err(e) => {
                    error!(error = %e, "TLS certificates not reloaded, the old ones stay in use")
                }
            }
        }
    }
}

/// Calls [`Reloaders::reload`] each time `reloads` wakes (SIGHUP), until shutdown.
async fn reload_when(
    reloads: Arc<tokio::sync::Notify>,
    reloaders: Reloaders,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = reloads.notified() => {
                info!("SIGHUP: reloading");
                reloaders.reload();
            }
        }
    }
}

/// Binds and runs a gateway until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    Gateway::bind(config).await?.run(shutdown).await
}
