//! Sessions coming and going through the real connection handler, in
//! paused time: a will delay fires at its time and not before, a reconnect
//! cancels it, expiry ends the session and publishes a pending will at the
//! earlier of the two [MQTT-3.1.3-9], a later deadline replaces an earlier
//! one, and sessions recovered from a store come back with their deadlines.
//! Then, with threads: a will's fan-out does not hold up other CONNECTs.

use std::sync::mpsc;
use std::time::Duration;

use aviary_protocol::{QoS, Subscribe, SubscriptionOptions, TopicFilter};
use bytes::Bytes;
use tokio::time::Instant;

use super::*;
use crate::broker::session::{Inflight, Will};
use crate::broker::testing::{v5, with_will, Client};
use crate::broker::{Message, Outgoing, Subscription};
use crate::config::BrokerConfig;

const SEC: Duration = Duration::from_secs(1);

fn broker() -> Broker {
    Broker::new(BrokerConfig::default())
}

/// An observer subscribed to `will/#`.
async fn observer(broker: &Broker) -> Client {
    let (mut o, _) = Client::connect_ok(broker, v5("observer", 0)).await;
    o.subscribe("will/#").await;
    o
}

/// Lets every task run until all wait (a connection's end is handled by
/// its own task); paused time moves on by a millisecond at most.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_will_delay_fires_at_its_time_and_not_before() {
    let broker = broker();
    let mut o = observer(&broker).await;
    let (c, _) = Client::connect_ok(&broker, with_will(v5("w", 300), 30)).await;
    let gone = Instant::now();
    drop(c);
    assert!(o.recv_within(29 * SEC).await.is_none(), "not before 30 s");
    assert_eq!(o.recv_topic().await, "will/w");
    let after = gone.elapsed();
    assert!(after >= 30 * SEC && after < 31 * SEC, "{after:?}");
    assert_eq!(broker.session_count(), 2, "the session outlives its will");
}

#[tokio::test(start_paused = true)]
async fn a_reconnect_within_the_delay_cancels_the_will_and_the_expiry() {
    let broker = broker();
    let mut o = observer(&broker).await;
    let (c, _) = Client::connect_ok(&broker, with_will(v5("w", 60), 30)).await;
    drop(c);
    settle().await;
    let session = broker.shared.sessions.lock().get("w").unwrap().clone();
    assert!(broker.deadline(&session, Timer::Will).is_some());
    assert!(broker.deadline(&session, Timer::Expiry).is_some());
    tokio::time::sleep(10 * SEC).await;

    let mut back = v5("w", 60);
    back.clean_start = false;
    let (c, ack) = Client::connect_ok(&broker, back).await;
    assert!(ack.session_present);
    assert_eq!(broker.deadline(&session, Timer::Will), None);
    assert_eq!(broker.deadline(&session, Timer::Expiry), None);
    assert!(
        o.recv_within(600 * SEC).await.is_none(),
        "no will [MQTT-3.1.3-9]"
    );
    assert_eq!(broker.session_count(), 2, "and no expiry");
    drop(c);
}

#[tokio::test(start_paused = true)]
async fn expiry_ends_the_session_and_a_pending_will_goes_no_later() {
    let broker = broker();
    let mut o = observer(&broker).await;
    // The will would wait 100 s, the session lasts 20 s: the will goes at 20 s.
    let (c, _) = Client::connect_ok(&broker, with_will(v5("w", 20), 100)).await;
    let gone = Instant::now();
    drop(c);
    assert!(o.recv_within(19 * SEC).await.is_none(), "not before 20 s");
    assert_eq!(o.recv_topic().await, "will/w");
    let after = gone.elapsed();
    assert!(after >= 20 * SEC && after < 21 * SEC, "{after:?}");
    settle().await;
    assert_eq!(broker.session_count(), 1, "only the observer is left");
    assert_eq!(broker.shared.timers.len(), 0);

    let mut back = v5("w", 20);
    back.clean_start = false;
    let (_c, ack) = Client::connect_ok(&broker, back).await;
    assert!(!ack.session_present, "expired");
}

