//! Durable state with the real binary: what the gateway acknowledged survives `kill -9` and a
//! restart on the same data dir, and a data dir another gateway holds is refused.
//!
//! The gateway runs as a child process ([`GatewayProcess`]); SIGKILL comes while a publisher
//! streams, so whatever was in the group-commit pipeline at that moment is cut off. The tests
//! count: every message whose PUBACK (QoS 1) or PUBREC (QoS 2) reached the publisher must reach
//! the persistent subscriber after the restart, and at QoS 2 none may arrive twice.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU16;
use std::path::Path;

use aviary_protocol::{Ack, Packet, QoS, ReasonCode};
use common::process::{self, GatewayProcess};
use common::raw::{self, Event, Raw};
use common::{seq_of, seq_payload, WAIT};

/// Messages the publisher offers; the gateway is killed half-way.
const MESSAGES: usize = 2_000;
/// Acknowledgements after which the gateway is killed.
const KILL_AFTER: usize = 1_000;
/// Publications in flight at once, so the kill lands in the middle of a pipeline.
const WINDOW: usize = 32;

/// Connects the persistent subscriber: clean start off, a session that outlives the gateway.
async fn subscriber(gw: &GatewayProcess) -> (Raw, bool) {
    let mut connect = raw::v5("durable-sub");
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(3_600);
    let (sub, ack) = Raw::connect_ok(gw.mqtt, connect).await;
    (sub, ack.session_present)
}

/// Streams `t/seq` messages at `qos` with [`WINDOW`] in flight and SIGKILLs the gateway once
/// [`KILL_AFTER`] were acknowledged. Returns the sequence numbers acknowledged before the
/// connection died: the ones the gateway promised to keep.
async fn publish_until_killed(gw: GatewayProcess, qos: QoS) -> BTreeSet<usize> {
    let (mut publisher, _) = Raw::connect_ok(gw.mqtt, raw::v5("durable-pub")).await;
    let mut gateway = Some(gw);
    let mut in_flight: BTreeMap<NonZeroU16, usize> = BTreeMap::new();
    let mut acked = BTreeSet::new();
    let mut next = 0;
    loop {
        while gateway.is_some() && in_flight.len() < WINDOW && next < MESSAGES {
            let mut p = raw::message(&format!("t/{next}"), &seq_payload(next), qos);
            let id = publisher.packet_id();
            p.packet_id = Some(id);
            publisher.send(Packet::Publish(p)).await;
            in_flight.insert(id, next);
            next += 1;
        }
        if gateway.is_some() && acked.len() >= KILL_AFTER {
            gateway.take().expect("running").kill9().await;
        }
        match publisher.next_event(WAIT).await {
            Some(Event::Packet(Packet::PubAck(a))) => {
                assert_eq!(a.reason_code, ReasonCode::SUCCESS);
                acked.insert(
                    in_flight
                        .remove(&a.packet_id)
                        .expect("a PUBACK we asked for"),
                );
            }
            Some(Event::Packet(Packet::PubRec(a))) => {
                assert_eq!(a.reason_code, ReasonCode::SUCCESS);
                acked.insert(in_flight[&a.packet_id]);
                if gateway.is_some() {
                    publisher.send(Packet::PubRel(Ack::new(a.packet_id))).await;
                }
            }
            Some(Event::Packet(Packet::PubComp(a))) => {
                in_flight.remove(&a.packet_id);
            }
            Some(Event::Packet(other)) => panic!("unexpected {other:?}"),
            Some(Event::Closed) if gateway.is_none() => return acked,
            Some(Event::Closed) => panic!("the gateway closed the publisher"),
            None => panic!("no acknowledgement within {WAIT:?}"),
        }
        assert!(
            gateway.is_none() || next < MESSAGES || !in_flight.is_empty(),
            "the stream ended before the kill"
        );
    }
}

/// Receives (and acknowledges) everything queued for the subscriber, up to a marker published
/// after the restart, which is queued behind all of it. Returns how often each sequence
/// number arrived.
async fn drain_to_marker(gw: &GatewayProcess, sub: &mut Raw) -> BTreeMap<usize, usize> {
    let (mut marker, _) = Raw::connect_ok(gw.mqtt, raw::v5("durable-marker")).await;
    let marker_payload = seq_payload(usize::MAX);
    let sent = marker
        .publish(raw::message("t/marker", &marker_payload, QoS::AtLeastOnce))
        .await;
    assert_eq!(sent, ReasonCode::SUCCESS);
    let mut seen = BTreeMap::new();
    loop {
        let p = sub.recv_publish().await;
        sub.ack(&p).await;
        let seq = seq_of(&p.payload);
        if seq == usize::MAX {
            return seen;
        }
        *seen.entry(seq).or_insert(0) += 1;
    }
}

