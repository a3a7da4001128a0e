//! Sessions coming and going: a CONNECT opens or resumes one; the end of a
//! connection leaves a will and an expiry to wait for; the broker's
//! [`Timers`](super::timers::Timers) fire them; recovery rebuilds the sessions a store kept.
//!
//! Locks: the registry (`sessions`) may be held while taking one session's
//! lock, the routing lock or the timers' lock, never the other way round.
//! A will is published only once the registry lock is released: its
//! fan-out locks every subscriber's session in turn, and one will with many
//! subscribers must not hold up every CONNECT meanwhile. Undoing a session's
//! routes waits for the release too.

use std::sync::Arc;
use std::time::Duration;

use aviary_protocol::ByteString;
use tokio::time::Instant;

use super::metrics::Denied;
use super::session::{Connecting, Discarded, Ending, RecoveredSession, Will};
use super::timers::{Due, Timer};
use super::{Broker, Opened, Session};

impl Broker {
    /// Opens (or resumes) the session for `client_id` and attaches the
    /// connection to it, taking over any connection it had.
    pub(crate) fn open_session(
        &self,
        client_id: ByteString,
        clean_start: bool,
        connecting: Connecting,
    ) -> Opened {
        let mut ended = None;
        let (session, present, attached) = {
            let mut sessions = self.shared.sessions.lock();
            let existing = sessions.get(&client_id).cloned();
            // A session belongs to the user who made it: another user reusing its client id
            // gets a new one, not the old one's subscriptions and queued messages (which the
            // ACL let through for their owner).
            let resume = match &existing {
                Some(s) if !clean_start => {
                    let same_user = s.username() == connecting.username;
                    if !same_user {
                        tracing::info!(%client_id, "the session belonged to another user: starting a new one");
                    }
                    same_user
                }
                _ => false,
            };
            let (session, present) = match existing {
                Some(s) if resume => (s, true),
                existing => {
                    if let Some(old) = existing {
                        let discarded = old.discard();
                        if let Some(p) = self.persist() {
                            old.forget_record(p);
                        }
                        ended = Some((old, discarded));
                    }
                    // Moved, not cloned: the first clone of a copied id allocates its
                    // shared header, 32 bytes per session.
                    let s =
                        Session::new(self.next_id(), client_id).with_store(self.session_store());
                    let s = Arc::new(s);
                    sessions.insert(s.clone());
                    self.shared.routing.write().by_key.insert(s.clone());
                    (s, false)
                }
            };
            // Under the registry lock, so that an expiry cannot end the
            // session between the look-up and the attach.
            let attached = session.attach(connecting);
            // Back in time: the pending will and the expiry are off [MQTT-3.1.3-9].
            self.shared.timers.cancel(session.key);
            if let Some(p) = self.persist() {
                session.write_record(p, None);
            }
            (session, present, attached)
        };
        if let Some((old, discarded)) = ended {
            self.end_session(&old, discarded);
        }
        if let Some(will) = attached.will {
            self.publish_will(&session, will);
        }
        Opened {
            session,
            present,
            wake: attached.wake,
        }
    }

    /// Called when connection `link_id` ends: publishes its will or sets
    /// its delay, and ends the session or sets its expiry.
    pub(crate) fn connection_closed(&self, session: &Arc<Session>, link_id: u64, ending: Ending) {
        // Taken over: the new connection settled this one's will.
        let Some(detached) = session.detach(link_id, ending) else {
            return;
        };
        if let Some(will) = detached.will_now {
            self.publish_will(session, will);
        } else if detached.will_delay_secs.is_none() {
            // No will left to wait for (discarded, or there was none): nor in the cluster.
            self.will_gone(&session.client_id);
        }
        let (now, generation) = (Instant::now(), detached.generation);
        let mut will_due = None;
        if let Some(delay) = detached.will_delay_secs {
            // The will goes when the session ends, if that comes first.
            let delay = delay.min(detached.expiry_secs);
            if let Some(at) = after(now, delay) {
                self.set_deadline(session, Timer::Will, at, generation);
                will_due = Some(at);
            }
        }
        if let Some(p) = self.persist() {
            session.write_record(p, will_due);
        }
        match detached.expiry_secs {
            0 => self.expire_session(session, generation),
            u32::MAX => {}
            secs => {
                if let Some(at) = after(now, secs) {
                    self.set_deadline(session, Timer::Expiry, at, generation);
                }
            }
        }
    }

    /// Ends the session if it is still registered and idle since
    /// `generation`, then publishes its pending will.
    fn expire_session(&self, session: &Arc<Session>, generation: u64) {
        let discarded = {
            let mut sessions = self.shared.sessions.lock();
            let registered = sessions
                .get(&session.client_id)
                .is_some_and(|s| Arc::ptr_eq(s, session));
            if !registered {
                return;
            }
            let Some(discarded) = session.discard_if_idle(generation) else {
                return;
            };
            sessions.remove(&session.client_id);
            discarded
        };
        self.end_session(session, discarded);
    }

