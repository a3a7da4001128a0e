//! Options and arguments from JavaScript objects, read with `Reflect` (no serde: it would
//! double the size of the package). Mistakes throw a `TypeError` naming the option.

use alloc::string::String;
use alloc::vec::Vec;
use core::num::{NonZeroU16, NonZeroU32};

use aviary_protocol::{
    ByteString, ConnectProperties, LastWill, MessageProperties, ProtocolVersion, QoS, TopicName,
    UserProperty, WillProperties,
};
use bytes::Bytes;
use js_sys::{Array, ArrayBuffer, Function, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::engine::Options;
use crate::text::decimal;

pub(crate) type JsResult<T> = Result<T, JsValue>;

pub(crate) fn type_error(msg: &str) -> JsValue {
    js_sys::TypeError::new(msg).into()
}

/// `obj[key]`, or `None` when absent, `undefined` or `null`.
pub(crate) fn get(obj: &JsValue, key: &str) -> Option<JsValue> {
    if !obj.is_object() {
        return None;
    }
    Reflect::get(obj, &JsValue::from_str(key))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

fn get_bool(obj: &JsValue, key: &str) -> JsResult<Option<bool>> {
    get(obj, key)
        .map(|v| {
            v.as_bool()
                .ok_or_else(|| type_error(&["`", key, "` must be a boolean"].concat()))
        })
        .transpose()
}

/// An integer option in `0..=max`. `max` is a `u32` so the error message shows an integer
/// (formatting an `f64` would pull about 17 KB of float printing into the package), written
/// without `core::fmt` (see `text.rs`).
fn get_number(obj: &JsValue, key: &str, max: u32) -> JsResult<Option<f64>> {
    get(obj, key)
        .map(|v| match v.as_f64() {
            // An integer iff the round trip through `u32` keeps it (in range, so exact);
            // `f64::fract` needs std.
            Some(n) if n >= 0.0 && n <= f64::from(max) && f64::from(n as u32) == n => Ok(n),
            _ => Err(type_error(
                &["`", key, "` must be an integer from 0 to ", &decimal(max)].concat(),
            )),
        })
        .transpose()
}

pub(crate) fn get_u32(obj: &JsValue, key: &str) -> JsResult<Option<u32>> {
    Ok(get_number(obj, key, u32::MAX)?.map(|n| n as u32))
}

fn get_u16(obj: &JsValue, key: &str) -> JsResult<Option<u16>> {
    Ok(get_number(obj, key, u32::from(u16::MAX))?.map(|n| n as u16))
}

fn get_string(obj: &JsValue, key: &str) -> JsResult<Option<String>> {
    get(obj, key)
        .map(|v| {
            v.as_string()
                .ok_or_else(|| type_error(&["`", key, "` must be a string"].concat()))
        })
        .transpose()
}

/// A QoS from `obj.qos` (default 0).
pub(crate) fn get_qos(obj: &JsValue) -> JsResult<QoS> {
    match get_number(obj, "qos", 2)? {
        None | Some(0.0) => Ok(QoS::AtMostOnce),
        Some(1.0) => Ok(QoS::AtLeastOnce),
        Some(_) => Ok(QoS::ExactlyOnce),
    }
}

/// Bytes from a string (UTF-8), `Uint8Array`, any other typed array view or `ArrayBuffer`.
pub(crate) fn to_bytes(value: &JsValue, what: &str) -> JsResult<Bytes> {
    if let Some(s) = value.as_string() {
        return Ok(Bytes::from(s));
    }
    if let Some(a) = value.dyn_ref::<Uint8Array>() {
        return Ok(a.to_vec().into());
    }
    if let Some(b) = value.dyn_ref::<ArrayBuffer>() {
        return Ok(Uint8Array::new(b).to_vec().into());
    }
    if ArrayBuffer::is_view(value) {
        let buffer = Reflect::get(value, &"buffer".into())?;
        let offset = Reflect::get(value, &"byteOffset".into())?
            .as_f64()
            .unwrap_or(0.0);
        let len = Reflect::get(value, &"byteLength".into())?
            .as_f64()
            .unwrap_or(0.0);
        let view = Uint8Array::new_with_byte_offset_and_length(&buffer, offset as u32, len as u32);
        return Ok(view.to_vec().into());
    }
    if value.is_undefined() || value.is_null() {
        return Ok(Bytes::new());
    }
    Err(type_error(
        &[what, " must be a string, Uint8Array or ArrayBuffer"].concat(),
    ))
}

/// `{ key: value | value[] }` into MQTT 5 user properties (order preserved).
pub(crate) fn user_properties(obj: &JsValue) -> JsResult<Vec<UserProperty>> {
    let Some(map) = get(obj, "userProperties") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for entry in Object::entries(&map.unchecked_into()).iter() {
        let entry: Array = entry.unchecked_into();
        let key = entry.get(0).as_string().unwrap_or_default();
        let value = entry.get(1);
        let values: Array = if Array::is_array(&value) {
            value.unchecked_into()
        } else {
            Array::of1(&value)
        };
        for v in values.iter() {
            let v = v
                .as_string()
                .ok_or_else(|| type_error("user property values must be strings"))?;
            out.push((ByteString::from(key.clone()), ByteString::from(v)));
        }
    }
    Ok(out)
}

/// MQTT 5 message properties (PUBLISH and will).
pub(crate) fn message_properties(obj: &JsValue) -> JsResult<MessageProperties> {
    Ok(MessageProperties {
        payload_format_indicator: get_bool(obj, "payloadFormatIndicator")?,
        message_expiry_interval: get_u32(obj, "messageExpiryInterval")?,
        content_type: get_string(obj, "contentType")?.map(Into::into),
        response_topic: get_string(obj, "responseTopic")?.map(Into::into),
        correlation_data: get(obj, "correlationData")
            .map(|v| to_bytes(&v, "correlationData"))
            .transpose()?,
        user_properties: user_properties(obj)?,
    })
}

fn connect_properties(obj: &JsValue) -> JsResult<ConnectProperties> {
    Ok(ConnectProperties {
        session_expiry_interval: get_u32(obj, "sessionExpiryInterval")?,
        receive_maximum: get_u16(obj, "receiveMaximum")?.and_then(NonZeroU16::new),
        maximum_packet_size: get_u32(obj, "maximumPacketSize")?.and_then(NonZeroU32::new),
        topic_alias_maximum: get_u16(obj, "topicAliasMaximum")?,
        request_response_information: get_bool(obj, "requestResponseInformation")?,
        request_problem_information: get_bool(obj, "requestProblemInformation")?,
        user_properties: user_properties(obj)?,
        authentication_method: get_string(obj, "authenticationMethod")?.map(Into::into),
        authentication_data: get(obj, "authenticationData")
            .map(|v| to_bytes(&v, "authenticationData"))
            .transpose()?,
    })
}

fn will(obj: &JsValue) -> JsResult<LastWill> {
    let topic = get_string(obj, "topic")?.ok_or_else(|| type_error("`will.topic` is required"))?;
    let topic =
        TopicName::new(topic).map_err(|e| type_error(&["will.topic: ", &e.message()].concat()))?;
    let props = get(obj, "properties").unwrap_or(JsValue::UNDEFINED);
    Ok(LastWill {
        topic,
        payload: to_bytes(
            &get(obj, "payload").unwrap_or(JsValue::UNDEFINED),
            "will.payload",
        )?,
        qos: get_qos(obj)?,
        retain: get_bool(obj, "retain")?.unwrap_or(false),
        properties: WillProperties {
            message: message_properties(&props)?,
            will_delay_interval: get_u32(&props, "willDelayInterval")?,
        },
    })
}

/// The application's functions among the options.
#[derive(Default)]
pub(crate) struct HookFns {
    /// `transformWsUrl(url, attempt)`.
    pub(crate) url: Option<Function>,
    /// `authenticate(method, data)`: answers MQTT 5 enhanced authentication challenges.
    pub(crate) authenticate: Option<Function>,
}

/// Client options from a `ConnectOptions` object, plus the hooks it names.
pub(crate) fn parse_options(js: &JsValue) -> JsResult<(Options, HookFns)> {
    let mut o = Options::default();
    if let Some(id) = get_string(js, "clientId")? {
        o.client_id = id;
    }
    o.protocol = match get_number(js, "protocolVersion", 5)? {
        None | Some(4.0) => ProtocolVersion::V3_1_1,
        Some(5.0) => ProtocolVersion::V5,
        Some(_) => return Err(type_error("`protocolVersion` must be 4 or 5")),
    };
    if let Some(clean) = get_bool(js, "cleanStart")?.or(get_bool(js, "clean")?) {
        o.clean_start = clean;
    }
    if let Some(k) = get_u16(js, "keepalive")? {
        o.keep_alive = k;
    }
    o.username = get_string(js, "username")?;
    o.password = get(js, "password")
        .map(|p| to_bytes(&p, "password"))
        .transpose()?;
    o.will = get(js, "will").map(|w| will(&w)).transpose()?;
    if let Some(props) = get(js, "properties") {
        o.properties = connect_properties(&props)?;
    }
    if let Some(t) = get_u32(js, "connectTimeout")? {
        o.connect_timeout_ms = t;
    }
    match get_u32(js, "reconnectPeriod")? {
        Some(0) => o.reconnect.enabled = false,
        Some(p) => o.reconnect.initial_delay_ms = p,
        None => {}
    }
    if let Some(p) = get_u32(js, "reconnectMaxPeriod")? {
        o.reconnect.max_delay_ms = p;
    }
    if let Some(r) = get_bool(js, "resubscribe")? {
        o.resubscribe = r;
    }
    if let Some(q) = get(js, "offlineQueue") {
        if let Some(n) = get_u32(&q, "maxMessages")? {
            o.queue.max_messages = n as usize;
        }
        if let Some(n) = get_u32(&q, "maxBytes")? {
            o.queue.max_bytes = n as usize;
        }
    }
    let fns = HookFns {
        url: function(js, "transformWsUrl", "`transformWsUrl` must be a function")?,
        authenticate: function(js, "authenticate", "`authenticate` must be a function")?,
    };
    Ok((o, fns))
}

fn function(js: &JsValue, key: &str, error: &str) -> JsResult<Option<Function>> {
    match get(js, key) {
        Some(f) if f.is_function() => Ok(Some(f.unchecked_into())),
        Some(_) => Err(type_error(error)),
        None => Ok(None),
    }
}