/// The whole scenario at one QoS; returns (acknowledged, received counts).
async fn kill_mid_stream(data_dir: &Path, qos: QoS) -> (BTreeSet<usize>, BTreeMap<usize, usize>) {
    let gw = GatewayProcess::start(data_dir, &[]).await;
    let (mut sub, _) = subscriber(&gw).await;
    sub.subscribe("t/+", qos).await;
    sub.disconnect(ReasonCode::SUCCESS).await;

    let acked = publish_until_killed(gw, qos).await;
    assert!(acked.len() >= KILL_AFTER, "only {} acked", acked.len());

    let gw = GatewayProcess::start(data_dir, &[]).await;
    let (mut sub, present) = subscriber(&gw).await;
    assert!(present, "the persistent session must resume after kill -9");
    let seen = drain_to_marker(&gw, &mut sub).await;
    (acked, seen)
}

/// Every acknowledged message arrived.
fn assert_none_lost(acked: &BTreeSet<usize>, seen: &BTreeMap<usize, usize>) {
    let lost: Vec<_> = acked.iter().filter(|s| !seen.contains_key(s)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages lost, first {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(10)]
    );
}

#[tokio::test]
async fn kill_9_loses_no_acknowledged_qos_1_message() {
    let dir = tempfile::tempdir().unwrap();
    let (acked, seen) = kill_mid_stream(dir.path(), QoS::AtLeastOnce).await;
    assert_none_lost(&acked, &seen);
}

#[tokio::test]
async fn kill_9_loses_no_acknowledged_qos_2_message_and_duplicates_none() {
    let dir = tempfile::tempdir().unwrap();
    let (acked, seen) = kill_mid_stream(dir.path(), QoS::ExactlyOnce).await;
    assert_none_lost(&acked, &seen);
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "delivered more than once at QoS 2: {twice:?}"
    );
}

#[tokio::test]
async fn a_data_dir_in_use_is_refused_naming_the_other_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let first = GatewayProcess::start(dir.path(), &[]).await;
    let printed = process::refused(dir.path(), &[]).await;
    let pid = first.pid().to_string();
    assert!(
        printed.contains(&pid),
        "the refusal should name the running gateway (pid {pid}): {printed}"
    );
    assert!(
        printed.contains(&dir.path().display().to_string()),
        "the refusal should name the data dir: {printed}"
    );
    first.kill9().await;
    // The lock dies with its holder: a kill -9 leaves no stale lock behind.
    let again = GatewayProcess::start(dir.path(), &[]).await;
    again.kill9().await;
}

#[tokio::test]
async fn retained_messages_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(dir.path(), &[]).await;
    let (mut publisher, _) = Raw::connect_ok(gw.mqtt, raw::v5("retainer")).await;
    for (topic, payload) in [
        ("r/1", "one"),
        ("r/2", "two"),
        ("r/3", "three"),
        ("r/3", ""),
    ] {
        let mut p = raw::message(topic, payload.as_bytes(), QoS::AtLeastOnce);
        p.retain = true;
        // 0x10 No Matching Subscribers is a success too: nobody listens yet.
        assert!(!publisher.publish(p).await.is_error());
    }
    gw.stop().await;

    let gw = GatewayProcess::start(dir.path(), &[]).await;
    let (mut sub, _) = Raw::connect_ok(gw.mqtt, raw::v5("reader")).await;
    sub.subscribe("r/#", QoS::AtLeastOnce).await;
    let mut got = BTreeMap::new();
    for _ in 0..2 {
        let p = sub.recv_publish().await;
        assert!(p.retain, "sent because of the subscription: RETAIN set");
        got.insert(p.topic.to_string(), p.payload.to_vec());
        sub.ack(&p).await;
    }
    assert_eq!(
        got,
        BTreeMap::from([
            ("r/1".to_owned(), b"one".to_vec()),
            ("r/2".to_owned(), b"two".to_vec())
        ])
    );
    // The cleared r/3 stays cleared.
    sub.expect_silence(std::time::Duration::from_millis(300))
        .await;
}

#[tokio::test]
async fn a_persistent_session_keeps_its_subscriptions_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(dir.path(), &[]).await;
    let (mut sub, present) = subscriber(&gw).await;
    assert!(!present);
    sub.subscribe("s/+", QoS::AtLeastOnce).await;
    sub.disconnect(ReasonCode::SUCCESS).await;
    gw.stop().await;

    let gw = GatewayProcess::start(dir.path(), &[]).await;
    // Published while the subscriber is away: its restored subscription queues it.
    let (mut publisher, _) = Raw::connect_ok(gw.mqtt, raw::v5("s-pub")).await;
    let sent = publisher
        .publish(raw::message("s/1", b"after", QoS::AtLeastOnce))
        .await;
    assert_eq!(
        sent,
        ReasonCode::SUCCESS,
        "the restored subscription matches"
    );
    let (mut sub, present) = subscriber(&gw).await;
    assert!(present, "session present after the restart");
    let p = sub.recv_publish().await;
    assert_eq!((&*p.topic, &p.payload[..]), ("s/1", &b"after"[..]));
}

