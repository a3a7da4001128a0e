//! Per-client session state (MQTT 5 section 4.1), with one owner: every
//! change to a session goes through a [`Session`] method, under the
//! session's own lock. The state has two parts:
//!
//! - the [`durable`] part: subscriptions, what is to be sent (the
//!   [`outbox`]: queue, retained messages still to pull, QoS 1/2 messages
//!   in flight), QoS 2 publications received but not yet released, the
//!   expiry interval and the will. It outlives connections, and is what a
//!   store keeps; its module lists where each change happens;
//! - the [`link`] part: the live connection, if any (its writer's wake-up,
//!   its kick, its control packets, its window) and the generation that
//!   tells deadlines whether the client came back.
//!
//! Deadlines themselves (will delay, expiry) are not here: the broker's
//! timers hold them (`super::timers`), and act through
//! [`Session::take_pending_will`] and [`Session::discard_if_idle`].
//!
//! The lock is held only for short bookkeeping: a publisher appends a run
//! of messages to a subscriber's queue and wakes its writer ([`queueing`]); the writer takes a batch out
//! and encodes it after releasing the lock. A QoS 0 delivery that nothing queued waits
//! ahead of is the exception: its publisher encodes it, under the lock, into the bytes the
//! writer takes next (`outbox::direct`). A subscriber far behind holds
//! its publishers back for as long as it keeps taking messages
//! ([`backlog`]); one that stops only ever fills its own bounded queue. No other lock is taken while it is held,
//! except the retained store's, for reading (a writer pulling retained
//! messages).

mod backlog;
mod cursor;
mod durable;
mod flow;
mod link;
mod moving;
mod outbox;
mod queueing;
mod stored;
mod wake;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use aviary_protocol::{ByteString, Packet, ReasonCode, TopicFilter};
use parking_lot::Mutex;
use tokio::time::Instant;

use super::message::Outgoing;
use super::persist::Persist;
use super::router::{ClientKey, Subscription};
use super::views::ClientFacts;
pub(crate) use backlog::SlowAfter;
pub(crate) use cursor::{Readable, RetainedCursor, SharedRetained};
use durable::Durable;
pub(crate) use durable::{Qos2Received, RecoveredSession, Will};
use link::Link;
pub(crate) use moving::Handed;
pub(crate) use outbox::Inflight;
pub(crate) use outbox::{Batch, Direct, Enqueued, Event, QueueLimits};
pub(crate) use queueing::RunQueued;
pub(crate) use wake::{note_messages_read, take_turn, WriterWake};

/// A session, shared by the registry, the router's deliveries, the timers
/// and the connection serving it.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) key: ClientKey,
    pub(crate) client_id: ByteString,
    /// Mirrors `state.link.is_attached()` so routing can read it without
    /// locking.
    online: AtomicBool,
    /// Whether the store holds a record of this session.
    stored: AtomicBool,
    /// Whether the session outlives its connection (expiry above zero), for routing to read
    /// without locking.
    persistent: AtomicBool,
    /// The store, told of every change to a persistent session's messages.
    persist: Option<Arc<Persist>>,
    state: Mutex<SessionState>,
}

/// Everything a session's lock guards.
#[derive(Debug, Default)]
struct SessionState {
    durable: Durable,
    link: Link,
    /// The session has ended (clean start, expiry): it is out of the
    /// registry, and deadlines still naming it do nothing.
    discarded: bool,
    /// The stream sequence up to which the node this session moved from had its messages
    /// (cluster mode): this node's consumer may still bring older ones, which it drops.
    stream_floor: u64,
    /// Whether its publishers wait for it (see [`backlog`]).
    backlog: backlog::Backlog,
}

/// What a CONNECT settled for the connection attaching to a session.
#[derive(Debug)]
pub(crate) struct Connecting {
    pub(crate) link_id: u64,
    /// How many QoS 1/2 messages may be in flight to the client.
    pub(crate) window: usize,
    pub(crate) will: Option<Will>,
    /// Session Expiry Interval in force when the connection ends.
    pub(crate) expiry_secs: u32,
    /// Who the connection signed in as.
    pub(crate) username: Option<Arc<str>>,
    /// Who its client is, for the REST API.
    pub(crate) client: ClientFacts,
    /// How it takes QoS 0 deliveries encoded by their publishers.
    pub(crate) direct: Direct,
}

