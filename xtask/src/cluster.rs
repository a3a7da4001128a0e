//! `cargo xtask cluster [--mqtt-port N] [--http-port N] [--nats-port N] [--free-ports]`: a
//! whole Aviary cluster on this machine in one command, the way a user first sees cluster mode.
//!
//! It starts 3 nats-servers (clustered, JetStream on file storage, see [`crate::nats`]), then
//! 3 release gateways, gw-a, gw-b and gw-c, each with its own data dir and a generated
//! aviary.toml whose `[cluster]` lists all three NATS servers. gw-a runs the demo (`--demo`:
//! the simulated pet trackers connect to it); gw-b serves the map, which shows those pets
//! because live messages cross nodes. Everything lives in `target/cluster/` (configs, logs,
//! stores), wiped at each start and kept after a stop for a look at the logs. Ctrl-C stops
//! the gateways first, then the NATS servers they are connected to.
//!
//! One set of users for the whole cluster: `aviary --demo` writes its password file and ACL
//! into gw-a's data dir at start, and gw-b and gw-c point `[auth]` at those same files. The
//! demo's users and rules are defined once, in gateway/src/simulator/demo_auth.rs; writing
//! them from xtask would copy that definition (xtask cannot link the gateway crate without
//! losing its seconds-long first build), and the trackers' password, drawn at random at each
//! start, is only needed by gw-a, whose own simulator is the only tracker.

mod config;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use self::config::{GatewayPlan, Options};
use crate::cmd::Cmd;
use crate::nats::{self, NatsCluster};
use crate::process::{self, Interrupt, Process};
use crate::tools::{self, Needs};
use crate::workspace::Workspace;

/// What the command installs first: the web app's build and nats-server.
const NEEDS: Needs = Needs {
    nats_server: true,
    ..tools::WEB
};

/// How many NATS servers: the smallest cluster that survives losing one.
const NATS_SERVERS: usize = 3;

/// Which gateway (of [`config::NODES`]) runs the simulator, and which one serves the map.
const DEMO_NODE: usize = 0;
const MAP_NODE: usize = 1;
// The demo's gateway starts first and the others follow in order, so `Cluster::gateways` is
// in the order of `NODES` only while the demo's is the first.
const _: () = assert!(DEMO_NODE == 0);

/// The file in the cluster's directory that names the `cargo xtask cluster` using it.
const PID_FILE: &str = "xtask.pid";

/// How long a gateway may take from start to its `listening` line: connecting to NATS and
/// setting up its stream and consumer included.
const GATEWAY_START: Duration = Duration::from_secs(60);

/// How long a gateway may take to stop after SIGTERM: it closes its connections, waiting for
/// them up to its own shutdown grace, and flushes its store.
const GATEWAY_STOP_GRACE: Duration = Duration::from_secs(15);

/// Runs `cargo xtask cluster ARGS...`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let Some(options) = config::parse(args)? else {
        print!("{}", crate::USAGE);
        return Ok(());
    };
    let ws = Workspace::find()?;
    let dir = ws.path("target/cluster");
    // Before the builds, which would replace the web app under a running cluster's map.
    refuse_if_running(&dir)?;
    tools::ensure(&ws, &NEEDS)?;
    crate::web::build(&ws)?;
    eprintln!("==> building the gateway `aviary` (release)");
    ws.cargo(["build", "--release", "-p", "aviary"]).run()?;
    fresh_dir(&dir)?;
    let interrupt = Interrupt::catch()?;
    let mut cluster = start(&ws, &dir, &options, &interrupt)?;
    cluster.print_urls();
    // On return, Ctrl-C or not, dropping `cluster` stops everything in order.
    cluster.watch(&interrupt)
}

/// Fails if another `cargo xtask cluster` is running in `dir`: its process id is in
/// `dir/xtask.pid`, and wiping its stores would break it.
fn refuse_if_running(dir: &Path) -> Result<()> {
    let Ok(pid) = fs::read_to_string(dir.join(PID_FILE)) else {
        return Ok(());
    };
    let pid = pid.trim();
    // A process id is reused after its process exits: check it is still an xtask.
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if String::from_utf8_lossy(&cmdline).contains("xtask") {
        bail!(
            "another `cargo xtask cluster` (process {pid}) is running in {}; stop it first",
            dir.display()
        );
    }
    Ok(())
}

