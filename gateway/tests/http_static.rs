//! The web app's static files over real HTTP: `index.html` at `/`, MIME
//! types (`.wasm` is `application/wasm`), precompressed `.gz` siblings
//! and on-the-fly gzip, cache headers, files never shadowing the gateway's
//! own routes, and the page shown while the app is not built.

mod common;
mod ws_common;

use std::path::Path;

use axum::http::StatusCode;
use serde_json::json;
use ws_common::Gw;

/// A gzip member holding `data` in one stored (uncompressed) deflate block:
/// a real `.gz` file without a compression library.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(data.len()).expect("small fixture");
    let mut out = vec![0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF];
    out.push(1); // final block, stored
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    out.extend_from_slice(&(!crc).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

const INDEX: &str = "<!doctype html><title>Pets</title><h1>the built web app</h1>";
const APP_JS: &str = "console.log('the app, not precompressed');";
const APP_JS_GZ: &str = "console.log('the app, precompressed');";

fn write_site(dir: &Path) {
    std::fs::write(dir.join("index.html"), INDEX).unwrap();
    std::fs::write(dir.join("app.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dir.join("app.js"), APP_JS).unwrap();
    std::fs::write(dir.join("app.js.gz"), gzip_stored(APP_JS_GZ.as_bytes())).unwrap();
    std::fs::write(dir.join("styles.css"), "body { margin: 0 }\n".repeat(100)).unwrap();
}

#[tokio::test]
async fn static_files_are_served() {
    let site = tempfile::tempdir().unwrap();
    write_site(site.path());
    let dir = site.path().to_owned();
    let gw = Gw::start_with(|c| c.http.static_dir = dir).await;
    let http = gw.http();

    for path in ["/", "/index.html"] {
        let r = http.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.text(), INDEX, "{path}");
        assert!(
            r.header("content-type").unwrap().starts_with("text/html"),
            "{path}"
        );
        assert!(
            r.header("cache-control").is_some(),
            "{path}: no cache-control"
        );
    }
    let r = http.get("/app.wasm").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/wasm"));
    assert_eq!(&r.body[..], b"\0asm\x01\0\0\0");
    assert!(r.header("cache-control").is_some());

    // Without Accept-Encoding: the plain file.
    let r = http.get("/app.js").await;
    assert_eq!(r.text(), APP_JS);
    assert_eq!(r.header("content-encoding"), None);
    assert!(r.header("content-type").unwrap().contains("javascript"));
    // With gzip accepted: the precompressed sibling, as it is on disk.
    let gz = [("accept-encoding", "gzip")];
    let r = http.get_with("/app.js", &gz).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(&r.body[..], gzip_stored(APP_JS_GZ.as_bytes()));
    assert!(r.header("content-type").unwrap().contains("javascript"));
    assert!(r.header("cache-control").is_some());
    // No sibling: compressed on the fly.
    let r = http.get_with("/styles.css", &gz).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(&r.body[..2], [0x1F, 0x8B]);
    assert!(r.body.len() < 1900, "compressed: {} bytes", r.body.len());

    assert_eq!(http.get("/missing.txt").await.status, StatusCode::NOT_FOUND);
    // The files never shadow the gateway's own routes.
    assert_eq!(http.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(http.get("/api/v1/clients").await.json(), json!([]));
}

#[tokio::test]
async fn unbuilt_web_app_explains_how_to_build_it() {
    let gw = Gw::start().await;
    let r = gw.http().get("/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text().contains("cargo xtask demo"), "{}", r.text());
    assert_eq!(gw.http().get("/app.js").await.status, StatusCode::NOT_FOUND);
}
