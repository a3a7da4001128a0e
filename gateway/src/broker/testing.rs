//! A test client for the broker core: the real connection handler
//! ([`connection::serve`]) on one end of an in-memory duplex stream, the
//! project's codec on the other. No socket and no wall clock, so tests of
//! wills, expiry and keep alive run in paused time
//! (`#[tokio::test(start_paused = true)]`): waiting 30 virtual seconds for a
//! will delay takes no time, and what happens when is exact.

use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::time::Duration;

use aviary_protocol::{
    decode, ConnAck, Connect, Disconnect, LastWill, Packet, ProtocolVersion, QoS, ReasonCode,
    Subscribe, SubscriptionOptions, TopicFilter, TopicName, Unsubscribe, MAX_PACKET_SIZE,
};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_util::sync::CancellationToken;

use super::connection::{self, ConnInfo, Transport};
use super::Broker;

/// An MQTT 5 CONNECT for `id` with no keep alive (paused time would
/// otherwise run into it), clean start, and the given session expiry.
pub(crate) fn v5(id: &str, expiry_secs: u32) -> Connect {
    let mut c = Connect::new(ProtocolVersion::V5, id.to_owned());
    c.keep_alive = 0;
    c.properties.session_expiry_interval = Some(expiry_secs);
    c
}

/// `connect` with a will on `will/<id>` and the given Will Delay Interval.
pub(crate) fn with_will(mut connect: Connect, delay_secs: u32) -> Connect {
    let topic = format!("will/{}", connect.client_id);
    let mut will = LastWill {
        topic: TopicName::new(topic).expect("valid will topic"),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    };
    will.properties.will_delay_interval = Some(delay_secs);
    connect.will = Some(will);
    connect
}

/// A client connection to the broker over a duplex stream.
#[derive(Debug)]
pub(crate) struct Client {
    stream: DuplexStream,
    buf: BytesMut,
    version: ProtocolVersion,
    next_id: u16,
}

impl Client {
    /// Starts a connection handler for a new duplex stream, sends
    /// `connect` and returns the CONNACK.
    pub(crate) async fn connect(broker: &Broker, connect: Connect) -> (Self, ConnAck) {
        let (stream, server) = tokio::io::duplex(64 * 1024);
        let info = ConnInfo::new(Transport::Tcp, SocketAddr::from(([127, 0, 0, 1], 1)));
        let shutdown = CancellationToken::new();
        tokio::spawn(connection::serve(broker.clone(), server, info, shutdown));
        let mut client = Self {
            stream,
            buf: BytesMut::new(),
            version: connect.protocol,
            next_id: 0,
        };
        client.send(Packet::Connect(Box::new(connect))).await;
        match client.recv().await {
            Packet::ConnAck(ack) => (client, *ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Connects and asserts success.
    pub(crate) async fn connect_ok(broker: &Broker, connect: Connect) -> (Self, ConnAck) {
        let (client, ack) = Self::connect(broker, connect).await;
        assert_eq!(ack.reason_code, ReasonCode::SUCCESS, "CONNACK: {ack:?}");
        (client, ack)
    }

    pub(crate) async fn send(&mut self, packet: Packet) {
        self.send_all([packet]).await;
    }

    /// Sends `packets` in one write, for the broker to take in one read (up to the
    /// duplex stream's 64 KiB).
    pub(crate) async fn send_all(&mut self, packets: impl IntoIterator<Item = Packet>) {
        let mut out = BytesMut::new();
        for packet in packets {
            packet.encode(self.version, &mut out).expect("encodes");
        }
        self.stream.write_all(&out).await.expect("duplex write");
    }

    /// The next packet, or `None` if none comes within `limit` (virtual
    /// time) or the broker closes the connection.
    pub(crate) async fn recv_within(&mut self, limit: Duration) -> Option<Packet> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(p) = decode(&mut self.buf, self.version, MAX_PACKET_SIZE).expect("valid") {
                return Some(p);
            }
            let read = self.stream.read_buf(&mut self.buf);
            match tokio::time::timeout_at(deadline, read).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return None,
            }
        }
    }

    /// The next packet; panics if none comes within an hour of virtual time.
    pub(crate) async fn recv(&mut self) -> Packet {
        self.recv_within(Duration::from_secs(3600))
            .await
            .expect("a packet from the broker")
    }

    fn next_packet_id(&mut self) -> NonZeroU16 {
        self.next_id += 1;
        NonZeroU16::new(self.next_id).expect("non-zero")
    }

    /// Subscribes to `filter` at QoS 1 and waits for the SUBACK.
    pub(crate) async fn subscribe(&mut self, filter: &str) {
        let packet_id = self.next_packet_id();
        let filter = TopicFilter::new(filter.to_owned()).expect("valid filter");
        let sub = Subscribe {
            packet_id,
            properties: Default::default(),
            filters: vec![(filter, SubscriptionOptions::qos(QoS::AtLeastOnce))],
        };
        self.send(Packet::Subscribe(sub)).await;
        match self.recv().await {
            Packet::SubAck(ack) if ack.packet_id == packet_id => {}
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Unsubscribes from `filter` and waits for the UNSUBACK.
    pub(crate) async fn unsubscribe(&mut self, filter: &str) {
        let packet_id = self.next_packet_id();
        let filter = TopicFilter::new(filter.to_owned()).expect("valid filter");
        let unsubscribe = Unsubscribe {
            packet_id,
            user_properties: Vec::new(),
            filters: vec![filter],
        };
        self.send(Packet::Unsubscribe(unsubscribe)).await;
        match self.recv().await {
            Packet::UnsubAck(ack) if ack.packet_id == packet_id => {}
            other => panic!("expected UNSUBACK, got {other:?}"),
        }
    }

    /// The topic of the next PUBLISH, acknowledged.
    pub(crate) async fn recv_topic(&mut self) -> String {
        match self.recv().await {
            Packet::Publish(p) => {
                if let Some(id) = p.packet_id {
                    self.send(Packet::PubAck(aviary_protocol::Ack::new(id)))
                        .await;
                }
                p.topic.to_string()
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Sends DISCONNECT (with a new Session Expiry Interval, if given) and
    /// waits for the broker to close the connection.
    pub(crate) async fn disconnect(mut self, expiry_secs: Option<u32>) {
        let mut d = Disconnect::new(ReasonCode::NORMAL_DISCONNECTION);
        d.properties.session_expiry_interval = expiry_secs;
        self.send(Packet::Disconnect(d)).await;
        let closed = self.recv_within(Duration::from_secs(10)).await;
        assert!(closed.is_none(), "expected the close, got {closed:?}");
    }
}
