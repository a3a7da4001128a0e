//! The web app's files from `static/`: correct MIME types (`.wasm` is
//! `application/wasm`), precompressed `.br`/`.gz` siblings when present,
//! gzip on the fly otherwise, and cache headers that make browsers
//! revalidate instead of running a stale app. Until the app is built, `/`
//! explains how to build it.

use std::path::Path;

use axum::http::{header, HeaderValue};
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use super::AppState;

/// The page served at `/` when `static/index.html` does not exist.
const NOT_BUILT: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Aviary</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 3em auto">
<h1>Aviary is running</h1>
<p>The MQTT broker is up: devices connect over TCP, browsers over WebSocket at <code>/mqtt</code>.</p>
<p>The web app has not been built yet. Build it and start the demo with:</p>
<pre>cargo xtask demo</pre>
<p>Meanwhile: <a href="/healthz">/healthz</a>, <a href="/metrics">/metrics</a>,
<a href="/api/v1/clients">/api/v1/clients</a>, <a href="/api/v1/retained">/api/v1/retained</a>.</p>
</body></html>
"#;

/// Adds the static files to `router` as its fallback.
pub(super) fn serve(router: Router<AppState>, dir: &Path) -> Router<AppState> {
    // The layers wrap only the files: compression and caching must not
    // touch WebSocket upgrades or the API.
    let files = Router::new()
        .fallback_service(ServeDir::new(dir).precompressed_br().precompressed_gzip())
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .layer(CompressionLayer::new());
    let router = if dir.join("index.html").is_file() {
        router
    } else {
        router.route("/", get(|| async { Html(NOT_BUILT) }))
    };
    router.fallback_service(files)
}
