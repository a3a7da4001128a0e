//! The keep alives' table and driver, on tokio's paused clock.

use std::time::Duration;

use aviary_protocol::ReasonCode;

use super::*;
use crate::broker::ClientFacts;

fn conn() -> Arc<WriterWake> {
    Arc::new(WriterWake::new(ClientFacts::for_test()))
}

/// Sleeps until `ms` after the start of the test; the driver runs meanwhile.
async fn at(ms: u64, start: Instant) {
    tokio::time::sleep_until(start + Duration::from_millis(ms)).await;
}

fn closed(wake: &WriterWake) -> bool {
    match wake.kicked() {
        None => false,
        Some(ReasonCode::KEEP_ALIVE_TIMEOUT) => true,
        Some(other) => panic!("closed for {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_closed_after_one_and_a_half_keep_alives_and_not_before() {
    let (alives, start) = (Arc::new(KeepAlives::default()), Instant::now());
    let wake = conn();
    let watch = alives.watch(&wake, 2).unwrap();
    assert_eq!(watch.limit(), Duration::from_secs(3));
    at(2_990, start).await;
    assert!(
        !closed(&wake),
        "closed before 1.5 x the keep alive [MQTT-3.1.2-22]"
    );
    at(3_000 + TICK_MS + 10, start).await;
    assert!(closed(&wake), "not closed a tick after its limit");
}

#[tokio::test(start_paused = true)]
async fn hearing_from_the_client_moves_its_deadline() {
    let (alives, start) = (Arc::new(KeepAlives::default()), Instant::now());
    let wake = conn();
    let watch = alives.watch(&wake, 1).unwrap();
    at(1_000, start).await;
    alives.heard(&wake, &watch);
    // The driver wakes for the first deadline (1.6 s) and finds the later one.
    at(2_490, start).await;
    assert!(!closed(&wake));
    at(2_610, start).await;
    assert!(closed(&wake));
}

#[tokio::test(start_paused = true)]
async fn a_connection_held_back_is_not_closed_until_it_is_read_again() {
    let (alives, start) = (Arc::new(KeepAlives::default()), Instant::now());
    let wake = conn();
    let watch = alives.watch(&wake, 1).unwrap();
    wake.hold_keep_alive();
    at(10_000, start).await;
    assert!(
        !closed(&wake),
        "its client's packets were not read, not missing"
    );
    alives.resumed(&wake, &watch);
    at(11_490, start).await;
    assert!(!closed(&wake));
    at(11_610, start).await;
    assert!(closed(&wake));
}

#[tokio::test(start_paused = true)]
async fn a_shorter_keep_alive_watched_later_is_not_waited_for_behind_a_longer_one() {
    let (alives, start) = (Arc::new(KeepAlives::default()), Instant::now());
    let (long, short) = (conn(), conn());
    let _long = alives.watch(&long, 60).unwrap();
    at(1_000, start).await;
    let _short = alives.watch(&short, 1).unwrap();
    at(2_610, start).await;
    assert!(
        closed(&short),
        "the driver slept on until the longer one's deadline"
    );
    assert!(!closed(&long));
    at(90_000 + TICK_MS + 10, start).await;
    assert!(closed(&long));
}

#[tokio::test(start_paused = true)]
async fn each_of_many_connections_is_closed_at_its_own_deadline() {
    let (alives, start) = (Arc::new(KeepAlives::default()), Instant::now());
    let conns: Vec<_> = (1..=500u16)
        .map(|i| {
            let wake = conn();
            let watch = alives.watch(&wake, i % 5 + 1).unwrap();
            (wake, watch)
        })
        .collect();
    for seconds in 1..=5u64 {
        // Just before, and just after, 1.5 x `seconds`.
        at(seconds * 1_500 - 10, start).await;
        for (wake, watch) in &conns {
            let limit = watch.limit().as_millis() as u64;
            assert_eq!(closed(wake), limit < seconds * 1_500, "limit {limit} ms");
        }
        at(seconds * 1_500 + TICK_MS + 10, start).await;
        for (wake, watch) in &conns {
            let limit = watch.limit().as_millis() as u64;
            assert_eq!(closed(wake), limit <= seconds * 1_500, "limit {limit} ms");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_ended_connection_is_no_longer_watched_and_its_key_not_taken_from_the_next() {
    let alives = Arc::new(KeepAlives::default());
    let (first, second) = (conn(), conn());
    let first_watch = alives.watch(&first, 1).unwrap();
    alives.unwatch(&first, &first_watch);
    assert_eq!(alives.len(), 0);
    let second_watch = alives.watch(&second, 1).unwrap();
    assert_eq!(second_watch.key, first_watch.key, "the key is reused");
    alives.unwatch(&first, &first_watch);
    assert_eq!(alives.len(), 1, "the second connection's entry was removed");
    alives.unwatch(&second, &second_watch);
    assert_eq!(alives.len(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_closed_table_watches_nothing_and_its_driver_stops() {
    let alives = Arc::new(KeepAlives::default());
    let wake = conn();
    let _watch = alives.watch(&wake, 1).unwrap();
    alives.close();
    assert_eq!(alives.len(), 0);
    assert!(alives.watch(&wake, 1).is_none());
    // The driver dropped its reference to the table.
    tokio::time::timeout(Duration::from_secs(5), async {
        while Arc::strong_count(&alives) > 1 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the driver still runs");
    assert!(!closed(&wake));
}

/// Through the real connection handler, on the paused clock.
mod through_a_connection {
    use aviary_protocol::Packet;

    use super::*;
    use crate::broker::testing::{v5, Client};
    use crate::broker::Broker;

    #[tokio::test(start_paused = true)]
    async fn a_client_that_pings_stays_and_is_closed_with_0x8d_once_it_goes_quiet() {
        let broker = Broker::new(crate::broker::BrokerConfig::default());
        let mut connect = v5("pinger", 0);
        connect.keep_alive = 2;
        let (mut client, _) = Client::connect_ok(&broker, connect).await;
        assert_eq!(broker.keep_alives().len(), 1);
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            client.send(Packet::PingReq).await;
            let answer = client.recv_within(Duration::from_millis(10)).await;
            assert!(matches!(answer, Some(Packet::PingResp)), "{answer:?}");
        }
        let quiet = Instant::now();
        let Some(Packet::Disconnect(d)) = client.recv_within(Duration::from_secs(10)).await else {
            panic!("no DISCONNECT");
        };
        assert_eq!(d.reason_code, ReasonCode::KEEP_ALIVE_TIMEOUT);
        let after = quiet.elapsed();
        assert!(
            after >= Duration::from_secs(3) && after <= Duration::from_secs(3) + TICK,
            "closed {after:?} after the last packet, for a keep alive of 2 s"
        );
        assert!(
            client.recv_within(Duration::from_secs(1)).await.is_none(),
            "closed"
        );
        assert_eq!(broker.keep_alives().len(), 0, "no longer watched");
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_without_keep_alive_is_not_watched() {
        let broker = Broker::new(crate::broker::BrokerConfig::default());
        let (client, _) = Client::connect_ok(&broker, v5("timeless", 0)).await;
        assert_eq!(broker.keep_alives().len(), 0);
        drop(client);
    }
}
