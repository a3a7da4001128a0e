//! One client connection, over any byte stream: TCP, TLS or a WebSocket
//! unframed into bytes. The transport is invisible from here on.
//!
//! After the CONNECT handshake ([`handshake`]) two halves run side by side:
//! the reader decodes packets and hands them to the broker; the writer
//! drains the session's queue, encoding many packets per write. Both keep
//! their partial state in their own struct, so either can be stopped
//! mid-way (takeover, shutdown, an error on the other half) and the writer
//! can still finish a half-written packet before the final DISCONNECT.

mod acks;
mod defer;
mod halves;
mod handshake;
mod inbound;
mod outbox;
mod reader;
mod writer;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use aviary_protocol::{ByteString, Disconnect, Packet, ProtocolVersion, ReasonCode};
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use super::{take_turn, Broker, Ending, Metrics, Opened, Session, WriterWake};
pub use defer::runtime;
use defer::{defer, resume_deferred};
use reader::{Close, Reader};
use writer::Writer;

/// Which front door a connection came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// MQTT over TCP.
    Tcp,
    /// MQTT over TLS.
    Tls,
    /// MQTT over WebSocket.
    WebSocket,
    /// MQTT over WebSocket over TLS.
    WebSocketTls,
}

impl Transport {
    /// A short name for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::WebSocket => "ws",
            Self::WebSocketTls => "wss",
        }
    }
}

/// Where a connection comes from.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The front door.
    pub transport: Transport,
    /// The client's address (after trusted proxies, for WebSockets).
    pub remote: SocketAddr,
    /// The subject common name of the client's TLS certificate, once
    /// verified against `[tls] cafile`; the username when
    /// `use_identity_as_username` is set.
    pub peer_identity: Option<Arc<str>>,
}

impl ConnInfo {
    /// A connection without a client certificate.
    pub fn new(transport: Transport, remote: SocketAddr) -> Self {
        Self {
            transport,
            remote,
            peer_identity: None,
        }
    }
}

/// How long the final DISCONNECT may take to write before we give up.
const FINAL_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves one connection until it ends. Never returns an error: whatever
/// goes wrong is logged and ends only this connection.
///
/// An idle connection costs mostly its task, which is this future: so it is an `async move`
/// block and not an `async fn`, whose arguments would each keep a second copy in it (the
/// argument, and the local it is moved to), and what lives only until the handshake is
/// boxed or moved out.
///
/// Its log span (`conn`, with the client's address and front door) covers the handshake and
/// the close, not the time between: a span alive for the connection's life would cost every
/// idle connection the subscriber's record of it (at the default log level) and every poll
/// an enter and exit. Events in between name their client themselves.
pub fn serve<S>(
    broker: Broker,
    stream: S,
    info: ConnInfo,
    shutdown: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The stream goes in already in its final place; the connection info and the shutdown
    // token, needed only until the handshake, as one pointer.
    let stream = halves::Shared::new(stream);
    let start = Box::new(handshake::Start { info, shutdown });
    async move {
        // Held until the connection ends: its place in the connection limits.
        let Some(_admitted) = broker.admit(start.info.remote.ip()) else {
            return;
        };
        // Split in place: `tokio::io::split` would allocate, per connection.
        let (rd, wr) = stream.halves();
        Metrics::add(&broker.metrics().connections_total, 1);
        // The handshake and the close are boxed: they live briefly, and inline
        // they would make every connection's task (mostly idle) that much larger.
        // Matched at once, down to the fields: a named local that is only moved from would
        // keep its room in this future for the connection's whole life.
        let span = conn_span(start.info.remote, start.info.transport);
        let handshake = handshake::run(&broker, rd, wr, unbox(start)).instrument(span);
        let Some(handshake::Accepted {
            rd,
            wr,
            buf,
            opened:
                Opened {
                    session,
                    present,
                    wake,
                },
            params,
            shutting_down,
        }) = Box::pin(handshake).await
        else {
            return;
        };
        // `params` goes by value from here on: a local ever borrowed would keep its room in
        // this future for the connection's whole life.
        log_connected(&session, &wake, params, present);
        let mut reader = Reader::new(&broker, rd, buf, &session, &wake, params);
        let mut writer = Writer::new(&broker, wr, &session, &wake, params);
        // Shutdown comes as a kick (`Gateway::run` kicks every session once the
        // token is cancelled), not as a wait on the token here: that wait would
        // be one more future in every idle connection's task. A session attached
        // after those kicks went out found the token cancelled instead.
        let end = if shutting_down {
            End::Shutdown
        } else {
            Halves {
                reading: reader.run(),
                writing: writer.run(),
                wake: &wake,
                reader_first: false,
            }
            .await
        };
        let span = conn_span(wake.client.remote, wake.client.transport);
        span.record("client_id", tracing::field::display(&session.client_id));
        let finish = finish(&broker, &session, end, reader, writer);
        Box::pin(finish.instrument(span)).await;
        broker.client_disconnected(&wake.client);
    }
}