#[tokio::test(start_paused = true)]
async fn a_will_shorter_than_the_session_goes_first_and_the_session_later() {
    let broker = broker();
    let mut o = observer(&broker).await;
    let (c, _) = Client::connect_ok(&broker, with_will(v5("w", 20), 5)).await;
    let gone = Instant::now();
    drop(c);
    assert_eq!(o.recv_topic().await, "will/w");
    assert!(gone.elapsed() < 6 * SEC);
    assert_eq!(broker.session_count(), 2);
    tokio::time::sleep_until(gone + 21 * SEC).await;
    assert_eq!(broker.session_count(), 1, "expired at 20 s");
    assert!(o.recv_within(600 * SEC).await.is_none(), "one will only");
}

#[tokio::test(start_paused = true)]
async fn a_later_deadline_replaces_an_earlier_one() {
    let broker = broker();
    let (c, _) = Client::connect_ok(&broker, v5("w", 10)).await;
    let start = Instant::now();
    drop(c);
    tokio::time::sleep(5 * SEC).await;
    // Back, and away again with a longer expiry set at DISCONNECT.
    let mut back = v5("w", 10);
    back.clean_start = false;
    let (c, _) = Client::connect_ok(&broker, back).await;
    c.disconnect(Some(30)).await;
    tokio::time::sleep_until(start + 12 * SEC).await;
    assert_eq!(broker.session_count(), 1, "the first expiry is gone");
    tokio::time::sleep_until(start + 34 * SEC).await;
    assert_eq!(broker.session_count(), 1);
    tokio::time::sleep_until(start + 36 * SEC).await;
    assert_eq!(broker.session_count(), 0, "expired 30 s after leaving");
}

fn subscription() -> Subscription {
    Subscription {
        options: SubscriptionOptions::qos(QoS::AtLeastOnce),
        identifier: None,
    }
}

fn message(topic: &str) -> Arc<Message> {
    Arc::new(Message {
        topic: topic.into(),
        payload: Bytes::from_static(b"m"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
        expires_at: None,
        stored: Default::default(),
        stream_seq: None,
    })
}

fn outgoing(topic: &str) -> Outgoing {
    Outgoing {
        msg: message(topic),
        qos: QoS::AtLeastOnce,
        retain: false,
        subscription_ids: Vec::new(),
        seq: None,
    }
}

#[tokio::test(start_paused = true)]
async fn a_recovered_session_is_routed_and_resumed_with_its_messages() {
    let broker = broker();
    let start = Instant::now();
    broker.restore_session(RecoveredSession {
        client_id: "r".into(),
        subscriptions: vec![(TopicFilter::new("t/#").unwrap(), subscription())],
        queued: vec![outgoing("t/queued")],
        inflight: vec![Inflight {
            packet_id: std::num::NonZeroU16::new(3).unwrap(),
            out: outgoing("t/inflight"),
            released: false,
        }],
        expiry_secs: 60,
        expires_at: Some(start + 60 * SEC),
        ..RecoveredSession::default()
    });
    assert_eq!(
        (broker.session_count(), broker.subscription_count()),
        (1, 1)
    );
    broker.publish(message("t/live"), None);

    let mut back = v5("r", 60);
    back.clean_start = false;
    let (mut c, ack) = Client::connect_ok(&broker, back).await;
    assert!(ack.session_present);
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(c.recv_topic().await);
    }
    assert_eq!(got, ["t/inflight", "t/queued", "t/live"]);
    tokio::time::sleep(120 * SEC).await;
    assert_eq!(
        broker.session_count(),
        1,
        "online: the expiry was cancelled"
    );
}

