//! Sessions end to end: a persistent session (MQTT 3.1.1 Clean Session 0,
//! MQTT 5 Session Expiry Interval > 0) keeps its subscriptions and queues
//! QoS 1 messages while the client is away; a clean session discards
//! them; unacknowledged messages are resent with DUP and the same packet
//! id; a session expires; and a second connection with the same client id
//! takes the session over.

mod common;

use std::time::Duration;

use aviary_protocol::{Ack, Packet, QoS, ReasonCode};
use bytes::Bytes;
use common::raw::{self, Raw};
use common::rumqtt::{v4_options, v5_options, V4, V5};
use common::{connected, eventually, seq_of, seq_payload, TestGateway};

/// Publishes `n` QoS 1 messages `msg-0..` on `topic` from the server.
fn publish_n(gw: &TestGateway, topic: &str, n: usize) {
    for i in 0..n {
        gw.broker.publish_server(
            topic.to_owned().into(),
            Bytes::from(seq_payload(i)),
            QoS::AtLeastOnce,
            false,
        );
    }
}

#[tokio::test]
async fn v311_persistent_session_queues_while_offline() {
    let gw = TestGateway::start().await;
    let mut opts = v4_options(gw.addr, "keeper");
    opts.set_clean_session(false);
    let (mut c, ack) = V4::connect(opts.clone()).await;
    assert!(!ack.session_present);
    c.subscribe("ps/t", rumqttc::QoS::AtLeastOnce).await;
    c.disconnect().await;
    eventually("the session to go offline", || connected(&gw.broker) == 0).await;

    publish_n(&gw, "ps/t", 5);

    let (mut c, ack) = V4::connect(opts.clone()).await;
    assert!(ack.session_present, "session present [MQTT-3.2.2-2]");
    for i in 0..5 {
        let p = c.recv_publish().await;
        assert_eq!(seq_of(&p.payload), i);
        assert_eq!(p.qos, rumqttc::QoS::AtLeastOnce);
    }
    // The subscription itself survived too: live messages still arrive.
    publish_n(&gw, "ps/t", 1);
    assert_eq!(seq_of(&c.recv_publish().await.payload), 0);
    c.disconnect().await;
    eventually("the session to go offline", || connected(&gw.broker) == 0).await;

    // Clean Session 1 discards the session and what it had queued.
    publish_n(&gw, "ps/t", 3);
    opts.set_clean_session(true);
    let (mut c, ack) = V4::connect(opts).await;
    assert!(!ack.session_present, "[MQTT-3.2.2-1]");
    c.subscribe("marker", rumqttc::QoS::AtMostOnce).await;
    gw.broker.publish_server(
        "marker".into(),
        Bytes::from_static(b"m"),
        QoS::AtMostOnce,
        false,
    );
    assert_eq!(
        c.recv_publish().await.topic,
        "marker",
        "nothing of the old session"
    );
    // And the subscription is gone.
    publish_n(&gw, "ps/t", 1);
    c.expect_no_publish(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn v5_session_expiry_keeps_then_clean_start_discards() {
    use rumqttc::v5::mqttbytes::QoS as QoS5;
    let gw = TestGateway::start().await;
    let mut opts = v5_options(gw.addr, "keeper5");
    opts.set_clean_start(false);
    opts.set_session_expiry_interval(Some(60));
    let (mut c, ack) = V5::connect(opts.clone()).await;
    assert!(!ack.session_present);
    c.subscribe("ps5/t", QoS5::AtLeastOnce).await;
    c.disconnect().await;
    eventually("the session to go offline", || connected(&gw.broker) == 0).await;

    publish_n(&gw, "ps5/t", 3);
    let (mut c, ack) = V5::connect(opts.clone()).await;
    assert!(ack.session_present);
    for i in 0..3 {
        assert_eq!(seq_of(&c.recv_publish().await.payload), i);
    }
    c.disconnect().await;
    eventually("the session to go offline", || connected(&gw.broker) == 0).await;

    publish_n(&gw, "ps5/t", 2);
    opts.set_clean_start(true);
    let (mut c, ack) = V5::connect(opts).await;
    assert!(!ack.session_present, "Clean Start discards the session");
    c.expect_no_publish(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn session_expires_after_its_interval() {
    let gw = TestGateway::start().await;
    let mut connect = raw::v5("expiring");
    connect.properties.session_expiry_interval = Some(1);
    let (mut c, _) = Raw::connect_ok(gw.addr, connect.clone()).await;
    c.subscribe("exp/t", QoS::AtLeastOnce).await;
    let sessions = gw.broker.session_count();
    c.disconnect(ReasonCode::NORMAL_DISCONNECTION).await;
    eventually("the session to expire", || {
        gw.broker.session_count() == sessions - 1
    })
    .await;
    connect.clean_start = false;
    let (_c, ack) = Raw::connect_ok(gw.addr, connect).await;
    assert!(!ack.session_present, "expired session is gone");
}

#[tokio::test]
async fn unacknowledged_messages_are_resent_with_dup_and_same_id() {
    let gw = TestGateway::start().await;
    let mut connect = raw::v5("resend");
    connect.properties.session_expiry_interval = Some(60);
    let (mut c, _) = Raw::connect_ok(gw.addr, connect.clone()).await;
    c.subscribe("dup/1", QoS::AtLeastOnce).await;
    c.subscribe("dup/2", QoS::ExactlyOnce).await;
    gw.broker.publish_server(
        "dup/1".into(),
        Bytes::from_static(b"one"),
        QoS::AtLeastOnce,
        false,
    );
    gw.broker.publish_server(
        "dup/2".into(),
        Bytes::from_static(b"two"),
        QoS::ExactlyOnce,
        false,
    );
    let first = c.recv_publish().await;
    let second = c.recv_publish().await;
    assert!(!first.dup && !second.dup);
    // Received the QoS 2 message (PUBREC), then the connection died.
    let id2 = second.packet_id.expect("QoS 2 has an id");
    c.send(Packet::PubRec(Ack::new(id2))).await;
    assert_eq!(c.recv().await, Packet::PubRel(Ack::new(id2)));
    drop(c);
    eventually("the session to go offline", || connected(&gw.broker) == 0).await;

    connect.clean_start = false;
    let (mut c, ack) = Raw::connect_ok(gw.addr, connect).await;
    assert!(ack.session_present);
    // The QoS 1 message again, same id, DUP set [MQTT-4.4.0-1] [MQTT-3.3.1-1];
    // the QoS 2 one continues with PUBREL.
    let mut got_publish = false;
    let mut got_pubrel = false;
    while !(got_publish && got_pubrel) {
        match c.recv().await {
            Packet::Publish(p) => {
                assert!(!got_publish, "sent twice: {p:?}");
                assert_eq!(p.packet_id, first.packet_id);
                assert!(p.dup, "resend without DUP");
                assert_eq!(p.payload, first.payload);
                c.ack(&p).await;
                got_publish = true;
            }
            Packet::PubRel(a) => {
                assert_eq!(a.packet_id, id2);
                c.send(Packet::PubComp(Ack::new(id2))).await;
                got_pubrel = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    c.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn takeover_closes_the_old_connection_and_keeps_the_session() {
    let gw = TestGateway::start().await;
    let mut connect = raw::v5("twin");
    connect.properties.session_expiry_interval = Some(60);
    let (mut old, _) = Raw::connect_ok(gw.addr, connect.clone()).await;
    old.subscribe("to/t", QoS::AtLeastOnce).await;

    connect.clean_start = false;
    let (mut new, ack) = Raw::connect_ok(gw.addr, connect).await;
    assert!(ack.session_present, "the session continues");
    let seen = old.expect_closed().await;
    assert_eq!(
        raw::disconnects(seen),
        [ReasonCode::SESSION_TAKEN_OVER],
        "[MQTT-3.1.4-3]"
    );

    gw.broker.publish_server(
        "to/t".into(),
        Bytes::from_static(b"x"),
        QoS::AtLeastOnce,
        false,
    );
    let p = new.recv_publish().await;
    assert_eq!(p.payload, &b"x"[..]);
    new.ack(&p).await;

    // MQTT 3.1.1: the old connection is just closed.
    let (mut old, _) = Raw::connect_ok(gw.addr, raw::v4("twin4")).await;
    let (_new, _) = Raw::connect_ok(gw.addr, raw::v4("twin4")).await;
    assert_eq!(old.expect_closed().await, []);
}

#[tokio::test]
async fn takeover_of_a_rumqttc_client() {
    let gw = TestGateway::start().await;
    let mut opts = v4_options(gw.addr, "rq-twin");
    opts.set_clean_session(false);
    let (mut old, _) = V4::connect(opts.clone()).await;
    old.subscribe("rq/t", rumqttc::QoS::AtLeastOnce).await;
    let (mut new, ack) = V4::connect(opts).await;
    assert!(ack.session_present);
    let why = old.closed().await;
    assert!(!why.is_empty());
    gw.broker.publish_server(
        "rq/t".into(),
        Bytes::from_static(b"y"),
        QoS::AtLeastOnce,
        false,
    );
    assert_eq!(new.recv_publish().await.payload, &b"y"[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_takeovers_under_load_lose_nothing() {
    const TOTAL: usize = 2000;
    let gw = TestGateway::start().await;
    let mut opts = v4_options(gw.addr, "hopper");
    opts.set_clean_session(false);
    let (mut current, _) = V4::connect(opts.clone()).await;
    current.subscribe("hop/t", rumqttc::QoS::AtLeastOnce).await;

    let (publisher, _) = V4::connect(v4_options(gw.addr, "hop-pub")).await;
    let sender = tokio::spawn(async move {
        for n in 0..TOTAL {
            publisher
                .publish("hop/t", rumqttc::QoS::AtLeastOnce, false, seq_payload(n))
                .await;
        }
        publisher
    });

    let mut seen = std::collections::BTreeSet::new();
    common::within_for(
        Duration::from_secs(60),
        "every message across takeovers",
        async {
            let mut takeovers = 0;
            while seen.len() < TOTAL {
                let p = current.recv_publish().await;
                seen.insert(seq_of(&p.payload));
                if seen.len() % 300 == 0 && takeovers < 6 {
                    // Take the session over: the old connection's messages,
                    // acknowledged or not, are counted, and the new one must
                    // get everything else [MQTT-4.4.0-1].
                    takeovers += 1;
                    let (next, ack) = V4::connect(opts.clone()).await;
                    assert!(ack.session_present);
                    let old = std::mem::replace(&mut current, next);
                    for p in old.drain_publishes().await {
                        seen.insert(seq_of(&p.payload));
                    }
                }
            }
        },
    )
    .await;
    assert_eq!(seen.len(), TOTAL);
    assert_eq!(seen.last(), Some(&(TOTAL - 1)));
    sender.await.expect("publisher").disconnect().await;
}

#[tokio::test]
async fn session_expiry_set_at_disconnect() {
    let gw = TestGateway::start().await;

    // Shortened to 0 at DISCONNECT: the session ends with the connection.
    let mut connect = raw::v5("shorten");
    connect.properties.session_expiry_interval = Some(60);
    let (c, _) = Raw::connect_ok(gw.addr, connect.clone()).await;
    let mut d = aviary_protocol::Disconnect::new(ReasonCode::NORMAL_DISCONNECTION);
    d.properties.session_expiry_interval = Some(0);
    let mut c = c;
    c.send(Packet::Disconnect(d)).await;
    assert_eq!(c.expect_closed().await, []);
    eventually("the session to end", || connected(&gw.broker) == 0).await;
    connect.clean_start = false;
    let (_c, ack) = Raw::connect_ok(gw.addr, connect).await;
    assert!(!ack.session_present);

    // Set above 0 at DISCONNECT after 0 at CONNECT: a Protocol Error
    // [MQTT-3.14.2-2].
    let (mut c, _) = Raw::connect_ok(gw.addr, raw::v5("extend")).await;
    let mut d = aviary_protocol::Disconnect::new(ReasonCode::NORMAL_DISCONNECTION);
    d.properties.session_expiry_interval = Some(60);
    c.send(Packet::Disconnect(d)).await;
    assert_eq!(
        raw::disconnects(c.expect_closed().await),
        [ReasonCode::PROTOCOL_ERROR]
    );
}
