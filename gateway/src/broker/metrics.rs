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
    /// TLS handshakes that failed or timed out (mqtts and https).
    pub tls_handshake_failures: AtomicU64,
    /// HTTP connections closed at once: `http.max_connections` were open.
    pub http_refused_max_connections: AtomicU64,
    /// HTTP connections closed for not sending a whole request header in time.
    pub http_header_timeouts: AtomicU64,
    /// HTTP connections closed for making no progress for `http.idle_timeout_secs`.
    pub http_idle_timeouts: AtomicU64,
    /// Open connections by transport (row) and protocol version (column).
    pub connections: [[AtomicU64; 3]; 4],
    /// CONNECTs refused: bad username or password, or not authorized.
    pub login_failures: AtomicU64,
    /// Operations the ACL refused, by [`Denied`] kind.
    pub acl_denied: [AtomicU64; Denied::ALL.len()],
    /// Refusals by [`Limit`].
    pub limit_refusals: [AtomicU64; Limit::ALL.len()],
}

/// What the ACL refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// A client's PUBLISH.
    Publish,
    /// A SUBSCRIBE's filter.
    Subscribe,
    /// A message routed to a subscriber who may not read its topic.
    Delivery,
    /// A retained message a new subscriber may not read.
    Retained,
    /// A will its owner may not publish.
    Will,
    /// A REST API request.
    Api,
}

impl Denied {
    /// Every kind, in the order of [`Metrics::acl_denied`]: declaration order, so a kind's
    /// place is `kind as usize`.
    pub const ALL: [Denied; 6] = [
        Denied::Publish,
        Denied::Subscribe,
        Denied::Delivery,
        Denied::Retained,
        Denied::Will,
        Denied::Api,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Denied::Publish => "publish",
            Denied::Subscribe => "subscribe",
            Denied::Delivery => "delivery",
            Denied::Retained => "retained",
            Denied::Will => "will",
            Denied::Api => "api",
        }
    }
}

/// A limit that refused something (`[mqtt]` keys of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `max_connections`.
    Connections,
    /// `max_connections_per_address`.
    ConnectionsPerAddress,
    /// `max_connection_rate_per_address`.
    ConnectionRate,
    /// `max_subscriptions_per_client`.
    Subscriptions,
    /// `max_topic_levels`.
    TopicLevels,
    /// `max_topic_length`.
    TopicLength,
    /// `max_client_id_length`.
    ClientIdLength,
    /// `receive_maximum`: QoS 2 publications in flight from a client.
    Inflight,
}

impl Limit {
    /// Every limit, in the order of [`Metrics::limit_refusals`]: declaration order, so a
    /// limit's place is `limit as usize`.
    pub const ALL: [Limit; 8] = [
        Limit::Connections,
        Limit::ConnectionsPerAddress,
        Limit::ConnectionRate,
        Limit::Subscriptions,
        Limit::TopicLevels,
        Limit::TopicLength,
        Limit::ClientIdLength,
        Limit::Inflight,
    ];

    /// The config key, which is also the metric label.
    pub fn key(self) -> &'static str {
        match self {
            Limit::Connections => "max_connections",
            Limit::ConnectionsPerAddress => "max_connections_per_address",
            Limit::ConnectionRate => "max_connection_rate_per_address",
            Limit::Subscriptions => "max_subscriptions_per_client",
            Limit::TopicLevels => "max_topic_levels",
            Limit::TopicLength => "max_topic_length",
            Limit::ClientIdLength => "max_client_id_length",
            Limit::Inflight => "receive_maximum",
        }
    }
}

impl Metrics {
    /// Adds `n` to a counter. Adding nothing leaves it alone: even a relaxed add takes the
    /// counter's cache line from whichever core touched it last.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n != 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The gauge of open connections for this transport and version.
    pub fn connections(&self, transport: Transport, version: ProtocolVersion) -> &AtomicU64 {
        let row = TRANSPORTS.iter().position(|t| *t == transport).unwrap_or(0);
        let col = VERSIONS.iter().position(|v| *v == version).unwrap_or(0);
        &self.connections[row][col]
    }

    /// Counts an ACL refusal.
    pub(crate) fn denied(&self, kind: Denied) {
        self.denied_n(kind, 1);
    }

    /// Counts `n` ACL refusals of one kind.
    pub(crate) fn denied_n(&self, kind: Denied, n: u64) {
        Self::add(&self.acl_denied[kind as usize], n);
    }

    /// Counts a limit's refusal.
    pub(crate) fn refused(&self, limit: Limit) {
        Self::add(&self.limit_refusals[limit as usize], 1);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_at_its_declared_place() {
        for (i, kind) in Denied::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i, "{kind:?}");
        }
        for (i, limit) in Limit::ALL.iter().enumerate() {
            assert_eq!(*limit as usize, i, "{limit:?}");
        }
    }
}
