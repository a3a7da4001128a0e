//! The real `aviary` binary as a child process, for what an in-process gateway cannot show: a
//! `kill -9` and a restart on the same data dir, and refusals at start (exit status and message).
//!
//! Readiness is the gateway's `listening mqtt=… http=…` line; every wait is bounded.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use super::within_for;

/// How long a gateway may take to start, recovery included.
const START: Duration = Duration::from_secs(30);

/// How many of its last output lines a gateway process keeps for [`GatewayProcess::said`].
const KEPT_LINES: usize = 200;

/// A running gateway process; killed (SIGKILL) when dropped.
pub(crate) struct GatewayProcess {
    child: Child,
    /// Its last output lines (its log), kept by a task that reads them.
    lines: Arc<Mutex<VecDeque<String>>>,
    /// Wakes at each line.
    new_line: Arc<tokio::sync::Notify>,
    /// MQTT over TCP.
    pub(crate) mqtt: SocketAddr,
    /// HTTP (web app, WebSocket, API).
    pub(crate) http: SocketAddr,
    /// MQTT over TLS, when asked for (`--mqtts`).
    pub(crate) mqtts: Option<SocketAddr>,
}

/// `aviary --mqtt 127.0.0.1:0 --http 127.0.0.1:0 --data-dir DIR ARGS...`.
fn command(data_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aviary"));
    cmd.args([
        "--mqtt",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(data_dir)
    .args(args)
    .env("NO_COLOR", "1")
    .env("RUST_LOG", "info")
    .stdin(Stdio::null())
    .kill_on_drop(true);
    cmd
}

impl GatewayProcess {
    /// Starts the gateway on `data_dir` and waits for its `listening` line.
    pub(crate) async fn start(data_dir: &Path, args: &[&str]) -> Self {
        let mut child = command(data_dir, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the aviary binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (mqtt, http, mqtts) = within_for(START, "the gateway's `listening` line", async {
            loop {
                let line = lines
                    .next_line()
                    .await
                    .expect("read gateway output")
                    .expect("the gateway exited before listening");
                if let Some((mqtt, http)) = listening(&line) {
                    break (mqtt, http, address(&line, "mqtts="));
                }
            }
        })
        .await;
        // Keep draining, or the gateway would block on a full pipe.
        let kept = Arc::new(Mutex::new(VecDeque::new()));
        let keeping = kept.clone();
        let new_line = Arc::new(tokio::sync::Notify::new());
        let waking = new_line.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut kept = keeping.lock().expect("the kept lines");
                if kept.len() == KEPT_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
                waking.notify_waiters();
            }
        });
        Self {
            child,
            lines: kept,
            new_line,
            mqtt,
            http,
            mqtts,
        }
    }

    /// The process id, which a refusal to share the data dir should name.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id().expect("the gateway is running")
    }

    /// Waits up to `within` until the gateway has printed, in this order, a line with each
    /// of `texts`: those lines.
    pub(crate) async fn said(&self, texts: &[&str], within: Duration) -> Vec<String> {
        let what = format!("the gateway to say {texts:?}");
        within_for(within, &what, async {
            loop {
                let next = self.new_line.notified();
                if let Some(found) = in_order(&self.lines.lock().expect("the kept lines"), texts) {
                    return found;
                }
                next.await;
            }
        })
        .await
    }

    /// Sends SIGTERM and waits for a graceful exit (connections closed, store flushed).
    pub(crate) async fn stop(mut self) {
        let pid = self.pid().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let status = within_for(START, "the gateway to stop on SIGTERM", self.child.wait())
            .await
            .expect("wait for the gateway");
        assert!(status.success(), "the gateway stopped with {status}");
    }

    /// Sends SIGKILL and waits for the process to be gone: no shutdown code runs.
    pub(crate) async fn kill9(mut self) {
        self.child.start_kill().expect("SIGKILL the gateway");
        within_for(START, "the killed gateway to exit", self.child.wait())
            .await
            .expect("wait for the gateway");
    }
}

/// The lines of `lines` that hold each of `texts`, in that order, if all do.
fn in_order(lines: &VecDeque<String>, texts: &[&str]) -> Option<Vec<String>> {
    let mut rest = lines.iter();
    texts
        .iter()
        .map(|text| rest.find(|l| l.contains(text)).cloned())
        .collect()
}

/// Runs the gateway on `data_dir` expecting it to refuse to start: returns everything it
/// printed, after checking it exited with a failure status.
pub(crate) async fn refused(data_dir: &Path, args: &[&str]) -> String {
    let mut child = command(data_dir, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the aviary binary");
    let (mut out, mut err) = (String::new(), String::new());
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let status = within_for(START, "the gateway to refuse and exit", async {
        let _ = tokio::join!(
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err)
        );
        child.wait().await.expect("wait for the gateway")
    })
    .await;
    let printed = out + &err;
    assert!(!status.success(), "the gateway started: {printed}");
    printed
}

/// `(mqtt, http)` from a line containing `listening mqtt=ADDR http=ADDR`.
fn listening(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    line.find("listening ")?;
    Some((address(line, "mqtt=")?, address(line, "http=")?))
}

/// The address after `key` (like `mqtts=`) in a `listening` line.
fn address(line: &str, key: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening ")?..];
    rest.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .and_then(|a| a.parse().ok())
}

impl GatewayProcess {
    /// Sends a signal (`HUP`, `TERM`…) with `kill`, as an operator would.
    pub(crate) fn signal(&self, name: &str) {
        let pid = self.pid().to_string();
        let sent = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{name} {pid} failed");
    }
}
