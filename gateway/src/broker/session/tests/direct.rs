//! QoS 0 deliveries encoded by their publishers (`outbox::direct`): which go so, in what
//! order beside the queued and retained ones, and which do not.

use super::*;
use aviary_protocol::{ProtocolVersion, Publish};
use bytes::BytesMut;

/// Limits that hold large messages: what these tests bound is the encoded bytes.
const ROOMY: QueueLimits = QueueLimits {
    max_messages: 100,
    max_bytes: 1 << 20,
    ..LIMITS
};

/// A session whose link `id` takes encoded deliveries in MQTT 3.1.1, up to `max_packet`
/// bytes each; in-flight window 2, expiry 60 s.
fn attach_direct(s: &Session, id: u64, max_packet: u32) {
    s.attach(Connecting {
        link_id: id,
        window: 2,
        will: None,
        expiry_secs: 60,
        username: None,
        client: crate::broker::ClientFacts::for_test(),
        direct: Direct::new(ProtocolVersion::V3_1_1, max_packet, false),
    });
}

fn direct_online(max_packet: u32) -> Session {
    let s = Session::new(1, ByteString::from_static("c"));
    attach_direct(&s, 7, max_packet);
    s
}

/// The bytes of QoS 0 PUBLISHes on `t` with these payloads, as a client reads them.
fn wire(payloads: &[&[u8]]) -> Vec<u8> {
    let mut b = BytesMut::new();
    for p in payloads {
        let publish = Packet::Publish(Publish::new("t", p.to_vec()));
        publish.encode(ProtocolVersion::V3_1_1, &mut b).unwrap();
    }
    b.to_vec()
}

/// The runs' messages go to the session alone.
const SOLE: bool = true;

fn take(s: &Session, link: u64) -> Batch {
    s.take_batch(link, 10, Instant::now(), &no_retained())
}

/// Messages waiting for the writer: queued (and in flight), and encoded.
fn waiting(s: &Session) -> (usize, usize) {
    let encoded = s.state.lock().durable.outbox.encoded_messages();
    (s.queued() - encoded, encoded)
}

/// The encoded bytes a batch carries.
fn encoded(batch: &Batch) -> &[u8] {
    batch.encoded.bytes.as_deref().unwrap_or_default()
}

#[test]
fn qos0_deliveries_go_encoded_in_order() {
    let s = direct_online(u32::MAX);
    let run = [out(QoS::AtMostOnce, b"a"), out(QoS::AtMostOnce, b"b")];
    let (queued, room) = s.enqueue_run(run, &ROOMY, SOLE);
    assert_eq!(queued, RunQueued::default());
    assert!(room.is_none());
    assert_eq!(waiting(&s), (0, 2), "nothing queued");
    let batch = take(&s, 7);
    assert_eq!(batch.encoded.messages, 2);
    assert_eq!(encoded(&batch), wire(&[b"a", b"b"]));
    assert!(batch.messages.is_empty());
    assert!(take(&s, 7).is_empty(), "taken once");
}

/// Behind a queued message a QoS 0 delivery queues too, and keeps its place; once the
/// queue is empty again (a QoS 1 message in flight holds no QoS 0 one back), encoding
/// resumes.
#[test]
fn behind_a_queued_message_qos0_queues_too() {
    let s = direct_online(u32::MAX);
    let run = [
        out(QoS::AtMostOnce, b"a"),
        out(QoS::AtLeastOnce, b"b"),
        out(QoS::AtMostOnce, b"c"),
    ];
    s.enqueue_run(run, &LIMITS, SOLE);
    assert_eq!(waiting(&s), (2, 1));
    let batch = take(&s, 7);
    assert_eq!(encoded(&batch), wire(&[b"a"]));
    assert_eq!(payloads(&batch), ["b", "c"]);
    s.enqueue_run([out(QoS::AtMostOnce, b"d")], &LIMITS, SOLE);
    assert_eq!(encoded(&take(&s, 7)), wire(&[b"d"]));
}

/// A new subscription's retained messages go before what is routed after its SUBSCRIBE:
/// while they are being sent, QoS 0 deliveries queue behind them.
#[test]
fn retained_messages_being_sent_go_first() {
    let s = direct_online(u32::MAX);
    let store = retained(2, QoS::AtMostOnce);
    subscribe(&s, &store, "r/#", QoS::AtMostOnce);
    s.enqueue_run([out(QoS::AtMostOnce, b"new")], &LIMITS, SOLE);
    assert_eq!(waiting(&s), (1, 0));
    assert_eq!(drain(&s, &store, 7, 10), ["r/0", "r/1", "new"]);
}

/// Queued instead: a message that expires (its interval left is reckoned when sent), one
/// larger than the client takes (its writer drops and counts it), any for a connection
/// that takes none, and one that goes to other subscribers too.
#[test]
fn what_cannot_go_encoded_is_queued() {
    let big = wire(&[b"0123456789"]).len() as u32;
    let s = direct_online(big - 1);
    s.enqueue_run([out(QoS::AtMostOnce, b"0123456789")], &LIMITS, SOLE);
    assert_eq!(waiting(&s), (1, 0), "too large for the client");
    let s = direct_online(big);
    s.enqueue_run([out(QoS::AtMostOnce, b"0123456789")], &LIMITS, SOLE);
    assert_eq!(waiting(&s), (0, 1), "at the client's limit");

    let s = direct_online(u32::MAX);
    let mut expiring = out(QoS::AtMostOnce, b"e");
    let msg = Arc::get_mut(&mut expiring.msg).unwrap();
    msg.expires_at = Some(Instant::now() + Duration::from_secs(60));
    s.enqueue_run([expiring], &LIMITS, SOLE);
    assert_eq!(waiting(&s), (1, 0), "expiring");

    let s = online();
    s.enqueue_run([out(QoS::AtMostOnce, b"a")], &LIMITS, SOLE);
    assert_eq!(waiting(&s), (1, 0), "a connection that takes none");

    let s = direct_online(u32::MAX);
    s.enqueue_run([out(QoS::AtMostOnce, b"a")], &LIMITS, !SOLE);
    assert_eq!(waiting(&s), (1, 0), "a message for many stays one, shared");
}

