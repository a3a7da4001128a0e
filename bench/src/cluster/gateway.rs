//! The Aviary gateways of a cluster under test: each a child process with its own data
//! directory and an aviary.toml whose `[cluster]` section lists every NATS server, with
//! `replicas = 3`. Ports are the gateway's own choice (port 0), read back from its
//! `listening mqtt=… http=…` log line, so no port is chosen here that another process could
//! take first. The limits are the ones the single-node comparison gives Aviary
//! (crate::broker), so the cluster and the single node differ only by `[cluster]`.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use super::nats::log_tail;
use crate::broker::BrokerSpec;

/// How long a gateway may take from start to its `listening` line: connecting to NATS and
/// setting up its stream, buckets and consumer included.
const START: Duration = Duration::from_secs(60);

/// A limit no benchmark reaches (as in crate::broker).
const UNLIMITED: u32 = 1 << 24;

/// One running gateway. Killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub(crate) struct Gateway {
    /// Its `[cluster] node`.
    pub(crate) node: String,
    /// MQTT over TCP.
    pub(crate) mqtt: SocketAddr,
    child: Child,
    log: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    /// Starts node `node` under `dir` with `[cluster] nats = urls` and waits until it listens.
    pub(crate) fn start(
        spec: &BrokerSpec,
        dir: &Path,
        node: &str,
        urls: &[String],
    ) -> Result<Self> {
        let dir = dir.join(node);
        fs::create_dir_all(&dir)?;
        let config = dir.join("aviary.toml");
        fs::write(&config, config_text(spec, &dir, node, urls))?;
        let log = dir.join("aviary.log");
        let file = fs::File::create(&log)?;
        let child = Command::new(&spec.binary)
            .arg("--config")
            .arg(&config)
            // As in the single-node comparison: warnings, and the one `listening` line.
            .env("RUST_LOG", "warn,aviary::server=info")
            // The error that stops a gateway ends its log, where the notes quote it from: no
            // backtrace after it (anyhow adds one under RUST_BACKTRACE=1). Panics keep theirs.
            .env("RUST_LIB_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("cannot start {}", spec.binary.display()))?;
        let mut gateway = Self {
            node: node.to_owned(),
            mqtt: SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
            log,
        };
        gateway.mqtt = gateway.wait_listening()?;
        Ok(gateway)
    }

    /// Fails, quoting the end of its log, if the process has exited.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "gateway {} exited ({status}); end of its log:\n{}",
                self.node,
                log_tail(&self.log)
            );
        }
        Ok(())
    }

    /// The process id, for /proc.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls the log for the `listening` line, within [`START`].
    fn wait_listening(&mut self) -> Result<SocketAddr> {
        let deadline = Instant::now() + START;
        loop {
            self.check_alive()?;
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(mqtt) = listening_mqtt(&log) {
                return Ok(mqtt);
            }
            if Instant::now() > deadline {
                bail!(
                    "gateway {} did not log `listening` within {START:?}; end of its log:\n{}",
                    self.node,
                    log_tail(&self.log)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// aviary.toml of one node: the comparison's limits, ports of its own choosing, `[cluster]`.
fn config_text(spec: &BrokerSpec, dir: &Path, node: &str, urls: &[String]) -> String {
    let nats: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        "data_dir = {data:?}\n\n[listen]\nmqtt = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\n\n\
         [mqtt]\nmax_inflight = {}\nmax_queued_messages = {}\nmax_queued_bytes = {}\n\
         max_connections = {UNLIMITED}\nmax_connections_per_address = {UNLIMITED}\n\
         max_connection_rate_per_address = 0\nmax_subscriptions_per_client = {UNLIMITED}\n\n\
         [http]\nmax_connections = {UNLIMITED}\n\n\
         [cluster]\nnats = [{}]\nnode = \"{node}\"\nreplicas = 3\n",
        spec.inflight,
        spec.max_queued,
        1u64 << 34,
        nats.join(", "),
        data = dir.join("data"),
    )
}

/// The MQTT address of the first `listening mqtt=ADDR http=ADDR` line of `log`.
fn listening_mqtt(log: &str) -> Option<SocketAddr> {
    let line = log
        .lines()
        .find_map(|l| Some(&l[l.find("listening mqtt=")?..]))?;
    line.split_whitespace()
        .find_map(|word| word.strip_prefix("mqtt="))
        .and_then(|addr| addr.parse().ok())
}

/// The most resident memory process `pid` has had (`VmHWM`), in KiB.
pub(crate) fn proc_peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    crate::broker::parse_status_kib(&status, "VmHWM:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_listening_line() {
        let log = "2026-01-01T00:00:00Z  INFO aviary::server: listening mqtt=127.0.0.1:41883 \
                   http=127.0.0.1:48080\n";
        assert_eq!(
            listening_mqtt(log),
            Some("127.0.0.1:41883".parse().unwrap())
        );
        assert_eq!(listening_mqtt("INFO starting\n"), None);
    }

    #[test]
    fn config_has_the_cluster_section() {
        let spec = BrokerSpec {
            kind: crate::broker::BrokerKind::Aviary,
            binary: "/bin/true".into(),
            inflight: 100,
            max_queued: 1000,
            protocol: aviary_protocol::ProtocolVersion::V3_1_1,
            max_connections: 1000,
            durability: None,
            max_batch_ops: None,
        };
        let urls = [
            "nats://127.0.0.1:1".to_owned(),
            "nats://127.0.0.1:2".to_owned(),
        ];
        let text = config_text(&spec, Path::new("/tmp/x"), "gw-a", &urls);
        assert!(text.contains(
            "[cluster]\nnats = [\"nats://127.0.0.1:1\", \"nats://127.0.0.1:2\"]\n\
             node = \"gw-a\"\nreplicas = 3\n"
        ));
    }
}
