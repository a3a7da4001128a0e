//! TLS files and the real `aviary` binary: SIGHUP swaps in new
//! certificates without dropping an open connection, and a bad file stops
//! the start with a message naming it.

mod common;
mod tls_common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::process::{self, GatewayProcess};
use common::within;
use tls_common::{client_config, tls_connect, Ca, Mqtt};

/// A config file with `[tls]` naming `cert` and `key`.
fn config(dir: &Path, cert: &Path, key: &Path) -> PathBuf {
    let text = format!(
        "[tls]\ncertfile = {:?}\nkeyfile = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    tls_common::write(dir, "aviary.toml", &text)
}

#[tokio::test]
async fn sighup_swaps_certificates_and_keeps_open_connections() {
    let dir = tempfile::tempdir().expect("temporary dir");
    let old_ca = Ca::new("old CA");
    let (cert, key) = old_ca.server().write(dir.path(), "server");
    let cfg = config(dir.path(), &cert, &key);
    let data = dir.path().join("data");
    let args = [
        "--config",
        cfg.to_str().expect("UTF-8"),
        "--mqtts",
        "127.0.0.1:0",
    ];
    let gw = GatewayProcess::start(&data, &args).await;
    let mqtts = gw.mqtts.expect("the gateway logs its mqtts address");

    let stream = tls_connect(mqtts, client_config(&old_ca.pem, None))
        .await
        .expect("TLS with the old certificate");
    let mut open = Mqtt::over_tls(stream);
    open.connect_ok("kept").await;
    open.subscribe("reload/#").await;

    // New files from a new CA, then SIGHUP.
    let new_ca = Ca::new("new CA");
    new_ca.server().write(dir.path(), "server");
    gw.signal("HUP");

    // New handshakes see the new certificate once the signal is handled.
    let trusts_new = client_config(&new_ca.pem, None);
    let stream = within("a handshake with the new certificate", async {
        loop {
            match tls_connect(mqtts, trusts_new.clone()).await {
                Ok(stream) => break stream,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    let mut fresh = Mqtt::over_tls(stream);
    fresh.connect_ok("fresh").await;
    let e = tls_connect(mqtts, client_config(&old_ca.pem, None))
        .await
        .expect_err("the old certificate is still served");
    assert!(
        e.contains("UnknownIssuer") || e.contains("certificate"),
        "{e}"
    );

    // The connection opened before the reload still works both ways.
    fresh.publish("reload/1", b"after").await;
    assert_eq!(
        open.recv_publish().await,
        ("reload/1".to_owned(), b"after".to_vec())
    );
    open.publish("reload/2", b"still here").await;
    assert_eq!(
        open.recv_publish().await,
        ("reload/2".to_owned(), b"still here".to_vec())
    );
    gw.stop().await;
}

/// Starts the binary with `[tls]` naming `cert` and `key` and an mqtts
/// listener, expecting it to refuse; returns what it printed.
async fn refused_with(dir: &Path, cert: &Path, key: &Path) -> String {
    let cfg = config(dir, cert, key);
    let args = [
        "--config",
        cfg.to_str().expect("UTF-8"),
        "--mqtts",
        "127.0.0.1:0",
    ];
    process::refused(&dir.join("data"), &args).await
}

#[tokio::test]
async fn bad_tls_files_stop_the_start_naming_the_file() {
    let dir = tempfile::tempdir().expect("temporary dir");
    let ca = Ca::new("CA");
    let (cert, key) = ca.server().write(dir.path(), "server");
    let (_, other_key) = ca.server().write(dir.path(), "other");

    let out = refused_with(dir.path(), &cert, &other_key).await;
    assert!(out.contains("does not match"), "{out}");
    assert!(
        out.contains("other.key") && out.contains("server.pem"),
        "{out}"
    );

    let missing = dir.path().join("missing.pem");
    let out = refused_with(dir.path(), &missing, &key).await;
    assert!(
        out.contains("tls.certfile") && out.contains("missing.pem"),
        "{out}"
    );

    let garbage = tls_common::write(dir.path(), "garbage.pem", "not a certificate\n");
    let out = refused_with(dir.path(), &garbage, &key).await;
    assert!(
        out.contains("garbage.pem") && out.contains("no PEM certificate"),
        "{out}"
    );
    let out = refused_with(dir.path(), &cert, &garbage).await;
    assert!(
        out.contains("garbage.pem") && out.contains("no PEM private key"),
        "{out}"
    );
}
