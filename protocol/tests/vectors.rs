//! Byte-exact test vectors for every packet type in every protocol version
//! where it exists: each is a hex string and the `Packet` it must decode to,
//! and encoding that packet must give back the very same bytes.
//!
//! Where the vectors come from (each one says so next to it):
//! - `captured`: real traffic between Debian's mosquitto 2.0.11 broker and
//!   its `mosquitto_pub`/`mosquitto_sub` clients (and paho-mqtt 2.2.0),
//!   recorded through a logging TCP proxy; the log, with the commands that
//!   produced it, is `tests/captures/mosquitto-2.0.11.log`;
//! - `spec`: the examples of the MQTT 3.1, 3.1.1 and 5.0 specifications,
//!   and packets built field by field from their layouts;
//! - `malformed`: one failing input per validation rule, asserting the
//!   exact `DecodeError`;
//! - `incremental`: several packets per read, and packets split across reads.
//!
//! The same tables check every build of the codec: a client build (feature `client`) decodes
//! and encodes only its own directions, so for the other direction each vector checks that
//! the packet is refused with `NotReceived` or `NotSent` instead.

// A test crate's root resolves modules beside itself; these live in vectors/.
#[path = "vectors/captured.rs"]
mod captured;
#[path = "vectors/incremental.rs"]
mod incremental;
#[path = "vectors/malformed.rs"]
mod malformed;
#[path = "vectors/spec.rs"]
mod spec;

use std::collections::BTreeMap;

use aviary_protocol::{
    decode, DecodeError, EncodeError, Packet, PacketType, ProtocolVersion, MAX_PACKET_SIZE,
};
use bytes::BytesMut;

pub(crate) use helpers::*;

/// Constructors that keep the vector tables short.
mod helpers {
    use std::num::NonZeroU16;

    use aviary_protocol::{
        Ack, ByteString, Connect, Packet, ProtocolVersion, Publish, QoS, ReasonCode,
        RetainHandling, SubAck, Subscribe, SubscriptionOptions, TopicFilter, UnsubAck, Unsubscribe,
    };
    use bytes::Bytes;

    /// One vector: where it came from, the version, the bytes, the packet.
    #[derive(Debug)]
    pub(crate) struct Vector {
        pub(crate) from: &'static str,
        pub(crate) version: ProtocolVersion,
        pub(crate) hex: &'static str,
        pub(crate) packet: Packet,
    }

    pub(crate) fn vector(
        version: ProtocolVersion,
        from: &'static str,
        hex: &'static str,
        packet: impl Into<Packet>,
    ) -> Vector {
        Vector {
            from,
            version,
            hex,
            packet: packet.into(),
        }
    }

    /// Hex to bytes; spaces are for readability.
    pub(crate) fn unhex(hex: &str) -> Vec<u8> {
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        assert!(digits.len().is_multiple_of(2), "odd hex length: {hex}");
        digits
            .chunks(2)
            .map(|pair| {
                let s = std::str::from_utf8(pair).unwrap();
                u8::from_str_radix(s, 16).unwrap_or_else(|_| panic!("bad hex {s:?} in {hex}"))
            })
            .collect()
    }

    pub(crate) fn id(n: u16) -> NonZeroU16 {
        NonZeroU16::new(n).unwrap()
    }

    pub(crate) fn s(v: &'static str) -> ByteString {
        ByteString::from_static(v)
    }

    pub(crate) fn b(v: &'static [u8]) -> Bytes {
        Bytes::from_static(v)
    }

    pub(crate) fn qos(n: u8) -> QoS {
        [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][usize::from(n)]
    }

    pub(crate) fn connect(
        version: ProtocolVersion,
        client_id: &'static str,
        keep_alive: u16,
        clean_start: bool,
    ) -> Connect {
        let mut c = Connect::new(version, s(client_id));
        c.keep_alive = keep_alive;
        c.clean_start = clean_start;
        c
    }

