//! Per-client session state (MQTT 5 section 4.1): subscriptions, what is
//! to be sent (the [`outbox`]: queue, retained messages still to pull, QoS
//! 1/2 messages in flight), QoS 2 publications received but not yet
//! released, and the link to the live connection if there is one.
//!
//! Each session has its own lock, held only for short bookkeeping: a
//! publisher appends to a subscriber's queue and wakes its writer; the
//! writer takes a batch out and encodes it after releasing the lock. So a
//! slow subscriber only ever fills its own bounded queue.

mod cursor;
mod outbox;

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU16;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use aviary_protocol::{ByteString, Packet, ReasonCode, TopicFilter};
use parking_lot::Mutex;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use super::message::{Message, Outgoing};
use super::router::{ClientKey, Subscription};
pub(crate) use cursor::{RetainedCursor, SharedRetained};
use outbox::Outbox;
pub(crate) use outbox::{Batch, Enqueued, QueueLimits};

/// A session, shared by the registry, the router's deliveries and the
/// connection serving it.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) key: ClientKey,
    pub(crate) client_id: ByteString,
    /// Mirrors `state.link.is_some()` so routing can read it without locking.
    online: AtomicBool,
    pub(crate) state: Mutex<SessionState>,
}

impl Session {
    pub(crate) fn new(key: ClientKey, client_id: ByteString) -> Self {
        Self {
            key,
            client_id,
            online: AtomicBool::new(false),
            state: Mutex::new(SessionState::default()),
        }
    }

    pub(crate) fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    /// Attaches a new connection, kicking out the previous one (session
    /// takeover). Returns what closes the new link (a takeover's reason)
    /// and what wakes its writer. Each link has its own wake-up, so a
    /// writer on its way out cannot swallow one meant for its successor.
    pub(crate) fn attach(
        &self,
        link_id: u64,
        window: usize,
    ) -> (oneshot::Receiver<ReasonCode>, Arc<Notify>) {
        let (tx, rx) = oneshot::channel();
        let wake = Arc::new(Notify::new());
        let mut st = self.state.lock();
        if let Some(mut old) = st.link.take() {
            if let Some(kick) = old.kick.take() {
                let _ = kick.send(ReasonCode::SESSION_TAKEN_OVER);
            }
        }
        st.link = Some(Link {
            id: link_id,
            control: Vec::new(),
            kick: Some(tx),
            resend: st.outbox.has_inflight(),
            window: window.max(1),
            wake: wake.clone(),
        });
        st.generation += 1;
        self.online.store(true, Ordering::Release);
        drop(st);
        wake.notify_one();
        (rx, wake)
    }

    /// Wakes the current connection's writer, if there is one.
    pub(crate) fn wake(&self) {
        let wake = self.state.lock().link.as_ref().map(|l| l.wake.clone());
        if let Some(wake) = wake {
            wake.notify_one();
        }
    }

    /// Detaches the connection `link_id` if it is still the current one.
    /// Returns false if another connection has taken the session over.
    pub(crate) fn detach(&self, link_id: u64) -> bool {
        let mut st = self.state.lock();
        if st.link.as_ref().is_some_and(|l| l.id == link_id) {
            st.link = None;
            self.online.store(false, Ordering::Release);
            true
        } else {
            false
        }
    }

    /// Ends the session: closes its connection (if any) and returns its
    /// subscriptions and any will still waiting for its delay.
    pub(crate) fn discard(&self) -> (Vec<TopicFilter>, Option<Arc<Message>>) {
        let mut st = self.state.lock();
        st.discarded = true;
        if let Some(mut link) = st.link.take() {
            if let Some(kick) = link.kick.take() {
                let _ = kick.send(ReasonCode::SESSION_TAKEN_OVER);
            }
        }
        self.online.store(false, Ordering::Release);
        st.outbox.clear_retained();
        let filters = st.subscriptions.drain().map(|(f, _)| f).collect();
        (filters, st.pending_will.take())
    }

    /// Queues a control packet (an acknowledgement) for connection `link_id`.
    pub(crate) fn send_control(&self, link_id: u64, packet: Packet) {
        let mut st = self.state.lock();
        if let Some(link) = st.link.as_mut().filter(|l| l.id == link_id) {
            link.control.push(packet);
            let wake = link.wake.clone();
            drop(st);
            wake.notify_one();
        }
    }

    /// Queues a message for delivery, within the queue limits.
    pub(crate) fn enqueue(&self, out: Outgoing, limits: &QueueLimits) -> Enqueued {
        let mut st = self.state.lock();
        let online = st.link.is_some();
        let result = st.outbox.enqueue(out, limits, online);
        let wake = st.link.as_ref().map(|l| l.wake.clone());
        drop(st);
        if let Some(wake) = wake {
            wake.notify_one();
        }
        result
    }

    /// Records a subscription (replacing one with the same filter).
    pub(crate) fn add_subscription(&self, filter: TopicFilter, subscription: Subscription) {
        self.state.lock().subscriptions.insert(filter, subscription);
    }