#[tokio::test(start_paused = true)]
async fn recovered_deadlines_fire_at_their_absolute_times() {
    let broker = broker();
    let mut o = observer(&broker).await;
    let start = Instant::now();
    let will = Will {
        message: message("will/late"),
        delay_secs: 30,
        owner: None,
    };
    broker.restore_session(RecoveredSession {
        client_id: "late".into(),
        expiry_secs: 60,
        expires_at: Some(start + 20 * SEC),
        pending_will: Some((will.clone(), start + 10 * SEC)),
        ..RecoveredSession::default()
    });
    // Due while the gateway was down: published at once.
    broker.restore_session(RecoveredSession {
        client_id: "overdue".into(),
        pending_will: Some((
            Will {
                message: message("will/overdue"),
                ..will
            },
            start,
        )),
        ..RecoveredSession::default()
    });
    assert_eq!(o.recv_topic().await, "will/overdue");
    assert!(start.elapsed() < SEC, "at once");
    assert_eq!(o.recv_topic().await, "will/late");
    let at = start.elapsed();
    assert!(at >= 10 * SEC && at < 11 * SEC, "{at:?}");
    assert_eq!(broker.session_count(), 3);
    tokio::time::sleep_until(start + 20 * SEC).await;
    settle().await;
    assert_eq!(broker.session_count(), 2, "`late` expired at 20 s");
}

/// Opens a session for `id` as a CONNECT would, outside any connection,
/// with a will on `will/<id>` if `will_delay` is given. Returns it with the
/// link id attached.
fn open(
    broker: &Broker,
    id: &str,
    clean_start: bool,
    will_delay: Option<u32>,
    expiry_secs: u32,
) -> (Arc<Session>, u64) {
    let link_id = broker.next_id();
    let connecting = Connecting {
        link_id,
        window: 10,
        will: will_delay.map(|delay_secs| Will {
            message: message(&format!("will/{id}")),
            delay_secs,
            owner: None,
        }),
        expiry_secs,
        username: None,
        client: crate::broker::ClientFacts::for_test(),
        direct: crate::broker::Direct::NONE,
    };
    let opened = broker.open_session(id.into(), clean_start, connecting);
    (opened.session, link_id)
}

/// Runs `publish_a_will` on a thread while a subscriber's session is
/// locked, so that the will's fan-out is stuck part-way; meanwhile a
/// CONNECT for another client must complete.
fn connect_during_a_stuck_will(publish_a_will: impl FnOnce(&Broker) + Send + 'static) {
    let broker = broker();
    let (subscriber, _) = open(&broker, "sub", true, None, u32::MAX);
    let sub = Subscribe {
        packet_id: std::num::NonZeroU16::new(1).unwrap(),
        properties: Default::default(),
        filters: vec![(
            TopicFilter::new("will/#").unwrap(),
            SubscriptionOptions::qos(QoS::AtLeastOnce),
        )],
    };
    broker.subscribe(&subscriber, sub);
    let held = subscriber.hold_lock();
    let publisher = std::thread::spawn({
        let broker = broker.clone();
        move || publish_a_will(&broker)
    });
    // Long enough for the fan-out to reach the locked session. This only
    // lets the test fail when it should: it passes whatever the timing.
    std::thread::sleep(Duration::from_millis(100));
    let (done, connected) = mpsc::channel();
    std::thread::spawn({
        let broker = broker.clone();
        move || {
            let _ = open(&broker, "other", true, None, 0);
            let _ = done.send(());
        }
    });
    let result = connected.recv_timeout(Duration::from_secs(10));
    drop(held);
    publisher.join().expect("the will's publisher");
    result.expect("a CONNECT completes while a will is being published");
    assert_eq!(subscriber.queued(), 1, "the will reached the subscriber");
}

#[test]
fn a_will_published_as_its_session_expires_holds_no_registry_lock() {
    connect_during_a_stuck_will(|broker| {
        let (session, link) = open(broker, "w", true, Some(60), 100);
        let ending = Ending {
            publish_will: true,
            expiry_secs: 100,
        };
        broker.connection_closed(&session, link, ending);
        // As the timers' driver does when the expiry falls due.
        broker.expire_session(&session, session.generation());
    });
}

#[test]
fn a_will_published_by_a_clean_start_takeover_holds_no_registry_lock() {
    connect_during_a_stuck_will(|broker| {
        open(broker, "w", true, Some(60), 100);
        // The session ends, and its will with it.
        open(broker, "w", true, None, 100);
    });
}
