//! A minimal MQTT client over TCP or WebSocket, built on `aviary-protocol`.
//!
//! Only what the load needs: connect, subscribe, publish, acknowledge, ping. A connection is
//! split into a [`PacketReader`] and a [`PacketWriter`] so a publisher can read its PUBACKs in
//! one task while it writes in another. Writes are batched: packets are encoded into a buffer
//! and sent with one syscall (TCP) or one binary frame (WebSocket), as a real high-throughput
//! client does; that keeps the load generator from being the bottleneck on two cores.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU16;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context as _, Result};
use aviary_protocol::{
    Connect, Disconnect, Packet, ProtocolVersion, QoS, ReasonCode, Subscribe, SubscriptionOptions,
    TopicFilter, MAX_PACKET_SIZE,
};
use bytes::BytesMut;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use nix::sys::socket::setsockopt;
use nix::sys::socket::sockopt::IpBindAddressNoPort;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How long the handshake steps (TCP, WebSocket upgrade, CONNACK, SUBACK) may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// The byte stream under MQTT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// Plain TCP.
    Tcp,
    /// WebSocket, subprotocol `mqtt`, binary frames.
    Ws,
}

impl Transport {
    /// Short name for scenario titles.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Ws => "WS",
        }
    }
}

/// Where a broker listens.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// MQTT over TCP.
    pub(crate) tcp: SocketAddr,
    /// MQTT over WebSocket (`ws://HOST:PORT/PATH`).
    pub(crate) ws_url: String,
}

/// What a client sends in its CONNECT.
#[derive(Debug, Clone)]
pub(crate) struct ClientOptions {
    /// MQTT version.
    pub(crate) version: ProtocolVersion,
    /// Client identifier (unique per connection, or the broker takes the session over).
    pub(crate) client_id: String,
    /// Keep alive in seconds; 0 turns it off, so idle connections need no PINGREQ.
    pub(crate) keep_alive: u16,
    /// MQTT 5 Receive Maximum: how many QoS 1/2 messages the broker may have in flight
    /// towards us. Ignored for MQTT 3.x.
    pub(crate) receive_maximum: u16,
    /// Source address to bind, to spread many connections over more ephemeral ports.
    pub(crate) bind: Option<IpAddr>,
    /// Small buffers, for connections that stay idle: thousands of them live in this process
    /// (a WebSocket client's default read buffer alone is 128 KiB).
    pub(crate) small_buffers: bool,
    /// Ask for a persistent session: Clean Session off (3.x), or Clean Start off with a
    /// Session Expiry Interval that never runs out (5.0). The broker then keeps the session
    /// and queues QoS 1/2 messages for it while the client is away.
    pub(crate) persistent: bool,
    /// The socket's receive buffer (SO_RCVBUF), set before connecting: a subscriber that
    /// stops reading then pushes back on the broker after a few KiB rather than after the
    /// megabytes loopback autotuning would allow.
    pub(crate) recv_buffer: Option<u32>,
}

type WsStream = WebSocketStream<TcpStream>;

/// The receiving half of a connection: decodes whole packets off a buffer.
#[derive(Debug)]
pub(crate) struct PacketReader {
    source: ReadSource,
    buf: BytesMut,
    version: ProtocolVersion,
}

#[derive(Debug)]
enum ReadSource {
    Tcp(OwnedReadHalf),
    Ws(SplitStream<WsStream>),
}

impl PacketReader {
    /// A packet already received, without waiting for the network.
    pub(crate) fn try_next(&mut self) -> Result<Option<Packet>> {
        aviary_protocol::decode(&mut self.buf, self.version, MAX_PACKET_SIZE)
            .map_err(|e| anyhow!("broker sent a packet we cannot decode: {e}"))
    }

    /// The next packet, reading from the network as needed.
    ///
    /// Cancel-safe: bytes read are in the buffer before an await can be abandoned, so a
    /// `timeout` around this loses nothing.
    pub(crate) async fn next(&mut self) -> Result<Packet> {
        loop {
            if let Some(packet) = self.try_next()? {
                return Ok(packet);
            }
            self.fill().await?;
        }
    }

