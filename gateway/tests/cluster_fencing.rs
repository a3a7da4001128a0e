//! A node back, after its lease ran out, and another node's claim on its sessions settle by
//! compare-and-set who has them (see `cluster::adoption::confirm`):
//! - a node whose process is frozen (SIGSTOP) past its lease is taken for dead, and another
//!   node adopts its sessions. Once it runs again it must not serve them, nor the clients
//!   still connected to it, as if nothing happened: its sessions live elsewhere now (see
//!   `cluster::link`, "back after the grace"). Its gateway starts again in its process
//!   instead, on the same addresses: it forgets them and takes clients as any node does;
//! - a node starting while another node's claim on it is not yet confirmed waits; if the
//!   claim is withdrawn (the claimer found the node's lease), it keeps its sessions.
//!
//! Against real nats-server processes and real gateway processes; each wait is bounded.

mod cluster_common;
mod common;
mod ws_common;

use std::time::Duration;

use aviary_protocol::{QoS, ReasonCode};
use cluster_common::{node, numbers, persistent, process_node, KeyReads, LEASE};
use common::nats::NatsCluster;
use common::raw::{self, until_routed, Raw};
use common::within_for;

/// The adoptions bucket (see `cluster::adoption`).
const ADOPTIONS: &str = "AVIARY_ADOPTIONS";

/// Waits until `node`'s adoption is done: the adopter's word in `AVIARY_ADOPTIONS`.
async fn adopted(nats: &NatsCluster, node: &str) -> String {
    let client = async_nats::connect(nats.urls())
        .await
        .expect("connect to NATS");
    let js = async_nats::jetstream::new(client);
    within_for(LEASE * 10, "the frozen node's adoption", async {
        loop {
            if let Ok(kv) = js.get_key_value(ADOPTIONS).await {
                if let Ok(Some(value)) = kv.get(node).await {
                    let value = String::from_utf8_lossy(&value).into_owned();
                    if value.starts_with("adopted:") {
                        return value;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}

#[tokio::test]
async fn a_node_frozen_past_its_lease_and_adopted_starts_again_rather_than_serve_its_sessions() {
    const N: usize = 50;
    let nats = NatsCluster::start(3).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let a = process_node(&nats, "gw-a", dir.path()).await;
    let b = node(&nats, "gw-b").await;
    // A persistent session on gw-a, connected: it stays connected through the freeze.
    let (mut phone, _) = Raw::connect_ok(a.mqtt, persistent("phone")).await;
    phone.subscribe("pets/+/location", QoS::AtLeastOnce).await;
    let (mut tracker, _) = Raw::connect_ok(b.mqtt, raw::v5("tracker")).await;
    until_routed(
        &mut tracker,
        &mut phone,
        "pets/0/location",
        QoS::AtLeastOnce,
    )
    .await;

    a.signal("STOP");
    let word = adopted(&nats, "gw-a").await;
    assert!(word.starts_with("adopted:gw-b"), "{word:?}");
    // Published once gw-b holds the session: for it, not for the frozen node.
    for i in 0..N {
        let p = raw::message(
            "pets/1/location",
            i.to_string().as_bytes(),
            QoS::AtLeastOnce,
        );
        assert_eq!(tracker.publish(p).await, ReasonCode::SUCCESS);
    }

    a.signal("CONT");
    // It says why, and serves again where it did.
    let said = a
        .said(
            &["adopted by gw-b", "starting again", "listening"],
            LEASE * 5,
        )
        .await;
    let listening = format!("mqtt={} http={}", a.mqtt, a.http);
    assert!(said[2].contains(&listening), "{said:#?}");
    // Its client was disconnected, told to go elsewhere or by the close.
    phone.expect_closed_within(LEASE * 2).await;

    // The phone goes to gw-b: its session is there with what came meanwhile.
    let (mut phone, ack) = Raw::connect_ok(b.mqtt, persistent("phone")).await;
    assert!(ack.session_present, "the session lives on gw-b");
    let got = within_for(LEASE * 5, "the queued messages", numbers(&mut phone, N)).await;
    assert_eq!(got, (0..N).collect());
    drop(phone);

    // gw-a forgot what gw-b adopted and takes clients: the session moves.
    let (mut phone, ack) = Raw::connect_ok(a.mqtt, persistent("phone")).await;
    assert!(ack.session_present, "the session moved back to gw-a");
    // With its subscription, across the cluster.
    until_routed(
        &mut tracker,
        &mut phone,
        "pets/2/location",
        QoS::AtLeastOnce,
    )
    .await;
}

#[tokio::test]
async fn a_node_starting_while_claimed_waits_and_keeps_its_sessions_if_the_claim_is_withdrawn() {
    let nats = NatsCluster::start(3).await;
    let dir = tempfile::tempdir().expect("temp dir");
    // gw-a makes the buckets; gw-y holds a persistent session and leaves in good order.
    let _a = node(&nats, "gw-a").await;
    let y = process_node(&nats, "gw-y", dir.path()).await;
    let (mut phone, _) = Raw::connect_ok(y.mqtt, persistent("phone")).await;
    phone.subscribe("pets/+/location", QoS::AtLeastOnce).await;
    drop(phone);
    y.stop().await;
    // gw-x claims gw-y, and has yet to confirm the claim.
    let client = async_nats::connect(nats.urls())
        .await
        .expect("connect to NATS");
    let js = async_nats::jetstream::new(client.clone());
    let kv = js.get_key_value(ADOPTIONS).await.expect("the bucket");
    let claim = kv
        .put("gw-y", "claiming:gw-x".into())
        .await
        .expect("claim gw-y");
    let mut reads = KeyReads::watch(&client, ADOPTIONS).await;
    let start = process_node(&nats, "gw-y", dir.path());
    tokio::pin!(start);
    reads
        .while_pending(&mut start, "gw-y", "gw-y started while claimed")
        .await;
    // gw-x found gw-y's lease when it confirmed: it withdraws, at its claim's revision.
    kv.delete_expect_revision("gw-y", Some(claim))
        .await
        .expect("withdraw the claim");
    let y = within_for(LEASE * 5, "gw-y to start", start).await;
    let (_, ack) = Raw::connect_ok(y.mqtt, persistent("phone")).await;
    assert!(ack.session_present, "gw-y kept its session");
}
