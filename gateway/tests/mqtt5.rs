//! MQTT 5 features end to end, with the raw client so every property is
//! visible: topic aliases both ways, message expiry, No Local,
//! subscription identifiers, properties passed through unchanged, the
//! client's Maximum Packet Size and Receive Maximum, AUTH, and Response
//! Information.

mod common;

use std::num::{NonZeroU16, NonZeroU32};
use std::time::Duration;

use aviary_protocol::{
    Auth, MessageProperties, Packet, Publish, QoS, ReasonCode, SubscriptionOptions,
};
use bytes::Bytes;
use common::raw::{self, Raw};
use common::{connected, eventually, TestGateway};

fn alias(n: u16) -> Option<NonZeroU16> {
    NonZeroU16::new(n)
}

#[tokio::test]
async fn topic_aliases_from_the_publisher_are_resolved() {
    let gw = TestGateway::start().await;
    let (mut sub, _) = Raw::connect_ok(gw.addr, raw::v5("alias-sub")).await;
    sub.subscribe("al/#", QoS::AtLeastOnce).await;
    let (mut sub4, _) = Raw::connect_ok(gw.addr, raw::v4("alias-sub4")).await;
    sub4.subscribe("al/#", QoS::AtLeastOnce).await;

    let (mut publisher, ack) = Raw::connect_ok(gw.addr, raw::v5("alias-pub")).await;
    let max = ack.properties.topic_alias_maximum.unwrap_or(0);
    assert!(max >= 1, "the broker accepts topic aliases: {ack:?}");

    let mut p = raw::message("al/t", b"1", QoS::AtLeastOnce);
    p.properties.topic_alias = alias(1);
    assert_eq!(publisher.publish(p).await, ReasonCode::SUCCESS);
    let mut p = raw::message("", b"2", QoS::AtLeastOnce);
    p.properties.topic_alias = alias(1);
    assert_eq!(publisher.publish(p).await, ReasonCode::SUCCESS);
    // Re-mapping an alias to another topic [MQTT-3.3.2-12].
    let mut p = raw::message("al/u", b"3", QoS::AtLeastOnce);
    p.properties.topic_alias = alias(1);
    publisher.publish(p).await;
    let mut p = raw::message("", b"4", QoS::AtLeastOnce);
    p.properties.topic_alias = alias(1);
    publisher.publish(p).await;

    for s in [&mut sub, &mut sub4] {
        let mut got = Vec::new();
        for _ in 0..4 {
            let p = s.recv_publish().await;
            s.ack(&p).await;
            assert_eq!(
                p.properties.topic_alias, None,
                "alias of another connection"
            );
            got.push((p.topic.to_string(), p.payload.clone()));
        }
        let expected: Vec<(String, Bytes)> =
            [("al/t", "1"), ("al/t", "2"), ("al/u", "3"), ("al/u", "4")]
                .iter()
                .map(|(t, p)| ((*t).to_owned(), Bytes::from(*p)))
                .collect();
        assert_eq!(got, expected);
    }

    // An alias above the maximum is a protocol violation [MQTT-3.3.2-9].
    let mut p = raw::message("al/t", b"x", QoS::AtMostOnce);
    p.properties.topic_alias = alias(max.saturating_add(1).max(1));
    publisher.send(Packet::Publish(p)).await;
    assert_eq!(
        raw::disconnects(publisher.expect_closed().await),
        [ReasonCode::TOPIC_ALIAS_INVALID]
    );

    // An alias never set up.
    let (mut other, _) = Raw::connect_ok(gw.addr, raw::v5("alias-pub2")).await;
    let mut p = raw::message("", b"x", QoS::AtMostOnce);
    p.properties.topic_alias = alias(2);
    other.send(Packet::Publish(p)).await;
    let seen = other.expect_closed().await;
    assert_eq!(seen.len(), 1);
    assert!(
        matches!(&seen[0], Packet::Disconnect(d) if d.reason_code.is_error()),
        "{seen:?}"
    );
}

