//! Who is calling the REST API, decided by the same [`Authorizer`] as MQTT: HTTP Basic with a
//! user of the password file, or `Authorization: Bearer` with the configured `api_token`.
//!
//! - A request without credentials is anonymous: let in where anonymous MQTT clients are.
//! - Wrong credentials get 401 with `WWW-Authenticate`, after the same growing delay and with
//!   the same counter as a failed MQTT login.
//! - A signed-in user publishes and reads under their ACL. The API token is not a user: it
//!   stands for the operator, past every ACL.
//! - Admins (the token, the users in `admin_users`, and anyone on a gateway with no
//!   passwords at all) may list clients and, from anywhere, read `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::json;

use super::AppState;
use crate::auth::Authorizer;
use crate::broker::metrics::Denied;
use crate::broker::Metrics;
use crate::config::MetricsAccess;

/// The client id ACL `pattern` lines see for a REST request (`%c`).
pub(super) const API_CLIENT_ID: &str = "aviary-rest-api";

/// The caller of a request.
#[derive(Debug, Clone)]
pub(super) struct Caller {
    /// The signed-in user; `None` for anonymous requests and the API token.
    user: Option<Arc<str>>,
    /// May list clients and read `/metrics` from anywhere.
    admin: bool,
    /// The API token: past every ACL.
    operator: bool,
}

/// Why a request is refused: 401 (with `WWW-Authenticate`) or 403.
#[derive(Debug)]
pub(super) struct Refused(StatusCode, &'static str);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut response = (self.0, Json(json!({ "error": self.1 }))).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="aviary", charset="UTF-8""#),
            );
        }
        response
    }
}

impl Caller {
    /// May this caller publish on `topic`? A refusal is counted.
    pub(super) fn can_publish(&self, app: &AppState, topic: &str) -> bool {
        let ok = self.operator
            || app
                .broker
                .authorizer()
                .can_publish(self.user.as_deref(), API_CLIENT_ID, topic);
        if !ok {
            app.broker.metrics().denied(Denied::Api);
        }
        ok
    }

    /// May this caller read messages of `topic`?
    pub(super) fn can_read(&self, auth: &Authorizer, topic: &str) -> bool {
        self.operator || auth.can_read(self.user.as_deref(), API_CLIENT_ID, topic)
    }

    /// Refuses a caller that is not an admin.
    pub(super) fn require_admin(&self) -> Result<(), Refused> {
        match (self.admin, &self.user) {
            (true, _) => Ok(()),
            (false, None) => Err(Refused(
                StatusCode::UNAUTHORIZED,
                "sign in as a user listed in admin_users, or use the API token",
            )),
            (false, Some(_)) => Err(Refused(
                StatusCode::FORBIDDEN,
                "only users listed in admin_users may do this",
            )),
        }
    }
}

/// What the `Authorization` header holds.
enum Credentials<'a> {
    Basic(String, Vec<u8>),
    Bearer(&'a str),
}

fn credentials(value: &HeaderValue) -> Option<Credentials<'_>> {
    let value = value.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Credentials::Bearer(rest.trim()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = BASE64.decode(rest.trim()).ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some(Credentials::Basic(user, decoded[colon + 1..].to_vec()))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Refused> {
        let auth = app.broker.authorizer();
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return if auth.anonymous_allowed() {
                Ok(Self {
                    user: None,
                    admin: auth.is_open(),
                    operator: false,
                })
            } else {
                Err(Refused(
                    StatusCode::UNAUTHORIZED,
                    "sign in: HTTP Basic with a user of the password file, or a bearer token",
                ))
            };
        };
        let caller = match credentials(value) {
            Some(Credentials::Bearer(token)) if auth.api_token_matches(token) => Some(Self {
                user: None,
                admin: true,
                operator: true,
            }),
            Some(Credentials::Basic(user, password)) => auth
                .authenticate(Some(&user), Some(&password), None)
                .ok()
                .map(|user| Self {
                    admin: user.as_deref().is_some_and(|u| auth.is_admin(u)) || auth.is_open(),
                    user,
                    operator: false,
                }),
            _ => None,
        };
        if let Some(caller) = caller {
            return Ok(caller);
        }
        Metrics::add(&app.broker.metrics().login_failures, 1);
        if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            tokio::time::sleep(auth.login_failed(peer.ip())).await;
        }
        Err(Refused(
            StatusCode::UNAUTHORIZED,
            "wrong username, password or token",
        ))
    }
}

/// Guards `/metrics`: open from loopback, or to everyone, or to admins only, as `[auth]
/// metrics` says.
pub(super) async fn metrics_gate(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let auth = app.broker.authorizer();
    let loopback = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| peer.ip().is_loopback());
    let open = match auth.metrics_access() {
        MetricsAccess::Open => true,
        MetricsAccess::Loopback => loopback,
        MetricsAccess::Auth => false,
    };
    if open {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    match Caller::from_request_parts(&mut parts, &app).await {
        Ok(caller) => match caller.require_admin() {
            Ok(()) => next.run(Request::from_parts(parts, body)).await,
            Err(refused) => refused.into_response(),
        },
        Err(refused) => refused.into_response(),
    }
}