    /// Reads at least one more byte (a TCP read or one WebSocket binary frame).
    async fn fill(&mut self) -> Result<()> {
        match &mut self.source {
            ReadSource::Tcp(read) => {
                if self.buf.capacity() - self.buf.len() < 4096 {
                    self.buf.reserve(64 * 1024);
                }
                let n = read.read_buf(&mut self.buf).await?;
                ensure!(n > 0, "broker closed the connection");
                Ok(())
            }
            ReadSource::Ws(stream) => loop {
                match stream.next().await {
                    Some(Ok(Message::Binary(data))) => {
                        self.buf.extend_from_slice(&data);
                        return Ok(());
                    }
                    // tungstenite answers pings itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Ok(Message::Text(_))) => bail!("broker sent a text frame"),
                    Some(Ok(Message::Close(_))) | None => bail!("broker closed the WebSocket"),
                    Some(Err(e)) => return Err(e.into()),
                }
            },
        }
    }
}

/// The sending half of a connection: packets are queued into a buffer and sent by `flush`.
#[derive(Debug)]
pub(crate) struct PacketWriter {
    sink: WriteSink,
    buf: BytesMut,
    version: ProtocolVersion,
}

#[derive(Debug)]
enum WriteSink {
    Tcp(OwnedWriteHalf),
    Ws(SplitSink<WsStream, Message>),
}

impl PacketWriter {
    /// Encodes `packet` into the send buffer.
    pub(crate) fn queue(&mut self, packet: &Packet) -> Result<()> {
        packet
            .encode(self.version, &mut self.buf)
            .map_err(|e| anyhow!("cannot encode {:?}: {e}", packet.packet_type()))
    }

    /// Sends everything queued: one write on TCP, one binary frame on WebSocket.
    pub(crate) async fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        match &mut self.sink {
            WriteSink::Tcp(write) => {
                write.write_all(&self.buf).await?;
                self.buf.clear();
            }
            WriteSink::Ws(sink) => {
                let frame = self.buf.split().freeze();
                sink.send(Message::Binary(frame)).await?;
            }
        }
        Ok(())
    }

    /// Queues and sends one packet.
    pub(crate) async fn send(&mut self, packet: &Packet) -> Result<()> {
        self.queue(packet)?;
        self.flush().await
    }

    /// Sends DISCONNECT (and closes the WebSocket), ignoring errors: the benchmark is over
    /// for this connection either way.
    pub(crate) async fn disconnect(mut self) {
        let _ = self
            .send(&Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)))
            .await;
        match &mut self.sink {
            WriteSink::Tcp(write) => {
                let _ = write.shutdown().await;
            }
            WriteSink::Ws(sink) => {
                let _ = sink.close().await;
            }
        }
    }
}

/// Opens a connection, sends CONNECT and waits for a successful CONNACK.
pub(crate) async fn connect(
    endpoint: &Endpoint,
    transport: Transport,
    options: &ClientOptions,
) -> Result<(PacketReader, PacketWriter)> {
    let (reader, writer, _session_present) = connect_session(endpoint, transport, options).await?;
    Ok((reader, writer))
}

/// Like [`connect`], and also says whether the broker resumed a stored session (the
/// CONNACK's Session Present flag).
pub(crate) async fn connect_session(
    endpoint: &Endpoint,
    transport: Transport,
    options: &ClientOptions,
) -> Result<(PacketReader, PacketWriter, bool)> {
    tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        connect_inner(endpoint, transport, options),
    )
    .await
    .map_err(|_| anyhow!("connecting took longer than {HANDSHAKE_TIMEOUT:?}"))?
}

