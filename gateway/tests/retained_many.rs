//! More retained messages than a session's queue holds (issue 9): a new
//! subscription gets every matching retained message exactly once, over TCP
//! and WebSocket at QoS 0, 1 and 2, with `max_queued_messages` fifteen
//! times smaller than their number; and the queue limit still bounds a live
//! flood that comes while they are being sent.
//!
//! The end of the retained messages is an event, not a wait: each
//! SUBSCRIBE also names a marker topic with a retained message of its own,
//! and the broker sends a SUBSCRIBE's retained messages filter by filter,
//! so the marker arriving means the others have all come.

mod common;
mod ws_common;

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;

use aviary::broker::Metrics;
use aviary_protocol::{
    Ack, ByteString, Packet, ProtocolVersion, Publish, QoS, ReasonCode, Subscribe,
    SubscriptionOptions,
};
use bytes::Bytes;
use common::raw::{self, Raw};
use common::{seq_of, seq_payload};
use ws_common::ws::{self, WsRaw};
use ws_common::Gw;

/// The session queue's limit in these tests.
const QUEUE: usize = 100;
/// Retained messages matching `r/#`: many times [`QUEUE`].
const RETAINED: usize = 1_500;
/// The marker topic: a `$` topic, which `r/#` does not match.
const MARKER: &str = "$marker";
/// The Subscription Identifier the subscribers ask for.
const SUB_ID: u32 = 7;

/// The `i`-th retained topic: `r/0/0` … `r/14/1499`, like the issue's
/// `r/0/0` … `r/99/99999`.
fn topic(i: usize) -> String {
    format!("r/{}/{i}", i / 100)
}

/// A gateway with a small queue, [`RETAINED`] messages retained at QoS 2
/// (so each arrives at the QoS granted) and the marker.
async fn gateway() -> Gw {
    let gw = Gw::start_with(|c| c.mqtt.max_queued_messages = QUEUE).await;
    for i in 0..RETAINED {
        let t = topic(i);
        let payload = Bytes::from(t.clone().into_bytes());
        gw.broker
            .publish_server(ByteString::from(t), payload, QoS::ExactlyOnce, true);
    }
    let marker = ByteString::from_static(MARKER);
    gw.broker
        .publish_server(marker, Bytes::from_static(b"m"), QoS::AtMostOnce, true);
    assert_eq!(gw.broker.retained_count(), RETAINED + 1);
    gw
}

/// A connection that sends and receives whole packets, whatever carries them.
trait Conn {
    async fn send(&mut self, packet: Packet);
    async fn recv(&mut self) -> Packet;
}

impl Conn for Raw {
    async fn send(&mut self, packet: Packet) {
        Raw::send(self, packet).await;
    }
    async fn recv(&mut self) -> Packet {
        Raw::recv(self).await
    }
}

impl Conn for WsRaw {
    async fn send(&mut self, packet: Packet) {
        WsRaw::send(self, packet).await;
    }
    async fn recv(&mut self) -> Packet {
        WsRaw::recv(self).await
    }
}

/// Subscribes to `r/#` at `qos` and then the marker, with `id` as the
/// Subscription Identifier (MQTT 5), and waits for the SUBACK, which must
/// come before any retained message.
async fn subscribe(conn: &mut impl Conn, qos: QoS, id: Option<NonZeroU32>) {
    let filter = |f: &str| aviary_protocol::TopicFilter::new(f.to_owned()).expect("valid filter");
    let mut sub = Subscribe {
        packet_id: std::num::NonZeroU16::new(1).expect("non-zero"),
        properties: Default::default(),
        filters: vec![
            (filter("r/#"), SubscriptionOptions::qos(qos)),
            (filter(MARKER), SubscriptionOptions::qos(QoS::AtMostOnce)),
        ],
    };
    sub.properties.subscription_identifier = id;
    conn.send(Packet::Subscribe(sub)).await;
    match conn.recv().await {
        Packet::SubAck(ack) => assert_eq!(ack.reason_codes.len(), 2),
        other => panic!("expected the SUBACK first, got {other:?}"),
    }
}

