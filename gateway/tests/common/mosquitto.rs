//! mosquitto_pub and mosquitto_sub (Debian `mosquitto-clients`) as child
//! processes: killed when dropped, their output read line by line with a
//! bound on every wait. A missing binary fails the test with a message
//! saying what to install; CI installs it, so these tests never skip.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use super::{within, within_for};

/// The path of `name` on PATH, if it is there.
fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The path of a mosquitto client binary; panics if it is not installed.
pub(crate) fn binary(name: &str) -> PathBuf {
    find(name).unwrap_or_else(|| {
        panic!(
            "`{name}` is not on PATH: these interop tests need the Debian package \
             `mosquitto-clients` (`apt-get install mosquitto-clients`; `cargo xtask test` \
             installs it)"
        )
    })
}

/// A running mosquitto client.
pub(crate) struct Process {
    name: String,
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Process {
    /// Starts `name` with `args`, its stdout piped for [`Process::line`].
    ///
    /// mosquitto_sub flushes its output after each message but not after
    /// its debug lines, which a pipe would hold back; coreutils' `stdbuf`
    /// (on every Debian system) makes stdout line-buffered.
    pub(crate) fn spawn(name: &str, args: &[&str]) -> Self {
        let program = binary(name);
        let mut command = match find("stdbuf") {
            Some(stdbuf) => {
                let mut c = Command::new(stdbuf);
                c.arg("-oL").arg(program);
                c
            }
            None => Command::new(program),
        };
        let mut child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        Self {
            name: name.to_owned(),
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// The next line of output; panics at end of output or after the bound.
    pub(crate) async fn line(&mut self) -> String {
        let what = format!("a line of output from {}", self.name);
        match within(&what, self.lines.next_line()).await {
            Ok(Some(line)) => line,
            Ok(None) => panic!("{} exited before printing the expected line", self.name),
            Err(e) => panic!("reading {} output: {e}", self.name),
        }
    }

    /// Reads lines until one contains `needle` (debug output is skipped).
    pub(crate) async fn line_containing(&mut self, needle: &str) -> String {
        loop {
            let line = self.line().await;
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Lines of output that start with `prefix`, skipping the rest (the
    /// `-d` debug lines), until `n` were read.
    pub(crate) async fn lines_with_prefix(&mut self, prefix: &str, n: usize) -> Vec<String> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let line = self.line().await;
            if let Some(rest) = line.strip_prefix(prefix) {
                out.push(rest.to_owned());
            }
        }
        out
    }

    /// Waits for the process to exit by itself and asserts it succeeded.
    pub(crate) async fn success(mut self) {
        let what = format!("{} to exit", self.name);
        let status = within(&what, self.child.wait())
            .await
            .expect("wait for child");
        assert!(status.success(), "{} failed: {status}", self.name);
    }

    /// Kills the process at once (SIGKILL: no DISCONNECT is sent).
    pub(crate) async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = within_for(
            Duration::from_secs(5),
            "killed child to exit",
            self.child.wait(),
        )
        .await;
    }
}

/// Runs mosquitto_pub with `args` to completion and asserts it succeeded.
pub(crate) async fn publish(port: u16, args: &[&str]) {
    let port = port.to_string();
    let mut all = vec!["-h", "127.0.0.1", "-p", &port];
    all.extend_from_slice(args);
    Process::spawn("mosquitto_pub", &all).success().await;
}

/// Starts mosquitto_sub with `args` and debug output on, and returns it
/// once the broker acknowledged its subscriptions (`received SUBACK`).
/// Messages are printed as `MSG <topic> <payload>`, see [`MSG_FORMAT`].
pub(crate) async fn subscribe(port: u16, args: &[&str]) -> Process {
    let port = port.to_string();
    let mut all = vec!["-h", "127.0.0.1", "-p", &port, "-d", "-F", MSG_FORMAT];
    all.extend_from_slice(args);
    let mut sub = Process::spawn("mosquitto_sub", &all);
    sub.line_containing("received SUBACK").await;
    sub
}

/// mosquitto_sub's output format for a message: a marker, the retain flag,
/// the QoS, the topic and the payload.
pub(crate) const MSG_FORMAT: &str = "MSG r=%r q=%q %t %p";
