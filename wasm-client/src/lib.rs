//! Aviary's MQTT 3.1.1 / 5.0 client for the browser.
//!
//! Three layers, each usable on its own:
//! - [`engine`]: the whole client as a state machine with no I/O (tested natively);
//! - `runtime` (wasm32 only): the browser's WebSocket, a timer that background-tab throttling
//!   does not stall, the `online`/`offline` events, driving the engine;
//! - the APIs on top: [`Client`] for Rust (the Yew web app) and the JavaScript API exported
//!   with wasm-bindgen (the default `js` feature), packaged for npm as `aviary-mqtt` by
//!   `cargo xtask npm`.

pub mod engine;

pub use aviary_protocol as protocol;
pub use engine::{ErrorKind, MqttError, Options};

#[cfg(target_arch = "wasm32")]
mod runtime;
#[cfg(target_arch = "wasm32")]
mod rust_api;

#[cfg(target_arch = "wasm32")]
pub use rust_api::{Client, ClientEvent, Completion, EventStream, Message};
/// The JavaScript API; behind the default `js` feature, which Rust users can turn off.
#[cfg(all(target_arch = "wasm32", feature = "js"))]
pub mod js_api;
