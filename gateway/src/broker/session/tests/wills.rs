//! Tests of what a session decides when connections come and go: the fate
//! of the will (normal DISCONNECT, no delay, delay, takeover, reconnect,
//! session end), generations that make stale deadlines harmless, incoming
//! QoS 2 bookkeeping, and a session rebuilt from a store's record.

use super::*;
use crate::store::Forwarded;
use std::num::NonZeroU16;

fn will(delay_secs: u32) -> Will {
    Will {
        message: message("will/c", b"gone", QoS::AtLeastOnce),
        delay_secs,
        owner: None,
    }
}

fn connect(s: &Session, id: u64, will: Option<Will>, expiry_secs: u32) -> Attached {
    s.attach(Connecting {
        link_id: id,
        window: 10,
        will,
        expiry_secs,
        username: None,
        client: crate::broker::ClientFacts::for_test(),
        direct: crate::broker::Direct::NONE,
    })
}

fn lost(expiry_secs: u32) -> Ending {
    Ending {
        publish_will: true,
        expiry_secs,
    }
}

fn new_session() -> Session {
    Session::new(1, ByteString::from_static("c"))
}

#[test]
fn normal_disconnect_drops_the_will() {
    let s = new_session();
    connect(&s, 1, Some(will(0)), 60);
    let ending = Ending {
        publish_will: false,
        expiry_secs: 60,
    };
    let d = s.detach(1, ending).unwrap();
    assert!(d.will_now.is_none() && d.will_delay_secs.is_none());
    assert!(s.take_pending_will(d.generation).is_none());
}

#[test]
fn a_will_without_delay_or_session_goes_now() {
    let s = new_session();
    connect(&s, 1, Some(will(0)), 60);
    let d = s.detach(1, lost(60)).unwrap();
    assert!(d.will_now.is_some(), "no delay");
    connect(&s, 2, Some(will(30)), 0);
    let d = s.detach(2, lost(0)).unwrap();
    assert!(d.will_now.is_some(), "the session ends with the connection");
    assert_eq!(d.will_delay_secs, None);
}

#[test]
fn a_delayed_will_waits_for_its_generation() {
    let s = new_session();
    connect(&s, 1, Some(will(30)), 60);
    let d = s.detach(1, lost(60)).unwrap();
    assert!(d.will_now.is_none());
    assert_eq!((d.will_delay_secs, d.expiry_secs), (Some(30), 60));
    assert!(
        s.take_pending_will(d.generation - 1).is_none(),
        "an older deadline does nothing"
    );
    assert!(s.take_pending_will(d.generation).is_some());
    assert!(
        s.take_pending_will(d.generation).is_none(),
        "published once"
    );
}

#[test]
fn reconnecting_cancels_a_pending_will_and_makes_old_deadlines_stale() {
    let s = new_session();
    connect(&s, 1, Some(will(30)), 60);
    let d = s.detach(1, lost(60)).unwrap();
    let back = connect(&s, 2, None, 60);
    assert!(
        back.will.is_none(),
        "cancelled, not published [MQTT-3.1.3-9]"
    );
    assert!(s.take_pending_will(d.generation).is_none());
    assert!(s.discard_if_idle(d.generation).is_none(), "online again");
    let again = s.detach(2, lost(60)).unwrap();
    assert!(
        s.discard_if_idle(d.generation).is_none(),
        "the first expiry is stale"
    );
    assert!(s.discard_if_idle(again.generation).is_some());
}

#[test]
fn takeover_publishes_only_an_undelayed_will() {
    let s = new_session();
    connect(&s, 1, Some(will(0)), 60);
    let taken = connect(&s, 2, Some(will(30)), 60);
    assert!(taken.will.is_some(), "the old connection's will, no delay");
    let taken = connect(&s, 3, None, 60);
    assert!(taken.will.is_none(), "a delayed will is cancelled");
    assert!(s.detach(2, lost(60)).is_none(), "taken over");
}

