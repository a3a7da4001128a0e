//! Each limit triggered once, against a real gateway: connections in total and per source
//! address, new connections per second per address, subscriptions per client, topic levels
//! and length, client id length, QoS 2 in flight; each refusal counted in `/metrics` under
//! its config key. Also: failed logins slowed down, and the refusal to start on a public
//! address without authentication.
//!
//! Clients are told apart by their source address: any of 127.0.0.0/8 is loopback.

mod common;
mod ws_common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use aviary_protocol::{Packet, ProtocolVersion, QoS, ReasonCode};
use common::raw::{self, Raw};
use common::WAIT;
use ws_common::Gw;

fn source(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

async fn refusals(gw: &Gw, key: &str) -> Option<u64> {
    let metrics = gw.http().metrics().await;
    ws_common::metric(
        &metrics,
        &format!("aviary_limit_refusals_total{{limit=\"{key}\"}}"),
    )
}

/// Connects from `from`; the CONNACK's code, or `None` when the gateway closes the
/// connection without one (a connection limit).
async fn try_connect(gw: &Gw, from: Ipv4Addr, id: &str) -> Option<(Raw, ReasonCode)> {
    let raw = Raw::open_from(gw.mqtt, from).await;
    let mut raw = raw;
    raw.send(Packet::Connect(Box::new(raw::v5(id)))).await;
    match raw.next_event(WAIT).await {
        Some(common::raw::Event::Packet(p)) => match p {
            Packet::ConnAck(ack) => Some((raw, ack.reason_code)),
            other => panic!("expected CONNACK, got {other:?}"),
        },
        Some(_) => None,
        None => panic!("neither a CONNACK nor a close within {WAIT:?}"),
    }
}

#[tokio::test]
async fn connections_are_bounded_in_total_and_per_address() {
    let gw = Gw::start_with(|c| {
        c.mqtt.max_connections = 3;
        c.mqtt.max_connections_per_address = 2;
    })
    .await;
    let (a1, _) = try_connect(&gw, source(11), "a1")
        .await
        .expect("first from .11");
    let _a2 = try_connect(&gw, source(11), "a2")
        .await
        .expect("second from .11");
    assert!(
        try_connect(&gw, source(11), "a3").await.is_none(),
        "third from .11"
    );
    let _b1 = try_connect(&gw, source(12), "b1")
        .await
        .expect("first from .12");
    assert!(
        try_connect(&gw, source(13), "c1").await.is_none(),
        "fourth in all"
    );
    assert_eq!(refusals(&gw, "max_connections_per_address").await, Some(1));
    assert_eq!(refusals(&gw, "max_connections").await, Some(1));
    // A place given back is a place to take.
    a1.disconnect(ReasonCode::SUCCESS).await;
    common::eventually("the closed connection to leave", || {
        common::connected(&gw.broker) == 2
    })
    .await;
    try_connect(&gw, source(13), "c2")
        .await
        .expect("a place was freed");
}

#[tokio::test]
async fn new_connections_per_second_are_bounded_per_address() {
    let gw = Gw::start_with(|c| c.mqtt.max_connection_rate_per_address = 3).await;
    let mut kept = Vec::new();
    for i in 0..3 {
        kept.push(
            try_connect(&gw, source(21), &format!("r{i}"))
                .await
                .expect("within the rate"),
        );
    }
    assert!(
        try_connect(&gw, source(21), "r3").await.is_none(),
        "a fourth in the same second"
    );
    try_connect(&gw, source(22), "other")
        .await
        .expect("another address has its own rate");
    assert_eq!(
        refusals(&gw, "max_connection_rate_per_address").await,
        Some(1)
    );
}

#[tokio::test]
async fn subscriptions_per_client_are_bounded() {
    let gw = Gw::start_with(|c| c.mqtt.max_subscriptions_per_client = 2).await;
    for (version, want) in [
        (ProtocolVersion::V5, ReasonCode::QUOTA_EXCEEDED),
        (ProtocolVersion::V3_1_1, ReasonCode::UNSPECIFIED_ERROR),
    ] {
        let connect = aviary_protocol::Connect::new(version, "subs".to_owned());
        let (mut raw, _) = Raw::connect_ok(gw.mqtt, connect).await;
        raw.subscribe("a", QoS::AtMostOnce).await;
        raw.subscribe("b", QoS::AtMostOnce).await;
        // The same filter again replaces its subscription: no new one.
        raw.subscribe("b", QoS::AtLeastOnce).await;
        let opts = aviary_protocol::SubscriptionOptions::qos(QoS::AtMostOnce);
        let ack = raw.subscribe_with(&[("c", opts)], None).await;
        assert_eq!(ack.reason_codes, [want], "{version:?}");
    }
    assert_eq!(refusals(&gw, "max_subscriptions_per_client").await, Some(2));
}

#[tokio::test]
async fn topic_levels_and_length_are_bounded() {
    let gw = Gw::start_with(|c| c.mqtt.max_topic_length = 1024).await;
    let (mut raw, _) = Raw::connect_ok(gw.mqtt, raw::v5("topics")).await;
    let opts = aviary_protocol::SubscriptionOptions::qos(QoS::AtMostOnce);
    let deep = vec!["+"; 129].join("/");
    let at_limit = vec!["+"; 128].join("/");
    let ack = raw
        .subscribe_with(&[(deep.as_str(), opts), (at_limit.as_str(), opts)], None)
        .await;
    assert_eq!(
        ack.reason_codes,
        [ReasonCode::TOPIC_FILTER_INVALID, ReasonCode::GRANTED_QOS_0]
    );
    assert_eq!(refusals(&gw, "max_topic_levels").await, Some(1));
    // A 10,000-level filter costs no more than a short one, and is refused.
    let huge = vec!["+"; 10_000].join("/");
    let ack = raw.subscribe_with(&[(huge.as_str(), opts)], None).await;
    assert_eq!(ack.reason_codes, [ReasonCode::TOPIC_FILTER_INVALID]);
    assert_eq!(refusals(&gw, "max_topic_length").await, Some(1));
    // A PUBLISH on too long a topic ends the connection: 0x90 Topic Name invalid.
    raw.send(Packet::Publish(raw::message(
        &"t".repeat(1025),
        b"x",
        QoS::AtMostOnce,
    )))
    .await;
    let seen = raw.expect_closed().await;
    assert_eq!(raw::disconnects(seen), [ReasonCode::TOPIC_NAME_INVALID]);
    assert_eq!(refusals(&gw, "max_topic_length").await, Some(2));
}

#[tokio::test]
async fn client_ids_are_bounded_in_length() {
    let gw = Gw::start_with(|c| c.mqtt.max_client_id_length = 64).await;
    let (_ok, ack) = Raw::connect(gw.mqtt, raw::v5(&"i".repeat(64))).await;
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    let (_no, ack) = Raw::connect(gw.mqtt, raw::v5(&"i".repeat(65))).await;
    assert_eq!(ack.reason_code, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    let (_no, ack) = Raw::connect(gw.mqtt, raw::v4(&"i".repeat(65))).await;
    // 3.1.1's return code 2, Identifier rejected.
    assert_eq!(ack.reason_code, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    assert_eq!(refusals(&gw, "max_client_id_length").await, Some(2));
}

#[tokio::test]
async fn qos2_in_flight_from_a_client_is_bounded_by_receive_maximum() {
    let gw = Gw::start_with(|c| c.mqtt.receive_maximum = 2).await;
    let (mut raw, ack) = Raw::connect_ok(gw.mqtt, raw::v5("inflight")).await;
    assert_eq!(ack.properties.receive_maximum.map(|r| r.get()), Some(2));
    for _ in 0..3 {
        let mut p = raw::message("q2", b"x", QoS::ExactlyOnce);
        p.packet_id = Some(raw.packet_id());
        raw.send(Packet::Publish(p)).await;
    }
    let seen = raw.expect_closed().await;
    let codes: Vec<_> = seen
        .into_iter()
        .filter_map(|p| match p {
            Packet::Disconnect(d) => Some(d.reason_code),
            Packet::PubRec(_) => None,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(codes, [ReasonCode::RECEIVE_MAXIMUM_EXCEEDED]);
    assert_eq!(refusals(&gw, "receive_maximum").await, Some(1));
}

#[tokio::test]
async fn failed_logins_from_one_address_are_slowed_down() {
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    aviary::auth::passwd_cmd::write_file(&passwd, &[("alice", "right")]).unwrap();
    let gw = Gw::start_with(|c| {
        c.auth.password_file = Some(passwd);
        c.auth.login_failure_delay_ms = 400;
        c.auth.login_failure_max_delay_ms = 400;
    })
    .await;
    let wrong = || {
        let mut c = raw::v5("guess");
        c.username = Some("alice".into());
        c.password = Some(bytes::Bytes::from_static(b"wrong"));
        c
    };
    let mut waits = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let (_raw, ack) = Raw::open_from(gw.mqtt, source(31))
            .await
            .handshake(wrong())
            .await;
        assert_eq!(ack.reason_code, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
        waits.push(started.elapsed());
    }
    // The first failure may be a typo: answered at once; the next ones wait.
    assert!(waits[1] >= Duration::from_millis(400), "{waits:?}");
    assert!(waits[2] >= Duration::from_millis(400), "{waits:?}");
    let metrics = gw.http().metrics().await;
    assert_eq!(
        ws_common::metric(&metrics, "aviary_login_failures_total"),
        Some(3)
    );
}

#[tokio::test]
async fn a_public_listener_without_auth_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_aviary"))
        .args(["--mqtt", "0.0.0.0:0", "--http", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = common::within("the gateway to refuse to start", run)
        .await
        .expect("run the aviary binary");
    let printed = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it started: {printed}");
    assert!(
        printed.contains("refusing to listen on 0.0.0.0:0 (listen.mqtt)")
            && printed.contains("password_file")
            && printed.contains("allow_anonymous = true"),
        "{printed}"
    );
    assert!(
        !std::fs::read_dir(dir.path()).unwrap().any(|_| true),
        "nothing was written before the refusal"
    );
}
