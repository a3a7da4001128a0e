//! Messages cross between TCP and WebSocket clients: rumqttc over TCP and
//! rumqttc over `ws://HOST:PORT/mqtt` (an independent WebSocket client that
//! insists on the `mqtt` subprotocol being echoed), at QoS 0, 1 and 2 both
//! ways and in both protocol versions, retained messages set on one side
//! and delivered on the other, and the will of a WebSocket client whose
//! socket died delivered to a TCP subscriber.

mod common;
mod ws_common;

use std::time::Duration;

use bytes::Bytes;
use common::rumqtt::{v5_options, V4, V5};
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::QoS as QoS4;
use ws_common::Gw;

const QOS4: [QoS4; 3] = [QoS4::AtMostOnce, QoS4::AtLeastOnce, QoS4::ExactlyOnce];
const QOS5: [QoS5; 3] = [QoS5::AtMostOnce, QoS5::AtLeastOnce, QoS5::ExactlyOnce];

/// MQTT 3.1.1 options for `id` over WebSocket to `gw`.
fn ws_v4_options(gw: &Gw, id: &str) -> rumqttc::MqttOptions {
    let mut o = rumqttc::MqttOptions::new(id, gw.ws_url(), gw.http.port());
    o.set_transport(rumqttc::Transport::Ws);
    o.set_keep_alive(Duration::from_secs(30));
    o
}

/// MQTT 5 options for `id` over WebSocket to `gw`.
fn ws_v5_options(gw: &Gw, id: &str) -> rumqttc::v5::MqttOptions {
    let mut o = rumqttc::v5::MqttOptions::new(id, gw.ws_url(), gw.http.port());
    o.set_transport(rumqttc::Transport::Ws);
    o.set_keep_alive(Duration::from_secs(30));
    o
}

fn topic5(p: &rumqttc::v5::mqttbytes::v5::Publish) -> String {
    String::from_utf8(p.topic.to_vec()).expect("UTF-8 topic")
}

/// A 3.1.1 client on one transport and a 5.0 client on the other send
/// each other one message at every QoS.
async fn exchange(v4: &mut V4, v5: &mut V5, label: &str) {
    v4.subscribe("to-v4/#", QoS4::ExactlyOnce).await;
    v5.subscribe("to-v5/#", QoS5::ExactlyOnce).await;
    for (q4, q5) in QOS4.into_iter().zip(QOS5) {
        let payload = format!("{label} v4->v5 {q4:?}");
        v4.publish(&format!("to-v5/{q4:?}"), q4, false, payload.clone())
            .await;
        let p = v5.recv_publish().await;
        assert_eq!(topic5(&p), format!("to-v5/{q4:?}"));
        assert_eq!(p.payload, Bytes::from(payload));
        assert_eq!(p.qos, q5, "{label}: granted QoS 2, published at {q4:?}");
        assert!(!p.retain);

        let payload = format!("{label} v5->v4 {q5:?}");
        v5.publish(&format!("to-v4/{q5:?}"), q5, false, payload.clone())
            .await;
        let p = v4.recv_publish().await;
        assert_eq!(p.topic, format!("to-v4/{q5:?}"));
        assert_eq!(p.payload, Bytes::from(payload));
        assert_eq!(p.qos, q4, "{label}");
    }
}

#[tokio::test]
async fn tcp_v311_and_ws_v5_exchange_at_every_qos() {
    let gw = Gw::start().await;
    let mut tcp = V4::connect_id(gw.mqtt, "tcp-311").await;
    let (mut ws, _) = V5::connect(ws_v5_options(&gw, "ws-5")).await;
    exchange(&mut tcp, &mut ws, "tcp 3.1.1 / ws 5").await;
    let transports: Vec<_> = gw
        .broker
        .clients()
        .into_iter()
        .map(|c| (c.client_id.to_string(), c.transport.as_str()))
        .collect();
    assert!(
        transports.contains(&("ws-5".to_owned(), "ws")),
        "{transports:?}"
    );
    assert!(
        transports.contains(&("tcp-311".to_owned(), "tcp")),
        "{transports:?}"
    );
}

