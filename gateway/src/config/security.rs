//! `[auth]` and `[tls]`: who may connect and what they may do, and the
//! certificates of the TLS listeners. Key names follow Mosquitto's, so an
//! operator recognises them.
//!
//! The safe default is Mosquitto 2's: anonymous clients are let in only
//! while every listener is on loopback and no password file is set, and a
//! gateway listening elsewhere with neither refuses to start.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, ListenConfig};

/// Who may connect, and what they may do (`[auth]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Let clients in without a username. Unset: only while every listener
    /// is on loopback and no `password_file` is set.
    pub allow_anonymous: Option<bool>,
    /// A password file in `mosquitto_passwd` format. Also what MQTT 5 enhanced
    /// authentication (SCRAM-SHA-512, `auth::scram`) checks: it is offered whenever
    /// this is set, for the file's `$7$` users.
    pub password_file: Option<PathBuf>,
    /// An ACL file in Mosquitto's `acl_file` format. Unset: everything is
    /// allowed to every client let in.
    pub acl_file: Option<PathBuf>,
    /// Users who may list and manage clients through the REST API.
    pub admin_users: Vec<String>,
    /// A bearer token for the REST API (`Authorization: Bearer …`), which
    /// acts as an admin user: for scripts and dashboards.
    pub api_token: Option<String>,
    /// Who may read `/metrics`.
    pub metrics: MetricsAccess,
    /// Delay before the CONNACK of a second failed login from one address,
    /// doubled with each further failure, in milliseconds.
    pub login_failure_delay_ms: u64,
    /// Longest delay before a failed login's CONNACK, in milliseconds.
    pub login_failure_max_delay_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            allow_anonymous: None,
            password_file: None,
            acl_file: None,
            admin_users: Vec::new(),
            api_token: None,
            metrics: MetricsAccess::default(),
            login_failure_delay_ms: 250,
            login_failure_max_delay_ms: 8_000,
        }
    }
}

/// Who may read `/metrics` (`[auth] metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAccess {
    /// Anyone connecting from loopback; others must sign in (the default).
    #[default]
    Loopback,
    /// Anyone.
    Open,
    /// Only users who sign in, from anywhere.
    Auth,
}

impl AuthConfig {
    /// Whether clients without a username are let in, given where the
    /// gateway listens.
    pub fn anonymous_allowed(&self, listen: &ListenConfig) -> bool {
        self.allow_anonymous.unwrap_or_else(|| {
            self.password_file.is_none() && listen.addresses().all(|(_, a)| a.ip().is_loopback())
        })
    }

    /// The delay before the CONNACK of a failed login, as a duration.
    pub fn login_failure_delay(&self) -> Duration {
        Duration::from_millis(self.login_failure_delay_ms)
    }

    /// The longest such delay.
    pub fn login_failure_max_delay(&self) -> Duration {
        Duration::from_millis(self.login_failure_max_delay_ms)
    }

    /// Refuses a gateway open to the network without a password file and
    /// without an explicit choice to let anyone in.
    pub(super) fn validate(&self, listen: &ListenConfig) -> Result<(), ConfigError> {
        if self.login_failure_max_delay_ms < self.login_failure_delay_ms {
            return Err(ConfigError::Value {
                key: "auth.login_failure_max_delay_ms",
                reason: "must be at least auth.login_failure_delay_ms",
            });
        }
        if self.login_failure_max_delay_ms > 60_000 {
            return Err(ConfigError::Value {
                key: "auth.login_failure_max_delay_ms",
                reason: "must be at most 60000 (the client is waiting for its CONNACK)",
            });
        }
        if matches!(&self.api_token, Some(t) if t.len() < 16) {
            return Err(ConfigError::Value {
                key: "auth.api_token",
                reason: "must be at least 16 characters: it stands for an admin user",
            });
        }
        if self.password_file.is_some() || self.allow_anonymous.is_some() {
            return Ok(());
        }
        match listen.addresses().find(|(_, a)| !a.ip().is_loopback()) {
            Some((listener, addr)) => Err(ConfigError::Insecure { listener, addr }),
            None => Ok(()),
        }
    }
}

/// The certificates of the TLS listeners (`[tls]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The server's certificate chain, PEM, leaf first.
    pub certfile: Option<PathBuf>,
    /// The server's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub keyfile: Option<PathBuf>,
    /// CA certificates, PEM. When set, client certificates are asked for
    /// and verified against them.
    pub cafile: Option<PathBuf>,
    /// Refuse clients without a valid certificate (needs `cafile`).
    pub require_certificate: bool,
    /// Use the client certificate's subject common name as the username
    /// (needs `cafile`).
    pub use_identity_as_username: bool,
}

impl TlsConfig {
    /// Whether a certificate and key are configured.
    pub fn is_configured(&self) -> bool {
        self.certfile.is_some() && self.keyfile.is_some()
    }

    pub(super) fn validate(&self, listen: &ListenConfig) -> Result<(), ConfigError> {
        if self.certfile.is_some() != self.keyfile.is_some() {
            return Err(ConfigError::Value {
                key: "tls.keyfile",
                reason: "tls.certfile and tls.keyfile go together: set both or neither",
            });
        }
        if self.cafile.is_none() && (self.require_certificate || self.use_identity_as_username) {
            return Err(ConfigError::Value {
                key: "tls.cafile",
                reason: "require_certificate and use_identity_as_username need a cafile \
                         to verify client certificates against",
            });
        }
        let tls_listener = [
            ("listen.mqtts", listen.mqtts),
            ("listen.https", listen.https),
        ]
        .into_iter()
        .find(|(_, a)| a.is_some());
        match tls_listener {
            Some((key, _)) if !self.is_configured() => Err(ConfigError::Value {
                key,
                reason: "a TLS listener needs tls.certfile and tls.keyfile",
            }),
            _ => Ok(()),
        }
    }
}