/// Acknowledges a PUBLISH the way its QoS asks (PUBREL is answered when
/// it comes).
async fn ack(conn: &mut impl Conn, p: &Publish) {
    match (p.qos, p.packet_id) {
        (QoS::AtLeastOnce, Some(id)) => conn.send(Packet::PubAck(Ack::new(id))).await,
        (QoS::ExactlyOnce, Some(id)) => conn.send(Packet::PubRec(Ack::new(id))).await,
        _ => {}
    }
}

/// What a subscriber received.
#[derive(Debug, Default)]
struct Received {
    /// How many times each retained topic arrived.
    retained: HashMap<String, usize>,
    /// Sequence numbers of the live (non-retained) messages, in order.
    live: Vec<usize>,
    /// A live message arrived before a retained one.
    live_first: bool,
}

/// Reads, acknowledging as it goes, until `done` says the last message
/// arrived. Checks every retained message on the way: RETAIN set, the QoS
/// granted, the Subscription Identifier `id`, its own payload.
async fn receive(
    conn: &mut impl Conn,
    qos: QoS,
    id: Option<NonZeroU32>,
    mut done: impl FnMut(&Publish) -> bool,
) -> Received {
    let mut got = Received::default();
    loop {
        let p = match conn.recv().await {
            Packet::PubRel(a) => {
                conn.send(Packet::PubComp(Ack::new(a.packet_id))).await;
                continue;
            }
            Packet::Publish(p) => p,
            other => panic!("unexpected {other:?}"),
        };
        ack(conn, &p).await;
        if p.retain && p.topic != MARKER {
            assert_eq!(p.qos, qos, "min(QoS 2, granted)");
            assert_eq!(p.payload, p.topic.as_bytes(), "the topic's own message");
            let ids = &p.properties.subscription_identifiers;
            assert_eq!(ids, &Vec::from_iter(id), "Subscription Identifier");
            got.live_first |= !got.live.is_empty();
            *got.retained.entry(p.topic.to_string()).or_default() += 1;
        } else if !p.retain {
            got.live.push(seq_of(&p.payload));
        }
        if done(&p) {
            return got;
        }
    }
}

/// Checks that every retained topic arrived, each exactly once.
fn assert_each_once(got: &Received, what: &str) {
    let twice: Vec<_> = got.retained.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "{what}: sent more than once: {twice:?}");
    let missing: Vec<String> = (0..RETAINED)
        .map(topic)
        .filter(|t| !got.retained.contains_key(t))
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: {} of {RETAINED} missing, first {:?}",
        missing.len(),
        missing.first()
    );
}

/// Subscribes a fresh client on `conn` and checks it gets every retained
/// message once, then the marker.
async fn all_retained_once(gw: &Gw, conn: &mut impl Conn, qos: QoS, what: &str) {
    let id = NonZeroU32::new(SUB_ID);
    subscribe(conn, qos, id).await;
    let got = receive(conn, qos, id, |p| p.topic == MARKER).await;
    assert_each_once(&got, what);
    let dropped = Metrics::get(&gw.broker.metrics().dropped_queue_full);
    assert_eq!(dropped, 0, "{what}: nothing dropped from the queue");
}

const QOS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];

#[tokio::test]
async fn every_retained_message_once_over_tcp() {
    let gw = gateway().await;
    for qos in QOS {
        let id = format!("tcp-{}", qos as u8);
        let (mut conn, _) = Raw::connect_ok(gw.mqtt, raw::v5(&id)).await;
        all_retained_once(&gw, &mut conn, qos, &id).await;
    }
    // MQTT 3.1.1 too (no Subscription Identifier there).
    let (mut conn, _) = Raw::connect_ok(gw.mqtt, raw::v4("tcp-v4")).await;
    subscribe(&mut conn, QoS::ExactlyOnce, None).await;
    let got = receive(&mut conn, QoS::ExactlyOnce, None, |p| p.topic == MARKER).await;
    assert_each_once(&got, "tcp-v4");
}

#[tokio::test]
async fn every_retained_message_once_over_websocket() {
    let gw = gateway().await;
    for qos in QOS {
        let id = format!("ws-{}", qos as u8);
        let connect = ws::connect(ProtocolVersion::V5, &id);
        let (mut conn, _) = WsRaw::connect_ok(gw.http, connect).await;
        all_retained_once(&gw, &mut conn, qos, &id).await;
    }
}

