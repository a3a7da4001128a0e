//! The REST API, `/api/v1`: connected clients, retained messages and
//! publishing over HTTP ("MQTT for devices, HTTP for everything else").
//! Bad input gets a JSON error naming what was wrong, with a 4xx status.
//! Every handler knows its [`Caller`]: the client list is for admins, a
//! publish obeys the caller's write ACL, and listings hold only what the
//! caller may read.

use std::collections::HashMap;

use aviary_protocol::{ByteString, QoS, TopicFilter, TopicName};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::caller::{Caller, Refused};
use super::AppState;

/// An API error: a status and a message naming the problem.
#[derive(Debug)]
pub(super) struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

/// Any other path under `/api`.
pub(super) async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "no such API endpoint".to_owned())
}

/// A known path asked with a method it does not serve.
pub(super) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// `GET /api/v1/clients`: for admins.
pub(super) async fn clients(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, Refused> {
    caller.require_admin()?;
    // In cluster mode the clients of this node, said so.
    let node = app.cluster.as_ref().map(|c| c.leases().node().to_owned());
    let list: Vec<Value> = app
        .broker
        .clients()
        .into_iter()
        .map(|c| {
            let since = c
                .connected_since
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            json!({
                "client_id": &*c.client_id,
                "transport": c.transport.as_str(),
                "remote_addr": c.remote.to_string(),
                "protocol_version": c.version.to_string(),
                "connected_since_ms": since,
                "subscriptions": c.subscriptions,
                "username": c.username.as_deref(),
                "peer_identity": c.peer_identity.as_deref(),
                "node": node,
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

/// A payload as JSON: text when it is UTF-8, base64 otherwise.
fn payload_json(payload: &[u8]) -> (Value, &'static str) {
    match std::str::from_utf8(payload) {
        Ok(text) => (Value::String(text.to_owned()), "utf8"),
        Err(_) => (Value::String(BASE64.encode(payload)), "base64"),
    }
}

/// `GET /api/v1/retained?filter=...`; without a filter, every retained
/// message, `$SYS` included.
pub(super) async fn retained(
    State(app): State<AppState>,
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let auth = app.broker.authorizer();
    let filter = match query.get("filter") {
        Some(f) => {
            let filter = TopicFilter::new(f.as_str())
                .map_err(|e| bad_request(format!("invalid filter: {e}")))?;
            if filter.shared().is_some() {
                return Err(bad_request(
                    "a shared subscription filter cannot list retained messages",
                ));
            }
            Some(filter)
        }
        None => None,
    };
    let list: Vec<Value> = app
        .broker
        .retained_messages(filter.as_ref().map(TopicFilter::as_str))
        .into_iter()
        .filter(|m| caller.can_read(auth, &m.topic))
        .map(|m| {
            let (payload, encoding) = payload_json(&m.payload);
            let p = &m.properties;
            json!({
                "topic": &*m.topic,
                "payload": payload,
                "payload_encoding": encoding,
                "qos": m.qos as u8,
                "properties": {
                    "content_type": p.content_type.as_deref(),
                    "response_topic": p.response_topic.as_deref(),
                    "payload_format_indicator": p.payload_format_indicator,
                    "user_properties": p.user_properties.iter().map(|(k, v)| [&**k, &**v]).collect::<Vec<_>>(),
                }
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

/// `GET /api/v1/history?filter=pets/+/location&limit=N&since=T`: the
/// recent messages of matching topics (T in milliseconds since the epoch).
pub(super) async fn history(
    State(app): State<AppState>,
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let auth = app.broker.authorizer();
    let filter = query
        .get("filter")
        .ok_or_else(|| bad_request("missing `filter` query parameter"))?;
    let filter = TopicFilter::new(filter.as_str())
        .map_err(|e| bad_request(format!("invalid filter: {e}")))?;
    let number = |key: &str, default: u64| -> Result<u64, ApiError> {
        query.get(key).map_or(Ok(default), |v| {
            v.parse().map_err(|_| {
                bad_request(format!(
                    "invalid `{key}` {v:?}: expected a non-negative integer"
                ))
            })
        })
    };
    let limit = number("limit", 100)? as usize;
    let since = number("since", 0)?;
    let list: Vec<Value> = app
        .broker
        .history(filter.as_str(), limit, since)
        .into_iter()
        .filter(|e| caller.can_read(auth, &e.topic))
        .map(|e| {
            let (payload, encoding) = payload_json(&e.payload);
            json!({
                "topic": &*e.topic,
                "payload": payload,
                "payload_encoding": encoding,
                "timestamp_ms": e.timestamp_ms,
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

/// `GET /api/v1/cluster`, for admins: this node and its state (`up`, `disconnected` from
/// NATS, or `cut off`: taking no clients), and every node whose lease is live, with where it
/// serves and how many clients it has. 404 when not in cluster mode; 503, saying this node's
/// state, when the leases cannot be read.
pub(super) async fn cluster(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, Response> {
    caller
        .require_admin()
        .map_err(IntoResponse::into_response)?;
    let Some(cluster) = &app.cluster else {
        let off = "cluster mode is off: [cluster] nats is not set".to_owned();
        return Err(ApiError(StatusCode::NOT_FOUND, off).into_response());
    };
    let state = cluster.leases().link().state();
    if state != "up" {
        // Not asked: NATS would not answer before the request's timeout.
        let why = format!("this node is {state} from the cluster's NATS servers");
        return Err(ApiError(StatusCode::SERVICE_UNAVAILABLE, why).into_response());
    }
    let nodes = cluster.leases().nodes().await.map_err(|e| {
        let why = format!("cannot read the node leases from NATS: {e}");
        ApiError(StatusCode::SERVICE_UNAVAILABLE, why).into_response()
    })?;
    let nodes: Vec<Value> = nodes
        .into_iter()
        .map(|n| {
            json!({
                "node": n.node,
                "state": "up",
                "mqtt": n.mqtt.to_string(),
                "http": n.http.to_string(),
                "clients": n.clients,
                "renewed_unix_ms": n.renewed_unix_ms,
            })
        })
        .collect();
    Ok(Json(
        json!({ "this_node": cluster.leases().node(), "this_node_state": state, "nodes": nodes }),
    ))
}

/// `GET /config.json`: what the web app needs to know about its gateway.
pub(super) async fn web_config(State(app): State<AppState>) -> Json<Value> {
    Json(json!({
        "tile_url": app.web.tile_url,
        "tile_attribution": app.web.tile_attribution,
        "ws_path": app.websocket.paths.first().map_or("/mqtt", String::as_str),
        "history_filters": app.history_filters.as_slice(),
        // The map shows its sign-in form when anonymous clients are not let in.
        "auth_required": !app.broker.authorizer().anonymous_allowed(),
    }))
}

/// The JSON body of `POST /api/v1/publish`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishRequest {
    topic: String,
    #[serde(default)]
    payload: String,
    /// `utf8` (default) or `base64`.
    #[serde(default)]
    payload_encoding: Option<String>,
    #[serde(default)]
    qos: u8,
    #[serde(default)]
    retain: bool,
}

/// `POST /api/v1/publish`: a JSON body `{topic, payload, qos, retain}`, or
/// any other body as the raw payload with `?topic=..&qos=..&retain=..`.
pub(super) async fn publish(
    State(app): State<AppState>,
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    let (topic, payload, qos, retain) = if is_json {
        let req: PublishRequest = serde_json::from_slice(&body)
            .map_err(|e| bad_request(format!("invalid JSON body: {e}")))?;
        let payload = match req.payload_encoding.as_deref() {
            None | Some("utf8") => Bytes::from(req.payload),
            Some("base64") => Bytes::from(
                BASE64
                    .decode(req.payload.as_bytes())
                    .map_err(|e| bad_request(format!("payload is not valid base64: {e}")))?,
            ),
            Some(other) => {
                return Err(bad_request(format!(
                    "unknown payload_encoding {other:?}: use utf8 or base64"
                )))
            }
        };
        (req.topic, payload, req.qos, req.retain)
    } else {
        let topic = query
            .get("topic")
            .cloned()
            .ok_or_else(|| bad_request("missing `topic` query parameter (or send a JSON body)"))?;
        let qos = match query.get("qos") {
            None => 0,
            Some(q) => q
                .parse()
                .map_err(|_| bad_request(format!("invalid qos {q:?}")))?,
        };
        let retain = match query.get("retain").map(String::as_str) {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(r) => {
                return Err(bad_request(format!(
                    "invalid retain {r:?}: use true or false"
                )))
            }
        };
        (topic, body, qos, retain)
    };
    let topic = TopicName::new(ByteString::from(topic))
        .map_err(|e| bad_request(format!("invalid topic: {e}")))?;
    if topic.starts_with("$SYS") {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "`$SYS` topics belong to the broker".to_owned(),
        ));
    }
    if !caller.can_publish(&app, &topic) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("the ACL does not let you publish on {:?}", &*topic),
        ));
    }
    let qos = match qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        2 => QoS::ExactlyOnce,
        q => return Err(bad_request(format!("invalid qos {q}: use 0, 1 or 2"))),
    };
    if payload.len() > app.broker.config().max_packet_size as usize {
        return Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload exceeds the maximum packet size".to_owned(),
        ));
    }
    let delivered = app
        .broker
        .publish_server(topic.into_inner(), payload, qos, retain);
    Ok(Json(json!({ "delivered": delivered })))
}
