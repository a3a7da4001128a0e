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

use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell, RefMut};

use aviary_protocol::properties::id;
use aviary_protocol::{
    LastWill, MessageProperties, ProtocolVersion, Publish, QoS, RetainHandling,
    SubscribeProperties, SubscriptionOptions, TopicFilter, TopicName, WillProperties,
};
use bytes::Bytes;
use wasm_bindgen::prelude::*;

use crate::engine::{Event, Machine, Options};
use crate::fields::{connect_property, message_property, opt, Reader};
use crate::runtime::{now_ms, random_seed};
use crate::text::hex;

mod sink;
mod typescript;

/// The codes of [`Engine::signal`]; `SIGNAL` in `npm/api.js` numbers them the same way.
mod signal {
    /// The socket the engine asked for is open.
    pub(super) const OPENED: u32 = 0;
    /// The timer fired.
    pub(super) const TIMEOUT: u32 = 1;
    /// The browser went online.
    pub(super) const ONLINE: u32 = 2;
    /// The browser went offline.
    pub(super) const OFFLINE: u32 = 3;
    /// Start connecting; the browser is online (`navigator.onLine`).
    pub(super) const START_ONLINE: u32 = 4;
    /// Start connecting; the browser is offline (the first attempt waits for the network).
    pub(super) const START_OFFLINE: u32 = 5;
    /// Carry out what the engine asks for (see [`Engine::pump`](super::Engine::pump)).
    pub(super) const PUMP: u32 = 6;
    /// End at once (`MqttClient.end` with `force`).
    pub(super) const END_NOW: u32 = 7;
    /// End once what is in flight is acknowledged, waiting at most `arg` ms.
    pub(super) const END_GRACEFULLY: u32 = 8;
    /// Returns connected (1), reconnecting (2), ended (4), and the number of queued publishes
    /// from bit 4 up: the client's getters in one call.
    pub(super) const STATE: u32 = 9;
    /// Returns the milliseconds until the next attempt while waiting out the backoff, else -1.
    pub(super) const NEXT_ATTEMPT: u32 = 10;
    /// Fail the AUTH challenge of attempt `arg` (the `authenticate` hook gave no answer).
    pub(super) const AUTH_FAILED: u32 = 11;
}

use sink::JsHooks;
pub use sink::Sink;

/// A mistake in the application's arguments that only Rust checks (an invalid topic): the
/// JavaScript side throws it as a `TypeError` once the call returns. Reported through the sink
/// rather than returned as a `JsValue`, which would cost the package wasm-bindgen's glue for
/// thrown values and an import for the `TypeError`.
struct Invalid(String);

// One client's engine. The JavaScript side owns the WebSocket, the timer and the
// online/offline watch (`npm/runtime.js`), feeds this what they report, and carries out what
// the engine asks for through the sink (open or close the socket, send bytes, wake at a
// time): the npm package carries no browser runtime of its own in wasm. Not part of the
// documented API (see `npm/api.js`).
// (Plain comments on the exports: wasm-bindgen would copy doc comments into the glue.)
#[allow(missing_docs)]
#[wasm_bindgen(skip_typescript)]
pub struct Engine {
    machine: RefCell<Machine>,
    hooks: JsHooks,
    pumping: Cell<bool>,
    // The wake-up the JavaScript timer was last asked for: it is only moved earlier, never
    // later, so a busy connection does not post to the timer's worker on every frame (an
    // early wake-up is harmless: the engine checks timestamps).
    scheduled: Cell<Option<u64>>,
}

#[allow(missing_docs)]
#[wasm_bindgen]
impl Engine {
    // An engine for the options in the field list `fields`; events go to `sink.e`. It does
    // nothing until `start`. An invalid will topic, the one option only Rust checks, is
    // reported as `INVALID` (and the will left out): the caller throws it and frees this.
    #[wasm_bindgen(constructor, skip_jsdoc)]
    pub fn new(fields: &[u8], sink: Sink) -> Engine {
        let hooks = JsHooks::new(sink);
        let mut options = options(fields, &hooks);
        let seed = random_seed();
        if options.client_id.is_empty() {
            // Unique per tab, so two tabs never take over each other's session.
            options.client_id = hex("aviary_", seed, 12);
        }
        hooks.client_id(&options.client_id);
        Engine {
            machine: RefCell::new(Machine::new(options, seed)),
            hooks,
            pumping: Cell::new(false),
            scheduled: Cell::new(None),
        }
    }

