//! The clients of a cluster node killed with SIGKILL (a real gateway process, so it has no
//! last word) resume on another node, against real nats-server processes and independent
//! MQTT clients: nothing acknowledged is lost, QoS 1 may come again, QoS 2 never comes
//! twice. A publisher resends what it had no acknowledgement for; a persistent session is
//! adopted by a node that remains, from the copy of the dead node's store in JetStream and
//! its stream consumer (see `cluster::adoption`). Each wait is bounded; the timings measured
//! are printed (`--nocapture`).

mod cluster_common;
mod common;
mod ws_common;

use std::time::{Duration, Instant};

use aviary_protocol::{Ack, Packet, QoS, ReasonCode};
use cluster_common::{node, numbers, persistent, process_node, Qos2Receiver, LEASE};
use common::nats::NatsCluster;
use common::process::GatewayProcess;
use common::raw::{self, until_routed, Raw};
use common::within_for;
use futures_util::StreamExt;
use ws_common::Gw;

#[tokio::test]
async fn a_killed_nodes_publisher_resumes_elsewhere_and_nothing_acknowledged_is_lost() {
    const N: usize = 400;
    let nats = NatsCluster::start(3).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let a = process_node(&nats, "gw-a", dir.path()).await;
    let b = node(&nats, "gw-b").await;
    let (mut sub, _) = Raw::connect_ok(b.mqtt, raw::v5("watcher")).await;
    sub.subscribe("stream/#", QoS::AtLeastOnce).await;
    let (mut publisher, _) = Raw::connect_ok(a.mqtt, raw::v5("sensor")).await;
    until_routed(&mut publisher, &mut sub, "stream/probe", QoS::AtLeastOnce).await;
    let reading = tokio::spawn(async move { numbers(&mut sub, N).await });
    let message = |i: usize| raw::message("stream/n", i.to_string().as_bytes(), QoS::AtLeastOnce);
    for i in 0..N / 2 {
        assert_eq!(publisher.publish(message(i)).await, ReasonCode::SUCCESS);
    }
    // One more sent, its PUBACK not awaited: gw-a dies with it in flight.
    let mut in_flight = message(N / 2);
    in_flight.packet_id = Some(publisher.packet_id());
    publisher.send(Packet::Publish(in_flight)).await;
    a.kill9().await;

    // The device reconnects to gw-b, sends the unacknowledged one again, and goes on.
    let (mut publisher, _) = Raw::connect_ok(b.mqtt, raw::v5("sensor")).await;
    for i in N / 2..N {
        assert_eq!(publisher.publish(message(i)).await, ReasonCode::SUCCESS);
    }
    let seen = within_for(
        Duration::from_secs(30),
        "every acknowledged message",
        reading,
    )
    .await
    .expect("reader");
    assert_eq!(seen, (0..N).collect());
}

#[tokio::test]
async fn a_killed_nodes_persistent_session_resumes_on_another_node_with_its_messages() {
    const N: usize = 200;
    let mut k = Keeper::start("pets/+/location", QoS::AtLeastOnce).await;
    drop(k.sub.take());
    let mut publisher = k.publisher.take().expect("the tracker");
    // Half queued on gw-a while the owner is away, then gw-a dies without a word; the other
    // half is published while it is dead.
    track(&mut publisher, 0..N / 2).await;
    let killed = k.kill_a().await;
    track(&mut publisher, N / 2..N).await;

    // The phone reconnects to gw-b: its session, subscription and queue are there.
    let mut sub = k.back_on_b(killed).await;
    every_one(&mut sub, N).await;
    // And the subscription holds for what comes next.
    track(&mut publisher, N..N + 1).await;
    let p = sub.recv_publish().await;
    assert_eq!(&p.payload[..], N.to_string().as_bytes());
}

