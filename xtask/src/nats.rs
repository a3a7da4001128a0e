//! A local nats-server cluster: N servers on loopback, clustered, each with JetStream on file
//! storage in a directory of its own, for `cargo xtask cluster` (and the cluster benchmarks).
//! nats.conf follows the gateway's test harness (gateway/tests/common/nats.rs), so what a user
//! runs is what the tests run.
//!
//! Ready means two things, awaited in order and each bounded:
//! 1. every server's monitoring `/healthz` answers 200: its JetStream is in contact with a meta
//!    leader;
//! 2. the meta leader can place a stream with a replica on every server. It learns that a peer
//!    is online from that peer's periodic statistics, so right after `/healthz` it may still
//!    refuse with "no suitable peers for placement"; a gateway that got that answer for its own
//!    stream would refuse to start. The probe ([`probe`]) asks for such a stream over the NATS
//!    protocol itself, which is a few lines of text, rather than pull a NATS client into xtask.

mod probe;

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context as _, Result};

use crate::cmd::Cmd;
use crate::process::{self, Interrupt, Process};

/// The `cluster.name` every server shares.
const CLUSTER_NAME: &str = "aviary-xtask";

/// How far the route and monitoring ports are from the client port: nats-server's own
/// defaults (4222 for clients, 6222 for routes, 8222 for monitoring) for a base of 4222.
const ROUTE_OFFSET: u16 = 2000;
const MONITOR_OFFSET: u16 = 4000;

/// How long the servers may take to be healthy, and then to place a replicated stream: a
/// meta leader election on a loaded two-core machine takes seconds, not minutes.
const START: Duration = Duration::from_secs(60);

/// How long a server may take to exit after SIGTERM (it flushes its JetStream store).
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The three ports one server listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ports {
    /// Clients (`nats://`).
    pub(crate) client: u16,
    /// Routes between the servers of the cluster.
    pub(crate) route: u16,
    /// The HTTP monitoring endpoint (`/healthz`, `/jsz`, ...).
    pub(crate) monitor: u16,
}

impl Ports {
    /// The ports of `count` servers from `base`: clients on `base`, `base + 1`, ..., routes
    /// 2000 and monitoring 4000 above them. A base of 0 picks free ports instead: route ports
    /// must be known before any server starts, so nats-server's own port 0 cannot do.
    pub(crate) fn plan(base: u16, count: usize) -> Result<Vec<Ports>> {
        if base == 0 {
            return Ok(free_ports(3 * count)?
                .chunks_exact(3)
                .map(|p| Ports {
                    client: p[0],
                    route: p[1],
                    monitor: p[2],
                })
                .collect());
        }
        (0..count)
            .map(|i| {
                let client = u16::try_from(i).ok().and_then(|i| base.checked_add(i));
                let ports = client.and_then(|client| {
                    Some(Ports {
                        client,
                        route: client.checked_add(ROUTE_OFFSET)?,
                        monitor: client.checked_add(MONITOR_OFFSET)?,
                    })
                });
                ports.with_context(|| {
                    format!(
                        "NATS base port {base} leaves no room for {count} servers: their \
                         monitoring ports are {MONITOR_OFFSET} above their client ports"
                    )
                })
            })
            .collect()
    }
}

/// `count` distinct free loopback ports, all held at once so they differ, released on return.
/// Another process may take one before nats-server binds it; the server then fails to start
/// and the error quotes its log ("address already in use").
fn free_ports(count: usize) -> Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<std::io::Result<Vec<_>>>()
        .context("binding a free loopback port")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// One server's identity: name, ports and directory (nats.conf, nats.log, JetStream store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Server {
    /// Its `server_name`, as JetStream reports it.
    pub(crate) name: String,
    /// Its ports.
    pub(crate) ports: Ports,
    /// Its directory.
    pub(crate) dir: PathBuf,
}

