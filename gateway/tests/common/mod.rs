//! Shared helpers for the end-to-end tests: an in-process gateway on port 0
//! that stops when dropped, rumqttc clients driven as event streams, a raw
//! protocol client ([`raw`]), mosquitto_pub/sub child processes
//! ([`mosquitto`]) and real nats-server clusters ([`nats`]).
//!
//! Every wait is bounded ([`WAIT`]) and panics with a message naming what
//! did not happen, so a broker that hangs fails the test fast instead of
//! hanging CI. Readiness is always an event (CONNACK, SUBACK, a message),
//! never a sleep.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

pub(crate) mod mosquitto;
pub(crate) mod nats;
pub(crate) mod process;
pub(crate) mod raw;
pub(crate) mod rumqtt;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use aviary::{Broker, BrokerConfig, Config, Gateway};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long any single expected event may take before the test fails.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Awaits `fut` for at most [`WAIT`], panicking with `what` otherwise.
pub(crate) async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    within_for(WAIT, what, fut).await
}

/// Awaits `fut` for at most `limit`, panicking with `what` otherwise.
pub(crate) async fn within_for<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// Logs the gateway's warnings to the test output, which libtest shows only for a failing
/// test: what the gateway saw is then in CI's log. `RUST_LOG` chooses more
/// (`RUST_LOG=aviary=debug`).
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// A gateway serving on an ephemeral port. Dropping it fires its shutdown.
pub(crate) struct TestGateway {
    /// MQTT over TCP.
    pub(crate) addr: SocketAddr,
    /// The broker, for looking at its state.
    pub(crate) broker: Broker,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _data_dir: tempfile::TempDir,
}

impl TestGateway {
    /// A gateway with the test defaults (see [`TestGateway::start_with`]).
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A gateway whose broker configuration `tune` adjusts. `$SYS` updates
    /// are hourly by default here, so they do not interleave with tests.
    pub(crate) async fn start_with(tune: impl FnOnce(&mut BrokerConfig)) -> Self {
        init_tracing();
        let data_dir = tempfile::tempdir().expect("temporary data dir");
        let mut config = Config::default();
        config.listen.mqtt = SocketAddr::from(([127, 0, 0, 1], 0));
        config.listen.http = SocketAddr::from(([127, 0, 0, 1], 0));
        config.data_dir = data_dir.path().to_owned();
        config.mqtt.sys_interval_secs = 3600;
        tune(&mut config.mqtt);
        config.validate().expect("test config is valid");
        let gateway = Gateway::bind(config).await.expect("gateway binds port 0");
        let addr = gateway.mqtt_addr();
        let broker = gateway.broker().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let ran = gateway.run(async {
                let _ = rx.await;
            });
            ran.await.expect("the gateway stopped with an error");
        });
        Self {
            addr,
            broker,
            shutdown: Some(tx),
            task: Some(task),
            _data_dir: data_dir,
        }
    }

    /// The MQTT port.
    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Fires the shutdown without waiting; returns the running gateway's
    /// task, which completes once every connection is closed.
    pub(crate) fn begin_shutdown(&mut self) -> JoinHandle<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.take().expect("gateway still running")
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Payload `msg-<n>`; [`seq_of`] reads `n` back.
pub(crate) fn seq_payload(n: usize) -> Vec<u8> {
    format!("msg-{n}").into_bytes()
}

/// The sequence number of a [`seq_payload`].
pub(crate) fn seq_of(payload: &[u8]) -> usize {
    let text = std::str::from_utf8(payload).expect("utf-8 payload");
    text.strip_prefix("msg-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a sequence payload: {text:?}"))
}

/// Waits until `cond` holds, checking every few milliseconds: for broker
/// state that no packet announces (say, a session detached after its
/// socket closed). Bounded by [`WAIT`].
pub(crate) async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    within(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

/// Clients the broker counts as connected.
pub(crate) fn connected(broker: &Broker) -> u64 {
    aviary::broker::Metrics::get(&broker.metrics().clients_connected)
}