    /// Undoes what the broker holds of a session that has ended (its routes
    /// and deadlines) and publishes its will. Call without the registry lock.
    pub(super) fn end_session(&self, session: &Arc<Session>, discarded: Discarded) {
        self.shared.timers.cancel(session.key);
        if let Some(p) = self.persist() {
            session.forget_record(p);
        }
        self.with_routing(|routing| {
            routing
                .tree
                .remove_client(session.key, discarded.filters.iter());
            routing.by_key.remove(&session.key);
        });
        if let Some(will) = discarded.will {
            self.publish_will(session, will);
        }
    }

    /// Publishes `session`'s will (see [`Broker::publish_will_of`]). Call
    /// with no registry lock held.
    fn publish_will(&self, session: &Session, will: Will) {
        // Settled here: the cluster's copy goes (see cluster::wills).
        self.will_gone(&session.client_id);
        self.publish_will_of(&session.client_id, will);
    }

    /// Publishes the will of `client_id`: every will goes out through here
    /// (in cluster mode, that of another node's client too), so a check
    /// that applies to wills has one place to go. Its Message Expiry
    /// Interval counts from now, when the will is published, not from the
    /// CONNECT that carried it (MQTT 5.0 section 3.1.3.2.4: the interval
    /// "is sent as the Publication Expiry Interval when the Server
    /// publishes the Will Message"). Call with no registry lock held.
    pub(crate) fn publish_will_of(&self, client_id: &str, will: Will) {
        let (msg, owner) = (will.message, will.owner.as_deref());
        if !self.authorizer().can_publish(owner, client_id, &msg.topic) {
            self.metrics().denied(Denied::Will);
            tracing::info!(%client_id, topic = %msg.topic, "will not published: the ACL does not let its owner write the topic");
            return;
        }
        tracing::debug!(%client_id, topic = %msg.topic, "publishing will");
        self.publish(msg.published_at(Instant::now()), None);
    }

    /// Sets a deadline and makes sure the timers' driver runs.
    fn set_deadline(&self, session: &Arc<Session>, timer: Timer, at: Instant, generation: u64) {
        self.shared.timers.set(session, timer, at, generation);
        self.start_timer_driver();
    }

    /// Starts the one task that fires deadlines, unless it runs already.
    /// It holds the broker weakly, and stops once the broker is dropped.
    fn start_timer_driver(&self) {
        self.shared.timers.start_driver(|| {
            let shared = Arc::downgrade(&self.shared);
            move |due| match shared.upgrade() {
                Some(shared) => {
                    Broker { shared }.fire(due);
                    true
                }
                None => false,
            }
        });
    }

    /// Acts on deadlines that fell due, with no lock held.
    fn fire(&self, due: Vec<Due>) {
        for d in due {
            match d.timer {
                Timer::Will => {
                    if let Some(will) = d.session.take_pending_will(d.generation) {
                        // Recorded as gone before it goes out: after a crash
                        // in between, a will lost beats a will sent twice.
                        if let Some(p) = self.persist() {
                            d.session.write_record(p, None);
                        }
                        self.publish_will(&d.session, will);
                    }
                }
                Timer::Expiry => self.expire_session(&d.session, d.generation),
            }
        }
    }

    /// Registers a session a store kept, offline: its subscriptions routed,
    /// its queue and in-flight messages waiting for the client, its pending
    /// will and expiry set at their absolute times (those already past fire
    /// at once). For recovery at start, before the listeners open.
    pub(crate) fn restore_session(&self, mut recovered: RecoveredSession) -> Arc<Session> {
        let session = Session::recover(self.next_id(), &mut recovered);
        let session = Arc::new(session.with_store(self.session_store()));
        let replaced = self.shared.sessions.lock().insert(session.clone());
        if let Some(old) = replaced {
            // A store holds one record per client id; should two come, the
            // later one wins and the earlier one goes without its will.
            let mut discarded = old.discard();
            discarded.will = None;
            self.end_session(&old, discarded);
        }
        self.with_routing(|routing| {
            routing.by_key.insert(session.clone());
            for (filter, subscription) in &recovered.subscriptions {
                routing.tree.subscribe(session.key, filter, *subscription);
            }
        });
        let generation = session.generation();
        if let Some((_, at)) = recovered.pending_will {
            self.set_deadline(&session, Timer::Will, at, generation);
        }
        if let Some(at) = recovered.expires_at {
            self.set_deadline(&session, Timer::Expiry, at, generation);
        }
        session
    }

    /// The deadline of `session`'s `timer`, if set.
    #[cfg(test)]
    pub(crate) fn deadline(&self, session: &Session, timer: Timer) -> Option<Instant> {
        self.shared.timers.deadline(session.key, timer)
    }
}

/// `secs` seconds after `now`; `None` if that is beyond any clock.
fn after(now: Instant, secs: u32) -> Option<Instant> {
    now.checked_add(Duration::from_secs(u64::from(secs)))
}

#[cfg(test)]
mod tests;
