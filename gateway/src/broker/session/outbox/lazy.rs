//! A session's outbox as one pointer until the session is first sent something.
//!
//! Every session, idle ones included, has an outbox, and its empty queue, window and cursors
//! would be 168 bytes of each (what an idle connection holds is in `bench/PROFILE.md`).

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};

use aviary_protocol::TopicFilter;
use bytes::BytesMut;
use tokio::time::Instant;

use super::{Active, Batch, Encoded, Event, Readable, SharedRetained};

/// The outgoing side of a session; see the parent module's documentation.
///
/// One pointer until the session first has something to send. The methods read the state
/// through [`Deref`], which shows a session with none as [`EMPTY`]; the first
/// change through [`DerefMut`] allocates it, and it stays, so a session that is sent messages
/// allocates it once. What an idle connection's writer does (take its journal, fill a batch
/// from nothing) only reads.
#[derive(Debug, Default)]
pub(crate) struct Outbox(Option<Box<Active>>);

impl Deref for Outbox {
    type Target = Active;

    #[inline]
    fn deref(&self) -> &Active {
        self.0.as_deref().unwrap_or(&EMPTY)
    }
}

impl DerefMut for Outbox {
    #[inline]
    fn deref_mut(&mut self) -> &mut Active {
        self.0.get_or_insert_with(Box::default)
    }
}

/// What an idle connection's writer and a session's end call: with no state there is nothing to
/// do, and no state to allocate for it.
impl Outbox {
    /// Whether the state is allocated (tests of what an idle session holds).
    #[cfg(test)]
    pub(crate) fn is_allocated(&self) -> bool {
        self.0.is_some()
    }

    /// See [`Active::fill`].
    #[inline]
    pub(crate) fn fill(
        &mut self,
        batch: &mut Batch,
        window: usize,
        max: usize,
        now: Instant,
        retained: (&SharedRetained, Readable<'_>),
    ) {
        if let Some(active) = &mut self.0 {
            active.fill(batch, window, max, now, retained);
        }
    }

    /// See [`Active::take_encoded`].
    pub(crate) fn take_encoded(&mut self, batch: &mut Batch, spare: BytesMut) {
        match &mut self.0 {
            Some(active) => active.take_encoded(batch, spare),
            None => batch.encoded.bytes = Some(spare),
        }
    }

    /// See [`Active::drop_encoded`].
    pub(crate) fn drop_encoded(&mut self) {
        if let Some(active) = &mut self.0 {
            active.drop_encoded();
        }
    }

    /// See [`Active::stop_retained`].
    pub(crate) fn stop_retained(&mut self, filter: &TopicFilter) {
        if let Some(active) = &mut self.0 {
            active.stop_retained(filter);
        }
    }

    /// See [`Active::take_journal`].
    pub(crate) fn take_journal(&mut self) -> Vec<Event> {
        self.0
            .as_mut()
            .map(|active| active.take_journal())
            .unwrap_or_default()
    }

    /// See [`Active::release_all`].
    pub(crate) fn release_all(&mut self) -> Vec<Event> {
        self.0
            .as_mut()
            .map(|active| active.release_all())
            .unwrap_or_default()
    }

    /// See [`Active::set_journaled`].
    pub(crate) fn set_journaled(&mut self, on: bool) {
        if on || self.0.is_some() {
            self.deref_mut().set_journaled(on);
        }
    }
}

/// What an outbox without state reads as; the same as `Active::default()`.
static EMPTY: Active = Active {
    encoded: Encoded::new(),
    queue: VecDeque::new(),
    queued_bytes: 0,
    queued_qos0: 0,
    inflight: VecDeque::new(),
    next_packet_id: 0,
    mixed_ids: false,
    cursors: Vec::new(),
    dropped: 0,
    journal: None,
    next_seq: 0,
};
