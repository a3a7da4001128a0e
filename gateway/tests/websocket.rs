//! MQTT over WebSocket end to end (MQTT 5.0 section 6), with a raw
//! tokio-tungstenite client and the project's codec: frames are not
//! packets (a packet split across frames, several packets in one frame),
//! text frames are refused with close code 1003, MQTT 3.1.1 and 5.0,
//! WebSocket ping and close, coalescing of outgoing packets into frames,
//! and keep alive. The handshake (subprotocol, Origin, proxies, metrics)
//! is in `websocket_handshake.rs`; messages crossing between TCP and
//! WebSocket clients are in `websocket_cross.rs`.

mod common;
mod ws_common;

use std::time::{Duration, Instant};

use aviary_protocol::{Packet, ProtocolVersion, QoS, ReasonCode};
use bytes::{Bytes, BytesMut};
use common::raw::{self, Raw};
use common::WAIT;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use ws_common::ws::{connect, message, Event, WsRaw};
use ws_common::Gw;

const V4: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;

#[tokio::test]
async fn connect_split_byte_by_byte_across_frames() {
    let gw = Gw::start().await;
    for (version, id) in [(V4, "bytewise-4"), (V5, "bytewise-5")] {
        let mut c = WsRaw::open(gw.http, version).await;
        let bytes = c.encode(&[Packet::Connect(Box::new(connect(version, id)))]);
        for b in &bytes {
            c.send_binary(&[*b]).await;
        }
        let ack = c.connack().await;
        assert_eq!(ack.reason_code, ReasonCode::SUCCESS, "{version}");
        // The stream goes on: a PINGREQ split across two frames.
        c.send_binary(&[0xC0]).await;
        c.send_binary(&[0x00]).await;
        assert!(matches!(c.recv().await, Packet::PingResp), "{version}");
    }
}

