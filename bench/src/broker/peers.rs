//! The peers Aviary is measured against, and how each is started: Mosquitto (in both of its
//! TCP_NODELAY settings), rumqttd and Aedes.
//!
//! Every peer gets the same limits as Aviary where it has a setting for them (in-flight
//! window, queue length, TCP_NODELAY); where it has none, its committed config says so:
//! `bench/peers/rumqttd.toml` (a template filled in here) and `bench/peers/aedes/server.js`.
//! What a peer cannot serve at all (rumqttd's WebSocket listener speaks MQTT 3.1.1 only, Aedes
//! MQTT 3.1.1 only) is reported as "not offered" rather than as a failure.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;
use aviary_protocol::ProtocolVersion;

use super::{BrokerKind, BrokerSpec};
use crate::client::Transport;

/// rumqttd's config, with `{placeholders}` for what changes per run.
const RUMQTTD_TEMPLATE: &str = include_str!("../../peers/rumqttd.toml");

/// The version of rumqttd the bench measures (xtask installs exactly this one).
pub(crate) const RUMQTTD_VERSION: &str = "0.20.0";

/// Aedes' launcher, in its Node project (whose `node_modules` xtask installs with `npm ci`).
pub(crate) fn aedes_server_js() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/aedes/server.js")
}

/// Where xtask installs the pinned rumqttd: under the workspace's `target/tools/`, next to
/// the other pinned tools.
pub(crate) fn rumqttd_default() -> PathBuf {
    let bench = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = bench.parent().unwrap_or(bench);
    root.join(format!(
        "target/tools/rumqttd-{RUMQTTD_VERSION}/bin/rumqttd"
    ))
}

/// Why `kind` cannot serve a load of `protocol` over `transports`, if it cannot.
pub(crate) fn not_offered(
    kind: BrokerKind,
    protocol: ProtocolVersion,
    transports: &[Transport],
) -> Option<&'static str> {
    let mqtt5 = protocol == ProtocolVersion::V5;
    match kind {
        BrokerKind::Rumqttd if mqtt5 && transports.contains(&Transport::Ws) => {
            Some("rumqttd 0.20 serves MQTT 5 over TCP only")
        }
        BrokerKind::Aedes if protocol != ProtocolVersion::V3_1_1 => {
            Some("Aedes serves MQTT 3.1.1 only")
        }
        _ => None,
    }
}

/// The keep alive (seconds) the load's clients announce: 30 minutes, to every broker. Armed,
/// as a device's keep alive is, so each broker keeps whatever it keeps per connection to
/// enforce it (a timer, a timestamp), and longer than any scenario, so idle connections need no
/// PINGREQ. (Keep alive 0, which MQTT allows, would spare the brokers that timer and flatter
/// their bytes per idle connection; rumqttd refuses it anyway.)
pub(crate) const KEEP_ALIVE: u16 = 1800;

/// The arguments that make a broker print its version, for the report's preamble.
pub(crate) fn version_args(kind: BrokerKind) -> &'static [&'static str] {
    match kind {
        // Mosquitto has no --version; -h prints it on the first line (and exits non-zero).
        BrokerKind::Mosquitto | BrokerKind::MosquittoNagle => &["-h"],
        BrokerKind::Aviary
        | BrokerKind::AviaryBaseline
        | BrokerKind::Rumqttd
        | BrokerKind::Aedes => &["--version"],
    }
}

/// The command to ask a broker its version: Aedes is a script run by `node`.
pub(crate) fn version_command(spec: &BrokerSpec) -> Command {
    let mut command = program(spec);
    command.args(version_args(spec.kind));
    command
}

/// The program that runs a broker: its executable, or `node SCRIPT` for Aedes.
fn program(spec: &BrokerSpec) -> Command {
    if spec.kind == BrokerKind::Aedes {
        let mut command = Command::new("node");
        command.arg(&spec.binary);
        command
    } else {
        Command::new(&spec.binary)
    }
}

/// The command line and config for Mosquitto, with TCP_NODELAY on
/// ([`BrokerKind::Mosquitto`]) or at its default, Nagle's algorithm on
/// ([`BrokerKind::MosquittoNagle`]).
pub(super) fn mosquitto_command(
    spec: &BrokerSpec,
    dir: &Path,
    mqtt: SocketAddr,
    ws: SocketAddr,
) -> Result<Command> {
    let config = dir.join("mosquitto.conf");
    // Mosquitto's persistence is a snapshot of everything, written every
    // `autosave_interval` (default 1,800 s) and at a graceful shutdown.
    let persistence = if spec.durability.is_some() {
        let data = dir.join("data");
        fs::create_dir_all(&data)?;
        // Run as root, Mosquitto switches to the `mosquitto` user, which may not write in a
        // root's temporary directory: `user root` keeps it as it was started (as Aviary is).
        format!(
            "persistence true\npersistence_location {}/\nuser root\n",
            data.display()
        )
    } else {
        "persistence false\n".to_owned()
    };
    // Aviary sets TCP_NODELAY on every client socket; Mosquitto only when asked. Nagle's
    // algorithm batches its small writes (better throughput, perhaps) but delays them (worse
    // latency), so the bench runs both settings and the report compares with the better one.
    let nodelay = spec.kind != BrokerKind::MosquittoNagle;
    fs::write(
        &config,
        format!(
            "{persistence}allow_anonymous true\nset_tcp_nodelay {nodelay}\n\
             max_inflight_messages {}\nmax_queued_messages {}\n\
             log_dest stderr\nlog_type error\nlog_type warning\n\
             listener {} {}\n\
             listener {} {}\nprotocol websockets\n",
            spec.inflight,
            spec.max_queued,
            mqtt.port(),
            mqtt.ip(),
            ws.port(),
            ws.ip(),
        ),
    )?;
    let mut command = Command::new(&spec.binary);
    command.arg("-c").arg(&config);
    Ok(command)
}

