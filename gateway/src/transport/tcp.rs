//! The accept loop every listener shares (mqtt, mqtts, http, https), and
//! the MQTT front doors built on it. Each connection gets its own task;
//! the loop itself never waits on a client: a TLS handshake, even a slow
//! one, runs in the connection's task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, warn};

use super::throttle::{LogThrottle, LOG_INTERVAL};
use super::tls::TlsAcceptor;
use crate::broker::connection::{self, ConnInfo, Transport};
use crate::broker::{Broker, Metrics};

/// Accepts connections until `shutdown` fires and hands each to
/// `on_accept`, which must not wait: it spawns what the connection needs.
pub async fn accept_loop(
    listener: TcpListener,
    shutdown: CancellationToken,
    mut on_accept: impl FnMut(TcpStream, SocketAddr),
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, remote)) => {
                // Small packets should leave at once, not wait for Nagle.
                if let Err(e) = stream.set_nodelay(true) {
                    warn!(%remote, error = %e, "cannot set TCP_NODELAY");
                }
                on_accept(stream, remote);
            }
            Err(e) => {
                // Out of file descriptors and the like: back off briefly
                // rather than spin, and keep serving existing clients.
                error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// MQTT over TCP. Connection tasks are registered in `tasks` so shutdown
/// can wait for them.
pub async fn serve_mqtt(
    listener: TcpListener,
    broker: Broker,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    accept_loop(listener, shutdown.clone(), |stream, remote| {
        let info = ConnInfo::new(Transport::Tcp, remote);
        tasks.spawn(connection::serve(
            broker.clone(),
            stream,
            info,
            shutdown.clone(),
        ));
    })
    .await;
}

/// MQTT over TLS: the handshake, bounded by the CONNECT timeout, then the
/// same connection handler, told the client certificate's identity.
pub async fn serve_mqtts(
    listener: TcpListener,
    broker: Broker,
    tls: Arc<TlsAcceptor>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let spawner = tasks.clone();
    accept_loop(listener, shutdown.clone(), |stream, remote| {
        spawner.spawn(handshake(
            stream,
            remote,
            broker.clone(),
            tls.clone(),
            shutdown.clone(),
            tasks.clone(),
        ));
    })
    .await;
}

/// One mqtts handshake; on success the connection is served in a task of
/// its own, so this one (and the handshake's state) is gone by then.
async fn handshake(
    stream: TcpStream,
    remote: SocketAddr,
    broker: Broker,
    tls: Arc<TlsAcceptor>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let limit = broker.config().connect_timeout();
    let accepted = tokio::select! {
        _ = shutdown.cancelled() => return,
        r = tls.accept(stream, limit) => r,
    };
    match accepted {
        Ok(accepted) => {
            let info = ConnInfo {
                transport: Transport::Tls,
                remote,
                peer_identity: accepted.identity,
            };
            // Boxed: the connection's future keeps the stream it was given,
            // and a pointer is smaller than a TLS stream.
            let stream = Box::new(accepted.stream);
            tasks.spawn(connection::serve(broker, stream, info, shutdown));
        }
        Err(e) => handshake_failed(broker.metrics(), remote, "mqtts", &e),
    }
}

/// Counts a failed TLS handshake and logs it, at most once per interval
/// at warn: a scanner or a misconfigured fleet must not flood the log.
pub(crate) fn handshake_failed(
    metrics: &Metrics,
    remote: SocketAddr,
    listener: &str,
    e: &std::io::Error,
) {
    static LOG: LogThrottle = LogThrottle::new(LOG_INTERVAL);
    Metrics::add(&metrics.tls_handshake_failures, 1);
    match LOG.allow() {
        Some(held) => warn!(
            %remote,
            listener,
            error = %e,
            "TLS handshake failed ({held} more since the last such line)"
        ),
        None => debug!(%remote, listener, error = %e, "TLS handshake failed"),
    }
}
