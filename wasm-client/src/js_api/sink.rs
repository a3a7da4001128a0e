//! The engine's events and requests, handed to the package's JavaScript client (`npm/api.js`)
//! through one callback, `sink.e(kind, a, b, text, bytes, more)`, in numbers, a string and
//! byte views. Listeners, promises, packet objects and `MqttError`s are all built on the
//! JavaScript side, where they cost a fraction of what building them through `Reflect` from
//! Rust did; the socket and the timer live there too (`npm/runtime.js`).

use alloc::vec::Vec;

use wasm_bindgen::prelude::*;

use crate::engine::{Done, Event, MqttError};
use crate::fields::Writer;

#[wasm_bindgen]
extern "C" {
    /// The JavaScript client's entry point for events.
    pub type Sink;

    /// `bytes` and `more` are views of wasm memory, valid only during the call: the
    /// JavaScript side copies what it keeps.
    #[wasm_bindgen(method, js_name = e)]
    fn emit(this: &Sink, kind: u32, a: u32, b: i32, text: &str, bytes: &[u8], more: &[u8]);
}

/// The event kinds; `KIND` in `npm/api.js` numbers them the same way.
mod kind {
    /// A message: `a` packet id (0: none), `b` flags (QoS, retain << 2, dup << 3, has
    /// properties << 4), `text` topic, `bytes` payload, `more` properties.
    pub(super) const MESSAGE: u32 = 0;
    /// An operation succeeded: `a` token, `bytes` SUBACK's reason codes.
    pub(super) const DONE: u32 = 1;
    /// An operation failed: `a` token (0: the call itself), `b` error, `text` message.
    pub(super) const FAIL: u32 = 2;
    /// CONNACK: `b` session present, `more` properties.
    pub(super) const CONNECT: u32 = 3;
    /// A connection ended: `b` error (or -1 when the application ended it), `text` message.
    pub(super) const CLOSE: u32 = 4;
    pub(super) const OFFLINE: u32 = 5;
    /// `b` error, `text` message.
    pub(super) const ERROR: u32 = 6;
    pub(super) const END: u32 = 7;
    /// An AUTH challenge: `a` attempt, `text` method, `bytes` data.
    pub(super) const AUTH: u32 = 8;
    /// Open a WebSocket (there is none open): `a` attempt, counting from 1.
    pub(super) const OPEN: u32 = 9;
    /// Send `bytes` as one binary frame on the socket, if there is one.
    pub(super) const SEND: u32 = 10;
    /// Close the socket now; its own close event must not be reported back.
    pub(super) const SHUT: u32 = 11;
    /// Wake the engine (`Engine.timeout`) in `a` ms, replacing the earlier wake-up; `b` -1:
    /// cancel it.
    pub(super) const TIMER: u32 = 12;
    /// The call's arguments are invalid: `text` says why; the call throws it as a `TypeError`.
    pub(super) const INVALID: u32 = 13;
    /// The client id the engine connects with (given or generated): `text`. The JavaScript
    /// side keeps it, and takes a broker-assigned one from CONNACK's properties as the engine
    /// does: no export and glue for a getter.
    pub(super) const CLIENT_ID: u32 = 14;
}

/// The token of a [`kind::FAIL`] for the call in progress (the engine's tokens start at 1).
const NOW: u32 = 0;

/// Reports a client's events to its JavaScript object.
pub(crate) struct JsHooks {
    sink: Sink,
}

impl JsHooks {
    pub(crate) fn new(sink: Sink) -> Self {
        Self { sink }
    }

    fn report(&self, kind: u32, a: u32, b: i32, text: &str, bytes: &[u8]) {
        self.sink.emit(kind, a, b, text, bytes, &[]);
    }

    /// Reports that the call in progress has invalid arguments, for the reason `message`.
    pub(crate) fn invalid(&self, message: &str) {
        self.report(kind::INVALID, 0, 0, message, &[]);
    }

    /// Reports the client id in use, before the first connection.
    pub(crate) fn client_id(&self, id: &str) {
        self.report(kind::CLIENT_ID, 0, 0, id, &[]);
    }

