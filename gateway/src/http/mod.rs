//! The HTTP side of the gateway, one axum router: the web app at `/`,
//! MQTT over WebSocket at the configured paths, `/healthz`, `/metrics`
//! and the REST API under `/api/v1`.

mod api;
mod caller;
mod files;
mod metrics;
mod serve;
mod ws;

use std::path::PathBuf;
use std::sync::Arc;

use axum::routing::{any, get, post};
use axum::Router;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;
use crate::config::{WebConfig, WebSocketConfig};
pub use serve::HttpServer;
pub use ws::HandshakeFailures;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The broker.
    pub broker: Broker,
    /// WebSocket settings.
    pub websocket: Arc<WebSocketConfig>,
    /// Counters of refused WebSocket handshakes.
    pub handshake_failures: Arc<HandshakeFailures>,
    /// Where the web app's files are.
    pub static_dir: PathBuf,
    /// What the web app is told in `/config.json`.
    pub web: Arc<WebConfig>,
    /// Filters the gateway keeps history for.
    pub history_filters: Arc<Vec<String>>,
    /// WebSocket connections are tracked here so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// Fires at shutdown.
    pub shutdown: CancellationToken,
    /// This node's link to the others, in cluster mode.
    pub(crate) cluster: Option<Arc<crate::cluster::Node>>,
}

/// The gateway's HTTP router.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .route(
            "/metrics",
            get(metrics::render).route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                caller::metrics_gate,
            )),
        )
        .route("/api/v1/clients", get(api::clients))
        .route("/api/v1/retained", get(api::retained))
        .route("/api/v1/publish", post(api::publish))
        .route("/api/v1/history", get(api::history))
        .route("/api/v1/cluster", get(api::cluster))
        .route("/config.json", get(api::web_config))
        // Everything under /api is the API: an unknown path or a wrong
        // method there gets a JSON error, never a static file or an empty body.
        .route("/api", any(api::not_found))
        .route("/api/", any(api::not_found))
        .route("/api/{*rest}", any(api::not_found))
        .method_not_allowed_fallback(api::method_not_allowed);
    for path in &state.websocket.paths {
        router = router.route(path, any(ws::upgrade));
    }
    files::serve(router, &state.static_dir).with_state(state)
}
