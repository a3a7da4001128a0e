//! The order of one publisher's messages across a NATS failover, against real nats-server
//! processes: a publisher keeps many messages in flight, one of the three servers dies under
//! its node, and the subscriber on the other node must still get them in publishing order.
//!
//! - At QoS 1, the last copy of each message. That is MQTT's rule with several messages in
//!   flight (3.1.1 and 5.0, section 4.6): a copy sent again may come after a later message,
//!   but the final copies are in order, so 1, 2, 3, 2, 3, 4 is allowed and 1, 3, 2, 4 is not.
//! - At QoS 2, each message once, in order.

mod cluster_common;
mod common;
mod ws_common;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::num::NonZeroU16;

use aviary_protocol::{Ack, Packet, QoS, ReasonCode};
use cluster_common::{failover_pair, FAILOVER};
use common::nats::NatsCluster;
use common::raw::{self, until_routed, Raw};
use common::within_for;

const N: usize = 600;
/// How many PUBLISHes the publisher keeps in flight.
const WINDOW: usize = 50;
const TOPIC: &str = "order/n";
/// Published after everything else: once it has arrived, so has every copy before it.
const END: &str = "end";

#[tokio::test]
async fn pipelined_qos_1_messages_keep_their_order_across_a_nats_failover() {
    let arrived = across_a_nats_failover(QoS::AtLeastOnce).await;
    let seen: BTreeSet<usize> = arrived.iter().copied().collect();
    let missing: Vec<usize> = (0..N).filter(|n| !seen.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged messages never arrived: {missing:?}"
    );
    let last = final_copies(&arrived);
    if let Some(at) = (0..N).find(|&at| last[at] != at) {
        let around: Vec<_> = last.iter().skip(at.saturating_sub(3)).take(10).collect();
        panic!(
            "the last copies are out of publishing order from place {at}: {around:?} \
             ({} copies arrived)",
            arrived.len()
        );
    }
}

#[tokio::test]
async fn pipelined_qos_2_messages_arrive_once_in_order_across_a_nats_failover() {
    let arrived = across_a_nats_failover(QoS::ExactlyOnce).await;
    if let Some(at) = (0..arrived.len().max(N)).find(|&at| arrived.get(at) != Some(&at)) {
        let around: Vec<_> = arrived.iter().skip(at.saturating_sub(3)).take(10).collect();
        panic!(
            "{} messages arrived, not once each in order from place {at}: {around:?}",
            arrived.len()
        );
    }
}

/// Publishes `N` numbers at `qos` on one node, [`WINDOW`] in flight, and kills the NATS server
/// that node talks to a third of the way; returns what the subscriber on the other node got,
/// in arrival order.
async fn across_a_nats_failover(qos: QoS) -> Vec<usize> {
    let mut nats = NatsCluster::start(3).await;
    let (a, b) = failover_pair(&nats).await;
    let (mut sub, _) = Raw::connect_ok(b.mqtt, raw::v5("subscriber")).await;
    sub.subscribe("order/#", qos).await;
    let (mut publisher, _) = Raw::connect_ok(a.mqtt, raw::v5("publisher")).await;
    until_routed(&mut publisher, &mut sub, "order/probe", qos).await;
    sub.set_wait(FAILOVER);
    publisher.set_wait(FAILOVER);
    let reading = tokio::spawn(async move {
        let mut arrived = Vec::new();
        loop {
            let p = sub.recv_publish().await;
            sub.ack(&p).await;
            let text = String::from_utf8(p.payload.to_vec()).expect("utf-8");
            if text == END {
                return arrived;
            }
            arrived.push(text.parse::<usize>().expect("a number"));
        }
    });
    within_for(
        FAILOVER,
        "every message acknowledged across the failover",
        async {
            let mut waiting = VecDeque::new();
            for i in 0..N {
                if waiting.len() == WINDOW {
                    expect_ack(&mut publisher, waiting.pop_front(), qos).await;
                }
                waiting.push_back(send(&mut publisher, &i.to_string(), qos).await);
                if i == N / 3 {
                    nats.kill(0);
                }
            }
            while let Some(id) = waiting.pop_front() {
                expect_ack(&mut publisher, Some(id), qos).await;
            }
            // Every message is stored now, and their copies sent again went out before this.
            let id = send(&mut publisher, END, qos).await;
            expect_ack(&mut publisher, Some(id), qos).await;
        },
    )
    .await;
    let arrived = within_for(FAILOVER, "every message to arrive", reading)
        .await
        .expect("reader");
    let counter = |metrics: &str, name: &str| {
        let line = metrics.lines().find(|l| l.starts_with(name));
        line.and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
    };
    let retried = counter(
        a.http().get("/metrics").await.text(),
        "aviary_cluster_publishes_retried_total",
    );
    let reread = counter(
        b.http().get("/metrics").await.text(),
        "aviary_cluster_messages_reread_total",
    );
    eprintln!(
        "gw-a sent {retried:?} messages again, gw-b read {reread:?} again; {} copies of {N} arrived",
        arrived.len()
    );
    arrived
}

/// Sends `payload` as a PUBLISH at `qos` without waiting: its packet id.
async fn send(publisher: &mut Raw, payload: &str, qos: QoS) -> NonZeroU16 {
    let mut p = raw::message(TOPIC, payload.as_bytes(), qos);
    let id = publisher.packet_id();
    p.packet_id = Some(id);
    publisher.send(Packet::Publish(p)).await;
    id
}

/// Reads up to the successful PUBACK or PUBREC of `id`, which come in order, answering a
/// PUBREC with its PUBREL; the PUBCOMPs in between are taken as they come.
async fn expect_ack(publisher: &mut Raw, id: Option<NonZeroU16>, qos: QoS) {
    let id = id.expect("a PUBLISH waits");
    loop {
        let ack = match (qos, publisher.recv().await) {
            (QoS::AtLeastOnce, Packet::PubAck(ack)) | (QoS::ExactlyOnce, Packet::PubRec(ack)) => {
                ack
            }
            (QoS::ExactlyOnce, Packet::PubComp(_)) => continue,
            (_, other) => panic!("expected the acknowledgement of {id}, got {other:?}"),
        };
        assert_eq!(ack.packet_id, id, "acknowledgements come in order");
        assert_eq!(
            ack.reason_code,
            ReasonCode::SUCCESS,
            "acknowledgement of {id}"
        );
        if qos == QoS::ExactlyOnce {
            publisher.send(Packet::PubRel(Ack::new(id))).await;
        }
        return;
    }
}

/// The messages of `arrived` in the order of each one's last copy.
fn final_copies(arrived: &[usize]) -> Vec<usize> {
    let last: HashMap<usize, usize> = arrived.iter().enumerate().map(|(at, &n)| (n, at)).collect();
    arrived
        .iter()
        .enumerate()
        .filter(|&(at, n)| last[n] == at)
        .map(|(_, &n)| n)
        .collect()
}

#[test]
fn final_copies_keep_only_each_messages_last_arrival() {
    assert_eq!(final_copies(&[1, 2, 3, 2, 3, 4]), vec![1, 2, 3, 4]);
    assert_eq!(final_copies(&[1, 3, 2, 4]), vec![1, 3, 2, 4]);
}
