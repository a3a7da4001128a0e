//! Wills end to end: published when the connection dies without
//! DISCONNECT (socket dropped, keep alive expired, MQTT 5 DISCONNECT
//! 0x04), not after a normal DISCONNECT; the MQTT 5 Will Delay Interval;
//! and a retained will stored as retained.

mod common;

use std::time::{Duration, Instant};

use aviary_protocol::{
    Connect, LastWill, Packet, Publish, QoS, ReasonCode, TopicName, WillProperties,
};
use bytes::Bytes;
use common::raw::{self, Raw};
use common::rumqtt::{v4_options, V4};
use common::{connected, eventually, within_for, TestGateway};

fn will(topic: &str, payload: &str, qos: QoS, retain: bool) -> LastWill {
    LastWill {
        topic: TopicName::new(topic.to_owned()).expect("valid will topic"),
        payload: Bytes::from(payload.to_owned()),
        qos,
        retain,
        properties: WillProperties::default(),
    }
}

fn with_will(mut c: Connect, w: LastWill) -> Connect {
    c.will = Some(w);
    c
}

/// An MQTT 5 observer subscribed to `will/#` (and `marker`).
async fn observer(gw: &TestGateway) -> Raw {
    let (mut o, _) = Raw::connect_ok(gw.addr, raw::v5("observer")).await;
    o.subscribe("will/#", QoS::AtLeastOnce).await;
    o.subscribe("marker", QoS::AtMostOnce).await;
    o
}

async fn next_will(o: &mut Raw) -> Publish {
    let p = o.recv_publish().await;
    o.ack(&p).await;
    p
}

/// Publishes `marker` from the server and checks it is the next message
/// the observer gets: no will came before it.
async fn assert_no_will(gw: &TestGateway, o: &mut Raw) {
    gw.broker.publish_server(
        "marker".into(),
        Bytes::from_static(b"m"),
        QoS::AtMostOnce,
        false,
    );
    let p = o.recv_publish().await;
    assert_eq!(p.topic, "marker", "unexpected message: {p:?}");
}

#[tokio::test]
async fn will_on_dropped_socket() {
    let gw = TestGateway::start().await;
    let mut o = observer(&gw).await;

    // A raw MQTT 3.1.1 client whose socket just goes away.
    let (c, _) = Raw::connect_ok(
        gw.addr,
        with_will(
            raw::v4("w1"),
            will("will/w1", "gone", QoS::AtLeastOnce, false),
        ),
    )
    .await;
    drop(c);
    let p = next_will(&mut o).await;
    assert_eq!(
        (p.topic.as_ref(), p.payload.as_ref(), p.qos, p.retain),
        ("will/w1", &b"gone"[..], QoS::AtLeastOnce, false)
    );

    // rumqttc, its event loop task aborted.
    let mut opts = v4_options(gw.addr, "w2");
    opts.set_last_will(rumqttc::LastWill::new(
        "will/w2",
        "rumqttc gone",
        rumqttc::QoS::AtMostOnce,
        false,
    ));
    let (c, _) = V4::connect(opts).await;
    c.kill();
    let p = next_will(&mut o).await;
    assert_eq!(
        (p.topic.as_ref(), p.payload.as_ref()),
        ("will/w2", &b"rumqttc gone"[..])
    );
}

#[tokio::test]
async fn no_will_after_normal_disconnect() {
    let gw = TestGateway::start().await;
    let mut o = observer(&gw).await;
    for (i, connect) in [raw::v4("n1"), raw::v5("n2")].into_iter().enumerate() {
        let w = will(&format!("will/n{i}"), "x", QoS::AtLeastOnce, false);
        let (c, _) = Raw::connect_ok(gw.addr, with_will(connect, w)).await;
        c.disconnect(ReasonCode::NORMAL_DISCONNECTION).await;
        eventually("the broker to close the session's connection", || {
            connected(&gw.broker) == 1
        })
        .await;
        assert_no_will(&gw, &mut o).await;
    }
}

#[tokio::test]
async fn will_on_keep_alive_timeout() {
    let gw = TestGateway::start().await;
    let mut o = observer(&gw).await;
    let mut c = raw::v4("ka");
    c.keep_alive = 1;
    let (_silent, _) = Raw::connect_ok(
        gw.addr,
        with_will(c, will("will/ka", "timeout", QoS::AtMostOnce, false)),
    )
    .await;
    let start = Instant::now();
    let p = within_for(
        Duration::from_secs(3),
        "the will after 1.5 x keep alive",
        async { next_will(&mut o).await },
    )
    .await;
    assert_eq!(p.topic, "will/ka");
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1000),
        "the will came before the keep alive ran out: {elapsed:?} [MQTT-3.1.2-22]"
    );

    // An MQTT 5 client is told why.
    let mut c = raw::v5("ka5");
    c.keep_alive = 1;
    let (mut silent, _) = Raw::connect_ok(gw.addr, c).await;
    let seen = silent.expect_closed_within(Duration::from_secs(3)).await;
    assert_eq!(raw::disconnects(seen), [ReasonCode::KEEP_ALIVE_TIMEOUT]);
}

