//! A session moving between cluster nodes: the old node takes it out whole
//! ([`Session::hand_over`]), the new one merges what it brings into the session it opened
//! for the move ([`Session::adopt`]).

use std::num::NonZeroU16;

use tokio::time::Instant;

use super::{Discarded, Inflight, Session};
use crate::broker::message::Outgoing;
use crate::broker::persist::{Qos2Change, RecordParts};
use crate::store::Forwarded;

/// What a session takes to another node.
#[derive(Debug)]
pub(crate) struct Handed {
    pub(crate) parts: RecordParts,
    /// When its client went away, if it is away.
    pub(crate) disconnected_at: Option<Instant>,
    /// Sent and not fully acknowledged, in the order sent.
    pub(crate) inflight: Vec<Inflight>,
    /// Not sent yet, oldest first.
    pub(crate) queued: Vec<Outgoing>,
    /// Incoming QoS 2 exchanges awaiting PUBREL, with how their messages were forwarded.
    pub(crate) incoming_qos2: Vec<(NonZeroU16, Option<Forwarded>)>,
}

impl Session {
    /// Takes the session out for another node: closes its connection (Session taken over),
    /// ends it here without its will (which moves with it) and returns what it held. `None`
    /// if it has ended already.
    pub(crate) fn hand_over(&self) -> Option<(Handed, Discarded)> {
        let mut st = self.state.lock();
        if st.discarded {
            return None;
        }
        let handed = Handed {
            parts: st.durable.record_parts(),
            disconnected_at: st.durable.disconnected_at(),
            inflight: st.durable.outbox.inflight().iter().cloned().collect(),
            queued: st.durable.outbox.queue().iter().cloned().collect(),
            incoming_qos2: st.durable.incoming_qos2_open(),
        };
        let mut discarded = self.discard_locked(&mut st);
        discarded.will = None;
        Some((handed, discarded))
    }

    /// What the session's record says now, and when its client went away: what a node
    /// preparing to take it over needs to know first. `None` if it has ended.
    pub(crate) fn describe(&self) -> Option<(RecordParts, Option<Instant>)> {
        let st = self.state.lock();
        (!st.discarded).then(|| (st.durable.record_parts(), st.durable.disconnected_at()))
    }

    /// Merges what the old node handed over (see [`super::outbox`]'s `adopt`): its messages
    /// first, then those queued here after stream sequence `after`.
    pub(crate) fn adopt(
        &self,
        inflight: Vec<Inflight>,
        queued: Vec<Outgoing>,
        incoming_qos2: Vec<(NonZeroU16, Option<Forwarded>)>,
        after: u64,
    ) {
        let mut st = self.state.lock();
        if st.discarded {
            return;
        }
        st.durable.outbox.adopt(inflight, queued, after);
        // This node's consumer may be behind the old node's: what it still brings from before
        // the marker, the old node had.
        st.stream_floor = st.stream_floor.max(after);
        for (id, forwarded) in incoming_qos2 {
            st.durable.incoming_qos2_begin(id, None, forwarded.clone());
            self.record_incoming_qos2(&st, id, Qos2Change::Opened(forwarded));
        }
        self.flush_journal(&mut st);
    }
}
