//! Negative vectors: for each validation rule the decoder enforces, at
//! least one otherwise complete packet that breaks it, and the exact
//! `DecodeError` it must produce (for the variants that carry a message,
//! the rule the message cites).

use aviary_protocol::ProtocolVersion::{self, V3_1, V3_1_1, V5};
use aviary_protocol::{decode, DecodeError as E, PacketType as T, TopicError, MAX_PACKET_SIZE};
use bytes::BytesMut;

use super::unhex;

fn decode_error(version: ProtocolVersion, hex: &str) -> E {
    let mut buf = BytesMut::from(&unhex(hex)[..]);
    match decode(&mut buf, version, MAX_PACKET_SIZE) {
        Err(e) => e,
        Ok(p) => panic!("{hex} in MQTT {version}: expected an error, got {p:?}"),
    }
}

/// Asserts that `hex` fails to decode in `version` with `expected`. For
/// the variants that carry a message (`Malformed`, `Protocol`,
/// `InvalidQoS`), `expected` holds the rule the message must cite.
fn rejects(version: ProtocolVersion, hex: &str, expected: E) {
    let err = decode_error(version, hex);
    // A build without this packet's direction (a client build and CONNECT, say) refuses it
    // once the fixed header has passed, without looking inside.
    if let Ok(t) = T::from_nibble(unhex(hex)[0] >> 4) {
        if !t.is_decoded() && err == E::NotReceived(t) {
            return;
        }
    }
    let ok = match (&err, &expected) {
        (E::Malformed(m), E::Malformed(rule))
        | (E::Protocol(m), E::Protocol(rule))
        | (E::InvalidQoS(m), E::InvalidQoS(rule)) => m.contains(rule),
        _ => err == expected,
    };
    assert!(
        ok,
        "{hex} in MQTT {version}: got {err:?}, expected {expected:?}"
    );
}

fn flags(packet: T, flags: u8) -> E {
    E::InvalidFlags { packet, flags }
}

fn truncated(packet: T, field: &'static str) -> E {
    E::Truncated { packet, field }
}

fn duplicate(property: u8, packet: T) -> E {
    E::DuplicateProperty { property, packet }
}

fn misplaced(property: u8, packet: T) -> E {
    E::MisplacedProperty { property, packet }
}

fn code(code: u8, packet: T) -> E {
    E::InvalidReasonCode { code, packet }
}

#[test]
fn fixed_header() {
    rejects(V3_1_1, "0000", E::ReservedPacketType(0));
    // [MQTT-2.1.3-1]: reserved flags; SUBSCRIBE, UNSUBSCRIBE and PUBREL need 0b0010.
    for v in [V3_1, V3_1_1, V5] {
        rejects(v, "8008 0001 0003612f62 01", flags(T::Subscribe, 0));
    }
    rejects(V3_1_1, "8308 0001 0003612f62 01", flags(T::Subscribe, 3));
    rejects(V3_1_1, "a007 0001 0003612f62", flags(T::Unsubscribe, 0));
    rejects(V5, "6002 0001", flags(T::PubRel, 0));
    rejects(V3_1_1, "4202 0001", flags(T::PubAck, 2));
    rejects(V3_1_1, "c100", flags(T::PingReq, 1));
    rejects(
        V3_1_1,
        "110c 00044d515454 04 02 003c 0000",
        flags(T::Connect, 1),
    );
    // Refused on the first byte, before the remaining length arrives.
    rejects(V3_1_1, "80", flags(T::Subscribe, 0));
    // [MQTT-1.5.5-1]: at most four bytes of remaining length.
    rejects(V3_1_1, "30 ffffffff01", E::MalformedVarInt);
    rejects(V3_1_1, "30 80808080", E::MalformedVarInt);
    // ... and of a property length.
    rejects(V5, "300a 000161 ffffffff01 0000", E::MalformedVarInt);
    // AUTH only exists in MQTT 5.
    rejects(
        V3_1_1,
        "f000",
        E::PacketNotInVersion {
            packet: T::Auth,
            version: V3_1_1,
        },
    );
    rejects(
        V3_1,
        "f000",
        E::PacketNotInVersion {
            packet: T::Auth,
            version: V3_1,
        },
    );
}