#[tokio::test]
async fn the_server_assigns_aliases_to_a_subscriber_that_accepts_them() {
    let gw = TestGateway::start().await;
    let mut connect = raw::v5("alias-in");
    connect.properties.topic_alias_maximum = Some(2);
    let (mut sub, _) = Raw::connect_ok(gw.addr, connect).await;
    sub.subscribe("sa/#", QoS::AtMostOnce).await;
    let (mut publisher, _) = Raw::connect_ok(gw.addr, raw::v5("alias-out")).await;
    let topics = [
        "sa/one", "sa/one", "sa/two", "sa/three", "sa/one", "sa/three", "sa/two",
    ];
    for (i, t) in topics.iter().enumerate() {
        publisher
            .publish(raw::message(t, i.to_string().as_bytes(), QoS::AtLeastOnce))
            .await;
    }

    // Resolve as a client must [MQTT-3.3.2-12].
    let mut table: std::collections::HashMap<u16, String> = Default::default();
    let mut resolved = Vec::new();
    let mut aliased_empty = 0;
    for _ in &topics {
        let p = sub.recv_publish().await;
        let topic = match p.properties.topic_alias {
            Some(a) => {
                assert!(a.get() <= 2, "alias above our maximum [MQTT-3.3.2-10]");
                if p.topic.is_empty() {
                    aliased_empty += 1;
                    table.get(&a.get()).cloned().expect("alias was set up")
                } else {
                    table.insert(a.get(), p.topic.to_string());
                    p.topic.to_string()
                }
            }
            None => {
                assert!(!p.topic.is_empty(), "empty topic without alias");
                p.topic.to_string()
            }
        };
        resolved.push(topic);
    }
    assert_eq!(resolved, topics);
    assert!(
        aliased_empty >= 2,
        "the second message on a topic uses the alias alone ({aliased_empty} did)"
    );
}

