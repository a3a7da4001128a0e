//! Helpers for the WebSocket and HTTP end-to-end tests: an in-process
//! gateway on port 0 whose whole [`Config`] a test may adjust (WebSocket and
//! HTTP settings included) and which knows its HTTP address, a small HTTP/1
//! client ([`Http`]) and a raw MQTT-over-WebSocket client ([`ws::WsRaw`]).
//!
//! Every wait is bounded by [`crate::common::WAIT`] through
//! [`crate::common::within`]; readiness is always an event.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

pub(crate) mod ws;

use std::fmt::Write as _;
use std::net::SocketAddr;

use aviary::{Broker, Config, Gateway};
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::oneshot;

use crate::common::within;

/// Logs to the test output when `RUST_LOG` is set (`RUST_LOG=aviary=debug`).
fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A gateway serving MQTT and HTTP on ephemeral ports. Dropping it fires
/// its shutdown.
pub(crate) struct Gw {
    /// MQTT over TCP.
    pub(crate) mqtt: SocketAddr,
    /// HTTP: WebSocket, REST API, metrics, files.
    pub(crate) http: SocketAddr,
    /// MQTT over TLS and HTTPS, when the config asks for them.
    pub(crate) mqtts: Option<SocketAddr>,
    pub(crate) https: Option<SocketAddr>,
    /// The broker, for looking at its state.
    pub(crate) broker: Broker,
    shutdown: Option<oneshot::Sender<()>>,
    _dirs: tempfile::TempDir,
}

impl Gw {
    /// A gateway with the test defaults (see [`Gw::start_with`]).
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A gateway whose configuration `tune` adjusts. The defaults differ
    /// from the shipped ones only where a test needs determinism: a
    /// temporary data dir, an empty temporary static dir (so `/` never
    /// depends on whether the web app happens to be built) and hourly
    /// `$SYS` updates.
    pub(crate) async fn start_with(tune: impl FnOnce(&mut Config)) -> Self {
        init_tracing();
        let dirs = tempfile::tempdir().expect("temporary dir");
        let static_dir = dirs.path().join("static");
        std::fs::create_dir(&static_dir).expect("create static dir");
        let mut config = Config::default();
        config.listen.mqtt = SocketAddr::from(([127, 0, 0, 1], 0));
        config.listen.http = SocketAddr::from(([127, 0, 0, 1], 0));
        config.data_dir = dirs.path().join("data");
        config.http.static_dir = static_dir;
        config.mqtt.sys_interval_secs = 3600;
        tune(&mut config);
        config.validate().expect("test config is valid");
        let gateway = Gateway::bind(config).await.expect("gateway binds port 0");
        let (mqtt, http) = (gateway.mqtt_addr(), gateway.http_addr());
        let (mqtts, https) = (gateway.mqtts_addr(), gateway.https_addr());
        let broker = gateway.broker().clone();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(gateway.run(async {
            let _ = rx.await;
        }));
        Self {
            mqtt,
            http,
            mqtts,
            https,
            broker,
            shutdown: Some(tx),
            _dirs: dirs,
        }
    }

    /// `ws://HOST:PORT/mqtt`.
    pub(crate) fn ws_url(&self) -> String {
        format!("ws://{}/mqtt", self.http)
    }

    /// An HTTP client for this gateway.
    pub(crate) fn http(&self) -> Http {
        Http::new(self.http)
    }
}

impl Drop for Gw {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A whole HTTP response.
#[derive(Debug)]
pub(crate) struct Reply {
    /// Its status.
    pub(crate) status: StatusCode,
    /// Its headers.
    pub(crate) headers: HeaderMap,
    /// Its body, as sent (no content decoding).
    pub(crate) body: Bytes,
}

impl Reply {
    /// A header's value as text; panics if it is not text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("header value is text"))
    }

    /// The body as UTF-8 text.
    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }

    /// The body as JSON, after checking the content type says so.
    pub(crate) fn json(&self) -> serde_json::Value {
        let ct = self.header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("application/json"),
            "expected a JSON response, got content-type {ct:?}: {}",
            String::from_utf8_lossy(&self.body)
        );
        serde_json::from_slice(&self.body).expect("valid JSON body")
    }

    /// The `error` message of a JSON error response with `status`.
    pub(crate) fn error(&self, status: StatusCode) -> String {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        let json = self.json();
        json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no `error` string in {json}"))
            .to_owned()
    }
}

/// A plain HTTP/1 client bound to one gateway.
pub(crate) struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
}

impl Http {
    /// A client for the HTTP server at `addr`.
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            addr,
        }
    }

    /// Sends a request and reads the whole response.
    pub(crate) async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{}{path_and_query}", self.addr));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(Full::new(body.into())).expect("valid request");
        let what = format!("HTTP response for {path_and_query}");
        within(&what, async {
            let resp = self.client.request(req).await.expect("HTTP request");
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.expect("HTTP body").to_bytes();
            Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        })
        .await
    }

    /// `GET path`.
    pub(crate) async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, &[], Bytes::new()).await
    }

    /// `GET path` with extra request headers.
    pub(crate) async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.request(Method::GET, path, headers, Bytes::new()).await
    }

    /// `POST path` with a JSON body.
    pub(crate) async fn post_json(&self, path: &str, body: &str) -> Reply {
        let headers = [(header::CONTENT_TYPE.as_str(), "application/json")];
        self.request(Method::POST, path, &headers, body.to_owned())
            .await
    }

    /// `POST path` with a raw body of `content_type`.
    pub(crate) async fn post_raw(&self, path: &str, content_type: &str, body: &[u8]) -> Reply {
        let headers = [(header::CONTENT_TYPE.as_str(), content_type)];
        self.request(Method::POST, path, &headers, body.to_vec())
            .await
    }

    /// `GET /metrics` as text.
    pub(crate) async fn metrics(&self) -> String {
        let reply = self.get("/metrics").await;
        assert_eq!(reply.status, StatusCode::OK);
        reply.text().to_owned()
    }

    /// `GET /api/v1/clients` as JSON.
    pub(crate) async fn clients(&self) -> Vec<serde_json::Value> {
        let reply = self.get("/api/v1/clients").await;
        assert_eq!(reply.status, StatusCode::OK);
        match reply.json() {
            serde_json::Value::Array(list) => list,
            other => panic!("expected a JSON array, got {other}"),
        }
    }
}

/// The value of the sample `series` (name and labels exactly as written)
/// in a Prometheus text exposition, if present.
pub(crate) fn metric(text: &str, series: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().expect("integer sample"))
    })
}

/// Percent-encodes a query parameter value (everything but unreserved
/// characters and `/`).
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}