/// rumqttd's config for one run, from the committed template.
fn rumqttd_config(spec: &BrokerSpec, mqtt: SocketAddr, ws: SocketAddr) -> String {
    let listener = match spec.protocol {
        ProtocolVersion::V5 => "v5",
        _ => "v4",
    };
    RUMQTTD_TEMPLATE
        .replace("{listener}", listener)
        .replace("{mqtt}", &mqtt.to_string())
        .replace("{ws}", &ws.to_string())
        // A little room for the probes that check the listeners are up.
        .replace(
            "{max_connections}",
            &(spec.max_connections + 100).to_string(),
        )
}

/// The command line and config for rumqttd.
pub(super) fn rumqttd_command(
    spec: &BrokerSpec,
    dir: &Path,
    mqtt: SocketAddr,
    ws: SocketAddr,
) -> Result<Command> {
    // rumqttd reads its config through the `config` crate, which tells the format from the
    // file name's extension.
    let config = dir.join("rumqttd.toml");
    fs::write(&config, rumqttd_config(spec, mqtt, ws))?;
    let mut command = Command::new(&spec.binary);
    // No `-v`: warnings only, as the others log. `--quiet`: no banner.
    command.arg("--quiet").arg("--config").arg(&config);
    Ok(command)
}

/// The command line for Aedes (its limits are in server.js, which explains them).
pub(super) fn aedes_command(spec: &BrokerSpec, mqtt: SocketAddr, ws: SocketAddr) -> Command {
    let mut command = program(spec);
    command
        .arg("--mqtt")
        .arg(mqtt.to_string())
        .arg("--ws")
        .arg(ws.to_string())
        .arg("--queue-limit")
        .arg(spec.max_queued.to_string());
    command
}

/// Finds the Mosquitto executable: on `PATH` or in the sbin directories Debian uses, which a
/// normal user's `PATH` often lacks.
pub(crate) fn find_mosquitto() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("mosquitto"))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: BrokerKind, protocol: ProtocolVersion) -> BrokerSpec {
        BrokerSpec {
            kind,
            binary: "/bin/true".into(),
            inflight: 100,
            max_queued: 1000,
            protocol,
            max_connections: 15_000,
            durability: None,
            max_batch_ops: None,
        }
    }

    #[test]
    fn rumqttd_config_fills_every_placeholder() {
        let (mqtt, ws) = (
            "127.0.0.1:10001".parse().unwrap(),
            "127.0.0.1:10002".parse().unwrap(),
        );
        let text = rumqttd_config(
            &spec(BrokerKind::Rumqttd, ProtocolVersion::V3_1_1),
            mqtt,
            ws,
        );
        let settings = text.lines().filter(|l| !l.trim_start().starts_with('#'));
        assert!(settings.clone().all(|l| !l.contains('{')), "{text}");
        assert!(text.contains("[v4.1]\nname = \"v4-1\"\nlisten = \"127.0.0.1:10001\"\n"));
        assert!(text.contains("[ws.1]\nname = \"ws-1\"\nlisten = \"127.0.0.1:10002\"\n"));
        assert!(text.contains("max_connections = 15100\n"));
        let v5 = rumqttd_config(&spec(BrokerKind::Rumqttd, ProtocolVersion::V5), mqtt, ws);
        assert!(
            v5.contains("[v5.1.connections]") && !v5.contains("[v4."),
            "{v5}"
        );
    }

    #[test]
    fn mosquitto_nagle_is_the_default_setting() {
        let dir = tempfile::tempdir().unwrap();
        let (mqtt, ws) = (
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        for (kind, expected) in [
            (BrokerKind::Mosquitto, "set_tcp_nodelay true\n"),
            (BrokerKind::MosquittoNagle, "set_tcp_nodelay false\n"),
        ] {
            mosquitto_command(&spec(kind, ProtocolVersion::V3_1_1), dir.path(), mqtt, ws).unwrap();
            let text = fs::read_to_string(dir.path().join("mosquitto.conf")).unwrap();
            assert!(text.contains(expected), "{text}");
        }
    }

    #[test]
    fn what_each_peer_cannot_serve() {
        let (v3, v5) = (ProtocolVersion::V3_1_1, ProtocolVersion::V5);
        let (tcp, ws) = ([Transport::Tcp], [Transport::Tcp, Transport::Ws]);
        assert_eq!(not_offered(BrokerKind::Rumqttd, v3, &ws), None);
        assert_eq!(not_offered(BrokerKind::Rumqttd, v5, &tcp), None);
        assert!(not_offered(BrokerKind::Rumqttd, v5, &ws).is_some());
        assert_eq!(not_offered(BrokerKind::Aedes, v3, &ws), None);
        assert!(not_offered(BrokerKind::Aedes, v5, &tcp).is_some());
        assert_eq!(not_offered(BrokerKind::Mosquitto, v5, &ws), None);
        assert_eq!(not_offered(BrokerKind::Aviary, v5, &ws), None);
    }

    #[test]
    fn the_committed_peer_files_exist() {
        assert!(aedes_server_js().is_file());
        let package = aedes_server_js().with_file_name("package-lock.json");
        assert!(package.is_file(), "{}", package.display());
    }
}