/// What attaching gives the new connection, and what it leaves over.
#[derive(Debug)]
pub(crate) struct Attached {
    /// Wakes the connection's writer, and tells the connection when it must close (takeover,
    /// session ended).
    pub(crate) wake: Arc<WriterWake>,
    /// The will of a connection taken over, to publish now. A delayed will
    /// is cancelled instead: a new connection came before its delay ran
    /// out [MQTT-3.1.3-9].
    pub(crate) will: Option<Will>,
}

/// How a connection ended, as [`Session::detach`] needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ending {
    /// The will is due (no normal DISCONNECT) [MQTT-3.1.2-8].
    pub(crate) publish_will: bool,
    /// The Session Expiry Interval in force now (DISCONNECT may change it).
    pub(crate) expiry_secs: u32,
}

/// What a connection leaves when it detaches: what to do now and which
/// deadlines to set.
#[derive(Debug)]
pub(crate) struct Detached {
    /// The generation the deadlines belong to.
    pub(crate) generation: u64,
    /// A will to publish now: it has no delay, or the session ends now.
    pub(crate) will_now: Option<Will>,
    /// The delay of a will left pending in the session.
    pub(crate) will_delay_secs: Option<u32>,
    pub(crate) expiry_secs: u32,
}

/// What is left of a session that ended.
#[derive(Debug)]
pub(crate) struct Discarded {
    /// Its subscriptions, to take out of the routing tree.
    pub(crate) filters: Vec<TopicFilter>,
    /// Its will, armed or waiting for its delay: the session's end is the
    /// will's time [MQTT-3.1.3-9].
    pub(crate) will: Option<Will>,
}

impl Session {
    /// A new, empty session.
    pub(crate) fn new(key: ClientKey, client_id: ByteString) -> Self {
        Self {
            key,
            client_id,
            online: AtomicBool::new(false),
            stored: AtomicBool::new(false),
            persistent: AtomicBool::new(false),
            persist: None,
            state: Mutex::new(SessionState::default()),
        }
    }

    /// The session, writing to `persist` while it persists.
    pub(crate) fn with_store(mut self, persist: Option<Arc<Persist>>) -> Self {
        self.persist = persist;
        let mut st = self.state.lock();
        self.expiry_changed(&mut st);
        drop(st);
        self
    }

    /// Settles what follows from the expiry interval: whether the session persists, and so
    /// whether the store is told of its changes.
    fn expiry_changed(&self, st: &mut SessionState) {
        let persistent = st.durable.expiry_secs() > 0;
        self.persistent.store(persistent, Ordering::Release);
        self.set_journaled(st);
    }

    /// Whether the session outlives its connection.
    pub(crate) fn is_persistent(&self) -> bool {
        self.persistent.load(Ordering::Acquire)
    }

    /// A session rebuilt, offline, from what a store kept; the deadlines of
    /// `recovered` are left for the broker's timers.
    pub(crate) fn recover(key: ClientKey, recovered: &mut RecoveredSession) -> Self {
        let state = SessionState {
            durable: Durable::recover(recovered),
            ..SessionState::default()
        };
        Self {
            key,
            client_id: recovered.client_id.clone(),
            online: AtomicBool::new(false),
            stored: AtomicBool::new(false),
            persistent: AtomicBool::new(recovered.expiry_secs > 0),
            persist: None,
            state: Mutex::new(state),
        }
    }

    /// Notes that the store holds this session's record (recovered from it).
    pub(crate) fn mark_stored(&self) {
        self.stored.store(true, Ordering::Release);
    }

