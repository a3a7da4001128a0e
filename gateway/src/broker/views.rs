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

#[derive(Debug)]
pub(super) struct ClientEntry {
    info: connection::ConnInfo,
    version: aviary_protocol::ProtocolVersion,
    since: std::time::SystemTime,
    session: Arc<Session>,
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
                properties: m.properties.clone(),
            })
            .collect()
    }

    /// Records a connection that completed its handshake.
    pub(crate) fn client_connected(
        &self,
        link_id: u64,
        info: connection::ConnInfo,
        version: aviary_protocol::ProtocolVersion,
        session: &Arc<Session>,
    ) {
        let m = &self.shared.metrics;
        Metrics::add(&m.clients_connected, 1);
        Metrics::add(m.connections(info.transport, version), 1);
        let entry = ClientEntry {
            info,
            version,
            since: std::time::SystemTime::now(),
            session: session.clone(),
        };
        self.shared.clients.lock().insert(link_id, entry);
    }

    /// Forgets a connection recorded by [`Broker::client_connected`].
    pub(crate) fn client_disconnected(&self, link_id: u64) {
        if let Some(e) = self.shared.clients.lock().remove(&link_id) {
            let m = &self.shared.metrics;
            m.clients_connected.fetch_sub(1, Ordering::Relaxed);
            m.connections(e.info.transport, e.version)
                .fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The connected clients.
    pub fn clients(&self) -> Vec<ClientSummary> {
        let clients = self.shared.clients.lock();
        let mut list: Vec<ClientSummary> = clients
            .values()
            .map(|e| ClientSummary {
                client_id: e.session.client_id.clone(),
                transport: e.info.transport,
                remote: e.info.remote,
                version: e.version,
                connected_since: e.since,
                subscriptions: e.session.subscription_count(),
                peer_identity: e.info.peer_identity.clone(),
                username: e.session.username(),
            })
            .collect();
        drop(clients);
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
