//! The persistent sessions of a cluster, against real nats-server processes and independent
//! MQTT clients: each node copies its store into JetStream (`AVIARY_STORES`, see
//! `cluster::replica`), read back here as another node would and replayed; and a session
//! moves with its client from node to node, its queue and subscriptions with it, nothing
//! lost while it moves.

mod cluster_common;
mod common;
mod ws_common;

use std::collections::BTreeSet;
use std::time::Duration;

use aviary::store::{replay, Snapshot};
use aviary_protocol::{Packet, QoS, ReasonCode};
use cluster_common::{persistent, receive, steady_node};
use common::nats::NatsCluster;
use common::raw::{self, until_routed, Raw};
use common::within;
use ws_common::Gw;

/// `node`'s store as its log in JetStream says, once `done` holds of it.
async fn log_until(nats: &NatsCluster, node: &str, done: impl Fn(&Snapshot) -> bool) -> Snapshot {
    let client = async_nats::connect(nats.url(0))
        .await
        .expect("connect to NATS");
    let js = async_nats::jetstream::new(client);
    within("the node's log in JetStream", async {
        loop {
            let records = aviary::cluster::replica::read(&js, 1, node)
                .await
                .expect("read the log");
            let snapshot = replay(records).expect("the log replays");
            if done(&snapshot) {
                return snapshot;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// The payloads of `client`'s queue in a replayed store.
fn queued(s: &Snapshot, client: &str) -> Vec<String> {
    let Some(queue) = s.queues.get(client) else {
        return Vec::new();
    };
    queue
        .values()
        .map(|e| {
            let m = e
                .inline
                .as_deref()
                .unwrap_or_else(|| &s.messages[&e.message]);
            String::from_utf8(m.payload.to_vec()).expect("utf-8")
        })
        .collect()
}

#[tokio::test]
async fn a_nodes_sessions_and_queues_are_kept_in_jetstream() {
    const N: usize = 20;
    let nats = NatsCluster::single().await;
    let a = steady_node(&nats, "gw-a").await;
    let (mut keeper, _) = Raw::connect_ok(a.mqtt, persistent("keeper")).await;
    keeper.subscribe("kept/#", QoS::AtLeastOnce).await;
    drop(keeper);
    // Published right after the SUBACK: the node's stream consumer already listens.
    let (mut publisher, _) = Raw::connect_ok(a.mqtt, raw::v5("publisher")).await;
    for i in 0..N {
        let p = raw::message("kept/n", i.to_string().as_bytes(), QoS::AtLeastOnce);
        assert_eq!(publisher.publish(p).await, ReasonCode::SUCCESS);
    }

    // The session, its subscription and every queued message are in the log.
    let kept = log_until(&nats, "gw-a", |s| queued(s, "keeper").len() == N).await;
    let session = &kept.sessions["keeper"];
    assert_eq!(session.subscriptions.len(), 1);
    assert_eq!(&*session.subscriptions[0].filter, "kept/#");
    let expected: Vec<String> = (0..N).map(|i| i.to_string()).collect();
    assert_eq!(queued(&kept, "keeper"), expected);

    // What the client takes and acknowledges leaves the log too.
    let (mut keeper, ack) = Raw::connect_ok(a.mqtt, persistent("keeper")).await;
    assert!(ack.session_present);
    for i in 0..N {
        let p = keeper.recv_publish().await;
        keeper.ack(&p).await;
        assert_eq!(&p.payload[..], i.to_string().as_bytes());
    }
    let drained = log_until(&nats, "gw-a", |s| queued(s, "keeper").is_empty()).await;
    assert!(drained.sessions.contains_key("keeper"), "the session stays");
}

#[tokio::test]
async fn a_persistent_session_moves_with_its_client() {
    let nats = NatsCluster::start(3).await;
    let a = steady_node(&nats, "gw-a").await;
    let b = steady_node(&nats, "gw-b").await;
    let (mut sub, ack) = Raw::connect_ok(a.mqtt, persistent("mover")).await;
    assert!(!ack.session_present);
    sub.subscribe("moving/#", QoS::AtLeastOnce).await;
    let (mut publisher, _) = Raw::connect_ok(b.mqtt, raw::v5("publisher")).await;
    until_routed(&mut publisher, &mut sub, "moving/probe", QoS::AtLeastOnce).await;
    sub.disconnect(ReasonCode::SUCCESS).await;

    // Queued on A while the client is away; every one acknowledged to the publisher.
    for i in 0..1_000 {
        let p = raw::message("moving/n", i.to_string().as_bytes(), QoS::AtLeastOnce);
        assert_eq!(publisher.publish(p).await, ReasonCode::SUCCESS);
    }
    let (mut sub, ack) = Raw::connect_ok(b.mqtt, persistent("mover")).await;
    assert!(ack.session_present, "the session came along");
    let expected: Vec<String> = (0..1_000).map(|i| i.to_string()).collect();
    assert_eq!(receive(&mut sub, 1_000).await, expected, "all, in order");
    sub.expect_silence(Duration::from_millis(300)).await;

    // The subscription moved too: a message published on A now comes to B.
    let (mut on_a, _) = Raw::connect_ok(a.mqtt, raw::v5("publisher-a")).await;
    let p = raw::message("moving/after", b"after", QoS::AtLeastOnce);
    assert_eq!(on_a.publish(p).await, ReasonCode::SUCCESS);
    assert_eq!(receive(&mut sub, 1).await, ["after"]);
    sub.expect_silence(Duration::from_millis(300)).await;

    // Each node's /metrics says which node it is and counts its moves.
    let metrics = |gw: &Gw| {
        let http = gw.http();
        async move { http.get("/metrics").await.text().to_owned() }
    };
    let (on_a, on_b) = (metrics(&a).await, metrics(&b).await);
    assert!(
        on_a.contains("aviary_cluster_node{node=\"gw-a\",state=\"up\"} 1"),
        "{on_a}"
    );
    assert!(
        on_a.contains("aviary_cluster_sessions_moved_out_total 1"),
        "{on_a}"
    );
    assert!(
        on_b.contains("aviary_cluster_sessions_moved_in_total 1"),
        "{on_b}"
    );
}

#[tokio::test]
async fn messages_published_while_a_session_moves_are_not_lost() {
    let (deliveries, hops) = hop_while_publishing(QoS::AtLeastOnce).await;
    // QoS 1 may deliver again what was in flight when a connection dropped: a few, not many.
    assert!(
        deliveries - HOP_MESSAGES <= 10 * hops,
        "{deliveries} deliveries for {HOP_MESSAGES} messages"
    );
}

#[tokio::test]
async fn qos_2_messages_arrive_once_while_a_session_moves() {
    let (deliveries, _) = hop_while_publishing(QoS::ExactlyOnce).await;
    assert_eq!(deliveries, HOP_MESSAGES, "each message exactly once");
}

const HOP_MESSAGES: usize = 600;

/// A client hops between two nodes while `HOP_MESSAGES` messages are published at `qos`:
/// each arrives (the test fails otherwise). Returns how many deliveries the client took in
/// (each one completed: acknowledged, or at QoS 2 released and completed) and how many times
/// it moved. Messages the server sent but the client never read before hanging up are not
/// counted: they were never received, and come again.
async fn hop_while_publishing(qos: QoS) -> (usize, usize) {
    const N: usize = HOP_MESSAGES;
    let nats = NatsCluster::start(3).await;
    let a = steady_node(&nats, "gw-a").await;
    let b = steady_node(&nats, "gw-b").await;
    let (mut sub, _) = Raw::connect_ok(a.mqtt, persistent("hopper")).await;
    sub.subscribe("hop/#", qos).await;
    let (mut publisher, _) = Raw::connect_ok(b.mqtt, raw::v5("publisher")).await;
    until_routed(&mut publisher, &mut sub, "hop/probe", qos).await;
    drop(sub);
    let publishing = tokio::spawn(async move {
        for i in 0..N {
            let p = raw::message("hop/n", i.to_string().as_bytes(), qos);
            assert_eq!(publisher.publish(p).await, ReasonCode::SUCCESS);
        }
    });
    // The client hops between the nodes while the messages come, hanging up without a
    // word each time, as a phone changing networks does.
    let (mut seen, mut deliveries, mut hops) = (BTreeSet::new(), 0, 0);
    within("every message across the moves", async {
        while seen.len() < N {
            let addr = if hops % 2 == 0 { b.mqtt } else { a.mqtt };
            let (mut sub, ack) = Raw::connect_ok(addr, persistent("hopper")).await;
            assert!(ack.session_present, "hop {hops}: the session came along");
            hops += 1;
            let mut here = 0;
            while here < 100 {
                match sub.next_event(Duration::from_secs(2)).await {
                    Some(common::raw::Event::Packet(Packet::Publish(p))) => {
                        sub.ack(&p).await;
                        let payload = String::from_utf8(p.payload.to_vec()).expect("utf-8");
                        if payload != "probe" {
                            seen.insert(payload.parse::<usize>().expect("a number"));
                            deliveries += 1;
                        }
                        here += 1;
                    }
                    None => break,
                    Some(other) => panic!("unexpected {other:?}"),
                }
            }
        }
    })
    .await;
    publishing.await.expect("publisher");
    assert_eq!(seen, (0..N).collect::<BTreeSet<_>>());
    assert!(hops >= 3, "the client moved {hops} times");
    eprintln!("{deliveries} deliveries of {N} messages over {hops} moves");
    (deliveries, hops)
}
