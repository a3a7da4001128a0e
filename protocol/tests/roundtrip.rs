//! Property tests of the codec: every valid packet of every type, in every
//! version, survives encode then decode unchanged, `encoded_len` is exact, a
//! stream of packets decodes the same however it is split into reads, and
//! no input whatsoever makes the decoder panic or consume more than a
//! packet. A build with one direction only (feature `client`) round-trips the packets that
//! go both ways: PUBLISH, its acknowledgements, DISCONNECT and AUTH.

// The generators of one-direction packets are used only when both directions are compiled in.
#![cfg_attr(not(feature = "full"), allow(dead_code))]

// A test crate's root resolves modules beside itself; these live in roundtrip/.
#[path = "roundtrip/fields.rs"]
mod fields;
#[path = "roundtrip/packets.rs"]
mod packets;

use aviary_protocol::{decode, Packet, ProtocolVersion, MAX_PACKET_SIZE};
use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use fields::version;
use packets::{packet, versioned_packet};

fn encode(packet: &Packet, v: ProtocolVersion) -> BytesMut {
    let mut buf = BytesMut::new();
    packet.encode(v, &mut buf).unwrap();
    buf
}

/// Decodes everything `buf` holds, checking that each packet consumed a
/// non-empty prefix and that `Ok(None)` consumed nothing.
fn drain(
    buf: &mut BytesMut,
    v: ProtocolVersion,
    max: u32,
    out: &mut Vec<Packet>,
) -> Result<(), TestCaseError> {
    loop {
        let before = buf.clone();
        match decode(buf, v, max) {
            Ok(Some(p)) => {
                let consumed = before.len() - buf.len();
                prop_assert!(consumed >= 2, "a packet is at least two bytes");
                prop_assert!(consumed <= max as usize);
                prop_assert_eq!(&buf[..], &before[consumed..]);
                out.push(p);
            }
            Ok(None) => {
                prop_assert_eq!(&buf[..], &before[..]);
                return Ok(());
            }
            Err(_) => return Ok(()),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn encode_then_decode_is_identity((v, packet) in versioned_packet()) {
        let mut buf = encode(&packet, v);
        prop_assert_eq!(packet.encoded_len(v), Ok(buf.len()));
        prop_assert_eq!(decode(&mut buf, v, MAX_PACKET_SIZE), Ok(Some(packet)));
        prop_assert!(buf.is_empty());
    }

    /// A PUBLISH's head and then its payload are the packet: a writer may send the payload
    /// from where it is rather than copy it.
    #[cfg(feature = "server")]
    #[test]
    fn head_then_payload_is_the_packet((v, packet) in versioned_packet()) {
        if let Packet::Publish(p) = &packet {
            let mut head = BytesMut::new();
            p.borrowed().encode_head(v, &mut head).unwrap();
            head.extend_from_slice(&p.payload);
            prop_assert_eq!(head, encode(&packet, v));
        }
    }

    #[test]
    fn a_stream_decodes_the_same_however_it_is_split(
        (v, packets) in version().prop_flat_map(|v| (Just(v), vec(packet(v), 1..6))),
        cuts in vec(any::<Index>(), 0..8),
    ) {
        let stream: Vec<u8> = packets.iter().flat_map(|p| encode(p, v)).collect();
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.push(stream.len());
        cuts.sort_unstable();
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        let mut start = 0;
        for cut in cuts {
            buf.extend_from_slice(&stream[start..cut]);
            start = cut;
            drain(&mut buf, v, MAX_PACKET_SIZE, &mut decoded)?;
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(decoded, packets);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in vec(any::<u8>(), 0..256),
        v in version(),
        max in prop_oneof![Just(MAX_PACKET_SIZE), 0..300u32, any::<u32>()],
    ) {
        let mut buf = BytesMut::from(&bytes[..]);
        drain(&mut buf, v, max, &mut Vec::new())?;
    }

    /// Valid packets with a few bytes changed reach much deeper than random
    /// bytes; whatever still decodes must round-trip.
    #[test]
    fn mutated_packets_never_panic_and_round_trip(
        (v, packet) in versioned_packet(),
        flips in vec((any::<Index>(), 1..=255u8), 1..4),
        cut in any::<Index>(),
    ) {
        let mut bytes = encode(&packet, v).to_vec();
        for (i, x) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= x;
        }
        bytes.truncate(cut.index(bytes.len()) + 1);
        let mut buf = BytesMut::from(&bytes[..]);
        let mut decoded = Vec::new();
        drain(&mut buf, v, MAX_PACKET_SIZE, &mut decoded)?;
        // A one-direction build may decode what it cannot encode (a client and PINGRESP).
        for p in decoded.into_iter().filter(|p| p.packet_type().is_encoded()) {
            let mut again = encode(&p, v);
            prop_assert_eq!(p.encoded_len(v), Ok(again.len()));
            prop_assert_eq!(decode(&mut again, v, MAX_PACKET_SIZE), Ok(Some(p)));
        }
    }
}

// The browser client's entry points, over plain vectors: the same results as `decode` and
// `encode` over `BytesMut`.
#[cfg(feature = "client")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn decode_slice_agrees_with_decode(
        (v, packet) in versioned_packet(),
        flips in vec((any::<Index>(), 0..=255u8), 0..3),
        cut in any::<Index>(),
        max in prop_oneof![Just(MAX_PACKET_SIZE), 0..300u32],
    ) {
        let mut bytes = encode(&packet, v).to_vec();
        for (i, x) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= x;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let mut buf = BytesMut::from(&bytes[..]);
        let expected = decode(&mut buf, v, max).map(|p| p.map(|p| (p, bytes.len() - buf.len())));
        prop_assert_eq!(aviary_protocol::decode_slice(&bytes, v, max), expected);
    }

    #[test]
    fn encode_vec_agrees_with_encode((v, packet) in versioned_packet()) {
        let mut out = Vec::new();
        let got = packet.encode_vec(v, &mut out);
        let mut buf = BytesMut::new();
        prop_assert_eq!(got, packet.encode(v, &mut buf));
        prop_assert_eq!(&out[..], &buf[..]);
    }
}