/// An adoption that fails part-way is done again (`Adoption::resume`), not left claimed
/// until the adopter restarts. The fault is real and placed by hand: a record no store can
/// read, in gw-a's log in JetStream, on which every attempt to replay it fails; once it is
/// deleted, the next attempt adopts the session whole.
#[tokio::test]
async fn an_adoption_that_fails_part_way_is_done_again() {
    const N: usize = 100;
    const LOG: &str = "aviary.store.gw-a";
    let mut k = Keeper::start("pets/+/location", QoS::AtLeastOnce).await;
    drop(k.sub.take());
    let mut publisher = k.publisher.take().expect("the tracker");
    let client = async_nats::connect(k.nats.urls()).await.expect("connect");
    let js = async_nats::jetstream::new(client.clone());
    let garbage = js
        .publish(LOG, "not a log record".into())
        .await
        .expect("send the bad record")
        .await
        .expect("the bad record stored")
        .sequence;
    track(&mut publisher, 0..N / 2).await;
    // Not last in the log: a read that began before the record goes still finds its end.
    let logs = js
        .get_stream("AVIARY_STORES")
        .await
        .expect("the logs' stream");
    within_for(
        LEASE * 5,
        "gw-a's log to go on past the bad record",
        async {
            while logs
                .get_last_raw_message_by_subject(LOG)
                .await
                .expect("read the log")
                .sequence
                <= garbage
            {
                tokio::time::sleep(LEASE / 30).await;
            }
        },
    )
    .await;
    // Each attempt reads gw-a's log through a consumer of its own.
    let mut reads = client
        .subscribe("$JS.API.CONSUMER.CREATE.>")
        .await
        .expect("watch reads of the logs");
    client.flush().await.expect("flush");
    let killed = k.kill_a().await;
    track(&mut publisher, N / 2..N).await;
    // The first attempt fails on the record, and another follows.
    within_for(LEASE * 10, "two attempts to adopt gw-a", async {
        let mut attempts = 0;
        while attempts < 2 {
            let read = reads.next().await.expect("the watch ends");
            let about = String::from_utf8_lossy(&read.payload).into_owned() + &read.subject;
            attempts += usize::from(read.subject.contains("AVIARY_STORES") && about.contains(LOG));
        }
    })
    .await;
    logs.delete_message(garbage)
        .await
        .expect("delete the bad record");
    let mut sub = k.back_on_b(killed).await;
    every_one(&mut sub, N).await;
}

/// Waits for the numbers 0 to `n` on `sub`, each once: every acknowledged message.
async fn every_one(sub: &mut Raw, n: usize) {
    let seen = within_for(
        Duration::from_secs(30),
        "every acknowledged message",
        numbers(sub, n),
    )
    .await;
    assert_eq!(seen, (0..n).collect());
}

/// Publishes the numbers in `range` as the tracker's locations, QoS 1, each acknowledged.
async fn track(publisher: &mut Raw, range: std::ops::Range<usize>) {
    for i in range {
        let p = raw::message(
            "pets/7/location",
            i.to_string().as_bytes(),
            QoS::AtLeastOnce,
        );
        assert_eq!(publisher.publish(p).await, ReasonCode::SUCCESS);
    }
}

/// Two nodes, gw-a a process of its own (to be killed) and gw-b in-process; a persistent
/// session ("keeper") on gw-a subscribed to a filter, and a publisher ("tracker") on gw-b
/// whose messages reach it.
struct Keeper {
    nats: NatsCluster,
    _dir: tempfile::TempDir,
    a: Option<GatewayProcess>,
    b: Gw,
    connect: aviary_protocol::Connect,
    sub: Option<Raw>,
    publisher: Option<Raw>,
}

impl Keeper {
    async fn start(filter: &str, qos: QoS) -> Self {
        let nats = NatsCluster::start(3).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let a = process_node(&nats, "gw-a", dir.path()).await;
        let b = node(&nats, "gw-b").await;
        let connect = persistent("keeper");
        let (mut sub, _) = Raw::connect_ok(a.mqtt, connect.clone()).await;
        sub.subscribe(filter, qos).await;
        let (mut publisher, _) = Raw::connect_ok(b.mqtt, raw::v5("tracker")).await;
        let probe = filter.replace('+', "0");
        until_routed(&mut publisher, &mut sub, &probe, qos).await;
        Self {
            nats,
            _dir: dir,
            a: Some(a),
            b,
            connect,
            sub: Some(sub),
            publisher: Some(publisher),
        }
    }

    /// Kills gw-a with SIGKILL: when.
    async fn kill_a(&mut self) -> Instant {
        self.a.take().expect("gw-a runs").kill9().await;
        Instant::now()
    }

    /// The keeper reconnects to gw-b and finds its session there.
    async fn back_on_b(&self, killed: Instant) -> Raw {
        // The CONNACK waits for the lease to run out and the adoption (or its next attempt),
        // and the adopted queue follows: on a loaded machine longer than a packet's usual
        // wait. The callers bound the whole.
        let mut raw = Raw::open(self.b.mqtt).await;
        raw.set_wait(LEASE * 10);
        let (sub, ack) = within_for(
            LEASE * 10,
            "the session to be adopted",
            raw.handshake(self.connect.clone()),
        )
        .await;
        assert_eq!(ack.reason_code, ReasonCode::SUCCESS, "CONNACK: {ack:?}");
        assert!(ack.session_present, "the session came back");
        eprintln!(
            "SIGKILL to the session back on gw-b: {:?}",
            killed.elapsed()
        );
        sub
    }
}

