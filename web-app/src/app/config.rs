//! What the gateway tells the app in `GET /config.json`, and where the broker is.

use serde::Deserialize;

use super::browser::{query_param, window};

/// `/config.json`; any missing field takes its default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct WebConfig {
    /// Slippy map tile URL template, `{z}/{x}/{y}`.
    pub(crate) tile_url: String,
    /// The tiles' attribution (HTML).
    pub(crate) tile_attribution: String,
    /// The WebSocket path of MQTT on this origin.
    pub(crate) ws_path: String,
    /// Topic filters the gateway keeps history for.
    pub(crate) history_filters: Vec<String>,
    /// Whether anonymous clients are refused: then the app asks the user to sign in first.
    pub(crate) auth_required: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            tile_url: "https://tile.openstreetmap.org/{z}/{x}/{y}.png".to_owned(),
            tile_attribution: "&copy; OpenStreetMap contributors".to_owned(),
            ws_path: "/mqtt".to_owned(),
            history_filters: Vec::new(),
            auth_required: false,
        }
    }
}

impl WebConfig {
    /// The broker's WebSocket URL: `?broker=` if the page has one, else this origin's
    /// `ws_path` (`wss:` on an `https:` page).
    pub(crate) fn broker_url(&self) -> String {
        if let Some(url) = query_param("broker").filter(|url| !url.is_empty()) {
            return url;
        }
        let location = window().location();
        let scheme = match location.protocol().as_deref() {
            Ok("https:") => "wss",
            _ => "ws",
        };
        let host = location.host().unwrap_or_default();
        format!("{scheme}://{host}{}", self.ws_path)
    }
}
