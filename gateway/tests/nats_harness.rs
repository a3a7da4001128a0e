//! The real-NATS test harness ([`common::nats`]) and the nats-server features the cluster
//! backplane builds on, checked against the pinned server with the same async-nats the gateway
//! uses: replicated (R3) streams that keep acknowledging when a server is SIGKILLed, key-value
//! compare-and-set, and key-value entries with a per-message TTL that expire (2.11 and newer).

mod common;

use std::time::{Duration, Instant};

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, StorageType};
use async_nats::jetstream::{self as js, publish::PublishAck};
use bytes::Bytes;
use common::nats::NatsCluster;
use common::{within, within_for};
use futures_util::StreamExt;

/// How long a replicated stream may take to elect a new leader after its leader is killed
/// (nats-server's Raft elections take seconds, not milliseconds).
const ELECTION: Duration = Duration::from_secs(30);

/// A JetStream context on a client that knows every server of `cluster`.
async fn jetstream(cluster: &NatsCluster) -> js::Context {
    let client = within("connecting to NATS", async_nats::connect(cluster.urls()))
        .await
        .expect("connect to NATS");
    js::new(client)
}

/// Publishes `payload` to `subject` with the message id `id` until JetStream acknowledges it.
/// Retrying is safe because of the id: JetStream stores a message id once (within its
/// duplicate window), so a publish whose ack was lost is not stored twice.
async fn publish_until_acked(
    js: &js::Context,
    subject: &str,
    id: &str,
    payload: &str,
) -> PublishAck {
    let payload = Bytes::copy_from_slice(payload.as_bytes());
    within_for(ELECTION, "a JetStream acknowledgement", async {
        let mut refused = 0;
        loop {
            let publish = PublishMessage::build()
                .payload(payload.clone())
                .message_id(id);
            let error = match js.send_publish(subject.to_owned(), publish).await {
                Ok(ack) => match ack.await {
                    Ok(ack) => return ack,
                    Err(err) => err.to_string(),
                },
                Err(err) => err.to_string(),
            };
            // During an election every try fails the same way ("no stream found"); say so once.
            if refused == 0 {
                eprintln!("publish {id}: not acknowledged ({error}); retrying");
            }
            refused += 1;
            // The client's own timeouts pace this loop; this only avoids a hot spin when the
            // server answers "no responders" at once during an election.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}

/// The payload stored at `sequence`, asked again while the client is still reconnecting.
async fn stored(stream: &js::stream::Stream, sequence: u64) -> Bytes {
    within("reading a stored message", async {
        loop {
            match stream.get_raw_message(sequence).await {
                Ok(message) => return message.payload,
                Err(err) => eprintln!("reading message {sequence}: {err}; asking again"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}

#[tokio::test]
async fn a_replicated_stream_keeps_acknowledging_when_its_leader_is_killed() {
    let mut cluster = NatsCluster::start(3).await;
    let js = jetstream(&cluster).await;
    let config = stream::Config {
        name: "EVENTS".into(),
        subjects: vec!["events.>".into()],
        num_replicas: 3,
        storage: StorageType::File,
        ..Default::default()
    };
    let mut stream = within("creating an R3 stream", js.create_stream(config))
        .await
        .expect("create the stream");

    let first = publish_until_acked(&js, "events.a", "first", "one").await;
    assert_eq!((first.stream.as_str(), first.sequence), ("EVENTS", 1));
    assert_eq!(stored(&stream, 1).await, "one");

    let info = within("stream info", stream.info()).await.expect("info");
    let placement = info.cluster.clone().expect("a clustered stream");
    assert_eq!(placement.replicas.len(), 2, "a leader and two replicas");
    let leader = placement.leader.expect("the stream has a leader");
    let leader = cluster
        .index_of(&leader)
        .expect("the leader is one of ours");

    cluster.kill(leader);
    let killed_at = Instant::now();
    let second = publish_until_acked(&js, "events.b", "second", "two").await;
    eprintln!(
        "{} killed; the next publish was acknowledged after {:?}",
        cluster.name(leader),
        killed_at.elapsed()
    );
    assert_eq!(second.sequence, 2, "one copy, whatever the retries");
    assert_eq!(stored(&stream, 1).await, "one");
    assert_eq!(stored(&stream, 2).await, "two");

    // Back on the same ports and store, it rejoins and catches up; healthy means current.
    cluster.restart(leader).await;
    let third = publish_until_acked(&js, "events.c", "third", "three").await;
    assert_eq!(third.sequence, 3);
}

#[tokio::test]
async fn key_value_compare_and_set_and_per_message_ttls() {
    let cluster = NatsCluster::start(3).await;
    let js = jetstream(&cluster).await;
    let config = kv::Config {
        bucket: "aviary-leases".into(),
        history: 1,
        num_replicas: 3,
        // Allows per-message TTLs, and leaves a marker when one expires, so watchers see it.
        limit_markers: Some(Duration::from_secs(1)),
        ..Default::default()
    };
    let kv = within("creating an R3 bucket", js.create_key_value(config))
        .await
        .expect("create the bucket (needs nats-server 2.11+ for limit_markers)");

    // Client-id ownership: exactly one `create` wins; `update` needs the current revision.
    // A bucket just created may not answer yet on a loaded machine ("no responders"): the
    // gateway's setup waits for that as well (cluster::setup).
    let owned = within("the new bucket to answer", async {
        loop {
            match kv.create("client.c1", "gw-a".into()).await {
                Ok(revision) => break revision,
                Err(e) if e.to_string().contains("no responders") => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("create: {e}"),
            }
        }
    })
    .await;
    let err = kv.create("client.c1", "gw-b".into()).await.unwrap_err();
    assert_eq!(err.kind(), CreateErrorKind::AlreadyExists);
    let taken = kv
        .update("client.c1", "gw-b".into(), owned)
        .await
        .expect("CAS");
    let err = kv
        .update("client.c1", "gw-c".into(), owned)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), UpdateErrorKind::WrongLastRevision);
    assert!(taken > owned);
    assert_eq!(kv.get("client.c1").await.unwrap().unwrap(), "gw-b");

    // A node's lease: a key with a TTL that nobody renews expires, and a watcher is told.
    let mut watch = kv.watch("node.gw-a").await.expect("watch");
    kv.create_with_ttl("node.gw-a", "alive".into(), Duration::from_secs(1))
        .await
        .expect("create with a TTL");
    let put = within("the lease in the watch", watch.next()).await;
    assert_eq!(put.unwrap().unwrap().operation, Operation::Put);
    let expired = within_for(Duration::from_secs(15), "the lease to expire", watch.next()).await;
    let expired = expired.unwrap().unwrap();
    assert_eq!(
        (expired.key.as_str(), expired.operation),
        ("node.gw-a", Operation::Purge)
    );
    assert_eq!(kv.get("node.gw-a").await.unwrap(), None);
}

#[tokio::test]
async fn a_single_server_keeps_its_store_across_a_kill_and_restart() {
    let mut nats = NatsCluster::single().await;
    let js = jetstream(&nats).await;
    let config = stream::Config {
        name: "ONE".into(),
        subjects: vec!["one.>".into()],
        storage: StorageType::File,
        ..Default::default()
    };
    let stream = within("creating an R1 stream", js.create_stream(config))
        .await
        .expect("create the stream");
    publish_until_acked(&js, "one.a", "a", "kept").await;

    nats.kill(0);
    nats.restart(0).await;
    // The client reconnects to the same URL by itself.
    assert_eq!(stored(&stream, 1).await, "kept");
    assert_eq!(nats.len(), 1);
    assert!(nats.monitor_url(0).starts_with("http://127.0.0.1:"));
}