/// Empties `dir` for a new cluster and records this process's id there.
fn fresh_dir(dir: &Path) -> Result<()> {
    refuse_if_running(dir)?;
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let pid_file = dir.join(PID_FILE);
    fs::write(&pid_file, std::process::id().to_string())
        .with_context(|| format!("writing {}", pid_file.display()))
}

/// Starts the NATS servers, then gw-a (whose demo writes the users), then gw-b and gw-c
/// together; each step waits until the last one is ready.
fn start(ws: &Workspace, dir: &Path, options: &Options, interrupt: &Interrupt) -> Result<Cluster> {
    let servers = nats::Server::plan(dir, &nats::Ports::plan(options.nats_port, NATS_SERVERS)?);
    eprintln!(
        "==> starting {NATS_SERVERS} NATS servers (clustered, JetStream on file storage in {}), \
         waiting for /healthz and for JetStream to place a stream on all of them",
        dir.display()
    );
    let nats = NatsCluster::start(&tools::nats_server(ws), servers, interrupt)?;
    let mut cluster = Cluster {
        gateways: Vec::new(),
        nats,
        dir: dir.to_owned(),
    };
    let plans = config::plan_gateways(dir, options)?;
    let demo = &plans[DEMO_NODE];
    let setup = config::Setup {
        nats: cluster.nats.urls(),
        static_dir: ws.path("static"),
        shared_auth: config::DemoAuth::of(demo),
    };
    let aviary = ws.target("release/aviary");
    eprintln!(
        "==> starting {} with the demo (simulated trackers, demo users) and waiting for its \
         `listening` line",
        demo.node
    );
    let process = spawn_gateway(&aviary, demo, &setup, true)?;
    cluster
        .gateways
        .push(Gateway::ready(demo, process, interrupt)?);
    let others: Vec<&GatewayPlan> = plans.iter().filter(|p| p.node != demo.node).collect();
    eprintln!("==> starting the other gateways with the demo's users, and waiting for them");
    let processes = others
        .iter()
        .map(|plan| spawn_gateway(&aviary, plan, &setup, false))
        .collect::<Result<Vec<_>>>()?;
    for (plan, process) in others.into_iter().zip(processes) {
        cluster
            .gateways
            .push(Gateway::ready(plan, process, interrupt)?);
    }
    Ok(cluster)
}

/// Writes `plan`'s aviary.toml and starts `aviary --config FILE [--demo]` in the workspace.
fn spawn_gateway(
    aviary: &Path,
    plan: &GatewayPlan,
    setup: &config::Setup,
    demo: bool,
) -> Result<Process> {
    fs::create_dir_all(&plan.dir).with_context(|| format!("creating {}", plan.dir.display()))?;
    let config = plan.dir.join("aviary.toml");
    fs::write(&config, plan.config(setup, demo))
        .with_context(|| format!("writing {}", config.display()))?;
    // An error that stops a gateway is a message for the user, quoted from the log's end:
    // no backtrace of it (anyhow adds one under RUST_BACKTRACE=1), so the message stays in
    // view. Panics still get theirs.
    let mut cmd = Cmd::new(aviary.display().to_string())
        .arg("--config")
        .arg(config.display().to_string())
        .env("RUST_LIB_BACKTRACE", "0");
    if demo {
        cmd = cmd.arg("--demo");
    }
    Process::spawn(plan.node, &cmd, &plan.dir.join("aviary.log"))
}

/// A gateway that is listening.
#[derive(Debug)]
struct Gateway {
    node: &'static str,
    process: Process,
    mqtt: SocketAddr,
    http: SocketAddr,
}

