//! Strategies for whole packets: every packet type of every version, with
//! the constraints that tie fields together (packet identifiers with QoS,
//! no properties and only 3.x return codes before MQTT 5, ...).

use aviary_protocol::properties::{AuthProperties, DisconnectProperties, SubscribeProperties};
use aviary_protocol::{
    Ack, Auth, ByteString, ConnAck, Connect, Disconnect, LastWill, Packet, ProtocolVersion,
    Publish, QoS, ReasonCode, RetainHandling, SubAck, Subscribe, SubscriptionOptions, UnsubAck,
    Unsubscribe,
};
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::Union;

use super::fields::{
    ack_properties, bytes, codes, connack_properties, connect_properties, nz16, publish_properties,
    qos, reason, string, subscription_id, topic_filter, topic_name, user_properties, v5_only,
    version, will_properties,
};

// ------------------------------------------------------------------- packets

pub(crate) fn connect(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let will = (
        topic_name(),
        bytes(16),
        qos(),
        any::<bool>(),
        v5_only(v, will_properties()),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| LastWill {
            topic,
            payload,
            qos,
            retain,
            properties,
        });
    (
        (string(), any::<bool>(), any::<u16>(), of(will)),
        (of(string()), of(bytes(8)), v5_only(v, connect_properties())),
    )
        .prop_map(
            move |((client_id, clean_start, keep_alive, will), (user, pass, properties))| {
                // Before MQTT 5 a password needs a user name [MQTT-3.1.2-22].
                let password = if v.is_v5() || user.is_some() {
                    pass
                } else {
                    None
                };
                Packet::from(Connect {
                    protocol: v,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username: user,
                    password,
                    properties,
                })
            },
        )
        .boxed()
}

pub(crate) fn connack(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let code = reason(if v.is_v5() {
        codes::CONNACK
    } else {
        codes::CONNACK_V3
    });
    (code, any::<bool>(), v5_only(v, connack_properties()))
        .prop_map(move |(reason_code, session, properties)| {
            // No session present flag in 3.1, nor with an error [MQTT-3.2.2-6].
            let session_present = session && !reason_code.is_error() && v != ProtocolVersion::V3_1;
            Packet::from(ConnAck {
                session_present,
                reason_code,
                properties,
            })
        })
        .boxed()
}

pub(crate) fn publish(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    (
        (topic_name(), bytes(64), qos(), nz16()),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        v5_only(v, publish_properties()),
    )
        .prop_map(
            move |((topic, payload, qos, id), (dup, retain, alias_only), properties)| {
                // An empty topic is how MQTT 5 uses an established topic alias.
                let alias_only = alias_only && v.is_v5() && properties.topic_alias.is_some();
                let qos0 = qos == QoS::AtMostOnce;
                Packet::Publish(Publish {
                    dup: dup && !qos0,
                    qos,
                    retain,
                    topic: if alias_only {
                        ByteString::new()
                    } else {
                        topic.into_inner()
                    },
                    packet_id: (!qos0).then_some(id),
                    properties,
                    payload,
                })
            },
        )
        .boxed()
}

pub(crate) fn ack(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    (
        0..4usize,
        nz16(),
        any::<Index>(),
        v5_only(v, ack_properties()),
    )
        .prop_map(move |(kind, packet_id, code, properties)| {
            let allowed = if kind < 2 {
                codes::PUBACK
            } else {
                codes::PUBREL
            };
            let reason_code = if v.is_v5() {
                ReasonCode::from_u8(*code.get(allowed)).unwrap()
            } else {
                ReasonCode::SUCCESS
            };
            let a = Ack {
                packet_id,
                reason_code,
                properties,
            };
            [
                Packet::PubAck,
                Packet::PubRec,
                Packet::PubRel,
                Packet::PubComp,
            ][kind](a)
        })
        .boxed()
}