#[tokio::test]
async fn v5_disconnect_with_will_message_publishes_it() {
    let gw = TestGateway::start().await;
    let mut o = observer(&gw).await;
    let (c, _) = Raw::connect_ok(
        gw.addr,
        with_will(
            raw::v5("dw"),
            will("will/dw", "asked", QoS::AtLeastOnce, false),
        ),
    )
    .await;
    c.disconnect(ReasonCode::DISCONNECT_WITH_WILL).await;
    let p = next_will(&mut o).await;
    assert_eq!(
        (p.topic.as_ref(), p.payload.as_ref()),
        ("will/dw", &b"asked"[..])
    );
}

/// A v5 CONNECT for `id` with a delayed will and a session that outlives
/// the connection by `expiry` seconds.
fn delayed(id: &str, delay: u32, expiry: u32, clean: bool) -> Connect {
    let mut w = will(&format!("will/{id}"), "late", QoS::AtLeastOnce, false);
    w.properties.will_delay_interval = Some(delay);
    let mut c = with_will(raw::v5(id), w);
    c.clean_start = clean;
    c.properties.session_expiry_interval = Some(expiry);
    c
}

#[tokio::test]
async fn will_delay_cancelled_by_reconnect_else_published_after_it() {
    let gw = TestGateway::start().await;
    let mut o = observer(&gw).await;

    let (c, _) = Raw::connect_ok(gw.addr, delayed("wd", 1, 60, true)).await;
    drop(c);
    // Back before the delay ran out: no will [MQTT-3.1.3-9].
    let (c, ack) = Raw::connect_ok(gw.addr, delayed("wd", 1, 60, false)).await;
    assert!(ack.session_present);
    o.expect_silence(Duration::from_millis(1500)).await;

    // Gone for good: the will follows after its delay.
    let gone = Instant::now();
    drop(c);
    let p = within_for(
        Duration::from_secs(4),
        "the delayed will",
        next_will(&mut o),
    )
    .await;
    assert_eq!(p.topic, "will/wd");
    assert!(
        gone.elapsed() >= Duration::from_millis(900),
        "will sent before its delay: {:?}",
        gone.elapsed()
    );
}

#[tokio::test]
async fn will_delay_longer_than_the_session_is_cut_short() {
    let gw = TestGateway::start().await;
    let mut o = observer(&gw).await;
    // The session ends with the connection: the will goes at once, not in
    // an hour [MQTT-3.1.2-8].
    let (c, _) = Raw::connect_ok(gw.addr, delayed("short", 3600, 0, true)).await;
    drop(c);
    let p = within_for(Duration::from_secs(2), "the will", next_will(&mut o)).await;
    assert_eq!(p.topic, "will/short");
}

#[tokio::test]
async fn retained_will_is_stored_retained() {
    let gw = TestGateway::start().await;
    let mut o = observer(&gw).await;
    let (c, _) = Raw::connect_ok(
        gw.addr,
        with_will(
            raw::v4("rw"),
            will("will/rw", "offline", QoS::AtLeastOnce, true),
        ),
    )
    .await;
    drop(c);
    let live = next_will(&mut o).await;
    assert_eq!(live.payload, &b"offline"[..]);
    assert!(!live.retain, "live delivery clears RETAIN [MQTT-3.3.1-12]");

    let (mut late, _) = Raw::connect_ok(gw.addr, raw::v4("late")).await;
    late.subscribe("will/rw", QoS::AtLeastOnce).await;
    let p = late.recv_publish().await;
    assert_eq!(
        (p.topic.as_ref(), p.payload.as_ref(), p.retain, p.qos),
        ("will/rw", &b"offline"[..], true, QoS::AtLeastOnce)
    );
}

#[tokio::test]
async fn will_expiry_starts_when_the_will_is_published() {
    let gw = TestGateway::start().await;
    let mut o = observer(&gw).await;
    let mut w = will("will/exp", "bye", QoS::AtLeastOnce, false);
    w.properties.message.message_expiry_interval = Some(1);
    let (c, _) = Raw::connect_ok(gw.addr, with_will(raw::v5("wexp"), w)).await;
    // Connected for longer than the will's expiry interval, which counts
    // from its publication (MQTT 5.0 section 3.1.3.2.4), not from CONNECT.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    drop(c);
    let p = next_will(&mut o).await;
    assert_eq!(p.topic, "will/exp");
    assert_eq!(p.properties.message.message_expiry_interval, Some(1));
}

#[tokio::test]
async fn a_client_that_pings_is_kept_alive() {
    let gw = TestGateway::start().await;
    let mut o = observer(&gw).await;
    let mut c = raw::v4("pinger");
    c.keep_alive = 1;
    let (mut c, _) = Raw::connect_ok(
        gw.addr,
        with_will(c, will("will/pinger", "dead", QoS::AtMostOnce, false)),
    )
    .await;
    // 2.5 s, well past 1.5 x the keep alive, with a PINGREQ every 0.5 s
    // (the sleeps pace the client, they synchronise nothing).
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.send(Packet::PingReq).await;
        assert_eq!(c.recv().await, Packet::PingResp);
    }
    assert_no_will(&gw, &mut o).await;
}
