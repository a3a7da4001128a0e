//! A tiny MQTT client on a bare `TcpStream` and the project's codec, for
//! what a real client library will not do: malformed or half-sent
//! packets, exact packet ids and DUP flags, topic aliases, and the MQTT 5
//! properties of every packet the broker sends.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::num::{NonZeroU16, NonZeroU32};
use std::time::Duration;

use aviary_protocol::{
    decode, Ack, ConnAck, Connect, Packet, ProtocolVersion, Publish, QoS, ReasonCode, SubAck,
    Subscribe, SubscriptionOptions, TopicFilter, MAX_PACKET_SIZE,
};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{within, WAIT};

/// What the connection did next.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // short-lived, and a test
pub(crate) enum Event {
    /// A whole packet arrived.
    Packet(Packet),
    /// The server closed the connection (or reset it).
    Closed,
}

/// A raw MQTT connection.
pub(crate) struct Raw {
    stream: TcpStream,
    buf: BytesMut,
    /// Packets read while waiting for something else, handed out first.
    pending: VecDeque<Packet>,
    /// The version packets are decoded with; set by [`Raw::connect`].
    pub(crate) version: ProtocolVersion,
    next_id: u16,
    /// How long [`Raw::recv`] waits for a packet.
    wait: Duration,
}

/// `Connect` for MQTT 5 with `client_id`, clean start and a 60 s keep alive.
pub(crate) fn v5(client_id: &str) -> Connect {
    Connect::new(ProtocolVersion::V5, client_id.to_owned())
}

/// `Connect` for MQTT 3.1.1 with `client_id`, clean session and a 60 s keep alive.
pub(crate) fn v4(client_id: &str) -> Connect {
    Connect::new(ProtocolVersion::V3_1_1, client_id.to_owned())
}

/// A topic filter, which must be valid.
pub(crate) fn filter(f: &str) -> TopicFilter {
    TopicFilter::new(f.to_owned()).expect("valid topic filter")
}

/// A publish of `payload` on `topic` at `qos` (packet id left to the sender).
pub(crate) fn message(topic: &str, payload: &[u8], qos: QoS) -> Publish {
    let mut p = Publish::new(topic.to_owned(), payload.to_vec());
    p.qos = qos;
    p
}

/// The reason codes of `seen`, which must all be DISCONNECTs: what the
/// server said before closing (reason strings and properties aside).
pub(crate) fn disconnects(seen: Vec<Packet>) -> Vec<ReasonCode> {
    seen.into_iter()
        .map(|p| match p {
            Packet::Disconnect(d) => d.reason_code,
            other => panic!("expected only DISCONNECT before the close, got {other:?}"),
        })
        .collect()
}

impl Raw {
    /// Opens a TCP connection and sends nothing yet.
    pub(crate) async fn open(addr: SocketAddr) -> Self {
        let stream = within("TCP connect", TcpStream::connect(addr))
            .await
            .expect("TCP connect to the gateway");
        Self::from_stream(stream)
    }