impl Server {
    /// `nats-a`, `nats-b`, ... in `dir/nats-a`, ..., one per entry of `ports`.
    pub(crate) fn plan(dir: &Path, ports: &[Ports]) -> Vec<Server> {
        ('a'..='z')
            .zip(ports)
            .map(|(letter, &ports)| {
                let name = format!("nats-{letter}");
                Server {
                    dir: dir.join(&name),
                    name,
                    ports,
                }
            })
            .collect()
    }

    /// Its client URL, `nats://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.ports.client)
    }

    /// Its monitoring base URL, `http://127.0.0.1:PORT`.
    pub(crate) fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.monitor)
    }

    /// Its nats.conf: JetStream on file storage in its directory, and routes to every server
    /// of the cluster, itself included (nats-server skips that one), so every server's route
    /// list is the same.
    pub(crate) fn config(&self, routes: &[u16]) -> String {
        let Ports {
            client,
            route,
            monitor,
        } = self.ports;
        let routes: Vec<String> = routes
            .iter()
            .map(|port| format!("\"nats-route://127.0.0.1:{port}\""))
            .collect();
        format!(
            "# Written by `cargo xtask cluster` at every start: edits are overwritten.\n\
             server_name: \"{name}\"\n\
             listen: \"127.0.0.1:{client}\"\n\
             http: \"127.0.0.1:{monitor}\"\n\
             jetstream {{\n  store_dir: \"{store}\"\n  max_memory_store: 256MB\n  \
             max_file_store: 1GB\n}}\n\
             cluster {{\n  name: \"{CLUSTER_NAME}\"\n  listen: \"127.0.0.1:{route}\"\n  \
             routes: [{routes}]\n}}\n",
            name = self.name,
            store = self.dir.join("jetstream").display(),
            routes = routes.join(", "),
        )
    }

    /// Writes its directory and nats.conf, then starts it.
    fn start(&self, binary: &Path, routes: &[u16]) -> Result<Process> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let config = self.dir.join("nats.conf");
        fs::write(&config, self.config(routes))
            .with_context(|| format!("writing {}", config.display()))?;
        let cmd = Cmd::new(binary.display().to_string())
            .arg("--config")
            .arg(config.display().to_string());
        Process::spawn(&self.name, &cmd, &self.dir.join("nats.log"))
    }
}

/// Running nats-servers, clustered, with JetStream. Dropping it SIGKILLs them; [`stop`] is the
/// polite way.
///
/// [`stop`]: NatsCluster::stop
#[derive(Debug)]
pub(crate) struct NatsCluster {
    servers: Vec<Server>,
    processes: Vec<Process>,
}

impl NatsCluster {
    /// Starts `servers` with the nats-server at `binary` and waits until they are ready (see
    /// the module's notes), or fails naming the server that is not, with the end of its log.
    pub(crate) fn start(
        binary: &Path,
        servers: Vec<Server>,
        interrupt: &Interrupt,
    ) -> Result<Self> {
        ensure!(!servers.is_empty(), "a NATS cluster needs a server");
        let routes: Vec<u16> = servers.iter().map(|s| s.ports.route).collect();
        let mut cluster = Self {
            processes: Vec::with_capacity(servers.len()),
            servers: Vec::new(),
        };
        for server in &servers {
            cluster.processes.push(server.start(binary, &routes)?);
        }
        cluster.servers = servers;
        cluster.wait_healthy(interrupt)?;
        cluster.wait_placeable(interrupt)?;
        Ok(cluster)
    }

    /// The servers, in start order.
    pub(crate) fn servers(&self) -> &[Server] {
        &self.servers
    }

    /// Every server's client URL, for a client to connect to whichever is up.
    pub(crate) fn urls(&self) -> Vec<String> {
        self.servers.iter().map(Server::url).collect()
    }

    /// `Err` naming the first server that has exited, with the end of its log.
    pub(crate) fn check_running(&mut self) -> Result<()> {
        self.processes
            .iter_mut()
            .try_for_each(Process::check_running)
    }

    /// Stops every server with SIGTERM (SIGKILL after a grace period) and reaps it.
    pub(crate) fn stop(&mut self) {
        process::stop_all(&mut self.processes, STOP_GRACE);
    }

