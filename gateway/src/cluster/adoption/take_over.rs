//! Steps 2 to 4 of an adoption (see [`super`]), for one dead node or several at once: the
//! node claimed, and the unfinished adoptions it held when it died.
//!
//! Each dead node's sessions come from its own log, less the stale copies an earlier holder
//! of its adoption left in its store: those copies are dropped from that holder's log here
//! (if it is adopted in the same go) and from this node (if it is this node's previous run).

use std::collections::HashSet;
use std::sync::Arc;

use tracing::warn;

use super::{Adoption, ClientKey};
use crate::broker::{Broker, Session};
use crate::cluster::handover::mark_subject;
use crate::cluster::metrics::ClusterMetrics;
use crate::cluster::replica;
use crate::store::{self, Forwarded, QueueEntry, Snapshot};

/// A dead node to adopt here.
#[derive(Debug, Clone)]
pub(super) struct Adoptee {
    pub(super) node: String,
    /// Who held its adoption before and died in it, newest first: their stores hold stale
    /// copies of its sessions.
    pub(super) previous: Vec<String>,
}

/// An adoptee's sessions, opened here.
struct Opened {
    sessions: Vec<Arc<Session>>,
    /// Its store's messages and entries, taken out per session as each is filled.
    snapshot: Snapshot,
    /// The stream messages its store had queued.
    queued: HashSet<u64>,
}

impl Adoption {
    /// Opens, fills and drains the sessions of every adoptee: how many came here.
    pub(super) async fn take_over(&self, work: &[Adoptee]) -> Result<usize, String> {
        let mut snapshots = Vec::with_capacity(work.len());
        for adoptee in work {
            let log = replica::read(&self.js, self.replicas, &adoptee.node)
                .await
                .map_err(|e| e.to_string())?;
            snapshots.push(store::replay(log).map_err(|e| e.to_string())?);
        }
        drop_stale_copies(work, &mut snapshots);
        let broker = self.broker()?;
        let mut opened: Vec<Opened> = snapshots.into_iter().map(|s| open(&broker, s)).collect();
        // From here on, this node's consumer brings every stream message for them too.
        let (synced, confirmed) = tokio::sync::oneshot::channel();
        self.sync.send(synced).map_err(|_| "the node is stopping")?;
        confirmed.await.map_err(|_| "the node is stopping")?;
        let mut count = 0;
        for (adoptee, o) in work.iter().zip(&mut opened) {
            let marker = self
                .js
                .publish(mark_subject(&adoptee.node), bytes::Bytes::new())
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())?
                .sequence;
            for session in &o.sessions {
                let client_id = session.client_id.to_string();
                let (entries, incoming) = messages_of(&mut o.snapshot, &client_id);
                if let Err(e) =
                    crate::broker::fill_adopted_session(session, entries, incoming, marker)
                {
                    warn!(%client_id, error = %e, "a dead node's session came without its messages");
                }
            }
            let keys: HashSet<ClientKey> = o.sessions.iter().map(|s| s.key).collect();
            self.drain(&adoptee.node, marker, &keys, &o.queued).await?;
            for _ in &o.sessions {
                ClusterMetrics::count(&self.metrics.sessions_moved_in);
            }
            count += o.sessions.len();
        }
        // The adoption is done only once this node's store (and so its log) holds it all.
        if let Some(persist) = broker.persist() {
            let ticket = persist.barrier().map_err(|e| e.to_string())?;
            ticket.await.map_err(|e| e.to_string())?;
        }
        Ok(count)
    }
}

/// Opens here, offline and subscribed, the sessions of `snapshot`, once any stale copy
/// of them left here by this node's previous run is gone.
fn open(broker: &Broker, mut snapshot: Snapshot) -> Opened {
    let queued = stream_seqs(&snapshot);
    let mut sessions = Vec::with_capacity(snapshot.sessions.len());
    for record in std::mem::take(&mut snapshot.sessions).into_values() {
        let client_id = record.client_id.clone();
        if broker.forget_session(&client_id) {
            warn!(%client_id, "dropped a stale copy of a dead node's session, left by an adoption this node did not finish");
        }
        match broker.open_adopted_session(record) {
            Ok(session) => sessions.push(session),
            Err(e) => warn!(%client_id, error = %e, "a dead node's session was not adopted"),
        }
    }
    Opened {
        sessions,
        snapshot,
        queued,
    }
}

/// Takes out of each adoptee's snapshot the sessions of every other adoptee whose adoption
/// it held and died in: the copy in that adoptee's own log is the one to take.
fn drop_stale_copies(work: &[Adoptee], snapshots: &mut [Snapshot]) {
    for (i, adoptee) in work.iter().enumerate() {
        let ids: Vec<_> = snapshots[i].sessions.keys().cloned().collect();
        for (j, holder) in work.iter().enumerate() {
            if i == j || !adoptee.previous.contains(&holder.node) {
                continue;
            }
            let stale = &mut snapshots[j];
            for id in &ids {
                stale.sessions.remove(id);
                stale.queues.remove(id);
                stale.incoming_qos2.remove(id);
            }
        }
    }
}

