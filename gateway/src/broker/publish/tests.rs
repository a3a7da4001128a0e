//! Routing through the thread's cache of recent matches, which a publish reads without the
//! routing lock: what it holds must follow every change of subscriptions and sessions.

use aviary_protocol::{Packet, Publish};

use crate::broker::testing::{v5, Client};
use crate::broker::Broker;
use crate::config::BrokerConfig;

/// Publishes on `topic` three times, each received by `to`: the topic takes its cache slot
/// on its second miss, so the third is served from the cache.
async fn three_times(publisher: &mut Client, to: &mut Client, topic: &str) {
    for _ in 0..3 {
        publisher
            .send(Packet::Publish(Publish::new(topic.to_owned(), &b"x"[..])))
            .await;
        assert_eq!(to.recv_topic().await, topic);
    }
}

#[tokio::test(start_paused = true)]
async fn a_new_session_of_the_subscriber_gets_what_the_old_one_got() {
    let broker = Broker::new(BrokerConfig::default());
    let (mut publisher, _) = Client::connect_ok(&broker, v5("p", 0)).await;
    let (mut first, _) = Client::connect_ok(&broker, v5("s", 0)).await;
    first.subscribe("t").await;
    three_times(&mut publisher, &mut first, "t").await;
    first.disconnect(None).await;
    let (mut second, _) = Client::connect_ok(&broker, v5("s", 0)).await;
    second.subscribe("t").await;
    three_times(&mut publisher, &mut second, "t").await;
}

#[tokio::test(start_paused = true)]
async fn a_resumed_session_gets_the_cached_topic_on_its_new_connection() {
    let broker = Broker::new(BrokerConfig::default());
    let (mut publisher, _) = Client::connect_ok(&broker, v5("p", 0)).await;
    let (mut first, _) = Client::connect_ok(&broker, v5("s", 300)).await;
    first.subscribe("t").await;
    three_times(&mut publisher, &mut first, "t").await;
    // Taken over while connected: the same session, on another connection.
    let mut again = v5("s", 300);
    again.clean_start = false;
    let (mut second, ack) = Client::connect_ok(&broker, again).await;
    assert!(ack.session_present);
    three_times(&mut publisher, &mut second, "t").await;
    assert!(first
        .recv_within(std::time::Duration::from_secs(1))
        .await
        .is_none_or(|p| { matches!(p, Packet::Disconnect(_)) }));
}

#[tokio::test(start_paused = true)]
async fn an_unsubscribe_stops_a_cached_topic() {
    let broker = Broker::new(BrokerConfig::default());
    let (mut publisher, _) = Client::connect_ok(&broker, v5("p", 0)).await;
    let (mut s, _) = Client::connect_ok(&broker, v5("s", 0)).await;
    s.subscribe("t").await;
    s.subscribe("u").await;
    three_times(&mut publisher, &mut s, "t").await;
    s.unsubscribe("t").await;
    publisher
        .send(Packet::Publish(Publish::new("t", &b"x"[..])))
        .await;
    publisher
        .send(Packet::Publish(Publish::new("u", &b"x"[..])))
        .await;
    assert_eq!(s.recv_topic().await, "u", "nothing on t after the UNSUBACK");
}

#[tokio::test(start_paused = true)]
async fn a_threads_cache_does_not_keep_an_ended_session_alive() {
    let broker = Broker::new(BrokerConfig::default());
    let (mut publisher, _) = Client::connect_ok(&broker, v5("p", 0)).await;
    let (mut s, _) = Client::connect_ok(&broker, v5("s", 0)).await;
    s.subscribe("t").await;
    let session = broker.shared.sessions.lock().get("s").cloned();
    let session = std::sync::Arc::downgrade(&session.expect("s has a session"));
    three_times(&mut publisher, &mut s, "t").await;
    // Ends with its connection (expiry 0): a session (and its store) must not linger in this
    // thread's cache of matches, which held the topic for it.
    s.disconnect(None).await;
    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    assert!(session.upgrade().is_none(), "the session is gone");
}