#[test]
fn exact_lengths() {
    rejects(V3_1_1, "c00100", E::TrailingBytes(T::PingReq, 1));
    rejects(V5, "d00100", E::TrailingBytes(T::PingResp, 1));
    rejects(V3_1_1, "2003 0000 00", E::TrailingBytes(T::ConnAck, 1));
    rejects(V3_1_1, "4003 0001 00", E::TrailingBytes(T::PubAck, 1));
    rejects(V5, "4005 0001 00 00 00", E::TrailingBytes(T::PubAck, 1));
    rejects(V3_1_1, "b003 0001 00", E::TrailingBytes(T::UnsubAck, 1));
    rejects(V3_1_1, "e00100", E::TrailingBytes(T::Disconnect, 1));
    rejects(V5, "e003 00 00 00", E::TrailingBytes(T::Disconnect, 1));
    rejects(
        V3_1_1,
        "100e 00044d515454 04 02 003c 000163 ff",
        E::TrailingBytes(T::Connect, 1),
    );
    rejects(V3_1_1, "1002 0004", truncated(T::Connect, "protocol name"));
    rejects(
        V3_1_1,
        "3204 0002 6162",
        truncated(T::Publish, "packet identifier"),
    );
    rejects(V3_1_1, "4001 00", truncated(T::PubAck, "packet identifier"));
    rejects(V5, "3005 000161 05 01", truncated(T::Publish, "properties"));
    rejects(
        V5,
        "3006 000161 02 0200",
        truncated(T::Publish, "message expiry"),
    );
}

#[test]
fn strings_and_topics() {
    // [MQTT-1.5.4-1]: well-formed UTF-8, no surrogates, no overlong forms.
    rejects(V3_1_1, "3004 0002 c328", E::InvalidUtf8);
    rejects(V3_1_1, "3005 0003 eda080", E::InvalidUtf8);
    rejects(V3_1_1, "3004 0002 c0af", E::InvalidUtf8);
    rejects(
        V3_1_1,
        "100d 00044d515454 04 02 003c 0001ff",
        E::InvalidUtf8,
    );
    // [MQTT-1.5.4-2]: no U+0000, in a topic or any other string.
    rejects(V3_1_1, "3005 0003 610062", E::NullCharacter);
    rejects(V5, "300b 000161 07 26000100000162", E::NullCharacter);
    // [MQTT-3.3.2-2] / [MQTT-4.7.1-1]: no wildcards in topic names.
    rejects(
        V3_1_1,
        "3005 0003 612f23",
        E::Topic(TopicError::WildcardInTopicName),
    );
    rejects(
        V3_1,
        "3005 0003 612f2b",
        E::Topic(TopicError::WildcardInTopicName),
    );
    rejects(
        V5,
        "3006 0003612f23 00",
        E::Topic(TopicError::WildcardInTopicName),
    );
    rejects(
        V5,
        "300a 000161 06 080003612f23",
        E::Topic(TopicError::WildcardInTopicName),
    );
    rejects(
        V3_1_1,
        "1014 00044d515454 04 06 003c 000163 0003612f23 0000",
        E::Topic(TopicError::WildcardInTopicName),
    );
    // [MQTT-4.7.1-2] and [MQTT-4.7.1-3]: `a/b#` and `a+` are not filters.
    rejects(
        V3_1_1,
        "8209 0001 0004612f6223 00",
        E::Topic(TopicError::MisplacedMultiLevelWildcard),
    );
    rejects(
        V3_1_1,
        "8207 0001 0002612b 00",
        E::Topic(TopicError::MisplacedSingleLevelWildcard),
    );
    rejects(
        V5,
        "820a 0001 00 0004612f6223 00",
        E::Topic(TopicError::MisplacedMultiLevelWildcard),
    );
    rejects(
        V3_1_1,
        "a208 0001 0004612f6223",
        E::Topic(TopicError::MisplacedMultiLevelWildcard),
    );
    rejects(
        V5,
        "a207 0001 00 0002612b",
        E::Topic(TopicError::MisplacedSingleLevelWildcard),
    );
    // [MQTT-4.7.3-1]: topics are at least one character, unless MQTT 5 uses a topic alias.
    rejects(V3_1_1, "3002 0000", E::Topic(TopicError::Empty));
    rejects(V5, "3003 0000 00", E::Topic(TopicError::Empty));
    rejects(V3_1_1, "8205 0001 0000 00", E::Topic(TopicError::Empty));
    rejects(V3_1_1, "a204 0001 0000", E::Topic(TopicError::Empty));
    rejects(
        V3_1_1,
        "1011 00044d515454 04 06 003c 000163 0000 0000",
        E::Topic(TopicError::Empty),
    );
    // [MQTT-4.8.2-1] and [MQTT-4.8.2-2]: `$share/{ShareName}/{filter}`.
    rejects(
        V5,
        "820f 0001 00 00092473686172652f2f78 00",
        E::Topic(TopicError::InvalidShareName),
    );
    rejects(
        V5,
        "820e 0001 00 00082473686172652f67 00",
        E::Topic(TopicError::EmptySharedFilter),
    );
}

