//! The WebSocket door: checks the Origin (cross-site WebSocket hijacking),
//! negotiates the MQTT subprotocol, works out the client's address behind
//! trusted proxies, then hands the upgraded socket, as a byte stream, to
//! the same connection handler TCP uses. The upgrade completes in the
//! connection's own task, never in the accept loop.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::{debug, warn};

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
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let failures = &app.handshake_failures;
    let cfg = &app.websocket;
    let mut ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            Metrics::add(&failures.not_websocket, 1);
            debug!(%peer, error = %rejection, "not a WebSocket upgrade");
            return rejection.into_response();
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
    let offered: Vec<&str> = ws
        .requested_protocols()
        .filter_map(|p| p.to_str().ok())
        .collect();
    match choose_subprotocol(&offered, &cfg.subprotocols) {
        Some(chosen) => {
            let value = HeaderValue::from_str(chosen)
                .expect("offered by the client, so a valid header value");
            ws.set_selected_protocol(value);
        }
        None if offered.is_empty() && cfg.allow_no_subprotocol => {
            debug!(%peer, "WebSocket client offered no subprotocol; accepted");
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
    }
    let remote = client_addr(peer, &headers, &cfg.trusted_proxies);
    let max = app.broker.config().max_packet_size as usize;
    let (coalesce, max_frame) = (cfg.coalesce_frames, cfg.max_frame_bytes);
    let failures = app.handshake_failures.clone();
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_failed_upgrade(move |e| {
            Metrics::add(&failures.upgrade, 1);
            debug!(%remote, error = %e, "WebSocket upgrade failed");
        })
        .on_upgrade(move |socket| {
            let info = ConnInfo {
                transport: Transport::WebSocket,
                remote,
            };
            let stream = WsStream::new(socket, coalesce, max_frame);
            app.tasks
                .track_future(connection::serve(app.broker, stream, info, app.shutdown))
        })
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
