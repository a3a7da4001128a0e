//! Aviary: an MQTT 3.1.1 and 5.0 broker with two front doors, MQTT over TCP
//! for devices and MQTT over WebSocket for browsers, in one process.
//!
//! [`run`] starts a gateway from a [`Config`] and serves until a shutdown
//! future completes; [`Gateway`] does the same in two steps, so a test can
//! bind to port 0 and learn the address before serving.

pub mod auth;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod http;
mod server;
pub mod signals;
pub mod simulator;
pub mod store;
pub mod transport;

pub use broker::connection::runtime;
pub use broker::Broker;
pub use config::{BrokerConfig, Config, ConfigError};
pub use server::{run, Error, Gateway};
