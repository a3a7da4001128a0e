//! `[http]`, `[history]`, `[web]` and `[store]`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// The HTTP side.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Directory of the web app's files, served at `/`.
    pub static_dir: PathBuf,
    /// Seconds a client has to send a whole request header; a slow or
    /// partial header (slowloris) is cut off after it. The timer also runs
    /// while a keep-alive connection waits for its next request, so it
    /// bounds an idle keep-alive connection too.
    pub header_read_timeout_secs: u64,
    /// Seconds a connection may go without a byte moving either way (a
    /// request body that stops coming, a client that stops reading, an idle
    /// keep-alive connection) before it is closed.
    pub idle_timeout_secs: u64,
    /// HTTP connections served at once (a WebSocket stops counting here
    /// once upgraded: it counts as an MQTT connection then).
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            static_dir: PathBuf::from("static"),
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_connections: 1024,
        }
    }
}

impl HttpConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.header_read_timeout_secs == 0 {
            return Err(ConfigError::Value {
                key: "http.header_read_timeout_secs",
                reason: "must be at least 1",
            });
        }
        if self.idle_timeout_secs == 0 {
            return Err(ConfigError::Value {
                key: "http.idle_timeout_secs",
                reason: "must be at least 1",
            });
        }
        if self.max_connections == 0 {
            return Err(ConfigError::Value {
                key: "http.max_connections",
                reason: "must be at least 1",
            });
        }
        Ok(())
    }

    /// The header read timeout as a duration.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }

    /// The idle keep-alive timeout as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
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
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
