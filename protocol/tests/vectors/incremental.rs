//! Incremental decoding: one read may hold several packets, and a packet
//! may arrive in any number of pieces; the decoder yields exactly the same
//! packets either way and never consumes a partial one.

use std::collections::BTreeMap;

use aviary_protocol::ProtocolVersion::V5;
use aviary_protocol::{
    decode, Codec, DecodeError, Packet, PacketType, ProtocolVersion, MAX_PACKET_SIZE,
};
use bytes::BytesMut;

use super::{all_exact, unhex};

#[test]
#[cfg(feature = "client")]
fn three_packets_in_one_read_then_none() {
    // captured: mosquitto 2.0.11 answering mosquitto_sub -V mqttv5 -q 2: CONNACK, SUBACK, PUBLISH.
    let read = unhex(concat!(
        "200900000622000a210014",
        "90050001000202",
        "3321000d706574732f312f7374617475730001007b226f6e6c696e65223a747275657d",
    ));
    let mut buf = BytesMut::from(&read[..]);
    let mut types = Vec::new();
    for _ in 0..3 {
        let packet = decode(&mut buf, V5, MAX_PACKET_SIZE).unwrap().unwrap();
        types.push(packet.packet_type().name());
    }
    assert_eq!(types, ["CONNACK", "SUBACK", "PUBLISH"]);
    assert_eq!(decode(&mut buf, V5, MAX_PACKET_SIZE), Ok(None));
    assert!(buf.is_empty());
}

#[test]
fn acknowledgements_in_one_read_are_taken_one_by_one() {
    // A subscriber's read: PUBACK 1, PUBREC 2, PUBACK 3 with a reason code (MQTT 5), PUBCOMP
    // 4, then half of PUBREL 5. The short ones are read in place, the one with a reason code
    // in full, and the partial one is left for the next read.
    let read = unhex("40020001 50020002 4003000310 70020004 6202");
    let mut buf = BytesMut::from(&read[..]);
    let mut got = Vec::new();
    while let Some(packet) = decode(&mut buf, V5, MAX_PACKET_SIZE).unwrap() {
        let (Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a)) =
            packet
        else {
            panic!("not an acknowledgement: {packet:?}");
        };
        let consumed = read.len() - buf.len();
        got.push((consumed, a.packet_id.get(), a.reason_code.value()));
    }
    assert_eq!(
        got,
        [(4, 1, 0x00), (8, 2, 0x00), (13, 3, 0x10), (17, 4, 0x00)]
    );
    assert_eq!(&buf[..], &unhex("6202")[..]);
    buf.extend_from_slice(&unhex("0005"));
    let rel = decode(&mut buf, V5, MAX_PACKET_SIZE).unwrap();
    assert!(matches!(rel, Some(Packet::PubRel(a)) if a.packet_id.get() == 5));
    assert!(buf.is_empty());
}

#[test]
fn every_vector_fed_byte_by_byte() {
    for v in all_exact() {
        let bytes = unhex(v.hex);
        let mut buf = BytesMut::new();
        let (last, init) = bytes.split_last().unwrap();
        for (i, &byte) in init.iter().enumerate() {
            buf.extend_from_slice(&[byte]);
            assert_eq!(
                decode(&mut buf, v.version, MAX_PACKET_SIZE),
                Ok(None),
                "{} after {} bytes",
                v.from,
                i + 1
            );
            assert_eq!(buf.len(), i + 1, "{}: consumed a partial packet", v.from);
        }
        buf.extend_from_slice(&[*last]);
        let t = v.packet.packet_type();
        let expected = if t.is_decoded() {
            Ok(Some(v.packet))
        } else {
            Err(DecodeError::NotReceived(t))
        };
        assert_eq!(
            decode(&mut buf, v.version, MAX_PACKET_SIZE),
            expected,
            "{}",
            v.from
        );
        assert!(buf.is_empty());
    }
}

/// One direction of one captured connection.
struct Stream {
    name: String,
    /// The level byte of the connection's CONNECT.
    version: ProtocolVersion,
    packets: Vec<Vec<u8>>,
}

