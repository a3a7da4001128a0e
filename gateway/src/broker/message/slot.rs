//! A message's record in the store, shared by the queue entries of every persistent session
//! that holds it: written with the first reference and removed with the last.
//!
//! Each session sends its own writes to the store, so two sessions' writes reach the writer
//! in either order. A record that died (its last reference went) must therefore never come
//! back under the same id: if another session took the message again and wrote it, the earlier
//! session's delete could land after that write and remove it, and the second session's queue
//! entry would point at nothing after a restart. A reference taken after the last one went gets
//! a fresh id instead, so a late delete only ever removes a record nobody uses.

use parking_lot::Mutex;

use crate::store::MessageId;

/// Where a message stands in the store. Empty until a persistent session queues it.
#[derive(Debug, Default)]
pub(crate) struct StoreSlot(Mutex<Slot>);

#[derive(Debug, Default, Clone, Copy)]
struct Slot {
    /// The live record's id and how many queue entries refer to it.
    live: Option<(MessageId, usize)>,
    /// Whether a record was ever written: the publisher's acknowledgement must then wait.
    written: bool,
}

/// A new reference: the record's id, and whether the caller must write the message under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reference {
    pub(crate) id: MessageId,
    pub(crate) write: bool,
}

impl StoreSlot {
    /// A slot for a record the store already holds, with no references yet: for recovery.
    pub(crate) fn recovered(id: MessageId) -> Self {
        Self(Mutex::new(Slot {
            live: Some((id, 0)),
            written: true,
        }))
    }

    /// Takes a reference, allocating an id with `next_id` if no record is live.
    pub(crate) fn reference(&self, next_id: impl FnOnce() -> MessageId) -> Reference {
        let mut slot = self.0.lock();
        slot.written = true;
        match &mut slot.live {
            Some((id, refs)) => {
                *refs += 1;
                Reference {
                    id: *id,
                    write: false,
                }
            }
            live @ None => {
                let id = next_id();
                *live = Some((id, 1));
                Reference { id, write: true }
            }
        }
    }

    /// Drops a reference; the record's id if that was the last, so the caller deletes it.
    pub(crate) fn release(&self) -> Option<MessageId> {
        let mut slot = self.0.lock();
        let (id, refs) = slot.live.as_mut()?;
        *refs = refs.saturating_sub(1);
        let id = *id;
        if *refs == 0 {
            slot.live = None;
            return Some(id);
        }
        None
    }

    /// The live record's id: a session holding a reference always finds its own.
    pub(crate) fn id(&self) -> Option<MessageId> {
        self.0.lock().live.map(|(id, _)| id)
    }

    /// The id of a recovered record that no queue entry took, to be deleted.
    pub(crate) fn unreferenced(&self) -> Option<MessageId> {
        match self.0.lock().live {
            Some((id, 0)) => Some(id),
            _ => None,
        }
    }

    /// Whether the message was ever written to the store.
    pub(crate) fn written(&self) -> bool {
        self.0.lock().written
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

    #[test]
    fn the_first_reference_writes_and_the_last_deletes() {
        let mut next = ids();
        let slot = StoreSlot::default();
        assert!(!slot.written());
        let a = slot.reference(&mut next);
        let b = slot.reference(&mut next);
        assert_eq!(
            (a.write, b.write, a.id, b.id),
            (true, false, MessageId(1), MessageId(1))
        );
        assert_eq!(slot.release(), None);
        assert_eq!(slot.id(), Some(MessageId(1)));
        assert_eq!(slot.release(), Some(MessageId(1)));
        assert_eq!(slot.id(), None);
        assert!(slot.written());
    }

    /// The race this type exists for: a reference taken after the last one went must not
    /// reuse the dead id, whose delete may still be on its way to the store.
    #[test]
    fn a_record_that_died_is_never_revived_under_its_id() {
        let mut next = ids();
        let slot = StoreSlot::default();
        let first = slot.reference(&mut next);
        let deleted = slot.release().expect("last reference");
        let again = slot.reference(&mut next);
        assert_eq!(deleted, first.id);
        assert!(again.write);
        assert_ne!(again.id, deleted);
    }

    #[test]
    fn recovered_records_count_the_entries_that_take_them() {
        let mut next = ids();
        let slot = StoreSlot::recovered(MessageId(7));
        assert_eq!(slot.unreferenced(), Some(MessageId(7)));
        let held = slot.reference(&mut next);
        assert_eq!(
            held,
            Reference {
                id: MessageId(7),
                write: false
            }
        );
        assert_eq!(slot.unreferenced(), None);
    }

    #[test]
    fn a_copy_is_a_new_message_to_the_store() {
        let slot = StoreSlot::default();
        slot.reference(ids());
        assert_eq!(slot.clone().id(), None);
    }
}
