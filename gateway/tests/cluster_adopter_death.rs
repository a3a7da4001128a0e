//! A node that dies while it adopts a dead node's sessions (see `cluster::adoption`): the
//! adoption is not lost with it. Three gateways as processes of their own on real
//! nats-server processes: gw-a holds a persistent QoS 2 session with messages queued and is
//! killed with SIGKILL; more messages come for the session while gw-a is dead; the node that
//! claims gw-a's adoption (gw-b or gw-c, whichever notices first) is killed mid-adoption,
//! the moment its copy of the session appears in its own log in JetStream.
//! Either the remaining node takes the unfinished adoption over with the killed adopter's, or
//! the killed one, started again at once, finishes it itself. Either way the session comes
//! back with every message exactly once. Each wait is bounded; the timings measured are
//! printed (`--nocapture`).

mod cluster_common;
mod common;
mod ws_common;

use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use aviary_protocol::{QoS, ReasonCode};
use cluster_common::{persistent, process_node, Qos2Receiver, LEASE};
use common::nats::NatsCluster;
use common::process::GatewayProcess;
use common::raw::{self, until_routed, Raw};
use common::within_for;
use futures_util::StreamExt;

/// Queued for the session in gw-a's store, so in its log: long enough to read that the kill
/// lands while the adopter is at it.
const QUEUED: usize = 1_500;
/// Published while gw-a is dead: only its stream consumer holds them.
const WHILE_DEAD: usize = 200;
/// gw-a's key in `AVIARY_ADOPTIONS` (node names are keys as they are, `-` included).
const KEY: &str = "gw-a";

#[tokio::test]
async fn a_dead_nodes_sessions_are_adopted_when_their_adopter_dies_in_the_adoption() {
    let mut c = Cluster::start().await;
    let (holder, killed) = c.kill_the_adopter().await;
    let survivor = c
        .nodes
        .iter()
        .flatten()
        .next()
        .expect("a node remains")
        .mqtt;
    eprintln!("killed {holder} mid-adoption");
    let mut sub = c.back_on(survivor, killed).await;
    c.every_message_once(&mut sub).await;
    let adopter = c.adopted_by().await;
    assert_ne!(adopter, holder, "the remaining node finished the adoption");
}

#[tokio::test]
async fn an_adopter_killed_and_started_again_at_once_finishes_its_adoption() {
    let mut c = Cluster::start().await;
    let (holder, killed) = c.kill_the_adopter().await;
    // Back under the same name, on the same data, within its lease: its claim is its own.
    let again = process_node(&c.nats, &holder, c.dir.path()).await;
    eprintln!(
        "{holder} killed mid-adoption and back after {:?}",
        killed.elapsed()
    );
    let other = c.nodes.iter().flatten().next().expect("another node").mqtt;
    c.nodes.push(Some(again));
    let mut sub = c.back_on(other, killed).await;
    c.every_message_once(&mut sub).await;
    // Usually the restarted node itself; the other one if it saw the lease run out first.
    eprintln!("adopted by {}", c.adopted_by().await);
}

/// gw-b and gw-c (processes) with gw-a's session and messages waiting for adoption.
struct Cluster {
    nats: NatsCluster,
    dir: tempfile::TempDir,
    /// gw-b and gw-c, until one is killed.
    nodes: Vec<Option<GatewayProcess>>,
    names: Vec<String>,
    client: async_nats::Client,
    adoptions: kv::Store,
}

impl Cluster {
    /// gw-a with the keeper's session, QUEUED messages in its store and WHILE_DEAD more in
    /// its consumer after it is killed.
    async fn start() -> Self {
        let nats = NatsCluster::start(3).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let a = process_node(&nats, "gw-a", dir.path()).await;
        let b = process_node(&nats, "gw-b", dir.path()).await;
        let c = process_node(&nats, "gw-c", dir.path()).await;
        let (mut sub, _) = Raw::connect_ok(a.mqtt, persistent("keeper")).await;
        sub.subscribe("pets/+/location", QoS::ExactlyOnce).await;
        let (mut publisher, _) = Raw::connect_ok(b.mqtt, raw::v5("tracker")).await;
        until_routed(
            &mut publisher,
            &mut sub,
            "pets/0/location",
            QoS::ExactlyOnce,
        )
        .await;
        drop(sub);
        for i in 0..QUEUED {
            publish(&mut publisher, i).await;
        }
        a.kill9().await;
        for i in QUEUED..QUEUED + WHILE_DEAD {
            publish(&mut publisher, i).await;
        }
        drop(publisher);
        let client = async_nats::connect(nats.urls())
            .await
            .expect("connect to NATS");
        let adoptions = async_nats::jetstream::new(client.clone())
            .get_key_value("AVIARY_ADOPTIONS")
            .await
            .expect("the adoptions bucket");
        Self {
            nats,
            dir,
            nodes: vec![Some(b), Some(c)],
            names: vec!["gw-b".into(), "gw-c".into()],
            client,
            adoptions,
        }
    }

