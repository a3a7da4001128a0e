//! The part of a session that must outlive its connection, and (once a
//! store is attached) the process: subscriptions with their options and
//! identifiers, the [`Outbox`] (queue and outgoing in-flight messages,
//! released QoS 2 included), incoming QoS 2 packet ids awaiting PUBREL,
//! the Session Expiry Interval and the will with its delay.
//!
//! Each method that changes this state is the one place where that change
//! happens, so it is where a store operation is emitted:
//!
//! | change                                  | method                                   |
//! |-----------------------------------------|------------------------------------------|
//! | subscription added / removed            | [`Durable::subscribe`], [`Durable::unsubscribe`] |
//! | incoming QoS 2 id added / removed       | [`Durable::incoming_qos2_begin`], [`Durable::incoming_qos2_end`] |
//! | expiry interval changed                 | [`Durable::set_expiry`]                  |
//! | will set (CONNECT) / taken (published or cancelled) | [`Durable::set_will`], [`Durable::take_will`] |
//! | session discarded                       | [`Durable::clear`]                       |
//! | message queued, evicted, expired        | [`Outbox::enqueue`], `Outbox::fill`      |
//! | message sent (queued to in flight)      | `Outbox::fill` (`Outbox::send`)          |
//! | acknowledged, released, abandoned       | [`Outbox::puback`], [`Outbox::pubcomp`], [`Outbox::pubrec`], [`Outbox::abandon`] |
//!
//! And [`Durable::recover`] builds the whole of it from what a store kept.
//! Retained-message cursors live in the outbox but are not state to keep:
//! they only say how far a new subscription's retained messages have gone.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, DefaultHasher};
use std::num::NonZeroU16;
use std::sync::Arc;

use aviary_protocol::{ByteString, TopicFilter};
use tokio::time::Instant;

use super::outbox::{Inflight, Outbox};
use crate::broker::message::{Message, Outgoing};
use crate::broker::persist::RecordParts;
use crate::broker::router::Subscription;
use crate::store::Forwarded;

/// A will: the message and its MQTT 5 Will Delay Interval (0 for 3.x).
#[derive(Debug, Clone)]
pub(crate) struct Will {
    pub(crate) message: Arc<Message>,
    pub(crate) delay_secs: u32,
    /// The username of the connection that set it: the ACL is asked
    /// whether that user may publish it when it is published.
    pub(crate) owner: Option<Arc<str>>,
}

/// What became of an incoming QoS 2 PUBLISH's packet id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Qos2Received {
    /// A new exchange: route the message and answer PUBREC.
    New,
    /// A resend of a message already routed: answer PUBREC only, so it is
    /// delivered exactly once. In cluster mode, how the exchange's message was
    /// forwarded to the other nodes, where it may not have arrived: it is
    /// forwarded again under the same token, which the cluster keeps once.
    Duplicate(Option<Forwarded>),
    /// More exchanges open than the Receive Maximum allows.
    TooMany,
}

/// A session as a store kept it, to rebuild at start (see
/// [`crate::broker::Broker::restore_session`]). Deadlines are absolute: the
/// store keeps wall-clock times, which recovery turns into instants.
#[derive(Debug, Default)]
pub(crate) struct RecoveredSession {
    pub(crate) client_id: ByteString,
    pub(crate) subscriptions: Vec<(TopicFilter, Subscription)>,
    /// Messages not sent yet, oldest first.
    pub(crate) queued: Vec<Outgoing>,
    /// Messages sent and not fully acknowledged, in the order sent; they
    /// are resent with DUP (or PUBREL, if released) when the client returns.
    pub(crate) inflight: Vec<Inflight>,
    pub(crate) incoming_qos2: Vec<(NonZeroU16, Option<Forwarded>)>,
    pub(crate) expiry_secs: u32,
    /// When the session expires; `None` for never.
    pub(crate) expires_at: Option<Instant>,
    /// A will waiting for its delay, and when it is due.
    pub(crate) pending_will: Option<(Will, Instant)>,
    /// When its client went away, which its expiry counts from.
    pub(crate) disconnected_at: Option<Instant>,
    /// The username of its last connection.
    pub(crate) username: Option<Arc<str>>,
}

/// A session's subscriptions by filter. Hashed without a per-map random key, whose 16 bytes
/// every session would carry: the filters are the client's own, and so would be the only
/// table a client that picked colliding filters could slow down (within its subscription
/// limit).
type Subscriptions = HashMap<TopicFilter, Subscription, BuildHasherDefault<DefaultHasher>>;

/// The durable part of a session; see the module documentation.
#[derive(Debug, Default)]
pub(super) struct Durable {
    subscriptions: Subscriptions,
    /// Messages to send and in flight.
    pub(super) outbox: Outbox,
    /// QoS 2 packet ids received and answered with PUBREC, awaiting PUBREL.
    /// Boxed, and only while there are some: every session, idle ones
    /// included, carries this struct, and most never see QoS 2.
    #[expect(
        clippy::box_collection,
        reason = "an idle session carries only a pointer"
    )]
    incoming_qos2: Option<Box<HashMap<NonZeroU16, Option<Forwarded>>>>,
    /// Session Expiry Interval in force once the connection ends.
    expiry_secs: u32,
    /// The will of the current connection, or of the last one while it
    /// waits for its delay. Boxed: most sessions have none.
    will: Option<Box<Will>>,
    /// When the last connection ended; `None` while one is attached.
    disconnected_at: Option<Instant>,
    /// The username of the current or last connection: the ACL's reads
    /// (deliveries, retained messages) are decided for it.
    username: Option<Arc<str>>,
}