#[tokio::test]
async fn expired_messages_are_dropped_and_the_interval_counts_down() {
    let gw = TestGateway::start().await;
    let mut connect = raw::v5("expiry-sub");
    connect.properties.session_expiry_interval = Some(60);
    let (mut sub, _) = Raw::connect_ok(gw.addr, connect.clone()).await;
    sub.subscribe("me/#", QoS::AtLeastOnce).await;
    sub.disconnect(ReasonCode::NORMAL_DISCONNECTION).await;
    eventually("the subscriber to go offline", || {
        connected(&gw.broker) == 0
    })
    .await;

    let (mut publisher, _) = Raw::connect_ok(gw.addr, raw::v5("expiry-pub")).await;
    for (topic, secs) in [("me/short", 1), ("me/long", 100)] {
        let mut p = raw::message(topic, b"x", QoS::AtLeastOnce);
        p.properties.message.to_mut().message_expiry_interval = Some(secs);
        publisher.publish(p).await;
    }
    // Retained ones expire too (section 3.3.2.3.3).
    for (topic, secs) in [("mr/short", 1), ("mr/long", 100)] {
        let mut p = raw::message(topic, b"r", QoS::AtLeastOnce);
        p.retain = true;
        p.properties.message.to_mut().message_expiry_interval = Some(secs);
        publisher.publish(p).await;
    }
    // Proving a negative: the short one must run out while queued.
    tokio::time::sleep(Duration::from_millis(2100)).await;

    connect.clean_start = false;
    let (mut sub, ack) = Raw::connect_ok(gw.addr, connect).await;
    assert!(ack.session_present);
    let p = sub.recv_publish().await;
    sub.ack(&p).await;
    assert_eq!(
        p.topic, "me/long",
        "the expired message was delivered [MQTT-3.3.2-5]"
    );
    let left = p
        .properties
        .message
        .message_expiry_interval
        .expect("interval forwarded");
    assert!(
        (1..=98).contains(&left),
        "the forwarded interval counts the time spent queued [MQTT-3.3.2-6]: {left}"
    );
    sub.expect_silence(Duration::from_millis(200)).await;

    let (mut late, _) = Raw::connect_ok(gw.addr, raw::v5("expiry-late")).await;
    late.subscribe("mr/+", QoS::AtLeastOnce).await;
    let p = late.recv_publish().await;
    late.ack(&p).await;
    assert_eq!(p.topic, "mr/long", "an expired retained message was sent");
    assert!(p.retain);
    let left = p
        .properties
        .message
        .message_expiry_interval
        .expect("interval");
    assert!((1..=98).contains(&left), "{left}");
    late.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn no_local_skips_only_the_publisher() {
    let gw = TestGateway::start().await;
    let (mut a, _) = Raw::connect_ok(gw.addr, raw::v5("nl-a")).await;
    let mut opts = SubscriptionOptions::qos(QoS::AtLeastOnce);
    opts.no_local = true;
    a.subscribe_with(&[("nl/t", opts)], None).await;
    let reason = a
        .publish(raw::message("nl/t", b"own", QoS::AtLeastOnce))
        .await;
    assert_eq!(
        reason,
        ReasonCode::NO_MATCHING_SUBSCRIBERS,
        "[MQTT-3.8.3-3]"
    );

    let (mut b, _) = Raw::connect_ok(gw.addr, raw::v5("nl-b")).await;
    b.publish(raw::message("nl/t", b"other", QoS::AtLeastOnce))
        .await;
    let p = a.recv_publish().await;
    assert_eq!(
        p.payload,
        &b"other"[..],
        "own message delivered despite No Local"
    );
}

#[tokio::test]
async fn subscription_identifiers_come_with_each_delivery() {
    let gw = TestGateway::start().await;
    let (mut s, _) = Raw::connect_ok(gw.addr, raw::v5("si")).await;
    let qos1 = SubscriptionOptions::qos(QoS::AtLeastOnce);
    s.subscribe_with(&[("si/+", qos1)], Some(7)).await;
    s.subscribe_with(&[("si/#", qos1)], Some(300_000)).await;
    s.subscribe_with(&[("si/x/y", qos1)], None).await;
    let (mut p, _) = Raw::connect_ok(gw.addr, raw::v5("si-pub")).await;
    p.publish(raw::message("si/x", b"1", QoS::AtLeastOnce))
        .await;
    p.publish(raw::message("si/x/y", b"2", QoS::AtLeastOnce))
        .await;

    let first = s.recv_publish().await;
    s.ack(&first).await;
    let mut ids = first.properties.subscription_identifiers.clone();
    ids.sort();
    assert_eq!(
        ids,
        [
            NonZeroU32::new(7).unwrap(),
            NonZeroU32::new(300_000).unwrap()
        ],
        "one delivery with both identifiers [MQTT-3.3.4-3]"
    );
    let second = s.recv_publish().await;
    s.ack(&second).await;
    assert_eq!(
        second.properties.subscription_identifiers,
        [NonZeroU32::new(300_000).unwrap()]
    );
    s.expect_silence(Duration::from_millis(100)).await;

    // Retained messages sent for a new subscription carry its identifier.
    let mut r = raw::message("si/r", b"kept", QoS::AtMostOnce);
    r.retain = true;
    p.publish(r).await;
    assert_eq!(
        s.recv_publish().await.topic,
        "si/r",
        "live through si/+ and si/#"
    );
    let (mut late, _) = Raw::connect_ok(gw.addr, raw::v5("si-late")).await;
    late.subscribe_with(&[("si/r", qos1)], Some(42)).await;
    let got = late.recv_publish().await;
    assert!(got.retain);
    assert_eq!(
        got.properties.subscription_identifiers,
        [NonZeroU32::new(42).unwrap()]
    );
}

#[tokio::test]
async fn message_properties_pass_through_unchanged() {
    let gw = TestGateway::start().await;
    let (mut s, _) = Raw::connect_ok(gw.addr, raw::v5("props-sub")).await;
    s.subscribe("pp/t", QoS::AtLeastOnce).await;
    let (mut p, _) = Raw::connect_ok(gw.addr, raw::v5("props-pub")).await;
    let properties = MessageProperties {
        payload_format_indicator: Some(true),
        message_expiry_interval: None,
        content_type: Some("application/json".into()),
        response_topic: Some("pp/reply".into()),
        correlation_data: Some(Bytes::from_static(&[0, 1, 2, 255])),
        user_properties: vec![
            ("k".into(), "v1".into()),
            ("k".into(), "v2".into()),
            ("other".into(), "ünïcode".into()),
        ],
    };
    let mut msg = raw::message("pp/t", br#"{"a":1}"#, QoS::AtLeastOnce);
    msg.properties.message = properties.clone().into();
    p.publish(msg).await;
    let got = s.recv_publish().await;
    assert_eq!(
        *got.properties.message, properties,
        "[MQTT-3.3.2-17] [MQTT-3.3.2-18]"
    );
    assert_eq!(got.payload, &br#"{"a":1}"#[..]);
}

#[tokio::test]
async fn maximum_packet_size_of_the_client_is_respected() {
    let gw = TestGateway::start().await;
    let mut connect = raw::v5("small");
    connect.properties.maximum_packet_size = NonZeroU32::new(100);
    let (mut s, _) = Raw::connect_ok(gw.addr, connect).await;
    s.subscribe("mps/#", QoS::AtLeastOnce).await;
    let (mut p, _) = Raw::connect_ok(gw.addr, raw::v5("big-pub")).await;
    p.publish(raw::message("mps/big", &[b'x'; 200], QoS::AtLeastOnce))
        .await;
    p.publish(raw::message("mps/big0", &[b'x'; 200], QoS::AtMostOnce))
        .await;
    p.publish(raw::message("mps/small", b"fits", QoS::AtLeastOnce))
        .await;
    let got = s.recv_publish().await;
    let size = Packet::Publish(got.clone())
        .encoded_len(aviary_protocol::ProtocolVersion::V5)
        .unwrap();
    assert!(size <= 100, "a {size}-byte packet was sent [MQTT-3.1.2-24]");
    assert_eq!(got.topic, "mps/small", "too large messages are dropped");
    s.ack(&got).await;
    s.expect_silence(Duration::from_millis(100)).await;

    // A DISCONNECT too: a reason string goes only if it fits [MQTT-3.14.2-3].
    let mut connect = raw::v5("tiny");
    connect.properties.maximum_packet_size = NonZeroU32::new(8);
    let (mut tiny, _) = Raw::connect_ok(gw.addr, connect).await;
    tiny.send_raw(&[0x36, 0x06, 0x00, 0x03, b'a', b'/', b'b', 0x00])
        .await;
    let seen = tiny.expect_closed().await;
    for p in &seen {
        let size = p.encoded_len(aviary_protocol::ProtocolVersion::V5).unwrap();
        assert!(size <= 8, "a {size}-byte {p:?} was sent [MQTT-3.1.2-24]");
    }
    assert_eq!(raw::disconnects(seen), [ReasonCode::MALFORMED_PACKET]);
}

#[tokio::test]
async fn receive_maximum_bounds_unacknowledged_deliveries() {
    let gw = TestGateway::start().await;
    let mut connect = raw::v5("rm");
    connect.properties.receive_maximum = NonZeroU16::new(2);
    let (mut s, _) = Raw::connect_ok(gw.addr, connect).await;
    s.subscribe("rm/t", QoS::AtLeastOnce).await;
    let (mut p, _) = Raw::connect_ok(gw.addr, raw::v5("rm-pub")).await;
    for i in 0..6u8 {
        p.publish(raw::message("rm/t", &[b'0' + i], QoS::AtLeastOnce))
            .await;
    }

    let mut outstanding: Vec<Publish> = Vec::new();
    let mut received = Vec::new();
    while received.len() < 6 {
        // Take what comes until the window is full, then check the broker
        // stops there [MQTT-3.3.4-7].
        while outstanding.len() < 2 && received.len() + outstanding.len() < 6 {
            outstanding.push(s.recv_publish().await);
        }
        if received.len() < 2 {
            s.expect_silence(Duration::from_millis(300)).await;
        }
        let p = outstanding.remove(0);
        s.ack(&p).await;
        received.push(p.payload[0]);
    }
    assert_eq!(received, b"012345");
}

#[tokio::test]
async fn auth_packet_without_an_authentication_method_is_a_protocol_error() {
    let gw = TestGateway::start().await;
    let (mut c, _) = Raw::connect_ok(gw.addr, raw::v5("auth")).await;
    let mut auth = Auth {
        reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
        properties: Default::default(),
    };
    auth.properties.authentication_method = Some("SCRAM-SHA-1".into());
    c.send(Packet::Auth(auth)).await;
    // [MQTT-4.12.0-7]; 0x8C (Bad authentication method) is not a valid
    // DISCONNECT reason (table 3-10), which the codec of the raw client
    // checks.
    assert_eq!(
        raw::disconnects(c.expect_closed().await),
        [ReasonCode::PROTOCOL_ERROR]
    );
}

#[tokio::test]
async fn request_response_information() {
    let gw = TestGateway::start().await;
    let mut connect = raw::v5("rri");
    connect.properties.request_response_information = Some(true);
    let (_c, ack) = Raw::connect_ok(gw.addr, connect).await;
    assert!(ack.properties.response_information.is_some());
    let (_c, ack) = Raw::connect_ok(gw.addr, raw::v5("no-rri")).await;
    assert_eq!(
        ack.properties.response_information, None,
        "only when asked [MQTT-3.1.2-28]"
    );
}
