//! Three real nats-server processes, clustered, each with JetStream on file storage in a
//! directory of its own under one temporary directory: the shared state of the gateways under
//! test. nats.conf mirrors the gateway's test harness (gateway/tests/common/nats.rs) and
//! `cargo xtask cluster` (xtask/src/nats.rs), so the benchmark measures what the tests run.
//!
//! Ready means, in order and each bounded: every `/healthz` answers 200 (JetStream is in
//! contact with a meta leader), then the meta leader can place a stream with a replica on
//! every server; until it can, a gateway asking for its R3 stream is refused and exits. The
//! placement probe speaks the NATS text protocol over a plain socket, as xtask's does, rather
//! than pull a NATS client into the load generator.

use std::fs;
use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

/// How long the servers may take to be healthy and then to place a replicated stream: a meta
/// leader election on a loaded two-core machine takes seconds.
const START: Duration = Duration::from_secs(60);

/// How long one answer of the probe may take (no meta leader yet: no answer at all).
const ANSWER: Duration = Duration::from_secs(3);

/// One nats-server process and where it listens.
#[derive(Debug)]
struct Server {
    name: String,
    client: u16,
    monitor: u16,
    dir: PathBuf,
    child: Child,
}

/// Running nats-servers, clustered, with JetStream. Dropping it SIGKILLs and reaps them.
#[derive(Debug)]
pub(crate) struct NatsCluster {
    servers: Vec<Server>,
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for server in &mut self.servers {
            let _ = server.child.kill();
            let _ = server.child.wait();
        }
    }
}

impl NatsCluster {
    /// Starts `count` clustered servers under `dir` and waits until they are ready.
    pub(crate) fn start(binary: &Path, dir: &Path, count: usize) -> Result<Self> {
        if !binary.is_file() {
            bail!(
                "nats-server not found at {}: `cargo xtask bench --only cluster` installs the \
                 pinned one, or pass --nats-server PATH",
                binary.display()
            );
        }
        let ports = free_ports(3 * count)?;
        let routes: Vec<u16> = (0..count).map(|i| ports[3 * i + 1]).collect();
        let mut cluster = Self {
            servers: Vec::new(),
        };
        for i in 0..count {
            let name = format!("nats-{i}");
            let server_dir = dir.join(&name);
            fs::create_dir_all(&server_dir)?;
            let (client, route, monitor) = (ports[3 * i], ports[3 * i + 1], ports[3 * i + 2]);
            let config = server_dir.join("nats.conf");
            fs::write(
                &config,
                config_text(&name, &server_dir, [client, route, monitor], &routes),
            )?;
            let log = fs::File::create(server_dir.join("nats.log"))?;
            let child = Command::new(binary)
                .arg("--config")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("cannot start {}", binary.display()))?;
            cluster.servers.push(Server {
                name,
                client,
                monitor,
                dir: server_dir,
                child,
            });
        }
        cluster.wait_ready()?;
        Ok(cluster)
    }

    /// The client URL of every server.
    pub(crate) fn urls(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| format!("nats://127.0.0.1:{}", s.client))
            .collect()
    }

    /// The servers' process ids, for /proc.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.servers.iter().map(|s| s.child.id()).collect()
    }

    /// Fails, naming the server and quoting its log, if one has exited.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        for server in &mut self.servers {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "{} exited ({status}); end of its log:\n{}",
                    server.name,
                    log_tail(&server.dir.join("nats.log"))
                );
            }
        }
        Ok(())
    }

    /// `/healthz` on every server, then a stream placed on all of them, within [`START`].
    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + START;
        for i in 0..self.servers.len() {
            loop {
                self.check_alive()?;
                let monitor = self.servers[i].monitor;
                if healthz(monitor).is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("{} was not healthy within {START:?}", self.servers[i].name);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let replicas = self.servers.len();
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            self.check_alive()?;
            match place_stream(self.servers[0].client, replicas) {
                Ok(()) => return Ok(()),
                Err(why) => last = why,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!("JetStream could not place an R{replicas} stream within {START:?}: {last}")
    }
}

/// nats.conf of one server: JetStream on file storage in `dir`, routes to every server (its
/// own included, which nats-server skips).
fn config_text(
    name: &str,
    dir: &Path,
    [client, route, monitor]: [u16; 3],
    routes: &[u16],
) -> String {
    let routes: Vec<String> = routes
        .iter()
        .map(|port| format!("\"nats-route://127.0.0.1:{port}\""))
        .collect();
    format!(
        "server_name: \"{name}\"\nlisten: \"127.0.0.1:{client}\"\nhttp: \"127.0.0.1:{monitor}\"\n\
         jetstream {{\n  store_dir: \"{store}\"\n  max_memory_store: 256MB\n  \
         max_file_store: 1GB\n}}\n\
         cluster {{\n  name: \"aviary-bench\"\n  listen: \"127.0.0.1:{route}\"\n  \
         routes: [{routes}]\n}}\n",
        store = dir.join("jetstream").display(),
        routes = routes.join(", "),
    )
}

/// `count` distinct free loopback ports, all held at once and released on return.
fn free_ports(count: usize) -> Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<io::Result<Vec<_>>>()
        .context("cannot bind a loopback port")?;
    Ok(listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.port())
        .collect())
}

