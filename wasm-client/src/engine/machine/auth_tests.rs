//! MQTT 5 enhanced authentication against the scripted broker: the challenge reaches the
//! application, its answer goes out as AUTH, stale answers are dropped, failures refuse.

use aviary_protocol::{Auth, ByteString, ConnAck, Disconnect, Packet, ProtocolVersion, ReasonCode};
use bytes::Bytes;

use super::Harness;
use crate::engine::{ErrorKind, Event, Options};

const METHOD: &str = "SCRAM-SHA-512";

fn scram_client() -> Harness {
    let mut o = Options {
        protocol: ProtocolVersion::V5,
        client_id: "c1".into(),
        connect_timeout_ms: 5_000,
        ..Options::default()
    };
    o.properties.authentication_method = Some(ByteString::from_static(METHOD));
    o.properties.authentication_data = Some(Bytes::from_static(b"n,,n=u,r=cnonce"));
    Harness::new(o)
}

fn auth(method: &'static str, data: &'static [u8]) -> Packet {
    let mut a = Auth {
        reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
        ..Auth::default()
    };
    a.properties.authentication_method = Some(ByteString::from_static(method));
    a.properties.authentication_data = Some(Bytes::from_static(data));
    Packet::Auth(a)
}

fn challenge(attempt: u32, data: &'static [u8]) -> Event {
    Event::AuthChallenge {
        attempt,
        method: METHOD.into(),
        data: Bytes::from_static(data),
    }
}

fn errors(events: &[Event]) -> Vec<(ErrorKind, Option<ReasonCode>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Error(e) => Some((e.kind, e.reason_code)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_challenge_is_answered_and_the_connack_carries_the_servers_final_data() {
    let mut h = scram_client();
    let Packet::Connect(c) = h.open() else {
        panic!("not CONNECT")
    };
    assert_eq!(c.properties.authentication_method.as_deref(), Some(METHOD));
    assert_eq!(
        c.properties.authentication_data.as_deref(),
        Some(&b"n,,n=u,r=cnonce"[..])
    );
    h.m.take_events();
    h.broker(auth(METHOD, b"r=cnonce+s,s=c2FsdA==,i=4096"));
    assert_eq!(
        h.m.take_events(),
        [challenge(1, b"r=cnonce+s,s=c2FsdA==,i=4096")]
    );
    assert!(h.sent().is_empty(), "nothing goes out before the answer");
    h.m.answer_auth(1, Bytes::from_static(b"c=biws,r=cnonce+s,p=proof"), h.now);
    assert_eq!(h.sent(), [auth(METHOD, b"c=biws,r=cnonce+s,p=proof")]);
    let mut ack = ConnAck::new(ReasonCode::SUCCESS, false);
    ack.properties.authentication_method = Some(ByteString::from_static(METHOD));
    ack.properties.authentication_data = Some(Bytes::from_static(b"v=signature"));
    h.broker(ack.into());
    let events = h.m.take_events();
    let Some(Event::Connected(c)) = events.first() else {
        panic!("{events:?}")
    };
    assert_eq!(
        c.properties.authentication_data.as_deref(),
        Some(&b"v=signature"[..])
    );
    assert!(h.m.is_connected());
}

#[test]
fn an_answer_to_a_lost_attempt_is_dropped_and_the_next_attempt_asks_again() {
    let mut h = scram_client();
    h.open();
    h.broker(auth(METHOD, b"first"));
    h.m.socket_closed("gone", h.now);
    h.m.take_events();
    // The application's (async) answer to attempt 1 comes too late.
    h.m.answer_auth(1, Bytes::from_static(b"late"), h.now);
    assert!(h.sent().is_empty());
    h.fire_timer(); // backoff over: attempt 2
    h.m.socket_opened(h.now);
    assert!(matches!(&h.sent()[..], [Packet::Connect(_)]));
    h.m.take_events();
    h.broker(auth(METHOD, b"second"));
    assert_eq!(h.m.take_events(), [challenge(2, b"second")]);
    h.m.answer_auth(1, Bytes::from_static(b"stale"), h.now);
    assert!(h.sent().is_empty(), "attempt 1's answer is not attempt 2's");
    h.m.answer_auth(2, Bytes::from_static(b"fresh"), h.now);
    assert_eq!(h.sent(), [auth(METHOD, b"fresh")]);
}

#[test]
fn a_failed_hook_refuses_the_attempt_and_retries_later() {
    let mut h = scram_client();
    h.open();
    h.broker(auth(METHOD, b"challenge"));
    h.m.take_events();
    h.m.fail_auth(1, h.now);
    let events = h.m.take_events();
    assert_eq!(
        errors(&events),
        [(
            ErrorKind::ConnectionRefused,
            Some(ReasonCode::NOT_AUTHORIZED)
        )]
    );
    assert!(events.contains(&Event::CloseSocket), "{events:?}");
    assert!(h.sent().is_empty());
    h.fire_timer();
    assert_eq!(h.m.take_events(), [Event::Open { attempt: 2 }]);
}

#[test]
fn the_connect_timeout_covers_a_slow_answer() {
    let mut h = scram_client();
    h.open();
    h.broker(auth(METHOD, b"challenge"));
    h.m.take_events();
    let t = h.fire_timer();
    assert_eq!(t, 1_000 + 5_000);
    let events = h.m.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Closed(Some(e)) if e.kind == ErrorKind::ConnectTimeout)),
        "{events:?}"
    );
}

#[test]
fn an_auth_not_asked_for_is_a_protocol_error() {
    // No method in CONNECT; a different method; a reason other than "continue".
    let mut other_reason = auth(METHOD, b"x");
    if let Packet::Auth(a) = &mut other_reason {
        a.reason_code = ReasonCode::RE_AUTHENTICATE;
    }
    let cases = [
        (Harness::v5(), auth(METHOD, b"x")),
        (scram_client(), auth("PLAIN", b"x")),
        (scram_client(), other_reason),
    ];
    for (mut h, packet) in cases {
        h.open();
        h.m.take_events();
        h.broker(packet);
        assert_eq!(
            h.sent(),
            [Packet::Disconnect(Disconnect::new(
                ReasonCode::PROTOCOL_ERROR
            ))]
        );
        let events = h.m.take_events();
        assert_eq!(
            errors(&events),
            [(ErrorKind::Protocol, Some(ReasonCode::PROTOCOL_ERROR))]
        );
        assert!(!events
            .iter()
            .any(|e| matches!(e, Event::AuthChallenge { .. })));
    }
}
