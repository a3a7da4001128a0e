//! Publishing and subscribing against the scripted broker: the QoS exchanges, the in-flight
//! window, the offline queue and what a reconnect resends or restores.

use std::num::{NonZeroU16, NonZeroU32};

use aviary_protocol::{
    Ack, ConnAck, Packet, ProtocolVersion, Publish, QoS, ReasonCode, SubAck, SubscribeProperties,
    TopicFilter, UnsubAck,
};

use super::{filter, id, suback, Harness};
use crate::engine::{Done, ErrorKind, Event, Options};

#[test]
fn qos0_completes_when_written_and_qos1_on_puback() {
    let mut h = Harness::v5();
    h.connect(false);
    let t0 = h.publish("a", QoS::AtMostOnce);
    let t1 = h.publish("b", QoS::AtLeastOnce);
    let sent = h.sent();
    assert!(matches!(&sent[1], Packet::Publish(p) if p.packet_id == Some(id(1))));
    assert_eq!(h.completions(), [(t0, Ok(Done::Published))]);
    h.broker(Packet::PubAck(Ack::new(id(1))));
    assert_eq!(h.completions(), [(t1, Ok(Done::Published))]);
    let t2 = h.publish("c", QoS::AtLeastOnce);
    h.sent();
    h.broker(Packet::PubAck(Ack::with_reason(
        id(2),
        ReasonCode::NOT_AUTHORIZED,
    )));
    assert_eq!(h.completions(), [(t2, Err(ErrorKind::PublishFailed))]);
}

#[test]
fn qos2_publish_goes_through_pubrec_pubrel_pubcomp() {
    let mut h = Harness::v5();
    h.connect(false);
    let t = h.publish("a", QoS::ExactlyOnce);
    h.sent();
    h.broker(Packet::PubRec(Ack::new(id(1))));
    assert_eq!(h.sent(), [Packet::PubRel(Ack::new(id(1)))]);
    assert!(h.completions().is_empty());
    h.broker(Packet::PubComp(Ack::new(id(1))));
    assert_eq!(h.completions(), [(t, Ok(Done::Published))]);
}

#[test]
fn the_in_flight_window_follows_the_brokers_receive_maximum() {
    let mut h = Harness::v5();
    h.open();
    let mut ack = ConnAck::new(ReasonCode::SUCCESS, false);
    ack.properties.receive_maximum = NonZeroU16::new(2);
    h.broker(ack.into());
    for topic in ["a", "b", "c"] {
        h.publish(topic, QoS::AtLeastOnce);
    }
    assert_eq!(h.sent().len(), 2);
    assert_eq!(h.m.queued(), 1);
    h.broker(Packet::PubAck(Ack::new(id(1))));
    let sent = h.sent();
    assert!(matches!(&sent[..], [Packet::Publish(p)] if &*p.topic == "c"));
}

#[test]
fn incoming_qos1_is_acked_and_qos2_delivered_once() {
    let mut h = Harness::v5();
    h.connect(false);
    let mut p1 = Publish::new("a", &b"1"[..]);
    p1.qos = QoS::AtLeastOnce;
    p1.packet_id = Some(id(5));
    h.broker(p1.into());
    assert_eq!(h.sent(), [Packet::PubAck(Ack::new(id(5)))]);
    let mut p2 = Publish::new("b", &b"2"[..]);
    p2.qos = QoS::ExactlyOnce;
    p2.packet_id = Some(id(6));
    h.broker(p2.clone().into());
    p2.dup = true;
    h.broker(p2.into()); // redelivered before PUBREL: not delivered again
    let messages =
        h.m.take_events()
            .into_iter()
            .filter(|e| matches!(e, Event::Message(_)))
            .count();
    assert_eq!(messages, 2);
    assert_eq!(
        h.sent(),
        [
            Packet::PubRec(Ack::new(id(6))),
            Packet::PubRec(Ack::new(id(6)))
        ]
    );
    h.broker(Packet::PubRel(Ack::new(id(6))));
    assert_eq!(h.sent(), [Packet::PubComp(Ack::new(id(6)))]);
}

#[test]
fn subscribe_resolves_with_granted_qos_and_rejects_refusals_with_the_reason() {
    let mut h = Harness::v5();
    h.connect(false);
    let ok =
        h.m.subscribe(vec![filter("pets/+/location", QoS::AtLeastOnce)], h.now)
            .unwrap();
    let bad =
        h.m.subscribe(vec![filter("secret/#", QoS::AtMostOnce)], h.now)
            .unwrap();
    assert_eq!(h.sent().len(), 2);
    let suback = |n, code| {
        Packet::SubAck(SubAck {
            packet_id: id(n),
            properties: Default::default(),
            reason_codes: vec![code],
        })
    };
    h.broker(suback(1, ReasonCode::GRANTED_QOS_1));
    h.broker(suback(2, ReasonCode::NOT_AUTHORIZED));
    let done = h.completions();
    assert_eq!(
        done[0],
        (ok, Ok(Done::Subscribed(vec![ReasonCode::GRANTED_QOS_1])))
    );
    assert_eq!(done[1], (bad, Err(ErrorKind::SubscribeFailed)));
    let un =
        h.m.unsubscribe(vec![TopicFilter::new("pets/+/location").unwrap()], h.now)
            .unwrap();
    assert!(matches!(&h.sent()[..], [Packet::Unsubscribe(_)]));
    h.broker(Packet::UnsubAck(UnsubAck {
        packet_id: id(3),
        properties: Default::default(),
        reason_codes: vec![ReasonCode::SUCCESS],
    }));
    assert_eq!(
        h.completions(),
        [(un, Ok(Done::Unsubscribed(vec![ReasonCode::SUCCESS])))]
    );
}