#[test]
fn packet_identifiers() {
    // [MQTT-2.2.1-3]: never zero.
    for v in [V3_1, V3_1_1, V5] {
        rejects(v, "3207 0003612f62 0000", E::ZeroPacketId);
        rejects(v, "3407 0003612f62 0000", E::ZeroPacketId);
        for hex in ["40020000", "50020000", "62020000", "70020000", "b0020000"] {
            rejects(v, hex, E::ZeroPacketId);
        }
    }
    rejects(V3_1_1, "8208 0000 0003612f62 00", E::ZeroPacketId);
    rejects(V3_1_1, "9003 0000 00", E::ZeroPacketId);
    rejects(V3_1_1, "a207 0000 0003612f62", E::ZeroPacketId);
}

#[test]
fn qos_and_publish_flags() {
    for v in [V3_1, V3_1_1, V5] {
        rejects(v, "3607 0003612f62 0001", E::InvalidQoS("MQTT-3.3.1-4"));
        rejects(v, "3805 0003612f62", E::Malformed("MQTT-3.3.1-2"));
    }
    rejects(
        V3_1,
        "8208 0001 0003612f62 03",
        E::InvalidQoS("MQTT-3.8.3-4"),
    );
    rejects(
        V3_1_1,
        "8208 0001 0003612f62 03",
        E::InvalidQoS("MQTT-3.8.3-4"),
    );
    rejects(
        V5,
        "8209 0001 00 0003612f62 03",
        E::InvalidQoS("MQTT-3.8.3-4"),
    );
    rejects(
        V3_1_1,
        "1013 00044d515454 04 1e 003c 000163 000177 00016d",
        E::InvalidQoS("MQTT-3.1.2-12"),
    );
}

#[test]
fn subscription_options() {
    // MQTT 3.1.1 [MQTT-3.8.3-4]: the upper six bits are reserved.
    rejects(
        V3_1_1,
        "8208 0001 0003612f62 04",
        E::Malformed("MQTT-3.8.3-4"),
    );
    // MQTT 5 [MQTT-3.8.3-5]: bits 6 and 7 are reserved, retain handling 3 too.
    rejects(
        V5,
        "8209 0001 00 0003612f62 c1",
        E::Malformed("MQTT-3.8.3-5"),
    );
    rejects(
        V5,
        "8209 0001 00 0003612f62 30",
        E::Protocol("MQTT-3.8.3-5"),
    );
    // MQTT 5 [MQTT-3.8.3-4]: No Local on a shared subscription.
    rejects(
        V5,
        "8210 0001 00 000a2473686172652f672f61 04",
        E::Protocol("MQTT-3.8.3-4"),
    );
    // At least one filter [MQTT-3.8.3-2], [MQTT-3.10.3-2], one reason code [MQTT-3.9.3-1].
    rejects(V3_1_1, "8202 0001", E::Protocol("MQTT-3.8.3-2"));
    rejects(V5, "8203 0001 00", E::Protocol("MQTT-3.8.3-2"));
    rejects(V3_1_1, "a202 0001", E::Protocol("MQTT-3.10.3-2"));
    rejects(V3_1_1, "9002 0001", E::Protocol("MQTT-3.9.3-1"));
    rejects(V5, "9003 0001 00", E::Protocol("MQTT-3.9.3-1"));
}

