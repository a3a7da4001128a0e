//! A publisher's read, queued per subscriber rather than per message.
//!
//! A read holds many PUBLISH packets (about 70 in fan-in), and a device publishes on its
//! own topic again and again, so most of a read's messages go to the same subscribers.
//! Queued one by one, each message took each subscriber's lock, upgraded its weak
//! reference in the match cache, noted a wake-up for its writer and dropped the strong
//! reference again: atomic writes to cache lines that the subscriber's writer, on the other
//! core, writes too. `perf` put a third of the broker's CPU in fan-in there, on a host
//! whose cores pass a cache line in 100–300 ns.
//!
//! So the messages of consecutive PUBLISH packets that match alike (the same topic, QoS
//! and publisher, in the same routing state: what the match cache keys its entries on)
//! form a run of up to [`RUN`], queued for each subscriber with one
//! [`Session::enqueue_run`] when the next message does not join it, when the reader
//! handles any other packet, and at the end of the read. A subscriber still gets each
//! publisher's messages in the order sent: a run is queued before anything after it is
//! routed.
//!
//! A message for a persistent session at QoS 1 or 2 is not staged: its PUBACK waits for
//! the store to hold it, which it does only once it is queued. Nor is one whose match a
//! shared group decided: the next message may go to another member.

use std::sync::Arc;

use aviary_protocol::QoS;

use super::{Pressure, Target};
use crate::broker::router::ClientKey;
use crate::broker::{metrics, Broker, Message, Outgoing, QueueLimits, Session};

/// The most messages in a run: the writers of its subscribers wait for the run to be
/// queued, so it must not hold them back for a whole read. Fewer for short queues (see
/// [`QueueLimits::run_length`]).
const RUN: usize = 64;

/// What a publisher's messages owe their subscribers until queued, and what the
/// subscribers they left far behind ask of the publisher.
pub(crate) struct Staged<'b> {
    broker: &'b Broker,
    /// Whether runs are formed at all; not for a message routed on its own (a will, the
    /// REST API, `$SYS`, the cluster's).
    stages: bool,
    limits: QueueLimits,
    /// The most messages in a run.
    most: usize,
    run: Run,
    pressure: Pressure,
}

/// Messages that match alike, and their subscribers.
#[derive(Default)]
struct Run {
    /// What the messages share besides their topic, that of the first; `None` while empty.
    key: Option<Key>,
    /// The subscribers the ACL lets read the topic.
    targets: Vec<Target>,
    messages: Vec<Arc<Message>>,
    /// The subscribers the ACL does not let read it, counted again for each message.
    denied: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    /// The routing state the match was made in.
    stamp: u64,
    qos: QoS,
    publisher: Option<ClientKey>,
}

impl<'b> Staged<'b> {
    /// For a reader: forms runs.
    pub(crate) fn runs(broker: &'b Broker) -> Self {
        Self::new(broker, true)
    }

    /// For a message routed on its own: queues it at once.
    pub(crate) fn at_once(broker: &'b Broker) -> Self {
        Self::new(broker, false)
    }

    fn new(broker: &'b Broker, stages: bool) -> Self {
        let limits = broker.queue_limits();
        Self {
            broker,
            stages,
            most: limits.run_length(RUN),
            limits,
            run: Run::default(),
            pressure: Pressure::new(),
        }
    }

    /// What the queued messages left far behind, for the publisher to wait for.
    pub(crate) fn pressure(&mut self) -> &mut Pressure {
        &mut self.pressure
    }

    /// Whether the publisher must wait before its next message (see [`Pressure`]).
    pub(crate) fn presses(&self) -> bool {
        !self.pressure.is_empty()
    }

    /// Adds `msg` to the run, if it matches as the run's messages do in the routing state
    /// as it is: returns how many subscribers it goes to.
    pub(super) fn join(
        &mut self,
        msg: &Arc<Message>,
        publisher: Option<ClientKey>,
    ) -> Option<usize> {
        let run = &mut self.run;
        let key = run.key?;
        let first = run.messages.first()?;
        let same = key.qos == msg.qos
            && key.publisher == publisher
            && first.topic == msg.topic
            && key.stamp == self.broker.shared.routing.stamp();
        if !same || run.messages.len() >= self.most {
            return None;
        }
        run.messages.push(msg.clone());
        if run.denied > 0 {
            let m = &self.broker.shared.metrics;
            m.denied_n(metrics::Denied::Delivery, run.denied as u64);
        }
        Some(run.targets.len())
    }

    /// Starts a run with `msg`, matched in routing state `stamp` to `targets`, if runs are
    /// formed and none of them must be queued at once; returns how many subscribers the ACL
    /// lets it go to. `None` leaves `msg` to be queued at once. The run before must have
    /// been queued ([`Staged::flush`]).
    pub(super) fn open<'t>(
        &mut self,
        msg: &Arc<Message>,
        (stamp, publisher): (u64, Option<ClientKey>),
        targets: impl Iterator<Item = &'t Target> + Clone,
    ) -> Option<usize> {
        debug_assert!(self.run.key.is_none(), "the run before is queued first");
        let stored = |(session, d): &&Target| {
            session.is_persistent() && msg.qos.min(d.qos) != QoS::AtMostOnce
        };
        if !self.stages || targets.clone().any(|t| stored(&t)) {
            return None;
        }
        let run = &mut self.run;
        for target in targets {
            if self.broker.may_read(&target.0, &msg.topic) {
                run.targets.push(target.clone());
            } else {
                run.denied += 1;
            }
        }
        run.messages.push(msg.clone());
        run.key = Some(Key {
            stamp,
            qos: msg.qos,
            publisher,
        });
        Some(run.targets.len())
    }

    /// Queues the run for each of its subscribers.
    pub(crate) fn flush(&mut self) {
        if self.run.key.take().is_none() {
            return;
        }
        // Taken out to be queued from, and put back emptied with their room.
        let mut targets = std::mem::take(&mut self.run.targets);
        let mut messages = std::mem::take(&mut self.run.messages);
        let last = targets.len().saturating_sub(1);
        let sole = targets.len() == 1;
        for (i, (session, d)) in targets.iter().enumerate() {
            if i == last {
                // The last takes the run's own references to the messages.
                let outs = messages.drain(..).map(|msg| super::outgoing(msg, d));
                self.queue(session, outs, sole);
            } else {
                let outs = messages.iter().map(|msg| super::outgoing(msg.clone(), d));
                self.queue(session, outs, sole);
            }
        }
        targets.clear();
        messages.clear();
        self.run = Run {
            key: None,
            targets,
            messages,
            denied: 0,
        };
    }

    /// Queues `outs` for `session` now, noting its room if it is far behind; `sole` if
    /// their messages go to this session alone (see [`Session::enqueue_run`]).
    pub(super) fn queue(
        &mut self,
        session: &Arc<Session>,
        outs: impl IntoIterator<Item = Outgoing>,
        sole: bool,
    ) {
        if let Some(room) = self.broker.enqueue_run(session, outs, &self.limits, sole) {
            self.pressure.push((session.clone(), room));
        }
    }

    /// Queues what is staged; returns what the publisher waits for.
    pub(crate) fn finish(mut self) -> Pressure {
        self.flush();
        std::mem::take(&mut self.pressure)
    }
}

impl Drop for Staged<'_> {
    /// Queues what is staged even when the read ends in an error: a message already
    /// acknowledged must not be lost with it.
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests;
