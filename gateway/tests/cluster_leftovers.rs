//! What an adopter leaves if it dies between saying an adoption is done (`adopted:` in
//! `AVIARY_ADOPTIONS`) and dropping the adopted node's stream consumer (see
//! `cluster::adoption`): a consumer that keeps the interest-retained stream holding what
//! matches its filters, and that the adopted node, back, would read from where it stopped.
//! Against real nats-server processes; the leftover is made by hand, as the adopter would
//! have left it. Each wait is bounded.

mod cluster_common;
mod common;
mod ws_common;

use async_nats::jetstream::{self, consumer, context::ConsumerInfoErrorKind, kv};
use cluster_common::{node, process_node, KeyReads, LEASE};
use common::nats::NatsCluster;
use common::within_for;
use ws_common::Gw;

/// The message stream and the adoptions bucket (see `cluster::node`, `cluster::adoption`).
const STREAM: &str = "AVIARY_MESSAGES";
const ADOPTIONS: &str = "AVIARY_ADOPTIONS";

/// A JetStream context on `nats`.
async fn js(nats: &NatsCluster) -> jetstream::Context {
    let client = async_nats::connect(nats.urls())
        .await
        .expect("connect to NATS");
    jetstream::new(client)
}

/// Leaves what an adopter that died after saying `adopted:<adopter>` of `node` leaves: the
/// node's consumer (with explicit acknowledgements, as consumers were made before), and the
/// adoption's last word.
async fn leave_leftovers(js: &jetstream::Context, node: &str, adopter: &str) {
    let stream = js.get_stream(STREAM).await.expect("the message stream");
    let name = format!("node-{node}");
    stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(name),
            ack_policy: consumer::AckPolicy::Explicit,
            filter_subject: format!("aviary.q.leftover-{node}.>"),
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .expect("the leftover consumer");
    js.get_key_value(ADOPTIONS)
        .await
        .expect("the adoptions bucket")
        .put(node, format!("adopted:{adopter}").into())
        .await
        .expect("the adoption's last word");
}

/// The ack policy of `node`'s consumer; `None` once it is gone.
async fn consumer_policy(js: &jetstream::Context, node: &str) -> Option<consumer::AckPolicy> {
    let stream = js.get_stream(STREAM).await.expect("the message stream");
    match stream.consumer_info(format!("node-{node}")).await {
        Ok(info) => Some(info.config.ack_policy),
        Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => None,
        Err(e) => panic!("reading node-{node}: {e}"),
    }
}