#[test]
fn connect() {
    // [MQTT-3.1.2-1]: the protocol name.
    rejects(
        V3_1_1,
        "100c 00044d515458 04 02 003c 0000",
        E::InvalidProtocolName("MQTX".to_owned()),
    );
    // [MQTT-3.1.2-2]: a level we do not speak, for a name we know.
    rejects(
        V3_1_1,
        "100c 00044d515454 06 02 003c 0000",
        E::UnsupportedProtocolLevel(6),
    );
    rejects(
        V5,
        "100c 00044d515454 03 02 003c 0000",
        E::UnsupportedProtocolLevel(3),
    );
    rejects(
        V3_1_1,
        "100e 00064d5149736470 04 02 003c 0000",
        E::UnsupportedProtocolLevel(4),
    );
    // [MQTT-3.1.2-3]: the reserved flag.
    rejects(
        V3_1_1,
        "100c 00044d515454 04 03 003c 0000",
        E::Malformed("MQTT-3.1.2-3"),
    );
    // [MQTT-3.1.2-11] and [MQTT-3.1.2-13]: will QoS and retain need the will flag.
    rejects(
        V3_1_1,
        "100c 00044d515454 04 0a 003c 0000",
        E::Malformed("MQTT-3.1.2-11"),
    );
    rejects(
        V5,
        "100d 00044d515454 05 22 003c 00 0000",
        E::Malformed("MQTT-3.1.2-13"),
    );
    // [MQTT-3.1.2-22]: no password without a user name before MQTT 5.
    rejects(
        V3_1_1,
        "100f 00044d515454 04 42 003c 0000 000170",
        E::Malformed("MQTT-3.1.2-22"),
    );
    rejects(
        V3_1,
        "1011 00064d5149736470 03 42 003c 0000 000170",
        E::Malformed("MQTT-3.1.2-22"),
    );
}

#[test]
fn properties() {
    // [MQTT-2.2.2-2] and each packet's property table: given twice.
    rejects(
        V5,
        "1017 00044d515454 05 02 003c 0a 110000000a 110000000a 0000",
        duplicate(0x11, T::Connect),
    );
    rejects(
        V5,
        "300a 000161 06 230001 230002",
        duplicate(0x23, T::Publish),
    );
    rejects(
        V5,
        "820b 0001 04 0b01 0b02 000161 00",
        duplicate(0x0B, T::Subscribe),
    );
    rejects(
        V5,
        "400c 0001 00 08 1f000161 1f000162",
        duplicate(0x1F, T::PubAck),
    );
    // ... or not allowed in the packet: Topic Alias in CONNECT, and others.
    rejects(
        V5,
        "1010 00044d515454 05 02 003c 03 230001 0000",
        misplaced(0x23, T::Connect),
    );
    rejects(V5, "3009 000161 05 110000000a", misplaced(0x11, T::Publish));
    rejects(V5, "3009 000161 05 180000000a", misplaced(0x18, T::Publish));
    rejects(
        V5,
        "820b 0001 04 1f000161 000161 00",
        misplaced(0x1F, T::Subscribe),
    );
    rejects(
        V5,
        "1017 00044d515454 05 06 003c 00 000163 02 0b01 000177 00016d",
        misplaced(0x0B, T::Connect),
    );
    rejects(V5, "3005 000161 01 00", misplaced(0x00, T::Publish));
    // Identifiers are variable byte integers: 0x80 0x01 is 128, undefined;
    // 0x80 0x02 is 256, beyond every defined one.
    rejects(V5, "3006 000161 02 8001", misplaced(128, T::Publish));
    rejects(V5, "3006 000161 02 8002", E::Malformed("MQTT-2.2.2"));
    // Values the specification forbids.
    rejects(V5, "3007 000161 03 230000", E::Protocol("MQTT-3.3.2-8"));
    rejects(
        V5,
        "8209 0001 02 0b00 000161 00",
        E::Protocol("MQTT-3.8.2-1"),
    );
    rejects(
        V5,
        "1010 00044d515454 05 02 003c 03 210000 0000",
        E::Protocol("MQTT-3.1.2-21"),
    );
    rejects(
        V5,
        "1012 00044d515454 05 02 003c 05 2700000000 0000",
        E::Protocol("MQTT-3.1.2-24"),
    );
    rejects(
        V5,
        "1011 00044d515454 05 02 003c 04 160001ff 0000",
        E::Protocol("MQTT-3.1.2-28"),
    );
    rejects(V5, "3006 000161 02 0102", E::Protocol("0 or 1"));
    rejects(V5, "2005 00 00 02 2402", E::Protocol("maximum QoS"));
}

