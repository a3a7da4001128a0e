//! The security seam (see DESIGN.md, "Security: `Authorizer`").
//!
//! The [`Authorizer`] is asked at CONNECT, PUBLISH, SUBSCRIBE, each delivery, each will and by
//! the REST API, so MQTT and HTTP share one policy. Mosquitto's password file ([`password`])
//! and ACL file ([`acl`]) are its first implementation, so an operator can bring them over
//! unchanged. The files live in one [`Policy`] behind an atomic pointer: SIGHUP loads new ones
//! and swaps them in whole, and every connection's next operation sees the new rules.
//!
//! Failed logins are slowed down and logged without flooding ([`failures`]).

mod acl;
mod failures;
pub mod passwd_cmd;
pub mod password;
pub mod scram;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use subtle::ConstantTimeEq;

pub use acl::AclError;
use acl::{Access, AclFile};
use failures::LoginFailures;
use password::{PasswordFile, PasswordFileError};
use scram::ScramUser;

use crate::config::{AuthConfig, ListenConfig, MetricsAccess, TlsConfig};

/// A password or ACL file that cannot be used: at start, the gateway refuses to run; on
/// SIGHUP, the rules in force stay.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The password file cannot be read or parsed.
    #[error(transparent)]
    Passwords(#[from] PasswordFileError),
    /// The ACL file cannot be read or parsed.
    #[error(transparent)]
    Acl(#[from] AclError),
}

/// Why a CONNECT is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A username the password file does not have, or the wrong password (MQTT 5: 0x86).
    BadCredentials,
    /// No username where one is needed, or no client certificate where its identity is the
    /// username (MQTT 5: 0x87).
    NotAuthorized,
}

/// The files in force: replaced whole on reload.
#[derive(Debug, Default)]
struct Policy {
    passwords: Option<PasswordFile>,
    acl: Option<AclFile>,
}

/// Who may connect, and what they may do. Shared by the broker and the HTTP side.
#[derive(Debug)]
pub struct Authorizer {
    password_file: Option<PathBuf>,
    acl_file: Option<PathBuf>,
    policy: ArcSwap<Policy>,
    anonymous: bool,
    identity_as_username: bool,
    admin_users: Vec<String>,
    api_token: Option<String>,
    metrics: MetricsAccess,
    failures: LoginFailures,
}

impl Default for Authorizer {
    /// Lets everyone in and allows everything: a broker without `[auth]` on loopback.
    fn default() -> Self {
        Self {
            password_file: None,
            acl_file: None,
            policy: ArcSwap::from_pointee(Policy::default()),
            anonymous: true,
            identity_as_username: false,
            admin_users: Vec::new(),
            api_token: None,
            metrics: MetricsAccess::default(),
            failures: LoginFailures::new(Duration::ZERO, Duration::ZERO),
        }
    }
}

impl Authorizer {
    /// Reads the files `[auth]` names. Any file that cannot be used is an error that names it.
    pub fn load(
        auth: &AuthConfig,
        tls: &TlsConfig,
        listen: &ListenConfig,
    ) -> Result<Self, AuthError> {
        let this = Self {
            password_file: auth.password_file.clone(),
            acl_file: auth.acl_file.clone(),
            policy: ArcSwap::from_pointee(Policy::default()),
            anonymous: auth.anonymous_allowed(listen),
            identity_as_username: tls.use_identity_as_username,
            admin_users: auth.admin_users.clone(),
            api_token: auth.api_token.clone(),
            metrics: auth.metrics,
            failures: LoginFailures::new(
                auth.login_failure_delay(),
                auth.login_failure_max_delay(),
            ),
        };
        this.policy.store(Arc::new(this.read_files()?));
        Ok(this)
    }

    fn read_files(&self) -> Result<Policy, AuthError> {
        Ok(Policy {
            passwords: self
                .password_file
                .as_deref()
                .map(PasswordFile::load)
                .transpose()?,
            acl: self.acl_file.as_deref().map(AclFile::load).transpose()?,
        })
    }

    /// Reads the password and ACL files again and puts them in force together. When either
    /// cannot be used, the rules in force stay and the error says why.
    pub fn reload(&self) -> Result<(), AuthError> {
        let policy = self.read_files()?;
        self.policy.store(Arc::new(policy));
        Ok(())
    }

