//! Starting and stopping the brokers under test, and reading what they cost the machine.
//!
//! Each broker runs as a child process on free loopback ports with the same limits (in-flight
//! window, queue length, TCP_NODELAY) where it has a setting for them, so none wins or loses by
//! a default the others lack. The peers' own start-up code is in [`peers`].
//! A fresh process serves every scenario: memory left behind by one scenario would otherwise
//! hide in the next one's numbers (allocators keep freed memory). The durability scenarios
//! also stop a broker (SIGTERM or SIGKILL) and start it again on the same data directory.

use std::fmt;
use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use aviary_protocol::ProtocolVersion;

use crate::disk::{DirUsage, IoCounters};

mod peers;
mod restart;

pub(crate) use peers::{
    aedes_server_js, find_mosquitto, not_offered, rumqttd_default, KEEP_ALIVE, RUMQTTD_VERSION,
};
pub(crate) use restart::{Restart, Stop};

/// Which broker a run measures, in the order the report's columns show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub(crate) enum BrokerKind {
    /// The Aviary gateway.
    Aviary,
    /// Another Aviary build (`--baseline`), say from before a change, measured alike.
    AviaryBaseline,
    /// Eclipse Mosquitto, the reference, with `set_tcp_nodelay true` (as Aviary sets
    /// TCP_NODELAY). `--brokers mosquitto` also runs [`Self::MosquittoNagle`], unless
    /// `--mosquitto-nodelay` picks one setting.
    Mosquitto,
    /// Mosquitto with its default setting: Nagle's algorithm on.
    #[value(skip)]
    MosquittoNagle,
    /// rumqttd (bytebeam), a Rust broker: the pinned [`RUMQTTD_VERSION`].
    Rumqttd,
    /// Aedes, a Node.js broker, as pinned by `bench/peers/aedes/package-lock.json`.
    Aedes,
}

impl BrokerKind {
    /// Either Mosquitto setting.
    pub(crate) fn is_mosquitto(self) -> bool {
        matches!(self, Self::Mosquitto | Self::MosquittoNagle)
    }

    /// Not an Aviary build: a broker Aviary is measured against.
    pub(crate) fn is_peer(self) -> bool {
        !matches!(self, Self::Aviary | Self::AviaryBaseline)
    }

    /// A stable lower-case name, for machine-readable output.
    pub(crate) fn slug(self) -> &'static str {
        match self {
            Self::Aviary => "aviary",
            Self::AviaryBaseline => "aviary-baseline",
            Self::Mosquitto => "mosquitto",
            Self::MosquittoNagle => "mosquitto-nagle",
            Self::Rumqttd => "rumqttd",
            Self::Aedes => "aedes",
        }
    }
}

impl fmt::Display for BrokerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Aviary => "Aviary",
            Self::AviaryBaseline => "Aviary baseline",
            Self::Mosquitto => "Mosquitto",
            Self::MosquittoNagle => "Mosquitto (Nagle)",
            Self::Rumqttd => "rumqttd",
            Self::Aedes => "Aedes",
        })
    }
}

/// What a broker keeps on disk, when a scenario asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Durability {
    /// Aviary `durability = "memory"`: nothing written.
    Memory,
    /// Aviary `durability = "process"`: each batch written to the OS before its
    /// acknowledgements, so a kill -9 loses nothing acknowledged.
    Process,
    /// Aviary `durability = "fsync"`: each batch also fsynced, so a power loss neither.
    Fsync,
}

impl Durability {
    /// The value of Aviary's `[store] durability` key.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Process => "process",
            Self::Fsync => "fsync",
        }
    }
}

/// How to start one broker, and the limits all brokers share.
#[derive(Debug, Clone)]
pub(crate) struct BrokerSpec {
    /// Which broker.
    pub(crate) kind: BrokerKind,
    /// Its executable (for Aedes, the `server.js` that `node` runs).
    pub(crate) binary: PathBuf,
    /// Outgoing QoS 1/2 messages in flight per client (Aviary `max_inflight`, Mosquitto
    /// `max_inflight_messages`; rumqttd and Aedes have no such setting).
    pub(crate) inflight: u16,
    /// Messages queued per client beyond those in flight.
    pub(crate) max_queued: usize,
    /// The MQTT version of the load: rumqttd serves each on a listener of its own.
    pub(crate) protocol: ProtocolVersion,
    /// The most connections a scenario opens: rumqttd sizes its tables for them up front.
    pub(crate) max_connections: usize,
    /// `None`: Aviary with its default store and Mosquitto without persistence, as the
    /// throughput comparison runs them. `Some(mode)`: Aviary with `[store] durability =
    /// mode`; Mosquitto with `persistence true` (it has one mode: snapshots).
    pub(crate) durability: Option<Durability>,
    /// Aviary's `[store] max_batch_ops` (most operations per group commit), when set; only
    /// with `durability`.
    pub(crate) max_batch_ops: Option<usize>,
}

