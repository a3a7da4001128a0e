//! The browser client's tests against a real gateway: `wasm-bindgen-test` in headless
//! Chromium, and the packed npm package under Node's test runner (Node and Playwright).
//!
//! Tests in the browser cannot start processes, so this module starts the gateway (`aviary` on
//! port 0) and a tiny HTTP supervisor that restarts it on the same ports when a test asks
//! (`GET /restart`), and passes both addresses to the wasm tests at compile time
//! (`AVIARY_WS_URL`, `AVIARY_CONTROL_URL`). Readiness is the gateway's `listening` line, and
//! every wait is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use crate::cmd::Cmd;
use crate::npm;
use crate::tools::{npm_projects, CHROMEDRIVER, CHROMIUM, WASM_TARGET};
use crate::workspace::Workspace;

/// A gateway process and the addresses it listens on.
struct Gateway {
    child: Child,
    mqtt: String,
    http: String,
}

impl Gateway {
    /// Starts `binary` on the given addresses (port 0 for any) and waits for its `listening`
    /// line (at most 30 s).
    fn start(binary: &Path, data_dir: &Path, mqtt: &str, http: &str) -> Result<Self> {
        let mut child = Cmd::new(binary.display().to_string())
            .args(["--mqtt", mqtt, "--http", http, "--data-dir"])
            .arg(data_dir.display().to_string())
            .to_command()
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("could not start {}", binary.display()))?;
        let stdout = child.stdout.take().context("gateway stdout")?;
        let (tx, rx) = mpsc::channel();
        // Keep draining stdout after the listening line, or the gateway blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addrs) = listening(&line) {
                    let _ = tx.send(addrs);
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok((mqtt, http)) => Ok(Self { child, mqtt, http }),
            Err(_) => {
                let _ = child.kill();
                bail!("the gateway did not log its `listening` line within 30 s")
            }
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `(mqtt, http)` from a line containing `listening mqtt=ADDR http=ADDR`.
fn listening(line: &str) -> Option<(String, String)> {
    let rest = &line[line.find("listening ")?..];
    let field = |key: &str| {
        rest.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .map(str::to_owned)
    };
    Some((field("mqtt=")?, field("http=")?))
}

/// The gateway plus an HTTP endpoint that restarts it: `GET /restart` answers once the new
/// process is listening again on the same ports.
struct Supervisor {
    gateway: Arc<Mutex<Gateway>>,
    control: String,
}

impl Supervisor {
    fn start(binary: PathBuf, data_dir: PathBuf) -> Result<Self> {
        let gateway = Gateway::start(&binary, &data_dir, "127.0.0.1:0", "127.0.0.1:0")?;
        let gateway = Arc::new(Mutex::new(gateway));
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let control = format!("http://{}", listener.local_addr()?);
        let shared = gateway.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let mut stream = stream;
                let mut buf = [0u8; 1024];
                let n = stream.read(&mut buf).unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let ok =
                    request.starts_with("GET /restart") && restart(&shared, &binary, &data_dir);
                let status = if ok {
                    "200 OK"
                } else {
                    "500 Internal Server Error"
                };
                // CORS: the test page is served by wasm-bindgen-test-runner on another port.
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nAccess-Control-Allow-Origin: *\r\n\
                     Content-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Ok(Self { gateway, control })
    }

