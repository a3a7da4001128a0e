//! The state machine driven by a scripted broker and simulated time.

use std::num::{NonZeroU16, NonZeroU32};

use aviary_protocol::{
    decode, Ack, ConnAck, Disconnect, LastWill, Packet, ProtocolVersion, Publish, QoS, ReasonCode,
    SubAck, SubscribeProperties, SubscriptionOptions, TopicFilter, TopicName, UnsubAck,
};
use bytes::BytesMut;

use super::Machine;
use crate::engine::{Done, ErrorKind, Event, Options, Token};

/// A machine plus the broker's side of the conversation.
struct Harness {
    m: Machine,
    now: u64,
    version: ProtocolVersion,
}

fn id(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap()
}

impl Harness {
    fn new(options: Options) -> Self {
        let version = options.protocol;
        Self {
            m: Machine::new(options, 7),
            now: 1_000,
            version,
        }
    }

    fn v5() -> Self {
        Self::new(Options {
            protocol: ProtocolVersion::V5,
            client_id: "c1".into(),
            ..Options::default()
        })
    }

    /// Starts, opens the socket and returns the CONNECT the client sent.
    fn open(&mut self) -> Packet {
        self.m.start(self.now);
        self.m.socket_opened(self.now);
        let mut sent = self.sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        sent.remove(0)
    }

    /// Opens and accepts the connection, returning the events up to CONNACK.
    fn connect(&mut self, session_present: bool) -> Vec<Event> {
        self.open();
        self.broker(ConnAck::new(ReasonCode::SUCCESS, session_present).into());
        self.m.take_events()
    }

    fn broker(&mut self, packet: Packet) {
        let mut buf = BytesMut::new();
        packet.encode(self.version, &mut buf).unwrap();
        self.m.handle_bytes(&buf, self.now);
    }

    /// Decodes everything the client wrote since the last call.
    fn sent(&mut self) -> Vec<Packet> {
        let mut buf = BytesMut::from(&self.m.take_output().unwrap_or_default()[..]);
        let mut packets = Vec::new();
        while let Some(p) = decode(&mut buf, self.version, u32::MAX).unwrap() {
            packets.push(p);
        }
        assert!(buf.is_empty());
        packets
    }

    fn advance_to(&mut self, t: u64) {
        self.now = t;
        self.m.handle_timeout(t);
    }

    /// Fires the machine's timer, as the browser layer would, and returns when.
    fn fire_timer(&mut self) -> u64 {
        let t = self.m.poll_timeout().expect("a timer is due");
        self.advance_to(t);
        t
    }

    fn publish(&mut self, topic: &str, qos: QoS) -> Token {
        let mut p = Publish::new(topic.to_owned(), &b"x"[..]);
        p.qos = qos;
        self.m.publish(p, self.now).unwrap()
    }

    fn completions(&mut self) -> Vec<(Token, Result<Done, ErrorKind>)> {
        self.m
            .take_events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Completed { token, result } => Some((token, result.map_err(|e| e.kind))),
                _ => None,
            })
            .collect()
    }
}

fn filter(s: &str, qos: QoS) -> (TopicFilter, SubscriptionOptions) {
    (
        TopicFilter::new(s.to_owned()).unwrap(),
        SubscriptionOptions::qos(qos),
    )
}

#[test]
fn connect_carries_the_options_and_connack_reports_connected() {
    let mut h = Harness::new(Options {
        protocol: ProtocolVersion::V5,
        client_id: "tab-1".into(),
        clean_start: false,
        keep_alive: 30,
        username: Some("u".into()),
        password: Some("p".into()),
        will: Some(LastWill {
            topic: TopicName::new("pets/1/status").unwrap(),
            payload: r#"{"online":false}"#.into(),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Default::default(),
        }),
        ..Options::default()
    });
    let Packet::Connect(c) = h.open() else {
        panic!("not CONNECT")
    };
    assert_eq!(
        (&*c.client_id, c.clean_start, c.keep_alive),
        ("tab-1", false, 30)
    );
    assert_eq!(c.username.as_deref(), Some("u"));
    assert!(c
        .will
        .as_ref()
        .is_some_and(|w| w.retain && w.qos == QoS::AtLeastOnce));
    let mut ack = ConnAck::new(ReasonCode::SUCCESS, true);
    ack.properties.assigned_client_identifier = Some("assigned".into());
    h.broker(ack.into());
    let events = h.m.take_events();
    assert!(
        matches!(&events[..], [Event::Open { attempt: 1 }, Event::Connected(c)] if c.session_present)
    );
    assert!(h.m.is_connected());
    assert_eq!(
        h.m.options().client_id,
        "assigned",
        "reconnects resume the assigned id"
    );
}

