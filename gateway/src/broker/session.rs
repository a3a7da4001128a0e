//! Per-client session state (MQTT 5 section 4.1): subscriptions, the queue
//! of messages waiting to be sent, QoS 1/2 messages in flight, QoS 2
//! publications received but not yet released, and the link to the live
//! connection if there is one.
//!
//! Each session has its own lock, held only for short bookkeeping: a
//! publisher appends to a subscriber's queue and wakes its writer; the
//! writer takes a batch out and encodes it after releasing the lock. So a
//! slow subscriber only ever fills its own bounded queue.

use std::collections::{HashMap, HashSet, VecDeque};
use std::num::NonZeroU16;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use aviary_protocol::{Ack, ByteString, Packet, QoS, ReasonCode, TopicFilter};
use parking_lot::Mutex;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use super::message::{Message, Outgoing};
use super::router::{ClientKey, Subscription};

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
            resend: !st.inflight.is_empty(),
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
        let result = st.enqueue(out, limits);
        let wake = st.link.as_ref().map(|l| l.wake.clone());
        drop(st);
        if let Some(wake) = wake {
            wake.notify_one();
        }
        result
    }
}

/// Bounds of a session's queue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueLimits {
    pub(crate) max_messages: usize,
    pub(crate) max_bytes: usize,
    pub(crate) qos0_offline: bool,
}

/// What became of an enqueued message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enqueued {
    /// Queued; `evicted` older messages were dropped to make room.
    Queued { evicted: usize },
    /// A QoS 0 message for an offline session, not queued by configuration.
    DroppedOffline,
    /// Larger than the whole queue's byte limit.
    DroppedTooLarge,
}

/// A QoS 1/2 message sent and not yet fully acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct Inflight {
    pub(crate) packet_id: NonZeroU16,
    pub(crate) out: Outgoing,
    /// QoS 2: PUBREC received, PUBREL sent, waiting for PUBCOMP.
    pub(crate) released: bool,
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
    queue: VecDeque<Outgoing>,
    queued_bytes: usize,
    queued_qos0: usize,
    pub(crate) inflight: VecDeque<Inflight>,
    next_packet_id: u16,
    /// QoS 2 packet ids received and answered with PUBREC, awaiting PUBREL.
    pub(crate) incoming_qos2: HashSet<NonZeroU16>,
    pub(crate) link: Option<Link>,
    /// Session Expiry Interval in force once the connection ends.
    pub(crate) expiry_secs: u32,
    /// Counts connections; timers compare it to see if the client came back.
    pub(crate) generation: u64,
    /// A will waiting for its Will Delay Interval.
    pub(crate) pending_will: Option<Arc<Message>>,
    /// Messages dropped from this session's queue, for the log.
    pub(crate) dropped: u64,
    /// The session has ended; a connection still holding it must not
    /// treat it as resumable.
    pub(crate) discarded: bool,
}

/// What the writer sends next, taken out of the session under its lock.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) control: Vec<Packet>,
    /// Messages with their packet id (None for QoS 0) and DUP flag.
    pub(crate) messages: Vec<(Outgoing, Option<NonZeroU16>, bool)>,
    /// Messages dropped because they expired while queued.
    pub(crate) expired: usize,
    /// More is waiting: call again after writing this batch.
    pub(crate) more: bool,
}

impl SessionState {
    fn enqueue(&mut self, out: Outgoing, limits: &QueueLimits) -> Enqueued {
        if self.link.is_none() && out.qos == QoS::AtMostOnce && !limits.qos0_offline {
            return Enqueued::DroppedOffline;
        }
        let size = out.msg.size();
        if size > limits.max_bytes {
            return Enqueued::DroppedTooLarge;
        }
        let mut evicted = 0;
        while self.queue.len() >= limits.max_messages || self.queued_bytes + size > limits.max_bytes
        {
            // Make room: the oldest QoS 0 message goes first, as it carries
            // no delivery promise; otherwise the oldest message.
            let idx = if self.queued_qos0 > 0 {
                self.queue
                    .iter()
                    .position(|o| o.qos == QoS::AtMostOnce)
                    .unwrap_or(0)
            } else {
                0
            };
            if let Some(old) = self.queue.remove(idx) {
                self.account(&old, false);
                evicted += 1;
            }
        }
        self.dropped += evicted as u64;
        self.account(&out, true);
        self.queue.push_back(out);
        Enqueued::Queued { evicted }
    }

