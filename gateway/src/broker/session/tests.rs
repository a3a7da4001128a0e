//! Tests of a session's bookkeeping: queue limits and eviction, the
//! in-flight window, resending on resume, takeover, and retained messages
//! pulled through cursors (order after the SUBACK and the queue, window and
//! batch limits, messages changed since the SUBSCRIBE, unsubscribe, resume).

use std::num::{NonZeroU16, NonZeroU32};
use std::time::Duration;

use super::*;
use crate::broker::retained::RetainedStore;
use crate::broker::Message;
use aviary_protocol::{Ack, QoS, SubAck};
use bytes::Bytes;
use outbox::Outbox;
use parking_lot::RwLock;

fn message(topic: &str, payload: &[u8], qos: QoS) -> Arc<Message> {
    Arc::new(Message {
        topic: ByteString::from(topic),
        payload: Bytes::copy_from_slice(payload),
        qos,
        retain: false,
        properties: Default::default(),
        expires_at: None,
        stored: Default::default(),
        stream_seq: None,
    })
}

/// A message on topic `t` for one subscriber; also for the outbox's own tests.
pub(super) fn out(qos: QoS, payload: &'static [u8]) -> Outgoing {
    Outgoing {
        msg: message("t", payload, qos),
        qos,
        retain: false,
        subscription_ids: Vec::new(),
        seq: None,
    }
}

const LIMITS: QueueLimits = QueueLimits {
    max_messages: 3,
    max_bytes: 1000,
    qos0_offline: false,
    slow: SlowAfter::DEFAULT,
};

/// Attaches link `id` with an in-flight `window`, no will and no expiry.
fn attach(s: &Session, id: u64, window: usize) -> Attached {
    s.attach(Connecting {
        link_id: id,
        window,
        will: None,
        expiry_secs: 0,
        username: None,
        client: crate::broker::ClientFacts::for_test(),
        direct: crate::broker::Direct::NONE,
    })
}

/// A connection's end that keeps the session and would publish a will.
const LOST: Ending = Ending {
    publish_will: true,
    expiry_secs: 60,
};

/// A session attached to link 7 with an in-flight window of 2.
fn online() -> Session {
    let s = Session::new(1, ByteString::from_static("c"));
    let _kick = attach(&s, 7, 2);
    s
}

/// No retained messages.
fn no_retained() -> SharedRetained {
    RwLock::new(RetainedStore::new())
}

/// A store with `r/0` … `r/{n-1}` retained at `qos`, payload = topic.
fn retained(n: usize, qos: QoS) -> SharedRetained {
    let mut store = RetainedStore::new();
    for i in 0..n {
        let topic = format!("r/{i}");
        store.set(&topic, message(&topic, topic.as_bytes(), qos));
    }
    RwLock::new(store)
}

/// Subscribes `s` (link 7) to `filter` with the retained messages of `store`.
fn subscribe(s: &Session, store: &SharedRetained, filter: &str, granted: QoS) {
    let filter = TopicFilter::new(filter.to_owned()).unwrap();
    let version = store.read().version();
    let cursor = RetainedCursor::new(filter, granted, NonZeroU32::new(9), version);
    let ack = Packet::SubAck(SubAck {
        packet_id: NonZeroU16::new(1).unwrap(),
        properties: Default::default(),
        reason_codes: vec![ReasonCode::GRANTED_QOS_1],
    });
    s.subscribed(7, ack, vec![cursor]);
}

/// The payloads of a batch's messages, as text.
fn payloads(batch: &Batch) -> Vec<String> {
    let text = |o: &Outgoing| String::from_utf8(o.msg.payload.to_vec()).unwrap();
    batch.messages.iter().map(|(o, _, _)| text(o)).collect()
}

/// Takes batches of up to `max` (acknowledging QoS 1 ones) until one is
/// empty; returns every payload sent.
fn drain(s: &Session, store: &SharedRetained, link: u64, max: usize) -> Vec<String> {
    let mut sent = Vec::new();
    loop {
        let batch = s.take_batch(link, max, Instant::now(), store);
        if batch.is_empty() && !batch.more {
            return sent;
        }
        for (_, id, _) in &batch.messages {
            if let Some(id) = id {
                assert!(s.puback(*id));
            }
        }
        sent.extend(payloads(&batch));
    }
}

