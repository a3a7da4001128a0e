//! How a client ends: DISCONNECT at once, or gracefully once what is in flight is
//! acknowledged, within a timeout.

use aviary_protocol::{Ack, Disconnect, Packet, Publish, QoS, ReasonCode};

use super::{filter, id, suback, Harness};
use crate::engine::{Done, ErrorKind, Event};

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
