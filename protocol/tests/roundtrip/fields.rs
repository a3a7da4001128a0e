//! Strategies for field values and MQTT 5 property sets: only values the
//! specification allows, so every generated packet is valid.

use std::num::{NonZeroU16, NonZeroU32};

use aviary_protocol::properties::{
    AckProperties, ConnAckProperties, ConnectProperties, MessageProperties, PublishProperties,
    UserProperty, WillProperties,
};
use aviary_protocol::{ByteString, ProtocolVersion, QoS, ReasonCode, TopicFilter, TopicName};
use bytes::Bytes;
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;
use proptest::sample::select;

/// Reason codes each MQTT 5 packet may carry (MQTT 5.0 section 2.4, table 2-6).
pub(crate) mod codes {
    pub(crate) const CONNACK: &[u8] = &[
        0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95,
        0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
    ];
    pub(crate) const PUBACK: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
    pub(crate) const PUBREL: &[u8] = &[0x00, 0x92];
    pub(crate) const SUBACK: &[u8] = &[
        0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
    ];
    pub(crate) const UNSUBACK: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
    pub(crate) const DISCONNECT: &[u8] = &[
        0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94,
        0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
    ];
    pub(crate) const AUTH: &[u8] = &[0x00, 0x18, 0x19];
    /// What an MQTT 3.x CONNACK return code 0-5 decodes to.
    pub(crate) const CONNACK_V3: &[u8] = &[0x00, 0x84, 0x85, 0x88, 0x86, 0x87];
    /// MQTT 3.x SUBACK return codes.
    pub(crate) const SUBACK_V3: &[u8] = &[0x00, 0x01, 0x02, 0x80];
}

// ------------------------------------------------------------- field values

pub(crate) fn version() -> impl Strategy<Value = ProtocolVersion> {
    prop_oneof![
        Just(ProtocolVersion::V3_1),
        Just(ProtocolVersion::V3_1_1),
        Just(ProtocolVersion::V5),
    ]
}

pub(crate) fn reason(allowed: &'static [u8]) -> impl Strategy<Value = ReasonCode> {
    select(allowed).prop_map(|c| ReasonCode::from_u8(c).unwrap())
}

pub(crate) fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

pub(crate) fn nz16() -> impl Strategy<Value = NonZeroU16> {
    (1..=u16::MAX).prop_map(|n| NonZeroU16::new(n).unwrap())
}

pub(crate) fn nz32() -> impl Strategy<Value = NonZeroU32> {
    (1..=u32::MAX).prop_map(|n| NonZeroU32::new(n).unwrap())
}

/// Subscription identifiers: 1 to the largest variable byte integer.
pub(crate) fn subscription_id() -> impl Strategy<Value = NonZeroU32> {
    prop_oneof![1..=127u32, 128..=16_383u32, 16_384..=268_435_455u32]
        .prop_map(|n| NonZeroU32::new(n).unwrap())
}

/// Any UTF-8 string without U+0000.
pub(crate) fn string() -> impl Strategy<Value = ByteString> {
    "[^\\x00]{0,8}".prop_map(ByteString::from)
}

pub(crate) fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

pub(crate) fn user_properties() -> impl Strategy<Value = Vec<UserProperty>> {
    vec((string(), string()), 0..3)
}

pub(crate) fn topic_name() -> impl Strategy<Value = TopicName> {
    vec("[^/+#\\x00]{0,5}", 1..4)
        .prop_map(|levels| levels.join("/"))
        .prop_filter_map("a valid topic name", |s| TopicName::new(s).ok())
}

pub(crate) fn topic_filter() -> impl Strategy<Value = TopicFilter> {
    let level = prop_oneof![3 => "[^/+#\\x00]{0,4}", 1 => Just("+".to_owned())];
    let plain = (vec(level, 1..4), any::<bool>()).prop_map(|(levels, hash)| {
        let mut f = levels.join("/");
        if hash {
            f.push_str(if f.is_empty() { "#" } else { "/#" });
        }
        f
    });
    let shared = ("[a-z0-9]{1,4}", plain.clone()).prop_map(|(g, f)| format!("$share/{g}/{f}"));
    prop_oneof![3 => plain, 1 => shared]
        .prop_filter_map("a valid topic filter", |s| TopicFilter::new(s).ok())
}

