//! Runs seen from the clients: a read of many PUBLISH packets, queued per subscriber, still
//! arrives whole and in order, says for each message whether anyone matched, and is queued
//! before whatever the publisher does next, even a packet that ends its connection.

use std::num::{NonZeroU16, NonZeroU32};
use std::sync::Arc;

use aviary_protocol::{Ack, Packet, Publish, QoS, ReasonCode};

use super::{Staged, RUN};
use crate::broker::router::Delivery;
use crate::broker::testing::{v5, Client};
use crate::broker::{Broker, Message};
use crate::config::BrokerConfig;

/// A PUBLISH on `topic` at `qos` whose payload is `n`, with packet id `n + 1` above QoS 0.
fn numbered(topic: &str, qos: QoS, n: usize) -> Packet {
    let mut p = Publish::new(topic.to_owned(), n.to_string().into_bytes());
    p.qos = qos;
    if qos != QoS::AtMostOnce {
        p.packet_id = NonZeroU16::new(u16::try_from(n + 1).expect("few"));
    }
    Packet::Publish(p)
}

/// The topic and payload of the next PUBLISH, acknowledged.
async fn next(c: &mut Client) -> (String, String) {
    match c.recv().await {
        Packet::Publish(p) => {
            if let Some(id) = p.packet_id {
                c.send(Packet::PubAck(Ack::new(id))).await;
            }
            let payload = String::from_utf8(p.payload.to_vec()).expect("a number");
            (p.topic.to_string(), payload)
        }
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

/// The next PUBLISH packets are on `topic`, numbered `numbers` in order.
async fn expect_numbered(c: &mut Client, topic: &str, numbers: std::ops::Range<usize>) {
    for n in numbers {
        assert_eq!(next(c).await, (topic.to_owned(), n.to_string()));
    }
}

async fn pair(broker: &Broker, filter: &str) -> (Client, Client) {
    let (publisher, _) = Client::connect_ok(broker, v5("p", 0)).await;
    let (mut subscriber, _) = Client::connect_ok(broker, v5("s", 0)).await;
    subscriber.subscribe(filter).await;
    (publisher, subscriber)
}

#[tokio::test(start_paused = true)]
async fn a_read_arrives_whole_and_in_order_across_topics_runs_and_qos() {
    let broker = Broker::new(BrokerConfig::default());
    let (mut publisher, mut subscriber) = pair(&broker, "#").await;
    // Runs cut by their length, by a new topic, by every other topic, and by a new QoS.
    let mut sent = Vec::new();
    let topics = (0..2 * RUN + 10).map(|_| ("a", QoS::AtMostOnce));
    let topics = topics.chain((0..3).map(|_| ("b", QoS::AtMostOnce)));
    let topics = topics.chain((0..40).map(|i| (["a", "b"][i % 2], QoS::AtMostOnce)));
    let topics = topics.chain((0..10).map(|_| ("a", QoS::AtLeastOnce)));
    for (n, (topic, qos)) in topics.enumerate() {
        sent.push((topic.to_owned(), n.to_string(), qos));
    }
    let packets = sent.iter().enumerate();
    let packets = packets.map(|(n, (topic, _, qos))| numbered(topic, *qos, n));
    publisher.send_all(packets.collect::<Vec<_>>()).await;
    for (topic, payload, _) in &sent {
        assert_eq!(
            next(&mut subscriber).await,
            (topic.clone(), payload.clone())
        );
    }
}

#[tokio::test(start_paused = true)]
async fn each_message_of_a_run_says_whether_anyone_matched() {
    let broker = Broker::new(BrokerConfig::default());
    let (mut publisher, mut subscriber) = pair(&broker, "t").await;
    let nobody = (0..5).map(|n| numbered("nobody", QoS::AtLeastOnce, n));
    let someone = (5..10).map(|n| numbered("t", QoS::AtLeastOnce, n));
    publisher.send_all(nobody.chain(someone)).await;
    for n in 0..10u16 {
        let expected = match n {
            0..5 => ReasonCode::NO_MATCHING_SUBSCRIBERS,
            _ => ReasonCode::SUCCESS,
        };
        match publisher.recv().await {
            Packet::PubAck(ack) => {
                assert_eq!(ack.packet_id.get(), n + 1);
                assert_eq!(ack.reason_code, expected, "message {n}");
            }
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }
    expect_numbered(&mut subscriber, "t", 5..10).await;
}

#[tokio::test(start_paused = true)]
async fn a_run_is_queued_before_the_disconnect_after_it() {
    let broker = Broker::new(BrokerConfig::default());
    let (mut publisher, mut subscriber) = pair(&broker, "t").await;
    let messages = (0..10).map(|n| numbered("t", QoS::AtMostOnce, n));
    let bye = aviary_protocol::Disconnect::new(ReasonCode::NORMAL_DISCONNECTION);
    publisher
        .send_all(messages.chain([Packet::Disconnect(bye)]))
        .await;
    expect_numbered(&mut subscriber, "t", 0..10).await;
}

#[tokio::test(start_paused = true)]
async fn a_run_is_queued_even_when_a_packet_after_it_ends_the_connection() {
    let broker = Broker::new(BrokerConfig::default());
    let (mut publisher, mut subscriber) = pair(&broker, "t").await;
    let messages = (0..10).map(|n| numbered("t", QoS::AtLeastOnce, n));
    // Only a server sets a subscription identifier on a PUBLISH: a protocol error, found
    // while the run is open, which closes the connection.
    let mut refused = Publish::new("t", &b"refused"[..]);
    refused.properties.subscription_identifiers = vec![NonZeroU32::MIN];
    let refused = Packet::Publish(refused);
    publisher.send_all(messages.chain([refused])).await;
    expect_numbered(&mut subscriber, "t", 0..10).await;
    let after = subscriber
        .recv_within(std::time::Duration::from_secs(5))
        .await;
    assert!(after.is_none(), "not the refused one: {after:?}");
}

#[tokio::test(start_paused = true)]
async fn a_persistent_sessions_qos_1_delivery_is_queued_at_once() {
    let broker = Broker::new(BrokerConfig::default());
    let (_subscriber, _) = Client::connect_ok(&broker, v5("s", 300)).await;
    let session = broker.shared.sessions.lock().get("s").cloned();
    let target = (
        session.expect("s has a session"),
        delivery(QoS::AtLeastOnce),
    );
    let message = |qos| {
        let mut p = Publish::new("t", &b"m"[..]);
        p.qos = qos;
        Arc::new(Message::from_publish(p, "t".into()))
    };
    let mut out = Staged::runs(&broker);
    let stamp = (broker.shared.routing.stamp(), None);
    // Its PUBACK waits for the store, which holds the message once it is queued.
    let qos1 = message(QoS::AtLeastOnce);
    assert_eq!(out.open(&qos1, stamp, [&target].into_iter()), None);
    let qos0 = message(QoS::AtMostOnce);
    assert_eq!(out.open(&qos0, stamp, [&target].into_iter()), Some(1));
    assert_eq!(out.join(&message(QoS::AtMostOnce), None), Some(1));
    assert_eq!(out.join(&qos1, None), None, "another QoS: not the run's");
}

#[tokio::test(start_paused = true)]
async fn a_message_routed_on_its_own_is_never_staged() {
    let broker = Broker::new(BrokerConfig::default());
    let (_subscriber, _) = Client::connect_ok(&broker, v5("s", 0)).await;
    let session = broker.shared.sessions.lock().get("s").cloned();
    let target = (session.expect("s has a session"), delivery(QoS::AtMostOnce));
    let msg = Arc::new(Message::from_publish(
        Publish::new("t", &b"m"[..]),
        "t".into(),
    ));
    let mut out = Staged::at_once(&broker);
    let stamp = (broker.shared.routing.stamp(), None);
    assert_eq!(out.open(&msg, stamp, [&target].into_iter()), None);
    assert_eq!(out.join(&msg, None), None);
}

fn delivery(qos: QoS) -> Delivery {
    Delivery {
        client: 0,
        qos,
        retain_as_published: false,
        identifiers: Vec::new(),
        shared: false,
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_goes_before_a_message_a_shared_group_decided() {
    let broker = Broker::new(BrokerConfig::default());
    let (mut publisher, mut subscriber) = pair(&broker, "x").await;
    // A shared group's pick is made per message, so that message is never staged: it must
    // not overtake the run before it.
    subscriber.subscribe("$share/g/a").await;
    let topics = ["x", "x", "x", "a", "x"];
    let packets = topics.iter().enumerate();
    let packets = packets.map(|(n, topic)| numbered(topic, QoS::AtMostOnce, n));
    publisher.send_all(packets.collect::<Vec<_>>()).await;
    for (n, topic) in topics.iter().enumerate() {
        assert_eq!(
            next(&mut subscriber).await,
            (topic.to_string(), n.to_string())
        );
    }
}
