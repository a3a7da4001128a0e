//! Broker counters: plain atomics bumped on the hot path and read by
//! `$SYS` and `/metrics`. Relaxed ordering: they are statistics, not
//! synchronisation.

use std::sync::atomic::{AtomicU64, Ordering};

use aviary_protocol::ProtocolVersion;

use super::connection::Transport;

/// Every transport, in the order of [`Metrics::connections`]' rows.
pub const TRANSPORTS: [Transport; 4] = [
    Transport::Tcp,
    Transport::Tls,
    Transport::WebSocket,
    Transport::WebSocketTls,
];
/// Every protocol version, in the order of [`Metrics::connections`]' columns.
pub const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V3_1,
    ProtocolVersion::V3_1_1,
    ProtocolVersion::V5,
];

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
    /// Open connections by transport (row) and protocol version (column).
    pub connections: [[AtomicU64; 3]; 4],
}

impl Metrics {
    /// Adds `n` to a counter.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The gauge of open connections for this transport and version.
    pub fn connections(&self, transport: Transport, version: ProtocolVersion) -> &AtomicU64 {
        let row = TRANSPORTS.iter().position(|t| *t == transport).unwrap_or(0);
        let col = VERSIONS.iter().position(|v| *v == version).unwrap_or(0);
        &self.connections[row][col]
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
