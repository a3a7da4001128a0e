//! Graceful shutdown end to end: when the shutdown future passed to
//! `Gateway::run` completes, MQTT 5 clients get DISCONNECT 0x8B, every
//! connection (handshaken or not) is closed, new connections are no longer
//! served, and `run` returns.

mod common;

use aviary_protocol::{LastWill, QoS, ReasonCode, TopicName, WillProperties};
use common::raw::{self, Raw};
use common::rumqtt::V4;
use common::{within, TestGateway};

#[tokio::test]
async fn shutdown_disconnects_everyone_and_run_returns() {
    let mut gw = TestGateway::start().await;
    let mut connect = raw::v5("v5");
    connect.properties.session_expiry_interval = Some(300);
    let (mut v5, _) = Raw::connect_ok(gw.addr, connect).await;
    v5.subscribe("sd/t", QoS::AtLeastOnce).await;
    let (mut v4, _) = Raw::connect_ok(gw.addr, raw::v4("v4")).await;
    let mut rq = V4::connect_id(gw.addr, "rumqttc").await;
    let mut pending = Raw::open(gw.addr).await;

    let run = gw.begin_shutdown();

    assert_eq!(
        raw::disconnects(v5.expect_closed().await),
        [ReasonCode::SERVER_SHUTTING_DOWN]
    );
    assert_eq!(v4.expect_closed().await, []);
    assert_eq!(pending.expect_closed().await, []);
    let _ = rq.closed().await;
    within("Gateway::run to return", run)
        .await
        .expect("gateway task");

    // The listener is gone: nothing answers any more.
    let refused = tokio::net::TcpStream::connect(gw.addr).await;
    assert!(refused.is_err(), "still accepting after shutdown");
    // Persistent sessions are kept for a restart (and, once persisted,
    // across it); the two clean ones ended with their connections.
    assert_eq!(gw.broker.session_count(), 1);
}

#[tokio::test]
async fn shutdown_publishes_the_wills_of_closed_clients() {
    let mut gw = TestGateway::start().await;
    let mut connect = raw::v4("tracker");
    connect.will = Some(LastWill {
        topic: TopicName::new("sd/status").unwrap(),
        payload: bytes::Bytes::from_static(b"offline"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: WillProperties::default(),
    });
    let (mut tracker, _) = Raw::connect_ok(gw.addr, connect).await;
    let (mut polite, _) = Raw::connect_ok(gw.addr, raw::v4("polite")).await;

    let run = gw.begin_shutdown();
    assert_eq!(tracker.expect_closed().await, []);
    assert_eq!(polite.expect_closed().await, []);
    within("Gateway::run to return", run)
        .await
        .expect("gateway task");

    // The server closed the connection without a DISCONNECT from the
    // client, so the will went out; being retained, it is still there.
    let retained = gw.broker.retained_messages(Some("sd/status"));
    assert_eq!(retained.len(), 1, "the will was not published");
    assert_eq!(&retained[0].payload[..], b"offline");
}
