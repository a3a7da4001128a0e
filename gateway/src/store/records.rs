//! The disk store's records read back: one `(kind, key, value)` triple at a time into a
//! [`Snapshot`]. Shared by the disk store's recovery and by the replay of its replica's log,
//! so that both read a record alike.

use bytes::Bytes;

use super::codec::{self, DecodeError};
use super::staging::Kind;
use super::Snapshot;

/// Adds the record stored under `key` in keyspace `kind` to `s`.
pub(super) fn decode_into(
    s: &mut Snapshot,
    kind: Kind,
    key: &[u8],
    value: Bytes,
) -> Result<(), DecodeError> {
    match kind {
        Kind::Messages => {
            s.messages.insert(
                codec::decode_message_key(key)?,
                codec::decode_message(value)?,
            );
        }
        Kind::Sessions => {
            let record = codec::decode_session(value)?;
            if record.client_id.as_bytes() != key {
                return Err(DecodeError("session key and client id differ"));
            }
            s.sessions.insert(record.client_id.clone(), record);
        }
        Kind::Queue => {
            let (client_id, seq) = codec::decode_queue_key(key)?;
            let entry = codec::decode_queue_entry(value)?;
            s.queues.entry(client_id).or_default().insert(seq, entry);
        }
        Kind::Qos2 => {
            let (client_id, packet_id) = codec::decode_qos2_key(key)?;
            let forwarded = codec::decode_forwarded(&value)?;
            s.incoming_qos2
                .entry(client_id)
                .or_default()
                .insert(packet_id, forwarded);
        }
        Kind::Retained => {
            s.retained.insert(
                codec::decode_string_key(key)?,
                codec::decode_message(value)?,
            );
        }
    }
    Ok(())
}