    /// Whether a password or ACL file is configured (something for SIGHUP to re-read).
    pub fn has_files(&self) -> bool {
        self.password_file.is_some() || self.acl_file.is_some()
    }

    /// Whether clients without a username are let in.
    pub fn anonymous_allowed(&self) -> bool {
        self.anonymous && !self.identity_as_username
    }

    /// Whether the gateway has nobody to tell apart: anonymous clients are let in and there
    /// are no passwords. Everyone is an admin of such a gateway (the REST API's client list).
    pub fn is_open(&self) -> bool {
        self.anonymous_allowed() && self.password_file.is_none()
    }

    /// Decides a CONNECT. `identity` is the subject of a verified client certificate. Returns
    /// the username the connection acts as: the certificate's identity when
    /// `use_identity_as_username` is set (its password is not checked then, as in Mosquitto),
    /// otherwise the CONNECT's.
    pub fn authenticate(
        &self,
        username: Option<&str>,
        password: Option<&[u8]>,
        identity: Option<&str>,
    ) -> Result<Option<Arc<str>>, Refusal> {
        if self.identity_as_username {
            return identity
                .map(|id| Some(Arc::from(id)))
                .ok_or(Refusal::NotAuthorized);
        }
        let Some(user) = username else {
            return if self.anonymous {
                Ok(None)
            } else {
                Err(Refusal::NotAuthorized)
            };
        };
        match &self.policy.load().passwords {
            Some(file) if file.verify(user, password.unwrap_or_default()) => Ok(Some(user.into())),
            Some(_) => Err(Refusal::BadCredentials),
            // Nothing to check a password against: a username proves nothing, so it is let in
            // only where anonymous clients are (it still selects the client's ACL section).
            None if self.anonymous => Ok(Some(user.into())),
            None => Err(Refusal::NotAuthorized),
        }
    }

    /// Whether SCRAM-SHA-512 enhanced authentication is offered: whenever a password file is
    /// configured, unless a client certificate's identity is the username.
    pub fn scram_available(&self) -> bool {
        self.password_file.is_some() && !self.identity_as_username
    }

    /// What SCRAM-SHA-512 needs to check `user`, from the password file in force.
    pub fn scram_user(&self, user: &str) -> ScramUser {
        match &self.policy.load().passwords {
            Some(file) => file.scram(user),
            None => ScramUser::Unknown,
        }
    }

    /// Records a failed login from `addr` and returns how long to wait before answering it.
    pub fn login_failed(&self, addr: IpAddr) -> Duration {
        self.failures.record(addr)
    }

    /// Whether an ACL is in force (without one, everything is allowed).
    pub fn has_acl(&self) -> bool {
        // The configured path first: asked on every PUBLISH and every delivery, and without
        // an ACL file the policy is not worth loading.
        self.acl_file.is_some() && self.policy.load().acl.is_some()
    }

    /// May this client publish on `topic`?
    pub fn can_publish(&self, username: Option<&str>, client_id: &str, topic: &str) -> bool {
        self.check(username, client_id, topic, Access::Write)
    }

    /// May this client receive a message published on `topic`?
    pub fn can_read(&self, username: Option<&str>, client_id: &str, topic: &str) -> bool {
        self.check(username, client_id, topic, Access::Read)
    }

    fn check(&self, username: Option<&str>, client_id: &str, topic: &str, access: Access) -> bool {
        match &self.policy.load().acl {
            Some(acl) => acl.check(username, client_id, topic, access),
            None => true,
        }
    }

    /// May this client subscribe to `filter`: can it match a topic the client may read?
    pub fn can_subscribe(&self, username: Option<&str>, client_id: &str, filter: &str) -> bool {
        match &self.policy.load().acl {
            Some(acl) => acl.can_subscribe(username, client_id, filter),
            None => true,
        }
    }

    /// Whether `user` may list and manage clients through the REST API.
    pub fn is_admin(&self, user: &str) -> bool {
        self.admin_users.iter().any(|a| a == user)
    }

    /// Whether `token` is the configured API token (compared in constant time).
    pub fn api_token_matches(&self, token: &str) -> bool {
        self.api_token
            .as_ref()
            .is_some_and(|t| bool::from(t.as_bytes().ct_eq(token.as_bytes())))
    }

    /// Who may read `/metrics`.
    pub fn metrics_access(&self) -> MetricsAccess {
        self.metrics
    }
}

#[cfg(test)]
mod tests;
