//! What the JavaScript API does with the engine's events: call `on(...)` listeners, settle
//! the promises of `connect`, `publish`, `subscribe` and `unsubscribe`, and run the
//! `transformWsUrl` hook before each connection attempt, and the `authenticate` hook with each
//! MQTT 5 enhanced authentication challenge.

use alloc::rc::{Rc, Weak};
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use js_sys::{Function, Promise, Uint8Array};
use wasm_bindgen::prelude::*;

use super::convert;
use super::options::{to_bytes, type_error, HookFns, JsResult};
use crate::engine::small_map::SmallMap;
use crate::engine::{Done, ErrorKind, Event, MqttError, Token};
use crate::runtime::{Driver, Hooks, UrlChoice};

/// The events `on()` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    Connect,
    Reconnect,
    Close,
    Offline,
    Error,
    End,
    Message,
}

impl EventKind {
    pub(crate) fn parse(name: &str) -> JsResult<Self> {
        Ok(match name {
            "connect" => Self::Connect,
            "reconnect" => Self::Reconnect,
            "close" => Self::Close,
            "offline" => Self::Offline,
            "error" => Self::Error,
            "end" => Self::End,
            "message" => Self::Message,
            other => return Err(type_error(&["unknown event `", other, "`"].concat())),
        })
    }
}

/// How to resolve an operation's promise.
pub(crate) enum ReplyKind {
    /// With `undefined`.
    Done,
    /// With `[{ topic, qos }]` for these topics.
    Subscribe(Vec<String>),
}

struct Listener {
    kind: EventKind,
    f: Function,
    once: bool,
}

/// Listeners are copy-on-write: emitting clones the `Rc`, so a listener may add or remove
/// listeners while events are being delivered.
type Listeners = Rc<Vec<Listener>>;

type Settle = (Function, Function);

pub(crate) struct JsHooks {
    listeners: RefCell<Listeners>,
    replies: RefCell<SmallMap<Token, (Function, Function, ReplyKind)>>,
    url_hook: Option<Function>,
    auth_hook: Option<Function>,
    connect: RefCell<Option<Settle>>,
    client: RefCell<JsValue>,
    driver: RefCell<Weak<Driver>>,
    failed_early: Cell<bool>,
}

impl JsHooks {
    pub(crate) fn new(fns: HookFns) -> Self {
        Self {
            listeners: RefCell::new(Rc::new(Vec::new())),
            replies: RefCell::new(SmallMap::default()),
            url_hook: fns.url,
            auth_hook: fns.authenticate,
            connect: RefCell::new(None),
            client: RefCell::new(JsValue::UNDEFINED),
            driver: RefCell::new(Weak::new()),
            failed_early: Cell::new(false),
        }
    }

    pub(crate) fn await_connect(&self, settle: Option<Settle>) {
        *self.connect.borrow_mut() = settle;
    }

    /// Links the hooks to their driver and client object once both exist. A first attempt
    /// that failed synchronously (a malformed URL) ends the client now.
    pub(crate) fn attach(&self, driver: &Rc<Driver>, client: JsValue) {
        *self.driver.borrow_mut() = Rc::downgrade(driver);
        *self.client.borrow_mut() = client;
        if self.failed_early.get() {
            driver.with(|m, now| m.disconnect(now));
        }
    }

    /// Links the hooks to their driver only (a client without a connect promise).
    pub(crate) fn link(&self, driver: &Rc<Driver>) {
        *self.driver.borrow_mut() = Rc::downgrade(driver);
    }

    /// Asks `authenticate(method, data)` for the answer to a challenge and hands it to the
    /// engine when it settles. No hook, a throw, a rejection or an answer that is not bytes
    /// fails the attempt (the engine drops answers to a lost attempt).
    fn challenge(&self, attempt: u32, method: &str, data: &[u8]) {
        let driver = self.driver.borrow().clone();
        let answer = match &self.auth_hook {
            Some(f) => f.call2(&JsValue::UNDEFINED, &method.into(), &bytes(data)),
            None => Err(JsValue::UNDEFINED),
        };
        let fail = driver.clone();
        when_settled(
            answer,
            move |v| {
                let Some(d) = driver.upgrade() else { return };
                match to_bytes(&v, "") {
                    Ok(data) => d.with(|m, now| m.answer_auth(attempt, data, now)),
                    Err(_) => d.with(|m, now| m.fail_auth(attempt, now)),
                }
            },
            move || {
                if let Some(d) = fail.upgrade() {
                    d.with(|m, now| m.fail_auth(attempt, now));
                }
            },
        );
    }