#[tokio::test]
async fn several_packets_in_one_frame() {
    let gw = Gw::start().await;
    let mut c = WsRaw::open(gw.http, V5).await;
    let sub = c.subscribe_packet("packed/#", QoS::AtLeastOnce);
    let bytes = c.encode(&[
        Packet::Connect(Box::new(connect(V5, "packed"))),
        sub,
        Packet::PingReq,
    ]);
    c.send_binary(&bytes).await;
    assert!(matches!(c.recv().await, Packet::ConnAck(a) if a.reason_code == ReasonCode::SUCCESS));
    assert!(
        matches!(c.recv().await, Packet::SubAck(a) if a.reason_codes == [ReasonCode::GRANTED_QOS_1])
    );
    assert!(matches!(c.recv().await, Packet::PingResp));

    // A frame may also end in the middle of a packet and start the next.
    let publish = Packet::Publish(message("packed/x", b"spanning", QoS::AtMostOnce));
    let bytes = c.encode(&[publish, Packet::PingReq]);
    let cut = bytes.len() - 3;
    c.send_binary(&bytes[..cut]).await;
    c.send_binary(&bytes[cut..]).await;
    // Both are answered; the writer may put the PINGRESP first.
    let (mut publish, mut pong) = (None, false);
    while publish.is_none() || !pong {
        match c.recv().await {
            Packet::Publish(p) if publish.is_none() => publish = Some(p),
            Packet::PingResp if !pong => pong = true,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(publish.unwrap().payload, Bytes::from_static(b"spanning"));
}

#[tokio::test]
async fn text_frame_closes_with_1003() {
    let gw = Gw::start().await;
    // After CONNECT, and before it (the handshake reads the same stream).
    let (connected, _) = WsRaw::connect_ok(gw.http, connect(V5, "texter")).await;
    let fresh = WsRaw::open(gw.http, V4).await;
    for mut c in [connected, fresh] {
        c.send_frame(Message::text("{\"hello\":1}")).await;
        let events = c.expect_closed_within(WAIT).await;
        let close = events.iter().find_map(|e| match e {
            Event::Close(code) => Some(*code),
            _ => None,
        });
        assert_eq!(close, Some(Some(1003)), "events before the end: {events:?}");
    }
    common::eventually("the offender to be forgotten", || {
        gw.broker.clients().is_empty()
    })
    .await;
    // Everyone else keeps working.
    let (mut next, _) = WsRaw::connect_ok(gw.http, connect(V5, "after-texter")).await;
    next.send(Packet::PingReq).await;
    assert!(matches!(next.recv().await, Packet::PingResp));
}

#[tokio::test]
async fn mqtt5_over_websocket() {
    let gw = Gw::start().await;
    // An empty client id gets one assigned.
    let (mut c, ack) = WsRaw::connect_ok(gw.http, connect(V5, "")).await;
    assert!(!ack.session_present);
    let p = &ack.properties;
    let assigned = p
        .assigned_client_identifier
        .as_deref()
        .expect("assigned client identifier");
    assert!(!assigned.is_empty());
    assert_eq!(p.receive_maximum.map(|v| v.get()), Some(128));
    assert_eq!(p.maximum_packet_size.map(|v| v.get()), Some(1024 * 1024));
    assert_eq!(p.topic_alias_maximum, Some(64));
    assert_eq!(p.retain_available, Some(true));
    assert_eq!(p.wildcard_subscription_available, Some(true));
    assert_eq!(p.subscription_identifiers_available, Some(true));
    assert_eq!(p.shared_subscription_available, Some(true));
    assert!(gw
        .broker
        .clients()
        .iter()
        .any(|cl| &*cl.client_id == assigned));

    // A QoS 1 round trip to itself keeps the message's properties.
    c.subscribe("v5/#", QoS::AtLeastOnce).await;
    let mut m = message("v5/t", b"{\"lat\":1}", QoS::AtLeastOnce);
    m.packet_id = Some(c.packet_id());
    let props = m.properties.message.to_mut();
    props.content_type = Some("application/json".into());
    props.user_properties.push(("k".into(), "v".into()));
    c.send(Packet::Publish(m)).await;
    let (mut puback, mut delivered) = (None, None);
    while puback.is_none() || delivered.is_none() {
        match c.recv().await {
            Packet::PubAck(a) => puback = Some(a),
            Packet::Publish(p) => delivered = Some(p),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(puback.unwrap().reason_code, ReasonCode::SUCCESS);
    let p = delivered.unwrap();
    assert_eq!(p.qos, QoS::AtLeastOnce);
    assert_eq!(p.payload, Bytes::from_static(b"{\"lat\":1}"));
    let props = &p.properties.message;
    assert_eq!(props.content_type.as_deref(), Some("application/json"));
    assert_eq!(props.user_properties, [("k".into(), "v".into())]);
    c.send(Packet::PubAck(aviary_protocol::Ack::new(
        p.packet_id.unwrap(),
    )))
    .await;

    // A normal DISCONNECT ends with a close handshake.
    c.send(Packet::Disconnect(aviary_protocol::Disconnect::new(
        ReasonCode::NORMAL_DISCONNECTION,
    )))
    .await;
    let events = c.expect_closed_within(WAIT).await;
    assert!(
        matches!(events.as_slice(), [Event::Close(Some(1000))]),
        "{events:?}"
    );
}

#[tokio::test]
async fn mqtt311_over_websocket() {
    let gw = Gw::start().await;
    let (mut c, ack) = WsRaw::connect_ok(gw.http, connect(V4, "ws-311")).await;
    assert!(!ack.session_present);
    assert_eq!(ack.properties, Default::default(), "no properties in 3.1.1");
    c.subscribe("v4/+", QoS::AtMostOnce).await;
    c.send(Packet::Publish(message("v4/t", b"hello", QoS::AtMostOnce)))
        .await;
    let p = c.recv_publish().await;
    assert_eq!(&*p.topic, "v4/t");
    assert_eq!(p.payload, Bytes::from_static(b"hello"));
    let listed = gw.broker.clients();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].version, V4);
    assert_eq!(listed[0].transport.as_str(), "ws");
}

#[tokio::test]
async fn ping_is_answered_with_pong() {
    let gw = Gw::start().await;
    let mut c = WsRaw::open(gw.http, V5).await;
    // Before CONNECT, while the handshake waits for it...
    c.send_frame(Message::Ping(Bytes::from_static(b"early")))
        .await;
    match c.next_frame_within(WAIT).await {
        Some(Message::Pong(p)) => assert_eq!(p, Bytes::from_static(b"early")),
        other => panic!("expected pong, got {other:?}"),
    }
    // ...and after it.
    c.send(Packet::Connect(Box::new(connect(V5, "pinger"))))
        .await;
    assert_eq!(c.connack().await.reason_code, ReasonCode::SUCCESS);
    c.send_frame(Message::Ping(Bytes::from_static(b"are you there")))
        .await;
    match c.next_frame_within(WAIT).await {
        Some(Message::Pong(p)) => assert_eq!(p, Bytes::from_static(b"are you there")),
        other => panic!("expected pong, got {other:?}"),
    }
    // The MQTT session is untouched.
    c.send(Packet::PingReq).await;
    assert!(matches!(c.recv().await, Packet::PingResp));
}

#[tokio::test]
async fn client_close_is_answered_and_ends_the_connection() {
    let gw = Gw::start().await;
    let (mut c, _) = WsRaw::connect_ok(gw.http, connect(V5, "closer")).await;
    c.send(Packet::PingReq).await;
    assert!(matches!(c.recv().await, Packet::PingResp));
    assert_eq!(gw.broker.clients().len(), 1);
    c.send_frame(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    })))
    .await;
    let events = c.expect_closed_within(WAIT).await;
    assert!(
        matches!(events.as_slice(), [Event::Close(Some(1000))]),
        "{events:?}"
    );
    common::eventually("the client to be forgotten", || {
        gw.broker.clients().is_empty()
    })
    .await;
}