    /// Opens a TCP connection from the loopback address `source` (any of 127.0.0.0/8), to be
    /// told apart from other clients by the per-address limits.
    pub(crate) async fn open_from(addr: SocketAddr, source: std::net::Ipv4Addr) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("TCP socket");
        socket
            .bind(SocketAddr::from((source, 0)))
            .expect("bind a loopback source address");
        let stream = within("TCP connect", socket.connect(addr))
            .await
            .expect("TCP connect to the gateway");
        Self::from_stream(stream)
    }

    fn from_stream(stream: TcpStream) -> Self {
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            buf: BytesMut::with_capacity(4096),
            pending: VecDeque::new(),
            version: ProtocolVersion::V5,
            next_id: 0,
            wait: WAIT,
        }
    }

    /// Connects with `connect` and returns the CONNACK, whatever its code.
    pub(crate) async fn connect(addr: SocketAddr, connect: Connect) -> (Self, ConnAck) {
        Self::open(addr).await.handshake(connect).await
    }

    /// Sends `connect` on this open connection and returns the CONNACK, whatever its code.
    pub(crate) async fn handshake(self, connect: Connect) -> (Self, ConnAck) {
        let mut raw = self;
        raw.version = connect.protocol;
        raw.send(Packet::Connect(Box::new(connect))).await;
        match raw.recv().await {
            Packet::ConnAck(ack) => (raw, *ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Connects and asserts the CONNACK is a success.
    pub(crate) async fn connect_ok(addr: SocketAddr, connect: Connect) -> (Self, ConnAck) {
        let (raw, ack) = Self::connect(addr, connect).await;
        assert_eq!(ack.reason_code, ReasonCode::SUCCESS, "CONNACK: {ack:?}");
        (raw, ack)
    }

    /// A fresh packet identifier.
    pub(crate) fn packet_id(&mut self) -> NonZeroU16 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        NonZeroU16::new(self.next_id).expect("non-zero")
    }

    /// Encodes and sends one packet.
    pub(crate) async fn send(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        packet
            .encode(self.version, &mut out)
            .expect("test packet encodes");
        self.send_raw(&out).await;
    }

    /// Sends one packet; false if the connection is gone.
    pub(crate) async fn try_send(&mut self, packet: Packet) -> bool {
        let mut out = BytesMut::new();
        packet
            .encode(self.version, &mut out)
            .expect("test packet encodes");
        matches!(
            tokio::time::timeout(WAIT, self.stream.write_all(&out)).await,
            Ok(Ok(()))
        )
    }

    /// Sends bytes as they are.
    pub(crate) async fn send_raw(&mut self, bytes: &[u8]) {
        within("socket write", self.stream.write_all(bytes))
            .await
            .expect("write to the gateway");
    }

    /// The next `n` bytes as they came, undecoded.
    pub(crate) async fn recv_bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            let read = within(
                "bytes from the gateway",
                self.stream.read_buf(&mut self.buf),
            )
            .await;
            match read {
                Ok(0) => panic!("connection closed after {:?}", &self.buf[..]),
                Ok(_) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        self.buf.split_to(n).to_vec()
    }

    /// The next packet or the connection's end, or `None` if nothing
    /// happens within `limit`.
    pub(crate) async fn next_event(&mut self, limit: Duration) -> Option<Event> {
        if let Some(p) = self.pending.pop_front() {
            return Some(Event::Packet(p));
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match decode(&mut self.buf, self.version, MAX_PACKET_SIZE) {
                Ok(Some(p)) => return Some(Event::Packet(p)),
                Ok(None) => {}
                Err(e) => panic!("the gateway sent a malformed packet: {e}"),
            }
            let read = self.stream.read_buf(&mut self.buf);
            match tokio::time::timeout_at(deadline, read).await {
                Err(_) => return None,
                Ok(Ok(0) | Err(_)) => return Some(Event::Closed),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Waits up to `limit` for each packet from now on, rather than [`WAIT`]: for a test
    /// whose traffic may stall as long as its own bound, across a failover say.
    pub(crate) fn set_wait(&mut self, limit: Duration) {
        self.wait = limit;
    }

    /// The next packet; panics if the connection closes or nothing comes.
    pub(crate) async fn recv(&mut self) -> Packet {
        let wait = self.wait;
        match self.next_event(wait).await {
            Some(Event::Packet(p)) => p,
            Some(Event::Closed) => panic!("connection closed while waiting for a packet"),
            None => panic!("timed out after {wait:?} waiting for a packet"),
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

    /// Asserts that no packet arrives and the connection stays open for
    /// `quiet` (a negative can only be shown by waiting).
    pub(crate) async fn expect_silence(&mut self, quiet: Duration) {
        match self.next_event(quiet).await {
            None => {}
            Some(e) => panic!("expected nothing for {quiet:?}, got {e:?}"),
        }
    }

    /// Reads until the server closes the connection (within `limit`) and
    /// returns the packets that came first.
    pub(crate) async fn expect_closed_within(&mut self, limit: Duration) -> Vec<Packet> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_event(left).await {
                Some(Event::Packet(p)) => seen.push(p),
                Some(Event::Closed) => return seen,
                None => panic!("connection not closed within {limit:?}; received {seen:?}"),
            }
        }
    }

    /// [`Raw::expect_closed_within`] the usual bound.
    pub(crate) async fn expect_closed(&mut self) -> Vec<Packet> {
        self.expect_closed_within(WAIT).await
    }

    /// Subscribes and waits for the SUBACK (other packets are kept for
    /// [`Raw::recv`]).
    pub(crate) async fn subscribe_with(
        &mut self,
        filters: &[(&str, SubscriptionOptions)],
        identifier: Option<u32>,
    ) -> SubAck {
        let packet_id = self.packet_id();
        let mut sub = Subscribe {
            packet_id,
            properties: Default::default(),
            filters: filters.iter().map(|(f, o)| (filter(f), *o)).collect(),
        };
        sub.properties.subscription_identifier = identifier.and_then(NonZeroU32::new);
        self.send(Packet::Subscribe(sub)).await;
        let mut early = Vec::new();
        let ack = loop {
            match self.recv().await {
                Packet::SubAck(ack) if ack.packet_id == packet_id => break ack,
                other => early.push(other),
            }
        };
        self.pending.extend(early);
        ack
    }

    /// Subscribes to one filter at `qos` and checks it was granted.
    pub(crate) async fn subscribe(&mut self, f: &str, qos: QoS) -> SubAck {
        let ack = self
            .subscribe_with(&[(f, SubscriptionOptions::qos(qos))], None)
            .await;
        assert_eq!(ack.reason_codes, [ReasonCode::from_u8(qos as u8).unwrap()]);
        ack
    }

    /// Publishes and, for QoS 1 and 2, completes the exchange; returns the
    /// reason code of the PUBACK or PUBREC (SUCCESS for QoS 0).
    pub(crate) async fn publish(&mut self, mut p: Publish) -> ReasonCode {
        if p.qos == QoS::AtMostOnce {
            self.send(Packet::Publish(p)).await;
            return ReasonCode::SUCCESS;
        }
        let id = self.packet_id();
        p.packet_id = Some(id);
        let qos = p.qos;
        self.send(Packet::Publish(p)).await;
        let reason = match (qos, self.recv_other().await) {
            (QoS::AtLeastOnce, Packet::PubAck(a)) if a.packet_id == id => return a.reason_code,
            (QoS::ExactlyOnce, Packet::PubRec(a)) if a.packet_id == id => a.reason_code,
            (_, other) => panic!("expected the ack of packet {id}, got {other:?}"),
        };
        if reason.is_error() {
            return reason;
        }
        self.send(Packet::PubRel(Ack::new(id))).await;
        match self.recv_other().await {
            Packet::PubComp(a) if a.packet_id == id => reason,
            other => panic!("expected PUBCOMP {id}, got {other:?}"),
        }
    }

    /// The next packet that is not a PUBLISH; PUBLISHes are kept for later.
    async fn recv_other(&mut self) -> Packet {
        let mut early = Vec::new();
        let p = loop {
            match self.recv().await {
                p @ Packet::Publish(_) => early.push(p),
                other => break other,
            }
        };
        // Keep them ahead of anything still pending, in arrival order.
        for p in early.into_iter().rev() {
            self.pending.push_front(p);
        }
        p
    }

    /// Acknowledges a received QoS 1 PUBLISH, or completes a QoS 2 one.
    pub(crate) async fn ack(&mut self, p: &Publish) {
        let Some(id) = p.packet_id else { return };
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(Packet::PubAck(Ack::new(id))).await,
            QoS::ExactlyOnce => {
                self.send(Packet::PubRec(Ack::new(id))).await;
                match self.recv_other().await {
                    Packet::PubRel(a) if a.packet_id == id => {}
                    other => panic!("expected PUBREL {id}, got {other:?}"),
                }
                self.send(Packet::PubComp(Ack::new(id))).await;
            }
        }
    }

    /// Sends DISCONNECT with `reason` and waits for the server to close.
    pub(crate) async fn disconnect(mut self, reason: ReasonCode) {
        self.send(Packet::Disconnect(aviary_protocol::Disconnect::new(reason)))
            .await;
        self.expect_closed().await;
    }
}

/// Publishes `probe` from `publisher` until `subscriber` receives it: the other node's
/// interest has reached NATS (for the stream too, when `qos` is 1 or 2).
pub(crate) async fn until_routed(publisher: &mut Raw, subscriber: &mut Raw, topic: &str, qos: QoS) {
    within("the other node's subscription to reach NATS", async {
        loop {
            publisher.publish(message(topic, b"probe", qos)).await;
            if let Some(Event::Packet(Packet::Publish(p))) =
                subscriber.next_event(Duration::from_millis(200)).await
            {
                subscriber.ack(&p).await;
                if &*p.topic == topic {
                    return;
                }
            }
        }
    })
    .await;
    // Probes still on their way are not what the test looks at.
    while let Some(Event::Packet(Packet::Publish(p))) =
        subscriber.next_event(Duration::from_millis(300)).await
    {
        subscriber.ack(&p).await;
    }
}
