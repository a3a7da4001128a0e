//! Rust values to the JavaScript shapes MQTT.js users know: packets as plain objects with
//! `cmd`, payloads as `Uint8Array`, errors as `Error`s with `code` and `reasonCode`.

use alloc::string::String;
use aviary_protocol::{
    ConnAckProperties, MessageProperties, Publish, PublishProperties, UserProperty,
};
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::engine::{Connected, MqttError};

/// Sets `obj[key] = value`; setting a property on a fresh plain object cannot fail.
fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value.into());
}

fn set_opt<T: Into<JsValue>>(obj: &Object, key: &str, value: Option<T>) {
    if let Some(v) = value {
        set(obj, key, v);
    }
}

/// An `MqttError`: an `Error` whose `name` is `"MqttError"`, with `code` and `reasonCode`.
pub(crate) fn error(e: &MqttError) -> JsValue {
    let err = js_sys::Error::new(&e.message);
    err.set_name("MqttError");
    set(&err, "code", e.kind.code());
    set_opt(&err, "reasonCode", e.reason_code.map(|c| c.value()));
    err.into()
}

fn user_properties(obj: &Object, props: &[UserProperty]) {
    if props.is_empty() {
        return;
    }
    let map = Object::new();
    for (k, v) in props {
        // Repeated keys become arrays, as in MQTT.js.
        let key = JsValue::from_str(k);
        let existing = Reflect::get(&map, &key).unwrap_or(JsValue::UNDEFINED);
        let value: JsValue = if existing.is_undefined() {
            JsValue::from_str(v)
        } else if Array::is_array(&existing) {
            let a: Array = existing.unchecked_into();
            a.push(&JsValue::from_str(v));
            a.into()
        } else {
            Array::of2(&existing, &JsValue::from_str(v)).into()
        };
        let _ = Reflect::set(&map, &key, &value);
    }
    set(obj, "userProperties", map);
}

fn message_properties(obj: &Object, m: &MessageProperties) {
    set_opt(obj, "payloadFormatIndicator", m.payload_format_indicator);
    set_opt(obj, "messageExpiryInterval", m.message_expiry_interval);
    set_opt(obj, "contentType", m.content_type.as_deref());
    set_opt(obj, "responseTopic", m.response_topic.as_deref());
    if let Some(data) = &m.correlation_data {
        set(obj, "correlationData", Uint8Array::from(&data[..]));
    }
    user_properties(obj, &m.user_properties);
}

fn publish_properties(p: &PublishProperties) -> Object {
    let obj = Object::new();
    message_properties(&obj, &p.message);
    // MQTT.js's shape: a number, or an array when several subscriptions matched.
    match &p.subscription_identifiers[..] {
        [] => {}
        [id] => set(&obj, "subscriptionIdentifier", id.get()),
        ids => {
            let all = Array::new();
            for id in ids {
                all.push(&id.get().into());
            }
            set(&obj, "subscriptionIdentifier", all);
        }
    }
    obj
}

/// The `packet` argument of a `message` event.
pub(crate) fn publish_packet(p: &Publish, topic: &JsValue, payload: &JsValue) -> JsValue {
    let obj = Object::new();
    set(&obj, "cmd", "publish");
    set(&obj, "topic", topic.clone());
    set(&obj, "payload", payload.clone());
    set(&obj, "qos", p.qos as u8);
    set(&obj, "retain", p.retain);
    set(&obj, "dup", p.dup);
    set_opt(&obj, "messageId", p.packet_id.map(|id| id.get()));
    if !p.properties.is_empty() {
        set(&obj, "properties", publish_properties(&p.properties));
    }
    obj.into()
}

fn connack_properties(p: &ConnAckProperties) -> Object {
    let obj = Object::new();
    set_opt(&obj, "sessionExpiryInterval", p.session_expiry_interval);
    set_opt(&obj, "receiveMaximum", p.receive_maximum.map(|v| v.get()));
    set_opt(&obj, "maximumQoS", p.maximum_qos.map(|q| q as u8));
    set_opt(&obj, "retainAvailable", p.retain_available);
    set_opt(
        &obj,
        "maximumPacketSize",
        p.maximum_packet_size.map(|v| v.get()),
    );
    set_opt(
        &obj,
        "assignedClientIdentifier",
        p.assigned_client_identifier.as_deref(),
    );
    set_opt(&obj, "topicAliasMaximum", p.topic_alias_maximum);
    set_opt(&obj, "reasonString", p.reason_string.as_deref());
    set_opt(&obj, "serverKeepAlive", p.server_keep_alive);
    set_opt(
        &obj,
        "authenticationMethod",
        p.authentication_method.as_deref(),
    );
    if let Some(data) = &p.authentication_data {
        set(&obj, "authenticationData", Uint8Array::from(&data[..]));
    }
    set_opt(
        &obj,
        "wildcardSubscriptionAvailable",
        p.wildcard_subscription_available,
    );
    set_opt(
        &obj,
        "sharedSubscriptionAvailable",
        p.shared_subscription_available,
    );
    user_properties(&obj, &p.user_properties);
    obj
}

/// The `packet` argument of a `connect` event.
pub(crate) fn connack_packet(c: &Connected) -> JsValue {
    let obj = Object::new();
    set(&obj, "cmd", "connack");
    set(&obj, "sessionPresent", c.session_present);
    set(&obj, "reasonCode", 0u8);
    set(&obj, "returnCode", 0u8);
    set(&obj, "properties", connack_properties(&c.properties));
    obj.into()
}

/// `{ topic, qos }` for each granted subscription, as MQTT.js resolves `subscribe`.
pub(crate) fn granted(topics: &[String], codes: &[aviary_protocol::ReasonCode]) -> JsValue {
    let out = Array::new();
    for (topic, code) in topics.iter().zip(codes) {
        let obj = Object::new();
        set(&obj, "topic", topic.as_str());
        set(&obj, "qos", code.value());
        out.push(&obj);
    }
    out.into()
}