/// A broker child process listening on loopback. Killed when dropped.
#[derive(Debug)]
pub(crate) struct RunningBroker {
    /// Which broker.
    pub(crate) kind: BrokerKind,
    spec: BrokerSpec,
    child: Child,
    /// MQTT over TCP.
    pub(crate) mqtt: SocketAddr,
    /// Aviary's HTTP listener (`/metrics`, the REST API); the peers' WebSocket listener.
    pub(crate) http: SocketAddr,
    /// MQTT over WebSocket, as a `ws://` URL.
    pub(crate) ws_url: String,
    /// Holds the config file, data directory and log; removed on drop.
    dir: tempfile::TempDir,
    /// Where in the log this process's output starts (a restart appends to it).
    log_start: u64,
}

impl RunningBroker {
    /// Starts the broker and waits until both its listeners accept connections.
    pub(crate) fn start(spec: &BrokerSpec) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("aviary-bench-")
            .tempdir()
            .context("cannot create a temporary directory for the broker")?;
        let (mqtt, http) = (free_port()?, free_port()?);
        let (child, log_start) = spawn(spec, dir.path(), mqtt, http)?;
        let mut broker = Self {
            kind: spec.kind,
            spec: spec.clone(),
            child,
            mqtt,
            http,
            ws_url: format!("ws://{http}/mqtt"),
            dir,
            log_start,
        };
        broker.wait_ready(&[mqtt, http], Duration::from_secs(10))?;
        Ok(broker)
    }

    /// The space the broker's data directory takes.
    pub(crate) fn data_usage(&self) -> Result<DirUsage> {
        DirUsage::of(&self.dir.path().join("data"))
    }

    /// The broker process's storage counters so far.
    pub(crate) fn io(&self) -> Result<IoCounters> {
        IoCounters::of(self.pid())
    }

    /// The child's process id, for `/proc`.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, in KiB.
    pub(crate) fn rss_kib(&self) -> Result<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        parse_status_kib(&status, "VmRSS:").context("no VmRSS in /proc/PID/status")
    }

    /// CPU time (user + system) the broker has used so far.
    pub(crate) fn cpu_time(&self) -> Result<Duration> {
        process_cpu(self.pid())
    }

    /// Fails, with the end of the broker's log, if the process has exited.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); end of its log:\n{}",
                self.kind,
                self.log_tail()
            );
        }
        Ok(())
    }

    /// The last lines of the broker's log, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Polls the listeners until they accept a connection; a broker that exits or takes
    /// longer than `timeout` is an error.
    fn wait_ready(&mut self, addrs: &[SocketAddr], timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        for addr in addrs {
            loop {
                self.check_alive()?;
                if std::net::TcpStream::connect_timeout(addr, Duration::from_millis(200)).is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "{} did not listen on {addr} within {timeout:?}; end of its log:\n{}",
                        self.kind,
                        self.log_tail()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }
}

impl Drop for RunningBroker {
    fn drop(&mut self) {
        // SIGKILL: nothing the broker would save matters to a benchmark, and a graceful stop
        // could wait on clients.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes the broker's config into `dir` and starts it, its output appended to
/// `dir/broker.log`; returns the child and where its output starts in the log.
fn spawn(
    spec: &BrokerSpec,
    dir: &Path,
    mqtt: SocketAddr,
    http: SocketAddr,
) -> Result<(Child, u64)> {
    let mut command = match spec.kind {
        BrokerKind::Aviary | BrokerKind::AviaryBaseline => aviary_command(spec, dir, mqtt, http)?,
        BrokerKind::Mosquitto | BrokerKind::MosquittoNagle => {
            peers::mosquitto_command(spec, dir, mqtt, http)?
        }
        BrokerKind::Rumqttd => peers::rumqttd_command(spec, dir, mqtt, http)?,
        BrokerKind::Aedes => peers::aedes_command(spec, mqtt, http),
    };
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("broker.log"))?;
    let log_start = log.metadata()?.len();
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {}", spec.binary.display()))?;
    Ok((child, log_start))
}

/// A limit no benchmark reaches.
const UNLIMITED: u32 = 1 << 24;

/// The command line and config for Aviary.
fn aviary_command(
    spec: &BrokerSpec,
    dir: &Path,
    mqtt: SocketAddr,
    ws: SocketAddr,
) -> Result<Command> {
    let config = dir.join("aviary.toml");
    let data = dir.join("data");
    let store = spec.durability.map_or_else(String::new, |mode| {
        let batch = spec
            .max_batch_ops
            .map_or_else(String::new, |n| format!("max_batch_ops = {n}\n"));
        format!("\n[store]\ndurability = \"{}\"\n{batch}", mode.name())
    });
    // Queue limits as high as Mosquitto's (peers.rs); byte limit out of the way (Mosquitto's
    // default is none), and so is the packet size (Mosquitto's default is the protocol's
    // 256 MiB; Aviary's 1 MiB would refuse the 1 MiB payloads of the payload curve). So are
    // the limits that keep one address from taking every connection: the load comes from
    // one address, thousands of connections at once, as Mosquitto takes them by default.
    fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n\n[listen]\nmqtt = \"{mqtt}\"\nhttp = \"{ws}\"\n\n[mqtt]\n\
             max_packet_size = {}\nmax_inflight = {}\nmax_queued_messages = {}\nmax_queued_bytes = {}\n\
             max_connections = {UNLIMITED}\nmax_connections_per_address = {UNLIMITED}\n\
             max_connection_rate_per_address = 0\nmax_subscriptions_per_client = {UNLIMITED}\n\n\
             [http]\nmax_connections = {UNLIMITED}\n{store}",
            aviary_protocol::MAX_PACKET_SIZE,
            spec.inflight,
            spec.max_queued,
            1u64 << 34,
        ),
    )?;
    let mut command = Command::new(&spec.binary);
    command
        .arg("--config")
        .arg(&config)
        // Per-connection info logs would cost Aviary what Mosquitto's `log_type` below saves it.
        // The one `listening` line says when a restart is done.
        .env("RUST_LOG", "warn,aviary::server=info");
    Ok(command)
}