    // What the browser reports without data (the socket opened, the timer fired, the network
    // changed, start), the pump, the application's `end` and the client's getters, in one
    // export rather than nine: each export cost the package a shim, a wrapper and glue. The
    // codes are in `signal` above; `arg` is the timeout of a graceful end, unused by the
    // others. Returns the getters' values, 0 for the rest.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn signal(&self, code: u32, arg: u32) -> f64 {
        match code {
            signal::PUMP => self.pump(),
            signal::STATE => return self.state(),
            signal::NEXT_ATTEMPT => {
                return self
                    .call(|m, now| m.next_attempt_in(now))
                    .map_or(-1.0, |ms| ms as f64)
            }
            _ => {
                if code == signal::TIMEOUT {
                    self.scheduled.set(None);
                }
                self.with(|m, now| match code {
                    signal::OPENED => m.socket_opened(now),
                    signal::TIMEOUT => m.handle_timeout(now),
                    signal::ONLINE | signal::OFFLINE => m.set_online(code == signal::ONLINE, now),
                    signal::START_ONLINE | signal::START_OFFLINE => {
                        m.set_online(code == signal::START_ONLINE, now);
                        m.start(now);
                    }
                    signal::END_NOW => m.disconnect(now),
                    signal::AUTH_FAILED => m.fail_auth(arg, now),
                    signal::END_GRACEFULLY => m.end_gracefully(arg, now),
                    _ => {}
                });
            }
        }
        0.0
    }

    // A binary frame arrived. As bytes the glue copies into wasm memory, not as a
    // `Uint8Array` copied by js-sys: its `copy_to` brought two imports, their glue and a
    // length assertion with its panic message into the package, for one more copy of each
    // frame saved.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn data(&self, frame: &[u8]) {
        self.with(|m, now| m.handle_bytes(frame, now));
    }

    // Publishes to `topic` (UTF-8); returns the operation's token (0: failed at once, already
    // reported).
    #[wasm_bindgen(skip_jsdoc)]
    pub fn publish(
        &self,
        topic: Vec<u8>,
        payload: Vec<u8>,
        qos: u8,
        retain: bool,
        props: &[u8],
    ) -> u32 {
        let topic = String::from_utf8(topic).unwrap_or_default();
        let mut message = Publish::new(topic, payload);
        message.qos = qos_from(u32::from(qos));
        message.retain = retain;
        // An empty field list when there are no properties: no `Option` crossing, whose
        // conversion was glue of its own.
        let mut r = Reader::new(props);
        while let Some(id) = r.next_id() {
            message_property(
                message.properties.message.to_mut(),
                id,
                id::USER_PROPERTY,
                &mut r,
            );
        }
        let token = self.call(|m, now| m.publish(message, now));
        self.hooks.token(token)
    }

    // Subscribes to the filters of the field list, each with its options byte, with its
    // MQTT 5 SUBSCRIBE properties; or, with `un`, unsubscribes from them, with MQTT 5 user
    // properties (one export for both). An invalid filter is reported as `INVALID` (token 0).
    #[wasm_bindgen(skip_jsdoc)]
    pub fn subscribe(&self, fields: &[u8], un: bool) -> u32 {
        self.checked(|| {
            if un {
                self.unsubscribe_fields(fields)
            } else {
                self.subscribe_fields(fields)
            }
        })
    }

    // What the browser reports with bytes, other than frames, in one export: with `attempt`
    // 0, the socket closed by itself (or could not be opened) for the reason `data` (UTF-8:
    // strings cross as bytes, so the glue needs no string encoder of its own); otherwise the
    // answer `data` to the AUTH challenge of `attempt` (failing it is `signal`'s
    // `AUTH_FAILED`: no `Option` crossing, whose conversion was glue of its own).
    #[wasm_bindgen(skip_jsdoc)]
    pub fn input(&self, attempt: u32, data: &[u8]) {
        if attempt == 0 {
            let detail = core::str::from_utf8(data).unwrap_or_default();
            self.with(|m, now| m.socket_closed(detail, now));
        } else {
            let data = Bytes::copy_from_slice(data);
            self.with(|m, now| m.answer_auth(attempt, data, now));
        }
    }
}

impl Engine {
    /// Connected (1), reconnecting (2), ended (4), and the number of queued publishes from
    /// bit 4 up.
    fn state(&self) -> f64 {
        let m = self.machine();
        let bits = u64::from(m.is_connected())
            | (u64::from(m.is_reconnecting()) << 1)
            | (u64::from(m.is_ended()) << 2)
            | ((m.queued() as u64) << 4);
        bits as f64
    }

