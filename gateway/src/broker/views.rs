//! What the REST API and the metrics see of the broker: the list of connected clients (kept
//! here as connections come and go), the retained messages, queue depths and recent history,
//! each copied out under short locks.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use aviary_protocol::{ByteString, QoS};
use tokio::time::Instant;

use super::{connection, Broker, HistoryEntry, Metrics, Session};

/// A retained message as the REST API shows it.
#[derive(Debug, Clone)]
pub struct RetainedView {
    /// Its topic.
    pub topic: ByteString,
    /// Its payload.
    pub payload: bytes::Bytes,
    /// Its QoS.
    pub qos: QoS,
    /// Its MQTT 5 properties.
    pub properties: aviary_protocol::MessageProperties,
}

/// A connected client, as the REST API lists it.
#[derive(Debug, Clone)]
pub struct ClientSummary {
    /// Its client identifier.
    pub client_id: ByteString,
    /// The front door it came through.
    pub transport: connection::Transport,
    /// Its address (after trusted proxies).
    pub remote: std::net::SocketAddr,
    /// Its protocol version.
    pub version: aviary_protocol::ProtocolVersion,
    /// When it connected.
    pub connected_since: std::time::SystemTime,
    /// How many subscriptions its session has.
    pub subscriptions: usize,
    /// The common name of its verified TLS client certificate, if any.
    pub peer_identity: Option<Arc<str>>,
    /// The user it signed in as, if any.
    pub username: Option<Arc<str>>,
}

/// Who a connected client is, for the REST API's client list. Kept in what the session
/// holds of its connection ([`WriterWake`](super::WriterWake)), allocated per connection
/// anyway, rather than in a table of its own: an idle client costs the broker mostly such
/// things. Flat, and its time in seconds, so that the whole stays in jemalloc's 112-byte
/// class (a nested `ConnInfo` would pad it into the next).
#[derive(Debug, Clone)]
pub(crate) struct ClientFacts {
    pub(crate) transport: connection::Transport,
    pub(crate) version: aviary_protocol::ProtocolVersion,
    pub(crate) remote: std::net::SocketAddr,
    pub(crate) peer_identity: Option<Arc<str>>,
    /// When it connected: seconds since the Unix epoch.
    since_secs: u64,
}

impl ClientFacts {
    pub(crate) fn new(
        info: &connection::ConnInfo,
        version: aviary_protocol::ProtocolVersion,
    ) -> Self {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        Self {
            transport: info.transport,
            version,
            remote: info.remote,
            peer_identity: info.peer_identity.clone(),
            since_secs: since.map_or(0, |d| d.as_secs()),
        }
    }

    /// When it connected.
    pub(crate) fn since(&self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(self.since_secs)
    }
}

#[cfg(test)]
impl ClientFacts {
    /// A client over TCP from 127.0.0.1, for tests of the session alone.
    pub(crate) fn for_test() -> Self {
        let remote = std::net::SocketAddr::from(([127, 0, 0, 1], 1883));
        let info = connection::ConnInfo::new(connection::Transport::Tcp, remote);
        Self::new(&info, aviary_protocol::ProtocolVersion::V5)
    }
}

impl Broker {
    /// The retained messages matching `filter` (MQTT matching: `#` leaves
    /// out `$` topics), or all of them when `filter` is `None`.
    pub fn retained_messages(&self, filter: Option<&str>) -> Vec<RetainedView> {
        let mut found = Vec::new();
        let retained = self.shared.retained.read();
        match filter {
            Some(filter) => retained.matching(filter, &mut found),
            None => found.extend(
                retained
                    .iter()
                    .map(|(t, m)| (ByteString::from(t), m.clone())),
            ),
        }
        drop(retained);
        let now = Instant::now();
        found
            .into_iter()
            .filter(|(_, m)| !m.is_expired(now))
            .map(|(topic, m)| RetainedView {
                topic,
                payload: m.payload.clone(),
                qos: m.qos,
                properties: (*m.properties).clone(),
            })
            .collect()
    }

    /// Counts a connection that completed its handshake.
    pub(crate) fn client_connected(&self, client: &ClientFacts) {
        let m = &self.shared.metrics;
        Metrics::add(&m.clients_connected, 1);
        Metrics::add(m.connections(client.transport, client.version), 1);
    }

    /// Counts a connection counted by [`Broker::client_connected`] out.
    pub(crate) fn client_disconnected(&self, client: &ClientFacts) {
        let m = &self.shared.metrics;
        m.clients_connected.fetch_sub(1, Ordering::Relaxed);
        m.connections(client.transport, client.version)
            .fetch_sub(1, Ordering::Relaxed);
    }

    /// The connected clients.
    pub fn clients(&self) -> Vec<ClientSummary> {
        // Copied out first: each session has its own lock, not taken under the registry's.
        let sessions: Vec<Arc<Session>> = self.shared.sessions.lock().values().cloned().collect();
        let mut list: Vec<ClientSummary> = sessions
            .iter()
            .filter_map(|s| {
                let attached = s.attached()?;
                let c = &attached.client;
                Some(ClientSummary {
                    client_id: s.client_id.clone(),
                    transport: c.transport,
                    remote: c.remote,
                    version: c.version,
                    connected_since: c.since(),
                    subscriptions: s.subscription_count(),
                    peer_identity: c.peer_identity.clone(),
                    username: s.username(),
                })
            })
            .collect();
        list.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        list
    }

    /// Messages queued for each session, deepest first, for `/metrics`.
    pub fn queue_depths(&self) -> Vec<(ByteString, usize)> {
        let sessions: Vec<Arc<Session>> = self.shared.sessions.lock().values().cloned().collect();
        let mut depths: Vec<_> = sessions
            .iter()
            .map(|s| (s.client_id.clone(), s.queued()))
            .collect();
        depths.sort_by_key(|d| std::cmp::Reverse(d.1));
        depths
    }

    /// Recent messages of topics matching `filter` (see [`HistoryEntry`]):
    /// at most `limit` per topic, received after `since_ms`.
    pub fn history(&self, filter: &str, limit: usize, since_ms: u64) -> Vec<HistoryEntry> {
        self.shared.history.query(filter, limit, since_ms)
    }
}
