//! Many QoS 1 subscriptions across nodes, against real nats-server processes. Each node has
//! one stream consumer whatever its number of subscriptions (nats-server's own MQTT layer,
//! with a consumer per subscription, is known to fail at a few thousand). Past 1,000 distinct
//! filters the consumer takes in every stream message and the node's subscription tree picks
//! its own (`cluster::cover`): a node whose client subscribed to thousands of distinct
//! filters gets every QoS 1 message published for them on another node, and nothing else.

mod cluster_common;
mod common;
mod ws_common;

use std::collections::BTreeSet;

use aviary_protocol::{Packet, QoS, SubscriptionOptions};
use cluster_common::node;
use common::nats::NatsCluster;
use common::raw::{self, until_routed, Raw};
use common::within_for;

/// Distinct filters, one per device: `fleet/{i}/cmd`.
const DEVICES: usize = 3_000;
/// Filters per SUBSCRIBE.
const PER_SUBSCRIBE: usize = 100;
/// QoS 1 PUBLISHes the publisher keeps unacknowledged.
const WINDOW: usize = 100;

fn topic(i: usize) -> String {
    format!("fleet/{i}/cmd")
}

#[tokio::test]
async fn thousands_of_qos_1_filters_on_a_node_each_get_their_messages() {
    let nats = NatsCluster::start(3).await;
    let a = node(&nats, "gw-a").await;
    let b = node(&nats, "gw-b").await;
    let (mut sub, _) = Raw::connect_ok(b.mqtt, raw::v5("fleet")).await;
    let topics: Vec<String> = (0..DEVICES).map(topic).collect();
    for chunk in topics.chunks(PER_SUBSCRIBE) {
        let filters: Vec<(&str, SubscriptionOptions)> = chunk
            .iter()
            .map(|t| (t.as_str(), SubscriptionOptions::qos(QoS::AtLeastOnce)))
            .collect();
        let ack = sub.subscribe_with(&filters, None).await;
        assert!(ack.reason_codes.iter().all(|c| !c.is_error()), "{ack:?}");
    }
    let (mut publisher, _) = Raw::connect_ok(a.mqtt, raw::v5("commands")).await;
    // The last filter subscribed: once it routes, the consumer has them all.
    let last = topic(DEVICES - 1);
    until_routed(&mut publisher, &mut sub, &last, QoS::AtLeastOnce).await;

    let sending = async {
        let mut unacked = 0;
        for t in &topics {
            while unacked >= WINDOW {
                expect_puback(&mut publisher).await;
                unacked -= 1;
            }
            // Every tenth device also reports a status nobody here subscribed to.
            let status = t.replace("/cmd", "/status");
            let also = t.ends_with("0/cmd").then_some(&status);
            for topic in std::iter::once(t).chain(also) {
                let mut p = raw::message(topic, topic.as_bytes(), QoS::AtLeastOnce);
                p.packet_id = Some(publisher.packet_id());
                publisher.send(Packet::Publish(p)).await;
                unacked += 1;
            }
        }
        for _ in 0..unacked {
            expect_puback(&mut publisher).await;
        }
    };
    let receiving = async {
        let mut got = BTreeSet::new();
        while got.len() < DEVICES {
            let p = sub.recv_publish().await;
            sub.ack(&p).await;
            assert_eq!(&p.payload[..], p.topic.as_bytes());
            assert!(p.topic.ends_with("/cmd"), "not subscribed: {}", &*p.topic);
            assert!(got.insert(p.topic.to_string()), "{} twice", &*p.topic);
        }
        got
    };
    let ((), got) = within_for(cluster_common::FAILOVER, "every device's message", async {
        tokio::join!(sending, receiving)
    })
    .await;
    assert_eq!(got, topics.iter().cloned().collect::<BTreeSet<_>>());
    // The statuses went to gw-b too, and stop at its subscription tree.
    sub.expect_silence(std::time::Duration::from_millis(500))
        .await;
}

async fn expect_puback(publisher: &mut Raw) {
    match publisher.recv().await {
        Packet::PubAck(ack) => assert!(!ack.reason_code.is_error(), "{ack:?}"),
        other => panic!("expected a PUBACK, got {other:?}"),
    }
}
