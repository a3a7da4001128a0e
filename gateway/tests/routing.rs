//! Topic routing end to end: `+` and `#` wildcards, overlapping
//! subscriptions delivered once, and `$` topics hidden from wildcards in
//! the first level, with MQTT 3.1.1 and 5.0 clients side by side.

mod common;

use aviary_protocol::QoS as RawQoS;
use bytes::Bytes;
use common::raw::{self, Raw};
use common::rumqtt::{V4, V5};
use common::TestGateway;
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::QoS as QoS4;

/// Topics every scenario publishes, in this order, then `end`.
const TOPICS: [&str; 8] = [
    "a/b/c", "a/x/c", "a/b", "a", "a/b/c/d", "b/b/c", "/b/x", "x/test/x",
];

async fn topics_v4(c: &mut V4) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let p = c.recv_publish().await;
        if p.topic == "end" {
            return seen;
        }
        seen.push(p.topic);
    }
}

async fn topics_v5(c: &mut V5) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let p = c.recv_publish().await;
        let topic = String::from_utf8(p.topic.to_vec()).expect("utf-8 topic");
        if topic == "end" {
            return seen;
        }
        seen.push(topic);
    }
}

async fn topics_raw(c: &mut Raw) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let p = c.recv_publish().await;
        c.ack(&p).await;
        if p.topic == "end" {
            return seen;
        }
        seen.push(p.topic.to_string());
    }
}

/// Which client publishes the scenario.
#[derive(Clone, Copy, Debug)]
enum Publisher {
    V4,
    V5,
}

async fn scenario(publisher: Publisher) {
    let gw = TestGateway::start().await;

    let mut s1 = V4::connect_id(gw.addr, "s1-v4").await;
    s1.subscribe("a/+/c", QoS4::AtLeastOnce).await;
    s1.subscribe("a/#", QoS4::AtLeastOnce).await;
    s1.subscribe("end", QoS4::AtLeastOnce).await;

    let mut s2 = V5::connect_id(gw.addr, "s2-v5").await;
    s2.subscribe("+/b/#", QoS5::AtLeastOnce).await;
    s2.subscribe("+/+", QoS5::AtLeastOnce).await;
    s2.subscribe("end", QoS5::AtLeastOnce).await;

    let (mut s3, _) = Raw::connect_ok(gw.addr, raw::v5("s3-raw")).await;
    s3.subscribe("#", RawQoS::AtLeastOnce).await;
    s3.subscribe("$SYS/test/#", RawQoS::AtLeastOnce).await;

    // `#` and `+` in the first level must not match `$SYS/...`, neither the
    // retained `$SYS/broker/version` nor a live `$SYS` message.
    let mut s4 = V4::connect_id(gw.addr, "s4-v4").await;
    s4.subscribe("#", QoS4::AtLeastOnce).await;
    s4.subscribe("+/test/x", QoS4::AtLeastOnce).await;

    // Published before the client's messages: if a wildcard matched it, it
    // would arrive before `end`.
    gw.broker.publish_server(
        "$SYS/test/x".into(),
        Bytes::from_static(b"sys"),
        aviary_protocol::QoS::AtLeastOnce,
        false,
    );

    match publisher {
        Publisher::V4 => {
            let p = V4::connect_id(gw.addr, "pub-v4").await;
            for t in TOPICS.iter().chain(&["end"]) {
                p.publish(t, QoS4::AtLeastOnce, false, t.as_bytes()).await;
            }
            // Keep the publisher until everything arrived.
            check(&mut s1, &mut s2, &mut s3, &mut s4).await;
            p.disconnect().await;
        }
        Publisher::V5 => {
            let p = V5::connect_id(gw.addr, "pub-v5").await;
            for t in TOPICS.iter().chain(&["end"]) {
                p.publish(t, QoS5::AtLeastOnce, false, t.as_bytes().to_vec())
                    .await;
            }
            check(&mut s1, &mut s2, &mut s3, &mut s4).await;
            p.disconnect().await;
        }
    }
}

async fn check(s1: &mut V4, s2: &mut V5, s3: &mut Raw, s4: &mut V4) {
    assert_eq!(
        topics_v4(s1).await,
        ["a/b/c", "a/x/c", "a/b", "a", "a/b/c/d"],
        "a/+/c + a/#: overlapping matches delivered once"
    );
    assert_eq!(
        topics_v5(s2).await,
        ["a/b/c", "a/b", "a/b/c/d", "b/b/c", "/b/x"],
        "+/b/# + +/+"
    );
    assert_eq!(
        topics_raw(s3).await,
        [&["$SYS/test/x"][..], &TOPICS[..]].concat(),
        "# and $SYS/test/#: the $SYS message only through the explicit filter"
    );
    assert_eq!(
        topics_v4(s4).await,
        TOPICS,
        "# and +/test/x never match $SYS topics [MQTT-4.7.2-1]"
    );
}

#[tokio::test]
async fn wildcards_from_a_v311_publisher() {
    scenario(Publisher::V4).await;
}

#[tokio::test]
async fn wildcards_from_a_v5_publisher() {
    scenario(Publisher::V5).await;
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let gw = TestGateway::start().await;
    let (mut sub, _) = Raw::connect_ok(gw.addr, raw::v5("sub")).await;
    sub.subscribe("u/+", RawQoS::AtMostOnce).await;
    sub.subscribe("marker", RawQoS::AtMostOnce).await;
    let (mut publisher, _) = Raw::connect_ok(gw.addr, raw::v4("pub")).await;
    publisher
        .publish(raw::message("u/1", b"one", RawQoS::AtLeastOnce))
        .await;
    assert_eq!(sub.recv_publish().await.topic, "u/1");

    let id = sub.packet_id();
    sub.send(aviary_protocol::Packet::Unsubscribe(
        aviary_protocol::Unsubscribe {
            packet_id: id,
            user_properties: Vec::new(),
            filters: vec![raw::filter("u/+"), raw::filter("never/subscribed")],
        },
    ))
    .await;
    match sub.recv().await {
        aviary_protocol::Packet::UnsubAck(a) => assert_eq!(
            a.reason_codes,
            [
                aviary_protocol::ReasonCode::SUCCESS,
                aviary_protocol::ReasonCode::NO_SUBSCRIPTION_EXISTED
            ]
        ),
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
    publisher
        .publish(raw::message("u/1", b"two", RawQoS::AtLeastOnce))
        .await;
    publisher
        .publish(raw::message("marker", b"m", RawQoS::AtLeastOnce))
        .await;
    assert_eq!(
        sub.recv_publish().await.topic,
        "marker",
        "nothing on u/1 after UNSUBSCRIBE"
    );
}
