//! The wills of this node's clients, kept in the cluster, so that they fire even when the node
//! dies without a word (SIGKILL, power loss) or is cut off from NATS.
//!
//! The `AVIARY_WILLS` bucket holds, per client id (its token, the key of `AVIARY_CLIENTS`
//! too), the will of that client's connection and the node it is connected to. A node writes
//! the record when it accepts a connection with a will, before the CONNACK goes out, so a
//! client never holds a CONNACK for a will the cluster does not know; a connection without a
//! will removes the record a previous connection left on this node. When the will is
//! published or discarded here (a normal DISCONNECT), the node removes the record, by
//! compare-and-set at the revision it wrote: a record written since belongs to a newer
//! connection, or has already been claimed by another node. A will waiting for its delay
//! keeps its record until then.
//!
//! What becomes of the records of a node that is gone is [`super::orphans`]'s business.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::{Buf, BufMut, Bytes};
use parking_lot::Mutex;
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::link::Link;
use super::subject::token;
use super::ClusterError;
use crate::broker::{decode_wire, encode_wire, AckWait, ForwardError, Will};

/// The bucket of will records.
const BUCKET: &str = "AVIARY_WILLS";
/// The first byte of a record: its format.
const VERSION: u8 = 1;
/// How long a node tries to remove one of its records.
const REMOVE_WAIT: Duration = Duration::from_secs(5);

/// A will as the cluster keeps it: the will and the node its connection is on.
#[derive(Debug, Clone)]
pub(super) struct Record {
    /// The node the will's connection is on.
    pub(super) node: String,
    /// The will; its delay is the Will Delay Interval, at most the Session Expiry Interval
    /// (the will goes when the session ends, if that comes first [MQTT-3.1.3-9]).
    pub(super) will: Will,
}

impl Record {
    /// `version, node, owner?, delay, message`: strings with a 16-bit length, the delay as
    /// 32 bits, the message in the broker's wire form (the store's codec) to the end.
    pub(super) fn encode(&self) -> Vec<u8> {
        let message = encode_wire(&self.will.message);
        let mut out = Vec::with_capacity(16 + self.node.len() + message.len());
        out.put_u8(VERSION);
        put_str(&mut out, &self.node);
        match &self.will.owner {
            Some(owner) => {
                out.put_u8(1);
                put_str(&mut out, owner);
            }
            None => out.put_u8(0),
        }
        out.put_u32(self.will.delay_secs);
        out.extend_from_slice(&message);
        out
    }

    /// What [`Record::encode`] wrote, or why it is not a record.
    pub(super) fn decode(mut buf: Bytes) -> Result<Self, String> {
        if buf.remaining() < 1 || buf.get_u8() != VERSION {
            return Err("an unknown will record format".into());
        }
        let node = get_str(&mut buf)?;
        let owner = match buf.try_get_u8().map_err(|_| "the record ends early")? {
            0 => None,
            1 => Some(Arc::from(get_str(&mut buf)?)),
            _ => return Err("a bad owner flag".into()),
        };
        let delay_secs = buf.try_get_u32().map_err(|_| "the record ends early")?;
        let message = decode_wire(buf)?;
        Ok(Self {
            node,
            will: Will {
                message: Arc::new(message),
                delay_secs,
                owner,
            },
        })
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Node names are at most 64 bytes and usernames short; a longer string is cut, not
    // wrapped into a record that does not decode.
    let bytes = &s.as_bytes()[..s.len().min(usize::from(u16::MAX))];
    out.put_u16(bytes.len() as u16);
    out.extend_from_slice(bytes);
}

fn get_str(buf: &mut Bytes) -> Result<String, String> {
    let len = usize::from(buf.try_get_u16().map_err(|_| "the record ends early")?);
    if buf.remaining() < len {
        return Err("the record ends early".into());
    }
    String::from_utf8(buf.split_to(len).to_vec()).map_err(|_| "a string that is not UTF-8".into())
}

/// The wills of this node's connections, in the cluster's bucket.
#[derive(Debug)]
pub(super) struct Wills {
    pub(super) kv: kv::Store,
    node: String,
    link: Arc<Link>,
    /// The revision of this node's record, per key.
    mine: Mutex<HashMap<String, u64>>,
    /// Removals in flight, which a leaving node finishes before giving its lease back.
    writes: TaskTracker,
}

impl Wills {
    /// Opens (or creates) the bucket.
    pub(super) async fn open(
        js: &jetstream::Context,
        replicas: u8,
        node: String,
        link: Arc<Link>,
        writes: TaskTracker,
    ) -> Result<Arc<Self>, ClusterError> {
        let kv = super::bucket(js, BUCKET, replicas, Duration::ZERO).await?;
        Ok(Arc::new(Self {
            kv,
            node,
            link,
            mine: Mutex::new(HashMap::new()),
            writes,
        }))
    }

