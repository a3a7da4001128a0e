//! Stopping a broker (SIGTERM, or SIGKILL for a crash) and starting it again on the same data
//! directory, timed: the durability scenarios measure how long a restart takes with a full
//! store, and what comes back.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};

use super::{free_port, spawn, RunningBroker};
use crate::disk::DirUsage;

/// How a broker is stopped before a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// SIGTERM, then wait for it to exit: a graceful shutdown.
    Term,
    /// SIGKILL: a crash, as far as the broker can tell.
    Kill,
}

/// How long a restart took.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Restart {
    /// From the signal until the old process had exited.
    pub(crate) stopped_in: Duration,
    /// The data directory once the old process had exited (Mosquitto writes its snapshot
    /// at a graceful shutdown).
    pub(crate) stopped_usage: Option<DirUsage>,
    /// From spawning the new process until it logged `listening mqtt=... http=...` (Aviary
    /// prints it once its store is loaded and its listeners bound); `None` for a broker that
    /// prints no such line.
    pub(crate) listening: Option<Duration>,
    /// From spawning the new process until its MQTT port accepted a TCP connection.
    pub(crate) accepting: Duration,
    /// CPU time (user + system) the new process had used when it was ready (the `listening`
    /// line, or for Mosquitto the first accepted connection): the restart's cost without
    /// the waiting that other load on the machine adds to the wall-clock times.
    pub(crate) ready_cpu: Option<Duration>,
}

impl RunningBroker {
    /// Stops the broker as `stop` says, starts it again on the same data directory (with the
    /// same config, on fresh ports) and waits until it accepts connections, for at most
    /// `timeout`. Says how long each step took.
    pub(crate) fn restart(&mut self, stop: Stop, timeout: Duration) -> Result<Restart> {
        let signalled = Instant::now();
        match stop {
            Stop::Kill => self.child.kill()?,
            Stop::Term => {
                let status = Command::new("kill")
                    .args(["-TERM", &self.pid().to_string()])
                    .status()
                    .context("cannot run kill")?;
                ensure!(status.success(), "kill -TERM {} failed", self.pid());
            }
        }
        loop {
            if self.child.try_wait()?.is_some() {
                break;
            }
            if signalled.elapsed() > timeout {
                let _ = self.child.kill();
                bail!("{} did not exit within {timeout:?} of {stop:?}", self.kind);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let stopped_in = signalled.elapsed();
        let stopped_usage = self.data_usage().ok();
        let (mqtt, http) = (free_port()?, free_port()?);
        let spawned = Instant::now();
        let (child, log_start) = spawn(&self.spec, self.dir.path(), mqtt, http)?;
        (self.child, self.log_start, self.mqtt, self.http) = (child, log_start, mqtt, http);
        self.ws_url = format!("ws://{http}/mqtt");
        let (listening, accepting, ready_cpu) = self.wait_started(spawned, timeout)?;
        self.wait_ready(&[mqtt, http], timeout)?;
        Ok(Restart {
            stopped_in,
            stopped_usage,
            listening,
            accepting,
            ready_cpu,
        })
    }

    /// Polls, every 2 ms, for the `listening` line in the log (Aviary only) and for the MQTT
    /// port to accept a connection; returns both times since `spawned`, and the process's
    /// CPU time when the first of them that counts as ready was seen.
    fn wait_started(
        &mut self,
        spawned: Instant,
        timeout: Duration,
    ) -> Result<(Option<Duration>, Duration, Option<Duration>)> {
        let wants_line = !self.kind.is_peer();
        let (mut listening, mut accepting, mut ready_cpu) = (None, None, None);
        while (wants_line && listening.is_none()) || accepting.is_none() {
            self.check_alive()?;
            if spawned.elapsed() > timeout {
                bail!(
                    "{} did not start within {timeout:?}; end of its log:\n{}",
                    self.kind,
                    self.log_tail()
                );
            }
            if wants_line
                && listening.is_none()
                && self.log_since_start().contains("listening mqtt=")
            {
                listening = Some(spawned.elapsed());
                ready_cpu = self.cpu_time().ok();
            }
            if accepting.is_none()
                && std::net::TcpStream::connect_timeout(&self.mqtt, Duration::from_millis(50))
                    .is_ok()
            {
                accepting = Some(spawned.elapsed());
                if !wants_line {
                    ready_cpu = self.cpu_time().ok();
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok((listening, accepting.unwrap_or_default(), ready_cpu))
    }

    /// What this process has logged so far.
    fn log_since_start(&self) -> String {
        let log = std::fs::read(self.dir.path().join("broker.log")).unwrap_or_default();
        let start = (self.log_start as usize).min(log.len());
        String::from_utf8_lossy(&log[start..]).into_owned()
    }
}