/// The last lines of a log file, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    let log = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// `GET /healthz` once: `Ok` on 200.
fn healthz(port: u16) -> io::Result<()> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    if answer.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(io::Error::other("not healthy yet"))
    }
}

/// Creates and deletes an in-memory stream with `replicas` replicas through the server on
/// `port`, over the NATS text protocol: `Ok` once JetStream can place it.
fn place_stream(port: u16, replicas: usize) -> Result<(), String> {
    const STREAM: &str = "AVIARY_BENCH_PROBE";
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(ANSWER))
        .map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let inbox = "_INBOX.aviary-bench-probe";
    let config = format!(
        "{{\"name\":\"{STREAM}\",\"subjects\":[\"aviary-bench.probe\"],\"storage\":\"memory\",\
         \"num_replicas\":{replicas}}}"
    );
    let create = format!("$JS.API.STREAM.CREATE.{STREAM}");
    let delete = format!("$JS.API.STREAM.DELETE.{STREAM}");
    write!(
        writer,
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"protocol\":1}}\r\nSUB {inbox} 1\r\n\
         PUB {create} {inbox} {}\r\n{config}\r\n",
        config.len()
    )
    .map_err(|e| e.to_string())?;
    let created = answer(&mut reader, &mut writer)?;
    if created.contains("\"error\":") {
        return Err(created);
    }
    write!(writer, "PUB {delete} {inbox} 0\r\n\r\n").map_err(|e| e.to_string())?;
    answer(&mut reader, &mut writer).map(drop)
}

/// Reads until a `MSG` arrives and returns its payload, answering `PING`s.
fn answer(reader: &mut BufReader<TcpStream>, writer: &mut TcpStream) -> Result<String, String> {
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => return Err("the server closed the connection".to_owned()),
            Ok(_) => {}
            Err(e) => return Err(format!("no answer: {e}")),
        }
        let line = line.trim_end();
        if line == "PING" {
            writer.write_all(b"PONG\r\n").map_err(|e| e.to_string())?;
        } else if line.starts_with("-ERR") {
            return Err(line.to_owned());
        } else if let Some(rest) = line.strip_prefix("MSG ") {
            // `MSG <subject> <sid> [reply-to] <#bytes>`, then the payload and CRLF.
            let len: usize = rest
                .rsplit(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("bad MSG line: {line}"))?;
            let mut payload = vec![0; len + 2];
            reader.read_exact(&mut payload).map_err(|e| e.to_string())?;
            payload.truncate(len);
            return Ok(String::from_utf8_lossy(&payload).into_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_conf_has_jetstream_on_file_and_every_route() {
        let text = config_text(
            "nats-1",
            Path::new("/tmp/n1"),
            [4223, 6223, 8223],
            &[6222, 6223],
        );
        assert!(text.contains("server_name: \"nats-1\"\n"), "{text}");
        assert!(text.contains("listen: \"127.0.0.1:4223\"\n"), "{text}");
        assert!(text.contains("http: \"127.0.0.1:8223\"\n"), "{text}");
        assert!(text.contains("store_dir: \"/tmp/n1/jetstream\""), "{text}");
        assert!(
            text.contains(
                "routes: [\"nats-route://127.0.0.1:6222\", \"nats-route://127.0.0.1:6223\"]"
            ),
            "{text}"
        );
    }

    #[test]
    fn free_ports_are_distinct() {
        let mut ports = free_ports(6).unwrap();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 6);
    }
}