    /// A PUBLISH; `packet_id` 0 means none (QoS 0).
    pub(crate) fn publish(
        topic: &'static str,
        payload: &'static [u8],
        qos_level: u8,
        packet_id: u16,
        retain: bool,
    ) -> Publish {
        let mut p = Publish::new(s(topic), b(payload));
        p.qos = qos(qos_level);
        p.packet_id = NonZeroU16::new(packet_id);
        p.retain = retain;
        p
    }

    pub(crate) fn ack(packet_id: u16) -> Ack {
        Ack::new(id(packet_id))
    }

    pub(crate) fn ack_with(packet_id: u16, reason: ReasonCode) -> Ack {
        Ack::with_reason(id(packet_id), reason)
    }

    pub(crate) fn filter(f: &'static str) -> TopicFilter {
        TopicFilter::from_static(f)
    }

    pub(crate) fn options(
        qos_level: u8,
        no_local: bool,
        retain_as_published: bool,
        retain_handling: RetainHandling,
    ) -> SubscriptionOptions {
        SubscriptionOptions {
            qos: qos(qos_level),
            no_local,
            retain_as_published,
            retain_handling,
        }
    }

    /// A SUBSCRIBE of filters at plain QoS levels, no properties.
    pub(crate) fn subscribe(packet_id: u16, filters: &[(&'static str, u8)]) -> Subscribe {
        Subscribe {
            packet_id: id(packet_id),
            properties: Default::default(),
            filters: filters
                .iter()
                .map(|&(f, q)| (filter(f), SubscriptionOptions::qos(qos(q))))
                .collect(),
        }
    }

    pub(crate) fn suback(packet_id: u16, codes: &[ReasonCode]) -> SubAck {
        SubAck {
            packet_id: id(packet_id),
            properties: Default::default(),
            reason_codes: codes.to_vec(),
        }
    }

    pub(crate) fn unsubscribe(packet_id: u16, filters: &[&'static str]) -> Unsubscribe {
        Unsubscribe {
            packet_id: id(packet_id),
            user_properties: Vec::new(),
            filters: filters.iter().map(|f| filter(f)).collect(),
        }
    }

    pub(crate) fn unsuback(packet_id: u16, codes: &[ReasonCode]) -> UnsubAck {
        UnsubAck {
            packet_id: id(packet_id),
            properties: Default::default(),
            reason_codes: codes.to_vec(),
        }
    }
}

/// Decodes `bytes` as one whole packet, which must consume them all.
fn decode_all(bytes: &[u8], version: ProtocolVersion, what: &str) -> Packet {
    let mut buf = BytesMut::from(bytes);
    let packet = decode(&mut buf, version, MAX_PACKET_SIZE)
        .unwrap_or_else(|e| panic!("{what}: decode failed: {e}"))
        .unwrap_or_else(|| panic!("{what}: decode wants more bytes"));
    assert!(buf.is_empty(), "{what}: {} bytes left over", buf.len());
    packet
}

fn encode(packet: &Packet, version: ProtocolVersion, what: &str) -> Vec<u8> {
    let mut out = BytesMut::new();
    packet
        .encode(version, &mut out)
        .unwrap_or_else(|e| panic!("{what}: encode failed: {e}"));
    assert_eq!(
        packet.encoded_len(version),
        Ok(out.len()),
        "{what}: encoded_len"
    );
    out.to_vec()
}

/// Decoding `bytes` gives `packet` when this build decodes its type, and is refused with
/// `NotReceived` when it does not.
fn assert_decodes(bytes: &[u8], version: ProtocolVersion, packet: &Packet, what: &str) {
    let t = packet.packet_type();
    if t.is_decoded() {
        assert_eq!(&decode_all(bytes, version, what), packet, "{what}");
    } else {
        let mut buf = BytesMut::from(bytes);
        let got = decode(&mut buf, version, MAX_PACKET_SIZE);
        assert_eq!(got, Err(DecodeError::NotReceived(t)), "{what}");
    }
}

/// Encoding `packet` gives `bytes` when this build encodes its type, and is refused with
/// `NotSent`, writing nothing, when it does not.
fn assert_encodes(packet: &Packet, version: ProtocolVersion, bytes: &[u8], what: &str) {
    let t = packet.packet_type();
    if t.is_encoded() {
        assert_eq!(hex(&encode(packet, version, what)), hex(bytes), "{what}");
    } else {
        let mut out = BytesMut::new();
        let got = packet.encode(version, &mut out);
        assert_eq!(got, Err(EncodeError::NotSent(t)), "{what}");
        assert!(out.is_empty(), "{what}");
    }
}

/// Decoding the bytes gives the packet, and encoding the packet gives the
/// bytes back, exactly (in the directions this build has).
fn assert_exact(v: &Vector) {
    let what = format!("{} [{}] {}", v.from, v.version, v.hex);
    let bytes = unhex(v.hex);
    assert_decodes(&bytes, v.version, &v.packet, &what);
    assert_encodes(&v.packet, v.version, &bytes, &what);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn all_exact() -> Vec<Vector> {
    let mut all = captured::exact();
    all.extend(spec::exact());
    all
}

#[test]
fn exact_vectors_decode_and_encode_byte_for_byte() {
    for v in all_exact() {
        assert_exact(&v);
    }
}

/// MQTT 5 leaves the order of properties free. These captures list them in
/// another order than our encoder does, so they must decode to the packet,
/// and our encoding must be the same bytes, re-ordered, that decode to it too.
#[test]
fn reordered_properties_decode_exactly_and_encode_equivalently() {
    for v in captured::reordered() {
        let what = format!("{} [{}] {}", v.from, v.version, v.hex);
        let bytes = unhex(v.hex);
        assert_decodes(&bytes, v.version, &v.packet, &what);
        if !v.packet.packet_type().is_encoded() {
            continue;
        }
        let ours = encode(&v.packet, v.version, &what);
        assert_ne!(ours, bytes, "{what}: now byte-exact, move it to exact()");
        assert_eq!(ours.len(), bytes.len(), "{what}");
        let (mut a, mut b) = (ours.clone(), bytes);
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b, "{what}: not a permutation");
        assert_decodes(&ours, v.version, &v.packet, &what);
    }
}

/// Inputs that are valid but not in the form our encoder writes (a spelled
/// out "success, no properties", say): they decode to the packet, and the
/// packet encodes to the canonical bytes given.
#[test]
fn non_canonical_forms_decode_to_the_canonical_packet() {
    for (v, canonical) in spec::non_canonical() {
        let what = format!("{} [{}] {}", v.from, v.version, v.hex);
        assert_decodes(&unhex(v.hex), v.version, &v.packet, &what);
        assert_encodes(&v.packet, v.version, &unhex(canonical), &what);
    }
}

/// Every packet type has at least one byte-exact vector in every version it
/// exists in, and at least one of them comes from a real capture except for
/// AUTH, which mosquitto does not send without an authentication plugin.
#[test]
fn every_packet_type_is_covered_in_every_version() {
    let versions = [
        ProtocolVersion::V3_1,
        ProtocolVersion::V3_1_1,
        ProtocolVersion::V5,
    ];
    let mut exact: BTreeMap<(String, ProtocolVersion), usize> = BTreeMap::new();
    let mut from_capture: BTreeMap<(String, ProtocolVersion), usize> = BTreeMap::new();
    for v in all_exact() {
        let key = (v.packet.packet_type().name().to_owned(), v.version);
        *exact.entry(key.clone()).or_default() += 1;
        if v.from.starts_with("captured") {
            *from_capture.entry(key).or_default() += 1;
        }
    }
    for nibble in 1..=15 {
        let t = PacketType::from_nibble(nibble).unwrap();
        for version in versions {
            if t == PacketType::Auth && !version.is_v5() {
                continue;
            }
            let key = (t.name().to_owned(), version);
            let n = exact.get(&key).copied().unwrap_or(0);
            let c = from_capture.get(&key).copied().unwrap_or(0);
            let (name, v) = (t.name(), version.to_string());
            eprintln!("{name:<12} {v:<5} {n:>3} exact vectors, {c:>3} captured");
            assert!(n > 0, "no byte-exact vector for {t} in MQTT {version}");
            assert!(
                c > 0 || t == PacketType::Auth,
                "no captured vector for {t} in MQTT {version}"
            );
        }
    }
}