    /// Writes the session's record if it persists (expiry above zero), or
    /// removes one it no longer needs; `will_due` is when a will left
    /// pending is due. Under the session's lock, so that records reach the
    /// store in the order of the changes they record.
    pub(crate) fn write_record(&self, persist: &Persist, will_due: Option<Instant>) {
        let st = self.state.lock();
        if st.discarded {
            return;
        }
        if st.durable.expiry_secs() == 0 {
            self.forget_record(persist);
            return;
        }
        let disconnected = st.durable.disconnected_at();
        persist.session(
            &self.client_id,
            st.durable.record_parts(),
            disconnected,
            will_due,
        );
        self.stored.store(true, Ordering::Release);
    }

    /// Removes the session's record from the store, if it has one.
    pub(crate) fn forget_record(&self, persist: &Persist) {
        if self.stored.swap(false, Ordering::AcqRel) {
            persist.session_ended(&self.client_id);
        }
    }

    pub(crate) fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    /// The current generation, for deadlines set from outside a connection's
    /// end (recovery).
    pub(crate) fn generation(&self) -> u64 {
        self.state.lock().link.generation()
    }

    /// Attaches a new connection with its will and expiry, kicking out the
    /// previous connection (session takeover).
    pub(crate) fn attach(&self, c: Connecting) -> Attached {
        let mut st = self.state.lock();
        let resend = st.durable.outbox.has_inflight();
        let (wake, replaced) = st
            .link
            .attach(c.link_id, c.window, resend, (c.client, c.direct));
        // Encoded for the connection before, in its terms.
        st.durable.outbox.drop_encoded();
        st.durable.set_expiry(c.expiry_secs);
        st.durable.set_disconnected_at(None);
        st.durable.set_username(c.username);
        self.expiry_changed(&mut st);
        let previous = st.durable.set_will(c.will);
        self.online.store(true, Ordering::Release);
        drop(st);
        wake.notify();
        let will = previous.filter(|w| replaced && w.delay_secs == 0);
        Attached { wake, will }
    }

    /// Detaches the connection `link_id` if it is still the current one,
    /// settling its will: dropped after a normal DISCONNECT, due now, or
    /// left pending for its delay. `None` if another connection has taken
    /// the session over (and with it, the will's fate).
    pub(crate) fn detach(&self, link_id: u64, ending: Ending) -> Option<Detached> {
        let mut st = self.state.lock();
        if !st.link.detach(link_id) {
            return None;
        }
        st.durable.outbox.drop_encoded();
        self.online.store(false, Ordering::Release);
        // Nothing takes from the queue now: its publishers wait no more.
        st.backlog.release();
        st.durable.set_expiry(ending.expiry_secs);
        st.durable.set_disconnected_at(Some(Instant::now()));
        self.expiry_changed(&mut st);
        let expiry_secs = st.durable.expiry_secs();
        let (mut will_now, mut will_delay_secs) = (None, None);
        match st.durable.will_delay() {
            None => {}
            Some(_) if !ending.publish_will => drop(st.durable.take_will()),
            // No delay, or the session ends with the connection: a will
            // waits no longer than the session lasts [MQTT-3.1.3-9].
            Some(delay) if delay == 0 || expiry_secs == 0 => {
                will_now = st.durable.take_will();
            }
            Some(delay) => will_delay_secs = Some(delay),
        }
        Some(Detached {
            generation: st.link.generation(),
            will_now,
            will_delay_secs,
            expiry_secs,
        })
    }

    /// Ends the session: closes its connection (if any), empties it and
    /// returns what the broker must undo or publish.
    pub(crate) fn discard(&self) -> Discarded {
        self.discard_locked(&mut self.state.lock())
    }

    /// Ends the session if it is still as it was at `generation` with no
    /// connection: the expiry of that generation is due.
    pub(crate) fn discard_if_idle(&self, generation: u64) -> Option<Discarded> {
        let mut st = self.state.lock();
        let idle = !st.discarded && !st.link.is_attached() && st.link.generation() == generation;
        idle.then(|| self.discard_locked(&mut st))
    }

    fn discard_locked(&self, st: &mut SessionState) -> Discarded {
        st.discarded = true;
        st.link.close(ReasonCode::SESSION_TAKEN_OVER);
        self.online.store(false, Ordering::Release);
        self.release_stored(st);
        let (filters, will) = st.durable.clear();
        Discarded { filters, will }
    }

