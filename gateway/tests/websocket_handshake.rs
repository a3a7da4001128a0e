//! The MQTT-over-WebSocket handshake end to end: subprotocol negotiation
//! (`mqtt`, `mqttv3.1`, lists, none) on every configured path, the Origin
//! check against cross-site WebSocket hijacking, the client address behind
//! trusted proxies (`X-Forwarded-For`), and the connection and
//! refused-handshake metrics.

mod common;
mod ws_common;

use std::net::IpAddr;
use std::time::Duration;

use aviary_protocol::{Packet, ProtocolVersion, ReasonCode};
use axum::http::StatusCode;
use common::within;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use ws_common::ws::{connect, handshake, WsRaw};
use ws_common::{metric, Gw};

const V5: ProtocolVersion = ProtocolVersion::V5;

/// The subprotocol the gateway's 101 response selected, if any.
fn selected(response: &Response) -> Option<&str> {
    response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().expect("text header"))
}

/// The `error` of a refused handshake's JSON body.
fn refusal_error(response: &Response) -> String {
    let body = response.body().as_deref().unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(body).expect("JSON refusal body");
    json["error"].as_str().expect("error message").to_owned()
}

/// Opens `/mqtt` with `headers`, expecting a refusal with `status`.
async fn refused(gw: &Gw, headers: &[(&str, &str)], status: StatusCode) -> Response {
    match handshake(gw.http, "/mqtt", headers).await {
        Ok((_, r)) => panic!("handshake with {headers:?} accepted: {r:?}"),
        Err(r) => {
            assert_eq!(r.status(), status, "handshake with {headers:?}");
            r
        }
    }
}

/// Opens `/mqtt` with `headers`, expecting acceptance; proves the socket
/// carries MQTT by connecting over it.
async fn accepted(gw: &Gw, headers: &[(&str, &str)], client_id: &str) -> Response {
    let (socket, response) = match handshake(gw.http, "/mqtt", headers).await {
        Ok(ok) => ok,
        Err(r) => panic!("handshake with {headers:?} refused: {}", r.status()),
    };
    let mut c = WsRaw::new(socket, V5);
    c.send(Packet::Connect(Box::new(connect(V5, client_id))))
        .await;
    assert_eq!(c.connack().await.reason_code, ReasonCode::SUCCESS);
    response
}

#[tokio::test]
async fn every_configured_path_accepts_websockets() {
    let gw =
        Gw::start_with(|c| c.websocket.paths = vec!["/mqtt".to_owned(), "/ws".to_owned()]).await;
    let mqtt = [("sec-websocket-protocol", "mqtt")];
    for (path, id) in [("/mqtt", "path-mqtt"), ("/ws", "path-ws")] {
        let (socket, _) = match handshake(gw.http, path, &mqtt).await {
            Ok(ok) => ok,
            Err(r) => panic!("{path} refused: {}", r.status()),
        };
        let mut c = WsRaw::new(socket, V5);
        c.send(Packet::Connect(Box::new(connect(V5, id)))).await;
        assert_eq!(c.connack().await.reason_code, ReasonCode::SUCCESS, "{path}");
    }
    let other = handshake(gw.http, "/elsewhere", &mqtt).await;
    assert_eq!(other.err().map(|r| r.status()), Some(StatusCode::NOT_FOUND));
}