/// Sends 100 small QoS 0 messages in one burst over TCP to a WebSocket
/// subscriber and returns how many packets each frame it received held.
/// Every frame must hold whole packets, and the messages arrive in order.
async fn packets_per_frame(coalesce: bool) -> Vec<usize> {
    const N: usize = 100;
    let gw = Gw::start_with(|c| c.websocket.coalesce_frames = coalesce).await;
    let (mut sub, _) = WsRaw::connect_ok(gw.http, connect(V4, "burst-sub")).await;
    sub.subscribe("burst/#", QoS::AtMostOnce).await;
    let (mut publisher, _) = Raw::connect_ok(gw.mqtt, raw::v4("burst-pub")).await;
    let mut burst = BytesMut::new();
    for n in 0..N {
        let m = message("burst/t", &common::seq_payload(n), QoS::AtMostOnce);
        Packet::Publish(m).encode(V4, &mut burst).unwrap();
    }
    publisher.send_raw(&burst).await;

    let mut per_frame = Vec::new();
    let mut next = 0;
    while next < N {
        let data = match sub.next_frame_within(WAIT).await {
            Some(Message::Binary(data)) => data,
            other => panic!("expected a binary frame, got {other:?}"),
        };
        let mut buf = BytesMut::from(&data[..]);
        let mut count = 0;
        while let Some(p) = aviary_protocol::decode(&mut buf, V4, u32::MAX).unwrap() {
            match p {
                Packet::Publish(p) => assert_eq!(common::seq_of(&p.payload), next),
                other => panic!("expected PUBLISH, got {other:?}"),
            }
            next += 1;
            count += 1;
        }
        assert!(buf.is_empty(), "a frame ended inside a packet");
        per_frame.push(count);
    }
    per_frame
}

#[tokio::test]
async fn outgoing_packets_are_coalesced_into_frames() {
    let per_frame = packets_per_frame(true).await;
    assert!(
        per_frame.len() < 100,
        "100 messages took {} frames: {per_frame:?}",
        per_frame.len()
    );
}

#[tokio::test]
async fn one_packet_per_frame_when_coalescing_is_off() {
    let per_frame = packets_per_frame(false).await;
    assert_eq!(per_frame, vec![1; 100]);
}

#[tokio::test]
async fn keepalive_timeout_over_websocket() {
    let gw = Gw::start().await;
    let mut hello = connect(V5, "sleepy");
    hello.keep_alive = 1;
    let (mut c, _) = WsRaw::connect_ok(gw.http, hello).await;
    let started = Instant::now();
    let events = c.expect_closed_within(Duration::from_secs(3)).await;
    // 1.5 times the keep alive [MQTT-3.1.2-22], not earlier.
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "closed after {:?}",
        started.elapsed()
    );
    match events.as_slice() {
        [Event::Packet(p), Event::Close(_)] => match &**p {
            Packet::Disconnect(d) => assert_eq!(d.reason_code, ReasonCode::KEEP_ALIVE_TIMEOUT),
            other => panic!("expected DISCONNECT 0x8D, got {other:?}"),
        },
        other => panic!("expected DISCONNECT 0x8D then a close frame, got {other:?}"),
    }
}
