//! `[mqtt]` and `[websocket]`: the broker's behaviour and limits, and MQTT
//! over WebSocket.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// The default of `slow_subscriber_stall_ms`.
pub(crate) const SLOW_SUBSCRIBER_STALL_MS: u64 = 20;
/// The default of `slow_subscriber_patience_ms`.
pub(crate) const SLOW_SUBSCRIBER_PATIENCE_MS: u64 = 1_000;

/// MQTT behaviour and limits of the broker core.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// Largest packet accepted from a client, fixed header included.
    pub max_packet_size: u32,
    /// Receive Maximum announced to MQTT 5 clients: unacknowledged QoS 2
    /// publications a client may have outstanding towards us.
    pub receive_maximum: u16,
    /// In-flight window towards MQTT 3.x clients (MQTT 5 clients set theirs).
    pub max_inflight: u16,
    /// Topic Alias Maximum announced to MQTT 5 clients.
    pub topic_alias_maximum: u16,
    /// Messages a session may queue (offline, or behind a slow reader).
    pub max_queued_messages: usize,
    /// Bytes (topic + payload) a session may queue.
    pub max_queued_bytes: usize,
    /// Also queue QoS 0 messages for offline persistent sessions.
    pub queue_qos0_offline: bool,
    /// Milliseconds a subscriber's connection may take nothing while its queue holds its
    /// publishers back before it is marked slow and holds no one back (see backpressure).
    pub slow_subscriber_stall_ms: u64,
    /// Milliseconds a subscriber may keep a publisher waiting, however it progresses,
    /// before it is marked slow.
    pub slow_subscriber_patience_ms: u64,
    /// Seconds a new connection has to send its CONNECT.
    pub connect_timeout_secs: u64,
    /// Largest keep alive allowed; larger (or 0) is replaced by this and,
    /// for MQTT 5, announced as Server Keep Alive. 0 means no limit.
    pub max_keep_alive: u16,
    /// Longest session expiry granted, in seconds. MQTT 3.x persistent
    /// sessions get this expiry; `4294967295` means never.
    pub max_session_expiry_secs: u32,
    /// Seconds between `$SYS` updates; 0 turns them off.
    pub sys_interval_secs: u64,
    /// Connections held at once, over every listener (MQTT and WebSocket).
    pub max_connections: usize,
    /// Connections held at once from one source address.
    pub max_connections_per_address: usize,
    /// New connections per second from one source address (a burst of as
    /// many is allowed); 0 means no limit.
    pub max_connection_rate_per_address: u32,
    /// Subscriptions one session may hold.
    pub max_subscriptions_per_client: usize,
    /// Levels in a topic name or filter.
    pub max_topic_levels: usize,
    /// Bytes in a topic name or filter.
    pub max_topic_length: usize,
    /// Bytes in a client identifier.
    pub max_client_id_length: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            max_packet_size: 1024 * 1024,
            receive_maximum: 128,
            max_inflight: 64,
            topic_alias_maximum: 64,
            max_queued_messages: 10_000,
            max_queued_bytes: 64 * 1024 * 1024,
            queue_qos0_offline: false,
            slow_subscriber_stall_ms: SLOW_SUBSCRIBER_STALL_MS,
            slow_subscriber_patience_ms: SLOW_SUBSCRIBER_PATIENCE_MS,
            connect_timeout_secs: 10,
            max_keep_alive: 0,
            max_session_expiry_secs: u32::MAX,
            sys_interval_secs: 10,
            max_connections: 50_000,
            max_connections_per_address: 1_000,
            max_connection_rate_per_address: 200,
            max_subscriptions_per_client: 10_000,
            max_topic_levels: 128,
            max_topic_length: 4096,
            max_client_id_length: 256,
        }
    }
}

impl BrokerConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let checks: [(bool, &'static str, &'static str); 11] = [
            (
                self.max_packet_size >= 64,
                "mqtt.max_packet_size",
                "must be at least 64 bytes",
            ),
            (
                self.max_packet_size <= aviary_protocol::MAX_PACKET_SIZE,
                "mqtt.max_packet_size",
                "must be at most 268435460 bytes",
            ),
            (
                self.receive_maximum > 0,
                "mqtt.receive_maximum",
                "must be at least 1",
            ),
            (
                self.max_inflight > 0,
                "mqtt.max_inflight",
                "must be at least 1",
            ),
            (
                self.connect_timeout_secs > 0,
                "mqtt.connect_timeout_secs",
                "must be at least 1",
            ),
            (
                self.max_connections > 0,
                "mqtt.max_connections",
                "must be at least 1",
            ),
            (
                self.max_connections_per_address > 0,
                "mqtt.max_connections_per_address",
                "must be at least 1",
            ),
            (
                self.max_subscriptions_per_client > 0,
                "mqtt.max_subscriptions_per_client",
                "must be at least 1",
            ),
            (
                self.max_topic_levels > 0,
                "mqtt.max_topic_levels",
                "must be at least 1",
            ),
            (
                (1..=65_535).contains(&self.max_topic_length),
                "mqtt.max_topic_length",
                "must be between 1 and 65535 (a topic is a UTF-8 string of at most 65535 bytes)",
            ),
            (
                (23..=65_535).contains(&self.max_client_id_length),
                "mqtt.max_client_id_length",
                "must be between 23 (every server accepts 23 [MQTT-3.1.3-5]) and 65535",
            ),
        ];
        for (ok, key, reason) in checks {
            if !ok {
                return Err(ConfigError::Value { key, reason });
            }
        }
        if self.max_queued_messages == 0 {
            return Err(ConfigError::Value {
                key: "mqtt.max_queued_messages",
                reason: "must be at least 1",
            });
        }
        Ok(())
    }

    /// The CONNECT timeout as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
}

/// MQTT over WebSocket (MQTT 5.0 section 6).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSocketConfig {
    /// HTTP paths that accept WebSocket upgrades.
    pub paths: Vec<String>,
    /// Subprotocols accepted, in order of preference; the one chosen is
    /// echoed to the client.
    pub subprotocols: Vec<String>,
    /// Accept clients that offer no subprotocol at all (some do).
    pub allow_no_subprotocol: bool,
    /// Send many queued packets in one binary frame. Turn off only for
    /// clients that wrongly assume one packet per frame.
    pub coalesce_frames: bool,
    /// Largest outgoing frame when coalescing, in bytes.
    pub max_frame_bytes: usize,
    /// Origins allowed to open a WebSocket, like `https://example.com`.
    /// Empty: the gateway's own origin and loopback origins. Requests
    /// without an Origin header (non-browser clients) are always allowed.
    pub allowed_origins: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` header is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        Self {
            paths: vec!["/mqtt".to_owned()],
            subprotocols: vec!["mqtt".to_owned(), "mqttv3.1".to_owned()],
            allow_no_subprotocol: true,
            coalesce_frames: true,
            max_frame_bytes: 64 * 1024,
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl WebSocketConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.paths.iter().any(|p| !p.starts_with('/')) {
            return Err(ConfigError::Value {
                key: "websocket.paths",
                reason: "every path must start with '/'",
            });
        }
        if self
            .paths
            .iter()
            .any(|p| p == "/" || p.starts_with("/api/") || p == "/healthz" || p == "/metrics")
        {
            return Err(ConfigError::Value {
                key: "websocket.paths",
                reason: "a path must not shadow `/`, `/api/`, `/healthz` or `/metrics`",
            });
        }
        if self.max_frame_bytes < 1024 {
            return Err(ConfigError::Value {
                key: "websocket.max_frame_bytes",
                reason: "must be at least 1024",
            });
        }
        Ok(())
    }
}