/// Starts in-process node `name` and waits for its start-up sweep (see
/// `cluster::adoption::Adoption::resume`) to be done, so that what the test plants later is
/// not taken by it: the sweep, in the background, drops whatever the node's finished
/// adoptions left when it lists them. Seen done once a key it finds there, left by it
/// before it started (gw-s), says so: the bucket is made as a node makes it.
async fn swept_at_start(
    nats: &NatsCluster,
    js: &jetstream::Context,
    name: &str,
) -> (Gw, kv::Store) {
    let kv = js
        .create_key_value(kv::Config {
            bucket: ADOPTIONS.to_owned(),
            history: 1,
            storage: jetstream::stream::StorageType::File,
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .expect("the adoptions bucket");
    kv.put("gw-s", format!("adopted:{name}").into())
        .await
        .expect("an adoption's last word");
    let gw = node(nats, name).await;
    let dropped = format!("adopted:{name}\ndropped");
    until_key_says(&kv, "gw-s", dropped.as_bytes(), "the node's start-up sweep").await;
    (gw, kv)
}

/// Waits, for up to 5 leases, until `key` of `kv` says `value`; `what` names the wait.
async fn until_key_says(kv: &kv::Store, key: &str, value: &[u8], what: &str) {
    within_for(LEASE * 5, what, async {
        while kv.get(key).await.expect("read a key").as_deref() != Some(value) {
            tokio::time::sleep(LEASE / 10).await;
        }
    })
    .await;
}

#[tokio::test]
async fn the_adopter_of_a_dead_adopter_drops_what_its_finished_adoptions_left() {
    let nats = NatsCluster::start(3).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let _a = node(&nats, "gw-a").await;
    let b = process_node(&nats, "gw-b", dir.path()).await;
    let js = js(&nats).await;
    // gw-b adopted gw-x (long dead) and died before dropping its consumer.
    leave_leftovers(&js, "gw-x", "gw-b").await;
    b.kill9().await;
    // gw-a notices within about a lease, adopts gw-b, and sweeps what gw-b left.
    within_for(LEASE * 15, "gw-x's leftover consumer to go", async {
        while consumer_policy(&js, "gw-x").await.is_some() {
            tokio::time::sleep(LEASE / 10).await;
        }
    })
    .await;
    let kv = js.get_key_value(ADOPTIONS).await.expect("the bucket");
    let said = kv.get("gw-b").await.expect("read gw-b's adoption");
    assert_eq!(said.as_deref(), Some(&b"adopted:gw-a\ndropped"[..]));
    // gw-x's sessions still live where gw-b's went; what gw-b left of it is gone.
    let dropped = b"adopted:gw-b\ndropped";
    until_key_says(
        &kv,
        "gw-x",
        dropped,
        "gw-x's key to say its leftovers are dropped",
    )
    .await;
}

#[tokio::test]
async fn a_node_back_after_its_adoption_drops_the_consumer_its_adopter_left() {
    let nats = NatsCluster::start(3).await;
    let dir = tempfile::tempdir().expect("temp dir");
    // gw-a makes the stream and bucket; gw-y was adopted by it and never dropped.
    let _a = node(&nats, "gw-a").await;
    let js = js(&nats).await;
    leave_leftovers(&js, "gw-y", "gw-a").await;
    let _y = process_node(&nats, "gw-y", dir.path()).await;
    // Started: its consumer is a new one (the leftover had explicit acknowledgements).
    within_for(LEASE * 5, "gw-y's own consumer", async {
        while consumer_policy(&js, "gw-y").await != Some(consumer::AckPolicy::All) {
            tokio::time::sleep(LEASE / 10).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_node_back_waits_while_a_live_node_drops_its_leftovers() {
    let nats = NatsCluster::start(3).await;
    let js = js(&nats).await;
    let (_a, kv) = swept_at_start(&nats, &js, "gw-a").await;
    // gw-a adopted gw-y and is dropping what gw-y left, holding gw-y's key.
    leave_leftovers(&js, "gw-y", "gw-a").await;
    let held = kv
        .put("gw-y", "adopted:gw-a\ndropping:gw-a".into())
        .await
        .expect("hold gw-y's key");
    let client = async_nats::connect(nats.urls()).await.expect("connect");
    let mut reads = KeyReads::watch(&client, ADOPTIONS).await;
    let start = node(&nats, "gw-y");
    tokio::pin!(start);
    // It reads the key again and again while gw-a holds it, and does not start.
    let started = "gw-y started while a live node dropped its leftovers";
    reads.while_pending(&mut start, "gw-y", started).await;
    // Had gw-y made its consumer already, this would take it: the drop gw-a would do.
    let stream = js.get_stream(STREAM).await.expect("the message stream");
    stream
        .delete_consumer("node-gw-y")
        .await
        .expect("drop gw-y's leftover consumer");
    kv.update("gw-y", "adopted:gw-a\ndropped".into(), held)
        .await
        .expect("say the leftovers are dropped");
    let _y = within_for(LEASE * 5, "gw-y to start", start).await;
    assert_eq!(
        consumer_policy(&js, "gw-y").await,
        Some(consumer::AckPolicy::All),
        "gw-y has a consumer of its own"
    );
    assert_eq!(kv.get("gw-y").await.expect("read gw-y's key"), None);
}
