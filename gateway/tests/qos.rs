//! Delivery guarantees end to end: 10,000 messages from one publisher to
//! one subscriber at QoS 1 and at QoS 2, counted exactly and in order;
//! QoS 2 exactly-once when a publisher resends before PUBREL; and QoS
//! downgraded to the subscription's.

mod common;

use std::time::Duration;

use aviary_protocol::{Ack, Packet, QoS, ReasonCode};
use common::raw::{self, Raw};
use common::rumqtt::{v4_options, v5_options, V4, V5};
use common::{seq_of, seq_payload, within_for, TestGateway};

const COUNT: usize = 10_000;

/// Bound on a whole bulk transfer.
const BULK: Duration = Duration::from_secs(60);

/// Checks that `received` is exactly `0..COUNT` in order.
fn assert_exact(received: &[usize], what: &str) {
    let dups = received.len() - {
        let mut sorted = received.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        sorted.len()
    };
    assert_eq!(dups, 0, "{what}: {dups} duplicates");
    assert_eq!(received.len(), COUNT, "{what}: messages lost");
    let first_out_of_order = received.iter().enumerate().find(|(i, n)| *i != **n);
    assert_eq!(
        first_out_of_order, None,
        "{what}: messages out of order [MQTT-4.6.0-6]"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_at_qos1_v311() {
    let gw = TestGateway::start().await;
    let mut sub_opts = v4_options(gw.addr, "bulk-sub-1");
    sub_opts.set_inflight(100);
    let (mut sub, _) = V4::connect(sub_opts).await;
    sub.subscribe("bulk/1", rumqttc::QoS::AtLeastOnce).await;

    let mut pub_opts = v4_options(gw.addr, "bulk-pub-1");
    pub_opts.set_inflight(100);
    let (publisher, _) = V4::connect(pub_opts).await;
    let sender = tokio::spawn(async move {
        for n in 0..COUNT {
            publisher
                .publish("bulk/1", rumqttc::QoS::AtLeastOnce, false, seq_payload(n))
                .await;
        }
        publisher
    });

    let received = within_for(BULK, "10,000 QoS 1 messages", async {
        let mut received = Vec::with_capacity(COUNT);
        while received.len() < COUNT {
            let p = sub.recv_publish().await;
            assert_eq!(p.qos, rumqttc::QoS::AtLeastOnce);
            received.push(seq_of(&p.payload));
        }
        received
    })
    .await;
    assert_exact(&received, "QoS 1");
    // Nothing more after the last one (a duplicate would be late, if anything).
    sub.expect_no_publish(Duration::from_millis(200)).await;
    let publisher = sender.await.expect("publisher task");
    publisher.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_at_qos2_v5() {
    use rumqttc::v5::mqttbytes::QoS as QoS5;
    let gw = TestGateway::start().await;
    let (mut sub, _) = V5::connect(v5_options(gw.addr, "bulk-sub-2")).await;
    sub.subscribe("bulk/2", QoS5::ExactlyOnce).await;

    let (publisher, _) = V5::connect(v5_options(gw.addr, "bulk-pub-2")).await;
    let sender = tokio::spawn(async move {
        for n in 0..COUNT {
            publisher
                .publish("bulk/2", QoS5::ExactlyOnce, false, seq_payload(n))
                .await;
        }
        publisher
    });

    let received = within_for(BULK, "10,000 QoS 2 messages", async {
        let mut received = Vec::with_capacity(COUNT);
        while received.len() < COUNT {
            let p = sub.recv_publish().await;
            assert_eq!(p.qos, QoS5::ExactlyOnce);
            received.push(seq_of(&p.payload));
        }
        received
    })
    .await;
    assert_exact(&received, "QoS 2");
    sub.expect_no_publish(Duration::from_millis(200)).await;
    let publisher = sender.await.expect("publisher task");
    publisher.disconnect().await;
}

#[tokio::test]
async fn qos2_resent_before_pubrel_is_delivered_once() {
    let gw = TestGateway::start().await;
    let (mut sub, _) = Raw::connect_ok(gw.addr, raw::v5("eo-sub")).await;
    sub.subscribe("eo/t", QoS::ExactlyOnce).await;
    sub.subscribe("eo/end", QoS::AtMostOnce).await;

    let (mut publisher, _) = Raw::connect_ok(gw.addr, raw::v4("eo-pub")).await;
    let id = publisher.packet_id();
    let mut p = raw::message("eo/t", b"once", QoS::ExactlyOnce);
    p.packet_id = Some(id);
    publisher.send(Packet::Publish(p.clone())).await;
    assert_eq!(publisher.recv().await, Packet::PubRec(Ack::new(id)));
    // The PUBREC was "lost": the publisher sends the PUBLISH again, with DUP.
    p.dup = true;
    publisher.send(Packet::Publish(p)).await;
    assert_eq!(publisher.recv().await, Packet::PubRec(Ack::new(id)));
    publisher.send(Packet::PubRel(Ack::new(id))).await;
    assert_eq!(publisher.recv().await, Packet::PubComp(Ack::new(id)));
    // A PUBREL for an id not in flight: PUBCOMP 0x92 (v5) / plain PUBCOMP (3.1.1).
    publisher.send(Packet::PubRel(Ack::new(id))).await;
    match publisher.recv().await {
        Packet::PubComp(a) => assert_eq!(a.packet_id, id),
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
    publisher
        .publish(raw::message("eo/end", b"end", QoS::AtMostOnce))
        .await;

    let first = sub.recv_publish().await;
    assert_eq!(first.payload, &b"once"[..]);
    sub.ack(&first).await;
    let second = sub.recv_publish().await;
    assert_eq!(
        second.topic, "eo/end",
        "the resent QoS 2 message was routed twice [MQTT-4.3.3-10]"
    );
}

#[tokio::test]
async fn delivery_qos_is_the_lower_of_publish_and_subscription() {
    let gw = TestGateway::start().await;
    let (mut sub, _) = Raw::connect_ok(gw.addr, raw::v5("down-sub")).await;
    sub.subscribe("down/1", QoS::AtLeastOnce).await;
    sub.subscribe("down/2", QoS::ExactlyOnce).await;
    let (mut publisher, _) = Raw::connect_ok(gw.addr, raw::v5("down-pub")).await;

    let cases = [
        ("down/1", QoS::ExactlyOnce, QoS::AtLeastOnce),
        ("down/2", QoS::AtMostOnce, QoS::AtMostOnce),
        ("down/2", QoS::AtLeastOnce, QoS::AtLeastOnce),
        ("down/2", QoS::ExactlyOnce, QoS::ExactlyOnce),
    ];
    for (topic, sent, expected) in cases {
        let reason = publisher.publish(raw::message(topic, b"x", sent)).await;
        assert_eq!(reason, ReasonCode::SUCCESS);
        let p = sub.recv_publish().await;
        assert_eq!(
            (p.topic.as_ref(), p.qos),
            (topic, expected),
            "published at {sent:?}"
        );
        assert_eq!(p.packet_id.is_some(), expected != QoS::AtMostOnce);
        sub.ack(&p).await;
    }
}