/// Encoded messages count as queued ones: at the high-water mark (half the queue's limits)
/// publishers are held back, and past it messages queue, under the queue's limits.
#[test]
fn encoded_messages_are_bounded_as_queued_ones() {
    let s = direct_online(u32::MAX);
    let run = [0; 60].map(|_| out(QoS::AtMostOnce, b"m"));
    let (_, room) = s.enqueue_run(run, &ROOMY, SOLE);
    assert!(room.is_some(), "past the high-water mark: held back");
    assert_eq!(waiting(&s), (10, 50), "50 encoded, the rest queued");
    let batch = take(&s, 7);
    assert_eq!(batch.encoded.messages, 50);
    assert_eq!(batch.messages.len(), 10);

    let large: &'static [u8] = vec![7; 400 * 1024].leak();
    let run = [0; 3].map(|_| out(QoS::AtMostOnce, large));
    s.enqueue_run(run, &ROOMY, SOLE);
    assert_eq!(
        waiting(&s),
        (1, 0),
        "the two encoded made room for the third"
    );
}

/// Encoded messages count in the queue's limits too: when a full queue makes room, they go
/// first, all together (the oldest, and QoS 0), so a slow subscriber keeps at most what
/// the limits say, and the newest of it.
#[test]
fn a_full_queue_drops_the_encoded_messages_first() {
    let s = direct_online(u32::MAX);
    let limits = QueueLimits {
        max_messages: 10,
        ..ROOMY
    };
    let payloads_in: [&'static [u8]; 12] = [
        b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9", b"10", b"11",
    ];
    let (queued, _) = s.enqueue_run(payloads_in.map(|p| out(QoS::AtMostOnce, p)), &limits, SOLE);
    assert_eq!(queued.evicted, 5, "the 5 encoded, at the high-water mark");
    assert_eq!(waiting(&s), (7, 0));
    let batch = s.take_batch(7, 20, Instant::now(), &no_retained());
    assert_eq!(batch.encoded.messages, 0);
    assert_eq!(payloads(&batch), ["5", "6", "7", "8", "9", "10", "11"]);
}

/// What was encoded for a connection goes with it: its successor gets nothing of it.
#[test]
fn encoded_deliveries_go_with_their_connection() {
    let s = direct_online(u32::MAX);
    s.enqueue_run([out(QoS::AtMostOnce, b"a")], &LIMITS, SOLE);
    assert!(s.detach(7, LOST).is_some());
    attach_direct(&s, 8, u32::MAX);
    assert!(take(&s, 8).is_empty());

    s.enqueue_run([out(QoS::AtMostOnce, b"b")], &LIMITS, SOLE);
    attach_direct(&s, 9, u32::MAX);
    assert!(take(&s, 9).is_empty(), "taken over");
}

/// A resumed session sends its messages in flight again first: until then, QoS 0
/// deliveries queue behind them.
#[test]
fn messages_in_flight_are_resent_before_anything_is_encoded() {
    let s = direct_online(u32::MAX);
    s.enqueue_run([out(QoS::AtLeastOnce, b"a")], &LIMITS, SOLE);
    assert_eq!(payloads(&take(&s, 7)), ["a"]);
    assert!(s.detach(7, LOST).is_some());
    attach_direct(&s, 8, u32::MAX);
    s.enqueue_run([out(QoS::AtMostOnce, b"b")], &LIMITS, SOLE);
    let batch = take(&s, 8);
    assert_eq!(batch.encoded.messages, 0);
    assert_eq!(payloads(&batch), ["a", "b"]);
    assert!(batch.messages[0].2, "DUP");
    s.enqueue_run([out(QoS::AtMostOnce, b"c")], &LIMITS, SOLE);
    assert_eq!(encoded(&take(&s, 8)), wire(&[b"c"]));
}

/// In a steady stream the writer's spare buffer takes the next deliveries, so nothing is
/// allocated; once the writer finds nothing new, the session keeps no room.
#[test]
fn the_writer_s_spare_takes_the_next_and_an_idle_session_keeps_no_room() {
    let s = direct_online(u32::MAX);
    let store = no_retained();
    let take_with =
        |spare: BytesMut| s.take_batch_readable(7, 10, Instant::now(), (&store, &|_| true), spare);
    s.enqueue_run([out(QoS::AtMostOnce, b"a")], &ROOMY, SOLE);
    let spare = BytesMut::with_capacity(4096);
    let at = spare.as_ptr();
    assert_eq!(take_with(spare).encoded.messages, 1);
    s.enqueue_run([out(QoS::AtMostOnce, b"b")], &ROOMY, SOLE);
    let batch = take_with(BytesMut::with_capacity(2048));
    assert_eq!(encoded(&batch), wire(&[b"b"]));
    assert_eq!(encoded(&batch).as_ptr(), at, "encoded into the spare");
    let room = s.state.lock().durable.outbox.encoding_room();
    assert!(room >= 2048, "the next spare kept: {room}");

    let batch = take_with(BytesMut::with_capacity(10));
    assert_eq!(batch.encoded.messages, 0);
    assert!(
        batch.encoded.bytes.unwrap().capacity() >= 10,
        "the spare comes back"
    );
    assert_eq!(s.state.lock().durable.outbox.encoding_room(), 0);
}
