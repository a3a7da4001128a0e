//! The HTTP side end to end, with real HTTP requests: `/healthz`,
//! `/metrics` (content type, families, sample syntax) and the REST API
//! (`/api/v1/clients`, `/api/v1/retained`, `POST /api/v1/publish` and its
//! errors, unknown endpoints and methods). The web app's files are tested
//! in `http_static.rs`.

mod common;
mod ws_common;

use std::net::SocketAddr;
use std::num::NonZeroU16;

use aviary_protocol::{
    decode, Connect, Packet, ProtocolVersion, QoS, Subscribe, SubscriptionOptions,
};
use axum::http::StatusCode;
use bytes::BytesMut;
use common::raw::{self, Raw};
use common::within;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use ws_common::ws::{connect, WsRaw};
use ws_common::{metric, query_escape, Gw};

/// Connects over plain TCP, subscribes to `filters` at QoS 1 and returns
/// the stream once the SUBACK arrived (so the broker lists the client).
async fn tcp_client(addr: SocketAddr, hello: Connect, filters: &[&str]) -> TcpStream {
    let version = hello.protocol;
    let mut stream = TcpStream::connect(addr).await.expect("TCP connect");
    let mut out = BytesMut::new();
    Packet::Connect(Box::new(hello))
        .encode(version, &mut out)
        .unwrap();
    let subscribe = Subscribe {
        packet_id: NonZeroU16::new(1).unwrap(),
        properties: Default::default(),
        filters: filters
            .iter()
            .map(|f| (raw::filter(f), SubscriptionOptions::qos(QoS::AtLeastOnce)))
            .collect(),
    };
    Packet::Subscribe(subscribe)
        .encode(version, &mut out)
        .unwrap();
    stream.write_all(&out).await.expect("write");
    let mut buf = BytesMut::new();
    within("CONNACK and SUBACK over TCP", async {
        loop {
            while let Some(p) = decode(&mut buf, version, u32::MAX).expect("valid packet") {
                if matches!(p, Packet::SubAck(_)) {
                    return;
                }
            }
            assert!(stream.read_buf(&mut buf).await.expect("read") > 0, "closed");
        }
    })
    .await;
    stream
}

#[tokio::test]
async fn healthz() {
    let gw = Gw::start().await;
    let reply = gw.http().get("/healthz").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({ "status": "ok" }));
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let gw = Gw::start().await;
    let (mut c, _) = Raw::connect_ok(gw.mqtt, raw::v4("metered")).await;
    c.publish(raw::message("m/t", b"x", QoS::AtLeastOnce)).await;
    let reply = gw.http().get("/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = reply.text();
    // Every sample belongs to the family declared just before it.
    let mut families = Vec::new();
    let mut current = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["gauge", "counter"].contains(&kind), "{line}");
            families.push(name.to_owned());
            current = Some(name.to_owned());
        } else if !line.starts_with("# HELP ") {
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            value
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("value in {line}"));
            let name = series.split('{').next().unwrap();
            assert_eq!(Some(name), current.as_deref(), "{line}");
        }
    }
    for family in [
        "aviary_connections",
        "aviary_sessions",
        "aviary_subscriptions",
        "aviary_retained_messages",
        "aviary_queued_messages",
        "aviary_uptime_seconds",
        "aviary_connections_total",
        "aviary_messages_received_total",
        "aviary_messages_sent_total",
        "aviary_bytes_received_total",
        "aviary_protocol_errors_total",
        "aviary_messages_dropped_total",
        "aviary_websocket_handshake_failures_total",
    ] {
        assert!(
            families.iter().any(|f| f == family),
            "{family} missing:\n{text}"
        );
    }
    let tcp311 = "aviary_connections{transport=\"tcp\",protocol=\"3.1.1\"}";
    assert_eq!(metric(text, tcp311), Some(1), "{text}");
    assert_eq!(metric(text, "aviary_messages_received_total"), Some(1));
    assert_eq!(metric(text, "aviary_connections_total"), Some(1));
}

