//! The WebSocket door: checks the upgrade request (RFC 6455 section 4.2.1)
//! and the Origin (cross-site WebSocket hijacking), negotiates the MQTT
//! subprotocol, works out the client's address behind trusted proxies,
//! then hands the upgraded socket, as a byte stream, to the same
//! connection handler TCP uses. The upgrade completes in the connection's
//! own task, never in the accept loop.
//!
//! The upgrade is done here rather than by axum's `WebSocketUpgrade`: that
//! one puts tungstenite's buffers (a read buffer allocated up front, a
//! write buffer, a message assembler) under every connection, idle or
//! not. Here hyper hands over the raw connection and [`WsStream`] frames
//! it without a buffer of its own.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use sha1::{Digest as _, Sha1};
use tracing::{debug, warn};

use super::serve::TlsPeer;
use super::AppState;
use crate::broker::connection::{self, ConnInfo, Transport};
use crate::broker::Metrics;
use crate::config::WebSocketConfig;
use crate::transport::ws::WsStream;

/// Refused WebSocket handshakes, by reason.
#[derive(Debug, Default)]
pub struct HandshakeFailures {
    /// Not a valid WebSocket upgrade request.
    pub not_websocket: AtomicU64,
    /// Origin not allowed.
    pub origin: AtomicU64,
    /// Only unknown subprotocols offered, or none when that is refused.
    pub subprotocol: AtomicU64,
    /// The upgrade itself failed.
    pub upgrade: AtomicU64,
}

fn refuse(status: StatusCode, message: String) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// `GET /mqtt`: upgrade to MQTT over WebSocket.
pub(super) async fn upgrade(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let failures = &app.handshake_failures;
    let cfg = &app.websocket;
    let (mut parts, _body) = request.into_parts();
    let headers = &parts.headers;
    let checked = check_upgrade(parts.method.clone(), parts.version, headers).and_then(|key| {
        let on_upgrade = parts.extensions.remove::<OnUpgrade>().ok_or((
            StatusCode::UPGRADE_REQUIRED,
            "this connection cannot be upgraded",
        ))?;
        Ok((key, on_upgrade))
    });
    let (key, on_upgrade) = match checked {
        Ok(ok) => ok,
        Err((status, why)) => {
            Metrics::add(&failures.not_websocket, 1);
            debug!(%peer, why, "not a WebSocket upgrade");
            return refuse(status, format!("not a WebSocket upgrade: {why}"));
        }
    };
    if let Some(origin) = headers.get(header::ORIGIN) {
        if !origin_allowed(origin, headers.get(header::HOST), cfg) {
            Metrics::add(&failures.origin, 1);
            warn!(%peer, origin = ?origin, "WebSocket refused: origin not allowed");
            return refuse(
                StatusCode::FORBIDDEN,
                format!("origin {origin:?} is not allowed"),
            );
        }
    }
    let offered = offered_subprotocols(headers);
    let chosen = match choose_subprotocol(&offered, &cfg.subprotocols) {
        Some(chosen) => Some(chosen.to_owned()),
        None if offered.is_empty() && cfg.allow_no_subprotocol => {
            debug!(%peer, "WebSocket client offered no subprotocol; accepted");
            None
        }
        None => {
            Metrics::add(&failures.subprotocol, 1);
            warn!(%peer, ?offered, "WebSocket refused: no acceptable subprotocol");
            let wanted = cfg.subprotocols.join(", ");
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("unsupported WebSocket subprotocol {offered:?}: offer one of {wanted}"),
            );
        }
    };
    let remote = client_addr(peer, headers, &cfg.trusted_proxies);
    // Set by the serve loop on connections that came over https.
    let info = match parts.extensions.get::<TlsPeer>() {
        Some(tls) => ConnInfo {
            transport: Transport::WebSocketTls,
            remote,
            peer_identity: tls.identity.clone(),
        },
        None => ConnInfo::new(Transport::WebSocket, remote),
    };
    let response = switching_protocols(key.as_bytes(), chosen.as_deref());
    app.tasks
        .spawn(serve_upgraded(app.clone(), on_upgrade, info));
    response
}