#[tokio::test]
async fn a_delayed_will_fires_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(dir.path(), &[]).await;
    let mut connect = raw::v5("tracker-7");
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(600);
    let mut will = aviary_protocol::LastWill {
        topic: aviary_protocol::TopicName::new("pets/7/status".to_owned()).unwrap(),
        payload: bytes::Bytes::from_static(b"{\"online\":false}"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    };
    will.properties.will_delay_interval = Some(2);
    connect.will = Some(will);
    let (tracker, _) = Raw::connect_ok(gw.mqtt, connect).await;
    // Gone, asking for its will: it is due in 2 s, after the restart.
    tracker.disconnect(ReasonCode::DISCONNECT_WITH_WILL).await;
    gw.stop().await;

    let gw = GatewayProcess::start(dir.path(), &[]).await;
    let (mut owner, _) = Raw::connect_ok(gw.mqtt, raw::v5("owner")).await;
    owner.subscribe("pets/+/status", QoS::AtLeastOnce).await;
    let p = owner.recv_publish().await;
    assert_eq!(&*p.topic, "pets/7/status");
    assert_eq!(&p.payload[..], b"{\"online\":false}");
}

#[tokio::test]
async fn a_damaged_store_is_refused_at_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(dir.path(), &[]).await;
    let (mut publisher, _) = Raw::connect_ok(gw.mqtt, raw::v5("retainer")).await;
    let mut p = raw::message("r/1", b"one", QoS::AtLeastOnce);
    p.retain = true;
    assert!(!publisher.publish(p).await.is_error());
    gw.stop().await;
    // Flip bytes at the start of the store's journal, where its first records are.
    let journal = dir.path().join("store/0.jnl");
    let mut bytes = std::fs::read(&journal).expect("the store keeps a journal");
    for b in &mut bytes[40..60] {
        *b ^= 0xff;
    }
    std::fs::write(&journal, bytes).unwrap();
    let printed = process::refused(dir.path(), &[]).await;
    let store = dir.path().join("store").display().to_string();
    assert!(printed.contains("is corrupt"), "{printed}");
    assert!(
        printed.contains(&store),
        "the message names {store}: {printed}"
    );
}

#[tokio::test]
async fn a_data_dir_that_is_not_a_directory_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("store"), b"not a store").unwrap();
    let printed = process::refused(dir.path(), &[]).await;
    assert!(
        printed.contains("cannot use the data directory"),
        "{printed}"
    );
    assert!(printed.contains("--data-dir"), "{printed}");
}

#[tokio::test]
async fn kill_9_resends_in_flight_qos_2_with_dup_and_the_same_ids() {
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(dir.path(), &[]).await;
    // Online, at most 10 in flight, and it never answers: 10 PUBLISHes in flight at the kill.
    let mut connect = raw::v5("durable-sub");
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(3_600);
    connect.properties.receive_maximum = NonZeroU16::new(10);
    let (mut sub, _) = Raw::connect_ok(gw.mqtt, connect).await;
    sub.subscribe("t/+", QoS::ExactlyOnce).await;

    let (mut publisher, _) = Raw::connect_ok(gw.mqtt, raw::v5("durable-pub")).await;
    for seq in 0..200 {
        let p = raw::message(&format!("t/{seq}"), &seq_payload(seq), QoS::ExactlyOnce);
        assert_eq!(publisher.publish(p).await, ReasonCode::SUCCESS);
    }
    let mut in_flight = BTreeMap::new();
    for _ in 0..10 {
        let p = sub.recv_publish().await;
        assert!(!p.dup);
        in_flight.insert(seq_of(&p.payload), p.packet_id.expect("QoS 2"));
    }
    gw.kill9().await;

    let gw = GatewayProcess::start(dir.path(), &[]).await;
    let (mut sub, present) = subscriber(&gw).await;
    assert!(present);
    // First the ten again, as they were, with DUP [MQTT-4.4.0-1].
    for (seq, id) in &in_flight {
        let p = sub.recv_publish().await;
        assert_eq!((seq_of(&p.payload), p.packet_id), (*seq, Some(*id)));
        assert!(p.dup, "a resend carries DUP");
        sub.ack(&p).await;
    }
    // Then the rest, each once.
    let seen = drain_to_marker(&gw, &mut sub).await;
    let expected: BTreeSet<usize> = (0..200).filter(|s| !in_flight.contains_key(s)).collect();
    assert_eq!(seen.keys().copied().collect::<BTreeSet<_>>(), expected);
    assert!(seen.values().all(|n| *n == 1), "delivered twice: {seen:?}");
}

