//! The one export the MQTT.js-compatible entry point (`aviary-mqtt/compat`, plain JavaScript in
//! `wasm-client/npm/compat/`) needs from Rust: a client returned synchronously, before it has
//! connected.
//!
//! Why not build the compat layer on `connect()` alone: its promise resolves only after the
//! first CONNACK has been handled, and the messages a persistent session (`clean: false`) gets
//! in the same WebSocket frame as that CONNACK are delivered in the same task, before any
//! listener could be added, so they would be lost. And a failed first attempt ends a
//! `connect()` client, where MQTT.js keeps retrying. Here there is no connect promise, so the
//! hooks never end the client on a first failure: it reconnects like after any other loss.

use alloc::rc::Rc;
use alloc::string::String;

use wasm_bindgen::prelude::*;

use super::hooks::JsHooks;
use super::options::{parse_options, JsResult};
use super::MqttClient;
use crate::runtime::Driver;

/// Creates a client and starts connecting to `url`; it retries until `end()` (unless
/// `reconnectPeriod` is 0). Add listeners before returning to the event loop: events come
/// from the socket, in later tasks (only a malformed URL is reported at once, which is why
/// the compat layer checks the URL first). Not part of the documented API.
#[wasm_bindgen(js_name = createClient, skip_typescript)]
pub fn create_client(url: String, options: JsValue) -> JsResult<MqttClient> {
    let (options, fns) = parse_options(&options)?;
    let hooks = Rc::new(JsHooks::new(fns));
    let driver = Driver::start(url, options, hooks.clone());
    // No `hooks.attach`, which serves the connect promise this client does not have; the
    // `authenticate` hook still needs the driver.
    hooks.link(&driver);
    Ok(MqttClient { driver, hooks })
}
