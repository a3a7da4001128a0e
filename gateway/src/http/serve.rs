//! The HTTP serve loop for the `http` and `https` listeners: hyper's
//! HTTP/1 server under the axum router, with the limits a server facing
//! the network needs (axum's `serve` has none of them):
//!
//! - a header read timeout (`http.header_read_timeout_secs`): a client
//!   that sends a partial request header (slowloris) is cut off. hyper
//!   starts this timer whenever it waits for a request head, which is also
//!   the wait between keep-alive requests: an idle keep-alive connection is
//!   closed after it too.
//! - an idle timeout (`http.idle_timeout_secs`): a connection on which no
//!   byte moves either way for that long is closed, which hyper has no
//!   timer for: a stalled request body, a client that stops reading its
//!   response.
//! - a bound on connections served at once (`http.max_connections`,
//!   shared by http and https): one over it is closed at once. A
//!   connection counts from its accept (TLS handshake included) until
//!   hyper hands it over: hyper's connection future completes at a
//!   WebSocket upgrade, so an upgraded WebSocket counts as an MQTT
//!   connection, no longer here.
//!
//! Each refusal is counted in the metrics and logged at most once per
//! interval. At shutdown each connection finishes the request it is
//! serving and closes, within [`DRAIN`].

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{service_fn, Service as _};
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::broker::{Broker, Metrics};
use crate::config::HttpConfig;
use crate::transport::tcp::{accept_loop, handshake_failed};
use crate::transport::throttle::{LogThrottle, LOG_INTERVAL};
use crate::transport::tls::TlsAcceptor;

/// How long a connection may take to finish its request at shutdown:
/// within the gateway's shutdown grace.
const DRAIN: Duration = Duration::from_secs(3);

/// Set on every request that came over TLS (`https`, `wss`).
#[derive(Debug, Clone)]
pub(crate) struct TlsPeer {
    /// The subject common name of the client's verified certificate.
    pub(crate) identity: Option<Arc<str>>,
}

