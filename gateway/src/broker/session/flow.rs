//! Messages through a session: incoming QoS 2 exchanges, the batches its connection's writer
//! takes, and the acknowledgements that complete outgoing deliveries. Each change is handed
//! to the store (for a persistent session) under the session's lock.

use std::num::NonZeroU16;

use bytes::BytesMut;
use tokio::time::Instant;

use super::{Batch, Qos2Received, Readable, Session, SessionState, SharedRetained};
use crate::broker::persist::Qos2Change;
use crate::store::Forwarded;

impl Session {
    /// An incoming QoS 2 PUBLISH with packet id `id`: opens its exchange, its
    /// message `forwarded` so to the other nodes (cluster mode), unless it is a
    /// resend, or `limit` exchanges are open already.
    pub(crate) fn incoming_qos2_begin(
        &self,
        id: NonZeroU16,
        limit: Option<usize>,
        forwarded: Option<Forwarded>,
    ) -> Qos2Received {
        let mut st = self.state.lock();
        let received = st.durable.incoming_qos2_begin(id, limit, forwarded.clone());
        if received == Qos2Received::New {
            self.record_incoming_qos2(&st, id, Qos2Change::Opened(forwarded));
        }
        received
    }

    /// PUBREL: the incoming QoS 2 exchange `id` is over. False if none was
    /// open.
    pub(crate) fn incoming_qos2_release(&self, id: NonZeroU16) -> bool {
        let mut st = self.state.lock();
        let known = st.durable.incoming_qos2_end(id);
        if known {
            self.record_incoming_qos2(&st, id, Qos2Change::Closed);
        }
        known
    }

    /// The incoming QoS 2 exchange `id` ends with an error PUBREC: no
    /// PUBREL will come.
    pub(crate) fn incoming_qos2_abort(&self, id: NonZeroU16) {
        let mut st = self.state.lock();
        if st.durable.incoming_qos2_end(id) {
            self.record_incoming_qos2(&st, id, Qos2Change::Closed);
        }
    }

    /// Takes the next batch for connection `link_id`; see
    /// [`SessionState::take_batch`]. Lock order: this session, then the
    /// retained store.
    #[cfg(test)]
    pub(crate) fn take_batch(
        &self,
        link_id: u64,
        max_messages: usize,
        now: Instant,
        retained: &SharedRetained,
    ) -> Batch {
        let spare = BytesMut::new();
        self.take_batch_readable(link_id, max_messages, now, (retained, &|_| true), spare)
    }

    /// [`Session::take_batch`], leaving out the retained messages whose
    /// topics the subscriber may not read. `spare` is the writer's buffer for the
    /// deliveries their publishers encode next (see `outbox::direct`), empty; the batch
    /// gives it back if it does not keep it.
    pub(crate) fn take_batch_readable(
        &self,
        link_id: u64,
        max_messages: usize,
        now: Instant,
        retained: (&SharedRetained, Readable<'_>),
        spare: BytesMut,
    ) -> Batch {
        let mut st = self.state.lock();
        let mut batch = st.take_batch(link_id, max_messages, now, retained, spare);
        // Progress is a message taken: a writer woken with its window full takes nothing.
        if !batch.messages.is_empty() || batch.encoded.messages > 0 {
            let backlog = st.durable.outbox.backlog();
            st.backlog.taken(backlog);
        }
        batch.wait_for_store = self.flush_journal(&mut st);
        batch
    }

    /// PUBACK: a QoS 1 delivery is complete. False if none was in flight.
    #[cfg(test)]
    pub(crate) fn puback(&self, id: NonZeroU16) -> bool {
        let mut st = self.state.lock();
        let known = st.durable.outbox.puback(id);
        self.flush_journal(&mut st);
        known
    }

    /// PUBACKs from connection `link_id`'s client, in the order received: each completes a
    /// QoS 1 delivery in flight (one not in flight is ignored), and the room they make wakes
    /// the writer. One lock for a whole run of them: a client acknowledges every message, in
    /// runs as long as the batches it was sent.
    pub(crate) fn pubacks(&self, link_id: u64, ids: &[NonZeroU16]) {
        let mut st = self.state.lock();
        let mut known = false;
        for &id in ids {
            known |= st.durable.outbox.puback(id);
        }
        self.flush_journal(&mut st);
        let other = if known {
            st.link.wake_from(link_id)
        } else {
            None
        };
        drop(st);
        if let Some(wake) = other {
            wake.notify();
        }
    }

    /// PUBREC: a QoS 2 message was received. Returns whether to answer
    /// PUBREL; an error reason ends the exchange [MQTT-4.3.3-4].
    pub(crate) fn pubrec(&self, id: NonZeroU16, failed: bool) -> bool {
        let mut st = self.state.lock();
        let release = st.durable.outbox.pubrec(id, failed);
        self.flush_journal(&mut st);
        release
    }

    /// PUBCOMP: a QoS 2 delivery is complete. False if none was released.
    pub(crate) fn pubcomp(&self, id: NonZeroU16) -> bool {
        let mut st = self.state.lock();
        let known = st.durable.outbox.pubcomp(id);
        self.flush_journal(&mut st);
        known
    }

    /// Forgets an in-flight message that could not be sent (too large for
    /// the client), as if it had been acknowledged [MQTT-3.1.2-25].
    pub(crate) fn abandon(&self, id: NonZeroU16) {
        let mut st = self.state.lock();
        st.durable.outbox.abandon(id);
        self.flush_journal(&mut st);
    }
}

impl SessionState {
    /// Takes the next batch for connection `link_id`: control packets, then
    /// (on a resumed session) every in-flight message again, then the deliveries encoded
    /// by their publishers, then new messages, queued or retained, as far as the in-flight
    /// window and the batch size allow.
    fn take_batch(
        &mut self,
        link_id: u64,
        max_messages: usize,
        now: Instant,
        retained: (&SharedRetained, Readable<'_>),
        spare: BytesMut,
    ) -> Batch {
        let mut batch = Batch::default();
        let Some(conn) = self.link.current(link_id) else {
            return batch;
        };
        batch.control = std::mem::take(&mut conn.control);
        let outbox = &mut self.durable.outbox;
        if std::mem::take(&mut conn.resend) {
            outbox.resend(&mut batch);
        }
        outbox.take_encoded(&mut batch, spare);
        let window = usize::from(conn.window);
        outbox.fill(&mut batch, window, max_messages, now, retained);
        batch
    }
}