    /// Hands the CONNACK's Authentication Data (SCRAM's server signature, say) to
    /// `authenticate(method, data, true)`. A throw or rejection means the broker did not prove
    /// itself: the client ends and `connect()` rejects; `connect()` resolves only once it passed.
    fn check_final(&self, hook: &Function, method: &str, data: &[u8]) {
        let result = hook.call3(
            &JsValue::UNDEFINED,
            &method.into(),
            &bytes(data),
            &JsValue::TRUE,
        );
        let settle = self.connect.borrow_mut().take();
        let client = self.client.borrow().clone();
        let driver = self.driver.borrow().clone();
        let on_fail = settle.clone();
        when_settled(
            result,
            move |_| {
                if let Some((resolve, _)) = settle {
                    let _ = resolve.call1(&JsValue::UNDEFINED, &client);
                }
            },
            move || {
                if let Some(d) = driver.upgrade() {
                    d.with(|m, now| m.disconnect(now));
                }
                if let Some((_, reject)) = on_fail {
                    let e = MqttError::new(ErrorKind::ConnectionRefused, "authenticate failed");
                    let _ = reject.call1(&JsValue::UNDEFINED, &convert::error(&e));
                }
            },
        );
    }

    pub(crate) fn await_reply(
        &self,
        token: Token,
        resolve: Function,
        reject: Function,
        kind: ReplyKind,
    ) {
        self.replies
            .borrow_mut()
            .push(token, (resolve, reject, kind));
    }

    pub(crate) fn add(&self, kind: EventKind, f: Function, once: bool) {
        Rc::make_mut_vec(&mut self.listeners.borrow_mut()).push(Listener { kind, f, once });
    }

    pub(crate) fn remove(&self, kind: EventKind, f: &Function) {
        Rc::make_mut_vec(&mut self.listeners.borrow_mut())
            .retain(|l| !(l.kind == kind && l.f == *f));
    }

    /// Calls the listeners of `kind` with `args`, dropping `once` listeners first.
    fn emit(&self, kind: EventKind, args: &[JsValue]) {
        let listeners = self.listeners.borrow().clone();
        if listeners.iter().any(|l| l.kind == kind && l.once) {
            Rc::make_mut_vec(&mut self.listeners.borrow_mut())
                .retain(|l| !(l.kind == kind && l.once));
        }
        for l in listeners.iter().filter(|l| l.kind == kind) {
            let this = JsValue::UNDEFINED;
            let _ = match args {
                [] => l.f.call0(&this),
                [a] => l.f.call1(&this, a),
                [a, b] => l.f.call2(&this, a, b),
                [a, b, c, ..] => l.f.call3(&this, a, b, c),
            };
        }
    }

    /// Delivers a message. The `packet` object costs about ten property writes across the
    /// wasm boundary, so it is skipped when every listener declares exactly one or two
    /// parameters (`Function.length`), like `(topic, payload) => …`. Listeners with a third
    /// parameter, rest parameters or `arguments` (length 0) get it.
    fn message(&self, p: &aviary_protocol::Publish) {
        let wants_packet = {
            let listeners = self.listeners.borrow();
            let mut found = None;
            for l in listeners.iter().filter(|l| l.kind == EventKind::Message) {
                found = Some(found.unwrap_or(false) || !matches!(l.f.length(), 1 | 2));
            }
            match found {
                None => return,
                Some(wants) => wants,
            }
        };
        let topic = JsValue::from_str(&p.topic);
        let payload: JsValue = Uint8Array::from(&p.payload[..]).into();
        if wants_packet {
            let packet = convert::publish_packet(p, &topic, &payload);
            self.emit(EventKind::Message, &[topic, payload, packet]);
        } else {
            self.emit(EventKind::Message, &[topic, payload]);
        }
    }

    fn complete(&self, token: Token, result: Result<Done, MqttError>) {
        let Some((resolve, reject, kind)) = self.replies.borrow_mut().remove(&token) else {
            return;
        };
        let _ = match (result, kind) {
            (Ok(Done::Subscribed(codes)), ReplyKind::Subscribe(topics)) => {
                resolve.call1(&JsValue::UNDEFINED, &convert::granted(&topics, &codes))
            }
            (Ok(_), _) => resolve.call0(&JsValue::UNDEFINED),
            (Err(e), _) => reject.call1(&JsValue::UNDEFINED, &convert::error(&e)),
        };
    }