#[test]
fn offline_qos0_is_not_queued_but_qos1_is() {
    let s = Session::new(1, ByteString::from_static("c"));
    assert_eq!(
        s.enqueue(out(QoS::AtMostOnce, b"a"), &LIMITS),
        Enqueued::DroppedOffline
    );
    assert_eq!(
        s.enqueue(out(QoS::AtLeastOnce, b"a"), &LIMITS),
        Enqueued::Queued {
            evicted: 0,
            dropped: 0
        }
    );
    assert_eq!(s.queued(), 1);
}

#[test]
fn full_queue_evicts_qos0_first_then_oldest() {
    let s = online();
    s.enqueue(out(QoS::AtLeastOnce, b"1"), &LIMITS);
    s.enqueue(out(QoS::AtMostOnce, b"2"), &LIMITS);
    s.enqueue(out(QoS::AtLeastOnce, b"3"), &LIMITS);
    assert_eq!(
        s.enqueue(out(QoS::AtLeastOnce, b"4"), &LIMITS),
        Enqueued::Queued {
            evicted: 1,
            dropped: 1
        }
    );
    let queued = |s: &Session| -> Vec<Bytes> {
        let st = s.state.lock();
        st.durable
            .outbox
            .queue()
            .iter()
            .map(|o| o.msg.payload.clone())
            .collect()
    };
    assert_eq!(queued(&s), [&b"1"[..], b"3", b"4"]);
    s.enqueue(out(QoS::AtLeastOnce, b"5"), &LIMITS);
    assert_eq!(queued(&s), [&b"3"[..], b"4", b"5"]);
    assert_eq!(s.dropped(), 2);
    let bytes = s.state.lock().durable.outbox.queued_bytes();
    assert_eq!(bytes, 6, "topic + payload of 3 messages");
}

#[test]
fn window_limits_inflight_and_acks_open_it() {
    let s = online();
    let store = no_retained();
    for p in [b"1", b"2", b"3"] {
        s.enqueue(out(QoS::AtLeastOnce, p), &LIMITS);
    }
    let batch = s.take_batch(7, 100, Instant::now(), &store);
    assert_eq!(batch.messages.len(), 2, "window of 2");
    let first = batch.messages[0].1.unwrap();
    assert!(s.puback(first));
    assert!(!s.puback(first), "a second PUBACK finds nothing");
    let batch = s.take_batch(7, 100, Instant::now(), &store);
    assert_eq!(batch.messages.len(), 1);
}

#[test]
fn resumed_session_resends_inflight_with_dup_and_pubrel() {
    let s = online();
    let store = no_retained();
    s.enqueue(out(QoS::ExactlyOnce, b"1"), &LIMITS);
    s.enqueue(out(QoS::AtLeastOnce, b"2"), &LIMITS);
    let b = s.take_batch(7, 100, Instant::now(), &store);
    let ids: Vec<_> = b.messages.iter().map(|m| m.1.unwrap()).collect();
    assert!(s.pubrec(ids[0], false));
    assert!(s.detach(7, LOST).is_some());
    let _kick = attach(&s, 8, 10);
    let b = s.take_batch(8, 100, Instant::now(), &store);
    assert_eq!(b.control, vec![Packet::PubRel(Ack::new(ids[0]))]);
    assert_eq!(b.messages.len(), 1);
    assert_eq!(b.messages[0].1, Some(ids[1]));
    assert!(b.messages[0].2, "DUP set on resend");
    assert!(s.pubcomp(ids[0]));
}

#[test]
fn takeover_kicks_the_old_link() {
    let s = Session::new(1, ByteString::from_static("c"));
    let old = attach(&s, 1, 1).wake;
    assert_eq!(old.kicked(), None);
    let new = attach(&s, 2, 1).wake;
    assert_eq!(old.kicked(), Some(ReasonCode::SESSION_TAKEN_OVER));
    assert_eq!(new.kicked(), None, "each connection has its own");
    assert!(
        s.detach(1, LOST).is_none(),
        "the old connection no longer owns the session"
    );
    assert!(s.is_online());
}

#[test]
fn packet_ids_skip_those_in_flight() {
    let mut outbox = Outbox::default();
    outbox.set_last_packet_id(u16::MAX - 1);
    assert_eq!(outbox.alloc_packet_id().get(), u16::MAX);
    assert_eq!(outbox.alloc_packet_id().get(), 1, "wraps past zero");
}