#[tokio::test]
async fn subprotocol_negotiation() {
    let gw = Gw::start().await;
    let r = refused(
        &gw,
        &[("sec-websocket-protocol", "chat")],
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(refusal_error(&r).contains("subprotocol"), "{r:?}");

    let r = accepted(&gw, &[("sec-websocket-protocol", "chat, mqtt")], "sp-list").await;
    assert_eq!(selected(&r), Some("mqtt"));
    let r = accepted(&gw, &[("sec-websocket-protocol", "mqttv3.1")], "sp-31").await;
    assert_eq!(selected(&r), Some("mqttv3.1"));
    let r = accepted(&gw, &[("sec-websocket-protocol", "mqtt")], "sp-mqtt").await;
    assert_eq!(selected(&r), Some("mqtt"));
    // Some clients offer none: accepted by default, and nothing is echoed.
    let r = accepted(&gw, &[], "sp-none").await;
    assert_eq!(selected(&r), None);

    let strict = Gw::start_with(|c| c.websocket.allow_no_subprotocol = false).await;
    refused(&strict, &[], StatusCode::BAD_REQUEST).await;
    let r = accepted(&strict, &[("sec-websocket-protocol", "mqtt")], "sp-strict").await;
    assert_eq!(selected(&r), Some("mqtt"));
}

#[tokio::test]
async fn origin_is_checked() {
    let gw = Gw::start().await;
    let mqtt = ("sec-websocket-protocol", "mqtt");
    let r = refused(
        &gw,
        &[mqtt, ("origin", "https://evil.example")],
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(refusal_error(&r).contains("evil.example"), "{r:?}");
    let own = format!("http://{}", gw.http);
    accepted(&gw, &[mqtt, ("origin", &own)], "origin-own").await;
    accepted(
        &gw,
        &[mqtt, ("origin", "http://localhost:1234")],
        "origin-lh",
    )
    .await;
    accepted(&gw, &[mqtt], "origin-none").await;
    // The gateway's own origin as the browser saw it (Host), even when it
    // is not a loopback name.
    let host = ("host", "pets.example:8080");
    accepted(
        &gw,
        &[mqtt, host, ("origin", "http://pets.example:8080")],
        "origin-host",
    )
    .await;
    refused(
        &gw,
        &[mqtt, host, ("origin", "http://pets.example:9090")],
        StatusCode::FORBIDDEN,
    )
    .await;

    let listed = Gw::start_with(|c| {
        c.websocket.allowed_origins = vec!["https://app.example".to_owned()];
    })
    .await;
    accepted(
        &listed,
        &[mqtt, ("origin", "https://app.example")],
        "listed-ok",
    )
    .await;
    for origin in ["http://localhost:1234", "https://evil.example"] {
        refused(&listed, &[mqtt, ("origin", origin)], StatusCode::FORBIDDEN).await;
    }
    accepted(&listed, &[mqtt], "listed-none").await;
}

/// Connects `client_id` over WebSocket with `x-forwarded-for` and returns
/// the `remote_addr` the REST API lists for it, and the socket's own
/// local address.
async fn listed_remote(gw: &Gw, client_id: &str, forwarded: Option<&str>) -> (String, String) {
    let mut headers = vec![("sec-websocket-protocol", "mqtt")];
    if let Some(f) = forwarded {
        headers.push(("x-forwarded-for", f));
    }
    let (socket, _) = handshake(gw.http, "/mqtt", &headers)
        .await
        .expect("handshake accepted");
    let mut c = WsRaw::new(socket, V5);
    c.send(Packet::Connect(Box::new(connect(V5, client_id))))
        .await;
    assert_eq!(c.connack().await.reason_code, ReasonCode::SUCCESS);
    // A round trip after CONNACK: the connection is registered by then.
    c.send(Packet::PingReq).await;
    assert!(matches!(c.recv().await, Packet::PingResp));
    let clients = gw.http().clients().await;
    let me = clients
        .iter()
        .find(|cl| cl["client_id"] == client_id)
        .unwrap_or_else(|| panic!("{client_id} not listed in {clients:?}"));
    assert_eq!(me["transport"], "ws");
    let remote = me["remote_addr"].as_str().expect("remote_addr").to_owned();
    (remote, c.local_addr().to_string())
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let gw = Gw::start().await;
    let (remote, local) = listed_remote(&gw, "untrusted", Some("203.0.113.9")).await;
    assert_eq!(remote, local, "header from an untrusted peer is ignored");

    let loopback: IpAddr = [127, 0, 0, 1].into();
    let proxied = Gw::start_with(|c| c.websocket.trusted_proxies = vec![loopback]).await;
    let (remote, _) = listed_remote(&proxied, "via-proxy", Some("203.0.113.9")).await;
    assert_eq!(remote, "203.0.113.9:0");
    // The right-most address that is not a trusted proxy.
    let chain = "198.51.100.1, 198.51.100.7, 127.0.0.1";
    let (remote, _) = listed_remote(&proxied, "via-chain", Some(chain)).await;
    assert_eq!(remote, "198.51.100.7:0");
    let (remote, local) = listed_remote(&proxied, "proxy-itself", None).await;
    assert_eq!(remote, local, "no header: the peer itself");
}

#[tokio::test]
async fn websocket_metrics() {
    let gw = Gw::start().await;
    let http = gw.http();
    let ws5 = "aviary_connections{transport=\"ws\",protocol=\"5.0\"}";
    let failures =
        |reason: &str| format!("aviary_websocket_handshake_failures_total{{reason=\"{reason}\"}}");
    let text = http.metrics().await;
    assert_eq!(metric(&text, ws5), Some(0), "{text}");
    for reason in ["not_websocket", "origin", "subprotocol", "upgrade"] {
        assert_eq!(metric(&text, &failures(reason)), Some(0), "{text}");
    }

    let (mut c, _) = WsRaw::connect_ok(gw.http, connect(V5, "counted")).await;
    c.send(Packet::PingReq).await;
    assert!(matches!(c.recv().await, Packet::PingResp));
    let text = http.metrics().await;
    assert_eq!(metric(&text, ws5), Some(1), "{text}");
    assert_eq!(
        metric(
            &text,
            "aviary_connections{transport=\"tcp\",protocol=\"5.0\"}"
        ),
        Some(0)
    );
    drop(c);
    within("the ws gauge to drop back to 0", async {
        while metric(&http.metrics().await, ws5) != Some(0) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;

    let mqtt = ("sec-websocket-protocol", "mqtt");
    refused(
        &gw,
        &[("sec-websocket-protocol", "chat")],
        StatusCode::BAD_REQUEST,
    )
    .await;
    refused(
        &gw,
        &[("sec-websocket-protocol", "chat")],
        StatusCode::BAD_REQUEST,
    )
    .await;
    refused(
        &gw,
        &[mqtt, ("origin", "https://evil.example")],
        StatusCode::FORBIDDEN,
    )
    .await;
    let plain = http.get("/mqtt").await;
    assert!(
        plain.status.is_client_error(),
        "plain GET: {}",
        plain.status
    );
    let text = http.metrics().await;
    assert_eq!(metric(&text, &failures("subprotocol")), Some(2), "{text}");
    assert_eq!(metric(&text, &failures("origin")), Some(1), "{text}");
    assert_eq!(metric(&text, &failures("not_websocket")), Some(1), "{text}");
}
