//! Backpressure end to end: publishers that outrun their subscriber are held back, not
//! dropped on. QoS 0 has no flow control of its own, so without it a queue bounded at 100
//! messages would lose most of what four clients publish at once into one subscriber.
//! (A subscriber that never reads holds no one back: `robustness.rs`.)

mod common;

use std::time::Duration;

use aviary_protocol::{Packet, ProtocolVersion, QoS};
use bytes::BytesMut;
use common::raw::{self, Raw};
use common::rumqtt::V4;
use common::TestGateway;

const PUBLISHERS: usize = 4;
const EACH: usize = 2_500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_faster_than_their_subscriber_are_held_back_not_dropped_on() {
    let gw = TestGateway::start_with(|c| {
        c.max_queued_messages = 100;
        // This tests holding back, not slow detection (`robustness.rs`): on a machine
        // starved of CPU, a subscriber that reads can still go 20 ms without taking a batch.
        c.slow_subscriber_stall_ms = 10_000;
        c.slow_subscriber_patience_ms = 60_000;
    })
    .await;
    let mut subscriber = V4::connect_id(gw.addr, "sink").await;
    subscriber
        .subscribe("fan/#", rumqttc::QoS::AtMostOnce)
        .await;
    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let (publisher, _) = Raw::connect_ok(gw.addr, raw::v5(&format!("source{p}"))).await;
        publishers.push(publisher);
    }
    // Each publisher's messages in one write: as fast as a client can send them.
    for (p, publisher) in publishers.iter_mut().enumerate() {
        let mut bytes = BytesMut::new();
        for i in 0..EACH {
            let topic = format!("fan/{p}");
            Packet::Publish(raw::message(
                &topic,
                i.to_string().as_bytes(),
                QoS::AtMostOnce,
            ))
            .encode(ProtocolVersion::V5, &mut bytes)
            .unwrap();
        }
        publisher.send_raw(&bytes).await;
    }
    let mut next = [0usize; PUBLISHERS];
    common::within_for(
        Duration::from_secs(60),
        "every message at the subscriber",
        async {
            for _ in 0..PUBLISHERS * EACH {
                let p = subscriber.recv_publish().await;
                let from: usize = p.topic["fan/".len()..].parse().unwrap();
                let i: usize = std::str::from_utf8(&p.payload).unwrap().parse().unwrap();
                assert_eq!(
                    i, next[from],
                    "publisher {from}'s messages in order, none missing"
                );
                next[from] += 1;
            }
        },
    )
    .await;
    let dropped = aviary::broker::Metrics::get(&gw.broker.metrics().dropped_queue_full);
    assert_eq!(dropped, 0, "nothing dropped from the subscriber's queue");
    drop(publishers);
}
