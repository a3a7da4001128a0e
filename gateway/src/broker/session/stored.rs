//! A persistent session telling the store what changed: the outbox records events of its
//! stored messages ([`super::outbox::Event`]) and these methods hand them to the store while the
//! session's lock is still held, so the store sees one session's changes in the order they
//! happened (an acknowledgement can never overtake the queuing it acknowledges).

use std::num::NonZeroU16;

use super::{Session, SessionState};
use crate::broker::persist::Qos2Change;
use crate::store::Ticket;

impl Session {
    /// Whether this session's changes go to the store: it has one, and the session outlives
    /// its connection (expiry above zero).
    pub(super) fn set_journaled(&self, st: &mut SessionState) {
        let on = self.persist.is_some() && st.durable.expiry_secs() > 0;
        st.durable.outbox.set_journaled(on);
    }

    /// Hands the outbox's recorded events to the store. True if QoS 2 messages were recorded
    /// as sent, which must be committed before they go out.
    pub(super) fn flush_journal(&self, st: &mut SessionState) -> bool {
        let Some(persist) = &self.persist else {
            return false;
        };
        let events = st.durable.outbox.take_journal();
        !events.is_empty() && persist.journal(&self.client_id, events)
    }

    /// The session ends: its stored messages are done with (their records go with the last
    /// session that held them).
    pub(super) fn release_stored(&self, st: &mut SessionState) {
        if let Some(persist) = &self.persist {
            let events = st.durable.outbox.release_all();
            if !events.is_empty() {
                persist.journal(&self.client_id, events);
            }
        }
    }

    /// An incoming QoS 2 exchange opened or closed, for a persistent session: kept so that
    /// a PUBLISH resent after a restart is known for a duplicate and not delivered twice.
    pub(super) fn record_incoming_qos2(
        &self,
        st: &SessionState,
        id: NonZeroU16,
        change: Qos2Change,
    ) {
        if let (Some(persist), true) = (&self.persist, st.durable.outbox.is_journaled()) {
            persist.incoming_qos2(&self.client_id, id, change);
        }
    }

    /// Completes once the store holds what this session handed it so far; `None` if the
    /// session is not persistent.
    pub(crate) fn stored(&self) -> Option<Ticket> {
        let journaled = self.state.lock().durable.outbox.is_journaled();
        let persist = self.persist.as_ref().filter(|_| journaled)?;
        persist.barrier().ok()
    }
}