impl Durable {
    /// The durable state a store recovered (the deadlines aside, which the
    /// broker's timers take).
    pub(super) fn recover(r: &mut RecoveredSession) -> Self {
        let mut outbox = Outbox::default();
        for i in r.inflight.drain(..) {
            outbox.recover_inflight(i);
        }
        for out in r.queued.drain(..) {
            outbox.recover_queued(out);
        }
        Self {
            subscriptions: r.subscriptions.iter().cloned().collect(),
            outbox,
            incoming_qos2: (!r.incoming_qos2.is_empty())
                .then(|| Box::new(r.incoming_qos2.iter().cloned().collect())),
            expiry_secs: r.expiry_secs,
            will: r.pending_will.as_ref().map(|(w, _)| Box::new(w.clone())),
            disconnected_at: r.disconnected_at,
            username: r.username.clone(),
        }
    }

    /// What the session's store record holds.
    pub(super) fn record_parts(&self) -> RecordParts {
        RecordParts {
            subscriptions: self
                .subscriptions
                .iter()
                .map(|(f, s)| (f.clone(), *s))
                .collect(),
            expiry_secs: self.expiry_secs,
            will: self.will.as_deref().cloned(),
            username: self.username.clone(),
        }
    }

    /// The username the ACL decides this session's reads for.
    pub(super) fn username(&self) -> Option<&Arc<str>> {
        self.username.as_ref()
    }

    /// Sets the username of a new connection.
    pub(super) fn set_username(&mut self, username: Option<Arc<str>>) {
        self.username = username;
    }

    /// Marks the connection's end (`Some`) or a new connection (`None`).
    pub(super) fn set_disconnected_at(&mut self, at: Option<Instant>) {
        self.disconnected_at = at;
    }

    pub(super) fn disconnected_at(&self) -> Option<Instant> {
        self.disconnected_at
    }

    /// Records a subscription, replacing one with the same filter.
    pub(super) fn subscribe(&mut self, filter: TopicFilter, subscription: Subscription) {
        self.subscriptions.insert(filter, subscription);
    }

    /// Forgets a subscription. False if there was none.
    pub(super) fn unsubscribe(&mut self, filter: &TopicFilter) -> bool {
        self.subscriptions.remove(filter).is_some()
    }

    pub(super) fn subscription_count(&self) -> usize {
        self.subscriptions.len()
    }

    pub(super) fn has_subscription(&self, filter: &TopicFilter) -> bool {
        self.subscriptions.contains_key(filter)
    }

    /// Opens an incoming QoS 2 exchange for `id`, its message `forwarded` so
    /// to the other nodes, unless it is open already or `limit` exchanges are.
    pub(super) fn incoming_qos2_begin(
        &mut self,
        id: NonZeroU16,
        limit: Option<usize>,
        forwarded: Option<Forwarded>,
    ) -> Qos2Received {
        let open = self.incoming_qos2.get_or_insert_default();
        if let Some(known) = open.get(&id) {
            Qos2Received::Duplicate(known.clone())
        } else if limit.is_some_and(|max| open.len() >= max) {
            Qos2Received::TooMany
        } else {
            open.insert(id, forwarded);
            Qos2Received::New
        }
    }

    /// The incoming QoS 2 exchanges open now.
    pub(super) fn incoming_qos2_open(&self) -> Vec<(NonZeroU16, Option<Forwarded>)> {
        self.incoming_qos2
            .iter()
            .flat_map(|open| open.iter().map(|(id, f)| (*id, f.clone())))
            .collect()
    }

    /// Closes the incoming QoS 2 exchange `id`. False if none was open.
    pub(super) fn incoming_qos2_end(&mut self, id: NonZeroU16) -> bool {
        let Some(open) = &mut self.incoming_qos2 else {
            return false;
        };
        let known = open.remove(&id).is_some();
        if open.is_empty() {
            // Back to nothing held between exchanges.
            self.incoming_qos2 = None;
        }
        known
    }

    pub(super) fn set_expiry(&mut self, secs: u32) {
        self.expiry_secs = secs;
    }

    pub(super) fn expiry_secs(&self) -> u32 {
        self.expiry_secs
    }

    /// Sets the will of a new connection, returning the one it replaces.
    pub(super) fn set_will(&mut self, will: Option<Will>) -> Option<Will> {
        std::mem::replace(&mut self.will, will.map(Box::new)).map(|w| *w)
    }

    /// Takes the will out: it is being published, or will never be.
    pub(super) fn take_will(&mut self) -> Option<Will> {
        self.will.take().map(|w| *w)
    }

    pub(super) fn will_delay(&self) -> Option<u32> {
        self.will.as_ref().map(|w| w.delay_secs)
    }

    /// Empties the session for good: returns its subscriptions' filters and
    /// its will. Queued and in-flight messages go with it.
    pub(super) fn clear(&mut self) -> (Vec<TopicFilter>, Option<Will>) {
        let filters = self.subscriptions.drain().map(|(f, _)| f).collect();
        self.outbox = Outbox::default();
        self.incoming_qos2 = None;
        (filters, self.will.take().map(|w| *w))
    }
}
