//! The CONNECT / CONNACK exchange end to end: client identifiers the
//! server assigns or refuses, unsupported protocol versions, enhanced
//! authentication, limits the server announces, MQTT 3.1, and the
//! retained `$SYS/broker/version`.

mod common;

use bytes::BytesMut;

use aviary_protocol::{Connect, Packet, ProtocolVersion, QoS, ReasonCode};
use common::raw::{self, Raw};
use common::TestGateway;

/// Sends `connect` and returns the first `len` bytes of the answer (a CONNACK of
/// MQTT 3.1.1 is four bytes), checking the connection is then closed.
async fn refused_bytes(gw: &TestGateway, connect: &[u8], len: usize) -> Vec<u8> {
    let mut c = Raw::open(gw.addr).await;
    c.send_raw(connect).await;
    let answer = c.recv_bytes(len).await;
    c.expect_closed().await;
    answer
}

fn encoded(connect: Connect) -> BytesMut {
    let mut bytes = BytesMut::new();
    let v = connect.protocol;
    Packet::Connect(Box::new(connect))
        .encode(v, &mut bytes)
        .unwrap();
    bytes
}

#[tokio::test]
async fn empty_client_id() {
    let gw = TestGateway::start().await;

    // MQTT 5: the server assigns one and says which [MQTT-3.2.2-16].
    let (mut c, ack) = Raw::connect_ok(gw.addr, raw::v5("")).await;
    let assigned = ack
        .properties
        .assigned_client_identifier
        .expect("Assigned Client Identifier");
    assert!(!assigned.is_empty());
    c.subscribe("ec/t", QoS::AtMostOnce).await;
    let (_c2, ack2) = Raw::connect_ok(gw.addr, raw::v5("")).await;
    assert_ne!(
        ack2.properties.assigned_client_identifier,
        Some(assigned),
        "unique per client"
    );

    // MQTT 3.1.1: accepted with Clean Session 1 [MQTT-3.1.3-7]...
    let (_c3, ack) = Raw::connect_ok(gw.addr, raw::v4("")).await;
    assert!(!ack.session_present);
    // ... refused with return code 0x02 otherwise [MQTT-3.1.3-8].
    let mut persistent = raw::v4("");
    persistent.clean_start = false;
    assert_eq!(
        refused_bytes(&gw, &encoded(persistent), 4).await,
        [0x20, 0x02, 0x00, 0x02]
    );
}

#[tokio::test]
async fn an_older_protocol_level_gets_return_code_1() {
    let gw = TestGateway::start().await;
    for level in [0u8, 1, 2] {
        let mut bytes = encoded(raw::v4("past"));
        assert_eq!(&bytes[2..8], b"\x00\x04MQTT");
        bytes[8] = level;
        assert_eq!(
            refused_bytes(&gw, &bytes, 4).await,
            [0x20, 0x02, 0x00, 0x01],
            "level {level} [MQTT-3.1.2-2]"
        );
    }
}

#[tokio::test]
async fn a_newer_protocol_level_gets_an_mqtt_5_connack_0x84() {
    let gw = TestGateway::start().await;
    for level in [6u8, 99, 255] {
        let mut bytes = encoded(raw::v4("future"));
        bytes[8] = level;
        // CONNACK, remaining length 3: no session present, 0x84 Unsupported Protocol
        // Version, empty properties; then the connection is closed [MQTT-3.1.2-2].
        assert_eq!(
            refused_bytes(&gw, &bytes, 5).await,
            [0x20, 0x03, 0x00, 0x84, 0x00],
            "level {level} [MQTT-3.1.2-2]"
        );
    }
}

#[tokio::test]
async fn authentication_method_is_refused_with_0x8c() {
    let gw = TestGateway::start().await;
    let mut connect = raw::v5("enhanced");
    connect.properties.authentication_method = Some("SCRAM-SHA-256".into());
    let (mut c, ack) = Raw::connect(gw.addr, connect).await;
    assert_eq!(ack.reason_code, ReasonCode::BAD_AUTHENTICATION_METHOD);
    assert!(!ack.session_present);
    assert_eq!(c.expect_closed().await, [], "[MQTT-3.2.2-7]");
}

#[tokio::test]
async fn connack_announces_the_limits() {
    let gw = TestGateway::start_with(|c| {
        c.max_keep_alive = 5;
        c.max_session_expiry_secs = 100;
        c.receive_maximum = 10;
        c.topic_alias_maximum = 3;
    })
    .await;
    let mut connect = raw::v5("limits");
    connect.keep_alive = 60;
    connect.properties.session_expiry_interval = Some(1000);
    let (_c, ack) = Raw::connect_ok(gw.addr, connect).await;
    let p = &ack.properties;
    assert_eq!(p.server_keep_alive, Some(5), "[MQTT-3.2.2-21]");
    assert_eq!(p.session_expiry_interval, Some(100));
    assert_eq!(p.receive_maximum.map(|n| n.get()), Some(10));
    assert_eq!(p.topic_alias_maximum, Some(3));

    // A client within the limits is not told anything.
    let mut connect = raw::v5("within");
    connect.keep_alive = 5;
    connect.properties.session_expiry_interval = Some(10);
    let (_c, ack) = Raw::connect_ok(gw.addr, connect).await;
    assert_eq!(ack.properties.server_keep_alive, None);
    assert_eq!(ack.properties.session_expiry_interval, None);
}

#[tokio::test]
async fn mqtt_3_keep_alive_above_the_maximum_is_refused() {
    // MQTT 3.x cannot be told a Server Keep Alive: refuse, as Mosquitto does,
    // instead of dropping the client later for "missing" pings.
    let gw = TestGateway::start_with(|c| c.max_keep_alive = 5).await;
    let mut connect = raw::v4("long-ka");
    connect.keep_alive = 60;
    let (mut c, ack) = Raw::connect(gw.addr, connect).await;
    assert_eq!(ack.reason_code, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    assert_eq!(c.expect_closed().await, []);

    let mut connect = raw::v4("short-ka");
    connect.keep_alive = 5;
    Raw::connect_ok(gw.addr, connect).await;
}

#[tokio::test]
async fn mqtt_3_1_clients_are_served() {
    let gw = TestGateway::start().await;
    let (mut old, _) = Raw::connect_ok(gw.addr, Connect::new(ProtocolVersion::V3_1, "old")).await;
    old.subscribe("v31/t", QoS::AtLeastOnce).await;
    let (mut p, _) = Raw::connect_ok(gw.addr, raw::v5("new")).await;
    p.publish(raw::message("v31/t", b"hi", QoS::AtLeastOnce))
        .await;
    let got = old.recv_publish().await;
    assert_eq!(got.payload, &b"hi"[..]);
    old.ack(&got).await;
}

#[tokio::test]
async fn sys_broker_version_is_retained() {
    let gw = TestGateway::start().await;
    let (mut c, _) = Raw::connect_ok(gw.addr, raw::v4("sys")).await;
    c.subscribe("$SYS/broker/version", QoS::AtMostOnce).await;
    let p = c.recv_publish().await;
    assert!(p.retain);
    let text = String::from_utf8(p.payload.to_vec()).unwrap();
    assert!(text.starts_with("aviary"), "{text}");

    // Clients cannot publish into `$SYS`.
    let (mut v5, _) = Raw::connect_ok(gw.addr, raw::v5("forger")).await;
    let reason = v5
        .publish(raw::message(
            "$SYS/broker/version",
            b"fake",
            QoS::AtLeastOnce,
        ))
        .await;
    assert!(reason.is_error(), "{reason:?}");
    c.expect_silence(std::time::Duration::from_millis(100))
        .await;
}
