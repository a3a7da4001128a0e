//! The JavaScript API (the `aviary-mqtt` npm package), shaped like MQTT.js:
//!
//! ```js
//! const client = await connect("ws://localhost:8080/mqtt", { clientId, keepalive: 30 });
//! client.on("message", (topic, payload, packet) => { ... });
//! await client.subscribe("pets/+/location", { qos: 1 });
//! await client.publish("pets/1/status", JSON.stringify({ online: true }), { qos: 1, retain: true });
//! await client.end();
//! ```
//!
//! Promises resolve on the broker's acknowledgement and reject with an `MqttError`
//! (`code`, `reasonCode`, `message`). Types for every option, event and packet are written by
//! hand in [`typescript`], because wasm-bindgen only sees `JsValue`.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

pub mod compat;
mod convert;
mod hooks;
mod options;
mod typescript;

use alloc::rc::Rc;

use aviary_protocol::{
    Publish, RetainHandling, SubscribeProperties, SubscriptionOptions, TopicFilter,
};
use js_sys::{Array, Function, Promise};
use wasm_bindgen::prelude::*;

use self::hooks::{EventKind, JsHooks, ReplyKind};
use self::options::{
    get, get_qos, get_u32, message_properties, parse_options, to_bytes, type_error,
    user_properties, JsResult,
};
use crate::engine::{MqttError, Token};
use crate::runtime::Driver;

// The exported items are documented with plain comments: wasm-bindgen copies doc comments
// into the package's JavaScript glue (about 1 KiB gzipped), and their documentation for users
// is the hand-written TypeScript declarations (`typescript.rs`), which editors show.

// Connects to `url` (`ws://` or `wss://`, usually ending in `/mqtt`) and resolves with the
// client once the broker accepts; rejects with an `MqttError` if the first attempt fails
// (the client is then ended). Later losses reconnect automatically.
#[allow(missing_docs)]
#[wasm_bindgen(skip_typescript, skip_jsdoc)]
pub fn connect(url: String, options: JsValue) -> JsResult<Promise> {
    let (options, fns) = parse_options(&options)?;
    let hooks = Rc::new(JsHooks::new(fns));
    let mut promise_parts = None;
    let promise = Promise::new(&mut |resolve, reject| promise_parts = Some((resolve, reject)));
    hooks.await_connect(promise_parts);
    let driver = Driver::start(url, options, hooks.clone());
    let client = MqttClient {
        driver: driver.clone(),
        hooks: hooks.clone(),
    };
    hooks.attach(&driver, client.into());
    Ok(promise)
}

// A connected client. See the TypeScript declarations for the full contract.
#[allow(missing_docs)]
#[wasm_bindgen(skip_typescript)]
pub struct MqttClient {
    driver: Rc<Driver>,
    hooks: Rc<JsHooks>,
}

