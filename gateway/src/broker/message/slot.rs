//! A message's place in the store, shared by the queue entries of every persistent session
//! that holds it.
//!
//! The first session to queue a message writes it inside its queue entry (`inline`): when it
//! is the only one, as it is for most messages, a delivery then writes one key and deletes it,
//! not a message record and an entry that refers to it. Any later session refers to a record
//! of the message, written with the first such reference and removed with the last: a message
//! routed to many sessions is stored at most twice, whatever their number.
//!
//! Each session sends its own writes to the store, so two sessions' writes reach the writer
//! in either order. A record that died (its last reference went) must therefore never come
//! back under the same id: if another session took the message again and wrote it, the earlier
//! session's delete could land after that write and remove it, and the second session's queue
//! entry would point at nothing after a restart. A reference taken after the last one went gets
//! a fresh id instead, so a late delete only ever removes a record nobody uses.

use aviary_protocol::ByteString;
use parking_lot::Mutex;

use crate::store::{MessageId, Ticket};

/// Where a message stands in the store. Empty until a persistent session queues it, and then
/// boxed: every message has a slot, and most never reach the store (16 bytes instead of 104
/// in each message, which put a routed message in a smaller allocation class).
#[derive(Debug, Default)]
pub(crate) struct StoreSlot(Mutex<Option<Box<Slot>>>);

#[derive(Debug, Default)]
struct Slot {
    /// The live record's id and how many queue entries refer to it.
    live: Option<(MessageId, usize)>,
    /// The queue entry carrying the message itself, while it lives: its session, its place
    /// in that session's queue, and the id the message has in it.
    inline: Option<(ByteString, u64, MessageId)>,
    /// Whether a record was ever written: the publisher's acknowledgement must then wait.
    written: bool,
    /// Read back from the store at start: its entries may have been written by an older
    /// version, and more than once.
    recovered: bool,
    /// The commit of the last write that queued the message: the publisher's acknowledgement
    /// waits for it. The store commits in order, so the last write covers those before it.
    ticket: Option<Ticket>,
}

/// A new reference: the id to put in the queue entry, and what the caller writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reference {
    pub(crate) id: MessageId,
    /// The entry carries the message itself.
    pub(crate) inline: bool,
    /// The caller writes the record under `id` (never with `inline`).
    pub(crate) write: bool,
}

impl StoreSlot {
    /// A slot for a record the store already holds, with no references yet: for recovery.
    pub(crate) fn recovered(id: MessageId) -> Self {
        Self(Mutex::new(Some(Box::new(Slot {
            live: Some((id, 0)),
            inline: None,
            written: true,
            recovered: true,
            ticket: None,
        }))))
    }

    /// A slot for a message a recovered queue entry carries: `client_id`'s at `seq`.
    pub(crate) fn recovered_inline(client_id: ByteString, seq: u64, id: MessageId) -> Self {
        Self(Mutex::new(Some(Box::new(Slot {
            live: None,
            inline: Some((client_id, seq, id)),
            written: true,
            recovered: true,
            ticket: None,
        }))))
    }

    /// Takes a reference for `client_id`'s queue entry at `seq`: the message's first goes
    /// inline; later ones refer to the record, allocating an id with `next_id` if none is live.
    pub(crate) fn reference(
        &self,
        client_id: &ByteString,
        seq: u64,
        next_id: impl FnOnce() -> MessageId,
    ) -> Reference {
        let mut slot = self.0.lock();
        let slot = slot.get_or_insert_default();
        if !slot.written {
            slot.written = true;
            let id = next_id();
            slot.inline = Some((client_id.clone(), seq, id));
            return Reference {
                id,
                inline: true,
                write: false,
            };
        }
        match &mut slot.live {
            Some((id, refs)) => {
                *refs += 1;
                Reference {
                    id: *id,
                    inline: false,
                    write: false,
                }
            }
            live @ None => {
                let id = next_id();
                *live = Some((id, 1));
                Reference {
                    id,
                    inline: false,
                    write: true,
                }
            }
        }
    }

    /// Counts a recovered entry that refers to the live record (allocates nothing).
    pub(crate) fn recovered_reference(&self) {
        if let Some((_, refs)) = self.0.lock().as_mut().and_then(|s| s.live.as_mut()) {
            *refs += 1;
        }
    }

    /// Drops `client_id`'s reference at `seq`; the record's id if that was the record's last,
    /// so the caller deletes it. An entry carrying the message takes it along.
    pub(crate) fn release(&self, client_id: &ByteString, seq: u64) -> Option<MessageId> {
        let mut slot = self.0.lock();
        let slot = slot.as_mut()?;
        if slot.carried_by(client_id, seq) {
            slot.inline = None;
            return None;
        }
        let (id, refs) = slot.live.as_mut()?;
        *refs = refs.saturating_sub(1);
        let id = *id;
        if *refs == 0 {
            slot.live = None;
            return Some(id);
        }
        None
    }

    /// The id `client_id`'s entry at `seq` holds, and whether that entry carries the message:
    /// a session holding a reference always finds its own.
    pub(crate) fn held(&self, client_id: &ByteString, seq: u64) -> Option<(MessageId, bool)> {
        let slot = self.0.lock();
        let slot = slot.as_ref()?;
        match &slot.inline {
            Some((_, _, id)) if slot.carried_by(client_id, seq) => Some((*id, true)),
            _ => slot.live.map(|(id, _)| (id, false)),
        }
    }

