//! A persistent session moving to another node (cluster mode), the broker's half: the old
//! node describes the session, then hands it over whole; the new node opens it from the
//! description (so it is subscribed, and queues, while the move is under way) and merges what
//! the old node handed over. The backplane carries the bytes; see `cluster::handover` for
//! the protocol and why it loses nothing.
//!
//! The bytes are the store's own records (`store::codec`): a session record, then each queue
//! entry carrying its message, then the open incoming QoS 2 packet ids, each with how its
//! message was forwarded to the other nodes (the value of the store's record for it).

use std::collections::BTreeMap;
use std::num::NonZeroU16;
use std::sync::Arc;

use aviary_protocol::ByteString;
use bytes::{Buf, BufMut, Bytes};

use super::persist::convert::{self, Clocks};
use super::persist::recovered_session;
use super::session::{Handed, Inflight};
use super::{Broker, Outgoing, Session};
use crate::store::{codec, DeliveryState, Forwarded, MessageId, QueueEntry, SessionRecord};

/// Why handed-over bytes are not a session.
#[derive(Debug, thiserror::Error)]
#[error("a session handed over by another node does not decode: {0}")]
pub(crate) struct HandoverError(String);

impl Broker {
    /// The record of this node's session `client_id`, for a node about to take it over.
    pub(crate) fn describe_session(&self, client_id: &str) -> Option<Vec<u8>> {
        let session = self.shared.sessions.lock().get(client_id).cloned()?;
        let (parts, disconnected) = session.describe()?;
        let record = convert::session_record(&session.client_id, parts, disconnected, None);
        Some(codec::encode_session(&record))
    }

    /// Ends this node's session `client_id` because its client started clean elsewhere: as a
    /// clean start would here, with its will.
    pub(crate) fn end_moved_session(&self, client_id: &str) {
        let Some(session) = self.shared.sessions.lock().remove(client_id) else {
            return;
        };
        let discarded = session.discard();
        self.end_session(&session, discarded);
    }

    /// Takes this node's session `client_id` out for another node; its bytes, or `None` if
    /// there is no such session (any more).
    pub(crate) fn hand_over(&self, client_id: &str) -> Option<Vec<u8>> {
        let (session, handed, discarded) = {
            let mut sessions = self.shared.sessions.lock();
            let session = sessions.remove(client_id)?;
            let (handed, discarded) = session.hand_over()?;
            (session, handed, discarded)
        };
        self.end_session(&session, discarded);
        Some(encode(&session.client_id, handed))
    }

    /// Opens, offline, the session a node is handing over, from its description: subscribed
    /// at once, so that it queues what comes while the rest of the move is under way. Its
    /// pending will and expiry are left out: its client is connecting.
    pub(crate) fn open_moving_session(&self, record: Bytes) -> Result<Arc<Session>, HandoverError> {
        let record = codec::decode_session(record).map_err(|e| HandoverError(e.0.into()))?;
        let mut recovered = recovered_session(record, Clocks::now())
            .map_err(|filter| HandoverError(format!("invalid topic filter {filter:?}")))?;
        recovered.pending_will = None;
        recovered.expires_at = None;
        let session = self.restore_session(recovered);
        if let Some(p) = self.persist() {
            session.write_record(p, None);
        }
        Ok(session)
    }
}

impl Broker {
    /// Opens here, offline and subscribed, a session of a node that died, from the copy of
    /// its store (see `cluster::adoption`); [`fill_adopted_session`] brings its messages. Its
    /// expiry counts from now, when its client is known gone; its will is left out, for the
    /// cluster settles a dead node's wills.
    pub(crate) fn open_adopted_session(
        &self,
        mut record: SessionRecord,
    ) -> Result<Arc<Session>, HandoverError> {
        let clocks = Clocks::now();
        record.disconnected_at_unix_ms = Some(clocks.unix_ms);
        record.will = None;
        record.will_due_at_unix_ms = None;
        let recovered = recovered_session(record, clocks)
            .map_err(|filter| HandoverError(format!("invalid topic filter {filter:?}")))?;
        let session = self.restore_session(recovered);
        if let Some(p) = self.persist() {
            session.write_record(p, None);
        }
        Ok(session)
    }

    /// Forgets every session here, without their wills: at start, when another node has
    /// adopted them while this one was away.
    pub(crate) fn forget_sessions(&self) -> usize {
        let all: Vec<_> = self.shared.sessions.lock().drain().collect();
        for session in &all {
            self.forget(session);
        }
        all.len()
    }