    /// Asks for `bytes` to be written to the socket.
    pub(crate) fn send(&self, bytes: &[u8]) {
        self.report(kind::SEND, 0, 0, "", bytes);
    }

    /// Asks for a wake-up in `delay_ms` (`None`: no wake-up).
    pub(crate) fn timer(&self, delay_ms: Option<u64>) {
        match delay_ms {
            // Clamped: a deadline 49 days away may as well be a wake-up then.
            Some(ms) => self.report(kind::TIMER, ms.min(u64::from(u32::MAX)) as u32, 0, "", &[]),
            None => self.report(kind::TIMER, 0, -1, "", &[]),
        }
    }

    fn error(&self, kind: u32, token: u32, e: &MqttError) {
        self.report(kind, token, error_code(e), &e.message, &[]);
    }

    /// The engine's token for an operation, or [`NOW`] after reporting why the call failed.
    pub(crate) fn token(&self, token: Result<crate::engine::Token, MqttError>) -> u32 {
        match token {
            Ok(token) => token.0,
            Err(e) => {
                self.error(kind::FAIL, NOW, &e);
                NOW
            }
        }
    }

    fn message(&self, p: &aviary_protocol::Publish) {
        let mut flags = p.qos as i32 | (i32::from(p.retain) << 2) | (i32::from(p.dup) << 3);
        let mut props = Writer::default();
        if !p.properties.is_empty() {
            flags |= 16;
            props.publish(&p.properties);
        }
        let id = p.packet_id.map_or(0, |id| u32::from(id.get()));
        let topic: &str = &p.topic;
        self.sink
            .emit(kind::MESSAGE, id, flags, topic, &p.payload, &props.0);
    }

    fn completed(&self, token: u32, result: Result<Done, MqttError>) {
        match result {
            Ok(Done::Subscribed(codes)) => {
                // A loop, not `collect`, whose iterator specialisation was code of its own.
                let mut bytes = Vec::with_capacity(codes.len());
                for code in &codes {
                    bytes.push(code.value());
                }
                let codes = bytes;
                self.report(kind::DONE, token, 0, "", &codes);
            }
            Ok(_) => {
                self.report(kind::DONE, token, 0, "", &[]);
            }
            Err(e) => self.error(kind::FAIL, token, &e),
        }
    }
}

/// An error's kind (its index in `ErrorKind`) in the low byte, its reason code plus one above
/// (0: none).
fn error_code(e: &MqttError) -> i32 {
    let reason = e.reason_code.map_or(0, |c| i32::from(c.value()) + 1);
    e.kind as i32 | (reason << 8)
}

impl JsHooks {
    /// Reports `event`, or asks for what it requests.
    pub(crate) fn event(&self, event: Event) {
        match event {
            Event::Message(p) => self.message(&p),
            Event::Completed { token, result } => self.completed(token.0, result),
            Event::Connected(c) => {
                let mut props = Writer::default();
                props.connack(&c.properties);
                let present = i32::from(c.session_present);
                self.sink.emit(kind::CONNECT, 0, present, "", &[], &props.0);
            }
            Event::Closed(Some(e)) => self.error(kind::CLOSE, 0, &e),
            Event::Closed(None) => {
                self.report(kind::CLOSE, 0, -1, "", &[]);
            }
            Event::Offline => {
                self.report(kind::OFFLINE, 0, 0, "", &[]);
            }
            Event::Error(e) => self.error(kind::ERROR, 0, &e),
            Event::Ended => {
                self.report(kind::END, 0, 0, "", &[]);
            }
            Event::AuthChallenge {
                attempt,
                method,
                data,
            } => {
                self.report(kind::AUTH, attempt, 0, &method, &data);
            }
            Event::Open { attempt } => self.report(kind::OPEN, attempt, 0, "", &[]),
            Event::CloseSocket => self.report(kind::SHUT, 0, 0, "", &[]),
            Event::ReconnectScheduled { .. } => {}
        }
    }
}
