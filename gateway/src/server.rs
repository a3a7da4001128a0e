//! The gateway's lifecycle: bind the listeners (port 0 picks a free port),
//! log the bound addresses in one parseable line, serve until the shutdown
//! future completes, then stop accepting and close every connection
//! (MQTT 5 clients get DISCONNECT 0x8B) while keeping the sessions.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::config::{Config, ConfigError};
use crate::http::{self, AppState, HandshakeFailures};
use crate::store::{self, StoreError, StoreHandle};
use crate::transport;

/// Why the gateway could not start.
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
    /// The configuration is invalid, or opens the gateway to the network
    /// without authentication.
    #[error(transparent)]
    Config(#[from] ConfigError),
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
}

/// Binds one listener and learns its address (port 0 picks one).
async fn listen(what: &'static str, addr: SocketAddr) -> Result<(TcpListener, SocketAddr), Error> {
    let bind_error = |error| Error::Bind { what, addr, error };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

impl Gateway {
    /// Opens the store in the data dir and brings back what it kept, then binds the listeners
    /// of `config`: a client that can connect finds the state of before the restart.
    pub async fn bind(config: Config) -> Result<Self, Error> {
        config.validate()?;
        let store = store::open(&config.store, &config.data_dir)?;
        let snapshot = store.as_ref().map(StoreHandle::load).transpose()?;
        let broker = Broker::with_store(config.mqtt.clone(), &config.history, store);
        if let Some(snapshot) = snapshot {
            broker.recover(snapshot)?;
        }
        let (mqtt, mqtt_addr) = listen("mqtt", config.listen.mqtt).await?;
        let (http, http_addr) = listen("http", config.listen.http).await?;
        Ok(Self {
            broker,
            config,
            mqtt,
            mqtt_addr,
            http,
            http_addr,
        })
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
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let token = CancellationToken::new();
        let tasks = TaskTracker::new();
        info!("listening mqtt={} http={}", self.mqtt_addr, self.http_addr);
        self.broker.spawn_background(token.clone());
        tasks.spawn(transport::tcp::accept_loop(
            self.mqtt,
            self.broker.clone(),
            token.clone(),
            tasks.clone(),
        ));
        let app = http::router(AppState {
            broker: self.broker.clone(),
            websocket: Arc::new(self.config.websocket.clone()),
            handshake_failures: Arc::new(HandshakeFailures::default()),
            static_dir: self.config.http.static_dir.clone(),
            web: Arc::new(self.config.web.clone()),
            history_filters: Arc::new(self.config.history.filters.clone()),
            tasks: tasks.clone(),
            shutdown: token.clone(),
        });
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let stop_http = token.clone().cancelled_owned();
        tasks.spawn(async move {
            let serve = axum::serve(self.http, service).with_graceful_shutdown(stop_http);
            if let Err(e) = serve.await {
                warn!(error = %e, "HTTP server failed");
            }
        });
        shutdown.await;
        info!("shutting down: closing connections, sessions are kept");
        token.cancel();
        tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
            .await
            .is_err()
        {
            warn!("some connections did not close within {SHUTDOWN_GRACE:?}");
        }
        // Last: the connections' final writes (sessions left, wills set) are in.
        self.broker.close_store().await;
    }
}

/// Binds and runs a gateway until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    Gateway::bind(config).await?.run(shutdown).await;
    Ok(())
}