#[test]
fn retained_come_after_suback_and_earlier_queue_before_later_queue() {
    let s = online();
    let store = retained(3, QoS::AtMostOnce);
    let limits = QueueLimits {
        max_messages: 10,
        ..LIMITS
    };
    s.enqueue(out(QoS::AtMostOnce, b"before"), &limits);
    subscribe(&s, &store, "r/#", QoS::AtMostOnce);
    s.enqueue(out(QoS::AtMostOnce, b"after"), &limits);
    let batch = s.take_batch(7, 100, Instant::now(), &store);
    assert!(matches!(batch.control[..], [Packet::SubAck(_)]));
    assert_eq!(payloads(&batch), ["before", "r/0", "r/1", "r/2", "after"]);
    let (first, _, _) = &batch.messages[1];
    assert!(first.retain, "RETAIN set [MQTT-3.3.1-9]");
    assert_eq!(first.subscription_ids, [NonZeroU32::new(9).unwrap()]);
    assert_eq!(
        s.state.lock().durable.outbox.cursors(),
        0,
        "finished cursors go"
    );
}

#[test]
fn retained_pull_respects_batch_size_and_window() {
    let s = online();
    let store = retained(5, QoS::ExactlyOnce);
    subscribe(&s, &store, "r/+", QoS::AtLeastOnce);
    let now = Instant::now();
    let batch = s.take_batch(7, 100, now, &store);
    assert_eq!(payloads(&batch), ["r/0", "r/1"], "window of 2");
    assert!(!batch.more, "waits for an acknowledgement, not a wake-up");
    assert!(batch
        .messages
        .iter()
        .all(|(o, _, _)| o.qos == QoS::AtLeastOnce));
    assert!(s.take_batch(7, 100, now, &store).is_empty());
    assert!(s.puback(batch.messages[0].1.unwrap()));
    assert_eq!(payloads(&s.take_batch(7, 100, now, &store)), ["r/2"]);

    // QoS 0 needs no window, only room in the batch.
    let s = online();
    let store = retained(5, QoS::AtMostOnce);
    subscribe(&s, &store, "r/+", QoS::ExactlyOnce);
    let batch = s.take_batch(7, 3, now, &store);
    assert!(batch.more, "a full batch asks to be called again");
    assert_eq!(payloads(&batch), ["r/0", "r/1", "r/2"]);
    assert_eq!(drain(&s, &store, 7, 3), ["r/3", "r/4"]);
}

#[test]
fn more_retained_than_the_queue_holds_all_arrive_once() {
    let s = online();
    let store = retained(1000, QoS::AtLeastOnce);
    subscribe(&s, &store, "r/#", QoS::AtLeastOnce);
    let sent = drain(&s, &store, 7, 64);
    let mut expected: Vec<String> = (0..1000).map(|i| format!("r/{i}")).collect();
    expected.sort();
    let mut got = sent.clone();
    got.sort();
    assert_eq!(got, expected, "each once, whatever the queue limit of 3");
    assert_eq!(s.dropped(), 0);
}

#[test]
fn live_flood_stays_bounded_while_retained_are_pending() {
    let s = online();
    let store = retained(100, QoS::AtMostOnce);
    subscribe(&s, &store, "r/#", QoS::AtMostOnce);
    for _ in 0..50 {
        s.enqueue(out(QoS::AtMostOnce, b"live"), &LIMITS);
    }
    assert_eq!(s.queued(), 3, "the queue keeps its limit");
    assert_eq!(s.dropped(), 47);
    let sent = drain(&s, &store, 7, 256);
    assert_eq!(sent.len(), 103, "every retained message and the 3 kept");
    assert_eq!(sent[100..], ["live", "live", "live"]);
}

#[test]
fn retained_changed_after_subscribe_is_sent_as_it_is_now() {
    let s = online();
    let store = retained(6, QoS::AtMostOnce);
    let now = Instant::now();
    let mut expiring = Message::clone(&message("r/5", b"r/5", QoS::AtMostOnce));
    expiring.expires_at = Some(now + Duration::from_secs(60));
    store.write().set("r/5", Arc::new(expiring));
    subscribe(&s, &store, "r/#", QoS::AtMostOnce);
    assert_eq!(payloads(&s.take_batch(7, 1, now, &store)), ["r/0"]);
    {
        let mut st = store.write();
        // Replaced after the SUBSCRIBE: the current message goes.
        st.set("r/1", message("r/1", b"new", QoS::AtMostOnce));
        // A new topic goes out live only.
        st.set("r/10", message("r/10", b"added", QoS::AtMostOnce));
        // Cleared: nothing to send.
        st.remove("r/2");
        // Cleared and retained again: a new topic as far as the cursor goes.
        st.remove("r/3");
        st.set("r/3", message("r/3", b"again", QoS::AtMostOnce));
    }
    // Pulled after r/5's expiry interval ran out [MQTT-3.3.2-5].
    let later = now + Duration::from_secs(61);
    let batch = s.take_batch(7, 100, later, &store);
    assert_eq!(payloads(&batch), ["new", "r/4"]);
    assert_eq!(s.state.lock().durable.outbox.cursors(), 0);
}