    /// Forgets a subscription and stops sending its retained messages.
    pub(crate) fn remove_subscription(&self, filter: &TopicFilter) {
        let mut st = self.state.lock();
        st.subscriptions.remove(filter);
        st.outbox.stop_retained(filter);
    }

    /// Queues the SUBACK for connection `link_id` and starts the retained
    /// messages of the new subscriptions, in one step: the writer cannot
    /// see the cursors without the SUBACK, which it sends first. The
    /// cursors stay with the session even if the connection is gone: a
    /// resumed session goes on with them.
    pub(crate) fn subscribed(&self, link_id: u64, ack: Packet, cursors: Vec<RetainedCursor>) {
        let mut st = self.state.lock();
        for cursor in cursors {
            st.outbox.start_retained(cursor);
        }
        if let Some(link) = st.link.as_mut().filter(|l| l.id == link_id) {
            link.control.push(ack);
            let wake = link.wake.clone();
            drop(st);
            wake.notify_one();
        }
    }

    /// Takes the next batch for connection `link_id`; see
    /// [`SessionState::take_batch`]. Lock order: this session, then the
    /// retained store.
    pub(crate) fn take_batch(
        &self,
        link_id: u64,
        max_messages: usize,
        now: Instant,
        retained: &SharedRetained,
    ) -> Batch {
        let mut st = self.state.lock();
        st.take_batch(link_id, max_messages, now, retained)
    }

    /// PUBACK: a QoS 1 delivery is complete. False if none was in flight.
    pub(crate) fn puback(&self, id: NonZeroU16) -> bool {
        self.state.lock().outbox.puback(id)
    }

    /// PUBREC: a QoS 2 message was received. Returns whether to answer
    /// PUBREL; an error reason ends the exchange [MQTT-4.3.3-4].
    pub(crate) fn pubrec(&self, id: NonZeroU16, failed: bool) -> bool {
        self.state.lock().outbox.pubrec(id, failed)
    }

    /// PUBCOMP: a QoS 2 delivery is complete. False if none was released.
    pub(crate) fn pubcomp(&self, id: NonZeroU16) -> bool {
        self.state.lock().outbox.pubcomp(id)
    }

    /// Forgets an in-flight message that could not be sent (too large for
    /// the client), as if it had been acknowledged [MQTT-3.1.2-25].
    pub(crate) fn abandon(&self, id: NonZeroU16) {
        self.state.lock().outbox.abandon(id);
    }

    /// Messages waiting to be sent, plus those in flight.
    pub(crate) fn queued(&self) -> usize {
        self.state.lock().outbox.queued()
    }

    /// Messages dropped from this session's queue so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.state.lock().outbox.dropped()
    }
}

/// The live connection's side of the session.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) id: u64,
    /// Acknowledgements and responses to send before any new message.
    pub(crate) control: Vec<Packet>,
    /// Fires to make the connection close (takeover).
    kick: Option<oneshot::Sender<ReasonCode>>,
    /// In-flight messages must be sent again (a resumed session).
    resend: bool,
    /// How many QoS 1/2 messages may be in flight to this client.
    window: usize,
    /// Wakes this connection's writer.
    wake: Arc<Notify>,
}

/// The mutable part of a session.
#[derive(Debug, Default)]
pub(crate) struct SessionState {
    pub(crate) subscriptions: HashMap<TopicFilter, Subscription>,
    /// Messages to send and in flight.
    outbox: Outbox,
    /// QoS 2 packet ids received and answered with PUBREC, awaiting PUBREL.
    pub(crate) incoming_qos2: HashSet<NonZeroU16>,
    pub(crate) link: Option<Link>,
    /// Session Expiry Interval in force once the connection ends.
    pub(crate) expiry_secs: u32,
    /// Counts connections; timers compare it to see if the client came back.
    pub(crate) generation: u64,
    /// A will waiting for its Will Delay Interval.
    pub(crate) pending_will: Option<Arc<Message>>,
    /// The session has ended; a connection still holding it must not
    /// treat it as resumable.
    pub(crate) discarded: bool,
}

impl SessionState {
    /// Takes the next batch for connection `link_id`: control packets, then
    /// (on a resumed session) every in-flight message again, then new
    /// messages, queued or retained, as far as the in-flight window and the
    /// batch size allow.
    fn take_batch(
        &mut self,
        link_id: u64,
        max_messages: usize,
        now: Instant,
        retained: &SharedRetained,
    ) -> Batch {
        let mut batch = Batch::default();
        let Some(link) = self.link.as_mut().filter(|l| l.id == link_id) else {
            return batch;
        };
        batch.control = std::mem::take(&mut link.control);
        if std::mem::take(&mut link.resend) {
            self.outbox.resend(&mut batch);
        }
        let window = link.window;
        self.outbox
            .fill(&mut batch, window, max_messages, now, retained);
        batch
    }
}

#[cfg(test)]
mod tests;
