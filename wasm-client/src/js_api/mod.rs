//! The wasm side of the JavaScript API (the `aviary-mqtt` npm package).
//!
//! The API users see — `connect()`, `MqttClient` with `on`/`subscribe`/`publish`/`end`,
//! MQTT.js-shaped packets, `MqttError` — is plain JavaScript shipped in the package
//! (`wasm-client/npm/api.js`): it checks the options, keeps the listeners and the promises,
//! and builds every JavaScript object. It drives one [`Engine`] per client through a narrow
//! interface of numbers, strings and byte arrays: options and MQTT 5 properties travel as
//! field lists (`crate::fields`), and the engine reports everything through one callback
//! ([`sink`]). Built in Rust with `Reflect`, that layer was about a sixth of the module.
//! Types for every option, event and packet are written by hand in [`typescript`].

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;

use aviary_protocol::properties::id;
use aviary_protocol::{
    LastWill, MessageProperties, ProtocolVersion, Publish, QoS, RetainHandling,
    SubscribeProperties, SubscriptionOptions, TopicFilter, TopicName, WillProperties,
};
use bytes::Bytes;
use wasm_bindgen::prelude::*;

use crate::engine::Options;
use crate::fields::{connect_property, message_property, opt, Reader};
use crate::runtime::Driver;

mod sink;
mod typescript;

use sink::JsHooks;
pub use sink::Sink;

type JsResult<T> = Result<T, JsValue>;

fn type_error(msg: &str) -> JsValue {
    js_sys::TypeError::new(msg).into()
}

// One client: the driver and the hooks that report to its JavaScript object. Not part of the
// documented API (see `npm/api.js`).
// (Plain comments on the exports: wasm-bindgen would copy doc comments into the glue.)
#[allow(missing_docs)]
#[wasm_bindgen(skip_typescript)]
pub struct Engine {
    driver: Rc<Driver>,
    hooks: Rc<JsHooks>,
}

#[allow(missing_docs)]
#[wasm_bindgen]
impl Engine {
    // Starts connecting to `url` with the options in the field list `fields`; events go to
    // `sink.e` from now on (the first ones during this call). Throws a `TypeError` for an
    // invalid will topic, the one option only Rust checks.
    #[wasm_bindgen(constructor, skip_jsdoc)]
    pub fn new(url: String, fields: &[u8], sink: Sink) -> JsResult<Engine> {
        let options = options(fields)?;
        let hooks = Rc::new(JsHooks::new(sink));
        let driver = Driver::start(url, options, hooks.clone());
        Ok(Engine { driver, hooks })
    }

    // Publishes; returns the operation's token (0: failed at once, already reported).
    #[wasm_bindgen(skip_jsdoc)]
    pub fn publish(
        &self,
        topic: String,
        payload: Vec<u8>,
        qos: u8,
        retain: bool,
        props: Option<Vec<u8>>,
    ) -> u32 {
        let mut message = Publish::new(topic, payload);
        message.qos = qos_from(u32::from(qos));
        message.retain = retain;
        if let Some(props) = props {
            let mut r = Reader::new(&props);
            while let Some(id) = r.next_id() {
                message_property(
                    &mut message.properties.message,
                    id,
                    id::USER_PROPERTY,
                    &mut r,
                );
            }
        }
        let token = self.driver.call(|m, now| m.publish(message, now));
        self.hooks.token(token)
    }

