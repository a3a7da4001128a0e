//! The brokers `cargo xtask bench` measures Aviary against, pinned and installed before the
//! first step that runs them: Mosquitto (Debian), rumqttd (crates.io, built into
//! `target/tools/`) and Aedes (npm, `bench/peers/aedes/package-lock.json`).
//!
//! `--brokers` (as `aviary-bench` reads it) decides which are needed, so a run of Aviary
//! against Mosquitto alone neither builds rumqttd nor needs npm.

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};

use crate::cmd::Cmd;
use crate::prereq::{self, AptPackage};
use crate::tools::{self, npm_projects, Needs, MOSQUITTO, NPM};
use crate::workspace::Workspace;

/// The rumqttd release measured; `bench/src/broker/peers.rs` names the same version (a test
/// checks), since its config template is written for it.
pub(crate) const RUMQTTD_VERSION: &str = "0.20.0";

/// The peers `aviary-bench` knows, as `--brokers` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chosen {
    pub(crate) mosquitto: bool,
    pub(crate) rumqttd: bool,
    pub(crate) aedes: bool,
}

impl Chosen {
    /// The peers `--brokers` names in `args` (as `--brokers A,B` or `--brokers=A,B`, possibly
    /// repeated); without the flag, `aviary-bench`'s default: all of them.
    pub(crate) fn from_args(args: &[String]) -> Self {
        let mut named: Vec<&str> = Vec::new();
        let mut given = false;
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            if arg == "--brokers" {
                given = true;
                named.extend(args.next().map(String::as_str));
            } else if let Some(value) = arg.strip_prefix("--brokers=") {
                given = true;
                named.push(value);
            }
        }
        let names: Vec<&str> = named.iter().flat_map(|v| v.split(',')).collect();
        let wants = |name: &str| !given || names.contains(&name);
        Self {
            mosquitto: wants("mosquitto"),
            rumqttd: wants("rumqttd"),
            aedes: wants("aedes"),
        }
    }

    /// The Debian packages and npm projects these peers need.
    pub(crate) fn needs(self) -> Needs {
        let apt: &'static [AptPackage] = match (self.mosquitto, self.aedes) {
            (true, true) => &[MOSQUITTO, NPM],
            (true, false) => &[MOSQUITTO],
            (false, true) => &[NPM],
            (false, false) => &[],
        };
        let npm: &'static [&'static str] = if self.aedes {
            &[npm_projects::BENCH_AEDES]
        } else {
            &[]
        };
        Needs {
            apt,
            npm,
            ..tools::BENCH
        }
    }
}

/// Where the pinned rumqttd is installed: `target/tools/rumqttd-VERSION/bin/rumqttd` under the
/// workspace root (the load generator's default looks there too).
pub(crate) fn rumqttd(ws: &Workspace) -> PathBuf {
    ws.path(&format!(
        "target/tools/rumqttd-{RUMQTTD_VERSION}/bin/rumqttd"
    ))
}

/// Installs the pinned rumqttd unless the one in `target/tools/` reports that version.
///
/// Not with `--locked`: rumqttd 0.20.0's own lockfile names a `metrics` crate that no longer
/// builds on current rustc, while the versions cargo resolves today do. The version of
/// rumqttd itself is pinned exactly either way.
pub(crate) fn ensure_rumqttd(ws: &Workspace) -> Result<()> {
    let binary = rumqttd(ws);
    if let Some(found) = prereq::binary_version(&binary, RUMQTTD_VERSION) {
        eprintln!(
            "==> rumqttd: already installed ({found}, {})",
            binary.display()
        );
        return Ok(());
    }
    let root = binary
        .parent()
        .and_then(|bin| bin.parent())
        .context("rumqttd's install path has no root")?;
    eprintln!(
        "==> installing rumqttd {RUMQTTD_VERSION} with cargo install into {} (a release build \
         from source: minutes)",
        root.display()
    );
    tools::timed(&format!("rumqttd {RUMQTTD_VERSION}"), || {
        Cmd::new("cargo")
            .args(["install", "rumqttd", "--version"])
            .arg(format!("={RUMQTTD_VERSION}"))
            .arg("--root")
            .arg(root.to_string_lossy())
            .run()
    })?;
    if prereq::binary_version(&binary, RUMQTTD_VERSION).is_none() {
        bail!(
            "installed rumqttd {RUMQTTD_VERSION}, but `{} --version` does not report it",
            binary.display()
        );
    }
    Ok(())
}

/// Installs what the chosen peers need, in order: Debian packages, then npm packages (npm
/// comes from Debian), then rumqttd.
pub(crate) fn ensure(ws: &Workspace, chosen: Chosen, nats_server: bool) -> Result<()> {
    let needs = Needs {
        nats_server,
        ..chosen.needs()
    };
    tools::ensure(ws, &needs)?;
    if chosen.rumqttd {
        eprintln!("==> install the pinned rumqttd {RUMQTTD_VERSION} if missing");
        ensure_rumqttd(ws)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn brokers_pick_the_peers_to_install() {
        let all = Chosen {
            mosquitto: true,
            rumqttd: true,
            aedes: true,
        };
        assert_eq!(Chosen::from_args(&args(&["--quick"])), all);
        let two = Chosen::from_args(&args(&["--brokers", "aviary,mosquitto"]));
        assert!(two.mosquitto && !two.rumqttd && !two.aedes);
        let split = Chosen::from_args(&args(&["--brokers=aedes", "--brokers", "rumqttd"]));
        assert!(!split.mosquitto && split.rumqttd && split.aedes);
        assert!(two.needs().npm.is_empty());
        assert_eq!(split.needs().npm, [npm_projects::BENCH_AEDES]);
        assert_eq!(all.needs().apt.len(), 2);
    }

    #[test]
    fn the_load_generator_expects_the_same_rumqttd() {
        let ws = Workspace::find().unwrap();
        let source = std::fs::read_to_string(ws.path("bench/src/broker/peers.rs")).unwrap();
        let pinned = format!("const RUMQTTD_VERSION: &str = \"{RUMQTTD_VERSION}\";");
        assert!(source.contains(&pinned), "bench does not pin {pinned}");
        assert!(rumqttd(&ws).starts_with(ws.path("target/tools")));
    }
}