#[allow(missing_docs)]
#[wasm_bindgen]
impl MqttClient {
    // Adds a listener for `connect`, `reconnect`, `close`, `offline`, `error`, `end` or
    // `message`.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn on(&self, event: &str, listener: Function) -> JsResult<()> {
        self.hooks.add(EventKind::parse(event)?, listener, false);
        Ok(())
    }

    // Adds a listener called at most once.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn once(&self, event: &str, listener: Function) -> JsResult<()> {
        self.hooks.add(EventKind::parse(event)?, listener, true);
        Ok(())
    }

    // Removes a listener added with `on` or `once`.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn off(&self, event: &str, listener: &Function) -> JsResult<()> {
        self.hooks.remove(EventKind::parse(event)?, listener);
        Ok(())
    }

    // Subscribes to a topic filter, an array of them, or an object `{ filter: { qos } }`,
    // with `{ qos, noLocal, retainAsPublished, retainHandling, subscriptionIdentifier,
    // userProperties }` (the last two MQTT 5 SUBSCRIBE properties, for the whole call).
    // Resolves with `[{ topic, qos }]`; rejects if the broker refuses any filter.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn subscribe(&self, topics: JsValue, options: JsValue) -> JsResult<Promise> {
        let filters = subscriptions(&topics, &options)?;
        let properties = subscribe_properties(&options)?;
        let names = filters.iter().map(|(f, _)| f.as_str().to_owned()).collect();
        let token = self
            .driver
            .call(|m, now| m.subscribe_with(filters, properties, now));
        Ok(self.reply(token, ReplyKind::Subscribe(names)))
    }

    // Unsubscribes from a topic filter or an array of them, with `{ userProperties }` (MQTT 5).
    #[wasm_bindgen(skip_jsdoc)]
    pub fn unsubscribe(&self, topics: JsValue, options: JsValue) -> JsResult<Promise> {
        let mut filters = Vec::new();
        for t in topic_list(&topics)? {
            filters.push(topic_filter(t)?);
        }
        let props = user_properties(&options)?;
        let token = self
            .driver
            .call(|m, now| m.unsubscribe_with(filters, props, now));
        Ok(self.reply(token, ReplyKind::Done))
    }

    // Publishes `payload` (string, `Uint8Array` or `ArrayBuffer`) with `{ qos, retain,
    // properties }`. Resolves once written (QoS 0), on PUBACK (1) or PUBCOMP (2); while
    // offline the message waits in the bounded offline queue.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn publish(&self, topic: String, payload: JsValue, options: JsValue) -> JsResult<Promise> {
        let mut message = Publish::new(topic, to_bytes(&payload, "payload")?);
        message.qos = get_qos(&options)?;
        message.retain = get(&options, "retain").is_some_and(|r| r.is_truthy());
        if let Some(props) = get(&options, "properties") {
            message.properties.message = message_properties(&props)?;
        }
        let token = self.driver.call(|m, now| m.publish(message, now));
        Ok(self.reply(token, ReplyKind::Done))
    }

    // Disconnects cleanly (the broker discards the will) and stops reconnecting. Graceful by
    // default: outgoing QoS 1/2 messages in flight get `{ timeout }` ms (default 5000) to be
    // acknowledged first; `end(true)` drops them at once. Resolves once the client has ended;
    // whatever is still pending rejects with `CLIENT_ENDED`.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn end(&self, force: JsValue, options: JsValue) -> JsResult<Promise> {
        let timeout = get_u32(&options, "timeout")?.unwrap_or(DEFAULT_END_TIMEOUT_MS);
        if self.driver.read(|m| m.is_ended()) {
            return Ok(Promise::resolve(&JsValue::UNDEFINED));
        }
        let mut resolve = None;
        let promise = Promise::new(&mut |r, _| resolve = Some(r));
        if let Some(r) = resolve {
            // The `end` event settles it, now (nothing in flight) or after the acks.
            self.hooks.add(EventKind::End, r, true);
        }
        if force.is_truthy() {
            self.driver.with(|m, now| m.disconnect(now));
        } else {
            self.driver.with(|m, now| m.end_gracefully(timeout, now));
        }
        Ok(promise)
    }

    // Whether the broker has accepted the current connection.
    #[wasm_bindgen(getter, skip_jsdoc)]
    pub fn connected(&self) -> bool {
        self.driver.read(|m| m.is_connected())
    }

    // Whether the client is between connections, trying again.
    #[wasm_bindgen(getter, skip_jsdoc)]
    pub fn reconnecting(&self) -> bool {
        self.driver.read(|m| m.is_reconnecting())
    }

    // Milliseconds until the next connection attempt while waiting out the reconnect backoff
    // (for a countdown, e.g. read it in the `offline` or `close` listener); `null` while
    // connected, connecting, offline or ended.
    #[wasm_bindgen(getter, js_name = nextAttemptInMs, skip_jsdoc)]
    pub fn next_attempt_in_ms(&self) -> Option<f64> {
        self.driver
            .call(|m, now| m.next_attempt_in(now))
            .map(|ms| ms as f64)
    }

    // Publishes waiting in the offline queue.
    #[wasm_bindgen(getter, js_name = queuedCount, skip_jsdoc)]
    pub fn queued_count(&self) -> usize {
        self.driver.read(|m| m.queued())
    }

    // The client id in use (generated, given, or assigned by the broker).
    #[wasm_bindgen(getter, js_name = clientId, skip_jsdoc)]
    pub fn client_id(&self) -> String {
        self.driver.read(|m| m.options().client_id.clone())
    }

    // Whether keep-alive runs on a Worker timer, immune to background-tab throttling.
    #[wasm_bindgen(getter, js_name = timerInWorker, skip_jsdoc)]
    pub fn timer_in_worker(&self) -> bool {
        self.driver.timer_in_worker()
    }
}

