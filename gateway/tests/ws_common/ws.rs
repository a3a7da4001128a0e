//! A raw MQTT-over-WebSocket client on tokio-tungstenite and the project's
//! codec, for what a client library will not do: packets split across
//! frames or packed into one, text frames, exact handshake headers, and
//! counting the frames the gateway sends.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::time::Duration;

use aviary_protocol::{
    decode, ConnAck, Connect, Packet, ProtocolVersion, Publish, QoS, ReasonCode, SubAck, Subscribe,
    SubscriptionOptions, TopicFilter, MAX_PACKET_SIZE,
};
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::common::{within, WAIT};

/// The client side of an upgraded socket.
pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket to `ws://{http}{path}` with extra request `headers`.
/// `Ok` is the socket and the 101 response; `Err` a refusal: the HTTP
/// response (status and body) the gateway answered instead.
pub(crate) async fn handshake(
    http: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(Socket, Response), Response> {
    let mut request = format!("ws://{http}{path}")
        .into_client_request()
        .expect("valid WebSocket URL");
    for (name, value) in headers {
        let name: tungstenite::http::HeaderName = name.parse().expect("header name");
        request
            .headers_mut()
            .insert(name, HeaderValue::from_str(value).expect("header value"));
    }
    match within(
        "WebSocket handshake",
        tokio_tungstenite::connect_async(request),
    )
    .await
    {
        Ok((socket, response)) => Ok((socket, response)),
        Err(tungstenite::Error::Http(response)) => Err(*response),
        Err(e) => panic!("WebSocket handshake failed below HTTP: {e}"),
    }
}

/// A WebSocket offering the `mqtt` subprotocol; panics unless accepted.
pub(crate) async fn open_socket(http: SocketAddr) -> Socket {
    match handshake(http, "/mqtt", &[("sec-websocket-protocol", "mqtt")]).await {
        Ok((socket, _)) => socket,
        Err(r) => panic!("WebSocket refused: {}", r.status()),
    }
}

/// What the connection did next.
#[derive(Debug)]
pub(crate) enum Event {
    /// A whole packet arrived (boxed: packets are large, closes small).
    Packet(Box<Packet>),
    /// The server sent a close frame (its code, if any).
    Close(Option<u16>),
    /// The TCP connection ended without a close frame (or after one).
    Ended,
}

/// A raw MQTT connection over a WebSocket.
pub(crate) struct WsRaw {
    /// The socket, for sending frames of any kind.
    pub(crate) ws: Socket,
    buf: BytesMut,
    pending: VecDeque<Packet>,
    /// The version packets are encoded and decoded with.
    pub(crate) version: ProtocolVersion,
    next_id: u16,
}

impl WsRaw {
    /// Wraps an open socket; nothing is sent yet.
    pub(crate) fn new(ws: Socket, version: ProtocolVersion) -> Self {
        Self {
            ws,
            buf: BytesMut::new(),
            pending: VecDeque::new(),
            version,
            next_id: 0,
        }
    }

    /// Opens a socket offering `mqtt`; nothing is sent yet.
    pub(crate) async fn open(http: SocketAddr, version: ProtocolVersion) -> Self {
        Self::new(open_socket(http).await, version)
    }

    /// Opens a socket, sends `connect` in one frame and returns the CONNACK.
    pub(crate) async fn connect(http: SocketAddr, connect: Connect) -> (Self, ConnAck) {
        let mut raw = Self::open(http, connect.protocol).await;
        raw.send(Packet::Connect(Box::new(connect))).await;
        let ack = raw.connack().await;
        (raw, ack)
    }

    /// Like [`WsRaw::connect`], and asserts the CONNACK is a success.
    pub(crate) async fn connect_ok(http: SocketAddr, connect: Connect) -> (Self, ConnAck) {
        let (raw, ack) = Self::connect(http, connect).await;
        assert_eq!(ack.reason_code, ReasonCode::SUCCESS, "CONNACK: {ack:?}");
        (raw, ack)
    }

    /// The next packet, which must be a CONNACK.
    pub(crate) async fn connack(&mut self) -> ConnAck {
        match self.recv().await {
            Packet::ConnAck(ack) => *ack,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// The local address of the underlying TCP connection.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        match self.ws.get_ref() {
            MaybeTlsStream::Plain(tcp) => tcp.local_addr().expect("local address"),
            _ => unreachable!("plain ws:// only"),
        }
    }

    /// A fresh packet identifier.
    pub(crate) fn packet_id(&mut self) -> NonZeroU16 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        NonZeroU16::new(self.next_id).expect("non-zero")
    }

    /// Encodes packets back to back, as one byte string.
    pub(crate) fn encode(&self, packets: &[Packet]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for p in packets {
            p.encode(self.version, &mut out)
                .expect("test packet encodes");
        }
        out.to_vec()
    }

    /// Sends one frame of any kind.
    pub(crate) async fn send_frame(&mut self, frame: Message) {
        within("WebSocket send", self.ws.send(frame))
            .await
            .expect("send a frame to the gateway");
    }

    /// Sends `bytes` as one binary frame.
    pub(crate) async fn send_binary(&mut self, bytes: &[u8]) {
        self.send_frame(Message::Binary(Bytes::copy_from_slice(bytes)))
            .await;
    }

    /// Encodes one packet and sends it as one binary frame.
    pub(crate) async fn send(&mut self, packet: Packet) {
        let bytes = self.encode(&[packet]);
        self.send_binary(&bytes).await;
    }

    /// The next frame, or `None` at the end of the stream. Panics if
    /// nothing comes within `limit`.
    pub(crate) async fn next_frame_within(&mut self, limit: Duration) -> Option<Message> {
        let what = format!("a WebSocket frame within {limit:?}");
        match crate::common::within_for(limit, &what, self.ws.next()).await {
            None | Some(Err(_)) => None,
            Some(Ok(m)) => Some(m),
        }
    }

    /// The next packet or close, or `None` if nothing happens within `limit`.
    pub(crate) async fn next_event(&mut self, limit: Duration) -> Option<Event> {
        if let Some(p) = self.pending.pop_front() {
            return Some(Event::Packet(Box::new(p)));
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match decode(&mut self.buf, self.version, MAX_PACKET_SIZE) {
                Ok(Some(p)) => return Some(Event::Packet(Box::new(p))),
                Ok(None) => {}
                Err(e) => panic!("the gateway sent a malformed packet: {e}"),
            }
            let frame = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(None | Some(Err(_))) => return Some(Event::Ended),
                Ok(Some(Ok(frame))) => frame,
            };
            match frame {
                Message::Binary(data) => self.buf.extend_from_slice(&data),
                Message::Close(frame) => return Some(Event::Close(frame.map(|f| f.code.into()))),
                Message::Text(t) => panic!("the gateway sent a text frame: {t:?}"),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    /// The next packet; panics if the connection closes or nothing comes.
    pub(crate) async fn recv(&mut self) -> Packet {
        match self.next_event(WAIT).await {
            Some(Event::Packet(p)) => *p,
            Some(e) => panic!("connection closed while waiting for a packet: {e:?}"),
            None => panic!("timed out after {WAIT:?} waiting for a packet"),
        }
    }

    /// The next PUBLISH, skipping PINGRESPs; panics on anything else.
    pub(crate) async fn recv_publish(&mut self) -> Publish {
        loop {
            match self.recv().await {
                Packet::Publish(p) => return p,
                Packet::PingResp => {}
                other => panic!("expected PUBLISH, got {other:?}"),
            }
        }
    }

    /// Reads until the stream ends (within `limit`); returns the packets
    /// and close codes seen first.
    pub(crate) async fn expect_closed_within(&mut self, limit: Duration) -> Vec<Event> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_event(left).await {
                Some(Event::Ended) => return seen,
                Some(e) => seen.push(e),
                None => panic!("connection not closed within {limit:?}; received {seen:?}"),
            }
        }
    }

    /// The SUBSCRIBE packet for one filter at `qos`, with a fresh id.
    pub(crate) fn subscribe_packet(&mut self, filter: &str, qos: QoS) -> Packet {
        Packet::Subscribe(Subscribe {
            packet_id: self.packet_id(),
            properties: Default::default(),
            filters: vec![(
                TopicFilter::new(filter.to_owned()).expect("valid filter"),
                SubscriptionOptions::qos(qos),
            )],
        })
    }

    /// Subscribes to one filter at `qos` and checks the SUBACK grants it.
    pub(crate) async fn subscribe(&mut self, filter: &str, qos: QoS) -> SubAck {
        let packet = self.subscribe_packet(filter, qos);
        self.send(packet).await;
        match self.recv().await {
            Packet::SubAck(ack) => {
                assert_eq!(ack.reason_codes, [ReasonCode::from_u8(qos as u8).unwrap()]);
                ack
            }
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }
}

/// A publish of `payload` on `topic` at `qos` (packet id left to the sender).
pub(crate) fn message(topic: &str, payload: &[u8], qos: QoS) -> Publish {
    let mut p = Publish::new(topic.to_owned(), payload.to_vec());
    p.qos = qos;
    p
}

/// `Connect` for `version` with `client_id`, clean start, 60 s keep alive.
pub(crate) fn connect(version: ProtocolVersion, client_id: &str) -> Connect {
    Connect::new(version, client_id.to_owned())
}
