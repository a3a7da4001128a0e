//! The browser side of the Rust API: WebSocket, timers, clock and network status, driving the
//! [`engine`].
//!
//! Everything here is thin. [`Driver`] owns the engine and feeds it what the browser reports;
//! [`crate::Client`] sits on top through [`Hooks`]. The JavaScript API uses only the clock:
//! its socket, timer and network watch are JavaScript (`npm/runtime.js`), which costs the npm
//! package less than the same through `web-sys`.
//!
//! [`engine`]: crate::engine

mod clock;
// The Rust API's runtime is left out of the npm build altogether (see `rust_api` in lib.rs).
#[cfg(not(feature = "npm"))]
mod driver;
#[cfg(not(feature = "npm"))]
mod network;
#[cfg(not(feature = "npm"))]
mod socket;
#[cfg(not(feature = "npm"))]
mod timer;

#[cfg(not(feature = "npm"))]
pub(crate) use clock::global;
pub(crate) use clock::{now_ms, random_seed};
#[cfg(not(feature = "npm"))]
pub(crate) use driver::{Driver, Hooks, UrlChoice};