#[test]
fn every_attempt_sends_the_same_connect() {
    // The will, the password and the properties are moved into CONNECT and back: a second
    // attempt must still carry them.
    let mut options = Options {
        protocol: ProtocolVersion::V5,
        client_id: "tab-1".into(),
        password: Some("p".into()),
        will: Some(LastWill {
            topic: TopicName::new("pets/1/status").unwrap(),
            payload: "gone".into(),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Default::default(),
        }),
        ..Options::default()
    };
    options.properties.session_expiry_interval = Some(60);
    options.properties.user_properties = vec![("k".into(), "v".into())];
    let mut h = Harness::new(options);
    let first = h.open();
    h.m.socket_closed("lost", h.now);
    h.fire_timer();
    h.m.socket_opened(h.now);
    let again = h.sent();
    assert_eq!(again, [first]);
    assert_eq!(h.m.options().properties.session_expiry_interval, Some(60));
}

#[test]
fn a_refused_connack_is_an_error_with_its_reason_code_then_a_retry() {
    let mut h = Harness::v5();
    h.open();
    h.m.take_events();
    h.broker(ConnAck::new(ReasonCode::BAD_USER_NAME_OR_PASSWORD, false).into());
    let events = h.m.take_events();
    let Event::Error(e) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(e.kind, ErrorKind::ConnectionRefused);
    assert_eq!(e.reason_code, Some(ReasonCode::BAD_USER_NAME_OR_PASSWORD));
    assert_eq!(events[1], Event::CloseSocket);
    assert!(matches!(events[2], Event::Closed(Some(_))));
    let retry = h.fire_timer();
    assert!(
        (500..=1_000).contains(&(retry - 1_000)),
        "first backoff in [0.5 s, 1 s]"
    );
    assert_eq!(h.m.take_events(), [Event::Open { attempt: 2 }]);
}

#[test]
fn connect_timeout_closes_and_backs_off_exponentially() {
    let mut h = Harness::new(Options {
        connect_timeout_ms: 5_000,
        ..Options::default()
    });
    h.m.start(h.now);
    let mut previous = h.now;
    let mut gaps = Vec::new();
    for attempt in 1..=5 {
        assert_eq!(h.m.take_events().first(), Some(&Event::Open { attempt }));
        let t = h.fire_timer(); // connect timeout
        assert_eq!(t - previous, 5_000);
        let events = h.m.take_events();
        assert_eq!(events[0], Event::CloseSocket);
        assert!(
            matches!(&events[1], Event::Closed(Some(e)) if e.kind == ErrorKind::ConnectTimeout)
        );
        previous = h.fire_timer(); // backoff elapsed: next attempt
        gaps.push(previous - t);
    }
    for (gap, window) in gaps.iter().zip([1_000, 2_000, 4_000, 8_000, 16_000]) {
        assert!((window / 2..=window).contains(gap), "{gaps:?}");
    }
}

#[test]
fn the_reported_reconnect_delay_is_the_backoff_chosen() {
    let mut h = Harness::new(Options {
        connect_timeout_ms: 5_000,
        ..Options::default()
    });
    // The same seed and reconnect options as the harness's machine: the same delays.
    let mut rng = crate::engine::Rng::new(7);
    let reconnect = Options::default().reconnect;
    let mut backoff =
        crate::engine::Backoff::new(reconnect.initial_delay_ms, reconnect.max_delay_ms);
    h.m.start(h.now);
    assert_eq!(h.m.next_attempt_in(h.now), None, "connecting, not waiting");
    for attempt in 2..=6 {
        h.m.take_events();
        let lost_at = h.fire_timer(); // connect timeout
        let expected = backoff.next_delay(&mut rng);
        let events = h.m.take_events();
        assert_eq!(
            events.last(),
            Some(&Event::ReconnectScheduled {
                attempt,
                delay_ms: expected
            }),
            "{events:?}"
        );
        assert_eq!(h.m.next_attempt_in(lost_at), Some(expected));
        assert_eq!(h.m.next_attempt_in(lost_at + 100), Some(expected - 100));
        assert_eq!(
            h.m.poll_timeout(),
            Some(lost_at + expected),
            "the timer agrees"
        );
        let opened_at = h.fire_timer();
        assert_eq!(opened_at - lost_at, expected);
        assert_eq!(h.m.next_attempt_in(opened_at), None, "attempt under way");
        assert_eq!(h.m.take_events().first(), Some(&Event::Open { attempt }));
    }
    h.m.disconnect(h.now);
    assert_eq!(h.m.next_attempt_in(h.now), None);
}

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
    h.m.socket_closed("gone", h.now);
    h.fire_timer();
    h.m.socket_opened(h.now);
    h.sent();
    h.broker(ConnAck::new(ReasonCode::SUCCESS, true).into());
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
        h.m.socket_closed("gone", h.now);
        h.fire_timer();
        h.m.socket_opened(h.now);
        h.sent();
        h.broker(ConnAck::new(ReasonCode::SUCCESS, session_present).into());
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
fn keep_alive_pings_early_and_a_silent_broker_triggers_a_reconnect() {
    let mut h = Harness::new(Options {
        keep_alive: 10,
        ..Options::default()
    });
    h.connect(false);
    assert_eq!(h.fire_timer(), 1_000 + 7_500);
    assert_eq!(h.sent(), [Packet::PingReq]);
    h.broker(Packet::PingResp);
    assert_eq!(h.fire_timer(), 8_500 + 7_500);
    assert_eq!(h.sent(), [Packet::PingReq]);
    assert_eq!(
        h.fire_timer(),
        16_000 + 10_000,
        "no answer for one interval"
    );
    let events = h.m.take_events();
    assert_eq!(events[0], Event::CloseSocket);
    assert!(matches!(&events[1], Event::Closed(Some(e)) if e.kind == ErrorKind::KeepAliveTimeout));
}

