//! What this node counts of its part in the cluster, for `GET /metrics`: sessions moved in
//! and out, stream publishes that needed a retry or failed, stream messages read again after
//! their delivery was lost, and QoS 0 messages sent with the NATS messages that carried them.
//! Each node reports its own.

use std::sync::atomic::{AtomicU64, Ordering};

/// This node's cluster counters.
#[derive(Debug, Default)]
pub(crate) struct ClusterMetrics {
    /// Persistent sessions this node took over from another.
    pub(crate) sessions_moved_in: AtomicU64,
    /// Persistent sessions this node handed over to another.
    pub(crate) sessions_moved_out: AtomicU64,
    /// Stream publishes that were taken only after being sent again (a failover).
    pub(crate) publishes_retried: AtomicU64,
    /// Stream publishes given up on: their publisher was not acknowledged.
    pub(crate) publishes_failed: AtomicU64,
    /// Stream messages routed after being read again: their delivery was lost on its way
    /// (see `replay`).
    pub(crate) reread: AtomicU64,
    /// QoS 0 messages sent to the other nodes.
    pub(crate) live_messages: AtomicU64,
    /// The NATS messages that carried them (see `live`).
    pub(crate) live_batches: AtomicU64,
}

impl ClusterMetrics {
    pub(crate) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `(name, help, value)` of each counter.
    pub(crate) fn counters(&self) -> [(&'static str, &'static str, u64); 7] {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            (
                "aviary_cluster_sessions_moved_in_total",
                "Persistent sessions this node took over from another node.",
                get(&self.sessions_moved_in),
            ),
            (
                "aviary_cluster_sessions_moved_out_total",
                "Persistent sessions this node handed over to another node.",
                get(&self.sessions_moved_out),
            ),
            (
                "aviary_cluster_publishes_retried_total",
                "QoS 1/2 messages the stream took only after they were sent again (failover).",
                get(&self.publishes_retried),
            ),
            (
                "aviary_cluster_publishes_failed_total",
                "QoS 1/2 messages the stream did not take: their publishers were not acknowledged.",
                get(&self.publishes_failed),
            ),
            (
                "aviary_cluster_messages_reread_total",
                "QoS 1/2 messages read again from the stream: a dying NATS server lost them on their way here.",
                get(&self.reread),
            ),
            (
                "aviary_cluster_live_messages_total",
                "QoS 0 messages this node sent to the other nodes.",
                get(&self.live_messages),
            ),
            (
                "aviary_cluster_live_batches_total",
                "NATS messages that carried them: several messages on one topic go in one.",
                get(&self.live_batches),
            ),
        ]
    }
}
