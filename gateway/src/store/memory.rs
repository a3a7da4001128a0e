//! The reference store: ordered maps behind one lock. The unit tests run
//! the same suite against it and the disk store, so it defines what every
//! op means. It is not `durability = "memory"`, which has no store at all.

use parking_lot::Mutex;

use super::{validate, Op, Snapshot, Store, StoreError};

/// Everything in memory, nothing on disk.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<Snapshot>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemoryStore {
    fn commit(&self, ops: &[Op]) -> Result<(), StoreError> {
        // Validation is the only way a commit can fail here, and it comes
        // before any change: all or nothing.
        validate(ops)?;
        let mut s = self.state.lock();
        for op in ops {
            apply(&mut s, op);
        }
        Ok(())
    }

    fn load(&self) -> Result<Snapshot, StoreError> {
        Ok(self.state.lock().clone())
    }

    fn disk_bytes(&self) -> u64 {
        0
    }
}

/// Applies one op; later ops on the same record win.
fn apply(s: &mut Snapshot, op: &Op) {
    match op {
        Op::PutMessage { id, message } => {
            s.messages.insert(*id, message.clone());
        }
        Op::DeleteMessage { id } => {
            s.messages.remove(id);
        }
        Op::PutSession(record) => {
            s.sessions.insert(record.client_id.clone(), record.clone());
        }
        Op::DeleteSession { client_id } => {
            s.sessions.remove(client_id);
            s.queues.remove(client_id);
            s.incoming_qos2.remove(client_id);
        }
        Op::PutQueued {
            client_id,
            seq,
            entry,
        } => {
            let q = s.queues.entry(client_id.clone()).or_default();
            q.insert(*seq, entry.clone());
        }
        Op::DeleteQueued { client_id, seq, .. } => {
            if let Some(q) = s.queues.get_mut(client_id) {
                q.remove(seq);
                if q.is_empty() {
                    s.queues.remove(client_id);
                }
            }
        }
        Op::PutIncomingQos2 {
            client_id,
            packet_id,
            forwarded,
        } => {
            s.incoming_qos2
                .entry(client_id.clone())
                .or_default()
                .insert(*packet_id, forwarded.clone());
        }
        Op::DeleteIncomingQos2 {
            client_id,
            packet_id,
        } => {
            if let Some(ids) = s.incoming_qos2.get_mut(client_id) {
                ids.remove(packet_id);
                if ids.is_empty() {
                    s.incoming_qos2.remove(client_id);
                }
            }
        }
        Op::PutRetained { topic, message } => {
            s.retained.insert(topic.clone(), message.clone());
        }
        Op::DeleteRetained { topic } => {
            s.retained.remove(topic);
        }
    }
}