#[test]
fn discarding_returns_filters_and_the_will_and_kicks() {
    let s = new_session();
    let wake = connect(&s, 1, Some(will(30)), 60).wake;
    let filter = TopicFilter::new("a/#").unwrap();
    let sub = Subscription {
        options: aviary_protocol::SubscriptionOptions::qos(QoS::AtLeastOnce),
        identifier: None,
    };
    assert!(s.try_subscribe(&filter, sub, usize::MAX));
    s.enqueue(out(QoS::AtLeastOnce, b"1"), &LIMITS);
    let d = s.discard();
    assert_eq!(d.filters, [filter]);
    assert!(d.will.is_some(), "the session's end is the will's time");
    assert_eq!(wake.kicked(), Some(ReasonCode::SESSION_TAKEN_OVER));
    assert_eq!((s.queued(), s.subscription_count()), (0, 0));
    assert!(!s.is_online());
    assert!(s.discard_if_idle(s.generation()).is_none(), "once");
}

#[test]
fn incoming_qos2_ids_open_once_within_the_limit() {
    let s = new_session();
    let id = |n| NonZeroU16::new(n).unwrap();
    let forwarded = Forwarded {
        node: "gw-a".into(),
        token: 41,
    };
    let begin = |n, limit| s.incoming_qos2_begin(id(n), limit, None);
    assert_eq!(
        s.incoming_qos2_begin(id(1), Some(2), Some(forwarded.clone())),
        Qos2Received::New
    );
    // A resend is told how the exchange's message was forwarded, whatever it carries now.
    assert_eq!(begin(1, Some(2)), Qos2Received::Duplicate(Some(forwarded)));
    assert_eq!(begin(2, Some(2)), Qos2Received::New);
    assert_eq!(begin(2, Some(2)), Qos2Received::Duplicate(None));
    assert_eq!(begin(3, Some(2)), Qos2Received::TooMany);
    assert_eq!(begin(3, None), Qos2Received::New);
    assert!(s.incoming_qos2_release(id(1)));
    assert!(!s.incoming_qos2_release(id(1)), "released once");
    s.incoming_qos2_abort(id(2));
    assert_eq!(begin(2, Some(2)), Qos2Received::New);
}

#[test]
fn a_recovered_session_resends_in_flight_then_sends_its_queue() {
    let id = |n| NonZeroU16::new(n).unwrap();
    let mut recovered = RecoveredSession {
        client_id: ByteString::from_static("c"),
        queued: vec![out(QoS::AtLeastOnce, b"queued")],
        inflight: vec![
            Inflight {
                packet_id: id(5),
                out: out(QoS::ExactlyOnce, b"released"),
                released: true,
            },
            Inflight {
                packet_id: id(6),
                out: out(QoS::AtLeastOnce, b"sent"),
                released: false,
            },
        ],
        incoming_qos2: vec![(
            id(9),
            Some(Forwarded {
                node: "gw-a".into(),
                token: 3,
            }),
        )],
        expiry_secs: 60,
        ..RecoveredSession::default()
    };
    let s = Session::recover(1, &mut recovered);
    assert!(!s.is_online());
    assert_eq!(s.queued(), 3);
    assert!(matches!(
        s.incoming_qos2_begin(id(9), None, None),
        Qos2Received::Duplicate(Some(Forwarded { token: 3, .. }))
    ));
    let _kick = attach(&s, 7, 10);
    let b = s.take_batch(7, 100, Instant::now(), &no_retained());
    assert_eq!(b.control, vec![Packet::PubRel(Ack::new(id(5)))]);
    let sent: Vec<_> = b.messages.iter().map(|m| (m.1, m.2)).collect();
    assert_eq!(sent, [(Some(id(6)), true), (Some(id(7)), false)]);
    assert_eq!(payloads(&b), ["sent", "queued"]);
    assert!(s.pubcomp(id(5)) && s.puback(id(6)) && s.puback(id(7)));
}