/// Waits for hyper to hand over the connection (after our 101 response is
/// written), then serves MQTT on it in a task of its own: this one, with
/// everything it holds, ends here, so an idle WebSocket connection's task
/// is the same size as an idle TCP connection's.
async fn serve_upgraded(app: AppState, on_upgrade: OnUpgrade, info: ConnInfo) {
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(e) => {
            Metrics::add(&app.handshake_failures.upgrade, 1);
            debug!(remote = %info.remote, error = %e, "WebSocket upgrade failed");
            return;
        }
    };
    let cfg = &app.websocket;
    // Frames and messages as large as the largest packet: a client that
    // sends one packet per frame must be able to send any packet.
    let max = app.broker.config().max_packet_size as usize;
    let stream = WsStream::new(
        TokioIo::new(upgraded),
        cfg.coalesce_frames,
        cfg.max_frame_bytes,
        max,
    );
    // Boxed: the connection's future keeps the stream it was given (twice,
    // as `async fn` arguments are), and a pointer is smaller than the stream.
    let serve = connection::serve(
        app.broker.clone(),
        Box::new(stream),
        info,
        app.shutdown.clone(),
    );
    app.tasks.spawn(serve);
}

/// Checks what RFC 6455 section 4.2.1 asks of an opening handshake;
/// returns the client's key, or the status and reason to refuse with.
fn check_upgrade(
    method: Method,
    version: Version,
    headers: &HeaderMap,
) -> Result<HeaderValue, (StatusCode, &'static str)> {
    let bad = |why| Err((StatusCode::BAD_REQUEST, why));
    if method != Method::GET {
        return Err((StatusCode::METHOD_NOT_ALLOWED, "the method must be GET"));
    }
    if version != Version::HTTP_11 {
        return bad("the request must be HTTP/1.1");
    }
    if !has_token(headers, header::CONNECTION, "upgrade") {
        return bad("the Connection header must include `upgrade`");
    }
    if !has_token(headers, header::UPGRADE, "websocket") {
        return bad("the Upgrade header must include `websocket`");
    }
    if !has_token(headers, header::SEC_WEBSOCKET_VERSION, "13") {
        return Err((
            StatusCode::UPGRADE_REQUIRED,
            "only Sec-WebSocket-Version 13 is supported",
        ));
    }
    match headers.get(header::SEC_WEBSOCKET_KEY) {
        Some(key) if BASE64.decode(key.as_bytes()).is_ok_and(|k| k.len() == 16) => Ok(key.clone()),
        Some(_) => bad("Sec-WebSocket-Key must be 16 bytes in base64"),
        None => bad("Sec-WebSocket-Key is missing"),
    }
}

/// Whether a comma-separated header holds `token`, in any case.
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The subprotocols the client offered, in its order.
fn offered_subprotocols(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// The 101 response that completes the handshake.
fn switching_protocols(key: &[u8], subprotocol: Option<&str>) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept_key(key));
    if let Some(protocol) = subprotocol {
        response = response.header(header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    response
        .body(Body::empty())
        .expect("static headers, and a subprotocol the client sent as a header")
}

/// `Sec-WebSocket-Accept` for a client's key (RFC 6455 section 4.2.2).
fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    BASE64.encode(sha1.finalize())
}

/// The first of our subprotocols, in our order of preference, that the
/// client offered; the response echoes it.
fn choose_subprotocol<'a>(offered: &[&'a str], accepted: &[String]) -> Option<&'a str> {
    accepted.iter().find_map(|ours| {
        offered
            .iter()
            .find(|o| o.eq_ignore_ascii_case(ours))
            .copied()
    })
}

/// Is a browser page from `origin` allowed to open an MQTT socket?
fn origin_allowed(origin: &HeaderValue, host: Option<&HeaderValue>, cfg: &WebSocketConfig) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if !cfg.allowed_origins.is_empty() {
        return cfg
            .allowed_origins
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(origin));
    }
    let Some(authority) = origin.split_once("://").map(|(_, rest)| rest) else {
        return false;
    };
    // The gateway's own origin: the page was served by us.
    if host
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.eq_ignore_ascii_case(authority))
    {
        return true;
    }
    let hostname = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    hostname.eq_ignore_ascii_case("localhost")
        || hostname.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The client's address: the peer's, or, when the peer is a trusted