/// Background tabs throttle timers to once a minute. Here the timer never fires at all, yet
/// messages arriving every 5 s keep the pings flowing on schedule: keep-alive is checked on
/// every incoming frame, against absolute time, so the broker (which allows 1.5 x keep-alive
/// of client silence) never sees the client go quiet.
#[test]
fn keep_alive_survives_throttled_timers_when_messages_flow() {
    let mut h = Harness::new(Options {
        keep_alive: 10,
        ..Options::default()
    });
    h.connect(false);
    let mut last_client_send = h.now;
    let mut pings = 0;
    for tick in 1..=60 {
        h.now = 1_000 + tick * 5_000;
        h.broker(Publish::new("feed", &b"x"[..]).into());
        if h.sent().contains(&Packet::PingReq) {
            pings += 1;
            assert!(
                h.now - last_client_send <= 15_000,
                "broker would have dropped us"
            );
            last_client_send = h.now;
            h.broker(Packet::PingResp);
        }
    }
    assert!(pings >= 29, "a ping about every 10 s: {pings}");
    assert!(h.m.is_connected());
}

/// A timer that fires very late (intensive throttling) must not count as a missed PINGRESP:
/// the decision is made from timestamps, and one late check sends exactly one ping.
#[test]
fn a_very_late_timer_sends_one_ping_and_does_not_time_out() {
    let mut h = Harness::new(Options {
        keep_alive: 30,
        ..Options::default()
    });
    h.connect(false);
    h.advance_to(61_000); // due at 23.5 s, fired at 61 s
    assert_eq!(h.sent(), [Packet::PingReq]);
    h.advance_to(61_001);
    assert!(h.sent().is_empty());
    h.broker(Packet::PingResp);
    h.advance_to(120_000);
    assert!(h.m.is_connected());
}

#[test]
fn offline_suspends_retries_and_online_retries_at_once() {
    let mut h = Harness::v5();
    h.connect(false);
    h.m.set_online(false, h.now);
    h.m.socket_closed("offline", h.now);
    h.m.take_events();
    assert_eq!(h.m.poll_timeout(), None, "no retry while offline");
    h.now += 100;
    h.m.set_online(true, h.now);
    assert_eq!(h.m.take_events(), [Event::Open { attempt: 2 }]);
    h.m.set_online(true, h.now);
    assert!(h.m.take_events().is_empty(), "never two sockets at once");
}

