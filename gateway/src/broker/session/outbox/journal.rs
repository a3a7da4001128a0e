//! What the store learns of an outbox, and what it gives back: the events of a persistent
//! session's stored QoS 1/2 messages ([`Event`]), which the session hands to the store while
//! it still holds its lock, and the messages a store kept, put back at start.

use std::num::NonZeroU16;

use super::{Active, Inflight};
use crate::broker::message::Outgoing;

/// A change to a stored message of the outbox; see [`Active::journal`].
#[derive(Debug)]
pub(crate) enum Event {
    /// Queued, to be written with its message; `online`: for a connected receiver, which
    /// may acknowledge it before the write is committed (see `Persist::journal`).
    Queued { out: Outgoing, online: bool },
    /// QoS 2: sent with this packet id, not yet acknowledged (QoS 1 is not recorded as sent;
    /// see [`Outbox::send`]).
    Sent(Outgoing, NonZeroU16),
    /// QoS 2: PUBREC came, PUBREL went.
    Released(Outgoing, NonZeroU16),
    /// Delivered, dropped or abandoned: the store forgets it.
    Done(Outgoing),
}

impl Active {
    /// Records `event` in the journal if the session persists and the store
    /// keeps `out`.
    // Inline: on every delivery and drop, where most sessions have no journal.
    #[inline]
    pub(super) fn record(&mut self, event: impl FnOnce() -> Event, out: &Outgoing) {
        if let (Some(journal), Some(_)) = (&mut self.journal, out.seq) {
            journal.push(event());
        }
    }

    /// Starts (or stops) recording what the store must learn; the keys of
    /// new messages continue after `next_seq`.
    pub(crate) fn set_journaled(&mut self, on: bool) {
        if on != self.is_journaled() {
            self.journal = on.then(Box::default);
        }
    }

    /// Keys of messages stored from now on follow `out`'s.
    pub(super) fn note_seq(&mut self, out: &Outgoing) {
        if let Some(seq) = out.seq {
            self.next_seq = self.next_seq.max(seq + 1);
        }
    }

    /// Whether the store is told of this outbox's messages.
    pub(crate) fn is_journaled(&self) -> bool {
        self.journal.is_some()
    }

    /// The events recorded since the last call.
    pub(crate) fn take_journal(&mut self) -> Vec<Event> {
        self.journal
            .as_mut()
            .map(|journal| std::mem::take(&mut **journal))
            .unwrap_or_default()
    }

    /// Every stored message, done with: the session ended.
    pub(crate) fn release_all(&mut self) -> Vec<Event> {
        let mut events: Vec<Event> = self.take_journal();
        let stored = self
            .queue
            .drain(..)
            .chain(self.inflight.drain(..).map(|i| i.out))
            .filter(|o| o.seq.is_some());
        events.extend(stored.map(Event::Done));
        events
    }

    /// Puts back a message a store kept queued, after those put back before.
    pub(crate) fn recover_queued(&mut self, out: Outgoing) {
        self.note_seq(&out);
        self.account(&out, true);
        self.queue.push_back(out);
    }

    /// Puts back a message a store kept in flight, after those put back
    /// before: the order they are resent in.
    pub(crate) fn recover_inflight(&mut self, inflight: Inflight) {
        self.note_seq(&inflight.out);
        self.next_packet_id = inflight.packet_id.get();
        self.mix_ids();
        self.inflight.push_back(inflight);
    }
}
