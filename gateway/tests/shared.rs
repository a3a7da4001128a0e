//! Shared subscriptions end to end (MQTT 5.0 section 4.8.2): three
//! members of `$share/g/...` split 300 messages round robin, 100 each and
//! none twice, while an ordinary subscriber to the same topic gets all.

mod common;

use std::collections::BTreeSet;

use aviary_protocol::QoS;
use common::raw::{self, Raw};
use common::rumqtt::{v4_options, V4, V5};
use common::{seq_of, seq_payload, within_for, TestGateway};
use tokio::sync::mpsc;

const COUNT: usize = 300;

#[tokio::test]
async fn three_members_share_round_robin() {
    let gw = TestGateway::start().await;
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, usize)>();

    // Members: two MQTT 5 clients and one MQTT 3.1.1 client.
    for member in 0..2 {
        let mut c = V5::connect_id(gw.addr, &format!("member{member}")).await;
        c.subscribe("$share/g/sh/+", rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
            .await;
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                let p = c.recv_publish().await;
                if tx.send((member, seq_of(&p.payload))).is_err() {
                    return;
                }
            }
        });
    }
    let mut c = V4::connect_id(gw.addr, "member2").await;
    c.subscribe("$share/g/sh/+", rumqttc::QoS::AtLeastOnce)
        .await;
    tokio::spawn(async move {
        loop {
            let p = c.recv_publish().await;
            if tx.send((2, seq_of(&p.payload))).is_err() {
                return;
            }
        }
    });

    let (mut plain, _) = Raw::connect_ok(gw.addr, raw::v5("plain")).await;
    plain.subscribe("sh/#", QoS::AtMostOnce).await;

    let (publisher, _) = V4::connect(v4_options(gw.addr, "sh-pub")).await;
    for n in 0..COUNT {
        publisher
            .publish("sh/t", rumqttc::QoS::AtLeastOnce, false, seq_payload(n))
            .await;
    }

    let mut per_member = [0usize; 3];
    let mut seen = BTreeSet::new();
    within_for(common::WAIT * 3, "300 shared messages", async {
        while seen.len() < COUNT {
            let (member, n) = rx.recv().await.expect("member tasks alive");
            assert!(seen.insert(n), "message {n} delivered to two members");
            per_member[member] += 1;
        }
    })
    .await;
    assert_eq!(
        per_member,
        [100, 100, 100],
        "round robin over the members, each getting some"
    );

    for n in 0..COUNT {
        assert_eq!(seq_of(&plain.recv_publish().await.payload), n);
    }
    // And no extra deliveries to the members.
    let extra = tokio::time::timeout(std::time::Duration::from_millis(200), rx.recv()).await;
    assert!(extra.is_err(), "extra delivery: {extra:?}");
    drop(publisher);
}

#[tokio::test]
async fn no_retained_messages_for_a_shared_subscription() {
    let gw = TestGateway::start().await;
    let (mut p, _) = Raw::connect_ok(gw.addr, raw::v5("sr-pub")).await;
    for topic in ["sr/t", "$marker"] {
        let mut m = raw::message(topic, b"kept", QoS::AtMostOnce);
        m.retain = true;
        p.publish(m).await;
    }
    let (mut s, _) = Raw::connect_ok(gw.addr, raw::v5("sr")).await;
    let qos0 = aviary_protocol::SubscriptionOptions::qos(QoS::AtMostOnce);
    s.subscribe_with(&[("$share/g/sr/t", qos0), ("$marker", qos0)], None)
        .await;
    // Retained messages come in the order of the filters: the marker first
    // means none for the shared one (MQTT 5.0 section 4.8.2).
    assert_eq!(s.recv_publish().await.topic, "$marker");
}