#[test]
fn online_cuts_a_backoff_short_but_never_opens_a_second_socket() {
    let mut h = Harness::v5();
    h.connect(false);
    h.m.set_online(true, h.now);
    assert!(h.m.take_events().is_empty(), "already connected");
    h.m.socket_closed("gone", h.now);
    h.m.take_events();
    h.m.set_online(true, h.now + 1);
    assert_eq!(h.m.take_events(), [Event::Open { attempt: 2 }]);
    h.advance_to(h.now + 20_000); // the old backoff deadline passes: still one socket
    let opens =
        h.m.take_events()
            .iter()
            .filter(|e| matches!(e, Event::Open { .. }))
            .count();
    assert_eq!(opens, 0);
}

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
fn disconnect_sends_disconnect_and_fails_what_is_pending() {
    let mut h = Harness::v5();
    h.connect(false);
    let t = h.publish("a", QoS::AtLeastOnce);
    h.sent();
    h.m.disconnect(h.now);
    assert_eq!(h.sent(), [Packet::Disconnect(Disconnect::default())]);
    let events = h.m.take_events();
    assert_eq!(events[..2], [Event::CloseSocket, Event::Closed(None)]);
    assert!(
        matches!(&events[2], Event::Completed { token, result: Err(e) } if *token == t && e.kind == ErrorKind::ClientEnded)
    );
    assert_eq!(events.last(), Some(&Event::Ended));
    assert_eq!(h.m.poll_timeout(), None);
    assert_eq!(
        h.m.publish(Publish::new("a", &b""[..]), h.now)
            .unwrap_err()
            .kind,
        ErrorKind::ClientEnded
    );
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

fn suback(n: u16, codes: Vec<ReasonCode>) -> Packet {
    Packet::SubAck(SubAck {
        packet_id: id(n),
        properties: Default::default(),
        reason_codes: codes,
    })
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
    h.m.socket_closed("gone", h.now);
    h.fire_timer();
    h.m.socket_opened(h.now);
    h.sent();
    h.broker(ConnAck::new(ReasonCode::SUCCESS, false).into());
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

#[test]
fn a_graceful_end_waits_for_in_flight_acks_then_disconnects() {
    let mut h = Harness::v5();
    h.connect(false);
    let t1 = h.publish("a", QoS::AtLeastOnce);
    let t2 = h.publish("b", QoS::ExactlyOnce);
    h.sent();
    h.m.end_gracefully(5_000, h.now);
    assert!(h.m.is_closing() && h.m.is_connected());
    assert!(
        h.sent().is_empty(),
        "no DISCONNECT while messages are in flight"
    );
    // New work is refused while closing.
    assert_eq!(
        h.m.publish(Publish::new("c", &b""[..]), h.now)
            .unwrap_err()
            .kind,
        ErrorKind::ClientEnded
    );
    h.broker(Packet::PubAck(Ack::new(id(1))));
    assert!(h.sent().is_empty());
    h.broker(Packet::PubRec(Ack::new(id(2))));
    assert_eq!(h.sent(), [Packet::PubRel(Ack::new(id(2)))]);
    h.broker(Packet::PubComp(Ack::new(id(2))));
    assert_eq!(h.sent(), [Packet::Disconnect(Disconnect::default())]);
    let events = h.m.take_events();
    let done: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Completed { token, result } => Some((*token, result.is_ok())),
            _ => None,
        })
        .collect();
    assert_eq!(done, [(t1, true), (t2, true)]);
    assert!(events.contains(&Event::CloseSocket));
    assert_eq!(events.last(), Some(&Event::Ended));
}

#[test]
fn a_graceful_end_gives_up_at_its_timeout_and_a_forced_end_does_not_wait() {
    let mut h = Harness::v5();
    h.connect(false);
    let t = h.publish("a", QoS::AtLeastOnce);
    h.sent();
    h.m.end_gracefully(5_000, h.now);
    assert_eq!(h.m.poll_timeout(), Some(h.now + 5_000));
    h.advance_to(h.now + 5_000);
    assert_eq!(h.sent(), [Packet::Disconnect(Disconnect::default())]);
    assert!(h.m.is_ended());
    assert!(h.completions().contains(&(t, Err(ErrorKind::ClientEnded))));

    // With nothing in flight, a graceful end is immediate.
    let mut h = Harness::v5();
    h.connect(false);
    h.m.end_gracefully(5_000, h.now);
    assert_eq!(h.sent(), [Packet::Disconnect(Disconnect::default())]);
    assert!(h.m.is_ended());

    // A forced end during a graceful one drops what is in flight at once.
    let mut h = Harness::v5();
    h.connect(false);
    let t = h.publish("a", QoS::AtLeastOnce);
    h.sent();
    h.m.end_gracefully(5_000, h.now);
    h.m.disconnect(h.now);
    assert!(h.m.is_ended());
    assert!(h.completions().contains(&(t, Err(ErrorKind::ClientEnded))));
}

#[test]
fn a_graceful_end_that_loses_its_connection_ends_without_reconnecting() {
    let mut h = Harness::v5();
    h.connect(false);
    h.publish("a", QoS::AtLeastOnce);
    h.sent();
    h.m.end_gracefully(5_000, h.now);
    h.m.socket_closed("gone", h.now);
    assert!(h.m.is_ended());
    assert_eq!(h.m.poll_timeout(), None);
}

#[test]
fn a_graceful_end_also_waits_for_a_suback() {
    let mut h = Harness::v5();
    h.connect(false);
    let t =
        h.m.subscribe(vec![filter("a", QoS::AtMostOnce)], h.now)
            .unwrap();
    h.sent();
    h.m.end_gracefully(5_000, h.now);
    assert!(h.sent().is_empty());
    h.broker(suback(1, vec![ReasonCode::GRANTED_QOS_0]));
    assert_eq!(h.sent(), [Packet::Disconnect(Disconnect::default())]);
    let done = h.completions();
    assert!(matches!(&done[..], [(tok, Ok(Done::Subscribed(_)))] if *tok == t));
}

#[path = "auth_tests.rs"]
mod auth_tests;