impl Gateway {
    /// Waits for `process`'s `listening mqtt=… http=…` line, which tells the bound ports
    /// (chosen by the gateway for port 0).
    fn ready(plan: &GatewayPlan, mut process: Process, interrupt: &Interrupt) -> Result<Self> {
        let what = format!("{}'s `listening` line", plan.node);
        let found = process::wait_for(&what, GATEWAY_START, interrupt, || {
            process.check_running()?;
            Ok(listening(&process.output()))
        });
        let (mqtt, http) = found.map_err(|err| process.explain(err))?;
        Ok(Self {
            node: plan.node,
            process,
            mqtt,
            http,
        })
    }
}

/// `(mqtt, http)` from the first line of `log` holding `listening mqtt=ADDR http=ADDR`.
fn listening(log: &str) -> Option<(SocketAddr, SocketAddr)> {
    let line = log
        .lines()
        .find_map(|l| Some(&l[l.find("listening mqtt=")?..]))?;
    let address = |key: &str| {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(key))
            .and_then(|addr| addr.parse().ok())
    };
    Some((address("mqtt=")?, address("http=")?))
}

/// The running cluster. Dropping it stops the gateways, then the NATS servers.
#[derive(Debug)]
struct Cluster {
    gateways: Vec<Gateway>,
    nats: NatsCluster,
    dir: PathBuf,
}

impl Cluster {
    /// Returns `Ok` on Ctrl-C, or an error naming the first process that exited by itself.
    fn watch(&mut self, interrupt: &Interrupt) -> Result<()> {
        while !interrupt.requested() {
            for gateway in &mut self.gateways {
                gateway.process.check_running()?;
            }
            self.nats.check_running()?;
            thread::sleep(process::POLL);
        }
        eprintln!();
        Ok(())
    }

    /// Where to point a browser and MQTT clients, and what works across nodes.
    fn print_urls(&self) {
        let map = &self.gateways[MAP_NODE];
        let demo = &self.gateways[DEMO_NODE];
        // mosquitto_sub on the last node: neither the simulator's nor the map's.
        let other = &self.gateways[self.gateways.len() - 1];
        let list = |f: &dyn Fn(&Gateway) -> String| -> String {
            let items: Vec<String> = self.gateways.iter().map(f).collect();
            items.join(", ")
        };
        let nats = &self.nats.servers()[0];
        eprintln!(
            "\n==> the cluster is up: {} NATS servers, {} gateways; Ctrl-C stops it\n    \
             map:  http://{}/ (served by {}; the pets are simulated on {})\n          \
             {}\n    \
             MQTT: {}\n    \
             HTTP: {}\n    \
             NATS: {} (monitoring: {}/)\n    \
             try:  mosquitto_sub -h {} -p {} -u alice -P alice-demo -t 'pets/+/location' -v\n    \
             across nodes: live messages at QoS 0, 1 and 2, retained messages, persistent \
             sessions (kill a gateway: its clients resume on another), $share groups\n    \
             logs: {}/*/*.log",
            self.nats.servers().len(),
            self.gateways.len(),
            map.http,
            map.node,
            demo.node,
            crate::run::DEMO_SIGN_IN,
            list(&|g| format!("{} {}", g.node, g.mqtt)),
            list(&|g| format!("{} http://{}/", g.node, g.http)),
            self.nats.urls().join(", "),
            nats.monitor_url(),
            other.mqtt.ip(),
            other.mqtt.port(),
            self.dir.display(),
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        eprintln!("==> stopping the gateways, then the NATS servers");
        let gateways = self.gateways.iter_mut().map(|g| &mut g.process);
        process::stop_all(gateways, GATEWAY_STOP_GRACE);
        self.nats.stop();
        eprintln!(
            "==> stopped; configs and logs stay in {} until the next start",
            self.dir.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_listening_line() {
        let log = "2026-01-01T00:00:00Z  INFO aviary::cluster: connected to NATS\n\
                   2026-01-01T00:00:01Z  INFO aviary::server: listening mqtt=127.0.0.1:41883 \
                   http=127.0.0.1:48080\n";
        let (mqtt, http) = listening(log).unwrap();
        assert_eq!(mqtt.to_string(), "127.0.0.1:41883");
        assert_eq!(http.to_string(), "127.0.0.1:48080");
        assert_eq!(listening("INFO starting\n"), None);
    }
}
