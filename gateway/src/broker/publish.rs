//! Routing a message to this node's subscribers: the retained store and history first, then
//! the subscription tree's deliveries, each checked against the ACL for its reader and queued
//! in its session. A message published here is also handed to the other nodes
//! ([`super::backplane`]); one from another node is routed here only.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::Notify;

/// Where a message being routed comes from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Source<'a> {
    /// A client of this node (or the broker itself), for No Local.
    Here(Option<ClientKey>),
    /// Another node, over core NATS (QoS 0): for the subscriptions to exactly this filter.
    Live(&'a str),
    /// The cluster's message stream (QoS 1/2), once per node.
    Stream(Origin),
    /// The cluster, for one member of shared group `group` on `filter`, which NATS gave this
    /// node's members the turn for.
    Shared { group: &'a str, filter: &'a str },
    /// The stream consumer of a node that died, drained by the node that adopted its
    /// sessions: for those sessions only.
    Adopted(&'a HashSet<ClientKey>),
}

/// Which node published a message that came from the cluster's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Another node.
    Elsewhere,
    /// This node, by this local client (for No Local) if any.
    Here(Option<ClientKey>),
}

/// Which sessions a message is for. In cluster mode a persistent session takes its QoS 1/2
/// messages only from the message stream, in the stream's order, even those published on its
/// own node: a session moving to another node then knows by the stream's sequence numbers
/// which messages the old node had, so none is lost or delivered twice in the move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    All,
    /// Sessions that end with their connection (the local fast path).
    Transient,
    /// Persistent sessions (this node's own message, back from the stream).
    Persistent,
}

/// A session a message goes to, and how.
type Target = (Arc<Session>, Delivery);

use super::metrics::{self, Metrics};
use super::router::{ClientKey, Delivery};
use super::{Broker, Message, Outgoing, QueueLimits, RunQueued, Session};

mod pressure;
mod scratch;
mod staged;

pub(crate) use pressure::{Pressure, Room};
pub(crate) use staged::Staged;

impl Broker {
    /// Routes a message published on this node (a will, `$SYS`, the REST API) and hands it
    /// to the other nodes, if any. Returns the number of local subscribers it was queued for.
    pub(crate) fn publish(&self, msg: Arc<Message>, publisher: Option<ClientKey>) -> usize {
        let mut out = Staged::at_once(self);
        self.publish_from(msg, publisher, None, &mut out).delivered
    }

    /// Routes a message to the matching subscriptions, and records its history. One published
    /// here is also kept if it is retained; one from another node is routed only to the
    /// subscriptions to exactly `only`, if set (see [`Broker::publish_live`]), and the
    /// retained store hears of it from the cluster's retained stream instead.
    pub(super) fn route(&self, msg: &Arc<Message>, from: Source<'_>) -> usize {
        self.route_staged(msg, from, &mut Staged::at_once(self))
    }