    fn account(&mut self, out: &Outgoing, added: bool) {
        let size = out.msg.size();
        let qos0 = usize::from(out.qos == QoS::AtMostOnce);
        if added {
            self.queued_bytes += size;
            self.queued_qos0 += qos0;
        } else {
            self.queued_bytes -= size;
            self.queued_qos0 -= qos0;
        }
    }

    /// Messages waiting to be sent, plus those in flight.
    pub(crate) fn queued(&self) -> usize {
        self.queue.len() + self.inflight.len()
    }

    fn alloc_packet_id(&mut self) -> NonZeroU16 {
        loop {
            self.next_packet_id = self.next_packet_id.wrapping_add(1);
            if let Some(id) = NonZeroU16::new(self.next_packet_id) {
                if !self.inflight.iter().any(|i| i.packet_id == id) {
                    return id;
                }
            }
        }
    }

    /// Takes the next batch for connection `link_id`: control packets, then
    /// (on a resumed session) every in-flight message again, then new
    /// messages as far as the in-flight window and the batch size allow.
    pub(crate) fn take_batch(&mut self, link_id: u64, max_messages: usize, now: Instant) -> Batch {
        let mut batch = Batch::default();
        let Some(link) = self.link.as_mut().filter(|l| l.id == link_id) else {
            return batch;
        };
        batch.control = std::mem::take(&mut link.control);
        let window = link.window;
        if std::mem::take(&mut link.resend) {
            // Resend in the original order, with DUP [MQTT-4.4.0-1].
            for i in &self.inflight {
                if i.released {
                    batch.control.push(Packet::PubRel(Ack::new(i.packet_id)));
                } else {
                    batch
                        .messages
                        .push((i.out.clone(), Some(i.packet_id), true));
                }
            }
        }
        while batch.messages.len() < max_messages {
            let Some(front) = self.queue.front() else {
                break;
            };
            if front.qos != QoS::AtMostOnce && self.inflight.len() >= window {
                break;
            }
            let out = self.queue.pop_front().expect("front exists");
            self.account(&out, false);
            if out.msg.is_expired(now) {
                batch.expired += 1;
                continue;
            }
            if out.qos == QoS::AtMostOnce {
                batch.messages.push((out, None, false));
            } else {
                let packet_id = self.alloc_packet_id();
                self.inflight.push_back(Inflight {
                    packet_id,
                    out: out.clone(),
                    released: false,
                });
                batch.messages.push((out, Some(packet_id), false));
            }
        }
        batch.more = batch.messages.len() >= max_messages;
        batch
    }

    fn inflight_position(&self, id: NonZeroU16, released: bool) -> Option<usize> {
        self.inflight
            .iter()
            .position(|i| i.packet_id == id && i.released == released)
    }

    /// PUBACK: a QoS 1 delivery is complete.
    pub(crate) fn puback(&mut self, id: NonZeroU16) -> bool {
        match self.inflight_position(id, false) {
            Some(pos) if self.inflight[pos].out.qos == QoS::AtLeastOnce => {
                self.inflight.remove(pos);
                true
            }
            _ => false,
        }
    }

    /// PUBREC: a QoS 2 message was received. Returns whether to answer
    /// PUBREL; an error reason ends the exchange [MQTT-4.3.3-4].
    pub(crate) fn pubrec(&mut self, id: NonZeroU16, failed: bool) -> bool {
        let Some(pos) = self
            .inflight
            .iter()
            .position(|i| i.packet_id == id && i.out.qos == QoS::ExactlyOnce)
        else {
            return false;
        };
        if failed {
            self.inflight.remove(pos);
            return false;
        }
        self.inflight[pos].released = true;
        true
    }

    /// PUBCOMP: a QoS 2 delivery is complete.
    pub(crate) fn pubcomp(&mut self, id: NonZeroU16) -> bool {
        match self.inflight_position(id, true) {
            Some(pos) => {
                self.inflight.remove(pos);
                true
            }
            None => false,
        }
    }