    /// Carries out everything the engine asked for, until it has nothing more: bytes to send,
    /// the socket to open or close, the other events for the client, then the timer. The
    /// JavaScript side asks for it (`signal(PUMP)`) after an operation once it has registered
    /// the promise of the token that operation returned; every other call here pumps by
    /// itself. Listeners run with no borrow held, so they may call back in; a call made while
    /// pumping is picked up by the running pump.
    fn pump(&self) {
        if self.pumping.replace(true) {
            return;
        }
        loop {
            let (output, events) = {
                let mut machine = self.machine();
                (machine.take_output(), machine.take_events())
            };
            if output.is_none() && events.is_empty() {
                break;
            }
            if let Some(bytes) = output {
                self.hooks.send(&bytes);
            }
            // Taken out one by one, not by `into_iter`, whose iterator over events was code of
            // its own in the package; the placeholder left behind owns nothing.
            let mut events = events;
            for event in &mut events {
                self.hooks.event(core::mem::replace(event, Event::Offline));
            }
        }
        self.pumping.set(false);
        self.rearm();
    }

    /// The token `f` returns, or 0 after reporting why its arguments are invalid.
    fn checked(&self, f: impl FnOnce() -> Result<u32, Invalid>) -> u32 {
        f().unwrap_or_else(|Invalid(e)| {
            self.hooks.invalid(&e);
            0
        })
    }

    fn subscribe_fields(&self, fields: &[u8]) -> Result<u32, Invalid> {
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
        let token = self.call(|m, now| m.subscribe_with(filters, props, now));
        Ok(self.hooks.token(token))
    }

    fn unsubscribe_fields(&self, fields: &[u8]) -> Result<u32, Invalid> {
        let mut filters = Vec::new();
        let mut users = Vec::new();
        let mut r = Reader::new(fields);
        while let Some(field) = r.next_id() {
            match field {
                opt::FILTER => filters.push(topic_filter(r.string())?),
                _ => users.push(r.user_property()),
            }
        }
        let token = self.call(|m, now| m.unsubscribe_with(filters, users, now));
        Ok(self.hooks.token(token))
    }

    /// The engine, for one step. No borrow is ever held while JavaScript runs (listeners
    /// are called from `pump` with none), so a second one cannot happen; if one did, it traps
    /// as `RefCell`'s panic does in the npm build, without that panic's message and location.
    fn machine(&self) -> RefMut<'_, Machine> {
        let m = self.machine.try_borrow_mut();
        m.unwrap_or_else(|_| core::arch::wasm32::unreachable())
    }

    /// Runs `f` on the engine at the current time, then pumps.
    fn with<R>(&self, f: impl FnOnce(&mut Machine, u64) -> R) -> R {
        let result = self.call(f);
        self.pump();
        result
    }

    /// Runs `f` on the engine without pumping: the caller registers interest in the result
    /// (a token) first and then calls [`pump`](Self::pump).
    fn call<R>(&self, f: impl FnOnce(&mut Machine, u64) -> R) -> R {
        f(&mut self.machine(), now_ms())
    }

    /// Asks the JavaScript timer for the engine's next deadline when it is earlier than the
    /// one asked for, or to cancel when there is none.
    fn rearm(&self) {
        let Some(deadline) = self.machine().poll_timeout() else {
            if self.scheduled.take().is_some() {
                self.hooks.timer(None);
            }
            return;
        };
        if self.scheduled.get().is_some_and(|s| s <= deadline) {
            return;
        }
        self.scheduled.set(Some(deadline));
        self.hooks.timer(Some(deadline.saturating_sub(now_ms())));
    }
}

impl core::fmt::Debug for Engine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

fn topic_filter(topic: String) -> Result<TopicFilter, Invalid> {
    TopicFilter::new(topic).map_err(|e| Invalid(e.message()))
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

/// Client options from the field list the JavaScript side checked and wrote; an invalid will
/// topic is reported to `hooks` (and the will left out).
fn options(fields: &[u8], hooks: &JsHooks) -> Options {
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
            opt::WILL_TOPIC => match TopicName::new(r.string()) {
                Ok(topic) => will = Some(topic),
                Err(e) => {
                    let mut message = String::from("will.topic: ");
                    message.push_str(&e.message());
                    hooks.invalid(&message);
                }
            },
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
    o
}
