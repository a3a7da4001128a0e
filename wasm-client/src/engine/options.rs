//! Connection options, with MQTT.js's defaults where MQTT.js has one.

use alloc::string::String;
use aviary_protocol::{ConnectProperties, LastWill, ProtocolVersion};
use bytes::Bytes;

/// How a client connects and behaves while disconnected.
#[derive(Debug, Clone)]
pub struct Options {
    /// Client identifier. Empty means "make one up": the browser layer picks a random
    /// `aviary-…` id per client, so two tabs never take over each other's session.
    pub client_id: String,
    /// MQTT 3.1.1 (the default, as in MQTT.js) or 5.0.
    pub protocol: ProtocolVersion,
    /// Clean session (3.1.1) / clean start (5.0). Default `true`.
    pub clean_start: bool,
    /// Keep-alive interval in seconds; 0 disables it. Default 60.
    pub keep_alive: u16,
    /// User name for the CONNECT packet.
    pub username: Option<String>,
    /// Password for the CONNECT packet.
    pub password: Option<Bytes>,
    /// Last will, published by the broker if this client vanishes.
    pub will: Option<LastWill>,
    /// MQTT 5 CONNECT properties: session expiry, receive maximum, topic alias maximum, ...
    pub properties: ConnectProperties,
    /// How long opening the WebSocket plus the CONNECT/CONNACK exchange may take, in ms.
    pub connect_timeout_ms: u32,
    /// Automatic reconnection.
    pub reconnect: Reconnect,
    /// Bounds of the queue of publishes made while disconnected.
    pub queue: QueueLimits,
    /// Subscribe again to every acknowledged topic filter after a reconnect in which the broker
    /// kept no session (`sessionPresent = false`). Default `true`.
    pub resubscribe: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            protocol: ProtocolVersion::V3_1_1,
            clean_start: true,
            keep_alive: 60,
            username: None,
            password: None,
            will: None,
            properties: ConnectProperties::default(),
            connect_timeout_ms: 30_000,
            reconnect: Reconnect::default(),
            queue: QueueLimits::default(),
            resubscribe: true,
        }
    }
}

/// Reconnection with exponential backoff and jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    /// Whether to reconnect at all after a connection is lost. Default `true`.
    pub enabled: bool,
    /// The backoff window of the first retry, in ms. Default 1000 (MQTT.js's fixed period).
    pub initial_delay_ms: u32,
    /// The largest backoff window, in ms. Default 30 000.
    pub max_delay_ms: u32,
}

impl Default for Reconnect {
    fn default() -> Self {
        Self {
            enabled: true,
            initial_delay_ms: 1_000,
            max_delay_ms: 30_000,
        }
    }
}

/// Bounds of the offline queue. When a publish would exceed either bound, the oldest queued
/// messages are dropped (their promises reject with `QUEUE_FULL`) until the new one fits: fresh
/// data such as a position is worth more than stale data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most messages held. Default 1000.
    pub max_messages: usize,
    /// Most bytes (topic + payload) held. Default 1 MiB.
    pub max_bytes: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            max_messages: 1_000,
            max_bytes: 1 << 20,
        }
    }
}