#[tokio::test]
async fn a_qos_2_stream_to_a_killed_node_resumes_elsewhere_and_nothing_comes_twice() {
    const N: usize = 300;
    let mut k = Keeper::start("pets/+/status", QoS::ExactlyOnce).await;
    let mut publisher = k.publisher.take().expect("the tracker");
    let publishing = tokio::spawn(async move {
        for i in 0..N {
            let p = raw::message("pets/7/status", i.to_string().as_bytes(), QoS::ExactlyOnce);
            assert_eq!(publisher.publish(p).await, ReasonCode::SUCCESS);
        }
    });
    // The subscriber takes a third, then gw-a dies under it, mid-stream.
    let mut receiver = Qos2Receiver::default();
    let mut sub = k.sub.take().expect("the keeper");
    assert!(
        receiver.take(&mut sub, N / 3).await,
        "a third came from gw-a"
    );
    let killed = k.kill_a().await;
    receiver.take(&mut sub, N).await;
    let mut sub = k.back_on_b(killed).await;
    within_for(
        Duration::from_secs(60),
        "every message",
        receiver.take(&mut sub, N),
    )
    .await;
    publishing.await.expect("publisher");
    let twice: Vec<_> = receiver.delivered.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
    assert_eq!(receiver.delivered.len(), N);
}

/// The QoS 2 exchanges a publisher had open on a node that died: it resends each PUBLISH
/// (DUP) to the node it reconnects to, which answers for the dead node's exchanges. Each
/// message arrives once, whether the dead node had forwarded it to the stream before dying,
/// or recorded its exchange, or neither.
#[tokio::test]
async fn a_killed_nodes_qos_2_publisher_resends_elsewhere_and_each_message_arrives_once() {
    const SETTLED: usize = 100;
    const OPEN: usize = 60;
    const N: usize = SETTLED + OPEN;
    let nats = NatsCluster::start(3).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let a = process_node(&nats, "gw-a", dir.path()).await;
    let b = node(&nats, "gw-b").await;
    let (mut sub, _) = Raw::connect_ok(b.mqtt, raw::v5("watcher")).await;
    sub.subscribe("stream/#", QoS::ExactlyOnce).await;
    let (mut publisher, _) = Raw::connect_ok(a.mqtt, persistent("sensor")).await;
    until_routed(&mut publisher, &mut sub, "stream/probe", QoS::ExactlyOnce).await;
    let message = |i: usize| raw::message("stream/n", i.to_string().as_bytes(), QoS::ExactlyOnce);
    for i in 0..SETTLED {
        assert_eq!(publisher.publish(message(i)).await, ReasonCode::SUCCESS);
    }
    // Sent back to back, none of their PUBRECs read: gw-a dies with each of them somewhere
    // between the socket, its store and the stream.
    let mut open = Vec::new();
    for i in SETTLED..N {
        let mut p = message(i);
        p.packet_id = Some(publisher.packet_id());
        publisher.send(Packet::Publish(p.clone())).await;
        open.push(p);
    }
    a.kill9().await;

    let (mut publisher, ack) = within_for(
        LEASE * 10,
        "the publisher's session to be adopted",
        Raw::connect_ok(b.mqtt, persistent("sensor")),
    )
    .await;
    assert!(ack.session_present, "the publisher's session came back");
    for mut p in open {
        let id = p.packet_id.expect("a packet id");
        p.dup = true;
        publisher.send(Packet::Publish(p)).await;
        match publisher.recv().await {
            Packet::PubRec(a) if a.packet_id == id => {
                assert_eq!(a.reason_code, ReasonCode::SUCCESS, "PUBREC {id}")
            }
            other => panic!("expected PUBREC {id}, got {other:?}"),
        }
        publisher.send(Packet::PubRel(Ack::new(id))).await;
        match publisher.recv().await {
            Packet::PubComp(a) if a.packet_id == id => {}
            other => panic!("expected PUBCOMP {id}, got {other:?}"),
        }
    }
    // Published after every resend: once it is in, so is any copy gw-a left in the stream.
    assert_eq!(publisher.publish(message(N)).await, ReasonCode::SUCCESS);
    let mut receiver = Qos2Receiver::default();
    within_for(
        Duration::from_secs(30),
        "every message",
        receiver.take(&mut sub, N + 1),
    )
    .await;
    let twice: Vec<_> = receiver.delivered.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
    assert_eq!(
        receiver.delivered.keys().copied().collect::<Vec<_>>(),
        (0..=N).collect::<Vec<_>>()
    );
}
