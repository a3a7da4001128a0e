//! Cluster mode against real nats-server processes (3 clustered servers with JetStream):
//! a subscriber on node B receives what a publisher on node A sends, at QoS 0, 1 and 2, with
//! wildcards, including topic levels holding `.`, spaces and non-ASCII; exactly one copy
//! per subscription; a QoS 1 publisher's PUBACK comes once JetStream holds the message.
//!
//! A node learns of a new subscription on another node through NATS, a moment after the
//! SUBACK: each test waits for that by sending probes until one arrives, never by sleeping.

mod common;
mod ws_common;

use std::collections::BTreeSet;
use std::time::Duration;

use aviary_protocol::{Packet, QoS, ReasonCode};
use common::nats::NatsCluster;
use common::raw::{self, Raw};
use common::within;
use ws_common::Gw;

async fn node(nats: &NatsCluster, name: &str) -> Gw {
    Gw::start_with(|c| {
        c.cluster.nats = nats.urls();
        c.cluster.node = Some(name.to_owned());
    })
    .await
}

/// Publishes `probe` from `publisher` until `subscriber` receives it: the other node's
/// interest has reached NATS (for the stream too, when `qos` is 1 or 2).
async fn until_routed(publisher: &mut Raw, subscriber: &mut Raw, topic: &str, qos: QoS) {
    within("the other node's subscription to reach NATS", async {
        loop {
            publisher.publish(raw::message(topic, b"probe", qos)).await;
            if let Some(common::raw::Event::Packet(Packet::Publish(p))) =
                subscriber.next_event(Duration::from_millis(200)).await
            {
                subscriber.ack(&p).await;
                if &*p.topic == topic {
                    return;
                }
            }
        }
    })
    .await;
    // Probes still on their way are not what the test looks at.
    while let Some(common::raw::Event::Packet(Packet::Publish(p))) =
        subscriber.next_event(Duration::from_millis(300)).await
    {
        subscriber.ack(&p).await;
    }
}

#[tokio::test]
async fn a_subscriber_on_one_node_receives_what_another_node_publishes() {
    let nats = NatsCluster::start(3).await;
    let a = node(&nats, "gw-a").await;
    let b = node(&nats, "gw-b").await;
    let (mut sub, _) = Raw::connect_ok(b.mqtt, raw::v5("subscriber")).await;
    sub.subscribe("pets/+/location", QoS::ExactlyOnce).await;
    sub.subscribe("odd/#", QoS::AtLeastOnce).await;
    let (mut publisher, _) = Raw::connect_ok(a.mqtt, raw::v5("publisher")).await;
    until_routed(&mut publisher, &mut sub, "pets/0/location", QoS::AtMostOnce).await;
    until_routed(
        &mut publisher,
        &mut sub,
        "pets/0/location",
        QoS::AtLeastOnce,
    )
    .await;

    let sent = [
        ("pets/1/location", QoS::AtMostOnce),
        ("pets/2/location", QoS::AtLeastOnce),
        ("pets/3/location", QoS::ExactlyOnce),
        ("odd/a.b c/é/", QoS::AtLeastOnce),
        ("odd", QoS::ExactlyOnce),
    ];
    for (topic, qos) in sent {
        let code = publisher
            .publish(raw::message(topic, topic.as_bytes(), qos))
            .await;
        assert!(!code.is_error(), "{topic}: {code:?}");
        assert_ne!(code, ReasonCode::NO_MATCHING_SUBSCRIBERS, "{topic}");
    }
    let mut got = BTreeSet::new();
    for _ in 0..sent.len() {
        let p = sub.recv_publish().await;
        sub.ack(&p).await;
        assert_eq!(
            &p.payload[..],
            p.topic.as_bytes(),
            "the payload travels untouched"
        );
        let granted = if p.topic.starts_with("odd") {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        };
        let want = sent
            .iter()
            .find(|(t, _)| *t == &*p.topic)
            .expect("a sent topic")
            .1;
        assert_eq!(p.qos, want.min(granted), "{}", &*p.topic);
        assert!(got.insert(p.topic.to_string()), "{} came twice", &*p.topic);
    }
    let want: BTreeSet<String> = sent.iter().map(|(t, _)| (*t).to_owned()).collect();
    assert_eq!(got, want);
    // Exactly once: nothing more comes.
    sub.expect_silence(Duration::from_millis(500)).await;
}
