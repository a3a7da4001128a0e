//! Broker counters: plain atomics bumped on the hot path and read by
//! `$SYS` and `/metrics`. Relaxed ordering: they are statistics, not
//! synchronisation.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the broker's activity since it started.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Connections currently open (after CONNACK).
    pub clients_connected: AtomicU64,
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Packets received.
    pub packets_received: AtomicU64,
    /// Packets sent.
    pub packets_sent: AtomicU64,
    /// PUBLISH packets received.
    pub messages_received: AtomicU64,
    /// PUBLISH packets sent.
    pub messages_sent: AtomicU64,
    /// Bytes received from clients.
    pub bytes_received: AtomicU64,
    /// Bytes written to clients.
    pub bytes_sent: AtomicU64,
    /// Messages evicted from a full session queue.
    pub dropped_queue_full: AtomicU64,
    /// QoS 0 messages not queued for offline sessions.
    pub dropped_offline_qos0: AtomicU64,
    /// Messages whose expiry interval ran out before delivery.
    pub dropped_expired: AtomicU64,
    /// Messages larger than the client's maximum packet size or queue.
    pub dropped_too_large: AtomicU64,
    /// Connections closed for a protocol violation.
    pub protocol_errors: AtomicU64,
}

impl Metrics {
    /// Adds `n` to a counter.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
