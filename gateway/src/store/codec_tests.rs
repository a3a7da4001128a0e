//! Round trips of every record and key through the codec, and the
//! rejection of what it must not accept.

use std::num::{NonZeroU16, NonZeroU32};

use aviary_protocol::{MessageProperties, ProtocolVersion, QoS, RetainHandling};
use bytes::Bytes;

use super::*;
use crate::store::tests::samples::{full_session, message, queue_entry, rich_message};

fn nz16(v: u16) -> NonZeroU16 {
    NonZeroU16::new(v).unwrap()
}

#[test]
fn messages_round_trip() {
    for m in [
        message("t", b""),
        message("pets/1/location", b"{}"),
        rich_message(),
    ] {
        let enc = encode_message(&m);
        assert_eq!(decode_message(Bytes::from(enc)).unwrap(), m);
    }
}

#[test]
fn every_property_and_flag_round_trips() {
    for pfi in [None, Some(false), Some(true)] {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let mut m = rich_message();
            m.qos = qos;
            m.retain = pfi == Some(true);
            m.properties.payload_format_indicator = pfi;
            m.expires_at_unix_ms = pfi.map(|_| u64::MAX);
            let back = decode_message(Bytes::from(encode_message(&m))).unwrap();
            assert_eq!(back, m);
        }
    }
    let bare = StoredMessage {
        properties: MessageProperties::default(),
        stream_seq: None,
        ..rich_message()
    };
    assert_eq!(
        decode_message(Bytes::from(encode_message(&bare))).unwrap(),
        bare
    );
}

#[test]
fn sessions_round_trip() {
    let mut s = full_session("dev-1");
    assert_eq!(decode_session(Bytes::from(encode_session(&s))).unwrap(), s);
    s.will = None;
    s.disconnected_at_unix_ms = None;
    s.will_due_at_unix_ms = None;
    s.subscriptions.clear();
    s.protocol = ProtocolVersion::V3_1;
    assert_eq!(decode_session(Bytes::from(encode_session(&s))).unwrap(), s);
}

#[test]
fn every_subscription_option_round_trips() {
    let mut s = full_session("opts");
    s.subscriptions.clear();
    for (i, rh) in [
        RetainHandling::SendAtSubscribe,
        RetainHandling::SendIfNew,
        RetainHandling::DoNotSend,
    ]
    .into_iter()
    .enumerate()
    {
        for bits in 0..4u8 {
            let mut sub = full_session("x").subscriptions[0].clone();
            sub.options.retain_handling = rh;
            sub.options.no_local = bits & 1 != 0;
            sub.options.retain_as_published = bits & 2 != 0;
            sub.options.qos = QoS::try_from(bits % 3).unwrap();
            sub.identifier = NonZeroU32::new(i as u32 * 4 + u32::from(bits));
            s.subscriptions.push(sub);
        }
    }
    assert_eq!(decode_session(Bytes::from(encode_session(&s))).unwrap(), s);
}

#[test]
fn queue_entries_round_trip_in_every_state() {
    for state in [
        DeliveryState::Queued,
        DeliveryState::Sent { packet_id: nz16(1) },
        DeliveryState::Released {
            packet_id: nz16(u16::MAX),
        },
    ] {
        let mut e = queue_entry(u64::MAX, QoS::ExactlyOnce);
        e.state = state;
        e.retain = true;
        e.subscription_ids = vec![
            NonZeroU32::new(1).unwrap(),
            NonZeroU32::new(268_435_455).unwrap(),
        ];
        assert_eq!(
            decode_queue_entry(Bytes::from(encode_queue_entry(&e))).unwrap(),
            e
        );
    }
}

#[test]
fn an_entry_carrying_its_message_round_trips_in_every_state() {
    for state in [
        DeliveryState::Queued,
        DeliveryState::Sent { packet_id: nz16(7) },
    ] {
        let mut e = queue_entry(3, QoS::AtLeastOnce);
        e.state = state;
        e.subscription_ids = vec![NonZeroU32::new(9).unwrap()];
        e.inline = Some(Box::new(rich_message()));
        assert_eq!(
            decode_queue_entry(Bytes::from(encode_queue_entry(&e))).unwrap(),
            e
        );
    }
}

/// Entries written before entries could carry their message (format version 1) read as
/// they were written.
#[test]
fn a_version_1_queue_entry_still_decodes() {
    // Record version 1, message 300, QoS 1 + Sent, packet id 5, no subscription ids.
    let old: &'static [u8] = &[1, 0xac, 0x02, 0b1001, 0, 5, 0];
    let e = decode_queue_entry(Bytes::from_static(old)).unwrap();
    assert_eq!(e.message, MessageId(300));
    assert_eq!(e.state, DeliveryState::Sent { packet_id: nz16(5) });
    assert_eq!(e.inline, None);
}

#[test]
fn a_plain_queue_entry_is_small() {
    let e = queue_entry(1_000_000, QoS::AtLeastOnce);
    assert!(
        encode_queue_entry(&e).len() <= 6,
        "{:?}",
        encode_queue_entry(&e)
    );
}

#[test]
fn keys_round_trip_and_sort_by_client_then_seq() {
    assert_eq!(
        decode_message_key(&message_key(MessageId(42))).unwrap(),
        MessageId(42)
    );
    let (c, s) = decode_queue_key(&queue_key("dev-ü", 7)).unwrap();
    assert_eq!((&*c, s), ("dev-ü", 7));
    let (c, p) = decode_qos2_key(&qos2_key("dev", nz16(9))).unwrap();
    assert_eq!((&*c, p), ("dev", nz16(9)));
    assert!(queue_key("a", 255) < queue_key("a", 256));
    assert!(queue_key("a", u64::MAX) < queue_key("b", 0));
    // "a" is not a prefix of "ab": the length comes first.
    assert!(!queue_key("ab", 0).starts_with(&client_prefix("a")));
    assert_eq!(&*decode_string_key("pets/1".as_bytes()).unwrap(), "pets/1");
}

#[test]
fn damaged_records_are_errors_not_panics() {
    let good = encode_session(&full_session("dev-1"));
    // Every truncation and every single-byte change either decodes or is
    // an error; none panics.
    for cut in 0..good.len() {
        assert!(
            decode_session(Bytes::copy_from_slice(&good[..cut])).is_err(),
            "cut {cut}"
        );
    }
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0xff;
        let _ = decode_session(Bytes::from(bad));
    }
    let mut trailing = encode_message(&message("t", b"x"));
    trailing.push(0);
    assert_eq!(
        decode_message(Bytes::from(trailing)),
        Err(DecodeError("trailing bytes after the record"))
    );
    assert_eq!(
        decode_queue_entry(Bytes::from_static(&[9, 1, 1, 0])),
        Err(DecodeError("unknown record version"))
    );
    assert!(decode_queue_key(b"\x00\x05ab").is_err());
    assert!(decode_message_key(b"1234").is_err());
    assert!(decode_string_key(&[0xff]).is_err());
}