    /// Forgets this node's session `client_id`, without its will: a stale copy of a dead
    /// node's session, left by an adoption that did not finish (see `cluster::adoption`).
    /// True if there was one.
    pub(crate) fn forget_session(&self, client_id: &str) -> bool {
        let session = self.shared.sessions.lock().remove(client_id);
        session.inspect(|s| self.forget(s)).is_some()
    }

    fn forget(&self, session: &Arc<Session>) {
        let mut discarded = session.discard();
        discarded.will = None;
        self.end_session(session, discarded);
    }
}

/// Merges into a session opened by [`Broker::open_adopted_session`] its in-flight and queued
/// messages as the dead node's store held them (each entry carrying its message, in queue
/// order) and its incoming QoS 2 ids; stream messages before `after` are the adopter's to
/// bring.
pub(crate) fn fill_adopted_session(
    session: &Session,
    entries: Vec<QueueEntry>,
    incoming_qos2: Vec<(NonZeroU16, Option<Forwarded>)>,
    after: u64,
) -> Result<(), HandoverError> {
    let (inflight, queued) = sort_entries(entries, Clocks::now())?;
    session.adopt(inflight, queued, incoming_qos2, after);
    Ok(())
}

/// Merges into `session` what the old node handed over when it reached the marker at stream
/// sequence `after`.
pub(crate) fn adopt_session(
    session: &Session,
    bytes: Bytes,
    after: u64,
) -> Result<(), HandoverError> {
    let (inflight, queued, incoming) = decode(bytes)?;
    session.adopt(inflight, queued, incoming, after);
    Ok(())
}

/// A session's bytes: its record, its entries with their messages, its incoming QoS 2 ids.
fn encode(client_id: &ByteString, handed: Handed) -> Vec<u8> {
    let clocks = Clocks::now();
    let record = convert::session_record(client_id, handed.parts, handed.disconnected_at, None);
    let mut buf = Vec::new();
    put_chunk(&mut buf, &codec::encode_session(&record));
    let entries: Vec<(&Outgoing, DeliveryState)> = handed
        .inflight
        .iter()
        .map(|i| {
            let state = if i.released {
                DeliveryState::Released {
                    packet_id: i.packet_id,
                }
            } else {
                DeliveryState::Sent {
                    packet_id: i.packet_id,
                }
            };
            (&i.out, state)
        })
        .chain(handed.queued.iter().map(|o| (o, DeliveryState::Queued)))
        .collect();
    buf.put_u32(entries.len() as u32);
    for (out, state) in entries {
        // Each entry carries its message: no record ids cross nodes.
        let entry = QueueEntry {
            message: MessageId(0),
            inline: Some(Box::new(convert::stored_message(&out.msg, clocks))),
            qos: out.qos,
            retain: out.retain,
            subscription_ids: out.subscription_ids.clone(),
            state,
        };
        put_chunk(&mut buf, &codec::encode_queue_entry(&entry));
    }
    buf.put_u32(handed.incoming_qos2.len() as u32);
    for (id, forwarded) in handed.incoming_qos2 {
        buf.put_u16(id.get());
        put_chunk(&mut buf, &codec::encode_forwarded(forwarded.as_ref()));
    }
    buf
}

/// What [`encode`] made, the record aside: in-flight and queued messages, incoming
/// exchanges.
type Decoded = (
    Vec<Inflight>,
    Vec<Outgoing>,
    Vec<(NonZeroU16, Option<Forwarded>)>,
);

fn decode(mut buf: Bytes) -> Result<Decoded, HandoverError> {
    let clocks = Clocks::now();
    let _record = take_chunk(&mut buf)?;
    let count = take_u32(&mut buf)?;
    // Each entry takes at least its length: a count beyond what the bytes can hold is a lie.
    let mut entries = Vec::with_capacity((count as usize).min(buf.remaining() / 4));
    for _ in 0..count {
        let entry = codec::decode_queue_entry(take_chunk(&mut buf)?)
            .map_err(|e| HandoverError(e.0.into()))?;
        entries.push(entry);
    }
    let (inflight, queued) = sort_entries(entries, clocks)?;
    let count = take_u32(&mut buf)?;
    let mut incoming = BTreeMap::new();
    for _ in 0..count {
        if buf.remaining() < 2 {
            return Err(HandoverError("cut off in its QoS 2 ids".into()));
        }
        let id = buf.get_u16();
        let forwarded = codec::decode_forwarded(&take_chunk(&mut buf)?)
            .map_err(|e| HandoverError(e.0.into()))?;
        if let Some(id) = NonZeroU16::new(id) {
            incoming.insert(id, forwarded);
        }
    }
    Ok((inflight, queued, incoming.into_iter().collect()))
}