impl core::fmt::Debug for MqttClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MqttClient").finish_non_exhaustive()
    }
}

impl MqttClient {
    /// A promise for `token`. The engine call was made without pumping, so the completion
    /// (even an immediate one) is delivered after the promise is registered.
    fn reply(&self, token: Result<Token, MqttError>, kind: ReplyKind) -> Promise {
        let promise = match token {
            Ok(token) => {
                let mut parts = None;
                let p = Promise::new(&mut |resolve, reject| parts = Some((resolve, reject)));
                if let Some((resolve, reject)) = parts {
                    self.hooks.await_reply(token, resolve, reject, kind);
                }
                p
            }
            Err(e) => Promise::reject(&convert::error(&e)),
        };
        self.driver.pump();
        promise
    }
}

// The argument readers below push in plain loops: collecting into a `Result<Vec<_>, _>`
// costs the package about 0.5 KB per use.

/// Topic strings from a string or an array of strings.
fn topic_list(topics: &JsValue) -> JsResult<Vec<String>> {
    if let Some(t) = topics.as_string() {
        return Ok(vec![t]);
    }
    if Array::is_array(topics) {
        let mut list = Vec::new();
        // Checked to be an array just above: no need for `Array.from`'s copy (and import).
        for t in topics.unchecked_ref::<Array>().iter() {
            list.push(
                t.as_string()
                    .ok_or_else(|| type_error("topics must be strings"))?,
            );
        }
        return Ok(list);
    }
    Err(type_error("expected a topic string or an array of them"))
}

fn topic_filter(topic: String) -> JsResult<TopicFilter> {
    TopicFilter::new(topic).map_err(|e| type_error(&e.message()))
}

/// Subscription options: `qos`, and MQTT.js's `nl` (no local), `rap` (retain as published)
/// and `rh` (retain handling), each also under its full name (`noLocal`, ...).
fn subscription_options(o: &JsValue) -> JsResult<SubscriptionOptions> {
    let flag = |short: &str, long: &str| {
        get(o, short)
            .or_else(|| get(o, long))
            .is_some_and(|v| v.is_truthy())
    };
    let mut s = SubscriptionOptions::qos(get_qos(o)?);
    s.no_local = flag("nl", "noLocal");
    s.retain_as_published = flag("rap", "retainAsPublished");
    let rh = get(o, "rh").or_else(|| get(o, "retainHandling"));
    s.retain_handling = match rh.and_then(|v| v.as_f64()) {
        Some(1.0) => RetainHandling::SendIfNew,
        Some(2.0) => RetainHandling::DoNotSend,
        _ => RetainHandling::SendAtSubscribe,
    };
    Ok(s)
}

/// How long `end()` waits for in-flight messages by default, in ms.
const DEFAULT_END_TIMEOUT_MS: u32 = 5_000;

/// MQTT 5 SUBSCRIBE properties from `{ subscriptionIdentifier, userProperties }`.
fn subscribe_properties(o: &JsValue) -> JsResult<SubscribeProperties> {
    let id = match get_u32(o, "subscriptionIdentifier")? {
        // The protocol's range: a variable byte integer from 1 [MQTT-3.8.2.1.2].
        Some(n @ 1..=268_435_455) => core::num::NonZeroU32::new(n),
        Some(_) => {
            let msg = "`subscriptionIdentifier` must be an integer from 1 to 268435455";
            return Err(type_error(msg));
        }
        None => None,
    };
    Ok(SubscribeProperties {
        subscription_identifier: id,
        user_properties: user_properties(o)?,
    })
}

fn subscriptions(
    topics: &JsValue,
    options: &JsValue,
) -> JsResult<Vec<(TopicFilter, SubscriptionOptions)>> {
    let mut filters = Vec::new();
    if topics.is_string() || Array::is_array(topics) {
        let opts = subscription_options(options)?;
        for t in topic_list(topics)? {
            filters.push((topic_filter(t)?, opts));
        }
        return Ok(filters);
    }
    if topics.is_object() {
        for e in js_sys::Object::entries(topics.unchecked_ref()).iter() {
            let e: Array = e.unchecked_into();
            let t = e.get(0).as_string().unwrap_or_default();
            filters.push((topic_filter(t)?, subscription_options(&e.get(1))?));
        }
        return Ok(filters);
    }
    Err(type_error(
        "expected a topic string, an array of them, or { topic: { qos } }",
    ))
}