    /// Settles the `connect()` promise once: resolved by the first CONNACK, rejected by the
    /// first failure (which also ends the client, so nothing retries behind the caller's back).
    fn settle_connect(&self, error: Option<&MqttError>) {
        let Some((resolve, reject)) = self.connect.borrow_mut().take() else {
            return;
        };
        match error {
            None => {
                let _ = resolve.call1(&JsValue::UNDEFINED, &self.client.borrow());
            }
            Some(e) => {
                let _ = reject.call1(&JsValue::UNDEFINED, &convert::error(e));
                match self.driver.borrow().upgrade() {
                    Some(d) => d.with(|m, now| m.disconnect(now)),
                    None => self.failed_early.set(true),
                }
            }
        }
    }
}

/// `data` as a new `Uint8Array`.
fn bytes(data: &[u8]) -> JsValue {
    Uint8Array::from(data).into()
}

/// Runs `ok` with what a hook returned (awaited, if a promise) or `err` if it threw or its
/// promise rejected: one path for sync and async hooks, in a later microtask either way.
fn when_settled(
    result: Result<JsValue, JsValue>,
    ok: impl FnOnce(JsValue) + 'static,
    err: impl FnOnce() + 'static,
) {
    let promise = match result {
        Ok(v) => Promise::resolve(&v),
        Err(e) => Promise::reject(&e),
    };
    let on_ok = Closure::once(ok);
    let on_err = Closure::once(move |_: JsValue| err());
    let _ = promise.then2(&on_ok, &on_err);
    // Only one of them runs: the other is leaked, as a promise callback that never fires is.
    on_ok.forget();
    on_err.forget();
}

/// `Rc::make_mut` for a `Vec` of non-`Clone` listeners: clones the handles when shared.
trait MakeMutVec {
    fn make_mut_vec(this: &mut Self) -> &mut Vec<Listener>;
}

impl MakeMutVec for Rc<Vec<Listener>> {
    fn make_mut_vec(this: &mut Self) -> &mut Vec<Listener> {
        if Rc::get_mut(this).is_none() {
            let copy = this
                .iter()
                .map(|l| Listener {
                    kind: l.kind,
                    f: l.f.clone(),
                    once: l.once,
                })
                .collect();
            *this = Rc::new(copy);
        }
        Rc::get_mut(this).expect("just made unique")
    }
}

impl Hooks for JsHooks {
    fn url(&self, attempt: u32, current: &str) -> UrlChoice {
        if attempt > 1 {
            self.emit(EventKind::Reconnect, &[]);
        }
        let Some(hook) = &self.url_hook else {
            return UrlChoice::Same;
        };
        match hook.call2(&JsValue::UNDEFINED, &current.into(), &attempt.into()) {
            Ok(v) if v.is_string() => UrlChoice::New(v.as_string().unwrap_or_default()),
            Ok(v) if v.has_type::<Promise>() || v.is_instance_of::<Promise>() => {
                UrlChoice::Later(v.unchecked_into())
            }
            _ => UrlChoice::Same,
        }
    }

    fn event(&self, event: Event) {
        match event {
            Event::Message(p) => self.message(&p),
            Event::Completed { token, result } => self.complete(token, result),
            Event::Connected(c) => {
                let p = &c.properties;
                match (&self.auth_hook, &p.authentication_data) {
                    (Some(hook), Some(data)) => {
                        let method = p.authentication_method.as_deref().unwrap_or_default();
                        self.check_final(hook, method, data);
                    }
                    _ => self.settle_connect(None),
                }
                self.emit(EventKind::Connect, &[convert::connack_packet(&c)]);
            }
            Event::Closed(e) => {
                if let Some(e) = &e {
                    self.settle_connect(Some(e));
                }
                self.emit(EventKind::Close, &[]);
            }
            Event::Offline => self.emit(EventKind::Offline, &[]),
            Event::Error(e) => {
                self.settle_connect(Some(&e));
                self.emit(EventKind::Error, &[convert::error(&e)]);
            }
            Event::Ended => self.emit(EventKind::End, &[]),
            Event::AuthChallenge {
                attempt,
                method,
                data,
            } => self.challenge(attempt, &method, &data),
            Event::Open { .. } | Event::CloseSocket | Event::ReconnectScheduled { .. } => {}
        }
    }
}