    // Subscribes to the filters of the field list, each with its options byte, with its
    // MQTT 5 SUBSCRIBE properties. Throws a `TypeError` for an invalid filter.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn subscribe(&self, fields: &[u8]) -> JsResult<u32> {
        let mut filters: Vec<(TopicFilter, SubscriptionOptions)> = Vec::new();
        let mut props = SubscribeProperties::default();
        let mut r = Reader::new(fields);
        while let Some(field) = r.next_id() {
            match field {
                opt::FILTER => {
                    let filter = topic_filter(r.string())?;
                    filters.push((filter, SubscriptionOptions::default()));
                }
                opt::FILTER_OPTIONS => {
                    let o = subscription_options(r.num());
                    if let Some(last) = filters.last_mut() {
                        last.1 = o;
                    }
                }
                id::SUBSCRIPTION_IDENTIFIER => {
                    props.subscription_identifier = core::num::NonZeroU32::new(r.num());
                }
                _ => props.user_properties.push(r.user_property()),
            }
        }
        let token = self
            .driver
            .call(|m, now| m.subscribe_with(filters, props, now));
        Ok(self.hooks.token(token))
    }

    // Unsubscribes from the filters of the field list, with MQTT 5 user properties.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn unsubscribe(&self, fields: &[u8]) -> JsResult<u32> {
        let mut filters = Vec::new();
        let mut users = Vec::new();
        let mut r = Reader::new(fields);
        while let Some(field) = r.next_id() {
            match field {
                opt::FILTER => filters.push(topic_filter(r.string())?),
                _ => users.push(r.user_property()),
            }
        }
        let token = self
            .driver
            .call(|m, now| m.unsubscribe_with(filters, users, now));
        Ok(self.hooks.token(token))
    }

    // Carries out what the last call asked for; the JavaScript side calls it once it has
    // registered the promise of the token that call returned.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn pump(&self) {
        self.driver.pump();
    }

    // Ends the client: at once (`force`), or after what is in flight, for at most `timeout`
    // ms.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn end(&self, force: bool, timeout: u32) {
        if force {
            self.driver.with(|m, now| m.disconnect(now));
        } else {
            self.driver.with(|m, now| m.end_gracefully(timeout, now));
        }
    }

    // Answers the AUTH challenge of `attempt` with `data`, or fails it (`None`).
    #[wasm_bindgen(skip_jsdoc)]
    pub fn auth(&self, attempt: u32, data: Option<Vec<u8>>) {
        match data {
            Some(d) => self
                .driver
                .with(|m, now| m.answer_auth(attempt, Bytes::from(d), now)),
            None => self.driver.with(|m, now| m.fail_auth(attempt, now)),
        }
    }

    // Connected (1), reconnecting (2), ended (4), timer in a worker (8), and the number of
    // queued publishes from bit 4 up: the client's getters in one call.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn state(&self) -> f64 {
        let in_worker = u64::from(self.driver.timer_in_worker());
        let bits = self.driver.read(|m| {
            u64::from(m.is_connected())
                | (u64::from(m.is_reconnecting()) << 1)
                | (u64::from(m.is_ended()) << 2)
                | ((m.queued() as u64) << 4)
        });
        (bits | (in_worker << 3)) as f64
    }

    // Milliseconds until the next attempt while waiting out the backoff, else -1.
    #[wasm_bindgen(js_name = nextAttempt, skip_jsdoc)]
    pub fn next_attempt(&self) -> f64 {
        self.driver
            .call(|m, now| m.next_attempt_in(now))
            .map_or(-1.0, |ms| ms as f64)
    }

    // The client id in use (generated, given, or assigned by the broker).
    #[wasm_bindgen(js_name = clientId, skip_jsdoc)]
    pub fn client_id(&self) -> String {
        self.driver.read(|m| m.options().client_id.clone())
    }
}

impl core::fmt::Debug for Engine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

fn topic_filter(topic: String) -> JsResult<TopicFilter> {
    TopicFilter::new(topic).map_err(|e| type_error(&e.message()))
}

fn qos_from(n: u32) -> QoS {
    match n {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// The subscription options byte of SUBSCRIBE: QoS, no local, retain as published, retain
/// handling.
fn subscription_options(b: u32) -> SubscriptionOptions {
    let mut o = SubscriptionOptions::qos(qos_from(b & 3));
    o.no_local = b & 4 != 0;
    o.retain_as_published = b & 8 != 0;
    o.retain_handling = match (b >> 4) & 3 {
        1 => RetainHandling::SendIfNew,
        2 => RetainHandling::DoNotSend,
        _ => RetainHandling::SendAtSubscribe,
    };
    o
}

/// Client options from the field list the JavaScript side checked and wrote.
fn options(fields: &[u8]) -> JsResult<Options> {
    let mut o = Options::default();
    let mut will = None;
    let (mut will_payload, mut will_qos, mut will_retain) = (Bytes::new(), 0, false);
    let mut will_props = WillProperties::default();
    let mut r = Reader::new(fields);
    while let Some(field) = r.next_id() {
        match field {
            opt::CLIENT_ID => o.client_id = r.string(),
            opt::PROTOCOL_VERSION => {
                if r.num() == 5 {
                    o.protocol = ProtocolVersion::V5;
                }
            }
            opt::CLEAN => o.clean_start = r.flag(),
            opt::KEEPALIVE => o.keep_alive = r.num() as u16,
            opt::USERNAME => o.username = Some(r.string()),
            opt::PASSWORD => o.password = Some(Bytes::copy_from_slice(r.bytes())),
            opt::CONNECT_TIMEOUT => o.connect_timeout_ms = r.num(),
            opt::RECONNECT_PERIOD => match r.num() {
                0 => o.reconnect.enabled = false,
                p => o.reconnect.initial_delay_ms = p,
            },
            opt::RECONNECT_MAX_PERIOD => o.reconnect.max_delay_ms = r.num(),
            opt::RESUBSCRIBE => o.resubscribe = r.flag(),
            opt::QUEUE_MAX_MESSAGES => o.queue.max_messages = r.num() as usize,
            opt::QUEUE_MAX_BYTES => o.queue.max_bytes = r.num() as usize,
            opt::WILL_TOPIC => {
                let topic = TopicName::new(r.string())
                    .map_err(|e| type_error(&["will.topic: ", &e.message()].concat()))?;
                will = Some(topic);
            }
            opt::WILL_PAYLOAD => will_payload = Bytes::copy_from_slice(r.bytes()),
            opt::WILL_QOS => will_qos = r.num(),
            opt::WILL_RETAIN => will_retain = r.flag(),
            id::WILL_DELAY_INTERVAL => will_props.will_delay_interval = Some(r.num()),
            field => {
                let message: &mut MessageProperties = &mut will_props.message;
                if !message_property(message, field, opt::WILL_USER_PROPERTY, &mut r) {
                    connect_property(&mut o.properties, field, &mut r);
                }
            }
        }
    }
    o.will = will.map(|topic| LastWill {
        topic,
        payload: will_payload,
        qos: qos_from(will_qos),
        retain: will_retain,
        properties: will_props,
    });
    Ok(o)
}
