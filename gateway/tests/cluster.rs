//! Cluster mode against real nats-server processes (3 clustered servers with JetStream):
//! a subscriber on node B receives what a publisher on node A sends, at QoS 0, 1 and 2, with
//! wildcards, including topic levels holding `.`, spaces and non-ASCII; exactly one copy
//! per subscription; a QoS 1 publisher's PUBACK comes once JetStream holds the message.
//!
//! A node learns of a new subscription on another node through NATS, a moment after the
//! SUBACK: each test waits for that by sending probes until one arrives, never by sleeping.

mod cluster_common;
mod common;
mod security_common;
mod ws_common;

use std::collections::BTreeSet;
use std::time::Duration;

use aviary_protocol::{Packet, ProtocolVersion, QoS, ReasonCode};
use bytes::BytesMut;
use cluster_common::{failover_pair, persistent, receive, steady_node, FAILOVER};
use common::nats::NatsCluster;
use common::raw::{self, until_routed, Raw};
use common::within;
use ws_common::Gw;

#[tokio::test]
async fn a_subscriber_on_one_node_receives_what_another_node_publishes() {
    let nats = NatsCluster::start(3).await;
    let a = steady_node(&nats, "gw-a").await;
    let b = steady_node(&nats, "gw-b").await;
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

#[tokio::test]
async fn a_burst_of_qos0_messages_crosses_nodes_in_order_several_to_a_nats_message() {
    const N: usize = 5_000;
    let nats = NatsCluster::start(3).await;
    let a = steady_node(&nats, "gw-a").await;
    let b = steady_node(&nats, "gw-b").await;
    let (mut sub, _) = Raw::connect_ok(b.mqtt, raw::v5("subscriber")).await;
    sub.subscribe("burst/#", QoS::AtMostOnce).await;
    let (mut publisher, _) = Raw::connect_ok(a.mqtt, raw::v5("publisher")).await;
    until_routed(&mut publisher, &mut sub, "burst/probe", QoS::AtMostOnce).await;

    // In one write: node A takes them in faster than it sends them to NATS.
    let mut burst = BytesMut::new();
    for i in 0..N {
        let p = raw::message("burst/one", i.to_string().as_bytes(), QoS::AtMostOnce);
        Packet::Publish(p)
            .encode(ProtocolVersion::V5, &mut burst)
            .expect("encodes");
    }
    publisher.send_raw(&burst).await;
    for i in 0..N {
        let p = sub.recv_publish().await;
        assert_eq!(&*p.topic, "burst/one");
        assert_eq!(
            &p.payload[..],
            i.to_string().as_bytes(),
            "each once, in publishing order"
        );
    }
    sub.expect_silence(Duration::from_millis(300)).await;

    let metrics = a.http().get("/metrics").await.text().to_owned();
    let counter = |name: &str| -> u64 {
        let line = metrics.lines().find(|l| l.starts_with(name)).expect(name);
        line.rsplit(' ').next().unwrap().parse().expect("a count")
    };
    let (sent, batches) = (
        counter("aviary_cluster_live_messages_total"),
        counter("aviary_cluster_live_batches_total"),
    );
    eprintln!("gw-a sent {sent} QoS 0 messages in {batches} NATS messages");
    assert!(sent >= N as u64, "{sent} of {N} counted");
    assert!(
        batches * 2 <= sent,
        "{sent} messages in {batches} NATS messages"
    );
}

/// The retained topics a new subscription to `filter` on `gw` receives, sorted. A sentinel
/// retained on `sentinel` (which `filter` must match, and which sorts last) ends the wait.
async fn retained_on(gw: &Gw, filter: &str, expect: usize) -> Vec<(String, Vec<u8>)> {
    let (mut sub, _) = Raw::connect_ok(gw.mqtt, raw::v5("reader")).await;
    sub.subscribe(filter, QoS::AtLeastOnce).await;
    let mut got = Vec::new();
    for _ in 0..expect {
        let p = sub.recv_publish().await;
        sub.ack(&p).await;
        assert!(p.retain, "{} came as a retained message", &*p.topic);
        got.push((p.topic.to_string(), p.payload.to_vec()));
    }
    sub.expect_silence(Duration::from_millis(300)).await;
    got.sort();
    got
}

/// Publishes `topic` retained from `gw` and returns once every other node has it: a node
/// takes retained messages from the cluster's retained stream, a moment after the PUBACK.
async fn retain(gw: &Gw, others: &[&Gw], topic: &str, payload: &[u8], qos: QoS) {
    let (mut publisher, _) = Raw::connect_ok(gw.mqtt, raw::v5("retainer")).await;
    let mut m = raw::message(topic, payload, qos);
    m.retain = true;
    publisher.publish(m).await;
    for other in others {
        let want = if payload.is_empty() { 0 } else { 1 };
        common::eventually("the retained message to reach every node", || {
            other.broker.retained_messages(Some("pets/#")).len() == want
        })
        .await;
    }
}

#[tokio::test]
async fn retained_messages_are_seen_on_every_node_and_cleared_everywhere() {
    let nats = NatsCluster::start(3).await;
    let a = steady_node(&nats, "gw-a").await;
    let b = steady_node(&nats, "gw-b").await;
    let c = steady_node(&nats, "gw-c").await;
    // Nobody subscribed anywhere: the retained stream alone carries them.
    retain(&a, &[&b, &c], "pets/1/status", b"home", QoS::AtMostOnce).await;
    assert_eq!(
        retained_on(&c, "pets/+/status", 1).await,
        [("pets/1/status".to_owned(), b"home".to_vec())]
    );
    // Replaced from another node, at QoS 1.
    retain(&b, &[&a, &c], "pets/1/status", b"away", QoS::AtLeastOnce).await;
    assert_eq!(
        retained_on(&a, "pets/#", 1).await,
        [("pets/1/status".to_owned(), b"away".to_vec())]
    );
    // Cleared from a third node: gone everywhere.
    retain(&c, &[&a, &b], "pets/1/status", b"", QoS::AtLeastOnce).await;
    for gw in [&a, &b, &c] {
        assert!(retained_on(gw, "pets/#", 0).await.is_empty());
    }
    // A node that joins later, with an empty store of its own, finds them.
    retain(&a, &[&b, &c], "pets/2/status", b"home", QoS::AtLeastOnce).await;
    let d = steady_node(&nats, "gw-d").await;
    assert_eq!(
        d.broker.retained_messages(Some("pets/#")).len(),
        1,
        "caught up before taking clients"
    );
    assert_eq!(
        retained_on(&d, "pets/2/status", 1).await,
        [("pets/2/status".to_owned(), b"home".to_vec())]
    );
}

/// `GET /api/v1/cluster` on `gw`: the node names, and the clients of each.
async fn cluster_view(gw: &Gw) -> (String, Vec<(String, u64)>) {
    let reply = gw.http().get("/api/v1/cluster").await;
    assert_eq!(reply.status, axum::http::StatusCode::OK, "{}", reply.text());
    let view = reply.json();
    let nodes = view["nodes"]
        .as_array()
        .expect("a list of nodes")
        .iter()
        .map(|n| {
            assert_eq!(n["state"], "up");
            let name = n["node"].as_str().expect("a node name").to_owned();
            (name, n["clients"].as_u64().expect("a client count"))
        })
        .collect();
    (
        view["this_node"].as_str().expect("this node").to_owned(),
        nodes,
    )
}

#[tokio::test]
async fn the_cluster_view_lists_the_live_nodes_and_their_clients() {
    let nats = NatsCluster::start(3).await;
    let a = steady_node(&nats, "gw-a").await;
    let b = steady_node(&nats, "gw-b").await;
    let names = |nodes: &[(String, u64)]| nodes.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    let (this, nodes) = cluster_view(&a).await;
    assert_eq!(this, "gw-a");
    assert_eq!(names(&nodes), ["gw-a", "gw-b"]);
    // A client on B shows in B's lease at its next renewal.
    let (_client, _) = Raw::connect_ok(b.mqtt, raw::v5("on-b")).await;
    within("gw-b's lease to count its client", async {
        while cluster_view(&a).await.1 != [("gw-a".to_owned(), 0), ("gw-b".to_owned(), 1)] {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let clients = b.http().clients().await;
    assert_eq!(clients[0]["node"], "gw-b");
    // A node that leaves gives its lease back at once.
    drop(b);
    within("gw-b to leave the view", async {
        while names(&cluster_view(&a).await.1) != ["gw-a"] {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn one_client_id_is_connected_once_across_the_cluster() {
    let nats = NatsCluster::start(3).await;
    let a = steady_node(&nats, "gw-a").await;
    let b = steady_node(&nats, "gw-b").await;
    let connects: Vec<_> = (0..100)
        .map(|i| {
            let addr = if i % 2 == 0 { a.mqtt } else { b.mqtt };
            tokio::spawn(Raw::connect(addr, raw::v5("the-same-id")))
        })
        .collect();
    let mut conns = Vec::new();
    for connect in connects {
        let (raw, ack) = connect.await.expect("connect task");
        assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
        conns.push(raw);
    }
    common::eventually("one connection to remain in the cluster", || {
        common::connected(&a.broker) + common::connected(&b.broker) == 1
    })
    .await;
    // Every other one was told why: 0x8E Session taken over.
    let mut alive = 0;
    for mut raw in conns {
        match raw.next_event(Duration::from_millis(300)).await {
            None => alive += 1,
            Some(common::raw::Event::Packet(Packet::Disconnect(d))) => {
                assert_eq!(d.reason_code, ReasonCode::SESSION_TAKEN_OVER);
            }
            Some(other) => panic!("expected DISCONNECT 0x8E or nothing, got {other:?}"),
        }
    }
    assert_eq!(alive, 1, "exactly one connection stays open");
}

/// The payloads `worker` has received within `quiet` of each other, each acknowledged.
async fn drain(worker: &mut Raw, quiet: Duration) -> Vec<String> {
    let mut got = Vec::new();
    while let Some(common::raw::Event::Packet(Packet::Publish(p))) = worker.next_event(quiet).await
    {
        worker.ack(&p).await;
        got.push(String::from_utf8(p.payload.to_vec()).expect("utf-8"));
    }
    got
}

#[tokio::test]
async fn a_shared_group_spread_over_nodes_gets_each_message_once() {
    const N: usize = 300;
    let nats = NatsCluster::start(3).await;
    let a = steady_node(&nats, "gw-a").await;
    let b = steady_node(&nats, "gw-b").await;
    let c = steady_node(&nats, "gw-c").await;
    let mut workers = Vec::new();
    for (i, gw) in [&a, &b, &c].into_iter().enumerate() {
        let (mut w, _) = Raw::connect_ok(gw.mqtt, raw::v5(&format!("worker-{i}"))).await;
        w.subscribe("$share/workers/jobs/#", QoS::AtLeastOnce).await;
        workers.push(w);
    }
    let (mut boss, _) = Raw::connect_ok(a.mqtt, raw::v5("boss")).await;
    // Ready once every node takes a share: probes until each node's worker has one. Three
    // nodes set up the group's consumer at once, and on a loaded machine the later ones can
    // take seconds to start pulling.
    common::within_for(FAILOVER, "every node to take a share of the group", async {
        let mut seen = [false; 3];
        while !seen.iter().all(|&s| s) {
            boss.publish(raw::message("jobs/probe", b"probe", QoS::AtLeastOnce))
                .await;
            for (w, seen) in workers.iter_mut().zip(&mut seen) {
                *seen |= !drain(w, Duration::from_millis(50)).await.is_empty();
            }
        }
    })
    .await;
    for w in &mut workers {
        drain(w, Duration::from_millis(300)).await;
    }

    // Half at QoS 1 (the group's consumer), half at QoS 0 (a queue group), from two nodes.
    let (mut other_boss, _) = Raw::connect_ok(b.mqtt, raw::v5("other-boss")).await;
    for i in 0..N {
        let qos = if i % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::AtMostOnce
        };
        let p = raw::message("jobs/n", i.to_string().as_bytes(), qos);
        let publisher = if i % 4 < 2 {
            &mut boss
        } else {
            &mut other_boss
        };
        assert_eq!(publisher.publish(p).await, ReasonCode::SUCCESS);
    }
    let mut per_worker = Vec::new();
    let mut all = Vec::new();
    within("the group's messages", async {
        while all.len() < N {
            for (i, w) in workers.iter_mut().enumerate() {
                let got = drain(w, Duration::from_millis(100)).await;
                per_worker.extend(got.iter().map(|_| i));
                all.extend(got);
            }
        }
    })
    .await;
    for w in &mut workers {
        all.extend(drain(w, Duration::from_millis(300)).await);
    }
    let mut numbers: Vec<usize> = all.iter().map(|p| p.parse().expect("number")).collect();
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (0..N).collect::<Vec<_>>(),
        "each message exactly once"
    );
    let shares: Vec<usize> = (0..3)
        .map(|w| per_worker.iter().filter(|&&i| i == w).count())
        .collect();
    eprintln!("the three nodes took {shares:?} of {N}");
    // Roughly even: each node at least half its fair share.
    assert!(
        shares.iter().all(|&n| n >= N / 6),
        "an uneven split: {shares:?} of {N}"
    );
}

#[tokio::test]
async fn the_cluster_keeps_its_messages_when_a_nats_server_dies() {
    const N: usize = 300;
    let mut nats = NatsCluster::start(3).await;
    let (a, b) = failover_pair(&nats).await;
    let (mut sub, _) = Raw::connect_ok(b.mqtt, raw::v5("subscriber")).await;
    sub.subscribe("failover/#", QoS::AtLeastOnce).await;
    let (mut publisher, _) = Raw::connect_ok(a.mqtt, raw::v5("publisher")).await;
    until_routed(&mut publisher, &mut sub, "failover/probe", QoS::AtLeastOnce).await;
    // The flow may stall for the whole failover (a CI run once waited more than 10 s for
    // the next message): each wait has the failover's bound, not the usual one.
    sub.set_wait(FAILOVER);
    publisher.set_wait(FAILOVER);
    let reading = tokio::spawn(async move {
        let mut seen = BTreeSet::new();
        while seen.len() < N {
            let p = sub.recv_publish().await;
            sub.ack(&p).await;
            seen.insert(String::from_utf8(p.payload.to_vec()).expect("utf-8"));
        }
        seen
    });
    // A failover takes seconds: JetStream elects new leaders for what the dead server led.
    common::within_for(
        FAILOVER,
        "every message acknowledged across the failover",
        async {
            for i in 0..N {
                if i == N / 3 {
                    nats.kill(0);
                }
                let p = raw::message("failover/n", i.to_string().as_bytes(), QoS::AtLeastOnce);
                assert_eq!(
                    publisher.publish(p).await,
                    ReasonCode::SUCCESS,
                    "message {i}"
                );
            }
        },
    )
    .await;
    let seen = common::within_for(FAILOVER, "every message to arrive", reading)
        .await
        .expect("reader");
    assert_eq!(seen, (0..N).map(|i| i.to_string()).collect::<BTreeSet<_>>());
}

#[tokio::test]
async fn a_failed_sign_in_takes_nothing_from_another_node() {
    let nats = NatsCluster::single().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let passwd = security_common::mosquitto_passwd_file(dir.path());
    let start = |name: &'static str| {
        let (urls, passwd) = (nats.urls(), passwd.clone());
        Gw::start_with(move |c| {
            c.cluster.nats = urls;
            c.cluster.node = Some(name.to_owned());
            c.auth.password_file = Some(passwd);
            c.auth.login_failure_delay_ms = 0;
        })
    };
    let (a, b) = (start("gw-a").await, start("gw-b").await);
    let alice = |password: &str| {
        let mut connect = persistent("alice-phone");
        connect.username = Some("alice".into());
        connect.password = Some(bytes::Bytes::copy_from_slice(password.as_bytes()));
        connect
    };
    let (mut phone, _) = Raw::connect_ok(a.mqtt, alice("alice-pw")).await;
    phone.subscribe("pets/alice/#", QoS::AtLeastOnce).await;

    // Someone who knows the client id but not the password, on the other node.
    let (_, ack) = Raw::connect(b.mqtt, alice("guess")).await;
    assert_eq!(ack.reason_code, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
    phone.expect_silence(Duration::from_millis(500)).await;
    assert_eq!(
        common::connected(&a.broker),
        1,
        "the phone is still connected"
    );

    // The session stayed on gw-a: coming back there, nothing had to move.
    phone.disconnect(ReasonCode::SUCCESS).await;
    let (_, ack) = Raw::connect_ok(a.mqtt, alice("alice-pw")).await;
    assert!(ack.session_present);
}

#[tokio::test]
async fn overlapping_filters_on_one_node_each_get_their_messages() {
    let nats = NatsCluster::start(3).await;
    let a = steady_node(&nats, "gw-a").await;
    let b = steady_node(&nats, "gw-b").await;
    let (mut wide, _) = Raw::connect_ok(b.mqtt, raw::v5("wide")).await;
    wide.subscribe("t/#", QoS::AtLeastOnce).await;
    let (mut publisher, _) = Raw::connect_ok(a.mqtt, raw::v5("publisher")).await;
    until_routed(&mut publisher, &mut wide, "t/probe", QoS::AtLeastOnce).await;
    // A narrower filter inside the wide one, on the same node, then a third beside them.
    let (mut narrow, _) = Raw::connect_ok(b.mqtt, raw::v5("narrow")).await;
    narrow.subscribe("t/x/+", QoS::AtLeastOnce).await;
    until_routed(&mut publisher, &mut narrow, "t/x/probe", QoS::AtLeastOnce).await;
    let (mut other, _) = Raw::connect_ok(b.mqtt, raw::v5("other")).await;
    other.subscribe("u/+", QoS::AtLeastOnce).await;
    until_routed(&mut publisher, &mut other, "u/probe", QoS::AtLeastOnce).await;
    drain(&mut wide, Duration::from_millis(300)).await;

    for topic in ["t/x/1", "u/1"] {
        let p = raw::message(topic, topic.as_bytes(), QoS::AtLeastOnce);
        assert_eq!(publisher.publish(p).await, ReasonCode::SUCCESS);
    }
    assert_eq!(receive(&mut wide, 1).await, ["t/x/1"]);
    assert_eq!(receive(&mut narrow, 1).await, ["t/x/1"]);
    assert_eq!(receive(&mut other, 1).await, ["u/1"]);
}