#[tokio::test]
async fn clients_are_listed() {
    let gw = Gw::start().await;
    let mut hello = raw::v5("api-tcp");
    hello.keep_alive = 30;
    let tcp = tcp_client(gw.mqtt, hello, &["a/#", "b/+"]).await;
    let (mut ws, _) = WsRaw::connect_ok(gw.http, connect(ProtocolVersion::V3_1_1, "api-ws")).await;
    ws.subscribe("pets/+/location", QoS::AtMostOnce).await;

    let mut clients = gw.http().clients().await;
    clients.sort_by_key(|c| c["client_id"].as_str().map(str::to_owned));
    assert_eq!(clients.len(), 2, "{clients:?}");
    let expect = [
        ("api-tcp", "tcp", tcp.local_addr().unwrap(), "5.0", 2),
        ("api-ws", "ws", ws.local_addr(), "3.1.1", 1),
    ];
    for (c, (id, transport, remote, version, subs)) in clients.iter().zip(expect) {
        assert_eq!(c["client_id"], id, "{c}");
        assert_eq!(c["transport"], transport, "{c}");
        assert_eq!(c["remote_addr"], remote.to_string(), "{c}");
        assert_eq!(c["protocol_version"], version, "{c}");
        assert_eq!(c["subscriptions"], subs, "{c}");
        assert!(
            c["connected_since_ms"].as_u64().unwrap() > 1_600_000_000_000,
            "{c}"
        );
    }
    drop(tcp);
    common::eventually("the TCP client to leave the list", || {
        gw.broker.clients().len() == 1
    })
    .await;
    assert_eq!(gw.http().clients().await.len(), 1);
}

/// `GET /api/v1/retained?filter=F`, sorted by topic.
async fn retained(gw: &Gw, filter: &str) -> Vec<Value> {
    let reply = gw
        .http()
        .get(&format!("/api/v1/retained?filter={}", query_escape(filter)))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let Value::Array(mut list) = reply.json() else {
        panic!("not an array: {}", reply.text());
    };
    list.sort_by_key(|m| m["topic"].as_str().map(str::to_owned));
    list
}

#[tokio::test]
async fn retained_messages_are_listed() {
    let gw = Gw::start().await;
    let (mut c, _) = Raw::connect_ok(gw.mqtt, raw::v5("retainer")).await;
    let mut text = raw::message("r/text", "héllo".as_bytes(), QoS::AtLeastOnce);
    text.retain = true;
    let props = text.properties.message.to_mut();
    props.content_type = Some("text/plain".into());
    props.user_properties.push(("unit".into(), "m".into()));
    let mut binary = raw::message("r/bin", &[0xFF, 0x00, 0xFE], QoS::AtMostOnce);
    binary.retain = true;
    let mut other = raw::message("other/x", b"x", QoS::AtLeastOnce);
    other.retain = true;
    c.publish(binary).await;
    c.publish(text).await;
    c.publish(other).await;

    let list = retained(&gw, "r/#").await;
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["topic"], "r/bin");
    assert_eq!(list[0]["payload"], "/wD+");
    assert_eq!(list[0]["payload_encoding"], "base64");
    assert_eq!(list[0]["qos"], 0);
    assert_eq!(list[1]["topic"], "r/text");
    assert_eq!(list[1]["payload"], "héllo");
    assert_eq!(list[1]["payload_encoding"], "utf8");
    assert_eq!(list[1]["qos"], 1);
    assert_eq!(list[1]["properties"]["content_type"], "text/plain");
    assert_eq!(
        list[1]["properties"]["user_properties"],
        json!([["unit", "m"]])
    );

    assert_eq!(retained(&gw, "r/+").await.len(), 2);
    assert_eq!(retained(&gw, "other/x").await.len(), 1);
    assert_eq!(retained(&gw, "#").await.len(), 3, "`#` skips `$SYS`");
    // Without a filter: everything, the broker's `$SYS` topics included.
    let all = gw.http().get("/api/v1/retained").await.json();
    let topics: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["topic"].as_str().unwrap())
        .collect();
    assert_eq!(topics.iter().filter(|t| !t.starts_with('$')).count(), 3);
    assert!(topics.iter().any(|t| t.starts_with("$SYS/")), "{topics:?}");

    // An empty retained payload deletes it.
    let mut delete = raw::message("r/text", b"", QoS::AtLeastOnce);
    delete.retain = true;
    c.publish(delete).await;
    let list = retained(&gw, "r/#").await;
    assert_eq!(list.len(), 1, "{list:?}");

    for bad in ["a/#/b", "a+", "$share/g/r/#"] {
        let reply = gw
            .http()
            .get(&format!("/api/v1/retained?filter={}", query_escape(bad)))
            .await;
        let error = reply.error(StatusCode::BAD_REQUEST);
        assert!(error.contains("filter"), "{bad}: {error}");
    }
}