    /// Takes the will left pending at `generation`, its delay being over;
    /// `None` if the client came back since, or the session ended.
    pub(crate) fn take_pending_will(&self, generation: u64) -> Option<Will> {
        let mut st = self.state.lock();
        if st.discarded || st.link.is_attached() || st.link.generation() != generation {
            return None;
        }
        st.durable.take_will()
    }

    /// Tells the current connection, if any, to close with `reason` (a client taken over on
    /// another node); its end settles the will and expiry as any close does.
    pub(crate) fn kick(&self, reason: ReasonCode) -> bool {
        self.state.lock().link.kick_current(reason)
    }

    /// What the session holds of the connection attached to it, if one is.
    pub(crate) fn attached(&self) -> Option<Arc<WriterWake>> {
        self.state.lock().link.waker()
    }

    /// The username the ACL decides this session's reads for: its current
    /// or last connection's.
    pub(crate) fn username(&self) -> Option<Arc<str>> {
        self.state.lock().durable.username().cloned()
    }

    /// Wakes the current connection's writer, if there is one; called by connection
    /// `link_id`'s own task, which polls its writer next if it is still the current one
    /// (see [`WriterWake`]).
    pub(crate) fn wake_from(&self, link_id: u64) {
        let other = self.state.lock().link.wake_from(link_id);
        if let Some(wake) = other {
            wake.notify();
        }
    }

    /// Queues a control packet (an acknowledgement) for connection `link_id`; called by that
    /// connection's own task, which polls its writer next (see [`WriterWake`]).
    pub(crate) fn send_control(&self, link_id: u64, packet: Packet) {
        self.state.lock().link.push_control(link_id, packet);
    }

    /// Records a subscription unless it would be a new one past `max`
    /// (replacing one with the same filter is always allowed). False when
    /// refused.
    pub(crate) fn try_subscribe(
        &self,
        filter: &TopicFilter,
        subscription: Subscription,
        max: usize,
    ) -> bool {
        let mut st = self.state.lock();
        let d = &mut st.durable;
        if d.subscription_count() >= max && !d.has_subscription(filter) {
            return false;
        }
        d.subscribe(filter.clone(), subscription);
        true
    }

    /// Forgets a subscription and stops sending its retained messages.
    pub(crate) fn unsubscribe(&self, filter: &TopicFilter) {
        let mut st = self.state.lock();
        st.durable.unsubscribe(filter);
        st.durable.outbox.stop_retained(filter);
    }

    /// How many subscriptions the session has.
    pub(crate) fn subscription_count(&self) -> usize {
        self.state.lock().durable.subscription_count()
    }

    /// Queues the SUBACK for connection `link_id` and starts the retained
    /// messages of the new subscriptions, in one step: the writer cannot
    /// see the cursors without the SUBACK, which it sends first. The
    /// cursors stay with the session even if the connection is gone: a
    /// resumed session goes on with them. Called by connection `link_id`'s own task, which
    /// polls its writer next (see [`WriterWake`]).
    pub(crate) fn subscribed(&self, link_id: u64, ack: Packet, cursors: Vec<RetainedCursor>) {
        let mut st = self.state.lock();
        for cursor in cursors {
            st.durable.outbox.start_retained(cursor);
        }
        st.link.push_control(link_id, ack);
    }

    /// Messages waiting to be sent, plus those in flight.
    pub(crate) fn queued(&self) -> usize {
        self.state.lock().durable.outbox.queued()
    }

    /// Messages dropped from this session's queue so far.
    #[cfg(test)]
    pub(crate) fn dropped(&self) -> u64 {
        self.state.lock().durable.outbox.dropped()
    }

    /// Holds the session's lock until the guard drops: for tests that need
    /// a publisher to block on this session.
    #[cfg(test)]
    pub(crate) fn hold_lock(&self) -> impl Sized + '_ {
        self.state.lock()
    }
}

#[cfg(test)]
mod tests;