/// proxy, the right-most `X-Forwarded-For` entry that is not one.
fn client_addr(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> SocketAddr {
    if !trusted.contains(&peer.ip()) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    forwarded
        .iter()
        .rev()
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .find(|ip| !trusted.contains(ip))
        .map_or(peer, |ip| SocketAddr::new(ip, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    #[test]
    fn subprotocol_is_one_the_client_offered() {
        let ours = vec!["mqtt".to_owned(), "mqttv3.1".to_owned()];
        assert_eq!(
            choose_subprotocol(&["mqttv3.1", "mqtt"], &ours),
            Some("mqtt")
        );
        assert_eq!(
            choose_subprotocol(&["chat", "mqttv3.1"], &ours),
            Some("mqttv3.1")
        );
        assert_eq!(choose_subprotocol(&["MQTT"], &ours), Some("MQTT"));
        assert_eq!(choose_subprotocol(&["chat"], &ours), None);
        assert_eq!(choose_subprotocol(&[], &ours), None);
    }

    #[test]
    fn origins_default_to_own_and_loopback() {
        let cfg = WebSocketConfig::default();
        let host = Some(hv("pets.example:8080"));
        assert!(origin_allowed(
            &hv("http://pets.example:8080"),
            host.as_ref(),
            &cfg
        ));
        assert!(origin_allowed(
            &hv("http://localhost:3000"),
            host.as_ref(),
            &cfg
        ));
        assert!(origin_allowed(&hv("http://127.0.0.1:5173"), None, &cfg));
        assert!(origin_allowed(&hv("http://[::1]:80"), None, &cfg));
        assert!(!origin_allowed(
            &hv("https://evil.example"),
            host.as_ref(),
            &cfg
        ));
        assert!(!origin_allowed(&hv("null"), host.as_ref(), &cfg));
        let listed = WebSocketConfig {
            allowed_origins: vec!["https://app.example".to_owned()],
            ..WebSocketConfig::default()
        };
        assert!(origin_allowed(&hv("https://app.example"), None, &listed));
        assert!(!origin_allowed(&hv("http://localhost"), None, &listed));
    }

    #[test]
    fn accept_key_is_the_rfc_example() {
        // RFC 6455 section 1.3.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn upgrade_requests_are_checked() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, hv("keep-alive, Upgrade"));
        headers.insert(header::UPGRADE, hv("WebSocket"));
        headers.insert(header::SEC_WEBSOCKET_VERSION, hv("13"));
        headers.insert(header::SEC_WEBSOCKET_KEY, hv("dGhlIHNhbXBsZSBub25jZQ=="));
        let check = |m: Method, v: Version, h: &HeaderMap| check_upgrade(m, v, h).map_err(|e| e.0);
        assert!(check(Method::GET, Version::HTTP_11, &headers).is_ok());
        assert_eq!(
            check(Method::POST, Version::HTTP_11, &headers),
            Err(StatusCode::METHOD_NOT_ALLOWED)
        );
        assert_eq!(
            check(Method::GET, Version::HTTP_10, &headers),
            Err(StatusCode::BAD_REQUEST)
        );
        for (name, value, status) in [
            (header::CONNECTION, "keep-alive", StatusCode::BAD_REQUEST),
            (header::UPGRADE, "h2c", StatusCode::BAD_REQUEST),
            (
                header::SEC_WEBSOCKET_VERSION,
                "8",
                StatusCode::UPGRADE_REQUIRED,
            ),
            (
                header::SEC_WEBSOCKET_KEY,
                "c2hvcnQ=",
                StatusCode::BAD_REQUEST,
            ),
        ] {
            let mut h = headers.clone();
            h.insert(name.clone(), hv(value));
            assert_eq!(
                check(Method::GET, Version::HTTP_11, &h),
                Err(status),
                "{name}: {value}"
            );
        }
        headers.remove(header::SEC_WEBSOCKET_KEY);
        assert_eq!(
            check(Method::GET, Version::HTTP_11, &headers),
            Err(StatusCode::BAD_REQUEST)
        );
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let proxy: SocketAddr = "127.0.0.10:5000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", hv("203.0.113.9, 127.0.0.11"));
        let trusted: Vec<IpAddr> =
            vec!["127.0.0.10".parse().unwrap(), "127.0.0.11".parse().unwrap()];
        assert_eq!(
            client_addr(proxy, &headers, &trusted).ip().to_string(),
            "203.0.113.9"
        );
        assert_eq!(
            client_addr(proxy, &headers, &[]),
            proxy,
            "untrusted peer: header ignored"
        );
    }
}