/// The stream sequence numbers of the messages queued in `snapshot`'s queues.
fn stream_seqs(snapshot: &Snapshot) -> HashSet<u64> {
    snapshot
        .queues
        .values()
        .flat_map(|q| q.values())
        .filter_map(|e| match &e.inline {
            Some(m) => m.stream_seq,
            None => snapshot.messages.get(&e.message)?.stream_seq,
        })
        .collect()
}

/// Takes `client_id`'s queue out of `snapshot`, each entry carrying its message, and its
/// incoming QoS 2 exchanges.
fn messages_of(
    snapshot: &mut Snapshot,
    client_id: &str,
) -> (
    Vec<QueueEntry>,
    Vec<(std::num::NonZeroU16, Option<Forwarded>)>,
) {
    let entries = snapshot
        .queues
        .remove(client_id)
        .unwrap_or_default()
        .into_values()
        .filter_map(|mut entry| {
            if entry.inline.is_none() {
                let shared = snapshot.messages.get(&entry.message)?.clone();
                entry.inline = Some(Box::new(shared));
            }
            Some(entry)
        })
        .collect();
    let incoming = snapshot
        .incoming_qos2
        .remove(client_id)
        .unwrap_or_default()
        .into_iter()
        .collect();
    (entries, incoming)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use aviary_protocol::QoS;
    use bytes::Bytes;

    use super::*;
    use crate::store::{DeliveryState, MessageId, SessionRecord, StoredMessage};

    fn message(stream_seq: Option<u64>) -> StoredMessage {
        StoredMessage {
            topic: "pets/1/location".into(),
            payload: Bytes::from_static(b"x"),
            qos: QoS::ExactlyOnce,
            retain: false,
            properties: Default::default(),
            expires_at_unix_ms: None,
            stream_seq,
        }
    }

    fn entry(id: u64, inline: Option<StoredMessage>) -> QueueEntry {
        QueueEntry {
            message: MessageId(id),
            inline: inline.map(Box::new),
            qos: QoS::ExactlyOnce,
            retain: false,
            subscription_ids: Vec::new(),
            state: DeliveryState::Queued,
        }
    }

    #[test]
    fn the_stream_messages_a_dead_node_had_queued_are_known_and_taken_with_their_message() {
        let mut s = Snapshot::default();
        s.messages.insert(MessageId(2), message(Some(20)));
        // A message no queue refers to any more says nothing of what was queued.
        s.messages.insert(MessageId(4), message(Some(40)));
        s.queues.insert(
            "a".into(),
            BTreeMap::from([(1, entry(1, Some(message(Some(10))))), (2, entry(2, None))]),
        );
        // Published on the dead node to a subscriber there, not through the stream.
        s.queues.insert(
            "b".into(),
            BTreeMap::from([(1, entry(3, Some(message(None))))]),
        );
        assert_eq!(stream_seqs(&s), HashSet::from([10, 20]));
        let (entries, incoming) = messages_of(&mut s, "a");
        assert!(incoming.is_empty());
        let seqs: Vec<_> = entries
            .iter()
            .map(|e| e.inline.as_ref().expect("carries its message").stream_seq)
            .collect();
        assert_eq!(seqs, [Some(10), Some(20)]);
        assert!(!s.queues.contains_key("a"), "taken out");
    }

    fn snapshot_with(ids: &[&str], seq: u64) -> Snapshot {
        let mut s = Snapshot::default();
        for id in ids {
            let record = SessionRecord {
                client_id: (*id).into(),
                protocol: aviary_protocol::ProtocolVersion::V5,
                expiry_secs: 3_600,
                disconnected_at_unix_ms: Some(1),
                subscriptions: Vec::new(),
                will: None,
                will_due_at_unix_ms: None,
                username: None,
            };
            s.sessions.insert((*id).into(), record);
            s.queues.insert(
                (*id).into(),
                BTreeMap::from([(1, entry(seq, Some(message(Some(seq)))))]),
            );
        }
        s
    }

    fn adoptee(node: &str, previous: &[&str]) -> Adoptee {
        Adoptee {
            node: node.into(),
            previous: previous.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    #[test]
    fn a_dead_adopters_copies_of_the_sessions_it_was_adopting_are_dropped() {
        // gw-x died adopting gw-a; gw-y died taking that over from it (and adopting gw-x).
        let work = [
            adoptee("gw-y", &[]),
            adoptee("gw-x", &["gw-y"]),
            adoptee("gw-a", &["gw-y", "gw-x"]),
        ];
        let mut snapshots = [
            snapshot_with(&["y-own", "x-own", "a-own"], 3),
            snapshot_with(&["x-own", "a-own"], 2),
            snapshot_with(&["a-own"], 1),
        ];
        drop_stale_copies(&work, &mut snapshots);
        let ids = |s: &Snapshot| s.sessions.keys().map(|k| k.to_string()).collect::<Vec<_>>();
        assert_eq!(ids(&snapshots[0]), ["y-own"]);
        assert_eq!(ids(&snapshots[1]), ["x-own"]);
        assert_eq!(ids(&snapshots[2]), ["a-own"]);
        assert_eq!(stream_seqs(&snapshots[0]), HashSet::from([3]));
        assert!(snapshots[0].queues.len() == 1 && snapshots[1].queues.len() == 1);
    }
}