/// Queue entries, each carrying its message, as a session's in-flight and queued messages.
fn sort_entries(
    entries: Vec<QueueEntry>,
    clocks: Clocks,
) -> Result<(Vec<Inflight>, Vec<Outgoing>), HandoverError> {
    let (mut inflight, mut queued) = (Vec::new(), Vec::new());
    for entry in entries {
        let stored = entry
            .inline
            .ok_or_else(|| HandoverError("an entry without its message".into()))?;
        let out = Outgoing {
            msg: Arc::new(convert::message(*stored, clocks)),
            qos: entry.qos,
            retain: entry.retain,
            subscription_ids: entry.subscription_ids,
            seq: None,
        };
        match entry.state {
            DeliveryState::Queued => queued.push(out),
            DeliveryState::Sent { packet_id } | DeliveryState::Released { packet_id } => {
                let released = matches!(entry.state, DeliveryState::Released { .. });
                inflight.push(Inflight {
                    packet_id,
                    out,
                    released,
                });
            }
        }
    }
    Ok((inflight, queued))
}

fn put_chunk(buf: &mut Vec<u8>, chunk: &[u8]) {
    buf.put_u32(chunk.len() as u32);
    buf.put_slice(chunk);
}

fn take_u32(buf: &mut Bytes) -> Result<u32, HandoverError> {
    if buf.remaining() < 4 {
        return Err(HandoverError("cut off".into()));
    }
    Ok(buf.get_u32())
}

fn take_chunk(buf: &mut Bytes) -> Result<Bytes, HandoverError> {
    let len = take_u32(buf)? as usize;
    if buf.remaining() < len {
        return Err(HandoverError("a record is cut off".into()));
    }
    Ok(buf.split_to(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::persist::RecordParts;
    use crate::broker::Message;
    use aviary_protocol::QoS;

    fn out(topic: &str, qos: QoS) -> Outgoing {
        let msg = Message {
            topic: topic.into(),
            payload: Bytes::from_static(b"payload"),
            qos,
            retain: false,
            properties: Default::default(),
            expires_at: None,
            stored: Default::default(),
            stream_seq: None,
        };
        Outgoing {
            msg: Arc::new(msg),
            qos,
            retain: false,
            subscription_ids: vec![std::num::NonZeroU32::new(7).unwrap()],
            seq: Some(3),
        }
    }

    #[test]
    fn a_handed_over_session_decodes_to_what_it_held() {
        let id = |n| NonZeroU16::new(n).unwrap();
        let forwarded = Forwarded {
            node: "gw-a".into(),
            token: 12,
        };
        let handed = Handed {
            parts: RecordParts {
                subscriptions: Vec::new(),
                expiry_secs: 60,
                will: None,
                username: None,
            },
            disconnected_at: None,
            inflight: vec![Inflight {
                packet_id: id(5),
                out: out("a", QoS::ExactlyOnce),
                released: true,
            }],
            queued: vec![out("b", QoS::AtLeastOnce), out("c", QoS::AtMostOnce)],
            incoming_qos2: vec![(id(9), Some(forwarded.clone())), (id(2), None)],
        };
        let bytes = Bytes::from(encode(&"client".into(), handed));
        let record = codec::decode_session(take_chunk(&mut bytes.clone()).unwrap()).unwrap();
        assert_eq!((&*record.client_id, record.expiry_secs), ("client", 60));
        let (inflight, queued, incoming) = decode(bytes.clone()).unwrap();
        assert_eq!(inflight.len(), 1);
        assert!(inflight[0].released);
        assert_eq!(inflight[0].packet_id, id(5));
        let topics: Vec<&str> = queued.iter().map(|o| &*o.msg.topic).collect();
        assert_eq!(topics, ["b", "c"]);
        assert_eq!(queued[0].subscription_ids, inflight[0].out.subscription_ids);
        assert!(queued.iter().all(|o| o.seq.is_none()));
        assert_eq!(incoming, [(id(2), None), (id(9), Some(forwarded))]);
        // Cut anywhere, it is an error, not a panic.
        for len in 0..bytes.len() {
            assert!(decode(bytes.slice(..len)).is_err(), "cut at {len}");
        }
    }
}