/// The log line of a connection past its CONNACK.
fn log_connected(session: &Session, wake: &WriterWake, params: Params, present: bool) {
    let facts = &wake.client;
    info!(client_id = %session.client_id, remote = %facts.remote, transport = %facts.transport.as_str(), version = %params.version, keep_alive = params.keep_alive, present, "client connected");
}

/// The span of a connection's handshake and close.
fn conn_span(remote: SocketAddr, transport: Transport) -> tracing::Span {
    tracing::info_span!(
        "conn",
        remote = %remote,
        transport = %transport.as_str(),
        client_id = tracing::field::Empty
    )
}

/// Takes `T` out of its box and frees the box now: `*boxed` in place would
/// free it only when the binding goes out of scope, for an argument at the
/// end of the connection.
#[expect(
    clippy::boxed_local,
    reason = "taking the box by value is the point: it is freed on return"
)]
fn unbox<T>(boxed: Box<T>) -> T {
    *boxed
}

pin_project_lite::pin_project! {
    /// The connection's two halves running side by side, with the kick (in `wake`), as one
    /// future.
    ///
    /// Not `tokio::select!`: whenever the reader queued something for its own writer (a PUBACK
    /// or PUBREC, or room in the window after the client's PUBACK), the writer is polled right
    /// after it, so that goes out in the same poll, without the wake-up that would make tokio
    /// poll the task again from the back of the queue and wake another worker thread (see
    /// `session::WriterWake`). Unless the reader read a few messages, which woke other
    /// connections (their subscribers): then those write first, and this writer after them,
    /// by [`defer`]. Which half goes first alternates, as `select!`'s random order did, so
    /// neither takes the whole cooperative budget of every poll.
    struct Halves<'a, R, W> {
        #[pin]
        reading: R,
        #[pin]
        writing: W,
        wake: &'a WriterWake,
        reader_first: bool,
    }
}

impl<R, W> Future for Halves<'_, R, W>
where
    R: Future<Output = Result<Close, reader::ConnError>>,
    W: Future<Output = std::io::Result<()>>,
{
    type Output = End;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<End> {
        // A connection that deferred its writer to the tasks polled next goes right after
        // this poll (see `defer`).
        resume_deferred(cx);
        let mut this = self.project();
        if let Poll::Ready(r) = this.wake.poll_kicked(cx) {
            return Poll::Ready(match r {
                ReasonCode::SERVER_SHUTTING_DOWN => End::Shutdown,
                code => End::Kicked(code),
            });
        }
        *this.reader_first = !*this.reader_first;
        if !*this.reader_first {
            if let Poll::Ready(r) = this.writing.as_mut().poll(cx) {
                return Poll::Ready(End::Writer(r));
            }
        }
        take_turn();
        if let Poll::Ready(r) = this.reading.poll(cx) {
            return Poll::Ready(End::Reader(r));
        }
        let own = this.wake.has_own();
        if own && take_turn().is_small_delivery() {
            // The reader routed a message or two to subscribers and queued its own client's
            // acknowledgements. The subscribers' deliveries go first: each write to a loopback
            // or LAN socket costs the writing thread the receiver's wake-up too, and the
            // PUBACK can wait that long where the delivery is what the latency is made of.
            // Not for a batch: its publisher waits for the PUBACKs to send more, and the
            // extra turn would cost each batch a poll and a look at the I/O driver.
            defer(cx);
            return Poll::Pending;
        }
        // The writer's turn, or a second one for what the reader just gave it.
        if *this.reader_first || own {
            if let Poll::Ready(r) = this.writing.poll(cx) {
                return Poll::Ready(End::Writer(r));
            }
        }
        Poll::Pending
    }
}