#[test]
fn unsubscribe_stops_retained_and_resubscribe_restarts() {
    let s = online();
    let store = retained(10, QoS::AtMostOnce);
    subscribe(&s, &store, "r/#", QoS::AtMostOnce);
    let now = Instant::now();
    assert_eq!(payloads(&s.take_batch(7, 2, now, &store)), ["r/0", "r/1"]);
    subscribe(&s, &store, "r/#", QoS::AtMostOnce);
    let batch = s.take_batch(7, 2, now, &store);
    assert_eq!(payloads(&batch), ["r/0", "r/1"], "from the start again");
    assert_eq!(
        s.state.lock().durable.outbox.cursors(),
        1,
        "one cursor per filter"
    );
    s.unsubscribe(&TopicFilter::new("r/#").unwrap());
    assert!(drain(&s, &store, 7, 100).is_empty());
}

#[test]
fn retained_resume_with_the_session() {
    let s = online();
    let store = retained(6, QoS::AtLeastOnce);
    subscribe(&s, &store, "r/#", QoS::AtLeastOnce);
    let batch = s.take_batch(7, 100, Instant::now(), &store);
    assert_eq!(payloads(&batch), ["r/0", "r/1"]);
    assert!(s.detach(7, LOST).is_some());
    let _kick = attach(&s, 8, 10);
    let batch = s.take_batch(8, 100, Instant::now(), &store);
    let dup: Vec<bool> = batch.messages.iter().map(|m| m.2).collect();
    assert_eq!(payloads(&batch), ["r/0", "r/1", "r/2", "r/3", "r/4", "r/5"]);
    assert_eq!(dup, [true, true, false, false, false, false]);
}

#[test]
fn discarded_session_drops_its_cursors() {
    let s = online();
    let store = retained(6, QoS::AtMostOnce);
    subscribe(&s, &store, "r/#", QoS::AtMostOnce);
    s.discard();
    assert_eq!(s.state.lock().durable.outbox.cursors(), 0);
}

#[test]
fn a_pull_that_only_skips_pauses_and_resumes() {
    // More topics retained since the SUBSCRIBE than one pull may look at,
    // all before the one it is owed.
    let s = online();
    let store = no_retained();
    let owed = message("r/z", b"r/z", QoS::AtMostOnce);
    store.write().set("r/z", owed);
    subscribe(&s, &store, "r/#", QoS::AtMostOnce);
    for i in 0..5000 {
        let topic = format!("r/{i}");
        let new = message(&topic, b"new", QoS::AtMostOnce);
        store.write().set(&topic, new);
    }
    let batch = s.take_batch(7, 100, Instant::now(), &store);
    assert!(batch.messages.is_empty());
    assert!(batch.more, "nothing yet, but call again");
    assert_eq!(drain(&s, &store, 7, 100), ["r/z"]);
}

mod backlog;
mod direct;
mod wills;

/// Every session, idle ones included, is one allocation of this struct (in
/// an `Arc`, 16 bytes more): at most 240 bytes keeps it in jemalloc's
/// 256-byte size class (it was 368, in the 384 one, before its outbox became
/// one pointer until the first message).
#[test]
fn a_session_fits_its_size_class() {
    let size = std::mem::size_of::<Session>();
    assert!(size <= 240, "Session grew to {size} bytes");
}

/// What an idle connection's writer does, and the end of its session, leave the outbox
/// without state; the first message gives it one, which stays.
#[test]
fn an_idle_session_allocates_no_outbox() {
    let allocated = |s: &Session| s.state.lock().durable.outbox.is_allocated();
    let store = no_retained();
    let s = online();
    let batch = s.take_batch(7, 100, Instant::now(), &store);
    assert!(batch.is_empty() && !batch.more);
    assert!(!allocated(&s), "an idle writer's poll allocated the outbox");

    s.enqueue(out(QoS::AtLeastOnce, b"m"), &LIMITS);
    assert!(allocated(&s));
    assert_eq!(drain(&s, &store, 7, 100), ["m"]);
    assert!(allocated(&s), "kept for the next message");

    let idle = online();
    let _ = idle.detach(7, LOST);
    assert!(!allocated(&idle), "a session's end allocated the outbox");
}
