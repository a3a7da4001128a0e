//! What the client does with what the protocol allows and forbids: topic aliases, packets a
//! client never receives, a server's DISCONNECT, frames that split or join packets, and the
//! broker's maximum packet size.

use std::num::NonZeroU32;

use aviary_protocol::{ConnAck, Disconnect, Packet, ProtocolVersion, Publish, QoS, ReasonCode};
use bytes::BytesMut;

use super::{id, Harness};
use crate::engine::{ErrorKind, Event, Options};

#[test]
fn topic_aliases_work_both_ways() {
    let mut h = Harness::new(Options {
        protocol: ProtocolVersion::V5,
        properties: aviary_protocol::ConnectProperties {
            topic_alias_maximum: Some(5),
            ..Default::default()
        },
        ..Options::default()
    });
    h.open();
    let mut ack = ConnAck::new(ReasonCode::SUCCESS, false);
    ack.properties.topic_alias_maximum = Some(10);
    h.broker(ack.into());
    h.publish("pets/1/location", QoS::AtMostOnce);
    h.publish("pets/1/location", QoS::AtMostOnce);
    let sent = h.sent();
    assert!(
        matches!(&sent[1], Packet::Publish(p) if p.topic.is_empty() && p.properties.topic_alias == Some(id(1)))
    );
    let mut define = Publish::new("x/y", &b""[..]);
    define.properties.topic_alias = Some(id(2));
    h.broker(define.into());
    let mut use_alias = Publish::new("", &b""[..]);
    use_alias.properties.topic_alias = Some(id(2));
    h.broker(use_alias.into());
    let topics: Vec<String> =
        h.m.take_events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Message(p) => Some(p.topic.to_string()),
                _ => None,
            })
            .collect();
    assert_eq!(topics, ["x/y", "x/y"]);
}

#[test]
fn an_unknown_incoming_alias_disconnects_with_reason_0x94() {
    let mut h = Harness::v5();
    h.connect(false);
    let mut bad = Publish::new("", &b""[..]);
    bad.properties.topic_alias = Some(id(1));
    h.broker(bad.into());
    assert_eq!(
        h.sent(),
        [Packet::Disconnect(Disconnect::new(
            ReasonCode::TOPIC_ALIAS_INVALID
        ))]
    );
    let events = h.m.take_events();
    assert!(
        matches!(&events[0], Event::Error(e) if e.reason_code == Some(ReasonCode::TOPIC_ALIAS_INVALID))
    );
}

/// A packet only a server receives (here PINGREQ, which the client's build of the codec does
/// not even decode) is a protocol error, answered in MQTT 5 with DISCONNECT 0x82; during the
/// handshake the error says CONNACK must come first.
#[test]
fn a_packet_only_a_server_receives_is_a_protocol_error() {
    for (connected, message) in [
        (
            false,
            "Protocol Error: expected CONNACK first [MQTT-3.2.0-1]",
        ),
        (true, "Protocol Error: unexpected packet from the broker"),
    ] {
        let mut h = Harness::v5();
        if connected {
            h.connect(false);
        } else {
            h.open();
        }
        h.m.handle_bytes(&[0xC0, 0x00], h.now);
        assert_eq!(
            h.sent(),
            [Packet::Disconnect(Disconnect::new(
                ReasonCode::PROTOCOL_ERROR
            ))]
        );
        let events = h.m.take_events();
        let Some(e) = events.iter().find_map(|e| match e {
            Event::Error(e) => Some(e),
            _ => None,
        }) else {
            panic!("{events:?}");
        };
        assert_eq!(
            (e.kind, e.reason_code, e.message.as_str()),
            (
                ErrorKind::Protocol,
                Some(ReasonCode::PROTOCOL_ERROR),
                message
            )
        );
    }
}

#[test]
fn a_server_disconnect_is_reported_with_its_reason_and_reconnects() {
    let mut h = Harness::v5();
    h.connect(false);
    let mut d = Disconnect::new(ReasonCode::SERVER_SHUTTING_DOWN);
    d.properties.reason_string = Some("maintenance".into());
    h.broker(d.into());
    let events = h.m.take_events();
    let Event::Error(e) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (e.kind, e.reason_code),
        (
            ErrorKind::ServerDisconnect,
            Some(ReasonCode::SERVER_SHUTTING_DOWN)
        )
    );
    assert!(e.message.contains("maintenance"));
    assert!(h.m.poll_timeout().is_some(), "a retry is scheduled");
}

#[test]
fn packets_split_across_frames_and_many_per_frame_are_decoded() {
    let mut h = Harness::new(Options::default());
    h.open();
    let mut buf = BytesMut::new();
    Packet::from(ConnAck::new(ReasonCode::SUCCESS, false))
        .encode(h.version, &mut buf)
        .unwrap();
    for n in 0..3 {
        Packet::Publish(Publish::new(format!("t/{n}"), vec![0u8; 300]))
            .encode(h.version, &mut buf)
            .unwrap();
    }
    for byte in buf.chunks(7) {
        h.m.handle_bytes(byte, h.now);
    }
    let messages =
        h.m.take_events()
            .into_iter()
            .filter(|e| matches!(e, Event::Message(_)))
            .count();
    assert_eq!(messages, 3);
}

#[test]
fn without_reconnect_a_lost_connection_ends_the_client() {
    let mut h = Harness::new(Options {
        reconnect: crate::engine::Reconnect {
            enabled: false,
            ..Default::default()
        },
        ..Options::default()
    });
    h.connect(false);
    h.m.socket_closed("gone", h.now);
    assert_eq!(h.m.take_events().last(), Some(&Event::Ended));
    assert!(h.m.is_ended());
}

#[test]
fn a_publish_bigger_than_the_brokers_maximum_is_rejected() {
    let mut h = Harness::v5();
    h.open();
    let mut ack = ConnAck::new(ReasonCode::SUCCESS, false);
    ack.properties.maximum_packet_size = NonZeroU32::new(64);
    h.broker(ack.into());
    let big = Publish::new("t", vec![0u8; 100]);
    let err = h.m.publish(big, h.now).unwrap_err();
    assert_eq!(err.reason_code, Some(ReasonCode::PACKET_TOO_LARGE));
    assert!(h.sent().is_empty());
}