#[tokio::test]
async fn live_flood_stays_bounded_while_retained_are_sent() {
    let gw = gateway().await;
    let (mut conn, _) = Raw::connect_ok(gw.mqtt, raw::v5("slow")).await;
    // Subscribed, and reading nothing: the retained messages fill the
    // in-flight window and wait for acknowledgements.
    let id = NonZeroU32::new(SUB_ID);
    subscribe(&mut conn, QoS::AtLeastOnce, id).await;
    const FLOOD: usize = 1_000;
    for i in 0..FLOOD {
        let topic = ByteString::from_static("r/live");
        let payload = Bytes::from(seq_payload(i));
        gw.broker
            .publish_server(topic, payload, QoS::AtLeastOnce, false);
    }
    // Live messages queue behind the retained ones, within the limit.
    let dropped = Metrics::get(&gw.broker.metrics().dropped_queue_full);
    assert_eq!(dropped, (FLOOD - QUEUE) as u64, "the oldest live ones go");

    let last = FLOOD - 1;
    let got = receive(&mut conn, QoS::AtLeastOnce, id, |p| {
        !p.retain && seq_of(&p.payload) == last
    })
    .await;
    assert_each_once(&got, "slow subscriber");
    let kept: Vec<usize> = (FLOOD - QUEUE..FLOOD).collect();
    assert_eq!(got.live, kept, "the newest live messages, in order");
    assert!(!got.live_first, "retained first: they were there first");
}

/// Connects `id` with a session that outlives the connection, subscribes
/// to `r/#` at QoS 1, acknowledges the first `n` retained messages and
/// disconnects. Returns their topics.
async fn take_some_then_leave(gw: &Gw, id: &str, n: usize) -> HashSet<String> {
    let mut connect = raw::v5(id);
    connect.properties.session_expiry_interval = Some(60);
    let (mut conn, _) = Raw::connect_ok(gw.mqtt, connect).await;
    subscribe(&mut conn, QoS::AtLeastOnce, None).await;
    let mut acked = HashSet::new();
    for _ in 0..n {
        let p = conn.recv_publish().await;
        conn.ack(&p).await;
        acked.insert(p.topic.to_string());
    }
    // The PUBACKs are read before the DISCONNECT; what else was sent
    // stays in flight.
    conn.disconnect(ReasonCode::SUCCESS).await;
    acked
}

#[tokio::test]
async fn a_resumed_session_goes_on_with_its_retained_messages() {
    let gw = gateway().await;
    let acked = take_some_then_leave(&gw, "resumer", 10).await;
    let mut connect = raw::v5("resumer");
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(60);
    let (mut conn, ack) = Raw::connect_ok(gw.mqtt, connect).await;
    assert!(ack.session_present);
    // Those in flight again, with DUP [MQTT-4.4.0-1], then the rest.
    let (mut rest, mut new_seen) = (HashSet::new(), false);
    loop {
        let p = conn.recv_publish().await;
        conn.ack(&p).await;
        if p.topic == MARKER {
            break;
        }
        assert!(
            !acked.contains(&*p.topic),
            "{} acknowledged already",
            p.topic
        );
        assert!(rest.insert(p.topic.to_string()), "{} twice", p.topic);
        assert!(!(p.dup && new_seen), "resent ones come first");
        new_seen |= !p.dup;
    }
    assert_eq!(
        acked.len() + rest.len(),
        RETAINED,
        "every one, once acknowledged"
    );
}

#[tokio::test]
async fn a_clean_start_drops_the_retained_still_to_send() {
    let gw = gateway().await;
    take_some_then_leave(&gw, "cleaner", 10).await;
    let (mut conn, ack) = Raw::connect_ok(gw.mqtt, raw::v5("cleaner")).await;
    assert!(!ack.session_present);
    conn.subscribe(MARKER, QoS::AtMostOnce).await;
    let p = conn.recv_publish().await;
    assert_eq!(p.topic, MARKER, "nothing left of the old session's cursor");
}
