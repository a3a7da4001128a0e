//! The state machine driven by a scripted broker and simulated time: the harness, and how the
//! client connects, retries and keeps the connection alive. The other concerns have their own
//! test modules, declared at the end.

use std::num::NonZeroU16;

use aviary_protocol::{
    decode, ConnAck, LastWill, Packet, ProtocolVersion, Publish, QoS, ReasonCode, SubAck,
    SubscriptionOptions, TopicFilter, TopicName,
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

    /// Loses the connection, lets the retry fire and accepts the new one, the broker saying
    /// whether it kept the session; what the client sends after the CONNACK is left unread.
    fn reconnect(&mut self, session_present: bool) {
        self.m.socket_closed("gone", self.now);
        self.fire_timer();
        self.m.socket_opened(self.now);
        self.sent(); // the CONNECT
        self.broker(ConnAck::new(ReasonCode::SUCCESS, session_present).into());
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

fn suback(n: u16, codes: Vec<ReasonCode>) -> Packet {
    Packet::SubAck(SubAck {
        packet_id: id(n),
        properties: Default::default(),
        reason_codes: codes,
    })
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

#[path = "auth_tests.rs"]
mod auth_tests;
#[path = "delivery_tests.rs"]
mod delivery_tests;
#[path = "ending_tests.rs"]
mod ending_tests;
#[path = "protocol_tests.rs"]
mod protocol_tests;