#[test]
fn reason_codes() {
    // Section 2.4: each packet carries only its own reason codes.
    rejects(V5, "4003 0001 92", code(0x92, T::PubAck));
    rejects(V5, "5003 0001 92", code(0x92, T::PubRec));
    rejects(V5, "6203 0001 10", code(0x10, T::PubRel));
    rejects(V5, "7003 0001 80", code(0x80, T::PubComp));
    rejects(V5, "9004 0001 00 11", code(0x11, T::SubAck));
    rejects(V5, "b004 0001 00 10", code(0x10, T::UnsubAck));
    rejects(V5, "2003 00 04 00", code(0x04, T::ConnAck));
    rejects(V5, "e00105", code(0x05, T::Disconnect));
    rejects(V5, "e0018c", code(0x8C, T::Disconnect));
    rejects(V5, "f00101", code(0x01, T::Auth));
    // MQTT 3.x: CONNACK return codes 0-5, SUBACK 0, 1, 2 or 0x80.
    rejects(V3_1_1, "20020006", code(6, T::ConnAck));
    rejects(V3_1, "20020006", code(6, T::ConnAck));
    rejects(V3_1_1, "9003 0001 03", code(3, T::SubAck));
    // [MQTT-3.2.2-1]: reserved CONNACK flags; session present only on success.
    rejects(V3_1_1, "20020200", E::Malformed("MQTT-3.2.2-1"));
    rejects(V5, "2003 80 00 00", E::Malformed("MQTT-3.2.2-1"));
    rejects(V3_1_1, "20020105", E::Protocol("MQTT-3.2.2"));
    rejects(V5, "2003 01 80 00", E::Protocol("MQTT-3.2.2"));
}

/// The maximum packet size is enforced from the fixed header alone, before
/// the body is buffered (or room is reserved for it).
#[test]
fn packet_too_large_is_refused_from_the_fixed_header() {
    // The first five bytes of a PUBLISH announcing 2,097,151 bytes.
    let mut buf = BytesMut::from(&unhex("30 ffff7f 00 01")[..]);
    assert_eq!(
        decode(&mut buf, V5, 1024),
        Err(E::PacketTooLarge {
            size: 2_097_155,
            max: 1024
        })
    );
    assert!(buf.capacity() < 1024, "reserved room for a refused packet");
    // Only the fixed header: 1 + 2 + 1024 bytes against a limit of 1024.
    let mut buf = BytesMut::from(&unhex("30 8008")[..]);
    assert_eq!(
        decode(&mut buf, V3_1_1, 1024),
        Err(E::PacketTooLarge {
            size: 1027,
            max: 1024
        })
    );
    // At the limit it waits for the body, and keeps what it has.
    let mut buf = BytesMut::from(&unhex("30 8008")[..]);
    assert_eq!(decode(&mut buf, V3_1_1, 1027), Ok(None));
    assert_eq!(buf.len(), 3);
    // The largest remaining length, and the smallest packet against a limit of 1.
    let mut buf = BytesMut::from(&unhex("30 ffffff7f")[..]);
    assert_eq!(
        decode(&mut buf, V5, 1_000_000),
        Err(E::PacketTooLarge {
            size: MAX_PACKET_SIZE as usize,
            max: 1_000_000
        })
    );
    let mut buf = BytesMut::from(&unhex("c000")[..]);
    assert_eq!(
        decode(&mut buf, V3_1_1, 1),
        Err(E::PacketTooLarge { size: 2, max: 1 })
    );
}

/// Each error maps to the MQTT 5 reason code a server sends back.
#[test]
fn errors_map_to_reason_codes() {
    use aviary_protocol::ReasonCode as Rc;
    let cases = [
        (V5, "30 ffffff7f", Rc::PACKET_TOO_LARGE),
        (
            V5,
            "100c 00044d515454 06 02 003c 0000",
            Rc::UNSUPPORTED_PROTOCOL_VERSION,
        ),
        (
            V5,
            "100c 00044d515458 05 02 003c 0000",
            Rc::UNSUPPORTED_PROTOCOL_VERSION,
        ),
        (V5, "3006 0003612f23 00", Rc::MALFORMED_PACKET),
        (V5, "300a 000161 06 230001 230002", Rc::PROTOCOL_ERROR),
        (
            V5,
            "820f 0001 00 00092473686172652f2f78 00",
            Rc::TOPIC_FILTER_INVALID,
        ),
    ];
    for (version, hex, code) in cases {
        let mut buf = BytesMut::from(&unhex(hex)[..]);
        let err = decode(&mut buf, version, 1_000_000).unwrap_err();
        // A packet of the other side's direction is a protocol error, whatever is inside.
        let code = match err {
            E::NotReceived(_) => Rc::PROTOCOL_ERROR,
            _ => code,
        };
        assert_eq!(err.reason_code(), code, "{hex}: {err}");
        assert!(!err.to_string().is_empty());
    }
}