    /// Forgets an in-flight message that could not be sent (too large for
    /// the client), as if it had been acknowledged [MQTT-3.1.2-25].
    pub(crate) fn abandon(&mut self, id: NonZeroU16) {
        self.inflight.retain(|i| i.packet_id != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aviary_protocol::MessageProperties;
    use bytes::Bytes;

    fn out(qos: QoS, payload: &'static [u8]) -> Outgoing {
        Outgoing {
            msg: Arc::new(Message {
                topic: ByteString::from_static("t"),
                payload: Bytes::from_static(payload),
                qos,
                retain: false,
                properties: MessageProperties::default(),
                expires_at: None,
            }),
            qos,
            retain: false,
            subscription_ids: Vec::new(),
        }
    }

    const LIMITS: QueueLimits = QueueLimits {
        max_messages: 3,
        max_bytes: 1000,
        qos0_offline: false,
    };

    fn online() -> Session {
        let s = Session::new(1, ByteString::from_static("c"));
        let _kick = s.attach(7, 2);
        s
    }

    #[test]
    fn offline_qos0_is_not_queued_but_qos1_is() {
        let s = Session::new(1, ByteString::from_static("c"));
        assert_eq!(
            s.enqueue(out(QoS::AtMostOnce, b"a"), &LIMITS),
            Enqueued::DroppedOffline
        );
        assert_eq!(
            s.enqueue(out(QoS::AtLeastOnce, b"a"), &LIMITS),
            Enqueued::Queued { evicted: 0 }
        );
        assert_eq!(s.state.lock().queue.len(), 1);
    }

    #[test]
    fn full_queue_evicts_qos0_first_then_oldest() {
        let s = online();
        s.enqueue(out(QoS::AtLeastOnce, b"1"), &LIMITS);
        s.enqueue(out(QoS::AtMostOnce, b"2"), &LIMITS);
        s.enqueue(out(QoS::AtLeastOnce, b"3"), &LIMITS);
        assert_eq!(
            s.enqueue(out(QoS::AtLeastOnce, b"4"), &LIMITS),
            Enqueued::Queued { evicted: 1 }
        );
        let payloads: Vec<_> = s
            .state
            .lock()
            .queue
            .iter()
            .map(|o| o.msg.payload.clone())
            .collect();
        assert_eq!(payloads, [&b"1"[..], b"3", b"4"]);
        s.enqueue(out(QoS::AtLeastOnce, b"5"), &LIMITS);
        let st = s.state.lock();
        let payloads: Vec<_> = st.queue.iter().map(|o| o.msg.payload.clone()).collect();
        assert_eq!(payloads, [&b"3"[..], b"4", b"5"]);
        assert_eq!(st.dropped, 2);
        assert_eq!(st.queued_bytes, 6, "topic + payload of 3 messages");
    }

    #[test]
    fn window_limits_inflight_and_acks_open_it() {
        let s = online();
        for p in [b"1", b"2", b"3"] {
            s.enqueue(out(QoS::AtLeastOnce, p), &LIMITS);
        }
        let mut st = s.state.lock();
        let batch = st.take_batch(7, 100, Instant::now());
        assert_eq!(batch.messages.len(), 2, "window of 2");
        let first = batch.messages[0].1.unwrap();
        assert!(st.puback(first));
        assert!(!st.puback(first), "a second PUBACK finds nothing");
        assert_eq!(st.take_batch(7, 100, Instant::now()).messages.len(), 1);
    }

    #[test]
    fn resumed_session_resends_inflight_with_dup_and_pubrel() {
        let s = online();
        s.enqueue(out(QoS::ExactlyOnce, b"1"), &LIMITS);
        s.enqueue(out(QoS::AtLeastOnce, b"2"), &LIMITS);
        let ids: Vec<_> = {
            let mut st = s.state.lock();
            let b = st.take_batch(7, 100, Instant::now());
            b.messages.iter().map(|m| m.1.unwrap()).collect()
        };
        assert!(s.state.lock().pubrec(ids[0], false));
        assert!(s.detach(7));
        let _kick = s.attach(8, 10);
        let mut st = s.state.lock();
        let b = st.take_batch(8, 100, Instant::now());
        assert_eq!(b.control, vec![Packet::PubRel(Ack::new(ids[0]))]);
        assert_eq!(b.messages.len(), 1);
        assert_eq!(b.messages[0].1, Some(ids[1]));
        assert!(b.messages[0].2, "DUP set on resend");
        assert!(st.pubcomp(ids[0]));
    }

    #[test]
    fn takeover_kicks_the_old_link() {
        let s = Session::new(1, ByteString::from_static("c"));
        let (mut old, _) = s.attach(1, 1);
        let _new = s.attach(2, 1);
        assert_eq!(old.try_recv(), Ok(ReasonCode::SESSION_TAKEN_OVER));
        assert!(
            !s.detach(1),
            "the old connection no longer owns the session"
        );
        assert!(s.is_online());
    }

    #[test]
    fn packet_ids_skip_those_in_flight() {
        let mut st = SessionState {
            next_packet_id: u16::MAX - 1,
            ..Default::default()
        };
        let a = st.alloc_packet_id();
        assert_eq!(a.get(), u16::MAX);
        let b = st.alloc_packet_id();
        assert_eq!(b.get(), 1, "wraps past zero");
    }
}
