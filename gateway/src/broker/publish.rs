//! Routing a message to this node's subscribers: the retained store and history first, then
//! the subscription tree's deliveries, each checked against the ACL for its reader and queued
//! in its session. A message published here is also handed to the other nodes
//! ([`super::backplane`]); one from another node is routed here only.

use std::sync::Arc;

/// Where a message being routed comes from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Source<'a> {
    /// A client of this node (or the broker itself), for No Local.
    Here(Option<ClientKey>),
    /// Another node; for the subscriptions to exactly this filter, if set.
    Remote(Option<&'a str>),
}

use super::metrics::{self, Metrics};
use super::router::{ClientKey, Delivery};
use super::{Broker, Enqueued, Message, Outgoing, QueueLimits, Session};

impl Broker {
    /// Routes a message published on this node (a will, `$SYS`, the REST API) and hands it
    /// to the other nodes, if any. Returns the number of local subscribers it was queued for.
    pub(crate) fn publish(&self, msg: Arc<Message>, publisher: Option<ClientKey>) -> usize {
        self.publish_from(msg, publisher).0
    }

    /// Routes a message to the matching subscriptions, and records its history. One published
    /// here is also kept if it is retained; one from another node is routed only to the
    /// subscriptions to exactly `only`, if set (see [`Broker::publish_remote`]), and the
    /// retained store hears of it from the cluster's retained stream instead.
    pub(super) fn route(&self, msg: &Arc<Message>, from: Source<'_>) -> usize {
        let (publisher, only) = match from {
            Source::Here(publisher) => {
                self.keep_retained(msg);
                (publisher, None)
            }
            Source::Remote(only) => (None, only),
        };
        // A QoS 0 message from another node comes once per matching filter: history takes
        // the copies that come once.
        if only.is_none() {
            self.shared.history.record(&msg.topic, &msg.payload);
        }
        let targets = self.targets(msg, publisher, only);
        self.deliver(msg, targets)
    }

    /// Keeps (or, with an empty payload, clears) a retained message; nothing for others.
    pub(super) fn keep_retained(&self, msg: &Arc<Message>) {
        if msg.retain {
            let mut retained = self.shared.retained.write();
            // Written under the lock, so the store sees the same order.
            if msg.payload.is_empty() {
                retained.remove(&msg.topic);
                if let Some(p) = self.persist() {
                    p.retained_cleared(&msg.topic);
                }
            } else {
                retained.set(&msg.topic, msg.clone());
                if let Some(p) = self.persist() {
                    p.retained_set(msg);
                }
            }
        }
    }

    /// The sessions a message goes to, collected under the routing read lock.
    fn targets(
        &self,
        msg: &Message,
        publisher: Option<ClientKey>,
        only: Option<&str>,
    ) -> Vec<(Arc<Session>, Delivery)> {
        let mut deliveries: Vec<Delivery> = Vec::new();
        let routing = self.shared.routing.read();
        let is_online = |k: ClientKey| routing.by_key.get(&k).is_some_and(|s| s.is_online());
        match only {
            Some(filter) => {
                routing
                    .tree
                    .matches_filter(filter, &msg.topic, is_online, &mut deliveries)
            }
            None => routing
                .tree
                .matches(&msg.topic, publisher, is_online, &mut deliveries),
        }
        deliveries
            .into_iter()
            .filter_map(|d| Some((routing.by_key.get(&d.client)?.clone(), d)))
            .collect()
    }

    /// Queues a message for each target the ACL lets read it; returns how many.
    fn deliver(&self, msg: &Arc<Message>, targets: Vec<(Arc<Session>, Delivery)>) -> usize {
        let limits = self.queue_limits();
        let auth = &self.shared.auth;
        // Without an ACL every subscriber reads everything: no per-delivery question.
        let acl = auth.has_acl();
        let mut count = 0;
        for (session, d) in targets {
            if acl
                && !auth.can_read(
                    session.username().as_deref(),
                    &session.client_id,
                    &msg.topic,
                )
            {
                self.shared.metrics.denied(metrics::Denied::Delivery);
                continue;
            }
            count += 1;
            let out = Outgoing {
                qos: msg.qos.min(d.qos),
                // The RETAIN flag is cleared on established subscriptions
                // unless Retain As Published [MQTT-3.3.1-12, MQTT-3.3.1-13].
                retain: msg.retain && d.retain_as_published,
                subscription_ids: d.identifiers,
                seq: None,
                msg: msg.clone(),
            };
            self.enqueue(&session, out, &limits);
        }
        count
    }

    /// Queues one message for one session and counts what was dropped.
    pub(crate) fn enqueue(&self, session: &Session, out: Outgoing, limits: &QueueLimits) {
        let m = &self.shared.metrics;
        match session.enqueue(out, limits) {
            Enqueued::Queued { evicted: 0 } => {}
            Enqueued::Queued { evicted } => {
                Metrics::add(&m.dropped_queue_full, evicted as u64);
                let dropped = session.dropped();
                // Log the first drop and then every 1000th, not every one.
                if dropped == evicted as u64 || dropped % 1000 < evicted as u64 {
                    tracing::warn!(client_id = %session.client_id, dropped, "session queue full: dropping oldest messages");
                }
            }
            Enqueued::DroppedOffline => Metrics::add(&m.dropped_offline_qos0, 1),
            Enqueued::DroppedTooLarge => Metrics::add(&m.dropped_too_large, 1),
        }
    }
}
