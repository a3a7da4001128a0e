//! Misbehaving clients end to end: a malformed packet, garbage bytes, a
//! half-sent CONNECT, a half-sent packet, an oversized packet and a second
//! CONNECT each close only the offender's connection (MQTT 5 offenders
//! hear why in a DISCONNECT first), while everyone else keeps working.

mod common;

use std::time::{Duration, Instant};

use aviary_protocol::{Packet, ProtocolVersion, QoS, ReasonCode};
use bytes::BytesMut;
use common::raw::{self, Raw};
use common::rumqtt::{v4_options, V4};
use common::TestGateway;

/// A bystander subscribed to `ok/#` and a publisher: the round trip that
/// must keep working next to every offender.
struct Bystanders {
    sub: V4,
    publisher: Raw,
    n: usize,
}

impl Bystanders {
    async fn new(gw: &TestGateway) -> Self {
        let (mut sub, _) = V4::connect(v4_options(gw.addr, "bystander")).await;
        sub.subscribe("ok/#", rumqttc::QoS::AtLeastOnce).await;
        let (publisher, _) = Raw::connect_ok(gw.addr, raw::v5("bystander-pub")).await;
        Self {
            sub,
            publisher,
            n: 0,
        }
    }

    /// One message through the broker and back.
    async fn round_trip(&mut self) {
        self.n += 1;
        let payload = self.n.to_string();
        self.publisher
            .publish(raw::message("ok/t", payload.as_bytes(), QoS::AtLeastOnce))
            .await;
        let p = self.sub.recv_publish().await;
        assert_eq!(p.payload, payload.as_bytes(), "bystanders keep working");
    }
}

#[tokio::test]
async fn malformed_packets_close_only_their_connection() {
    let gw = TestGateway::start().await;
    let mut others = Bystanders::new(&gw).await;

    // PUBLISH with QoS 3 [MQTT-3.3.1-4]: topic "ok/x", no packet id.
    let (mut v5, _) = Raw::connect_ok(gw.addr, raw::v5("bad-qos")).await;
    v5.send_raw(&[0x36, 0x07, 0x00, 0x04, b'o', b'k', b'/', b'x', 0x00])
        .await;
    assert_eq!(
        raw::disconnects(v5.expect_closed().await),
        [ReasonCode::MALFORMED_PACKET]
    );
    others.round_trip().await;

    // SUBSCRIBE with flags 0000 instead of 0010 [MQTT-3.8.1-1].
    let (mut v4, _) = Raw::connect_ok(gw.addr, raw::v4("bad-flags")).await;
    v4.send_raw(&[0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b't', 0x00])
        .await;
    assert_eq!(v4.expect_closed().await, [], "MQTT 3.1.1: just closed");
    others.round_trip().await;

    let (mut v5, _) = Raw::connect_ok(gw.addr, raw::v5("bad-flags5")).await;
    v5.send_raw(&[0x80, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b't', 0x00])
        .await;
    assert_eq!(
        raw::disconnects(v5.expect_closed().await),
        [ReasonCode::MALFORMED_PACKET]
    );

    // A topic name with a wildcard [MQTT-3.3.2-2].
    let (mut v5, _) = Raw::connect_ok(gw.addr, raw::v5("bad-topic")).await;
    v5.send_raw(&[0x30, 0x06, 0x00, 0x03, b'a', b'/', b'#', 0x00])
        .await;
    let seen = v5.expect_closed().await;
    assert!(
        matches!(&seen[..], [Packet::Disconnect(d)] if d.reason_code.is_error()),
        "{seen:?}"
    );
    others.round_trip().await;
}

#[tokio::test]
async fn second_connect_is_a_protocol_error() {
    let gw = TestGateway::start().await;
    let (mut c, _) = Raw::connect_ok(gw.addr, raw::v5("twice")).await;
    c.send(Packet::Connect(Box::new(raw::v5("twice")))).await;
    assert_eq!(
        raw::disconnects(c.expect_closed().await),
        [ReasonCode::PROTOCOL_ERROR],
        "[MQTT-3.1.0-2]"
    );

    // Even one of a version the server does not speak: 0x84 is for CONNACK
    // only, so the DISCONNECT says Protocol Error.
    let (mut c, _) = Raw::connect_ok(gw.addr, raw::v5("twice-odd")).await;
    let mut bytes = BytesMut::new();
    Packet::Connect(Box::new(raw::v4("x")))
        .encode(ProtocolVersion::V3_1_1, &mut bytes)
        .unwrap();
    bytes[8] = 6; // the protocol level
    c.send_raw(&bytes).await;
    assert_eq!(
        raw::disconnects(c.expect_closed().await),
        [ReasonCode::PROTOCOL_ERROR]
    );
}

#[tokio::test]
async fn garbage_is_closed_at_once() {
    let gw = TestGateway::start().await;
    let mut others = Bystanders::new(&gw).await;
    let garbage: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        &[0x00, 0x00, 0x00, 0x00],
        // A CONNECT announcing 256 MiB: refused from the header alone.
        &[0x10, 0xff, 0xff, 0xff, 0x7f],
        // A remaining length of five bytes [MQTT-1.5.5-1].
        &[0x10, 0xff, 0xff, 0xff, 0xff, 0x01],
    ];
    for bytes in garbage {
        let mut c = Raw::open(gw.addr).await;
        c.send_raw(bytes).await;
        // Well before the 10 s connect timeout.
        c.expect_closed_within(Duration::from_secs(2)).await;
        others.round_trip().await;
    }
    // A packet other than CONNECT first [MQTT-3.1.0-1].
    let mut c = Raw::open(gw.addr).await;
    c.send(Packet::PingReq).await;
    assert_eq!(c.expect_closed_within(Duration::from_secs(2)).await, []);
}

