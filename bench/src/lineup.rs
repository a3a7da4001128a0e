//! Which brokers a run measures, in which order, and where their executables are:
//! `--brokers` with `mosquitto` expanded into its TCP_NODELAY settings, a `--baseline` build
//! right after Aviary, and the limits every broker shares.

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use aviary_protocol::ProtocolVersion;

use crate::broker::{self, BrokerKind, BrokerSpec};
use crate::{Cli, Nodelay};

/// The brokers `--brokers` names, in its order: `mosquitto` becomes one or two columns (see
/// `--mosquitto-nodelay`), a `--baseline` build comes right after Aviary, and a broker named
/// twice runs once.
fn broker_kinds(cli: &Cli) -> Vec<BrokerKind> {
    let mut kinds = Vec::new();
    for kind in &cli.brokers {
        let expanded: &[BrokerKind] = match (kind, cli.mosquitto_nodelay) {
            (BrokerKind::Mosquitto, Nodelay::Both) => {
                &[BrokerKind::Mosquitto, BrokerKind::MosquittoNagle]
            }
            (BrokerKind::Mosquitto, Nodelay::Off) => &[BrokerKind::MosquittoNagle],
            (kind, _) => std::slice::from_ref(kind),
        };
        for kind in expanded {
            if !kinds.contains(kind) {
                kinds.push(*kind);
            }
        }
    }
    if cli.baseline.is_some() && !kinds.contains(&BrokerKind::AviaryBaseline) {
        // Right after Aviary, so the two are measured as close together as they can be.
        let at = kinds
            .iter()
            .position(|k| *k == BrokerKind::Aviary)
            .map_or(0, |i| i + 1);
        kinds.insert(at, BrokerKind::AviaryBaseline);
    }
    kinds
}

/// The executable of `kind`: from its option, or where it is usually found.
fn broker_binary(cli: &Cli, kind: BrokerKind) -> Result<PathBuf> {
    Ok(match kind {
        BrokerKind::Aviary => match &cli.aviary {
            Some(path) => path.clone(),
            None => std::env::current_exe()?
                .parent()
                .context("this executable has no directory")?
                .join("aviary"),
        },
        BrokerKind::AviaryBaseline => cli
            .baseline
            .clone()
            .context("the aviary-baseline broker needs --baseline PATH")?,
        BrokerKind::Mosquitto | BrokerKind::MosquittoNagle => match &cli.mosquitto {
            Some(path) => path.clone(),
            None => broker::find_mosquitto().context(
                "mosquitto not found on PATH or in /usr/sbin: apt-get install mosquitto, \
                 or pass --mosquitto PATH",
            )?,
        },
        BrokerKind::Rumqttd => cli.rumqttd.clone().unwrap_or_else(broker::rumqttd_default),
        BrokerKind::Aedes => cli.aedes.clone().unwrap_or_else(broker::aedes_server_js),
    })
}

/// The brokers to run, with the limits they share.
pub(crate) fn broker_specs(cli: &Cli, protocol: ProtocolVersion) -> Result<Vec<BrokerSpec>> {
    let mut specs = Vec::new();
    for kind in broker_kinds(cli) {
        let binary = broker_binary(cli, kind)?;
        if !binary.is_file() {
            let how = match kind {
                BrokerKind::Rumqttd => format!(
                    "`cargo xtask bench` installs it; by hand: cargo install rumqttd --version \
                     ={} --root target/tools/rumqttd-{}",
                    broker::RUMQTTD_VERSION,
                    broker::RUMQTTD_VERSION
                ),
                BrokerKind::Aedes => "`cargo xtask bench` installs its packages".to_owned(),
                _ => "build it with `cargo build --release -p aviary`, or pass its path".to_owned(),
            };
            bail!(
                "{kind} executable {} does not exist ({how})",
                binary.display()
            );
        }
        // Without its packages Aedes would fail in every scenario, one error at a time.
        let packages = binary.with_file_name("node_modules/aedes");
        if kind == BrokerKind::Aedes && !packages.is_dir() {
            bail!(
                "{} is missing: `cargo xtask bench` installs it, or by hand: npm ci in {}",
                packages.display(),
                binary.parent().unwrap_or(&binary).display()
            );
        }
        specs.push(BrokerSpec {
            kind,
            binary,
            inflight: cli.inflight.max(1),
            max_queued: cli.max_queued.max(1),
            protocol,
            max_connections: cli.held_cap.max(cli.idle_connections).max(cli.fan + 2),
            durability: None,
            max_batch_ops: None,
        });
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn mosquitto_runs_in_the_settings_asked_for() {
        let kinds = |args: &[&str]| {
            let cli = Cli::parse_from(std::iter::once("aviary-bench").chain(args.iter().copied()));
            broker_kinds(&cli)
        };
        use BrokerKind::{Aedes, Aviary, AviaryBaseline, Mosquitto, MosquittoNagle, Rumqttd};
        assert_eq!(
            kinds(&[]),
            [Aviary, Mosquitto, MosquittoNagle, Rumqttd, Aedes]
        );
        let only_nagle = [
            "--brokers",
            "mosquitto,aviary",
            "--mosquitto-nodelay",
            "false",
        ];
        assert_eq!(kinds(&only_nagle), [MosquittoNagle, Aviary]);
        let nodelay = [
            "--brokers",
            "aviary,mosquitto",
            "--mosquitto-nodelay",
            "true",
        ];
        assert_eq!(kinds(&nodelay), [Aviary, Mosquitto]);
        let baseline = ["--brokers", "aviary,aviary", "--baseline", "/bin/true"];
        assert_eq!(kinds(&baseline), [Aviary, AviaryBaseline]);
    }
}