/// Why the connection's main loop ended.
enum End {
    Reader(Result<Close, reader::ConnError>),
    Writer(std::io::Result<()>),
    Kicked(ReasonCode),
    Shutdown,
}

async fn finish<R, W>(
    broker: &Broker,
    session: &Arc<Session>,
    end: End,
    reader: Reader<'_, R>,
    mut writer: Writer<'_, W>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (version, link_id) = writer.link();
    let end = match end {
        // The broker's keep alives closed the connection (see `broker::keep_alive`).
        End::Kicked(ReasonCode::KEEP_ALIVE_TIMEOUT) => {
            End::Reader(Err(reader.keep_alive_expired()))
        }
        end => end,
    };
    let mut expiry = reader.session_expiry();
    // The will is the session's; whether it is due is settled here.
    let mut publish_will = true;
    // Why, in words, for an MQTT 5 client (allowed on DISCONNECT even
    // without Request Problem Information [MQTT-3.1.2-29]).
    let mut reason_string = None;
    // The reason for a server-sent DISCONNECT (MQTT 5 only), if any.
    let disconnect = match &end {
        End::Reader(Ok(Close::Normal { expiry: e })) => {
            debug!("client disconnected");
            publish_will = false;
            expiry = e.unwrap_or(expiry);
            None
        }
        End::Reader(Ok(Close::WithWill { expiry: e })) => {
            debug!("client disconnected asking for its will");
            expiry = e.unwrap_or(expiry);
            None
        }
        End::Reader(Err(e)) => {
            let code = e.reason_code();
            if code.is_some() {
                Metrics::add(&broker.metrics().protocol_errors, 1);
                warn!(error = %e, "closing connection");
                reason_string = Some(e.to_string());
            } else {
                info!(error = %e, "connection lost");
            }
            code
        }
        End::Writer(r) => {
            info!(error = ?r.as_ref().err(), "connection lost while writing");
            None
        }
        End::Kicked(code) if *code == super::CUT_OFF => {
            info!("disconnected: this node is cut off from its cluster");
            // Its will is the cluster's to publish (see cluster::orphans), once.
            publish_will = false;
            Some(*code)
        }
        End::Kicked(code) => {
            info!("session taken over by a new connection");
            Some(*code)
        }
        // The server closes the connection without a DISCONNECT from the
        // client: the will is published [MQTT-3.1.2-8] (a delayed one
        // waits, as for any other close).
        End::Shutdown => Some(ReasonCode::SERVER_SHUTTING_DOWN),
    };
    if let (Some(code), true) = (disconnect, version.is_v5()) {
        let mut disconnect = Disconnect::new(code);
        disconnect.properties.reason_string = reason_string.map(ByteString::from);
        let packet = Packet::Disconnect(disconnect);
        let _ = tokio::time::timeout(FINAL_WRITE_TIMEOUT, writer.finish(Some(packet))).await;
    } else if !matches!(end, End::Writer(_)) {
        let _ = tokio::time::timeout(FINAL_WRITE_TIMEOUT, writer.finish(None)).await;
    }
    let ending = Ending {
        publish_will,
        expiry_secs: expiry,
    };
    broker.connection_closed(session, link_id, ending);
}

/// What the handshake settled for the rest of the connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    pub(crate) version: ProtocolVersion,
    pub(crate) link_id: u64,
    /// Keep alive in force, seconds; 0 for none.
    pub(crate) keep_alive: u16,
    /// Session expiry in force when the connection ends.
    pub(crate) session_expiry: u32,
    /// Largest packet the client accepts.
    pub(crate) client_max_packet_size: u32,
    /// Topic aliases the client accepts from us.
    pub(crate) client_topic_alias_max: u16,
    /// Whether the client accepts reason strings and user properties on
    /// acknowledgements (MQTT 5 Request Problem Information).
    pub(crate) problem_information: bool,
}

/// Writes `packet` in full; used before the two halves start.
pub(crate) async fn write_packet<W: AsyncWrite + Unpin>(
    wr: &mut W,
    packet: &Packet,
    version: ProtocolVersion,
) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    packet
        .encode(version, &mut out)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    wr.write_all(&out).await?;
    wr.flush().await
}
#[cfg(test)]
mod sizes;
#[cfg(test)]
mod wakes;