/// An MQTT subscriber to `api/#` at QoS 2.
async fn subscriber(gw: &Gw, id: &str) -> Raw {
    let (mut sub, _) = Raw::connect_ok(gw.mqtt, raw::v5(id)).await;
    sub.subscribe("api/#", QoS::ExactlyOnce).await;
    sub
}

#[tokio::test]
async fn publish_json_reaches_mqtt_subscribers() {
    let gw = Gw::start().await;
    let http = gw.http();
    let mut sub = subscriber(&gw, "api-sub").await;

    let reply = http
        .post_json(
            "/api/v1/publish",
            r#"{"topic":"api/json","payload":"hi","qos":1}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json(), json!({ "delivered": 1 }));
    let p = sub.recv_publish().await;
    assert_eq!(
        (&*p.topic, &p.payload[..], p.qos, p.retain),
        ("api/json", &b"hi"[..], QoS::AtLeastOnce, false)
    );
    sub.ack(&p).await;

    // Defaults: QoS 0, no retain, empty payload.
    let reply = http
        .post_json("/api/v1/publish", r#"{"topic":"api/min"}"#)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let p = sub.recv_publish().await;
    assert_eq!(
        (&*p.topic, p.payload.len(), p.qos),
        ("api/min", 0, QoS::AtMostOnce)
    );

    let body =
        r#"{"topic":"api/b64","payload":"/wD+","payload_encoding":"base64","qos":2,"retain":true}"#;
    let reply = http.post_json("/api/v1/publish", body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let p = sub.recv_publish().await;
    assert_eq!(&p.payload[..], [0xFF, 0x00, 0xFE]);
    assert_eq!(p.qos, QoS::ExactlyOnce);
    sub.ack(&p).await;

    // Retained: listed, and delivered to a later subscriber as retained.
    let list = retained(&gw, "api/#").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["payload_encoding"], "base64");
    let mut late = subscriber(&gw, "api-late").await;
    let p = late.recv_publish().await;
    assert_eq!(&*p.topic, "api/b64");
    assert!(p.retain);
    late.ack(&p).await;

    // Nobody subscribed: delivered to none.
    let reply = http
        .post_json("/api/v1/publish", r#"{"topic":"nobody/here"}"#)
        .await;
    assert_eq!(reply.json(), json!({ "delivered": 0 }));
}

#[tokio::test]
async fn publish_raw_body_with_query_parameters() {
    let gw = Gw::start().await;
    let mut sub = subscriber(&gw, "raw-sub").await;
    let payload = [0u8, 1, 2, 0xFF, b'{'];
    let reply = gw
        .http()
        .post_raw(
            "/api/v1/publish?topic=api/raw&qos=2&retain=false",
            "application/octet-stream",
            &payload,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json(), json!({ "delivered": 1 }));
    let p = sub.recv_publish().await;
    assert_eq!(
        (&*p.topic, &p.payload[..], p.qos, p.retain),
        ("api/raw", &payload[..], QoS::ExactlyOnce, false)
    );
    sub.ack(&p).await;

    // Query parameters are percent-decoded; a text body with no type works.
    let path = format!(
        "/api/v1/publish?topic={}&retain=1",
        query_escape("api/with space")
    );
    let reply = gw.http().post_raw(&path, "text/plain", b"plain").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let p = sub.recv_publish().await;
    assert_eq!(
        (&*p.topic, &p.payload[..], p.qos),
        ("api/with space", &b"plain"[..], QoS::AtMostOnce)
    );
    assert_eq!(retained(&gw, "api/with space").await.len(), 1);
}

#[tokio::test]
async fn publish_errors_name_the_problem() {
    let gw = Gw::start().await;
    let http = gw.http();
    let mut sub = subscriber(&gw, "err-sub").await;
    let json_cases: [(&str, StatusCode, &str); 8] = [
        ("{", StatusCode::BAD_REQUEST, "invalid JSON"),
        (
            r#"{"topic":"api/x","qox":1}"#,
            StatusCode::BAD_REQUEST,
            "qox",
        ),
        (
            r#"{"payload":"no topic"}"#,
            StatusCode::BAD_REQUEST,
            "topic",
        ),
        (
            r#"{"topic":"api/+/x"}"#,
            StatusCode::BAD_REQUEST,
            "invalid topic",
        ),
        (
            r#"{"topic":"api/#"}"#,
            StatusCode::BAD_REQUEST,
            "invalid topic",
        ),
        (
            r#"{"topic":"api/x","qos":3}"#,
            StatusCode::BAD_REQUEST,
            "qos",
        ),
        (
            r#"{"topic":"api/x","payload":"!","payload_encoding":"base64"}"#,
            StatusCode::BAD_REQUEST,
            "base64",
        ),
        (
            r#"{"topic":"$SYS/broker/uptime"}"#,
            StatusCode::FORBIDDEN,
            "$SYS",
        ),
    ];
    for (body, status, needle) in json_cases {
        let error = http.post_json("/api/v1/publish", body).await.error(status);
        assert!(
            error.contains(needle),
            "{body}: {error:?} should mention {needle}"
        );
    }
    let raw_cases: [(&str, StatusCode, &str); 5] = [
        ("/api/v1/publish", StatusCode::BAD_REQUEST, "topic"),
        (
            "/api/v1/publish?topic=api/x&qos=3",
            StatusCode::BAD_REQUEST,
            "qos",
        ),
        (
            "/api/v1/publish?topic=api/x&qos=high",
            StatusCode::BAD_REQUEST,
            "qos",
        ),
        (
            "/api/v1/publish?topic=api/x&retain=maybe",
            StatusCode::BAD_REQUEST,
            "retain",
        ),
        (
            "/api/v1/publish?topic=%24SYS/x",
            StatusCode::FORBIDDEN,
            "$SYS",
        ),
    ];
    for (path, status, needle) in raw_cases {
        let error = http.post_raw(path, "text/plain", b"x").await.error(status);
        assert!(
            error.contains(needle),
            "{path}: {error:?} should mention {needle}"
        );
    }
    // None of them published anything: the next message is the marker.
    let reply = http
        .post_json("/api/v1/publish", r#"{"topic":"api/marker"}"#)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(&*sub.recv_publish().await.topic, "api/marker");
    let left = retained(&gw, "#").await;
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn unknown_api_paths_and_methods_are_json_errors() {
    let gw = Gw::start().await;
    let http = gw.http();
    for path in [
        "/api/v1/x",
        "/api/v1/clients/extra",
        "/api/v1/",
        "/api/v1",
        "/api/",
        "/api/v2/clients",
    ] {
        let error = http.get(path).await.error(StatusCode::NOT_FOUND);
        assert!(!error.is_empty(), "{path}");
    }
    let error = http
        .post_json("/api/v1/nope", "{}")
        .await
        .error(StatusCode::NOT_FOUND);
    assert!(!error.is_empty());
    // A known endpoint with the wrong method.
    let reply = http.get("/api/v1/publish").await;
    let error = reply.error(StatusCode::METHOD_NOT_ALLOWED);
    assert!(error.contains("GET"), "{error}");
    assert_eq!(reply.header("allow"), Some("POST"));
    let reply = http.post_json("/api/v1/clients", "{}").await;
    reply.error(StatusCode::METHOD_NOT_ALLOWED);
}
