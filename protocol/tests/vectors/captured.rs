//! Vectors captured from real clients and a real server: mosquitto 2.0.11
//! with `mosquitto_pub`/`mosquitto_sub` 2.0.11 (Debian bookworm) and
//! paho-mqtt 2.2.0, recorded in `tests/captures/mosquitto-2.0.11.log`.
//! "client" marks what the client sent, "server" what mosquitto answered.

use aviary_protocol::ProtocolVersion::{self, V3_1, V3_1_1, V5};
use aviary_protocol::{
    ConnAck, Connect, Disconnect, LastWill, Packet, QoS, ReasonCode as Rc, RetainHandling,
    SubscribeProperties, TopicName,
};

use super::{
    ack, ack_with, b, connect, id, options, publish, s, suback, subscribe, unsuback, unsubscribe,
    vector, Vector,
};

const LOCATION: &[u8] = br#"{"lat":1}"#;
const ONLINE: &[u8] = br#"{"online":true}"#;

/// `mosquitto_pub -k 30 -u user -P secret --will-topic pets/1/status
/// --will-payload '{"online":false}' --will-qos 1 --will-retain`.
fn will_connect(version: ProtocolVersion, client_id: &'static str) -> Connect {
    let mut c = connect(version, client_id, 30, true);
    c.will = Some(LastWill {
        topic: TopicName::from_static("pets/1/status"),
        payload: b(br#"{"online":false}"#),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: Default::default(),
    });
    c.username = Some(s("user"));
    c.password = Some(b(b"secret"));
    c
}

/// mosquitto's clients send Receive Maximum 20 in every MQTT 5 CONNECT
/// (1 for `mosquitto_sub -C 1`).
fn connect5(client_id: &'static str, receive_maximum: u16) -> Connect {
    let mut c = connect(V5, client_id, 60, true);
    c.properties.receive_maximum = Some(id(receive_maximum));
    c
}

/// The packets whose bytes are the same in MQTT 3.1 and 3.1.1: everything
/// but CONNECT. Each was captured in both versions.
fn same_in_3_1_and_3_1_1(v: ProtocolVersion) -> Vec<Vector> {
    vec![
        // captured: mosquitto 2.0.11 server, CONNACK to every 3.x client
        vector(
            v,
            "captured: mosquitto 2.0.11 server CONNACK",
            "20020000",
            ConnAck::new(Rc::SUCCESS, false),
        ),
        // captured: mosquitto_pub -t pets/1/location -m '{"lat":1}' -q 0
        vector(
            v,
            "captured: mosquitto_pub 2.0.11 -q 0 (client)",
            "301a000f706574732f312f6c6f636174696f6e7b226c6174223a317d",
            publish("pets/1/location", LOCATION, 0, 0, false),
        ),
        // captured: the same with -q 1, then -q 2
        vector(
            v,
            "captured: mosquitto_pub 2.0.11 -q 1 (client)",
            "321c000f706574732f312f6c6f636174696f6e00017b226c6174223a317d",
            publish("pets/1/location", LOCATION, 1, 1, false),
        ),
        vector(
            v,
            "captured: mosquitto_pub 2.0.11 -q 2 (client)",
            "341c000f706574732f312f6c6f636174696f6e00017b226c6174223a317d",
            publish("pets/1/location", LOCATION, 2, 1, false),
        ),
        // captured: mosquitto_pub -t pets/1/status -m '{"online":true}' -q 1 -r
        vector(
            v,
            "captured: mosquitto_pub 2.0.11 -q 1 -r (client)",
            "3320000d706574732f312f73746174757300017b226f6e6c696e65223a747275657d",
            publish("pets/1/status", ONLINE, 1, 1, true),
        ),
        // captured: mosquitto delivering the retained message to a second subscription
        vector(
            v,
            "captured: mosquitto 2.0.11 server PUBLISH (retained, QoS 1)",
            "3320000d706574732f312f73746174757300027b226f6e6c696e65223a747275657d",
            publish("pets/1/status", ONLINE, 1, 2, true),
        ),
        // captured: mosquitto delivering a retained QoS 2 message to mosquitto_sub -q 2
        vector(
            v,
            "captured: mosquitto 2.0.11 server PUBLISH (retained, QoS 2)",
            "3516000b706574732f392f716f7332000165786163746c79",
            publish("pets/9/qos2", b"exactly", 2, 1, true),
        ),
        vector(
            v,
            "captured: mosquitto 2.0.11 server PUBACK",
            "40020001",
            Packet::PubAck(ack(1)),
        ),
        vector(
            v,
            "captured: mosquitto 2.0.11 server PUBREC",
            "50020001",
            Packet::PubRec(ack(1)),
        ),
        vector(
            v,
            "captured: mosquitto_pub 2.0.11 -q 2 PUBREL (client)",
            "62020001",
            Packet::PubRel(ack(1)),
        ),
        vector(
            v,
            "captured: mosquitto 2.0.11 server PUBCOMP",
            "70020001",
            Packet::PubComp(ack(1)),
        ),
        // captured: mosquitto_sub -t 'pets/+/status' -q 2 -t 'pets/#'
        vector(
            v,
            "captured: mosquitto_sub 2.0.11 -t pets/+/status -q 2 -t pets/# (client)",
            "821b0001000d706574732f2b2f737461747573020006706574732f2302",
            subscribe(1, &[("pets/+/status", 2), ("pets/#", 2)]),
        ),
        vector(
            v,
            "captured: mosquitto_sub 2.0.11 -c -t pets/+/location -q 1 (client)",
            "82140001000f706574732f2b2f6c6f636174696f6e01",
            subscribe(1, &[("pets/+/location", 1)]),
        ),
        vector(
            v,
            "captured: mosquitto_sub 2.0.11 -t dummy (client)",
            "820a0001000564756d6d7900",
            subscribe(1, &[("dummy", 0)]),
        ),
        vector(
            v,
            "captured: mosquitto 2.0.11 server SUBACK (two filters)",
            "900400010202",
            suback(1, &[Rc::GRANTED_QOS_2, Rc::GRANTED_QOS_2]),
        ),
        vector(
            v,
            "captured: mosquitto 2.0.11 server SUBACK (QoS 1)",
            "9003000101",
            suback(1, &[Rc::GRANTED_QOS_1]),
        ),
        vector(
            v,
            "captured: mosquitto 2.0.11 server SUBACK (QoS 0)",
            "9003000100",
            suback(1, &[Rc::GRANTED_QOS_0]),
        ),
        // captured: mosquitto_sub -U pets/+/location -U pets/# (one UNSUBSCRIBE each)
        vector(
            v,
            "captured: mosquitto_sub 2.0.11 -U pets/+/location (client)",
            "a2130002000f706574732f2b2f6c6f636174696f6e",
            unsubscribe(2, &["pets/+/location"]),
        ),
        vector(
            v,
            "captured: mosquitto_sub 2.0.11 -U pets/# (client)",
            "a20a00030006706574732f23",
            unsubscribe(3, &["pets/#"]),
        ),
        vector(
            v,
            "captured: mosquitto 2.0.11 server UNSUBACK",
            "b0020002",
            unsuback(2, &[]),
        ),
        vector(
            v,
            "captured: mosquitto 2.0.11 server UNSUBACK",
            "b0020003",
            unsuback(3, &[]),
        ),
        // captured: mosquitto_sub -k 5 -W 7: keep alive ping and its answer
        vector(
            v,
            "captured: mosquitto_sub 2.0.11 -k 5 PINGREQ (client)",
            "c000",
            Packet::PingReq,
        ),
        vector(
            v,
            "captured: mosquitto 2.0.11 server PINGRESP",
            "d000",
            Packet::PingResp,
        ),
        vector(
            v,
            "captured: mosquitto_pub 2.0.11 DISCONNECT (client)",
            "e000",
            Disconnect::default(),
        ),
    ]
}

fn mqtt_3_1() -> Vec<Vector> {
    let mut v = vec![
        vector(V3_1, "captured: mosquitto_pub 2.0.11 -V mqttv31 -i pub-mqttv31 (client)", "101900064d51497364700302003c000b7075622d6d717474763331", connect(V3_1, "pub-mqttv31", 60, true)),
        vector(V3_1, "captured: mosquitto_sub 2.0.11 -V mqttv31 -c (client)", "101900064d51497364700300003c000b7375622d6d717474763331", connect(V3_1, "sub-mqttv31", 60, false)),
        vector(V3_1, "captured: mosquitto_sub 2.0.11 -V mqttv31 -k 5 (client)", "101a00064d514973647003020005000c70696e672d6d717474763331", connect(V3_1, "ping-mqttv31", 5, true)),
        vector(V3_1, "captured: mosquitto_pub 2.0.11 -V mqttv31 with will, -u, -P (client)", "104900064d514973647003ee001e000c77696c6c2d6d717474763331000d706574732f312f73746174757300107b226f6e6c696e65223a66616c73657d0004757365720006736563726574", will_connect(V3_1, "will-mqttv31")),
    ];
    v.extend(same_in_3_1_and_3_1_1(V3_1));
    v
}

fn mqtt_3_1_1() -> Vec<Vector> {
    let mut v = vec![
        vector(V3_1_1, "captured: mosquitto_pub 2.0.11 -V mqttv311 -i pub-mqttv311 (client)", "101800044d5154540402003c000c7075622d6d71747476333131", connect(V3_1_1, "pub-mqttv311", 60, true)),
        vector(V3_1_1, "captured: mosquitto_sub 2.0.11 -V mqttv311 -c (client)", "101800044d5154540400003c000c7375622d6d71747476333131", connect(V3_1_1, "sub-mqttv311", 60, false)),
        vector(V3_1_1, "captured: mosquitto_sub 2.0.11 -V mqttv311 -k 5 (client)", "101900044d51545404020005000d70696e672d6d71747476333131", connect(V3_1_1, "ping-mqttv311", 5, true)),
        vector(V3_1_1, "captured: mosquitto_sub 2.0.11 -V mqttv311 -i dup4 (client)", "101000044d5154540402003c000464757034", connect(V3_1_1, "dup4", 60, true)),
        vector(V3_1_1, "captured: mosquitto_pub 2.0.11 -V mqttv311 with will, -u, -P (client)", "104800044d51545404ee001e000d77696c6c2d6d71747476333131000d706574732f312f73746174757300107b226f6e6c696e65223a66616c73657d0004757365720006736563726574", will_connect(V3_1_1, "will-mqttv311")),
    ];
    v.extend(same_in_3_1_and_3_1_1(V3_1_1));
    v
}

fn mqtt_5_connect() -> Vec<Vector> {
    let mut will = will_connect(V5, "will-mqttv5");
    will.properties.receive_maximum = Some(id(20));

    let mut session = connect5("sub-mqttv5", 20);
    session.clean_start = false;
    session.properties.session_expiry_interval = Some(u32::MAX);

    let mut props5 = connect5("props5", 20);
    props5.properties.session_expiry_interval = Some(60);

    let mut props5b = connect5("props5b", 20);
    props5b.properties.maximum_packet_size = std::num::NonZeroU32::new(1000);
    props5b.properties.topic_alias_maximum = Some(5);
    props5b.properties.request_problem_information = Some(true);
    props5b.properties.user_properties = vec![(s("k"), s("v"))];

    let mut props5c = connect5("props5c", 20);
    let mut will_c = LastWill {
        topic: TopicName::from_static("pets/2/status"),
        payload: b(b"off"),
        qos: QoS::ExactlyOnce,
        retain: false,
        properties: Default::default(),
    };
    will_c.properties.will_delay_interval = Some(10);
    will_c.properties.message.content_type = Some(s("text/plain"));
    props5c.will = Some(will_c);

    let mut subp5 = connect5("subp5", 20);
    subp5.properties.session_expiry_interval = Some(100);

    let mut ping = connect5("ping-mqttv5", 20);
    ping.keep_alive = 5;

    vec![
        vector(V5, "captured: mosquitto_pub 2.0.11 -V mqttv5 -i pub-mqttv5 (client)", "101a00044d5154540502003c03210014000a7075622d6d7174747635", connect5("pub-mqttv5", 20)),
        vector(V5, "captured: mosquitto_sub 2.0.11 -V mqttv5 -C 1 (client; Receive Maximum 1)", "101a00044d5154540502003c03210001000a7375622d6d7174747635", connect5("sub-mqttv5", 1)),
        vector(V5, "captured: mosquitto_sub 2.0.11 -V mqttv5 -c (client; Session Expiry 0xFFFFFFFF)", "101f00044d5154540500003c0811ffffffff210014000a7375622d6d7174747635", session),
        vector(V5, "captured: mosquitto_sub 2.0.11 -V mqttv5 -k 5 (client)", "101b00044d5154540502000503210014000b70696e672d6d7174747635", ping),
        vector(V5, "captured: mosquitto_pub 2.0.11 -V mqttv5 with will, -u, -P (client)", "104b00044d51545405ee001e03210014000b77696c6c2d6d717474763500000d706574732f312f73746174757300107b226f6e6c696e65223a66616c73657d0004757365720006736563726574", will),
        vector(V5, "captured: mosquitto_pub 2.0.11 -V mqttv5 -D connect session-expiry-interval 60 (client)", "101b00044d5154540502003c08110000003c210014000670726f707335", props5),
        vector(V5, "captured: mosquitto_pub 2.0.11 -V mqttv5 -D connect receive-maximum 20 -D connect maximum-packet-size 1000 -D connect topic-alias-maximum 5 -D connect request-problem-information 1 -D connect user-property k v (client)", "102800044d5154540502003c1421001427000003e822000517012600016b000176000770726f70733562", props5b),
        vector(V5, "captured: mosquitto_pub 2.0.11 -V mqttv5 -D will will-delay-interval 10 -D will content-type text/plain --will-topic pets/2/status --will-payload off --will-qos 2 (client)", "103e00044d5154540516003c03210014000770726f7073356312180000000a03000a746578742f706c61696e000d706574732f322f73746174757300036f6666", props5c),
        vector(V5, "captured: mosquitto_sub 2.0.11 -V mqttv5 -x 100 (client)", "101a00044d5154540502003c08110000006421001400057375627035", subp5),
        vector(V5, "captured: paho-mqtt 2.2.0 MQTTv5, client_id \"\", keepalive 45 (client)", "100d00044d5154540502002d000000", connect(V5, "", 45, true)),
        vector(V5, "captured: mosquitto 2.0.11 server CONNACK to -D connect authentication-method SCRAM", "2003008c00", ConnAck::new(Rc::BAD_AUTHENTICATION_METHOD, false)),
    ]
}

fn mqtt_5_publish() -> Vec<Vector> {
    let mut with_sid = publish("pets/1/status", ONLINE, 1, 1, true);
    with_sid.properties.subscription_identifiers = vec![std::num::NonZeroU32::new(42).unwrap()];
    vec![
        vector(
            V5,
            "captured: mosquitto_pub 2.0.11 -V mqttv5 -q 0 (client)",
            "301b000f706574732f312f6c6f636174696f6e007b226c6174223a317d",
            publish("pets/1/location", LOCATION, 0, 0, false),
        ),
        vector(
            V5,
            "captured: mosquitto_pub 2.0.11 -V mqttv5 -q 1 (client)",
            "321d000f706574732f312f6c6f636174696f6e0001007b226c6174223a317d",
            publish("pets/1/location", LOCATION, 1, 1, false),
        ),
        vector(
            V5,
            "captured: mosquitto_pub 2.0.11 -V mqttv5 -q 2 (client)",
            "341d000f706574732f312f6c6f636174696f6e0001007b226c6174223a317d",
            publish("pets/1/location", LOCATION, 2, 1, false),
        ),
        vector(
            V5,
            "captured: mosquitto_pub 2.0.11 -V mqttv5 -q 1 -r (client)",
            "3321000d706574732f312f7374617475730001007b226f6e6c696e65223a747275657d",
            publish("pets/1/status", ONLINE, 1, 1, true),
        ),
        vector(
            V5,
            "captured: mosquitto_pub 2.0.11 -V mqttv5 -t a -m b (client)",
            "30050001610062",
            publish("a", b"b", 0, 0, false),
        ),
        vector(
            V5,
            "captured: mosquitto 2.0.11 server PUBLISH (retained, QoS 2)",
            "3517000b706574732f392f716f733200010065786163746c79",
            publish("pets/9/qos2", b"exactly", 2, 1, true),
        ),
        vector(
            V5,
            "captured: mosquitto 2.0.11 server PUBLISH with Subscription Identifier 42 (to paho)",
            "3323000d706574732f312f7374617475730001020b2a7b226f6e6c696e65223a747275657d",
            with_sid,
        ),
        vector(
            V5,
            "captured: mosquitto 2.0.11 server PUBACK, No matching subscribers",
            "4003000110",
            Packet::PubAck(ack_with(1, Rc::NO_MATCHING_SUBSCRIBERS)),
        ),
        vector(
            V5,
            "captured: mosquitto_sub 2.0.11 -V mqttv5 PUBACK (client)",
            "40020001",
            Packet::PubAck(ack(1)),
        ),
        vector(
            V5,
            "captured: mosquitto 2.0.11 server PUBREC",
            "50020001",
            Packet::PubRec(ack(1)),
        ),
        vector(
            V5,
            "captured: mosquitto_pub 2.0.11 -V mqttv5 -q 2 PUBREL (client)",
            "62020001",
            Packet::PubRel(ack(1)),
        ),
        vector(
            V5,
            "captured: mosquitto 2.0.11 server PUBCOMP",
            "70020001",
            Packet::PubComp(ack(1)),
        ),
        vector(
            V5,
            "captured: mosquitto 2.0.11 server PUBCOMP for a PUBREL of unknown id 7 (raw client)",
            "70020007",
            Packet::PubComp(ack(7)),
        ),
    ]
}

fn mqtt_5_subscribe() -> Vec<Vector> {
    let mut with_user = subscribe(1, &[]);
    with_user.properties.user_properties = vec![(s("s"), s("t"))];
    with_user.filters = vec![(
        super::filter("pets/+/activity"),
        options(1, false, true, RetainHandling::SendAtSubscribe),
    )];

    let mut paho = subscribe(1, &[]);
    paho.properties = SubscribeProperties {
        subscription_identifier: std::num::NonZeroU32::new(42),
        user_properties: Vec::new(),
    };
    paho.filters = vec![
        (
            super::filter("pets/+/location"),
            options(1, true, true, RetainHandling::DoNotSend),
        ),
        (
            super::filter("$share/map/pets/+/status"),
            options(2, false, false, RetainHandling::SendIfNew),
        ),
    ];
    vec![
        vector(V5, "captured: mosquitto_sub 2.0.11 -V mqttv5 -t pets/+/status -q 2 -t pets/# (client)", "821c000100000d706574732f2b2f737461747573020006706574732f2302", subscribe(1, &[("pets/+/status", 2), ("pets/#", 2)])),
        vector(V5, "captured: mosquitto_sub 2.0.11 -V mqttv5 -t pets/+/location -q 1 (client)", "8215000100000f706574732f2b2f6c6f636174696f6e01", subscribe(1, &[("pets/+/location", 1)])),
        vector(V5, "captured: mosquitto_sub 2.0.11 -V mqttv5 -t pets/+/location (client)", "8215000100000f706574732f2b2f6c6f636174696f6e00", subscribe(1, &[("pets/+/location", 0)])),
        vector(V5, "captured: mosquitto_sub 2.0.11 -V mqttv5 -t t (client)", "820700010000017400", subscribe(1, &[("t", 0)])),
        vector(V5, "captured: mosquitto_sub 2.0.11 -V mqttv5 -D subscribe user-property s t --retain-as-published -q 1 (client)", "821c00010726000173000174000f706574732f2b2f616374697669747909", with_user),
        vector(V5, "captured: paho-mqtt 2.2.0 subscribe, Subscription Identifier 42, noLocal + retainAsPublished + RETAIN_DO_NOT_SEND, $share with RETAIN_SEND_IF_NEW_SUB (client)", "82320001020b2a000f706574732f2b2f6c6f636174696f6e2d00182473686172652f6d61702f706574732f2b2f73746174757312", paho),
        vector(V5, "captured: mosquitto 2.0.11 server SUBACK (two filters)", "90050001000202", suback(1, &[Rc::GRANTED_QOS_2, Rc::GRANTED_QOS_2])),
        vector(V5, "captured: mosquitto 2.0.11 server SUBACK (QoS 1)", "900400010001", suback(1, &[Rc::GRANTED_QOS_1])),
        vector(V5, "captured: mosquitto 2.0.11 server SUBACK (QoS 0)", "900400010000", suback(1, &[Rc::GRANTED_QOS_0])),
        vector(V5, "captured: mosquitto 2.0.11 server SUBACK (to paho)", "90050001000102", suback(1, &[Rc::GRANTED_QOS_1, Rc::GRANTED_QOS_2])),
        vector(V5, "captured: mosquitto_sub 2.0.11 -V mqttv5 -U pets/+/location (client)", "a214000200000f706574732f2b2f6c6f636174696f6e", unsubscribe(2, &["pets/+/location"])),
        vector(V5, "captured: mosquitto_sub 2.0.11 -V mqttv5 -U pets/# (client)", "a20b0003000006706574732f23", unsubscribe(3, &["pets/#"])),
        vector(V5, "captured: paho-mqtt 2.2.0 unsubscribe of two filters (client)", "a22e000200000f706574732f2b2f6c6f636174696f6e00182473686172652f6d61702f706574732f2b2f737461747573", unsubscribe(2, &["pets/+/location", "$share/map/pets/+/status"])),
        vector(V5, "captured: mosquitto 2.0.11 server UNSUBACK, No subscription existed", "b00400020011", unsuback(2, &[Rc::NO_SUBSCRIPTION_EXISTED])),
        vector(V5, "captured: mosquitto 2.0.11 server UNSUBACK (to paho)", "b0050002000000", unsuback(2, &[Rc::SUCCESS, Rc::SUCCESS])),
    ]
}

fn mqtt_5_session() -> Vec<Vector> {
    vec![
        vector(V5, "captured: mosquitto_sub 2.0.11 -V mqttv5 -k 5 PINGREQ (client)", "c000", Packet::PingReq),
        vector(V5, "captured: mosquitto 2.0.11 server PINGRESP", "d000", Packet::PingResp),
        vector(V5, "captured: mosquitto_pub 2.0.11 -V mqttv5 DISCONNECT (client)", "e000", Disconnect::default()),
        vector(V5, "captured: mosquitto_sub 2.0.11 -V mqttv5 -W 7, on timeout (client)", "e00104", Disconnect::new(Rc::DISCONNECT_WITH_WILL)),
        vector(V5, "captured: mosquitto 2.0.11 server DISCONNECT after Topic Alias 11 > its maximum 10 (raw client)", "e00194", Disconnect::new(Rc::TOPIC_ALIAS_INVALID)),
        vector(V5, "captured: mosquitto 2.0.11 server DISCONNECT after a wildcard topic in PUBLISH (raw client)", "e00182", Disconnect::new(Rc::PROTOCOL_ERROR)),
    ]
}

/// Every byte-exact captured vector.
pub(crate) fn exact() -> Vec<Vector> {
    let mut v = mqtt_3_1();
    v.extend(mqtt_3_1_1());
    v.extend(mqtt_5_connect());
    v.extend(mqtt_5_publish());
    v.extend(mqtt_5_subscribe());
    v.extend(mqtt_5_session());
    v
}

/// Captures whose MQTT 5 properties come in another order than ours.
pub(crate) fn reordered() -> Vec<Vector> {
    let mut connack = ConnAck::new(Rc::SUCCESS, false);
    connack.properties.topic_alias_maximum = Some(10);
    connack.properties.receive_maximum = Some(id(20));

    let mut assigned = connack.clone();
    assigned.properties.assigned_client_identifier =
        Some(s("auto-BDA3ECE9-4183-0700-552D-617E0DD3529E"));

    let mut badauth = connect5("badauth", 20);
    badauth.properties.authentication_method = Some(s("SCRAM"));

    let mut activity = publish("pets/1/activity", br#"{"steps":1}"#, 1, 1, false);
    let m = activity.properties.message.to_mut();
    m.user_properties = vec![(s("a"), s("b"))];
    m.message_expiry_interval = Some(30);

    let mut request = publish("pets/1/location", b"{}", 2, 1, false);
    let m = request.properties.message.to_mut();
    m.content_type = Some(s("application/json"));
    m.payload_format_indicator = Some(true);
    m.response_topic = Some(s("pets/1/reply"));
    m.correlation_data = Some(b(b"0102"));

    vec![
        // Topic Alias Maximum 10, then Receive Maximum 20.
        vector(V5, "captured: mosquitto 2.0.11 server CONNACK to every MQTT 5 client", "200900000622000a210014", connack),
        vector(V5, "captured: mosquitto 2.0.11 server CONNACK with Assigned Client Identifier (to paho, empty client id)", "203500003222000a1200296175746f2d42444133454345392d343138332d303730302d353532442d363137453044443335323945210014", assigned),
        vector(V5, "captured: mosquitto_pub 2.0.11 -V mqttv5 -D connect authentication-method SCRAM (client)", "101f00044d5154540502003c0b150005534352414d210014000762616461757468", badauth),
        vector(V5, "captured: mosquitto_pub 2.0.11 -V mqttv5 -D publish user-property a b -D publish message-expiry-interval 30 -q 1 (client)", "322b000f706574732f312f616374697669747900010c26000161000162020000001e7b227374657073223a317d", activity),
        // mosquitto_pub sends -D publish correlation-data as the string's bytes.
        vector(V5, "captured: mosquitto_pub 2.0.11 -V mqttv5 -D publish content-type application/json -D publish payload-format-indicator 1 -D publish response-topic pets/1/reply -D publish correlation-data 0102 -q 2 (client)", "3441000f706574732f312f6c6f636174696f6e00012b0300106170706c69636174696f6e2f6a736f6e010108000c706574732f312f7265706c79090004303130327b7d", request),
    ]
}
