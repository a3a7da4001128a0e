//! Node failure in cluster mode, against real nats-server processes and independent MQTT
//! clients: a node cut off from NATS disconnects its clients within its grace period (half
//! a lease), refuses new ones, and takes them again once NATS is back.
//!
//! Leases are short here (`[cluster] lease_ms`), so the tests wait seconds, not tens of
//! them. Each wait is bounded; the timings measured are printed (`--nocapture`).

mod common;
mod ws_common;

use std::time::{Duration, Instant};

use aviary_protocol::ReasonCode;
use common::nats::NatsCluster;
use common::raw::{self, Raw};
use common::within;
use ws_common::Gw;

/// The lease of every node in these tests.
const LEASE: Duration = Duration::from_millis(2_000);

/// An in-process node of the cluster on `nats`.
async fn node(nats: &NatsCluster, name: &str) -> Gw {
    Gw::start_with(|c| {
        c.cluster.nats = nats.urls();
        c.cluster.node = Some(name.to_owned());
        c.cluster.lease_ms = Some(LEASE.as_millis() as u64);
    })
    .await
}

#[tokio::test]
async fn a_node_cut_off_from_nats_disconnects_its_clients_and_takes_them_again_once_back() {
    let mut nats = NatsCluster::single().await;
    let gw = node(&nats, "gw-a").await;
    let (mut five, _) = Raw::connect_ok(gw.mqtt, raw::v5("five")).await;
    let (mut four, _) = Raw::connect_ok(gw.mqtt, raw::v4("four")).await;

    nats.kill(0);
    let cut = Instant::now();
    // MQTT 5: told to use another server; 3.1.1: closed. Within the grace period (half a
    // lease) after the last renewal, so within a lease after the cut.
    let said = five.expect_closed_within(LEASE * 2).await;
    assert_eq!(raw::disconnects(said), [ReasonCode::USE_ANOTHER_SERVER]);
    let disconnected = cut.elapsed();
    assert!(four.expect_closed_within(LEASE).await.is_empty());
    eprintln!("NATS lost to clients disconnected: {disconnected:?} (lease {LEASE:?})");
    assert!(disconnected <= LEASE, "{disconnected:?}");

    // Refused while cut off: 0x88 Server unavailable, 3.1.1 return code 3.
    let (_, ack) = Raw::connect(gw.mqtt, raw::v5("new")).await;
    assert_eq!(ack.reason_code, ReasonCode::SERVER_UNAVAILABLE);
    let (_, ack) = Raw::connect(gw.mqtt, raw::v4("new")).await;
    assert_eq!(ack.reason_code, ReasonCode::SERVER_UNAVAILABLE);
    let reply = gw.http().get("/api/v1/cluster").await;
    assert_eq!(reply.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.text().contains("cut off"), "{}", reply.text());

    nats.restart(0).await;
    let back = Instant::now();
    within("the node to take clients again", async {
        loop {
            let (_, ack) = Raw::connect(gw.mqtt, raw::v5("again")).await;
            if ack.reason_code == ReasonCode::SUCCESS {
                return;
            }
            assert_eq!(ack.reason_code, ReasonCode::SERVER_UNAVAILABLE);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    eprintln!("NATS healthy again to clients taken: {:?}", back.elapsed());
    let view = gw.http().get("/api/v1/cluster").await.json();
    assert_eq!(view["this_node_state"], "up");
}