/// The streams of `tests/captures/mosquitto-2.0.11.log`, except the client
/// side of the `raw:` sessions, whose bytes were hand-written and are in
/// part deliberately invalid.
fn captured_streams() -> Vec<Stream> {
    let log = include_str!("../captures/mosquitto-2.0.11.log");
    let mut streams: BTreeMap<(u32, &str), Stream> = BTreeMap::new();
    let mut raw = false;
    let mut versions: BTreeMap<u32, ProtocolVersion> = BTreeMap::new();
    for line in log.lines() {
        if let Some(label) = line.strip_prefix("### ") {
            raw = label.starts_with("raw:");
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let mut fields = line.split(' ');
        let (conn, dir, hex) = (
            fields.next().unwrap().parse::<u32>().unwrap(),
            fields.next().unwrap(),
            fields.next().unwrap(),
        );
        let bytes = unhex(hex);
        if bytes[0] == 0x10 {
            // CONNECT: the level follows the protocol name.
            let level = bytes[4 + usize::from(bytes[3])];
            versions.insert(conn, ProtocolVersion::from_level(level).unwrap());
        }
        if raw && dir == "C>S" {
            continue;
        }
        let version = versions[&conn];
        streams
            .entry((conn, dir))
            .or_insert_with(|| Stream {
                name: format!("connection {conn} {dir}"),
                version,
                packets: Vec::new(),
            })
            .packets
            .push(bytes);
    }
    streams.into_values().collect()
}

/// Decodes `bytes` delivered in reads of `chunk` bytes.
fn decode_in_chunks(bytes: &[u8], version: ProtocolVersion, chunk: usize) -> Vec<Packet> {
    let mut codec = Codec::new(version, MAX_PACKET_SIZE);
    let mut buf = BytesMut::new();
    let mut packets = Vec::new();
    for read in bytes.chunks(chunk) {
        buf.extend_from_slice(read);
        while let Some(p) = codec.decode(&mut buf).unwrap() {
            packets.push(p);
        }
    }
    assert!(buf.is_empty(), "{} bytes left", buf.len());
    packets
}

#[test]
fn captured_sessions_decode_the_same_in_any_chunking() {
    let streams = captured_streams();
    assert!(streams.len() > 80, "only {} streams", streams.len());
    let mut total = 0;
    // A client build decodes only what the broker sent, a server build what clients sent.
    let decoded_here = |s: &Stream| {
        s.packets
            .iter()
            .all(|p| PacketType::from_nibble(p[0] >> 4).is_ok_and(PacketType::is_decoded))
    };
    for s in streams.into_iter().filter(decoded_here) {
        let bytes = s.packets.concat();
        let whole = decode_in_chunks(&bytes, s.version, bytes.len());
        assert_eq!(whole.len(), s.packets.len(), "{}", s.name);
        for chunk in [1, 2, 3, 5, 7, 64] {
            assert_eq!(
                decode_in_chunks(&bytes, s.version, chunk),
                whole,
                "{}",
                s.name
            );
        }
        total += whole.len();
    }
    assert!(
        total > 250 || !cfg!(feature = "full"),
        "only {total} packets"
    );
    assert!(total > 100, "only {total} packets");
}

#[test]
#[cfg(feature = "server")]
fn a_connect_sets_the_codec_version() {
    // A v5 CONNECT, then a v5 PUBLISH (with its property length byte), in one read.
    let read = unhex(concat!(
        "101a00044d5154540502003c03210014000a7075622d6d7174747635",
        "301b000f706574732f312f6c6f636174696f6e007b226c6174223a317d",
    ));
    use aviary_protocol::ProtocolVersion::{V3_1, V3_1_1};

    for start in [V3_1, V3_1_1, V5] {
        let mut codec = Codec::new(start, MAX_PACKET_SIZE);
        let mut buf = BytesMut::from(&read[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Ok(Some(Packet::Connect(_)))
        ));
        assert_eq!(codec.version, V5);
        match codec.decode(&mut buf) {
            Ok(Some(Packet::Publish(p))) => assert_eq!(&p.payload[..], br#"{"lat":1}"#),
            other => panic!("{other:?}"),
        }
    }
}
