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
mod driver;
mod network;
mod socket;
mod timer;

pub(crate) use clock::{global, now_ms, random_seed};
pub(crate) use driver::{Driver, Hooks, UrlChoice};
