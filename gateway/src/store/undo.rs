//! Writes that a later delete in the same batch undoes, before the batch is committed, and the
//! acknowledgements that may then go without waiting for the commit.
//!
//! The hot durable workload is a QoS 1 message to an online persistent subscriber: its queue
//! entry is written, the subscriber gets the message and acknowledges it, and the entry is
//! deleted. When the delete reaches the writer while the write still waits in the batch being
//! gathered, neither needs to reach the disk: the message was delivered, so a crash can lose
//! nothing of it. The publisher's PUBACK then needs no commit either. RabbitMQ confirms a
//! persistent message the same way, once it is written or once every queue's consumer
//! acknowledged it.
//!
//! Only a request sent as consumable ([`super::StoreHandle::send_consumable`]) is acknowledged
//! early, and only once every write it holds is undone: its ticket then means "delivered", not
//! "committed". The broker sends one only for a QoS 1 publication whose one persistent
//! receiver takes it at QoS 1; a QoS 2 publisher's PUBREC also vouches for the packet id
//! written before it, which only a commit covers.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use tokio::sync::oneshot;

use super::staging::{Form, KeyHasher, Kind, Prepared, Staged};
use super::StoreError;

type Done = oneshot::Sender<Result<(), StoreError>>;
type Keys = HashMap<Vec<u8>, Vec<(usize, usize)>, BuildHasherDefault<KeyHasher>>;

/// What a batch being gathered knows to undo: per record created in it, its writes so far.
#[derive(Default)]
pub(super) struct Undo {
    /// Per kind, per key whose record a write in this batch created: every write of it in the
    /// batch, as (request, op) indices, the create first.
    created: [Keys; Kind::ALL.len()],
    /// Consumable requests not yet undone: request index, writes left, and who waits.
    waiting: HashMap<usize, (usize, Done)>,
    /// Writes undone so far.
    undone: usize,
}

impl Undo {
    /// Takes in the request at `index` of `requests`, just pushed: undoes what its deletes
    /// undo, and acknowledges each consumable request left with no write. `done` is its waiter
    /// if it is consumable; given back if it cannot be (not staged, or no write), to wait for
    /// the commit.
    pub(super) fn add(
        &mut self,
        requests: &mut [Prepared],
        index: usize,
        done: Option<Done>,
    ) -> Option<Done> {
        let Form::Staged(staged) = &requests[index].0 else {
            return done;
        };
        let mut undone = Vec::new();
        for (op, write) in staged.iter().enumerate() {
            match write {
                Staged::Write {
                    kind,
                    key,
                    value: Some(_),
                    creates: true,
                    ..
                } => {
                    self.created[*kind as usize].insert(key.clone(), vec![(index, op)]);
                }
                Staged::Write {
                    kind, key, value, ..
                } => {
                    let keys = &mut self.created[*kind as usize];
                    if value.is_some() {
                        if let Some(writes) = keys.get_mut(key.as_slice()) {
                            writes.push((index, op));
                        }
                    } else if let Some(writes) = keys.remove(key.as_slice()) {
                        undone.extend(writes);
                        undone.push((index, op));
                    }
                }
                // It reads what the store holds at commit time: nothing before it may vanish
                // from under it, so nothing before it is undone any more.
                Staged::DeleteSession(_) => self.created.iter_mut().for_each(Keys::clear),
                Staged::Undone => {}
            }
        }
        let left = staged.len();
        let done = match done {
            Some(done) if left > 0 => {
                self.waiting.insert(index, (left, done));
                None
            }
            done => done,
        };
        for (request, op) in undone {
            self.undo(requests, request, op);
        }
        done
    }

    /// Whether a consumable request still waits: the batch is worth holding a moment for the
    /// deletes that would undo it.
    pub(super) fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// How many writes were undone.
    pub(super) fn undone(&self) -> usize {
        self.undone
    }

    /// The waiters of consumable requests not undone: they wait for the commit after all.
    pub(super) fn into_waiting(self) -> impl Iterator<Item = Done> {
        self.waiting.into_values().map(|(_, done)| done)
    }

    fn undo(&mut self, requests: &mut [Prepared], request: usize, op: usize) {
        if let Form::Staged(staged) = &mut requests[request].0 {
            staged[op] = Staged::Undone;
            self.undone += 1;
        }
        if let Some((left, _)) = self.waiting.get_mut(&request) {
            *left -= 1;
            if *left == 0 {
                let (_, done) = self.waiting.remove(&request).expect("just found");
                // Its submitter may have stopped waiting.
                let _ = done.send(Ok(()));
            }
        }
    }
}
