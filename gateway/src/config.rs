//! Gateway configuration: a TOML file, then command-line overrides. Every
//! option has a default, and an unknown or ill-typed key is an error that
//! names the key and the line, never a panic.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is invalid or has an unknown key or a bad value.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key and line.
        message: String,
    },
    /// A value out of its allowed range.
    #[error("invalid config value for `{key}`: {reason}")]
    Value {
        /// The offending key.
        key: &'static str,
        /// Why.
        reason: &'static str,
    },
}

/// The whole gateway configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listener addresses.
    pub listen: ListenConfig,
    /// Directory of the embedded store.
    pub data_dir: PathBuf,
    /// MQTT behaviour and limits.
    pub mqtt: BrokerConfig,
    /// MQTT over WebSocket.
    pub websocket: WebSocketConfig,
    /// The HTTP side: web app files.
    pub http: HttpConfig,
    /// Recent message history kept for the web app's trails.
    pub history: HistoryConfig,
    /// What the web app is told about its map.
    pub web: WebConfig,
    /// Durability of sessions, queues and retained messages.
    pub store: StoreConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: ListenConfig::default(),
            data_dir: PathBuf::from("./aviary-data"),
            mqtt: BrokerConfig::default(),
            websocket: WebSocketConfig::default(),
            http: HttpConfig::default(),
            history: HistoryConfig::default(),
            web: WebConfig::default(),
            store: StoreConfig::default(),
        }
    }
}

impl Config {
    /// Reads a TOML file; missing keys keep their defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses TOML text and validates it.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<inline>"),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges the types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.mqtt.validate()?;
        self.websocket.validate()?;
        self.store.validate()?;
        if self
            .history
            .filters
            .iter()
            .any(|f| aviary_protocol::topic::validate_topic_filter(f).is_err())
        {
            return Err(ConfigError::Value {
                key: "history.filters",
                reason: "every entry must be a valid MQTT topic filter",
            });
        }
        Ok(())
    }
}

/// Where the gateway listens. Loopback by default, like Mosquitto 2:
/// listening on other interfaces is an explicit choice.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// MQTT over TCP.
    pub mqtt: SocketAddr,
    /// HTTP: web app, WebSocket, REST API, metrics.
    pub http: SocketAddr,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            mqtt: SocketAddr::from(([127, 0, 0, 1], 1883)),
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

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
            connect_timeout_secs: 10,
            max_keep_alive: 0,
            max_session_expiry_secs: u32::MAX,
            sys_interval_secs: 10,
        }
    }
}

impl BrokerConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let checks: [(bool, &'static str, &'static str); 5] = [
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
    fn validate(&self) -> Result<(), ConfigError> {
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

/// The HTTP side.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Directory of the web app's files, served at `/`.
    pub static_dir: PathBuf,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            static_dir: PathBuf::from("static"),
        }
    }
}

/// Recent history per topic (`GET /api/v1/history`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Topic filters whose topics get a history.
    pub filters: Vec<String>,
    /// Messages kept per topic; 0 turns history off.
    pub per_topic: usize,
    /// Topics kept at most; messages of further topics are not recorded.
    pub max_topics: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            filters: vec!["pets/+/location".to_owned()],
            per_topic: 100,
            max_topics: 10_000,
        }
    }
}

/// Settings the web app reads from `/config.json`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Slippy map tile URL template.
    pub tile_url: String,
    /// Attribution shown for the tiles.
    pub tile_attribution: String,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            tile_url: "https://tile.openstreetmap.org/{z}/{x}/{y}.png".to_owned(),
            tile_attribution: "&copy; OpenStreetMap contributors".to_owned(),
        }
    }
}

/// How durable acknowledged state is (`[store]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Written to the OS before the acknowledgement: survives the
    /// gateway's crash or `kill -9`, not a power loss.
    Process,
    /// Also fsynced per batch before the acknowledgement: survives a power
    /// loss.
    Fsync,
    /// Nothing written: state lives in memory and a restart loses it.
    Memory,
}