#[tokio::test]
async fn ws_v311_and_tcp_v5_exchange_at_every_qos() {
    let gw = Gw::start().await;
    let (mut ws, _) = V4::connect(ws_v4_options(&gw, "ws-311")).await;
    let mut tcp = V5::connect_id(gw.mqtt, "tcp-5").await;
    exchange(&mut ws, &mut tcp, "ws 3.1.1 / tcp 5").await;
}

#[tokio::test]
async fn retained_messages_cross_transports() {
    let gw = Gw::start().await;
    // Set one retained message from each side; the PUBACK means stored.
    let mut tcp_pub = V4::connect_id(gw.mqtt, "tcp-retainer").await;
    tcp_pub
        .publish("retained/tcp", QoS4::AtLeastOnce, true, "set over tcp")
        .await;
    tcp_pub
        .wait_for("PUBACK", |p| {
            matches!(p, rumqttc::Packet::PubAck(_)).then_some(())
        })
        .await;
    let (ws_pub, _) = V5::connect(ws_v5_options(&gw, "ws-retainer")).await;
    let mut ws_pub = ws_pub;
    ws_pub
        .publish("retained/ws", QoS5::AtLeastOnce, true, "set over ws")
        .await;
    ws_pub
        .wait_for("PUBACK", |p| {
            matches!(p, rumqttc::v5::mqttbytes::v5::Packet::PubAck(_)).then_some(())
        })
        .await;

    let (mut ws_sub, _) = V4::connect(ws_v4_options(&gw, "ws-late")).await;
    ws_sub.subscribe("retained/tcp", QoS4::AtLeastOnce).await;
    let p = ws_sub.recv_publish().await;
    assert_eq!(p.payload, Bytes::from_static(b"set over tcp"));
    assert!(p.retain, "delivered as retained");

    let mut tcp_sub = V5::connect(v5_options(gw.mqtt, "tcp-late")).await.0;
    tcp_sub.subscribe("retained/ws", QoS5::AtLeastOnce).await;
    let p = tcp_sub.recv_publish().await;
    assert_eq!(p.payload, Bytes::from_static(b"set over ws"));
    assert!(p.retain, "delivered as retained");
}

#[tokio::test]
async fn will_of_a_dead_websocket_client_reaches_tcp() {
    let gw = Gw::start().await;
    let mut watcher = V5::connect_id(gw.mqtt, "tcp-watcher").await;
    watcher.subscribe("pets/+/status", QoS5::AtLeastOnce).await;

    for (id, v5) in [("collar-ws-4", false), ("collar-ws-5", true)] {
        let topic = format!("pets/{id}/status");
        if v5 {
            let mut o = ws_v5_options(&gw, id);
            let will = rumqttc::v5::mqttbytes::v5::LastWill::new(
                &topic,
                "{\"online\":false}",
                QoS5::AtLeastOnce,
                false,
                None,
            );
            o.set_last_will(will);
            V5::connect(o).await.0.kill();
        } else {
            let mut o = ws_v4_options(&gw, id);
            o.set_last_will(rumqttc::LastWill::new(
                &topic,
                "{\"online\":false}",
                QoS4::AtLeastOnce,
                false,
            ));
            V4::connect(o).await.0.kill();
        }
        let p = watcher.recv_publish().await;
        assert_eq!(topic5(&p), topic);
        assert_eq!(p.payload, Bytes::from_static(b"{\"online\":false}"));
        assert_eq!(p.qos, QoS5::AtLeastOnce);
    }
    // A clean DISCONNECT over WebSocket discards the will.
    let mut o = ws_v4_options(&gw, "collar-polite");
    o.set_last_will(rumqttc::LastWill::new(
        "pets/collar-polite/status",
        "{\"online\":false}",
        QoS4::AtLeastOnce,
        false,
    ));
    V4::connect(o).await.0.disconnect().await;
    // Once the broker has let go of the connection, a will would have been
    // published; a marker sent after that must be the next message.
    common::eventually("the polite client to be forgotten", || {
        gw.broker
            .clients()
            .iter()
            .all(|c| &*c.client_id != "collar-polite")
    })
    .await;
    watcher
        .publish("pets/marker/status", QoS5::AtLeastOnce, false, "marker")
        .await;
    let p = watcher.recv_publish().await;
    assert_eq!(
        topic5(&p),
        "pets/marker/status",
        "the will was published: {p:?}"
    );
}
