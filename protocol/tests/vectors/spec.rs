//! Vectors from the specifications: their worked examples (MQTT 3.1
//! section 3.1, MQTT 3.1.1 sections 3.1.2.10, 3.3.2.3, 3.8.3, 3.9.3, 3.10.3,
//! MQTT 5.0 sections 3.1.2.10 and 3.3.2.3), the variable byte integer table
//! (MQTT 5.0 section 1.5.5, 3.1.1 section 2.2.3), and packets built field by
//! field from the layouts where no example exists, so every property
//! identifier and reason code is checked against the specification's tables
//! rather than against the encoder.

use std::num::{NonZeroU16, NonZeroU32};

use aviary_protocol::ProtocolVersion::{self, V3_1, V3_1_1, V5};
use aviary_protocol::{
    AckProperties, Auth, AuthProperties, ConnAck, Connect, Disconnect, DisconnectProperties,
    LastWill, Packet, QoS, ReasonCode as Rc, RetainHandling, TopicName,
};

use super::{
    ack, ack_with, b, connect, filter, id, options, publish, s, suback, subscribe, unhex, unsuback,
    unsubscribe, vector, Vector,
};

/// The CONNECT of the 3.1 and 3.1.1 examples: flags 0xCE (user name,
/// password, will QoS 1, will, clean session) and keep alive 10, with a
/// payload of one-letter fields: client "c", will "w"/"m", user "u"/"p".
fn example_connect(version: ProtocolVersion) -> Connect {
    let mut c = connect(version, "c", 10, true);
    c.will = Some(LastWill {
        topic: TopicName::from_static("w"),
        payload: b(b"m"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    });
    c.username = Some(s("u"));
    c.password = Some(b(b"p"));
    c
}

fn connack(code: Rc, session_present: bool) -> ConnAck {
    ConnAck::new(code, session_present)
}

fn mqtt_3() -> Vec<Vector> {
    let mut v = vec![
        // MQTT 3.1 section 3.1 example variable header: 00 06 "MQIsdp" 03 CE 00 0A.
        vector(
            V3_1,
            "spec: MQTT 3.1 section 3.1 CONNECT example",
            "101b 00064d5149736470 03 ce 000a 000163 000177 00016d 000175 000170",
            example_connect(V3_1),
        ),
        // MQTT 3.1.1 section 3.1.2.10 example variable header: 00 04 "MQTT" 04 CE 00 0A.
        vector(
            V3_1_1,
            "spec: MQTT 3.1.1 section 3.1.2.10 CONNECT example",
            "1019 00044d515454 04 ce 000a 000163 000177 00016d 000175 000170",
            example_connect(V3_1_1),
        ),
        // 3.1.1 section 3.2.2.2: session present.
        vector(
            V3_1_1,
            "spec: MQTT 3.1.1 section 3.2.2.2 CONNACK session present",
            "20020100",
            connack(Rc::SUCCESS, true),
        ),
        // 3.1.1 section 3.3.2.3 example: topic "a/b", packet id 10.
        vector(
            V3_1_1,
            "spec: MQTT 3.1.1 section 3.3.2.3 PUBLISH example",
            "3207 0003612f62 000a",
            publish("a/b", b"", 1, 10, false),
        ),
        // 3.1.1 section 3.8.3 example payload: "a/b" QoS 1, "c/d" QoS 2.
        vector(
            V3_1_1,
            "spec: MQTT 3.1.1 section 3.8.3 SUBSCRIBE example",
            "820e 000a 0003612f6201 0003632f6402",
            subscribe(10, &[("a/b", 1), ("c/d", 2)]),
        ),
        // 3.1.1 section 3.9.3 example payload: granted 0, granted 2, failure.
        vector(
            V3_1_1,
            "spec: MQTT 3.1.1 section 3.9.3 SUBACK example",
            "9005 000a 000280",
            suback(
                10,
                &[Rc::GRANTED_QOS_0, Rc::GRANTED_QOS_2, Rc::UNSPECIFIED_ERROR],
            ),
        ),
        // 3.1.1 section 3.10.3 example payload: "a/b", "c/d".
        vector(
            V3_1_1,
            "spec: MQTT 3.1.1 section 3.10.3 UNSUBSCRIBE example",
            "a20c 000a 0003612f62 0003632f64",
            unsubscribe(10, &["a/b", "c/d"]),
        ),
        vector(
            V3_1_1,
            "spec: MQTT 3.1.1 section 3.11 UNSUBACK",
            "b002000a",
            unsuback(10, &[]),
        ),
        // 3.1.1 section 3.3.1.1: DUP on a QoS 1 re-delivery.
        vector(
            V3_1_1,
            "spec: MQTT 3.1.1 section 3.3.1.1 PUBLISH with DUP",
            "3a07 0003612f62 000a",
            {
                let mut p = publish("a/b", b"", 1, 10, false);
                p.dup = true;
                p
            },
        ),
        vector(
            V3_1,
            "spec: MQTT 3.1 section 3.3 PUBLISH example (topic a/b, message id 10)",
            "3207 0003612f62 000a",
            publish("a/b", b"", 1, 10, false),
        ),
        vector(
            V3_1,
            "spec: MQTT 3.1 section 3.8 SUBSCRIBE (a/b QoS 1, c/d QoS 2)",
            "820e 000a 0003612f6201 0003632f6402",
            subscribe(10, &[("a/b", 1), ("c/d", 2)]),
        ),
    ];
    // CONNACK return codes 1 to 5 (3.1 section 3.2, 3.1.1 section 3.2.2.3,
    // table 3.1), mapped onto the MQTT 5 reason codes of the same meaning.
    for version in [V3_1, V3_1_1] {
        for (hex, code) in [
            ("20020001", Rc::UNSUPPORTED_PROTOCOL_VERSION),
            ("20020002", Rc::CLIENT_IDENTIFIER_NOT_VALID),
            ("20020003", Rc::SERVER_UNAVAILABLE),
            ("20020004", Rc::BAD_USER_NAME_OR_PASSWORD),
            ("20020005", Rc::NOT_AUTHORIZED),
        ] {
            v.push(vector(
                version,
                "spec: CONNACK return code table",
                hex,
                connack(code, false),
            ));
        }
    }
    v
}

/// A CONNECT with every CONNECT and will property, in the order the encoder
/// writes them, the identifiers taken from MQTT 5.0 table 2-4.
fn full_connect() -> Connect {
    let mut c = example_connect(V5);
    c.keep_alive = 60;
    c.will.as_mut().unwrap().retain = true;
    let p = &mut c.properties;
    p.session_expiry_interval = Some(3600);
    p.receive_maximum = Some(id(10));
    p.maximum_packet_size = NonZeroU32::new(65_536);
    p.topic_alias_maximum = Some(16);
    p.request_response_information = Some(true);
    p.request_problem_information = Some(false);
    p.user_properties = vec![(s("k"), s("v"))];
    p.authentication_method = Some(s("SCRAM"));
    p.authentication_data = Some(b(&[0xAB, 0xCD]));
    let w = &mut c.will.as_mut().unwrap().properties;
    w.will_delay_interval = Some(60);
    w.message.payload_format_indicator = Some(true);
    w.message.message_expiry_interval = Some(120);
    w.message.content_type = Some(s("json"));
    w.message.response_topic = Some(s("r"));
    w.message.correlation_data = Some(b(&[1, 2]));
    w.message.user_properties = vec![(s("a"), s("b"))];
    c
}

fn mqtt_5_connect() -> Vec<Vector> {
    let mut example = connect(V5, "c", 10, true);
    example.properties.session_expiry_interval = Some(10);
    example.username = Some(s("u"));
    example.password = Some(b(b"p"));

    let mut password_only = connect(V5, "c", 10, true);
    password_only.password = Some(b(b"p"));

    let mut rich = connack(Rc::SUCCESS, false);
    let p = &mut rich.properties;
    p.receive_maximum = Some(id(20));
    p.maximum_qos = Some(QoS::AtLeastOnce);
    p.retain_available = Some(false);
    p.maximum_packet_size = NonZeroU32::new(1 << 20);
    p.assigned_client_identifier = Some(s("abcd"));
    p.topic_alias_maximum = Some(10);
    p.wildcard_subscription_available = Some(true);
    p.subscription_identifiers_available = Some(false);
    p.shared_subscription_available = Some(true);
    p.server_keep_alive = Some(30);

    let mut resumed = connack(Rc::SUCCESS, true);
    let p = &mut resumed.properties;
    p.session_expiry_interval = Some(60);
    p.reason_string = Some(s("ok"));
    p.user_properties = vec![(s("a"), s("b"))];
    p.response_information = Some(s("r"));
    p.server_reference = Some(s("s"));
    p.authentication_method = Some(s("SCRAM"));
    p.authentication_data = Some(b(&[0xFF]));

    vec![
        // MQTT 5.0 section 3.1.2.10 example variable header:
        // 00 04 4D 51 54 54 05 C2 00 0A 05 11 00 00 00 0A, then client "c", user "u", password "p".
        vector(V5, "spec: MQTT 5.0 section 3.1.2.10 CONNECT example", "1019 00044d515454 05 c2 000a 05 110000000a 000163 000175 000170", example),
        // Section 3.1.2.9: MQTT 5 allows a password without a user name.
        vector(V5, "spec: MQTT 5.0 section 3.1.2.9 password without user name", "1011 00044d515454 05 42 000a 00 000163 000170", password_only),
        vector(V5, "spec: MQTT 5.0 sections 3.1.2.11 and 3.1.3.2, every CONNECT and will property", concat!(
            "1066 00044d515454 05 ee 003c",
            "28 1100000e10 21000a 2700010000 220010 1901 1700 2600016b000176 150005534352414d 160002abcd",
            "000163",
            "23 180000003c 0101 0200000078 0300046a736f6e 08000172 0900020102 260001610001 62",
            "000177 00016d 000175 000170",
        ), full_connect()),
        vector(V5, "spec: MQTT 5.0 section 3.2.2.3, CONNACK properties (server capabilities)", concat!(
            "2022 00 00 1f",
            "210014 2401 2500 2700100000 12000461626364 22000a 2801 2900 2a01 13001e",
        ), rich),
        vector(V5, "spec: MQTT 5.0 section 3.2.2.3, CONNACK properties (session, diagnostics, auth)", concat!(
            "2028 01 00 25",
            "110000003c 1f00026f6b 260001610001 62 1a000172 1c000173 150005534352414d 160001ff",
        ), resumed),
        vector(V5, "spec: MQTT 5.0 section 3.2.2.2, CONNACK reason code Not authorized", "2003008700", connack(Rc::NOT_AUTHORIZED, false)),
        vector(V5, "spec: MQTT 5.0 section 3.2.2.2, CONNACK reason code Server moved", "2003009d00", connack(Rc::SERVER_MOVED, false)),
    ]
}

fn mqtt_5_publish() -> Vec<Vector> {
    let mut full = publish("a", b"hi", 0, 0, false);
    let p = &mut full.properties;
    let m = p.message.to_mut();
    m.payload_format_indicator = Some(true);
    m.message_expiry_interval = Some(30);
    m.content_type = Some(s("json"));
    m.response_topic = Some(s("a/b/c"));
    m.correlation_data = Some(b(&[1, 2]));
    m.user_properties = vec![(s("k"), s("v"))];
    p.topic_alias = NonZeroU16::new(5);
    p.subscription_identifiers = [1, 128, 268_435_455]
        .into_iter()
        .map(|n| NonZeroU32::new(n).unwrap())
        .collect();

    let mut aliased = publish("", b"hi", 0, 0, false);
    aliased.properties.topic_alias = NonZeroU16::new(1);

    let with_reason_string = |packet_id, code| {
        let mut a = ack_with(packet_id, code);
        a.properties.reason_string = Some(s("abc"));
        a
    };
    let mut user = ack(7);
    user.properties.user_properties = vec![(s("a"), s("b"))];

    vec![
        // MQTT 5.0 section 3.3.2.3 example: 00 03 61 2F 62 00 0A 00.
        vector(V5, "spec: MQTT 5.0 section 3.3.2.3 PUBLISH example", "3208 0003612f62 000a 00", publish("a/b", b"", 1, 10, false)),
        vector(V5, "spec: MQTT 5.0 section 3.3.2.3, every PUBLISH property", concat!(
            "3035 000161 2f",
            "0101 020000001e 0300046a736f6e 080005612f622f63 0900020102 2600016b000176 230005 0b01 0b8001 0bffffff7f",
            "6869",
        ), full),
        // Section 3.3.2.3.4: an empty topic name with a Topic Alias.
        vector(V5, "spec: MQTT 5.0 section 3.3.2.3.4, empty topic with Topic Alias", "3008 0000 03230001 6869", aliased),
        // Section 3.4.2.1: a reason code and a reason string.
        vector(V5, "spec: MQTT 5.0 section 3.4, PUBACK Quota exceeded with reason string", "400a 0007 97 06 1f0003616263", Packet::PubAck(with_reason_string(7, Rc::QUOTA_EXCEEDED))),
        vector(V5, "spec: MQTT 5.0 section 3.4, PUBACK success with a user property", "400b 0007 00 07 260001610001 62", Packet::PubAck(user)),
        vector(V5, "spec: MQTT 5.0 section 3.5, PUBREC Packet Identifier in use", "50030007 91", Packet::PubRec(ack_with(7, Rc::PACKET_IDENTIFIER_IN_USE))),
        vector(V5, "spec: MQTT 5.0 section 3.5, PUBREC Unspecified error", "50030007 80", Packet::PubRec(ack_with(7, Rc::UNSPECIFIED_ERROR))),
        vector(V5, "spec: MQTT 5.0 section 3.6, PUBREL Packet Identifier not found", "62030007 92", Packet::PubRel(ack_with(7, Rc::PACKET_IDENTIFIER_NOT_FOUND))),
        vector(V5, "spec: MQTT 5.0 section 3.7, PUBCOMP not found, reason string", "700a 0007 92 06 1f0003616263", Packet::PubComp(with_reason_string(7, Rc::PACKET_IDENTIFIER_NOT_FOUND))),
    ]
}

fn mqtt_5_subscribe() -> Vec<Vector> {
    let mut all_options = subscribe(10, &[]);
    all_options.properties.subscription_identifier = NonZeroU32::new(268_435_455);
    all_options.properties.user_properties = vec![(s("a"), s("b"))];
    all_options.filters = vec![
        (
            filter("a/b"),
            options(2, true, true, RetainHandling::DoNotSend),
        ),
        (
            filter("$share/g/c"),
            options(0, false, false, RetainHandling::SendIfNew),
        ),
        (
            filter("#"),
            options(1, false, false, RetainHandling::SendAtSubscribe),
        ),
    ];

    let codes = [
        0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
    ];
    let mut suback_all = suback(10, &codes.map(|c| Rc::from_u8(c).unwrap()));
    suback_all.properties = AckProperties {
        reason_string: Some(s("ok")),
        user_properties: Vec::new(),
    };

    let mut unsub = unsubscribe(10, &["a/b"]);
    unsub.user_properties = vec![(s("a"), s("b"))];

    let codes = [0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
    let mut unsuback_all = unsuback(10, &codes.map(|c| Rc::from_u8(c).unwrap()));
    unsuback_all.properties.reason_string = Some(s("ok"));

    vec![
        // The 3.1.1 section 3.8.3 example payload, with an empty property block.
        vector(
            V5,
            "spec: MQTT 5.0 section 3.8, SUBSCRIBE a/b QoS 1, c/d QoS 2",
            "820f 000a 00 0003612f6201 0003632f6402",
            subscribe(10, &[("a/b", 1), ("c/d", 2)]),
        ),
        // Section 3.8.3.1 options: 0x2E = retain handling 2, RAP, no local, QoS 2.
        vector(
            V5,
            "spec: MQTT 5.0 sections 3.8.2.1 and 3.8.3.1, every SUBSCRIBE property and option",
            concat!(
                "8226 000a 0c 0bffffff7f 260001610001 62",
                "0003612f62 2e 000a2473686172652f672f63 10 000123 01",
            ),
            all_options,
        ),
        vector(
            V5,
            "spec: MQTT 5.0 section 3.9.3, every SUBACK reason code",
            "9014 000a 05 1f00026f6b 000102808387 8f91979ea1a2",
            suback_all,
        ),
        vector(
            V5,
            "spec: MQTT 5.0 section 3.10, UNSUBSCRIBE with a user property",
            "a20f 000a 07 260001610001 62 0003612f62",
            unsub,
        ),
        vector(
            V5,
            "spec: MQTT 5.0 section 3.11.3, every UNSUBACK reason code",
            "b00f 000a 05 1f00026f6b 00118083878f91",
            unsuback_all,
        ),
    ]
}

fn mqtt_5_disconnect_auth() -> Vec<Vector> {
    let disconnect = Disconnect {
        reason_code: Rc::USE_ANOTHER_SERVER,
        properties: DisconnectProperties {
            session_expiry_interval: Some(60),
            reason_string: Some(s("ok")),
            user_properties: vec![(s("a"), s("b"))],
            server_reference: Some(s("s")),
        },
    };
    let auth = |reason_code, properties| Auth {
        reason_code,
        properties,
    };
    let scram = |data: Option<&'static [u8]>| AuthProperties {
        authentication_method: Some(s("SCRAM")),
        authentication_data: data.map(b),
        ..Default::default()
    };
    let mut diagnostics = scram(None);
    diagnostics.reason_string = Some(s("ok"));
    diagnostics.user_properties = vec![(s("a"), s("b"))];

    vec![
        vector(
            V5,
            "spec: MQTT 5.0 section 3.14.2.2, every DISCONNECT property",
            "e017 9c 15 110000003c 1f00026f6b 260001610001 62 1c000173",
            disconnect,
        ),
        vector(
            V5,
            "spec: MQTT 5.0 section 3.14.2.1, DISCONNECT Server shutting down",
            "e0018b",
            Disconnect::new(Rc::SERVER_SHUTTING_DOWN),
        ),
        // Section 3.15.2.1: success and no properties may be a Remaining Length of 0.
        vector(
            V5,
            "spec: MQTT 5.0 section 3.15.2.1, AUTH success, empty",
            "f000",
            Auth::default(),
        ),
        vector(
            V5,
            "spec: MQTT 5.0 section 3.15, AUTH continue with method and data",
            "f011 18 0f 150005534352414d 160004deadbeef",
            auth(
                Rc::CONTINUE_AUTHENTICATION,
                scram(Some(&[0xDE, 0xAD, 0xBE, 0xEF][..])),
            ),
        ),
        vector(
            V5,
            "spec: MQTT 5.0 section 3.15, AUTH re-authenticate",
            "f00a 19 08 150005534352414d",
            auth(Rc::RE_AUTHENTICATE, scram(None)),
        ),
        vector(
            V5,
            "spec: MQTT 5.0 section 3.15, AUTH success with properties",
            "f00a 00 08 150005534352414d",
            auth(Rc::SUCCESS, scram(None)),
        ),
        vector(
            V5,
            "spec: MQTT 5.0 section 3.15.2.2, every AUTH property but data",
            "f016 18 14 150005534352414d 1f00026f6b 260001610001 62",
            auth(Rc::CONTINUE_AUTHENTICATION, diagnostics),
        ),
    ]
}

/// Every byte-exact vector built from the specifications.
pub(crate) fn exact() -> Vec<Vector> {
    let mut v = mqtt_3();
    v.extend(mqtt_5_connect());
    v.extend(mqtt_5_publish());
    v.extend(mqtt_5_subscribe());
    v.extend(mqtt_5_disconnect_auth());
    v
}

/// Valid inputs that are not in our encoder's form, with the canonical
/// bytes their packet encodes to.
pub(crate) fn non_canonical() -> Vec<(Vector, &'static str)> {
    vec![
        // MQTT 5.0 section 3.4.2.1: the reason code and property length "can
        // be omitted" when success and empty, so both spelled-out forms are valid.
        (
            vector(
                V5,
                "spec: MQTT 5.0 section 3.4.2.1, PUBACK success spelled out",
                "4004 0001 00 00",
                Packet::PubAck(ack(1)),
            ),
            "40020001",
        ),
        (
            vector(
                V5,
                "spec: MQTT 5.0 section 3.4.2.1, PUBACK without property length",
                "4003 0001 00",
                Packet::PubAck(ack(1)),
            ),
            "40020001",
        ),
        (
            vector(
                V5,
                "spec: MQTT 5.0 section 3.6.2.1, PUBREL success spelled out",
                "6204 0001 00 00",
                Packet::PubRel(ack(1)),
            ),
            "62020001",
        ),
        (
            vector(
                V5,
                "spec: MQTT 5.0 section 3.14.2.1, DISCONNECT normal spelled out",
                "e002 00 00",
                Disconnect::default(),
            ),
            "e000",
        ),
        (
            vector(
                V5,
                "spec: MQTT 5.0 section 3.14.2.2.1, DISCONNECT reason, empty properties",
                "e002 04 00",
                Disconnect::new(Rc::DISCONNECT_WITH_WILL),
            ),
            "e00104",
        ),
        (
            vector(
                V5,
                "spec: MQTT 5.0 section 3.15.2.1, AUTH success spelled out",
                "f002 00 00",
                Auth::default(),
            ),
            "f000",
        ),
        // Section 3.15.2.2.1 lets the property length go; our encoder writes it.
        (
            vector(
                V5,
                "spec: MQTT 5.0 section 3.15.2.2.1, AUTH continue without property length",
                "f001 18",
                Auth {
                    reason_code: Rc::CONTINUE_AUTHENTICATION,
                    properties: Default::default(),
                },
            ),
            "f0021800",
        ),
        // Fuzz regression: MQTT 3.1 section 3.2 has no session present flag,
        // the byte is "reserved, not used", so bit 0 there means nothing.
        (
            vector(
                V3_1,
                "fuzz regression: MQTT 3.1 CONNACK with reserved bit 0 set",
                "20020100",
                connack(Rc::SUCCESS, false),
            ),
            "20020000",
        ),
    ]
}

/// MQTT 5.0 section 1.5.5 table 1-1 (3.1.1 section 2.2.3 table 2.4): the
/// remaining length of a QoS 0 PUBLISH to topic "a" at each boundary.
#[test]
fn variable_byte_integer_table() {
    let table: [(usize, &str); 6] = [
        (127, "7f"),
        (128, "8001"),
        (16_383, "ff7f"),
        (16_384, "808001"),
        (2_097_151, "ffff7f"),
        (2_097_152, "80808001"),
    ];
    for (remaining, varint) in table {
        for version in [V3_1, V3_1_1, V5] {
            let props = usize::from(version.is_v5());
            let payload = vec![b'x'; remaining - 3 - props];
            let mut bytes = vec![0x30];
            bytes.extend(unhex(varint));
            bytes.extend(unhex(if version.is_v5() {
                "00016100"
            } else {
                "000161"
            }));
            bytes.extend(&payload);
            let packet = Packet::Publish(aviary_protocol::Publish::new("a", payload));
            let what = format!("remaining length {remaining} in MQTT {version}");
            assert_eq!(super::decode_all(&bytes, version, &what), packet, "{what}");
            assert!(
                super::encode(&packet, version, &what) == bytes,
                "{what}: encoding differs"
            );
        }
    }
    // Zero: PINGREQ, the one-byte 00.
    super::assert_decodes(&[0xC0, 0x00], V3_1_1, &Packet::PingReq, "0");
}
