//! The browser side: WebSocket, timers, clock and network status, driving the [`engine`].
//!
//! Everything here is thin. [`Driver`] owns the engine and feeds it what the browser reports;
//! the APIs ([`crate::Client`], the JavaScript `MqttClient`) sit on top through [`Hooks`].
//!
//! [`engine`]: crate::engine

mod clock;
mod driver;
mod network;
mod socket;
mod timer;

pub(crate) use clock::{global, now_ms, random_seed};
pub(crate) use driver::{Driver, Hooks, UrlChoice};