    /// Waits for gw-a's adoption to be claimed and confirmed, and kills the claimant with SIGKILL: its name,
    /// and when. Fails if the adoption was done before the kill.
    async fn kill_the_adopter(&mut self) -> (String, Instant) {
        let mut watch = self.adoptions.watch_with_history(KEY).await.expect("watch");
        let claim = within_for(LEASE * 10, "gw-a's adoption to be claimed", async {
            loop {
                let entry = watch
                    .next()
                    .await
                    .expect("the watch goes on")
                    .expect("an entry");
                // A claim not yet confirmed (`claiming:`) copies nothing: waited past.
                if entry.operation == kv::Operation::Put && !entry.value.starts_with(b"claiming:") {
                    return String::from_utf8(entry.value.to_vec()).expect("utf-8");
                }
            }
        })
        .await;
        let holder = claim
            .strip_prefix("adopting:")
            .unwrap_or_else(|| panic!("adopted before it could be watched: {claim:?}"))
            .to_owned();
        // Killed once it has opened the session: a copy is in its store, and so in its log.
        let mut log = self
            .client
            .subscribe(format!("aviary.store.{holder}"))
            .await
            .expect("follow the adopter's log");
        within_for(LEASE * 5, "the adopter to open the session", async {
            loop {
                let record = log.next().await.expect("the log goes on");
                if record.payload.windows(6).any(|w| w == b"keeper") {
                    return;
                }
            }
        })
        .await;
        let i = self
            .names
            .iter()
            .position(|n| *n == holder)
            .expect("a node");
        self.nodes[i].take().expect("alive").kill9().await;
        let killed = Instant::now();
        let now = self
            .adoptions
            .get(KEY)
            .await
            .expect("read")
            .expect("a claim");
        assert!(
            now.starts_with(b"adopting:"),
            "{holder} finished the adoption before it was killed: {:?}",
            String::from_utf8_lossy(&now)
        );
        self.nodes.remove(i);
        self.names.remove(i);
        (holder, killed)
    }

    /// The keeper reconnects to `addr` and finds its session there.
    async fn back_on(&self, addr: std::net::SocketAddr, killed: Instant) -> Raw {
        // The CONNACK waits for two leases to run out and two adoptions: on a loaded machine
        // longer than a packet's usual wait.
        let mut raw = Raw::open(addr).await;
        raw.set_wait(LEASE * 20);
        let (sub, ack) = within_for(
            LEASE * 20,
            "the session to be adopted",
            raw.handshake(persistent("keeper")),
        )
        .await;
        assert_eq!(ack.reason_code, ReasonCode::SUCCESS, "CONNACK: {ack:?}");
        assert!(ack.session_present, "the session came back");
        eprintln!("adopter killed to the session back: {:?}", killed.elapsed());
        sub
    }

    /// Every message comes, each once.
    async fn every_message_once(&self, sub: &mut Raw) {
        let n = QUEUED + WHILE_DEAD;
        let mut receiver = Qos2Receiver::default();
        within_for(
            Duration::from_secs(60),
            "every message",
            receiver.take(sub, n),
        )
        .await;
        let twice: Vec<_> = receiver.delivered.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "delivered twice: {twice:?}");
        let got: Vec<usize> = receiver.delivered.keys().copied().collect();
        assert_eq!(got, (0..n).collect::<Vec<_>>());
    }

    /// Who adopted gw-a.
    async fn adopted_by(&self) -> String {
        let value = self
            .adoptions
            .get(KEY)
            .await
            .expect("read")
            .expect("a claim");
        let value = String::from_utf8(value.to_vec()).expect("utf-8");
        value
            .strip_prefix("adopted:")
            .unwrap_or_else(|| panic!("not adopted: {value:?}"))
            .to_owned()
    }
}

async fn publish(publisher: &mut Raw, i: usize) {
    let p = raw::message(
        "pets/7/location",
        i.to_string().as_bytes(),
        QoS::ExactlyOnce,
    );
    assert_eq!(
        publisher.publish(p).await,
        ReasonCode::SUCCESS,
        "message {i}"
    );
}
