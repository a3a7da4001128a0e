//! Aviary's live pet map, a Yew app in the browser.
//!
//! It connects to the gateway's MQTT over WebSocket with the `aviary-wasm-client` crate,
//! subscribes to the pet topics, and shows every pet on a Leaflet map (with an offline base
//! layer of Natural Earth outlines) and in a side panel. `cargo xtask web` builds it into
//! `static/`, where the gateway serves it.
//!
//! Layout: [`model`] is plain Rust (topics, payloads, state, geometry) and is tested natively;
//! everything else only exists on wasm32.
// Natively only the model is built (for its tests), so much of it looks unused there.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code, unused_imports))]

mod format;
mod model;

#[cfg(target_arch = "wasm32")]
mod app;

#[cfg(target_arch = "wasm32")]
fn main() {
    app::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("aviary-web runs in a browser: build it with `cargo xtask web`");
}