#[test]
fn publishes_made_offline_are_queued_bounded_and_flushed_after_reconnect() {
    let mut h = Harness::new(Options {
        protocol: ProtocolVersion::V5,
        queue: crate::engine::QueueLimits {
            max_messages: 2,
            max_bytes: 1_000,
        },
        ..Options::default()
    });
    h.connect(false);
    h.m.socket_closed("network down", h.now);
    let events = h.m.take_events();
    assert!(
        matches!(&events[..], [Event::Closed(Some(e)), Event::Offline, Event::ReconnectScheduled { attempt: 2, .. }] if e.kind == ErrorKind::ConnectionLost)
    );
    let first = h.publish("q/1", QoS::AtMostOnce);
    h.publish("q/2", QoS::AtLeastOnce);
    h.publish("q/3", QoS::ExactlyOnce);
    assert_eq!(
        h.completions(),
        [(first, Err(ErrorKind::QueueFull))],
        "oldest dropped"
    );
    assert!(
        h.m.take_output().is_none(),
        "nothing is written without a socket"
    );
    h.fire_timer();
    h.m.socket_opened(h.now);
    h.sent();
    h.broker(ConnAck::new(ReasonCode::SUCCESS, false).into());
    let topics: Vec<String> = h
        .sent()
        .into_iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p.topic.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(topics, ["q/2", "q/3"]);
    assert_eq!(h.m.queued(), 0);
}

#[test]
fn in_flight_messages_are_resent_with_dup_after_reconnect() {
    let mut h = Harness::v5();
    h.connect(false);
    let t1 = h.publish("a", QoS::AtLeastOnce);
    h.publish("b", QoS::ExactlyOnce);
    h.sent();
    h.broker(Packet::PubRec(Ack::new(id(2))));
    h.sent();
    h.reconnect(true);
    let sent = h.sent();
    assert!(matches!(&sent[0], Packet::Publish(p) if p.dup && p.packet_id == Some(id(1))));
    assert_eq!(sent[1], Packet::PubRel(Ack::new(id(2))));
    h.broker(Packet::PubAck(Ack::new(id(1))));
    assert_eq!(h.completions(), [(t1, Ok(Done::Published))]);
}

#[test]
fn subscriptions_are_restored_only_when_the_broker_kept_no_session() {
    let mut h = Harness::v5();
    h.connect(false);
    h.m.subscribe(vec![filter("a/#", QoS::AtLeastOnce)], h.now)
        .unwrap();
    h.sent();
    h.broker(Packet::SubAck(SubAck {
        packet_id: id(1),
        properties: Default::default(),
        reason_codes: vec![ReasonCode::GRANTED_QOS_1],
    }));
    for (session_present, resubscribed) in [(true, false), (false, true)] {
        h.reconnect(session_present);
        let sent = h.sent();
        let found = sent
            .iter()
            .any(|p| matches!(p, Packet::Subscribe(s) if s.filters[0].0 == "a/#"));
        assert_eq!(
            found, resubscribed,
            "session_present={session_present}: {sent:?}"
        );
    }
}

#[test]
fn subscribe_properties_are_sent_and_kept_for_the_resubscription() {
    let mut h = Harness::v5();
    h.connect(false);
    let props = SubscribeProperties {
        subscription_identifier: NonZeroU32::new(7),
        user_properties: vec![("k".into(), "v".into())],
    };
    h.m.subscribe_with(vec![filter("a/#", QoS::AtLeastOnce)], props.clone(), h.now)
        .unwrap();
    h.m.subscribe(vec![filter("b", QoS::AtMostOnce)], h.now)
        .unwrap();
    let sent = h.sent();
    assert!(
        matches!(&sent[0], Packet::Subscribe(s) if s.properties == props),
        "{sent:?}"
    );
    assert!(
        matches!(&sent[1], Packet::Subscribe(s) if s.properties == SubscribeProperties::default())
    );
    h.broker(suback(1, vec![ReasonCode::GRANTED_QOS_1]));
    h.broker(suback(2, vec![ReasonCode::GRANTED_QOS_0]));
    h.reconnect(false);
    // One SUBSCRIBE per set of properties: the identifier stays with its own filter.
    let sent = h.sent();
    let subs: Vec<_> = sent
        .iter()
        .filter_map(|p| match p {
            Packet::Subscribe(s) => {
                Some((s.filters[0].0.as_str().to_owned(), s.properties.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        subs,
        [
            ("a/#".to_owned(), props),
            ("b".to_owned(), SubscribeProperties::default())
        ]
    );
}

#[test]
fn unsubscribe_user_properties_are_sent() {
    let mut h = Harness::v5();
    h.connect(false);
    let f = TopicFilter::new("a/#".to_owned()).unwrap();
    h.m.unsubscribe_with(vec![f], vec![("k".into(), "v".into())], h.now)
        .unwrap();
    let sent = h.sent();
    assert!(matches!(&sent[0], Packet::Unsubscribe(u) if u.user_properties.len() == 1));
}