/// Ports handed out so far, so consecutive brokers get fresh ports.
static PORTS_TAKEN: AtomicU32 = AtomicU32::new(0);

/// A loopback port nobody uses right now, below the kernel's ephemeral range.
///
/// Below, because the idle-connection scenarios leave thousands of client ports in TIME_WAIT,
/// and Mosquitto's WebSocket listener (libwebsockets) binds every address whatever its
/// config says, without SO_REUSEADDR: a port from the ephemeral range may be taken by such
/// a leftover and fail its bind. The probe listener is closed before the broker binds the
/// port; on a machine that only runs this benchmark the gap is harmless.
fn free_port() -> Result<SocketAddr> {
    let ephemeral_low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    const FIRST: u32 = 10_000;
    if ephemeral_low > FIRST + 1_000 {
        let count = ephemeral_low - FIRST;
        // Start somewhere that depends on the process, so two runs rarely collide.
        let start = std::process::id() * 7;
        for _ in 0..count {
            let k = PORTS_TAKEN.fetch_add(1, Ordering::Relaxed);
            let port = FIRST + start.wrapping_add(k) % count;
            let addr = SocketAddr::from(([127, 0, 0, 1], port as u16));
            if TcpListener::bind(addr).is_ok() {
                return Ok(addr);
            }
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    Ok(listener.local_addr()?)
}

/// A `Key:   1234 kB` line of `/proc/PID/status`, in KiB.
pub(crate) fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// User + system time of process `pid`, all its threads (those that ended too), to the
/// nanosecond: the kernel's CPU clock of the process. `/proc/PID/stat` counts in ticks of
/// 10 ms, as much as a whole fan-in run of 100,000 messages costs Aviary in a fifth of it.
pub(crate) fn process_cpu(pid: u32) -> Result<Duration> {
    use nix::time::{clock_getcpuclockid, clock_gettime};
    let pid = i32::try_from(pid).context("process id out of range")?;
    let clock = clock_getcpuclockid(nix::unistd::Pid::from_raw(pid))
        .with_context(|| format!("no CPU clock for process {pid}"))?;
    let now =
        clock_gettime(clock).with_context(|| format!("cannot read process {pid}'s CPU clock"))?;
    Ok(Duration::from(now))
}

/// The first line a broker prints when asked its version, for the report header.
pub(crate) fn version_line(spec: &BrokerSpec) -> String {
    peers::version_command(spec)
        .stdin(Stdio::null())
        .output()
        .ok()
        .and_then(|out| {
            let text = if out.stdout.is_empty() {
                out.stderr
            } else {
                out.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .map(|line| line.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown version".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_from_proc_status() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t3\n";
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(1234));
        assert_eq!(parse_status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn our_own_process_has_rss_in_proc() {
        let pid = std::process::id();
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        assert!(parse_status_kib(&status, "VmRSS:").unwrap() > 0);
    }

    #[test]
    fn another_process_cpu_time_is_read_finer_than_ticks() {
        let mut busy = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let pid = busy.id();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let first = process_cpu(pid).unwrap();
        let mut later = first;
        while later <= first && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(3));
            later = process_cpu(pid).unwrap();
        }
        busy.kill().unwrap();
        busy.wait().unwrap();
        assert!(later > first, "the busy process's CPU time never grew");
        // Ticks of /proc/PID/stat would step by 10 ms exactly, both readings on the grid.
        let on_grid = |d: Duration| d.as_nanos().is_multiple_of(10_000_000);
        assert!(!(on_grid(first) && on_grid(later)), "{first:?}, {later:?}");
        assert!(process_cpu(u32::MAX).is_err());
    }
}