    /// Records the will of a connection this node is accepting, or that it has none. The
    /// wait, if any, completes once the cluster holds the record.
    pub(super) fn set(
        self: &Arc<Self>,
        client_id: &str,
        will: Option<&Will>,
        expiry_secs: u32,
    ) -> Option<AckWait> {
        let key = token(client_id);
        let Some(will) = will else {
            self.remove(key);
            return None;
        };
        let record = Record {
            node: self.node.clone(),
            will: Will {
                delay_secs: will.delay_secs.min(expiry_secs),
                ..will.clone()
            },
        };
        let value = Bytes::from(record.encode());
        let wills = self.clone();
        Some(Box::pin(async move {
            let revision = wills
                .kv
                .put(&key, value)
                .await
                .map_err(|e| ForwardError(format!("cannot record the will: {e}")))?;
            // Two connections of one id on this node: the later record is the one to remove.
            wills.adopt(key, revision);
            Ok(())
        }))
    }

    /// The will of this node's connection of `client_id` was published or discarded here: its
    /// record goes. Not while the node is cut off: then the cluster settles its wills (see
    /// [`super::orphans`]).
    pub(super) fn gone(&self, client_id: &str) {
        if !self.link.is_cut_off() {
            self.remove(token(client_id));
        }
    }

    /// Removes this node's record under `key`, if it wrote one, unless it was written since.
    fn remove(&self, key: String) {
        let Some(revision) = self.mine.lock().remove(&key) else {
            return;
        };
        let kv = self.kv.clone();
        self.writes.spawn(async move {
            let removed = kv.delete_expect_revision(&key, Some(revision));
            match tokio::time::timeout(REMOVE_WAIT, removed).await {
                Ok(Ok(())) => {}
                // Written since, by a newer connection or a node that claimed it.
                Ok(Err(e)) => debug!(%key, error = %e, "will record not removed"),
                Err(_) => debug!(%key, "will record not removed: NATS did not answer"),
            }
        });
    }

    /// Takes the record under `key` at `revision` for this node's own, as if written here.
    pub(super) fn adopt(&self, key: String, revision: u64) {
        let mut mine = self.mine.lock();
        let slot = mine.entry(key).or_default();
        *slot = (*slot).max(revision);
    }

    /// Forgets that this node wrote the record under `key`: another node claimed it, or this
    /// node is settling it as an orphan.
    pub(super) fn disown(&self, key: &str) {
        self.mine.lock().remove(key);
    }

    /// This node's name.
    pub(super) fn node(&self) -> &str {
        &self.node
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::Message;
    use aviary_protocol::{ByteString, QoS};

    fn message(topic: &str, payload: &[u8], qos: QoS, retain: bool) -> Arc<Message> {
        Arc::new(Message {
            topic: ByteString::from(topic),
            payload: Bytes::copy_from_slice(payload),
            qos,
            retain,
            properties: Default::default(),
            expires_at: None,
            stored: Default::default(),
            stream_seq: None,
        })
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let message = message(
            "pets/1/status",
            b"{\"online\":false}",
            QoS::AtLeastOnce,
            true,
        );
        for owner in [None, Some(Arc::from("alice"))] {
            let record = Record {
                node: "gw-a".into(),
                will: Will {
                    message: message.clone(),
                    delay_secs: 30,
                    owner: owner.clone(),
                },
            };
            let back = Record::decode(Bytes::from(record.encode())).expect("decodes");
            assert_eq!(back.node, "gw-a");
            assert_eq!(back.will.delay_secs, 30);
            assert_eq!(back.will.owner, owner);
            assert_eq!(&*back.will.message.topic, "pets/1/status");
            assert_eq!(&back.will.message.payload[..], b"{\"online\":false}");
            assert_eq!(back.will.message.qos, QoS::AtLeastOnce);
            assert!(back.will.message.retain);
        }
    }

    #[test]
    fn a_damaged_record_is_an_error() {
        let record = Record {
            node: "gw-a".into(),
            will: Will {
                message: message("t", b"x", QoS::AtMostOnce, false),
                delay_secs: 0,
                owner: None,
            },
        };
        let bytes = record.encode();
        for cut in [0, 1, 3, 8] {
            assert!(Record::decode(Bytes::copy_from_slice(&bytes[..cut])).is_err());
        }
        let mut unknown = bytes.clone();
        unknown[0] = 9;
        assert!(Record::decode(Bytes::from(unknown)).is_err());
    }
}