async fn connect_inner(
    endpoint: &Endpoint,
    transport: Transport,
    options: &ClientOptions,
) -> Result<(PacketReader, PacketWriter, bool)> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = options.bind {
        // The port is picked at connect, as for an unbound socket, not at bind: a bind
        // must avoid every port of the address still in use, the connections that earlier
        // runs left in TIME_WAIT with other brokers included, and with thousands of those
        // each bind searched the port range for long (the spread scenario's 19,990
        // connections took 14 to 29 s after an earlier run, 1 to 2 s with this). The
        // connect only avoids the same address pair, and on loopback may reuse one in
        // TIME_WAIT (`tcp_tw_reuse`).
        setsockopt(&socket, IpBindAddressNoPort, &true).context("IP_BIND_ADDRESS_NO_PORT")?;
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("cannot bind {ip}"))?;
    }
    if let Some(size) = options.recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    let stream = socket.connect(endpoint.tcp_for(transport)?).await?;
    // Both brokers set TCP_NODELAY too; without it small packets wait for Nagle.
    stream.set_nodelay(true)?;
    let version = options.version;
    let (source, sink) = match transport {
        Transport::Tcp => {
            let (read, write) = stream.into_split();
            (ReadSource::Tcp(read), WriteSink::Tcp(write))
        }
        Transport::Ws => {
            let mut request = endpoint.ws_url.as_str().into_client_request()?;
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
            let config = options
                .small_buffers
                .then(|| WebSocketConfig::default().read_buffer_size(4096));
            let (ws, _response) =
                tokio_tungstenite::client_async_with_config(request, stream, config)
                    .await
                    .context("WebSocket upgrade failed")?;
            let (sink, source) = ws.split();
            (ReadSource::Ws(source), WriteSink::Ws(sink))
        }
    };
    let capacity = if options.small_buffers { 256 } else { 8 * 1024 };
    let mut reader = PacketReader {
        source,
        buf: BytesMut::with_capacity(capacity),
        version,
    };
    let mut writer = PacketWriter {
        sink,
        buf: BytesMut::with_capacity(capacity),
        version,
    };
    let mut connect = Connect::new(version, options.client_id.as_str());
    connect.keep_alive = options.keep_alive;
    connect.clean_start = !options.persistent;
    if version.is_v5() {
        connect.properties.receive_maximum = NonZeroU16::new(options.receive_maximum);
        if options.persistent {
            connect.properties.session_expiry_interval = Some(u32::MAX);
        }
    }
    writer.send(&Packet::Connect(Box::new(connect))).await?;
    match reader.next().await? {
        Packet::ConnAck(ack) if !ack.reason_code.is_error() => {
            Ok((reader, writer, ack.session_present))
        }
        Packet::ConnAck(ack) => bail!("broker refused CONNECT: {:?}", ack.reason_code),
        other => bail!("expected CONNACK, got {:?}", other.packet_type()),
    }
}

impl Endpoint {
    /// The TCP address to dial for `transport` (the WebSocket URL's host and port).
    fn tcp_for(&self, transport: Transport) -> Result<SocketAddr> {
        match transport {
            Transport::Tcp => Ok(self.tcp),
            Transport::Ws => {
                let rest = self
                    .ws_url
                    .strip_prefix("ws://")
                    .context("only ws:// URLs are supported")?;
                let authority = rest.split('/').next().unwrap_or(rest);
                authority
                    .parse()
                    .with_context(|| format!("bad WebSocket address {authority}"))
            }
        }
    }
}

/// Subscribes to `filter` and waits for a SUBACK that grants it.
pub(crate) async fn subscribe(
    reader: &mut PacketReader,
    writer: &mut PacketWriter,
    filter: &str,
    qos: QoS,
) -> Result<()> {
    let filter = TopicFilter::new(filter).map_err(|e| anyhow!("bad topic filter: {e}"))?;
    let subscribe = Subscribe {
        packet_id: NonZeroU16::MIN,
        properties: Default::default(),
        filters: vec![(filter, SubscriptionOptions::qos(qos))],
    };
    writer.send(&Packet::Subscribe(subscribe)).await?;
    let answer = tokio::time::timeout(HANDSHAKE_TIMEOUT, reader.next())
        .await
        .map_err(|_| anyhow!("no SUBACK within {HANDSHAKE_TIMEOUT:?}"))??;
    match answer {
        Packet::SubAck(ack) if ack.reason_codes.iter().all(|code| !code.is_error()) => Ok(()),
        Packet::SubAck(ack) => bail!("subscription refused: {:?}", ack.reason_codes),
        other => bail!("expected SUBACK, got {:?}", other.packet_type()),
    }
}
