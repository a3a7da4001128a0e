//! The REST API under the same users and ACL as MQTT: 401 with `WWW-Authenticate` without
//! valid credentials, HTTP Basic with a user of the password file or the bearer token,
//! publishing under the caller's write ACL, listings holding only what the caller may read,
//! the client list for admins, `/healthz` and `/config.json` open.

mod common;
mod security_common;
mod ws_common;

use aviary_protocol::{ProtocolVersion, ReasonCode};
use axum::http::{Method, StatusCode};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use security_common::{secure_gateway, Conn, Via};
use ws_common::Reply;

const TOKEN: &str = "token-0123456789abcdef";

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
}

async fn get_as(gw: &ws_common::Gw, path: &str, authorization: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = authorization
        .map(|a| ("authorization", a))
        .into_iter()
        .collect();
    gw.http().get_with(path, &headers).await
}

async fn publish_as(gw: &ws_common::Gw, authorization: &str, topic: &str) -> Reply {
    let body = format!(r#"{{"topic":"{topic}","payload":"x","retain":true}}"#);
    let headers = [
        ("authorization", authorization),
        ("content-type", "application/json"),
    ];
    gw.http()
        .request(Method::POST, "/api/v1/publish", &headers, body)
        .await
}

fn topics(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let list = reply.json();
    let mut topics: Vec<String> = list
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|m| m["topic"].as_str().expect("topic").to_owned())
        .collect();
    topics.sort();
    topics
}

#[tokio::test]
async fn without_valid_credentials_the_api_answers_401_with_www_authenticate() {
    let (gw, _dir) = secure_gateway(|_| {}).await;
    let wrong = basic("server", "wrong");
    for (path, auth) in [
        ("/api/v1/retained", None),
        ("/api/v1/clients", None),
        ("/api/v1/retained", Some(wrong.as_str())),
        ("/api/v1/retained", Some("Bearer not-the-token")),
        ("/api/v1/retained", Some("Digest whatever")),
    ] {
        let reply = get_as(&gw, path, auth).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path} {auth:?}");
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Basic realm="), "{challenge:?}");
        assert!(!reply.error(StatusCode::UNAUTHORIZED).is_empty());
    }
    // Open whatever the credentials: health, and what the web app needs to show its form.
    assert_eq!(gw.http().get("/healthz").await.status, StatusCode::OK);
    let config = gw.http().get("/config.json").await.json();
    assert_eq!(config["auth_required"], true);
    // /metrics: open on loopback (the default).
    assert_eq!(gw.http().get("/metrics").await.status, StatusCode::OK);
}

#[tokio::test]
async fn publishing_obeys_the_write_acl_and_listings_the_read_acl() {
    let (gw, _dir) = secure_gateway(|_| {}).await;
    let device = basic("device-123", "dev-pw");
    let reply = publish_as(&gw, &device, "pets/123/location").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let reply = publish_as(&gw, &device, "pets/7/location").await;
    let error = reply.error(StatusCode::FORBIDDEN);
    assert!(error.contains("pets/7/location"), "{error}");
    // The token stands for the operator: past the ACL.
    let reply = publish_as(&gw, &format!("Bearer {TOKEN}"), "pets/7/location").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());

    let app = basic("app-user-456", "app-pw");
    let all = ["pets/123/location", "pets/7/location"];
    assert_eq!(
        topics(&get_as(&gw, "/api/v1/retained", Some(&app)).await),
        ["pets/123/location"]
    );
    let server = basic("server", "srv-pw");
    assert_eq!(
        topics(&get_as(&gw, "/api/v1/retained", Some(&server)).await),
        all
    );
    let history = "/api/v1/history?filter=pets/%2B/location";
    assert_eq!(
        topics(&get_as(&gw, history, Some(&app)).await),
        ["pets/123/location"]
    );
    assert_eq!(topics(&get_as(&gw, history, Some(&server)).await), all);
    // device-123 may write its pet's topics but read none of them.
    assert!(topics(&get_as(&gw, "/api/v1/retained", Some(&device)).await).is_empty());

    let metrics = gw.http().metrics().await;
    assert_eq!(
        ws_common::metric(&metrics, "aviary_acl_denied_total{action=\"api\"}"),
        Some(1)
    );
}

#[tokio::test]
async fn the_client_list_is_for_admins() {
    let (gw, _dir) = secure_gateway(|_| {}).await;
    let _device = Conn::user(&gw, Via::Tcp, ProtocolVersion::V5, "device-123", "d-1").await;
    let app = basic("app-user-456", "app-pw");
    let reply = get_as(&gw, "/api/v1/clients", Some(&app)).await;
    reply.error(StatusCode::FORBIDDEN);
    for admin in [basic("server", "srv-pw"), format!("Bearer {TOKEN}")] {
        let reply = get_as(&gw, "/api/v1/clients", Some(&admin)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let ids: Vec<_> = reply
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["client_id"].clone())
            .collect();
        assert_eq!(ids, ["d-1"]);
    }
}

#[tokio::test]
async fn metrics_can_require_an_admin() {
    let (gw, _dir) = secure_gateway(|c| c.auth.metrics = aviary::config::MetricsAccess::Auth).await;
    let reply = gw.http().get("/metrics").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = get_as(&gw, "/metrics", Some(&basic("app-user-456", "app-pw"))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let reply = get_as(&gw, "/metrics", Some(&basic("server", "srv-pw"))).await;
    assert_eq!(reply.status, StatusCode::OK);
    // Asking without credentials, or as a user without admin rights, is no failed login.
    assert_eq!(
        ws_common::metric(reply.text(), "aviary_login_failures_total"),
        Some(0)
    );
}

#[tokio::test]
async fn a_failed_api_login_counts_as_a_failed_login() {
    let (gw, _dir) = secure_gateway(|_| {}).await;
    get_as(&gw, "/api/v1/retained", Some(&basic("server", "nope"))).await;
    let (_c, ack) = Conn::connect(
        &gw,
        Via::Tcp,
        security_common::connect_packet(ProtocolVersion::V5, "x", Some(("server", "nope"))),
    )
    .await;
    assert_eq!(ack.reason_code, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
    let metrics = gw.http().metrics().await;
    assert_eq!(
        ws_common::metric(&metrics, "aviary_login_failures_total"),
        Some(2)
    );
}