pub(crate) fn subscribe(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let options =
        (qos(), any::<bool>(), any::<bool>(), 0..3u8).prop_map(move |(q, nl, rap, rh)| {
            if !v.is_v5() {
                return SubscriptionOptions::qos(q);
            }
            let retain_handling = [
                RetainHandling::SendAtSubscribe,
                RetainHandling::SendIfNew,
                RetainHandling::DoNotSend,
            ][usize::from(rh)];
            SubscriptionOptions {
                qos: q,
                no_local: nl,
                retain_as_published: rap,
                retain_handling,
            }
        });
    let properties =
        (of(subscription_id()), user_properties()).prop_map(|(id, user)| SubscribeProperties {
            subscription_identifier: id,
            user_properties: user,
        });
    (
        nz16(),
        v5_only(v, properties),
        vec((topic_filter(), options), 1..4),
    )
        .prop_map(|(packet_id, properties, mut filters)| {
            // No Local is a protocol error on a shared subscription [MQTT-3.8.3-4].
            for (f, o) in &mut filters {
                o.no_local &= f.shared().is_none();
            }
            Packet::Subscribe(Subscribe {
                packet_id,
                properties,
                filters,
            })
        })
        .boxed()
}

pub(crate) fn suback(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let code = reason(if v.is_v5() {
        codes::SUBACK
    } else {
        codes::SUBACK_V3
    });
    (nz16(), v5_only(v, ack_properties()), vec(code, 1..5))
        .prop_map(|(packet_id, properties, reason_codes)| {
            Packet::SubAck(SubAck {
                packet_id,
                properties,
                reason_codes,
            })
        })
        .boxed()
}

pub(crate) fn unsubscribe(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    (
        nz16(),
        v5_only(v, user_properties()),
        vec(topic_filter(), 1..4),
    )
        .prop_map(|(packet_id, user_properties, filters)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                user_properties,
                filters,
            })
        })
        .boxed()
}

pub(crate) fn unsuback(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let codes = v5_only(v, vec(reason(codes::UNSUBACK), 0..5));
    (nz16(), v5_only(v, ack_properties()), codes)
        .prop_map(|(packet_id, properties, reason_codes)| {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                properties,
                reason_codes,
            })
        })
        .boxed()
}

pub(crate) fn disconnect(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let properties = (
        of(any::<u32>()),
        of(string()),
        user_properties(),
        of(string()),
    )
        .prop_map(|(expiry, reason, user, reference)| DisconnectProperties {
            session_expiry_interval: expiry,
            reason_string: reason,
            user_properties: user,
            server_reference: reference,
        });
    let reason_code = v5_only(v, reason(codes::DISCONNECT));
    (reason_code, v5_only(v, properties))
        .prop_map(|(reason_code, properties)| {
            Packet::from(Disconnect {
                reason_code,
                properties,
            })
        })
        .boxed()
}

pub(crate) fn auth() -> BoxedStrategy<Packet> {
    let properties = (of(string()), of(bytes(8)), of(string()), user_properties()).prop_map(
        |(method, data, reason, user)| AuthProperties {
            authentication_method: method,
            authentication_data: data,
            reason_string: reason,
            user_properties: user,
        },
    );
    (reason(codes::AUTH), properties)
        .prop_map(|(reason_code, properties)| {
            Packet::from(Auth {
                reason_code,
                properties,
            })
        })
        .boxed()
}

/// Any valid packet of `v`: every type it has, equally likely.
pub(crate) fn packet(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    // What goes both ways; a round trip of the others needs both directions of the codec.
    let mut all = vec![publish(v), ack(v), disconnect(v)];
    #[cfg(feature = "full")]
    all.extend([
        connect(v),
        connack(v),
        subscribe(v),
        suback(v),
        unsubscribe(v),
        unsuback(v),
        Just(Packet::PingReq).boxed(),
        Just(Packet::PingResp).boxed(),
    ]);
    if v.is_v5() {
        all.push(auth());
    }
    Union::new(all).boxed()
}

pub(crate) fn versioned_packet() -> impl Strategy<Value = (ProtocolVersion, Packet)> {
    version().prop_flat_map(|v| (Just(v), packet(v)))
}