/// Serves the router on HTTP listeners; one per gateway, shared by http
/// and https so the connection bound covers both.
#[derive(Debug, Clone)]
pub struct HttpServer {
    router: Router,
    broker: Broker,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    max_connections: usize,
    permits: Arc<Semaphore>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl HttpServer {
    /// A server of `router` with the limits of `config`; connections are
    /// tracked in `tasks` and told to close when `shutdown` fires.
    pub fn new(
        router: Router,
        config: &HttpConfig,
        broker: Broker,
        shutdown: CancellationToken,
        tasks: TaskTracker,
    ) -> Self {
        Self {
            router,
            broker,
            header_read_timeout: config.header_read_timeout(),
            idle_timeout: config.idle_timeout(),
            max_connections: config.max_connections,
            permits: Arc::new(Semaphore::new(config.max_connections)),
            shutdown,
            tasks,
        }
    }

    /// Accepts connections on `listener` until shutdown; over TLS when
    /// `tls` is given.
    pub async fn serve(self, listener: TcpListener, tls: Option<Arc<TlsAcceptor>>) {
        let shutdown = self.shutdown.clone();
        accept_loop(listener, shutdown, |stream, remote| {
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    let server = self.clone();
                    let tls = tls.clone();
                    self.tasks
                        .spawn(server.connection(stream, remote, tls, permit));
                }
                // Dropped here: closed at once, before a byte is read.
                Err(_) => self.refused(remote),
            }
        })
        .await;
    }

    fn refused(&self, remote: SocketAddr) {
        static LOG: LogThrottle = LogThrottle::new(LOG_INTERVAL);
        Metrics::add(&self.broker.metrics().http_refused_max_connections, 1);
        if let Some(held) = LOG.allow() {
            warn!(
                %remote,
                max = self.max_connections,
                "HTTP connection refused: http.max_connections are open \
                 ({held} more refused since the last such line)"
            );
        }
    }

    /// One connection: the TLS handshake if any, then HTTP until it closes
    /// or is handed over to a WebSocket. The permit is held until then.
    async fn connection(
        self,
        stream: TcpStream,
        remote: SocketAddr,
        tls: Option<Arc<TlsAcceptor>>,
        permit: OwnedSemaphorePermit,
    ) {
        let activity = Arc::new(AtomicU64::new(0));
        let io = Watched {
            io: stream,
            activity: activity.clone(),
        };
        let Some(tls) = tls else {
            return self.http(io, remote, None, &activity, permit).await;
        };
        let accepted = tokio::select! {
            _ = self.shutdown.cancelled() => return,
            r = tls.accept(io, self.header_read_timeout) => r,
        };
        match accepted {
            Ok(a) => {
                let peer = TlsPeer {
                    identity: a.identity,
                };
                self.http(a.stream, remote, Some(peer), &activity, permit)
                    .await;
            }
            Err(e) => handshake_failed(self.broker.metrics(), remote, "https", &e),
        }
    }

    /// HTTP/1 on `io` until the connection ends.
    async fn http<I>(
        &self,
        io: I,
        remote: SocketAddr,
        tls: Option<TlsPeer>,
        activity: &AtomicU64,
        _permit: OwnedSemaphorePermit,
    ) where
        I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let router = TowerToHyperService::new(self.router.clone());
        // What `into_make_service_with_connect_info` gave the handlers:
        // `ConnectInfo<SocketAddr>`, and here also whether it is TLS.
        let service = service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(remote));
            if let Some(tls) = &tls {
                request.extensions_mut().insert(tls.clone());
            }
            router.call(request)
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(conn);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            () = idle(activity, self.idle_timeout) => return self.timed_out(remote, false),
            () = self.shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                match tokio::time::timeout(DRAIN, conn).await {
                    Ok(r) => r,
                    Err(_) => return,
                }
            }
        };
        match result {
            Err(e) if e.is_timeout() => self.timed_out(remote, true),
            Err(e) => debug!(%remote, error = %e, "HTTP connection ended with an error"),
            Ok(()) => {}
        }
    }

    /// Counts and logs a connection closed by the header or idle timeout.
    fn timed_out(&self, remote: SocketAddr, header: bool) {
        static HEADER_LOG: LogThrottle = LogThrottle::new(LOG_INTERVAL);
        static IDLE_LOG: LogThrottle = LogThrottle::new(LOG_INTERVAL);
        let m = self.broker.metrics();
        let (counter, log, what) = if header {
            (
                &m.http_header_timeouts,
                &HEADER_LOG,
                "no whole request header within",
            )
        } else {
            (&m.http_idle_timeouts, &IDLE_LOG, "no progress for")
        };
        let limit = if header {
            self.header_read_timeout
        } else {
            self.idle_timeout
        };
        Metrics::add(counter, 1);
        match log.allow() {
            Some(held) => warn!(
                %remote,
                "HTTP connection closed: {what} {limit:?} ({held} more since the last such line)"
            ),
            None => debug!(%remote, "HTTP connection closed: {what} {limit:?}"),
        }
    }
}

/// Completes once `activity` has not changed for `limit`. Sampled four
/// times per `limit`: it fires between `limit` and 1.25 × `limit` after
/// the last byte, at the cost of one timer per connection, not one reset
/// per read.
async fn idle(activity: &AtomicU64, limit: Duration) {
    let tick = limit / 4;
    let mut seen = activity.load(Ordering::Relaxed);
    let mut quiet = Duration::ZERO;
    loop {
        tokio::time::sleep(tick).await;
        let now = activity.load(Ordering::Relaxed);
        if now == seen {
            quiet += tick;
            if quiet >= limit {
                return;
            }
        } else {
            seen = now;
            quiet = Duration::ZERO;
        }
    }
}

/// A byte stream that counts the reads and writes that moved bytes, so
/// [`idle`] can tell a stalled connection from a busy one.
#[derive(Debug)]
struct Watched<S> {
    io: S,
    activity: Arc<AtomicU64>,
}

impl<S> Watched<S> {
    fn moved(&self, n: usize) {
        if n > 0 {
            self.activity.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        this.moved(buf.filled().len() - before);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        this.moved(n);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs))?;
        this.moved(n);
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