    fn ws_url(&self) -> String {
        let http = self
            .gateway
            .lock()
            .map(|g| g.http.clone())
            .unwrap_or_default();
        format!("ws://{http}/mqtt")
    }
}

impl Drop for Supervisor {
    /// The control thread holds the gateway too (it restarts it), and outlives us: stop the
    /// process here, or it would run on after the tests.
    fn drop(&mut self) {
        if let Ok(mut gateway) = self.gateway.lock() {
            gateway.stop();
        }
    }
}

fn restart(gateway: &Mutex<Gateway>, binary: &Path, data_dir: &Path) -> bool {
    let Ok(mut g) = gateway.lock() else {
        return false;
    };
    g.stop();
    let (mqtt, http) = (g.mqtt.clone(), g.http.clone());
    match Gateway::start(binary, data_dir, &mqtt, &http) {
        Ok(new) => {
            *g = new;
            true
        }
        Err(err) => {
            eprintln!("==> gateway restart failed: {err:#}");
            false
        }
    }
}

/// A fresh scratch directory under `target/`.
fn scratch(ws: &Workspace, name: &str) -> Result<PathBuf> {
    let dir = ws.path(&format!("target/{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Builds the gateway binary the tests run.
pub(crate) fn build_gateway(ws: &Workspace) -> Result<PathBuf> {
    ws.cargo_locked(["build", "-p", "aviary", "--bin", "aviary"])
        .run()?;
    Ok(ws.target("debug/aviary"))
}

/// `cargo test --target wasm32-unknown-unknown` of the client, in headless Chromium, against
/// a supervised gateway.
pub(crate) fn wasm_tests(ws: &Workspace) -> Result<()> {
    let binary = build_gateway(ws)?;
    let supervisor = Supervisor::start(binary, scratch(ws, "wasm-client-test-data")?)?;
    // The runner stops chromedriver without letting it clean up: Chromium's profile and
    // singleton folders, made in the temporary directory, stayed in /tmp after every run.
    // Here they go in one folder of our own, removed afterwards.
    let tmp = scratch(ws, "wasm-client-test-tmp")?;
    let result = ws
        .cargo_locked([
            "test",
            "-p",
            "aviary-wasm-client",
            "--target",
            WASM_TARGET,
            "--tests",
        ])
        .env("AVIARY_WS_URL", supervisor.ws_url())
        .env("AVIARY_CONTROL_URL", supervisor.control.clone())
        .env("CHROMEDRIVER", CHROMEDRIVER.binary)
        .env("TMPDIR", tmp.display().to_string())
        .run();
    drop(supervisor);
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// Packs the npm package, installs the tarball into the test project `wasm-client/npm-tests`
/// and runs its Node and Playwright tests with `node --test`.
pub(crate) fn npm_tests(ws: &Workspace) -> Result<()> {
    let binary = build_gateway(ws)?;
    let project = prepare_npm_project(ws)?;
    node_tests(&binary, &project)
}

/// Runs a test project's `node --test` suites one file at a time, against the gateway
/// `binary`, with Playwright on the system's Chromium.
pub(crate) fn node_tests(binary: &std::path::Path, project: &std::path::Path) -> Result<()> {
    Cmd::new("node")
        .args(["--test", "--test-concurrency=1", "test/"])
        .env("AVIARY_BIN", binary.display().to_string())
        .env("CHROMIUM", CHROMIUM.binary)
        .dir(project)
        .run()
}

/// Packs the package and installs it, from the tarball, into `wasm-client/npm-tests` (whose
/// own dependencies — ws, MQTT.js, playwright-core — are pinned there and installed by the
/// caller's prerequisites). Returns the project.
pub(crate) fn prepare_npm_project(ws: &Workspace) -> Result<PathBuf> {
    install_package(ws, npm_projects::NPM_TESTS)
}

/// Packs the package and installs the tarball into the Node project `project` (relative to the
/// workspace root) without touching its lockfile. Returns the project's path.
pub(crate) fn install_package(ws: &Workspace, project: &str) -> Result<PathBuf> {
    let built = npm::build(ws)?;
    npm::report(&built);
    let project = ws.path(project);
    // The package under test, exactly as a user would get it: from the packed tarball.
    Cmd::new("npm")
        .args(["install", "--no-save", "--no-audit", "--no-fund"])
        .arg(built.tarball.display().to_string())
        .dir(&project)
        .run()?;
    Ok(project)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_listening_line() {
        let line = "2026-01-01T00:00:00Z  INFO aviary::server: listening mqtt=127.0.0.1:1 http=127.0.0.1:2";
        assert_eq!(
            listening(line),
            Some(("127.0.0.1:1".to_owned(), "127.0.0.1:2".to_owned()))
        );
        assert_eq!(listening("starting"), None);
    }
}