/// The embedded store (`[store]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// How durable acknowledged state is.
    pub durability: Durability,
    /// Most operations committed in one batch (group commit).
    pub max_batch_ops: usize,
    /// Longest a batch waits for more operations after its first, in
    /// milliseconds. 0 (the default) commits as soon as the writer is free:
    /// batches still form while the previous commit runs, and publishers
    /// waiting for their acknowledgements are not slowed by a timer.
    pub max_batch_delay_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            durability: Durability::Process,
            max_batch_ops: 512,
            max_batch_delay_ms: 0,
        }
    }
}

impl StoreConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=65_536).contains(&self.max_batch_ops) {
            return Err(ConfigError::Value {
                key: "store.max_batch_ops",
                reason: "must be between 1 and 65536",
            });
        }
        if self.max_batch_delay_ms > 1000 {
            return Err(ConfigError::Value {
                key: "store.max_batch_delay_ms",
                reason: "must be at most 1000 (every acknowledgement waits for it)",
            });
        }
        Ok(())
    }

    /// The longest a batch waits for more operations.
    pub fn max_batch_delay(&self) -> Duration {
        Duration::from_millis(self.max_batch_delay_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_loopback() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.listen.mqtt.to_string(), "127.0.0.1:1883");
        assert_eq!(c.listen.http.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::from_toml("[mqtt]\nmax_pakcet_size = 10\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("max_pakcet_size"), "{msg}");
    }

    #[test]
    fn websocket_paths_are_checked() {
        let e = Config::from_toml("[websocket]\npaths = [\"mqtt\"]\n").unwrap_err();
        assert!(e.to_string().contains("websocket.paths"), "{e}");
        let c = Config::from_toml("[websocket]\npaths = [\"/mqtt\", \"/ws\"]\n").unwrap();
        assert_eq!(c.websocket.paths.len(), 2);
    }

    #[test]
    fn bad_value_is_named() {
        let e = Config::from_toml("[mqtt]\nreceive_maximum = 0\n").unwrap_err();
        assert!(e.to_string().contains("mqtt.receive_maximum"), "{e}");
        let e = Config::from_toml("[listen]\nmqtt = \"nope\"\n").unwrap_err();
        assert!(e.to_string().contains("mqtt"), "{e}");
    }

    #[test]
    fn store_section_defaults_and_values() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.store.durability, Durability::Process);
        assert_eq!(c.store.max_batch_ops, 512);
        assert_eq!(c.store.max_batch_delay(), Duration::ZERO);
        for (text, want) in [
            ("process", Durability::Process),
            ("fsync", Durability::Fsync),
            ("memory", Durability::Memory),
        ] {
            let c = Config::from_toml(&format!("[store]\ndurability = \"{text}\"\n")).unwrap();
            assert_eq!(c.store.durability, want);
        }
        let c = Config::from_toml("[store]\nmax_batch_ops = 64\nmax_batch_delay_ms = 1\n").unwrap();
        assert_eq!((c.store.max_batch_ops, c.store.max_batch_delay_ms), (64, 1));
    }

    #[test]
    fn store_section_errors_name_the_key() {
        let e = Config::from_toml("[store]\ndurability = \"disk\"\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("durability") && msg.contains("fsync"), "{msg}");
        let e = Config::from_toml("[store]\ndurabilty = \"fsync\"\n").unwrap_err();
        assert!(e.to_string().contains("durabilty"), "{e}");
        let e = Config::from_toml("[store]\nmax_batch_ops = 0\n").unwrap_err();
        assert!(e.to_string().contains("store.max_batch_ops"), "{e}");
        let e = Config::from_toml("[store]\nmax_batch_delay_ms = 5000\n").unwrap_err();
        assert!(e.to_string().contains("store.max_batch_delay_ms"), "{e}");
        let e = Config::from_toml("[store]\nmax_batch_ops = -1\n").unwrap_err();
        assert!(e.to_string().contains("max_batch_ops"), "{e}");
    }
}