#[tokio::test]
async fn half_a_connect_is_closed_after_the_connect_timeout() {
    let gw = TestGateway::start_with(|c| c.connect_timeout_secs = 1).await;
    let mut stalled = Raw::open(gw.addr).await;
    let mut bytes = BytesMut::new();
    Packet::Connect(Box::new(raw::v4("half")))
        .encode(ProtocolVersion::V3_1_1, &mut bytes)
        .unwrap();
    stalled.send_raw(&bytes[..bytes.len() / 2]).await;
    let start = Instant::now();
    let mut silent = Raw::open(gw.addr).await;

    // Meanwhile the broker serves others.
    let mut others = Bystanders::new(&gw).await;
    others.round_trip().await;

    for c in [&mut stalled, &mut silent] {
        let seen = c.expect_closed_within(Duration::from_secs(3)).await;
        assert_eq!(seen, []);
    }
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "closed before the timeout: {:?}",
        start.elapsed()
    );
    others.round_trip().await;
}

#[tokio::test]
async fn half_a_packet_after_connect_ends_with_the_keep_alive() {
    let gw = TestGateway::start().await;
    let mut others = Bystanders::new(&gw).await;
    let mut connect = raw::v5("half-pub");
    connect.keep_alive = 1;
    let (mut c, _) = Raw::connect_ok(gw.addr, connect).await;
    let mut bytes = BytesMut::new();
    Packet::Publish(raw::message("ok/half", &[b'x'; 100], QoS::AtMostOnce))
        .encode(ProtocolVersion::V5, &mut bytes)
        .unwrap();
    c.send_raw(&bytes[..50]).await;
    others.round_trip().await;
    assert_eq!(
        raw::disconnects(c.expect_closed_within(Duration::from_secs(3)).await),
        [ReasonCode::KEEP_ALIVE_TIMEOUT]
    );
    others.round_trip().await;
}

#[tokio::test]
async fn oversized_packets_are_refused() {
    let gw = TestGateway::start_with(|c| c.max_packet_size = 1024).await;
    let mut others = Bystanders::new(&gw).await;
    let (mut c, ack) = Raw::connect_ok(gw.addr, raw::v5("big")).await;
    assert_eq!(
        ack.properties.maximum_packet_size.map(|n| n.get()),
        Some(1024),
        "announced in CONNACK"
    );
    // Only the header is sent: the broker must not wait for the body.
    let mut bytes = BytesMut::new();
    Packet::Publish(raw::message("ok/big", &[b'x'; 2000], QoS::AtMostOnce))
        .encode(ProtocolVersion::V5, &mut bytes)
        .unwrap();
    c.send_raw(&bytes[..8]).await;
    assert_eq!(
        raw::disconnects(c.expect_closed().await),
        [ReasonCode::PACKET_TOO_LARGE],
        "[MQTT-3.1.2-24]"
    );
    others.round_trip().await;
}

#[tokio::test]
async fn many_clients_dropping_mid_stream_do_not_disturb_the_others() {
    let gw = TestGateway::start().await;
    let mut others = Bystanders::new(&gw).await;
    for i in 0..20 {
        let (mut c, _) = Raw::connect_ok(gw.addr, raw::v5(&format!("flaky{i}"))).await;
        c.subscribe("ok/#", QoS::AtLeastOnce).await;
        if i % 2 == 0 {
            // Part of a packet, then gone.
            c.send_raw(&[0x30, 0x10, 0x00]).await;
        }
        drop(c);
        others.round_trip().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_stalls_nobody() {
    const COUNT: usize = 4000;
    let gw = TestGateway::start_with(|c| c.max_queued_messages = 100).await;
    // Subscribes, then never reads its socket again.
    let (mut stuck, _) = Raw::connect_ok(gw.addr, raw::v5("stuck")).await;
    stuck.subscribe("flood/#", QoS::AtMostOnce).await;
    let mut reader = V4::connect_id(gw.addr, "reader").await;
    reader.subscribe("flood/#", rumqttc::QoS::AtMostOnce).await;

    let (mut publisher, _) = Raw::connect_ok(gw.addr, raw::v5("flooder")).await;
    let payload = vec![b'x'; 8 * 1024];
    let received = tokio::spawn(async move {
        let mut n = 0;
        while n < COUNT {
            reader.recv_publish().await;
            n += 1;
        }
        reader
    });
    common::within_for(
        std::time::Duration::from_secs(60),
        "32 MB through the broker past a stuck subscriber",
        async {
            for _ in 0..COUNT {
                // QoS 1: each PUBACK shows the broker is still serving us.
                let reason = publisher
                    .publish(raw::message("flood/t", &payload, QoS::AtLeastOnce))
                    .await;
                assert!(!reason.is_error());
            }
            received.await.expect("reader task");
        },
    )
    .await;
    let dropped = aviary::broker::Metrics::get(&gw.broker.metrics().dropped_queue_full);
    assert!(dropped > 0, "the stuck subscriber's queue is bounded");
    drop(stuck);
}
