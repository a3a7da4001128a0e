//! The value of an incoming QoS 2 record: how a cluster node forwarded the exchange's
//! message ([`Forwarded`]), or nothing. Empty for a single node, which is what the records
//! written before cluster mode kept hold: they read back as "not forwarded".
//!
//! Layout: the record version byte, the token (u64 big-endian), then the node's name.

use aviary_protocol::ByteString;
use bytes::Bytes;

use super::{DecodeError, RECORD_VERSION};
use crate::store::Forwarded;

/// The value of an incoming QoS 2 record.
pub(crate) fn encode_forwarded(forwarded: Option<&Forwarded>) -> Vec<u8> {
    let Some(f) = forwarded else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(9 + f.node.len());
    out.push(RECORD_VERSION);
    out.extend_from_slice(&f.token.to_be_bytes());
    out.extend_from_slice(f.node.as_bytes());
    out
}

/// Decodes [`encode_forwarded`].
pub(crate) fn decode_forwarded(value: &[u8]) -> Result<Option<Forwarded>, DecodeError> {
    let Some((&version, rest)) = value.split_first() else {
        return Ok(None);
    };
    if version != RECORD_VERSION {
        return Err(DecodeError("unknown incoming QoS 2 record version"));
    }
    let (token, node) = rest
        .split_first_chunk::<8>()
        .ok_or(DecodeError("incoming QoS 2 record cut short"))?;
    let node = ByteString::try_from(Bytes::copy_from_slice(node))
        .map_err(|_| DecodeError("node name is not UTF-8"))?;
    Ok(Some(Forwarded {
        node,
        token: u64::from_be_bytes(*token),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_round_trips_and_nothing_is_empty() {
        let f = Forwarded {
            node: "gw-ä".into(),
            token: u64::MAX - 7,
        };
        assert_eq!(decode_forwarded(&encode_forwarded(Some(&f))), Ok(Some(f)));
        assert!(encode_forwarded(None).is_empty());
        assert_eq!(decode_forwarded(&[]), Ok(None));
    }

    #[test]
    fn a_damaged_value_is_an_error() {
        assert!(decode_forwarded(&[RECORD_VERSION, 1, 2]).is_err());
        assert!(decode_forwarded(&[9, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(decode_forwarded(&[RECORD_VERSION, 0, 0, 0, 0, 0, 0, 0, 1, 0xff]).is_err());
    }
}
