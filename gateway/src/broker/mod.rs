//! The transport-agnostic broker core: the session registry, routing of
//! messages to subscribers, retained messages, wills and session expiry.
//! Connections (see [`connection`]) drive it; it never touches a socket.
//!
//! Sessions come and go in [`lifecycle`]; will delays and session expiry
//! wait in the broker's [`timers`], fired by one task.
//!
//! Locking: one read-mostly lock guards the subscription tree and the map
//! from session keys to sessions ([`routing`]), taken for reading by a
//! PUBLISH only to collect the targets, and not at all when its worker
//! thread matched the topic lately; each session has its own small lock for
//! its state. Lock order, where two are held: the client-id map
//! (`sessions`), then a session or the routing lock; the client list, then
//! a session; a session, then the retained store (a writer pulling a new
//! subscription's retained messages). The timers' lock is a leaf: taken
//! under any of these, never the other way round. A publish (a will's too)
//! holds none of the registry locks while it enqueues to its subscribers,
//! and no lock is held while writing to a socket.

mod backplane;
pub mod connection;
mod driver;
mod handover;
mod history;
mod keep_alive;
mod lifecycle;
pub(crate) mod limits;
mod message;
pub mod metrics;
mod persist;
mod publish;
mod registry;
pub(crate) mod retained;
pub(crate) mod router;
mod routing;
mod session;
mod sys;
mod timers;
mod views;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aviary_protocol::{
    ByteString, QoS, ReasonCode, RetainHandling, SubAck, Subscribe, UnsubAck, Unsubscribe,
};
use parking_lot::{Mutex, RwLock};
use tokio::time::Instant;

use crate::auth::Authorizer;
use crate::config::{BrokerConfig, HistoryConfig};
pub(crate) use backplane::{
    decode_wire, encode_wire, AckWait, Backplane, Exchange, ForwardError, CUT_OFF,
};
pub(crate) use handover::{adopt_session, fill_adopted_session};
use history::History;
pub use history::HistoryEntry;
use keep_alive::KeepAlives;
pub(crate) use keep_alive::Watch;
pub(crate) use message::{Message, Outgoing};
pub use metrics::Metrics;
use persist::Persist;
pub(crate) use publish::{Origin, Pressure, Room, Staged};
use retained::RetainedStore;
pub(crate) use router::ClientKey;
use router::Subscription;
use routing::{Routing, RoutingLock};
pub(crate) use session::{
    note_messages_read, take_turn, Connecting, Direct, Ending, Qos2Received, QueueLimits,
    RetainedCursor, RunQueued, Session, SharedRetained, SlowAfter, Will, WriterWake,
};
use timers::Timers;
pub(crate) use views::ClientFacts;
pub use views::{ClientSummary, RetainedView};

/// A handle to the broker; cheap to clone, shared by every connection.
#[derive(Debug, Clone)]
pub struct Broker {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: BrokerConfig,
    routing: RoutingLock,
    retained: SharedRetained,
    sessions: Mutex<registry::Sessions>,
    /// Will delays and session expiry, for every session.
    timers: Arc<Timers>,
    /// Keep alives, for every connection.
    keep_alives: Arc<KeepAlives>,
    /// The store, unless durability is `memory`.
    persist: Option<Arc<Persist>>,
    /// The other nodes, in cluster mode.
    backplane: std::sync::OnceLock<Arc<dyn Backplane>>,
    /// Who may connect, publish and read what.
    auth: Arc<Authorizer>,
    /// Connections held, in total and per address.
    gate: Arc<limits::ConnectionGate>,
    /// Refusals by a limit, counted and logged without flooding.
    refusals: limits::RefusalLog,
    history: History,
    next_id: AtomicU64,
    metrics: Metrics,
    started: Instant,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Stops the drivers, which hold the broker only weakly or not at all.
        self.timers.close();
        self.keep_alives.close();
    }
}

/// A session opened for a new connection.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) session: Arc<Session>,
    pub(crate) present: bool,
    /// Wakes the new connection's writer, and tells it when to close.
    pub(crate) wake: Arc<WriterWake>,
}

impl Broker {
    /// A broker with no sessions, no retained messages and no history.
    pub fn new(config: BrokerConfig) -> Self {
        Self::with_history(
            config,
            &HistoryConfig {
                per_topic: 0,
                ..HistoryConfig::default()
            },
        )
    }

    /// A broker that also keeps a recent history of some topics.
    pub fn with_history(config: BrokerConfig, history: &HistoryConfig) -> Self {
        Self::with_store(config, history, None)
    }

    /// A broker that writes what outlives a connection to `store`, when
    /// given one; [`Broker::recover`] first brings back what it holds.
    pub fn with_store(
        config: BrokerConfig,
        history: &HistoryConfig,
        store: Option<crate::store::StoreHandle>,
    ) -> Self {
        Self::with_auth(config, history, store, Arc::default())
    }

