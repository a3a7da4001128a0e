//! A connection's reader hands its own writer work without waking its own task: the SUBACK,
//! the PUBACK of a PUBLISH, and the next message once a PUBACK from the client frees the
//! in-flight window all go out in the poll that read what called for them (a PUBACK after the
//! deliveries of its PUBLISH, when that woke subscribers: see `defer`). A task that wakes
//! itself is polled again by tokio from the back of its worker's queue, after a wake-up of
//! another worker thread (see `WriterWake`): that was the thread hop on every QoS 1 message.
//!
//! The connection's future is polled by hand here, with a waker that counts its wake-ups.

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use aviary_protocol::{
    decode, Ack, Packet, ProtocolVersion, Publish, QoS, Subscribe, SubscriptionOptions,
    TopicFilter, MAX_PACKET_SIZE,
};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_util::sync::CancellationToken;

use super::{serve, ConnInfo, Transport};
use crate::broker::testing::{self, Client};
use crate::broker::Broker;

/// Counts the wake-ups of the task it stands for.
#[derive(Default)]
struct Wakes(AtomicUsize);

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A client whose connection's future this test polls itself.
struct Polled<F> {
    conn: Pin<Box<F>>,
    stream: DuplexStream,
    buf: BytesMut,
    wakes: Arc<Wakes>,
}

impl<F: Future<Output = ()>> Polled<F> {
    async fn send(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        packet.encode(ProtocolVersion::V5, &mut out).unwrap();
        self.stream.write_all(&out).await.unwrap();
    }

    /// Polls the connection once, which must neither end nor wake itself.
    fn poll_once(&mut self) {
        let before = self.wakes.0.load(Ordering::SeqCst);
        let waker = Waker::from(self.wakes.clone());
        let poll = self.conn.as_mut().poll(&mut Context::from_waker(&waker));
        assert!(poll.is_pending(), "the connection ended");
        let after = self.wakes.0.load(Ordering::SeqCst);
        assert_eq!(after, before, "the connection woke its own task");
    }

    /// Subscribes to `filter` and reads the SUBACK, which goes out in the poll that read the
    /// SUBSCRIBE.
    async fn subscribe(&mut self, filter: &str, qos: QoS) {
        let filter = TopicFilter::new(filter.to_owned()).unwrap();
        self.send(Packet::Subscribe(Subscribe {
            packet_id: id(1),
            properties: Default::default(),
            filters: vec![(filter, SubscriptionOptions::qos(qos))],
        }))
        .await;
        self.poll_once();
        assert!(matches!(self.written().await, Packet::SubAck(_)));
    }

    /// Whether the connection has written nothing the test has not read yet.
    fn nothing_written(&mut self) -> bool {
        use futures_util::FutureExt;
        self.buf.is_empty() && self.stream.read_buf(&mut self.buf).now_or_never().is_none()
    }

    /// The next packet the connection wrote. Nothing else polls the connection: what is not
    /// written yet never will be.
    async fn written(&mut self) -> Packet {
        loop {
            if let Some(p) = decode(&mut self.buf, ProtocolVersion::V5, MAX_PACKET_SIZE).unwrap() {
                return p;
            }
            let read = self.stream.read_buf(&mut self.buf);
            let n = tokio::time::timeout(Duration::from_secs(1), read)
                .await
                .expect("the packet was written in the poll")
                .unwrap();
            assert!(n > 0, "the connection closed");
        }
    }
}

fn id(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap()
}

/// Connects `client_id` (MQTT 5, at most `window` messages in flight to it) and reads the
/// CONNACK.
async fn connect(
    broker: &Broker,
    client_id: &str,
    window: u16,
) -> Polled<impl Future<Output = ()>> {
    connect_through(broker, client_id, window, 64 * 1024).await
}