    /// Waits until every server's `/healthz` answers 200.
    fn wait_healthy(&mut self, interrupt: &Interrupt) -> Result<()> {
        for i in 0..self.servers.len() {
            let what = format!("{} to be healthy", self.servers[i].name);
            let port = self.servers[i].ports.monitor;
            let mut last = String::from("no answer yet");
            let process = &mut self.processes[i];
            let healthy = process::wait_for(&what, START, interrupt, || {
                process.check_running()?;
                match healthz(port) {
                    Ok(()) => Ok(Some(())),
                    Err(answer) => {
                        last = answer;
                        Ok(None)
                    }
                }
            });
            healthy
                .with_context(|| format!("last answer of /healthz: {last}"))
                .map_err(|err| process.explain(err))?;
        }
        Ok(())
    }

    /// Waits until JetStream can place a stream with a replica on every server.
    fn wait_placeable(&mut self, interrupt: &Interrupt) -> Result<()> {
        let port = self.servers[0].ports.client;
        let replicas = self.servers.len();
        let what = format!("JetStream to place a stream on all {replicas} servers");
        let mut last = String::from("no answer yet");
        process::wait_for(&what, START, interrupt, || {
            self.check_running()?;
            match probe::place_stream(port, replicas) {
                Ok(()) => Ok(Some(())),
                Err(answer) => {
                    last = answer;
                    Ok(None)
                }
            }
        })
        .with_context(|| format!("last answer: {last}"))
    }
}

/// Asks `GET /healthz` on a monitoring port once: `Ok` on 200, otherwise what came back.
fn healthz(port: u16) -> Result<(), String> {
    let ask = || -> std::io::Result<String> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        // HTTP/1.0: the server closes the connection after answering, so read to the end.
        stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    };
    match ask() {
        Ok(answer) if answer.split_whitespace().nth(1) == Some("200") => Ok(()),
        Ok(answer) => Err(answer.lines().last().unwrap_or_default().to_owned()),
        Err(err) => Err(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_from_a_base_follow_nats_defaults() {
        let ports = Ports::plan(4222, 3).unwrap();
        assert_eq!(
            ports[0],
            Ports {
                client: 4222,
                route: 6222,
                monitor: 8222
            }
        );
        assert_eq!(ports[2].client, 4224);
        assert_eq!(ports[2].monitor, 8224);
        let err = Ports::plan(62_000, 3).unwrap_err();
        assert!(err.to_string().contains("no room for 3 servers"), "{err}");
    }

    #[test]
    fn free_ports_are_distinct() {
        let ports = Ports::plan(0, 3).unwrap();
        let mut all: Vec<u16> = ports
            .iter()
            .flat_map(|p| [p.client, p.route, p.monitor])
            .collect();
        assert!(all.iter().all(|&p| p != 0));
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 9);
    }

    #[test]
    fn nats_conf_has_jetstream_on_file_and_every_route() {
        let servers = Server::plan(Path::new("/x"), &Ports::plan(4222, 3).unwrap());
        assert_eq!(servers[1].name, "nats-b");
        assert_eq!(servers[1].url(), "nats://127.0.0.1:4223");
        let routes: Vec<u16> = servers.iter().map(|s| s.ports.route).collect();
        let conf = servers[1].config(&routes);
        for line in [
            "server_name: \"nats-b\"\n",
            "listen: \"127.0.0.1:4223\"\n",
            "http: \"127.0.0.1:8223\"\n",
            "store_dir: \"/x/nats-b/jetstream\"\n",
            "name: \"aviary-xtask\"\n",
            "listen: \"127.0.0.1:6223\"\n",
            "routes: [\"nats-route://127.0.0.1:6222\", \"nats-route://127.0.0.1:6223\", \
             \"nats-route://127.0.0.1:6224\"]\n",
        ] {
            assert!(conf.contains(line), "no {line:?} in:\n{conf}");
        }
    }
}