    /// A broker that also asks `auth` who may connect, publish and read.
    pub fn with_auth(
        config: BrokerConfig,
        history: &HistoryConfig,
        store: Option<crate::store::StoreHandle>,
        auth: Arc<Authorizer>,
    ) -> Self {
        let history = History::new(
            history.filters.clone(),
            history.per_topic,
            history.max_topics,
        );
        Self {
            shared: Arc::new(Shared {
                config,
                routing: RoutingLock::default(),
                retained: RwLock::new(RetainedStore::new()),
                sessions: Mutex::default(),
                timers: Arc::default(),
                keep_alives: Arc::default(),
                persist: store.map(|s| Arc::new(Persist::new(s))),
                backplane: std::sync::OnceLock::new(),
                auth,
                gate: limits::ConnectionGate::new(),
                refusals: limits::RefusalLog::default(),
                history,
                next_id: AtomicU64::new(1),
                metrics: Metrics::default(),
                started: Instant::now(),
            }),
        }
    }

    /// Every connection's keep alive.
    pub(crate) fn keep_alives(&self) -> &Arc<KeepAlives> {
        &self.shared.keep_alives
    }

    /// The configuration in force.
    pub fn config(&self) -> &BrokerConfig {
        &self.shared.config
    }

    /// Who may connect, publish and read what.
    pub fn authorizer(&self) -> &Arc<Authorizer> {
        &self.shared.auth
    }

    /// Admits a new connection from `addr` unless a connection limit refuses it (counted
    /// and logged); the connection keeps the returned guard while it is open.
    pub(crate) fn admit(&self, addr: std::net::IpAddr) -> Option<limits::Admitted> {
        match self.shared.gate.admit(addr, &self.shared.config) {
            Ok(admitted) => Some(admitted),
            Err(limit) => {
                self.refused(limit, format_args!("connection from {addr}"));
                None
            }
        }
    }

    /// Counts a refusal by `limit` and logs it, rate-limited.
    pub(crate) fn refused(&self, limit: metrics::Limit, detail: std::fmt::Arguments<'_>) {
        self.shared
            .refusals
            .refused(&self.shared.metrics, limit, detail);
    }

    /// The broker's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Time since the broker started.
    pub fn uptime(&self) -> Duration {
        self.shared.started.elapsed()
    }

    /// Number of sessions, online or not.
    pub fn session_count(&self) -> usize {
        self.shared.sessions.lock().len()
    }

    /// Number of subscriptions.
    pub fn subscription_count(&self) -> usize {
        self.shared.routing.read().tree.len()
    }

    /// Number of retained messages.
    pub fn retained_count(&self) -> usize {
        self.shared.retained.read().len()
    }

