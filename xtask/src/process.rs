//! Servers that `cargo xtask` runs in the background (nats-server, the gateway) and must stop:
//! each child writes its output to a log file, is waited for with bounded polls, and is stopped
//! with SIGTERM, a grace period, then SIGKILL, and always reaped.
//!
//! Every child runs in its own process group, so the terminal's Ctrl-C reaches xtask alone and
//! xtask picks the order of the stops (gateways before the NATS servers they are connected to);
//! with one group, every process would get SIGINT at the same moment. The price: a child
//! outlives an xtask killed with SIGKILL, which has no chance to stop it.

use std::fs::{self, File};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use rustix::process::{kill_process, Pid, Signal};

use crate::cmd::Cmd;

/// How often a wait looks again (at a log file, a health endpoint, a child's exit status).
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// How many log lines an error quotes from a process that failed.
const TAIL_LINES: usize = 20;

/// A running child process with its output in a log file. Dropping it SIGKILLs and reaps it,
/// so an error half-way through a start leaves nothing behind; [`stop_all`] is the polite way.
#[derive(Debug)]
pub(crate) struct Process {
    name: String,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    /// Starts `cmd` as `name` with its stdout and stderr in `log` (truncated first), its stdin
    /// closed and in a process group of its own.
    pub(crate) fn spawn(name: &str, cmd: &Cmd, log: &Path) -> Result<Self> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone().context("duplicating a log file handle")?;
        cmd.echo();
        let child = cmd
            .to_command()
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .with_context(|| cmd.spawn_error())?;
        Ok(Self {
            name: name.to_owned(),
            log: log.to_owned(),
            child: Some(child),
        })
    }

    /// The log file's text so far (empty if it cannot be read).
    pub(crate) fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `Err` naming the process, its exit status and its last log lines once it has exited;
    /// `Ok` while it runs.
    pub(crate) fn check_running(&mut self) -> Result<()> {
        match self.exit_status() {
            None => Ok(()),
            Some(status) => bail!(
                "{} exited ({status}); the end of {}:\n{}",
                self.name,
                self.log.display(),
                tail(&self.output(), TAIL_LINES)
            ),
        }
    }

    /// `err`, a failed wait for this process, with the end of its log when it still runs
    /// (the error of one that exited already quotes it).
    pub(crate) fn explain(&mut self, err: anyhow::Error) -> anyhow::Error {
        if self.exit_status().is_some() {
            return err;
        }
        anyhow!(
            "{err:#}; the end of {}:\n{}",
            self.log.display(),
            tail(&self.output(), TAIL_LINES)
        )
    }

    /// The exit status, once it has exited (and been reaped).
    fn exit_status(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        child.try_wait().ok().flatten()
    }

    /// Sends `signal` unless it has already exited.
    fn signal(&mut self, signal: Signal) {
        if self.exit_status().is_none() {
            if let Some(child) = &self.child {
                // Only fails if it exited since: nothing left to signal.
                let _ = kill_process(Pid::from_child(child), signal);
            }
        }
    }

    /// SIGKILLs it if it still runs, and reaps it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Stops the processes together: SIGTERM to each, up to `grace` for all of them to exit, then
/// SIGKILL for any still running. Every one is reaped on return.
pub(crate) fn stop_all<'a>(processes: impl IntoIterator<Item = &'a mut Process>, grace: Duration) {
    let mut processes: Vec<&mut Process> = processes.into_iter().collect();
    for process in &mut processes {
        process.signal(Signal::TERM);
    }
    let deadline = Instant::now() + grace;
    for process in processes {
        while process.exit_status().is_none() && Instant::now() < deadline {
            thread::sleep(POLL / 4);
        }
        if process.exit_status().is_none() {
            eprintln!(
                "==> {} did not stop within {grace:?} of SIGTERM: killing it",
                process.name
            );
        }
        process.kill();
    }
}

/// Ctrl-C (SIGINT) or SIGTERM to xtask, caught rather than fatal from [`Interrupt::catch`] on,
/// so whatever is running can be stopped in order.
#[derive(Debug, Clone)]
pub(crate) struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Starts catching SIGINT and SIGTERM.
    pub(crate) fn catch() -> Result<Self> {
        let flag = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(signal, Arc::clone(&flag))
                .context("installing a Ctrl-C handler")?;
        }
        Ok(Self(flag))
    }

    /// Whether Ctrl-C (or SIGTERM) has come.
    pub(crate) fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Asks `check` every [`POLL`] until it answers `Some`, for at most `timeout`. `check` fails
/// the wait with its own error (a process that died); running out of time or a Ctrl-C fail it
/// naming `what` was awaited.
pub(crate) fn wait_for<T>(
    what: &str,
    timeout: Duration,
    interrupt: &Interrupt,
    mut check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check()? {
            return Ok(value);
        }
        if interrupt.requested() {
            bail!("interrupted while waiting for {what}");
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        thread::sleep(POLL);
    }
}

/// The last `lines` lines of `text`, indented so they stand apart from xtask's own messages.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let quoted: Vec<String> = all[start..].iter().map(|l| format!("    | {l}")).collect();
    if quoted.is_empty() {
        "    | (nothing)".to_owned()
    } else {
        quoted.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_quotes_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "    | b\n    | c");
        assert_eq!(tail("", 2), "    | (nothing)");
    }

    #[test]
    fn a_child_that_exits_is_reported_with_its_log() {
        let dir = std::env::temp_dir().join(format!("xtask-process-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let log = dir.join("out.log");
        let cmd = Cmd::new("sh").args(["-c", "echo started; echo oops >&2; exit 3"]);
        let mut process = Process::spawn("sh", &cmd, &log).unwrap();
        let interrupt = Interrupt(Arc::default());
        let err = wait_for("nothing", Duration::from_secs(10), &interrupt, || {
            process.check_running().map(|()| None::<()>)
        })
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("sh exited (exit status: 3)"), "{text}");
        assert!(text.contains("| started\n    | oops"), "{text}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stop_all_terminates_and_reaps() {
        let dir = std::env::temp_dir().join(format!("xtask-stop-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let sleeper = Cmd::new("sleep").arg("30");
        let mut a = Process::spawn("a", &sleeper, &dir.join("a.log")).unwrap();
        let mut b = Process::spawn("b", &sleeper, &dir.join("b.log")).unwrap();
        let started = Instant::now();
        stop_all([&mut a, &mut b], Duration::from_secs(10));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "SIGTERM, not the grace"
        );
        assert!(a.child.is_none() && b.child.is_none(), "both reaped");
        fs::remove_dir_all(&dir).unwrap();
    }
}
