//! What each node of a cluster reports about itself, against real nats-server processes:
//! `$SYS` topics and `/metrics` count the node's own clients, not the cluster's. `$SYS`
//! messages stay on their node (they are retained there, never sent to the others), so a
//! dashboard subscribed through node B sees B.

mod cluster_common;
mod common;
mod ws_common;

use aviary_protocol::{Publish, QoS};
use common::nats::NatsCluster;
use common::raw::{self, Raw};
use ws_common::Gw;

const CONNECTED: &str = "$SYS/broker/clients/connected";

async fn node(nats: &NatsCluster, name: &str) -> Gw {
    Gw::start_with(|c| {
        c.cluster.nats = nats.urls();
        c.cluster.node = Some(name.to_owned());
        c.mqtt.sys_interval_secs = 1;
    })
    .await
}

#[tokio::test]
async fn sys_topics_and_metrics_report_each_node_for_itself() {
    let nats = NatsCluster::start(3).await;
    let a = node(&nats, "gw-a").await;
    let b = node(&nats, "gw-b").await;
    let mut on_a = Vec::new();
    for i in 0..3 {
        on_a.push(
            Raw::connect_ok(a.mqtt, raw::v5(&format!("device-{i}")))
                .await
                .0,
        );
    }
    let (mut watch_a, _) = Raw::connect_ok(a.mqtt, raw::v5("watch-a")).await;
    let (mut watch_b, _) = Raw::connect_ok(b.mqtt, raw::v5("watch-b")).await;
    watch_a.subscribe(CONNECTED, QoS::AtMostOnce).await;
    watch_b.subscribe(CONNECTED, QoS::AtMostOnce).await;

    // The retained copy is the node's own last count, from any time since it started.
    let retained = count(&mut watch_a, true).await;
    assert!(
        matches!(&*retained, "0" | "1" | "2" | "3" | "4"),
        "{retained}"
    );
    let retained = count(&mut watch_b, true).await;
    assert!(
        matches!(&*retained, "0" | "1"),
        "gw-b's, not gw-a's: {retained}"
    );
    // Then each tick of each node, to its own clients only.
    for _ in 0..2 {
        assert_eq!(
            count(&mut watch_a, false).await,
            "4",
            "gw-a: 3 devices and its watcher"
        );
        assert_eq!(count(&mut watch_b, false).await, "1", "gw-b: its watcher");
    }

    let connections = |metrics: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with("aviary_connections{"))
            .map(|l| {
                l.rsplit(' ')
                    .next()
                    .unwrap()
                    .parse::<u64>()
                    .expect("a count")
            })
            .sum()
    };
    assert_eq!(connections(a.http().get("/metrics").await.text()), 4);
    assert_eq!(connections(b.http().get("/metrics").await.text()), 1);
}

/// The payload of the next `$SYS` count `watcher` gets, which must be retained (the copy
/// sent at SUBSCRIBE) or not (a tick), as `retained` says.
async fn count(watcher: &mut Raw, retained: bool) -> String {
    let p: Publish = watcher.recv_publish().await;
    assert_eq!(&*p.topic, CONNECTED);
    assert_eq!(p.retain, retained, "{p:?}");
    String::from_utf8(p.payload.to_vec()).expect("utf-8")
}