// ---------------------------------------------------------------- properties

/// A property set that exists only in MQTT 5: its default elsewhere.
pub(crate) fn v5_only<T: Default + Clone + std::fmt::Debug + 'static>(
    v: ProtocolVersion,
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    if v.is_v5() {
        s.boxed()
    } else {
        Just(T::default()).boxed()
    }
}

pub(crate) fn message_properties() -> impl Strategy<Value = MessageProperties> {
    (
        of(any::<bool>()),
        of(any::<u32>()),
        of(string()),
        of(topic_name().prop_map(TopicName::into_inner)),
        of(bytes(8)),
        user_properties(),
    )
        .prop_map(|(pfi, expiry, content_type, response, correlation, user)| {
            MessageProperties {
                payload_format_indicator: pfi,
                message_expiry_interval: expiry,
                content_type,
                response_topic: response,
                correlation_data: correlation,
                user_properties: user,
            }
        })
}

pub(crate) fn publish_properties() -> impl Strategy<Value = PublishProperties> {
    (
        message_properties(),
        of(nz16()),
        vec(subscription_id(), 0..3),
    )
        .prop_map(|(message, topic_alias, ids)| PublishProperties {
            message: message.into(),
            topic_alias,
            subscription_identifiers: ids,
        })
}

pub(crate) fn will_properties() -> impl Strategy<Value = WillProperties> {
    (message_properties(), of(any::<u32>())).prop_map(|(message, delay)| WillProperties {
        message,
        will_delay_interval: delay,
    })
}

pub(crate) fn connect_properties() -> impl Strategy<Value = ConnectProperties> {
    (
        (of(any::<u32>()), of(nz16()), of(nz32()), of(any::<u16>())),
        (of(any::<bool>()), of(any::<bool>()), user_properties()),
        // Authentication data only with a method [MQTT-3.1.2-28].
        of((string(), of(bytes(8)))),
    )
        .prop_map(|((expiry, receive, max, alias), (rri, rpi, user), auth)| {
            ConnectProperties {
                session_expiry_interval: expiry,
                receive_maximum: receive,
                maximum_packet_size: max,
                topic_alias_maximum: alias,
                request_response_information: rri,
                request_problem_information: rpi,
                user_properties: user,
                authentication_method: auth.as_ref().map(|(m, _)| m.clone()),
                authentication_data: auth.and_then(|(_, d)| d),
            }
        })
}

pub(crate) fn connack_properties() -> impl Strategy<Value = ConnAckProperties> {
    let max_qos = prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce)];
    (
        (of(any::<u32>()), of(nz16()), of(max_qos), of(any::<bool>())),
        (of(nz32()), of(string()), of(any::<u16>()), of(string())),
        (user_properties(), of(any::<bool>()), of(any::<bool>())),
        (
            of(any::<bool>()),
            of(any::<u16>()),
            of(string()),
            of(string()),
        ),
        (of(string()), of(bytes(8))),
    )
        .prop_map(|(a, b, c, d, e)| ConnAckProperties {
            session_expiry_interval: a.0,
            receive_maximum: a.1,
            maximum_qos: a.2,
            retain_available: a.3,
            maximum_packet_size: b.0,
            assigned_client_identifier: b.1,
            topic_alias_maximum: b.2,
            reason_string: b.3,
            user_properties: c.0,
            wildcard_subscription_available: c.1,
            subscription_identifiers_available: c.2,
            shared_subscription_available: d.0,
            server_keep_alive: d.1,
            response_information: d.2,
            server_reference: d.3,
            authentication_method: e.0,
            authentication_data: e.1,
        })
}

pub(crate) fn ack_properties() -> impl Strategy<Value = AckProperties> {
    (of(string()), user_properties()).prop_map(|(reason_string, user_properties)| AckProperties {
        reason_string,
        user_properties,
    })
}
