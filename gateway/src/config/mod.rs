//! Gateway configuration: a TOML file, then command-line overrides. Every
//! option has a default, and an unknown or ill-typed key is an error that
//! names the key and the line, never a panic.

mod cluster;
pub(crate) mod mqtt;
mod sections;
mod security;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use self::mqtt::{BrokerConfig, WebSocketConfig};
pub use cluster::ClusterConfig;
pub use sections::{Durability, HistoryConfig, HttpConfig, StoreConfig, WebConfig};
pub use security::{AuthConfig, MetricsAccess, TlsConfig};

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
    /// A listener on a non-loopback address with nobody to keep strangers out.
    #[error(
        "refusing to listen on {addr} ({listener}) without authentication: anyone who can \
         reach that address could connect, read every topic and publish anywhere. Set \
         `password_file` in [auth] (make one with `aviary passwd FILE USER`), or set \
         `allow_anonymous = true` in [auth] if that is what you want, or listen on loopback"
    )]
    Insecure {
        /// The listener's key, like `listen.mqtt`.
        listener: &'static str,
        /// Its address.
        addr: SocketAddr,
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
    /// Users, passwords and ACLs.
    pub auth: AuthConfig,
    /// Certificates of the TLS listeners.
    pub tls: TlsConfig,
    /// Cluster mode over NATS JetStream; off without NATS servers.
    pub cluster: ClusterConfig,
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
            auth: AuthConfig::default(),
            tls: TlsConfig::default(),
            cluster: ClusterConfig::default(),
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

    /// Checks ranges the types cannot express, and that the gateway is not
    /// open to the network by accident. Run it again after command-line
    /// overrides: they may move a listener off loopback.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.mqtt.validate()?;
        self.websocket.validate()?;
        self.http.validate()?;
        self.store.validate()?;
        self.tls.validate(&self.listen)?;
        self.auth.validate(&self.listen)?;
        self.cluster.validate()?;
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
    /// MQTT over TLS (needs `[tls]`); off unless set.
    pub mqtts: Option<SocketAddr>,
    /// HTTPS: the same as `http`, over TLS (needs `[tls]`); off unless set.
    pub https: Option<SocketAddr>,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            mqtt: SocketAddr::from(([127, 0, 0, 1], 1883)),
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            mqtts: None,
            https: None,
        }
    }
}

impl ListenConfig {
    /// Every listener's address, with the key that sets it.
    pub fn addresses(&self) -> impl Iterator<Item = (&'static str, SocketAddr)> {
        [
            ("listen.mqtt", Some(self.mqtt)),
            ("listen.http", Some(self.http)),
            ("listen.mqtts", self.mqtts),
            ("listen.https", self.https),
        ]
        .into_iter()
        .filter_map(|(key, addr)| Some((key, addr?)))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn public_listener_without_auth_is_refused() {
        let e = Config::from_toml("[listen]\nmqtt = \"0.0.0.0:1883\"\n").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("0.0.0.0:1883") && msg.contains("listen.mqtt"),
            "{msg}"
        );
        assert!(
            msg.contains("password_file") && msg.contains("allow_anonymous"),
            "{msg}"
        );
        // An explicit choice either way is respected.
        let open = "[listen]\nhttp = \"0.0.0.0:8080\"\n[auth]\nallow_anonymous = true\n";
        let c = Config::from_toml(open).unwrap();
        assert!(c.auth.anonymous_allowed(&c.listen));
        let closed = "[listen]\nhttp = \"0.0.0.0:8080\"\n[auth]\npassword_file = \"p\"\n";
        let c = Config::from_toml(closed).unwrap();
        assert!(!c.auth.anonymous_allowed(&c.listen));
    }

    #[test]
    fn anonymous_by_default_only_on_loopback_without_passwords() {
        let c = Config::from_toml("").unwrap();
        assert!(c.auth.anonymous_allowed(&c.listen));
        let c = Config::from_toml("[auth]\npassword_file = \"p\"\n").unwrap();
        assert!(!c.auth.anonymous_allowed(&c.listen));
        let c = Config::from_toml("[listen]\nmqtt = \"[::1]:1883\"\n").unwrap();
        assert!(c.auth.anonymous_allowed(&c.listen));
    }

    #[test]
    fn tls_listeners_need_certificates() {
        let e = Config::from_toml("[listen]\nmqtts = \"127.0.0.1:8883\"\n").unwrap_err();
        assert!(e.to_string().contains("listen.mqtts"), "{e}");
        let e = Config::from_toml("[tls]\ncertfile = \"c.pem\"\n").unwrap_err();
        assert!(e.to_string().contains("tls.keyfile"), "{e}");
        let e = Config::from_toml(
            "[tls]\ncertfile = \"c\"\nkeyfile = \"k\"\nrequire_certificate = true\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("tls.cafile"), "{e}");
        let c = Config::from_toml(
            "[listen]\nhttps = \"127.0.0.1:0\"\n[tls]\ncertfile = \"c\"\nkeyfile = \"k\"\n",
        )
        .unwrap();
        assert!(c.tls.is_configured());
    }

    #[test]
    fn limits_have_defaults_and_bounds() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.mqtt.max_topic_levels, 128);
        let e = Config::from_toml("[mqtt]\nmax_client_id_length = 5\n").unwrap_err();
        assert!(e.to_string().contains("mqtt.max_client_id_length"), "{e}");
        let e = Config::from_toml("[http]\nheader_read_timeout_secs = 0\n").unwrap_err();
        assert!(
            e.to_string().contains("http.header_read_timeout_secs"),
            "{e}"
        );
        let e = Config::from_toml("[auth]\napi_token = \"short\"\n").unwrap_err();
        assert!(e.to_string().contains("auth.api_token"), "{e}");
    }

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