    /// [`Broker::route`], adding the message to `out`'s run when it matches as the run's
    /// messages do (see [`Staged`]), and noting in it the sessions it left far behind.
    pub(super) fn route_staged(
        &self,
        msg: &Arc<Message>,
        from: Source<'_>,
        out: &mut Staged<'_>,
    ) -> usize {
        let (publisher, only, audience) = match from {
            Source::Here(publisher) => {
                self.keep_retained(msg);
                let streamed = self.backplane().is_some()
                    && msg.qos != aviary_protocol::QoS::AtMostOnce
                    && !msg.topic.starts_with("$SYS");
                let audience = if streamed {
                    Audience::Transient
                } else {
                    Audience::All
                };
                (publisher, None, audience)
            }
            Source::Live(only) => (None, Some(only), Audience::All),
            Source::Shared { .. } => (None, None, Audience::All),
            Source::Stream(Origin::Here(publisher)) => (publisher, None, Audience::Persistent),
            Source::Stream(Origin::Elsewhere) => (None, None, Audience::All),
            Source::Adopted(_) => (None, None, Audience::Persistent),
        };
        // A QoS 0 message from another node comes once per matching filter, and this node's
        // own messages come back from the stream: history takes each message once.
        let once_here = !matches!(from, Source::Shared { .. });
        if only.is_none() && audience != Audience::Persistent && once_here {
            self.shared.history.record(&msg.topic, &msg.payload);
        }
        if let Some(delivered) = out.join(msg, publisher) {
            return delivered;
        }
        // Staged or not, this message goes after the run before it.
        out.flush();
        let group = match from {
            Source::Shared { group, filter } => Some((group, filter)),
            _ => None,
        };
        let mut scratch = scratch::take();
        let (targets, stamp) = self.targets(msg, publisher, only, group, &mut scratch);
        let adopted = match from {
            Source::Adopted(sessions) => Some(sessions),
            _ => None,
        };
        let wanted = |(session, _): &&Target| {
            let heard = match audience {
                Audience::All => true,
                Audience::Transient => !session.is_persistent(),
                Audience::Persistent => session.is_persistent(),
            };
            heard && adopted.is_none_or(|sessions| sessions.contains(&session.key))
        };
        let wanted = targets.iter().filter(wanted);
        let staged = stamp.and_then(|stamp| out.open(msg, (stamp, publisher), wanted.clone()));
        let delivered = staged.unwrap_or_else(|| self.deliver(msg, wanted, out));
        scratch::give_back(scratch);
        delivered
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

    /// The sessions a message goes to: the subscription tree's deliveries for `msg` with
    /// their sessions, or with `group` the member of that shared group on `filter` that gets
    /// it, if the group has members here. From this thread's cache of recent matches when it
    /// holds the topic for the routing state as it is (no lock then); otherwise collected
    /// under the routing read lock into `scratch.targets`. With them, the stamp of the
    /// routing state they were matched in, if every message on the topic from `publisher`
    /// in that state goes to them too (no shared group picked a member).
    fn targets<'s>(
        &self,
        msg: &Message,
        publisher: Option<ClientKey>,
        only: Option<&str>,
        group: Option<(&str, &str)>,
        scratch: &'s mut scratch::Scratch,
    ) -> (&'s [Target], Option<u64>) {
        let scratch::Scratch {
            deliveries,
            targets,
            matches,
        } = scratch;
        let topic = &*msg.topic;
        let mut stamp = self.shared.routing.stamp();
        let cached =
            (group.is_none() && only.is_none()).then(|| matches.lookup(stamp, topic, publisher));
        if let Some(Ok(at)) = cached {
            // A session gone since has a new stamp too; skipping one that is gone is what a
            // lookup in the session map would do.
            let live = matches.entry(at).iter();
            targets.extend(live.filter_map(|(s, d)| Some((s.upgrade()?, d.clone()))));
            return (targets, Some(stamp));
        }
        let routing = self.shared.routing.read();
        let is_online = |k: ClientKey| routing.by_key.get(&k).is_some_and(|s| s.is_online());
        let tree = &routing.tree;
        let matched = match (group, only) {
            (Some((group, filter)), _) => {
                tree.matches_group(group, filter, topic, is_online, deliveries);
                None
            }
            (None, Some(filter)) => {
                tree.matches_filter(filter, topic, is_online, deliveries);
                None
            }
            (None, None) => Some(tree.matches(topic, publisher, is_online, deliveries)),
        };
        let found = deliveries.drain(..);
        let sessions = found.filter_map(|d| Some((routing.by_key.get(&d.client)?.clone(), d)));
        targets.extend(sessions);
        // The stamp of the state just read: stable while the read lock is held.
        stamp = self.shared.routing.stamp();
        if let (Some(matched), Some(Err(miss))) = (matched, cached) {
            let found = targets.iter().map(|(s, d)| (Arc::downgrade(s), d.clone()));
            matches.keep(miss, stamp, topic, publisher, matched, found);
        }
        let alike = matched.is_some_and(|m| !m.picked);
        (targets, alike.then_some(stamp))
    }

    /// Queues a message now for each target the ACL lets read it; returns how many.
    fn deliver<'t>(
        &self,
        msg: &Arc<Message>,
        targets: impl Iterator<Item = &'t Target> + Clone,
        out: &mut Staged<'_>,
    ) -> usize {
        // Looks no further than a second target: fan-outs have hundreds.
        let sole = targets.clone().nth(1).is_none();
        let mut count = 0;
        for (session, d) in targets {
            if self.may_read(session, &msg.topic) {
                count += 1;
                out.queue(session, [outgoing(msg.clone(), d)], sole);
            }
        }
        count
    }

    /// Whether the ACL lets `session` read `topic` (counted when not).
    fn may_read(&self, session: &Session, topic: &str) -> bool {
        let auth = &self.shared.auth;
        // Without an ACL every subscriber reads everything: no per-delivery question.
        if !auth.has_acl() {
            return true;
        }
        let user = session.username();
        let ok = auth.can_read(user.as_deref(), &session.client_id, topic);
        if !ok {
            self.shared.metrics.denied(metrics::Denied::Delivery);
        }
        ok
    }

    /// Queues messages for one session, in order (`sole`: theirs alone), and counts what was
    /// dropped. Returns the room to wait for if the session's queue runs far behind.
    pub(crate) fn enqueue_run(
        &self,
        session: &Session,
        outs: impl IntoIterator<Item = Outgoing>,
        limits: &QueueLimits,
        sole: bool,
    ) -> Option<Arc<Notify>> {
        let m = &self.shared.metrics;
        let (queued, room) = session.enqueue_run(outs, limits, sole);
        let RunQueued {
            evicted,
            dropped,
            offline,
            too_large,
        } = queued;
        if evicted > 0 {
            Metrics::add(&m.dropped_queue_full, evicted as u64);
            // Log the first drop and then every 1000th, not every one.
            if dropped == evicted as u64 || dropped % 1000 < evicted as u64 {
                tracing::warn!(client_id = %session.client_id, dropped, "session queue full: dropping oldest messages");
            }
        }
        if offline > 0 {
            Metrics::add(&m.dropped_offline_qos0, offline as u64);
        }
        if too_large > 0 {
            Metrics::add(&m.dropped_too_large, too_large as u64);
        }
        room
    }
}

/// `msg` as it goes to a subscriber with delivery `d`.
fn outgoing(msg: Arc<Message>, d: &Delivery) -> Outgoing {
    Outgoing {
        qos: msg.qos.min(d.qos),
        // The RETAIN flag is cleared on established subscriptions
        // unless Retain As Published [MQTT-3.3.1-12, MQTT-3.3.1-13].
        retain: msg.retain && d.retain_as_published,
        subscription_ids: d.identifiers.clone(),
        seq: None,
        msg,
    }
}

#[cfg(test)]
mod tests;