    /// The id of a recovered record that no queue entry took, to be deleted.
    pub(crate) fn unreferenced(&self) -> Option<MessageId> {
        match self.0.lock().as_ref()?.live {
            Some((id, 0)) => Some(id),
            _ => None,
        }
    }

    /// Whether the message was ever written to the store.
    pub(crate) fn written(&self) -> bool {
        self.0.lock().as_ref().is_some_and(|s| s.written)
    }

    /// Keeps the ticket of a write that queued the message, in place of an earlier one.
    pub(crate) fn set_ticket(&self, ticket: Ticket) {
        self.0.lock().get_or_insert_default().ticket = Some(ticket);
    }

    /// The ticket of the last write that queued the message, if one is left: see
    /// [`Slot::ticket`].
    pub(crate) fn take_ticket(&self) -> Option<Ticket> {
        self.0.lock().as_mut()?.ticket.take()
    }

    /// Whether the message was read back from the store at start.
    pub(crate) fn recovered_from_store(&self) -> bool {
        self.0.lock().as_ref().is_some_and(|s| s.recovered)
    }
}

impl Slot {
    fn carried_by(&self, client_id: &ByteString, seq: u64) -> bool {
        matches!(&self.inline, Some((c, s, _)) if *s == seq && c == client_id)
    }
}

/// A copy of a message is another message to the store: it starts with an empty slot.
impl Clone for StoreSlot {
    fn clone(&self) -> Self {
        Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> impl FnMut() -> MessageId {
        let mut next = 0;
        move || {
            next += 1;
            MessageId(next)
        }
    }

    fn c(s: &str) -> ByteString {
        ByteString::from(s)
    }

    #[test]
    fn the_first_reference_carries_the_message_and_later_ones_share_a_record() {
        let mut next = ids();
        let slot = StoreSlot::default();
        assert!(!slot.written());
        let a = slot.reference(&c("a"), 0, &mut next);
        let b = slot.reference(&c("b"), 4, &mut next);
        let d = slot.reference(&c("d"), 9, &mut next);
        assert_eq!((a.inline, a.write), (true, false));
        assert_eq!(
            (b.inline, b.write, d.inline, d.write),
            (false, true, false, false)
        );
        assert_eq!(
            (a.id, b.id, d.id),
            (MessageId(1), MessageId(2), MessageId(2))
        );
        assert_eq!(slot.held(&c("a"), 0), Some((MessageId(1), true)));
        assert_eq!(slot.held(&c("b"), 4), Some((MessageId(2), false)));
        // The carrying entry goes with no record to delete; the record with its last holder.
        assert_eq!(slot.release(&c("a"), 0), None);
        assert_eq!(slot.release(&c("b"), 4), None);
        assert_eq!(slot.release(&c("d"), 9), Some(MessageId(2)));
        assert_eq!(slot.held(&c("d"), 9), None);
        assert!(slot.written());
    }

    /// Only the entry that carries the message is taken for it: the same session at another
    /// place in its queue (the message queued twice) refers to the record.
    #[test]
    fn the_carrier_is_known_by_session_and_place() {
        let mut next = ids();
        let slot = StoreSlot::default();
        slot.reference(&c("a"), 0, &mut next);
        let again = slot.reference(&c("a"), 1, &mut next);
        assert!(!again.inline && again.write);
        assert_eq!(slot.release(&c("a"), 1), Some(again.id));
        assert_eq!(slot.held(&c("a"), 0), Some((MessageId(1), true)));
    }

    /// The race this type exists for: a reference taken after the last one went must not
    /// reuse the dead id, whose delete may still be on its way to the store.
    #[test]
    fn a_record_that_died_is_never_revived_under_its_id() {
        let mut next = ids();
        let slot = StoreSlot::default();
        slot.reference(&c("a"), 0, &mut next);
        let first = slot.reference(&c("b"), 0, &mut next);
        let deleted = slot.release(&c("b"), 0).expect("last reference");
        let again = slot.reference(&c("b"), 1, &mut next);
        assert_eq!(deleted, first.id);
        assert!(again.write);
        assert_ne!(again.id, deleted);
    }

    #[test]
    fn recovered_records_count_the_entries_that_take_them() {
        let slot = StoreSlot::recovered(MessageId(7));
        assert_eq!(slot.unreferenced(), Some(MessageId(7)));
        slot.recovered_reference();
        assert_eq!(slot.unreferenced(), None);
        assert_eq!(slot.held(&c("x"), 3), Some((MessageId(7), false)));
        assert_eq!(slot.release(&c("x"), 3), Some(MessageId(7)));
    }

    #[test]
    fn a_recovered_carrier_takes_its_message_along() {
        let slot = StoreSlot::recovered_inline(c("a"), 5, MessageId(3));
        assert!(slot.written() && slot.recovered_from_store());
        assert!(!StoreSlot::default().recovered_from_store());
        assert_eq!(slot.unreferenced(), None);
        assert_eq!(slot.held(&c("a"), 5), Some((MessageId(3), true)));
        assert_eq!(slot.release(&c("a"), 5), None);
    }

    #[test]
    fn a_copy_is_a_new_message_to_the_store() {
        let slot = StoreSlot::default();
        slot.reference(&c("a"), 0, ids());
        assert!(!slot.clone().written());
    }
}