#[tokio::test]
async fn kill_9_sends_in_flight_qos_1_again_first_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(dir.path(), &[]).await;
    // As for QoS 2: 10 in flight at the kill, never acknowledged.
    let mut connect = raw::v5("durable-sub");
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(3_600);
    connect.properties.receive_maximum = NonZeroU16::new(10);
    let (mut sub, _) = Raw::connect_ok(gw.mqtt, connect).await;
    sub.subscribe("t/+", QoS::AtLeastOnce).await;

    let (mut publisher, _) = Raw::connect_ok(gw.mqtt, raw::v5("durable-pub")).await;
    for seq in 0..200 {
        let p = raw::message(&format!("t/{seq}"), &seq_payload(seq), QoS::AtLeastOnce);
        assert_eq!(publisher.publish(p).await, ReasonCode::SUCCESS);
    }
    for expected in 0..10 {
        assert_eq!(seq_of(&sub.recv_publish().await.payload), expected);
    }
    gw.kill9().await;

    // The store keeps a QoS 1 message queued until its PUBACK, not its sending: the ten come
    // again first (as new PUBLISHes, which a QoS 1 receiver cannot tell from resends), then
    // the rest, all in order and each once.
    let gw = GatewayProcess::start(dir.path(), &[]).await;
    let (mut sub, present) = subscriber(&gw).await;
    assert!(present);
    let (mut marker, _) = Raw::connect_ok(gw.mqtt, raw::v5("durable-marker")).await;
    let end = raw::message("t/marker", &seq_payload(usize::MAX), QoS::AtLeastOnce);
    assert_eq!(marker.publish(end).await, ReasonCode::SUCCESS);
    let mut order = Vec::new();
    loop {
        let p = sub.recv_publish().await;
        sub.ack(&p).await;
        match seq_of(&p.payload) {
            usize::MAX => break,
            seq => order.push(seq),
        }
    }
    assert_eq!(order, (0..200).collect::<Vec<_>>());
}

/// A message queued for two persistent sessions is stored in the first one's queue entry and,
/// for the second, in a record the entries share (see `StoreSlot`): one session acknowledging
/// everything before the kill must not take the other's messages with it.
#[tokio::test]
async fn kill_9_keeps_a_message_for_a_session_after_another_acknowledged_it() {
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(dir.path(), &[]).await;
    let persistent = |id: &str| {
        let mut connect = raw::v5(id);
        connect.clean_start = false;
        connect.properties.session_expiry_interval = Some(3_600);
        connect.properties.receive_maximum = NonZeroU16::new(5);
        connect
    };
    let (mut eager, _) = Raw::connect_ok(gw.mqtt, persistent("durable-eager")).await;
    eager.subscribe("t/+", QoS::AtLeastOnce).await;
    let (mut slow, _) = Raw::connect_ok(gw.mqtt, persistent("durable-slow")).await;
    slow.subscribe("t/+", QoS::AtLeastOnce).await;

    let (mut publisher, _) = Raw::connect_ok(gw.mqtt, raw::v5("durable-pub")).await;
    for seq in 0..50 {
        let p = raw::message(&format!("t/{seq}"), &seq_payload(seq), QoS::AtLeastOnce);
        assert_eq!(publisher.publish(p).await, ReasonCode::SUCCESS);
    }
    // One subscriber takes and acknowledges everything; the other acknowledges nothing.
    for expected in 0..50 {
        let p = eager.recv_publish().await;
        assert_eq!(seq_of(&p.payload), expected);
        eager.ack(&p).await;
    }
    for expected in 0..5 {
        assert_eq!(seq_of(&slow.recv_publish().await.payload), expected);
    }
    gw.kill9().await;

    let gw = GatewayProcess::start(dir.path(), &[]).await;
    let (mut slow, present) = Raw::connect_ok(gw.mqtt, persistent("durable-slow")).await;
    assert!(present.session_present);
    let (mut marker, _) = Raw::connect_ok(gw.mqtt, raw::v5("durable-marker")).await;
    let end = raw::message("t/marker", &seq_payload(usize::MAX), QoS::AtLeastOnce);
    assert_eq!(marker.publish(end).await, ReasonCode::SUCCESS);
    let mut order = Vec::new();
    loop {
        let p = slow.recv_publish().await;
        slow.ack(&p).await;
        match seq_of(&p.payload) {
            usize::MAX => break,
            seq => order.push(seq),
        }
    }
    assert_eq!(order, (0..50).collect::<Vec<_>>());
}