    /// A process-unique id for a connection or session key.
    pub(crate) fn next_id(&self) -> u64 {
        self.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn queue_limits(&self) -> QueueLimits {
        let c = &self.shared.config;
        QueueLimits {
            max_messages: c.max_queued_messages,
            max_bytes: c.max_queued_bytes,
            qos0_offline: c.queue_qos0_offline,
            slow: SlowAfter {
                stall: Duration::from_millis(c.slow_subscriber_stall_ms),
                patience: Duration::from_millis(c.slow_subscriber_patience_ms),
            },
        }
    }

    /// Adds the subscriptions of a SUBSCRIBE. Returns the SUBACK and, for
    /// the subscriptions that get retained messages, cursors to pull them
    /// with (see [`Session::subscribed`]): they are not copied out here,
    /// as there may be more of them than a session's queue holds. In cluster mode, when the
    /// subscriptions added interest at this node, also what the SUBACK waits for (see
    /// [`Backplane::synced`]).
    pub(crate) fn subscribe(
        &self,
        session: &Session,
        sub: Subscribe,
    ) -> (SubAck, Vec<RetainedCursor>, Option<AckWait>) {
        let identifier = sub.properties.subscription_identifier;
        let mut reason_codes = Vec::with_capacity(sub.filters.len());
        let mut cursors = Vec::new();
        let mut new_interest = false;
        let username = session.username();
        for (filter, options) in sub.filters {
            let subscription = Subscription {
                options,
                identifier,
            };
            if let Err(code) = self.may_subscribe(session, username.as_deref(), &filter) {
                reason_codes.push(code);
                continue;
            }
            let max = self.shared.config.max_subscriptions_per_client;
            if !session.try_subscribe(&filter, subscription, max) {
                self.refused(
                    metrics::Limit::Subscriptions,
                    format_args!("client {} holds {max}", session.client_id),
                );
                reason_codes.push(ReasonCode::QUOTA_EXCEEDED);
                continue;
            }
            let (existed, told) =
                self.with_routing_told(|r| r.tree.subscribe(session.key, &filter, subscription));
            new_interest |= told;
            reason_codes.push(
                ReasonCode::from_u8(options.qos as u8).expect("granted QoS is a reason code"),
            );
            // Shared subscriptions get no retained messages (MQTT 5.0 section 4.8.2).
            let send_retained = filter.shared().is_none()
                && match options.retain_handling {
                    RetainHandling::SendAtSubscribe => true,
                    RetainHandling::SendIfNew => !existed,
                    RetainHandling::DoNotSend => false,
                };
            if send_retained {
                // Read once the subscription is routed: a topic first
                // retained later reaches it live, and the cursor leaves it out.
                let version = self.shared.retained.read().version();
                cursors.push(RetainedCursor::new(
                    filter,
                    options.qos,
                    identifier,
                    version,
                ));
            }
        }
        if let Some(p) = self.persist() {
            session.write_record(p, None);
        }
        let ack = SubAck {
            packet_id: sub.packet_id,
            properties: Default::default(),
            reason_codes,
        };
        let synced = match new_interest {
            true => self.backplane().map(|b| b.synced()),
            false => None,
        };
        (ack, cursors, synced)
    }

    /// Whether `filter` passes the topic limits and the ACL; otherwise the
    /// SUBACK's reason (MQTT 3.1.1 clients see 0x80 for either).
    fn may_subscribe(
        &self,
        session: &Session,
        username: Option<&str>,
        filter: &aviary_protocol::TopicFilter,
    ) -> Result<(), ReasonCode> {
        if let Err(limit) = limits::check_topic(filter, &self.shared.config) {
            self.refused(
                limit,
                format_args!("a topic filter from client {}", session.client_id),
            );
            return Err(ReasonCode::TOPIC_FILTER_INVALID);
        }
        if !self
            .shared
            .auth
            .can_subscribe(username, &session.client_id, filter)
        {
            self.metrics().denied(metrics::Denied::Subscribe);
            tracing::debug!(client_id = %session.client_id, %filter, "subscription refused by the ACL");
            return Err(ReasonCode::NOT_AUTHORIZED);
        }
        Ok(())
    }

    /// The retained messages, for the writers pulling them.
    pub(crate) fn retained_store(&self) -> &SharedRetained {
        &self.shared.retained
    }

    /// Removes the subscriptions of an UNSUBSCRIBE.
    pub(crate) fn unsubscribe(&self, session: &Session, unsub: Unsubscribe) -> UnsubAck {
        let reason_codes = unsub
            .filters
            .iter()
            .map(|filter| {
                let existed = self.with_routing(|r| r.tree.unsubscribe(session.key, filter));
                session.unsubscribe(filter);
                if existed {
                    ReasonCode::SUCCESS
                } else {
                    ReasonCode::NO_SUBSCRIPTION_EXISTED
                }
            })
            .collect();
        if let Some(p) = self.persist() {
            session.write_record(p, None);
        }
        UnsubAck {
            packet_id: unsub.packet_id,
            properties: Default::default(),
            reason_codes,
        }
    }

    /// Publishes a message on behalf of the server (`$SYS`, the REST API).
    pub fn publish_server(
        &self,
        topic: ByteString,
        payload: bytes::Bytes,
        qos: QoS,
        retain: bool,
    ) -> usize {
        let msg = Message {
            topic,
            payload,
            qos,
            retain,
            properties: Default::default(),
            expires_at: None,
            stored: Default::default(),
            stream_seq: None,
        };
        self.publish(Arc::new(msg), None)
    }

    /// Drops retained messages whose expiry interval has run out
    /// [MQTT-3.3.2-5]. Returns how many went.
    pub(crate) fn purge_expired_retained(&self) -> usize {
        let now = Instant::now();
        let mut retained = self.shared.retained.write();
        let persist = self.persist();
        // The store forgets them too, under the same lock as the change.
        retained.retain(|topic, m| {
            let keep = !m.is_expired(now);
            if let (false, Some(p)) = (keep, persist) {
                p.retained_cleared(&ByteString::from(topic));
            }
            keep
        })
    }

    /// Starts the broker's background work (`$SYS` updates) until `shutdown`.
    pub fn spawn_background(&self, shutdown: tokio_util::sync::CancellationToken) {
        sys::spawn(self.clone(), shutdown);
    }

    /// A handle that does not keep the broker alive: it says when the last clone is gone,
    /// and with it the store (which a gateway starting again in this process reopens).
    pub(crate) fn downgrade(&self) -> WeakBroker {
        WeakBroker(Arc::downgrade(&self.shared))
    }
}

/// See [`Broker::downgrade`]. What the cluster link's parts that the broker holds (through
/// its backplane) keep of it: a strong handle there would keep both alive for good.
#[derive(Debug, Clone)]
pub(crate) struct WeakBroker(std::sync::Weak<Shared>);

impl WeakBroker {
    /// The broker, unless it is gone (the gateway stopped).
    pub(crate) fn upgrade(&self) -> Option<Broker> {
        self.0.upgrade().map(|shared| Broker { shared })
    }

    /// How many clones of the broker are left.
    pub(crate) fn holders(&self) -> usize {
        self.0.strong_count()
    }
}

#[cfg(test)]
mod testing;
