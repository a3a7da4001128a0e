//! `$SYS` topics: the broker's own statistics, published as retained
//! messages every `sys_interval_secs`, with Mosquitto's topic names so
//! existing dashboards work.

use std::time::Duration;

use aviary_protocol::{ByteString, QoS};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::{Broker, Metrics};

/// Starts the `$SYS` publisher, unless the interval is 0.
pub(super) fn spawn(broker: Broker, shutdown: CancellationToken) {
    let secs = broker.config().sys_interval_secs;
    if secs == 0 {
        return;
    }
    let version = format!("aviary version {}", env!("CARGO_PKG_VERSION"));
    broker.publish_server(
        ByteString::from_static("$SYS/broker/version"),
        Bytes::from(version),
        QoS::AtMostOnce,
        true,
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(secs));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    broker.purge_expired_retained();
                    publish_stats(&broker);
                }
            }
        }
    });
}

fn publish_stats(broker: &Broker) {
    let m = broker.metrics();
    let stats: [(&'static str, String); 10] = [
        (
            "$SYS/broker/uptime",
            format!("{} seconds", broker.uptime().as_secs()),
        ),
        (
            "$SYS/broker/clients/connected",
            Metrics::get(&m.clients_connected).to_string(),
        ),
        (
            "$SYS/broker/clients/total",
            broker.session_count().to_string(),
        ),
        (
            "$SYS/broker/messages/received",
            Metrics::get(&m.messages_received).to_string(),
        ),
        (
            "$SYS/broker/messages/sent",
            Metrics::get(&m.messages_sent).to_string(),
        ),
        (
            "$SYS/broker/bytes/received",
            Metrics::get(&m.bytes_received).to_string(),
        ),
        (
            "$SYS/broker/bytes/sent",
            Metrics::get(&m.bytes_sent).to_string(),
        ),
        (
            "$SYS/broker/subscriptions/count",
            broker.subscription_count().to_string(),
        ),
        (
            "$SYS/broker/retained messages/count",
            broker.retained_count().to_string(),
        ),
        ("$SYS/broker/messages/dropped", dropped(m).to_string()),
    ];
    for (topic, value) in stats {
        broker.publish_server(
            ByteString::from_static(topic),
            Bytes::from(value),
            QoS::AtMostOnce,
            true,
        );
    }
}

fn dropped(m: &Metrics) -> u64 {
    [
        &m.dropped_queue_full,
        &m.dropped_offline_qos0,
        &m.dropped_expired,
        &m.dropped_too_large,
    ]
    .into_iter()
    .map(Metrics::get)
    .sum()
}
