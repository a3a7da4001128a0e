//! The disk store's keys: how each record kind is addressed, so that the store reads back
//! in the order it needs.
//!
//! Message ids are big-endian, so they sort. Queue and QoS 2 keys are the client id
//! (length-prefixed, so no client's keys are a prefix of another's and one client's keys are
//! one contiguous range) then the sequence number or packet id big-endian, so a prefix scan
//! returns a queue in order.

use std::num::NonZeroU16;

use aviary_protocol::ByteString;
use bytes::Bytes;

use super::DecodeError;
use crate::store::MessageId;

/// The key of a stored message: its id big-endian, so ids sort.
pub(crate) fn message_key(id: MessageId) -> [u8; 8] {
    id.0.to_be_bytes()
}

/// Decodes [`message_key`].
pub(crate) fn decode_message_key(key: &[u8]) -> Result<MessageId, DecodeError> {
    let b: [u8; 8] = key
        .try_into()
        .map_err(|_| DecodeError("message key is not 8 bytes"))?;
    Ok(MessageId(u64::from_be_bytes(b)))
}

/// The common prefix of one client's queue or QoS 2 keys: the id's length
/// (u16 big-endian) then the id, so no client's prefix is another's.
pub(crate) fn client_prefix(client_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + client_id.len() + 8);
    // The caller validated the length (`MAX_CLIENT_ID_BYTES`).
    key.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
    key.extend_from_slice(client_id.as_bytes());
    key
}

/// The key of a queue entry: client prefix, then the sequence number.
pub(crate) fn queue_key(client_id: &str, seq: u64) -> Vec<u8> {
    let mut key = client_prefix(client_id);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The key of an incoming QoS 2 packet id: client prefix, then the id.
pub(crate) fn qos2_key(client_id: &str, packet_id: NonZeroU16) -> Vec<u8> {
    let mut key = client_prefix(client_id);
    key.extend_from_slice(&packet_id.get().to_be_bytes());
    key
}

/// Splits a client-prefixed key into the client id and the `N`-byte rest.
fn split_client_key<const N: usize>(key: &[u8]) -> Result<(ByteString, [u8; N]), DecodeError> {
    let bad = DecodeError("malformed client key");
    let (len, rest) = key.split_first_chunk::<2>().ok_or(bad)?;
    let len = usize::from(u16::from_be_bytes(*len));
    if rest.len() != len + N {
        return Err(bad);
    }
    let (id, tail) = rest.split_at(len);
    let id = ByteString::try_from(Bytes::copy_from_slice(id))
        .map_err(|_| DecodeError("client id is not UTF-8"))?;
    Ok((id, tail.try_into().map_err(|_| bad)?))
}

/// Decodes [`queue_key`].
pub(crate) fn decode_queue_key(key: &[u8]) -> Result<(ByteString, u64), DecodeError> {
    let (id, seq) = split_client_key::<8>(key)?;
    Ok((id, u64::from_be_bytes(seq)))
}

/// Decodes [`qos2_key`].
pub(crate) fn decode_qos2_key(key: &[u8]) -> Result<(ByteString, NonZeroU16), DecodeError> {
    let (id, packet_id) = split_client_key::<2>(key)?;
    let packet_id =
        NonZeroU16::new(u16::from_be_bytes(packet_id)).ok_or(DecodeError("packet id 0"))?;
    Ok((id, packet_id))
}

/// Decodes a UTF-8 key (session client ids, retained topics).
pub(crate) fn decode_string_key(key: &[u8]) -> Result<ByteString, DecodeError> {
    ByteString::try_from(Bytes::copy_from_slice(key)).map_err(|_| DecodeError("key is not UTF-8"))
}