/// [`connect`], through a socket that holds `buffer` bytes the client has not read.
async fn connect_through(
    broker: &Broker,
    client_id: &str,
    window: u16,
    buffer: usize,
) -> Polled<impl Future<Output = ()>> {
    let (stream, server) = tokio::io::duplex(buffer);
    let info = ConnInfo::new(Transport::Tcp, SocketAddr::from(([127, 0, 0, 1], 1)));
    let conn = serve(broker.clone(), server, info, CancellationToken::new());
    let mut client = Polled {
        conn: Box::pin(conn),
        stream,
        buf: BytesMut::new(),
        wakes: Arc::default(),
    };
    let mut connect = testing::v5(client_id, 0);
    connect.properties.receive_maximum = NonZeroU16::new(window);
    client.send(Packet::Connect(Box::new(connect))).await;
    client.poll_once();
    assert!(matches!(client.written().await, Packet::ConnAck(_)));
    client
}

#[tokio::test]
async fn a_puback_goes_out_in_the_poll_that_read_its_publish() {
    let broker = Broker::new(crate::broker::BrokerConfig::default());
    let mut publisher = connect(&broker, "publisher", 10).await;
    for n in 1..=3 {
        publisher.send(Packet::Publish(qos1("t", n))).await;
        publisher.poll_once();
        match publisher.written().await {
            Packet::PubAck(ack) => assert_eq!(ack.packet_id, id(n)),
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }
}

/// A QoS 1 PUBLISH on `topic` with packet id `n`.
fn qos1(topic: &str, n: u16) -> Publish {
    let mut p = Publish::new(topic, "hello");
    p.qos = QoS::AtLeastOnce;
    p.packet_id = Some(id(n));
    p
}

/// A subscriber to `t` at QoS 1, then a publisher, both connected and polled by the test.
async fn subscriber_and_publisher(
    broker: &Broker,
) -> (
    Polled<impl Future<Output = ()>>,
    Polled<impl Future<Output = ()>>,
) {
    let mut subscriber = connect(broker, "subscriber", 10).await;
    subscriber.subscribe("t", QoS::AtLeastOnce).await;
    (subscriber, connect(broker, "publisher", 10).await)
}

#[tokio::test]
async fn a_puback_waits_until_the_subscriber_it_woke_had_its_turn() {
    let broker = Broker::new(crate::broker::BrokerConfig::default());
    let (mut subscriber, mut publisher) = subscriber_and_publisher(&broker).await;
    publisher.send(Packet::Publish(qos1("t", 1))).await;
    let woken = subscriber.wakes.0.load(Ordering::SeqCst);
    publisher.poll_once();
    assert!(subscriber.wakes.0.load(Ordering::SeqCst) > woken);
    assert!(
        publisher.nothing_written(),
        "the PUBACK went out before the subscriber's delivery"
    );

    subscriber.poll_once();
    assert!(matches!(subscriber.written().await, Packet::Publish(_)));
    // Tokio wakes the publisher's task once its worker has run what it had queued, as this
    // test's task yields.
    let deferred = publisher.wakes.0.load(Ordering::SeqCst);
    tokio::task::yield_now().await;
    assert_eq!(publisher.wakes.0.load(Ordering::SeqCst), deferred + 1);
    publisher.poll_once();
    match publisher.written().await {
        Packet::PubAck(ack) => assert_eq!(ack.packet_id, id(1)),
        other => panic!("expected PUBACK, got {other:?}"),
    }
}

#[tokio::test]
async fn on_the_gateways_workers_the_subscribers_poll_resumes_the_publisher() {
    // As on the gateway's runtime: the deferral waits for the next connection polled here,
    // not for tokio's `yield_now`, which would wake a second worker (see `defer`).
    super::defer::hook_this_thread();
    let broker = Broker::new(crate::broker::BrokerConfig::default());
    let (mut subscriber, mut publisher) = subscriber_and_publisher(&broker).await;
    publisher.send(Packet::Publish(qos1("t", 1))).await;
    let deferred = publisher.wakes.0.load(Ordering::SeqCst);
    publisher.poll_once();
    assert!(
        publisher.nothing_written(),
        "the PUBACK went out before the subscriber's delivery"
    );
    assert_eq!(publisher.wakes.0.load(Ordering::SeqCst), deferred);

    subscriber.poll_once();
    assert_eq!(
        publisher.wakes.0.load(Ordering::SeqCst),
        deferred + 1,
        "the subscriber's poll did not resume the publisher"
    );
    assert!(matches!(subscriber.written().await, Packet::Publish(_)));
    publisher.poll_once();
    match publisher.written().await {
        Packet::PubAck(ack) => assert_eq!(ack.packet_id, id(1)),
        other => panic!("expected PUBACK, got {other:?}"),
    }
}

#[tokio::test]
async fn a_batch_of_publishes_is_acknowledged_in_the_poll_that_read_it() {
    let broker = Broker::new(crate::broker::BrokerConfig::default());
    let (_subscriber, mut publisher) = subscriber_and_publisher(&broker).await;
    // More than a few, in one read: a pipelining publisher waits for these PUBACKs.
    let mut batch = BytesMut::new();
    for n in 1..=5 {
        Packet::Publish(qos1("t", n))
            .encode(ProtocolVersion::V5, &mut batch)
            .unwrap();
    }
    publisher.stream.write_all(&batch).await.unwrap();
    publisher.poll_once();
    for n in 1..=5 {
        match publisher.written().await {
            Packet::PubAck(ack) => assert_eq!(ack.packet_id, id(n)),
            other => panic!("expected PUBACK {n}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_suback_and_the_next_message_after_a_puback_go_out_in_the_same_poll() {
    let broker = Broker::new(crate::broker::BrokerConfig::default());
    let mut subscriber = connect(&broker, "subscriber", 1).await;
    subscriber.subscribe("t", QoS::AtLeastOnce).await;

    // Two messages for a window of one: the second waits for the first's PUBACK.
    let (mut publisher, _) = Client::connect_ok(&broker, testing::v5("publisher", 0)).await;
    for n in 1..=2 {
        let mut p = Publish::new("t", format!("m{n}"));
        p.qos = QoS::AtLeastOnce;
        p.packet_id = Some(id(n));
        publisher.send(Packet::Publish(p)).await;
        assert!(matches!(publisher.recv().await, Packet::PubAck(_)));
    }
    // Woken by the publisher's task, which queued the messages.
    assert!(subscriber.wakes.0.load(Ordering::SeqCst) > 0);
    subscriber.poll_once();
    let first = match subscriber.written().await {
        Packet::Publish(p) => p,
        other => panic!("expected PUBLISH, got {other:?}"),
    };
    assert_eq!(&first.payload[..], b"m1");
    subscriber
        .send(Packet::PubAck(Ack::new(first.packet_id.unwrap())))
        .await;
    subscriber.poll_once();
    match subscriber.written().await {
        Packet::Publish(p) => assert_eq!(&p.payload[..], b"m2"),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

/// Sends a QoS 1 message on `topic` and waits for its PUBACK: routed by then.
async fn publish_acked(publisher: &mut Client, topic: &str, n: u16, payload: &[u8]) {
    let mut p = Publish::new(topic, payload.to_vec());
    p.qos = QoS::AtLeastOnce;
    p.packet_id = Some(id(n));
    publisher.send(Packet::Publish(p)).await;
    assert!(matches!(publisher.recv().await, Packet::PubAck(_)));
}

#[tokio::test]
async fn a_writer_blocked_on_a_full_socket_is_not_woken_for_every_message_queued() {
    let broker = Broker::new(crate::broker::BrokerConfig::default());
    let mut subscriber = connect_through(&broker, "subscriber", 10, 4096).await;
    subscriber.subscribe("t", QoS::AtMostOnce).await;

    // More than the socket holds: the writer blocks on it, with messages left to write.
    let (mut publisher, _) = Client::connect_ok(&broker, testing::v5("publisher", 0)).await;
    let payload = [7u8; 1024];
    for n in 1..=8 {
        publish_acked(&mut publisher, "t", n, &payload).await;
    }
    subscriber.poll_once();
    let blocked = subscriber.wakes.0.load(Ordering::SeqCst);
    for n in 9..=108 {
        publish_acked(&mut publisher, "t", n, &payload).await;
        // As tokio would poll it if it were woken: the poll registers the task's waker again.
        subscriber.poll_once();
    }
    assert_eq!(
        subscriber.wakes.0.load(Ordering::SeqCst),
        blocked,
        "messages queued while the writer was blocked on its socket woke its task"
    );

    // The client reads again: the socket's room wakes the writer, and all 108 arrive.
    for n in 1..=108u32 {
        subscriber.poll_once();
        match subscriber.written().await {
            Packet::Publish(p) => assert_eq!(p.payload.len(), 1024, "message {n}"),
            other => panic!("expected PUBLISH {n}, got {other:?}"),
        }
    }
}

/// A QoS 1 subscriber with a window of 3, a publisher that sent it `published` messages
/// ("m1", "m2", ...), and the packet identifiers of the 3 the subscriber read, in flight.
async fn window_of_three(
    broker: &Broker,
    published: u16,
) -> (Polled<impl Future<Output = ()>>, Client, Vec<NonZeroU16>) {
    let mut subscriber = connect(broker, "subscriber", 3).await;
    subscriber.subscribe("t", QoS::AtLeastOnce).await;
    let (mut publisher, _) = Client::connect_ok(broker, testing::v5("publisher", 0)).await;
    for n in 1..=published {
        publish_acked(&mut publisher, "t", n, format!("m{n}").as_bytes()).await;
    }
    subscriber.poll_once();
    let mut ids = Vec::new();
    for n in 1..=3 {
        match subscriber.written().await {
            Packet::Publish(p) => {
                assert_eq!(p.payload, format!("m{n}").as_bytes());
                ids.push(
                    p.packet_id
                        .expect("a QoS 1 message has a packet identifier"),
                );
            }
            other => panic!("expected PUBLISH {n}, got {other:?}"),
        }
    }
    (subscriber, publisher, ids)
}

#[tokio::test]
async fn a_writer_with_a_full_window_is_not_woken_for_every_message_queued() {
    let broker = Broker::new(crate::broker::BrokerConfig::default());
    // A socket that holds everything: the client takes it all and acknowledges none.
    let (mut subscriber, mut publisher, ids) = window_of_three(&broker, 3).await;
    let full = subscriber.wakes.0.load(Ordering::SeqCst);
    for n in 4..=103 {
        publish_acked(&mut publisher, "t", n, b"queued").await;
        subscriber.poll_once();
    }
    assert_eq!(
        subscriber.wakes.0.load(Ordering::SeqCst),
        full,
        "messages queued while the in-flight window was full woke the writer's task"
    );
    assert!(subscriber.nothing_written(), "sent past the window");

    // An acknowledgement frees the window: the poll that reads it sends the next message.
    subscriber.send(Packet::PubAck(Ack::new(ids[0]))).await;
    subscriber.poll_once();
    match subscriber.written().await {
        Packet::Publish(p) => assert_eq!(&p.payload[..], b"queued"),
        other => panic!("expected the first queued PUBLISH, got {other:?}"),
    }
    assert!(
        subscriber.nothing_written(),
        "one acknowledgement, one more message"
    );
}

#[tokio::test]
async fn a_run_of_pubacks_in_one_read_refills_the_window_in_that_poll() {
    let broker = Broker::new(crate::broker::BrokerConfig::default());
    let (mut subscriber, _publisher, ids) = window_of_three(&broker, 6).await;

    // One read: a run of plain PUBACKs, one of them for an id not in flight (ignored), then
    // one with a reason code, which ends the run and is decoded in full.
    let mut read = BytesMut::new();
    let acks = [
        Ack::new(ids[0]),
        Ack::new(id(999)),
        Ack::new(ids[1]),
        Ack::with_reason(ids[2], aviary_protocol::ReasonCode::UNSPECIFIED_ERROR),
    ];
    for ack in acks {
        let packet = Packet::PubAck(ack);
        packet.encode(ProtocolVersion::V5, &mut read).unwrap();
    }
    subscriber.stream.write_all(&read).await.unwrap();
    subscriber.poll_once();
    for n in 4..=6 {
        match subscriber.written().await {
            Packet::Publish(p) => assert_eq!(p.payload, format!("m{n}").as_bytes()),
            other => panic!("expected PUBLISH {n}, got {other:?}"),
        }
    }
}
