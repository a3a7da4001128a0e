//! The persistent sessions of a cluster node, kept where another node can read them: each
//! node copies its store into JetStream (`AVIARY_STORES`, see `cluster::replica`), against
//! real nats-server processes and independent MQTT clients. The log is read back here as
//! another node would, and replayed.

mod common;
mod ws_common;

use std::time::Duration;

use aviary::store::{replay, Snapshot};
use aviary_protocol::QoS;
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

fn persistent(client_id: &str) -> aviary_protocol::Connect {
    let mut connect = raw::v5(client_id);
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(3_600);
    connect
}

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
    let a = node(&nats, "gw-a").await;
    let (mut keeper, _) = Raw::connect_ok(a.mqtt, persistent("keeper")).await;
    keeper.subscribe("kept/#", QoS::AtLeastOnce).await;
    drop(keeper);
    // Published right after the SUBACK: the node's stream consumer already listens.
    let (mut publisher, _) = Raw::connect_ok(a.mqtt, raw::v5("publisher")).await;
    for i in 0..N {
        let p = raw::message("kept/n", i.to_string().as_bytes(), QoS::AtLeastOnce);
        assert_eq!(
            publisher.publish(p).await,
            aviary_protocol::ReasonCode::SUCCESS
        );
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
