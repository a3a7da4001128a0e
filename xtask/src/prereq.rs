//! Prerequisites: make sure a tool is installed, and install it only when it is missing.
//!
//! `cargo xtask test` must work on a brand-new Debian machine, yet rerunning it on a prepared one
//! must not spend a minute on `apt-get update` or a rebuild of a cargo tool. So every helper here
//! first checks for the thing itself (a rustup target, a binary, a tool's `--version`) and only
//! then installs, saying which of the two happened.

use std::env;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use crate::cmd::Cmd;

/// A Debian package, recognised as installed by one binary it ships.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AptPackage {
    /// The package name for `apt-get install`.
    pub(crate) name: &'static str,
    /// A binary the package installs: an absolute path, or a name looked up on `PATH` (plus the
    /// sbin directories, which a normal user's `PATH` often lacks).
    pub(crate) binary: &'static str,
}

/// A tool installed with `cargo install`, recognised by a command that prints its version.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CargoTool {
    /// The crate to install.
    pub(crate) krate: &'static str,
    /// An exact version to pin (`cargo install --version =V`), checked against the probe's
    /// output; `None` accepts whatever version is installed.
    pub(crate) version: Option<&'static str>,
    /// The command whose success proves the tool is installed, e.g. `cargo fuzz --version`.
    pub(crate) probe: &'static [&'static str],
}

/// Installs the standard library for a rustup `target` unless it is already installed.
pub(crate) fn ensure_rust_target(target: &str) -> Result<()> {
    let installed = Cmd::new("rustup")
        .args(["target", "list", "--installed"])
        .read()
        .context("rustup is needed to add compilation targets (https://rustup.rs)")?;
    if installed.lines().any(|line| line.trim() == target) {
        eprintln!("==> {target} target: already installed");
        return Ok(());
    }
    eprintln!("==> installing {target} target");
    Cmd::new("rustup").args(["target", "add", target]).run()
}

/// Installs a rustup toolchain (minimal profile) unless one by that name is installed.
pub(crate) fn ensure_toolchain(toolchain: &str) -> Result<()> {
    let installed = Cmd::new("rustup")
        .args(["toolchain", "list"])
        .read()
        .context("rustup is needed to install toolchains (https://rustup.rs)")?;
    // Lines look like `nightly-x86_64-unknown-linux-gnu (active)`.
    let prefix = format!("{toolchain}-");
    if installed
        .lines()
        .any(|line| line.starts_with(&prefix) || line.split_whitespace().next() == Some(toolchain))
    {
        eprintln!("==> {toolchain} toolchain: already installed");
        return Ok(());
    }
    eprintln!("==> installing {toolchain} toolchain");
    Cmd::new("rustup")
        .args(["toolchain", "install", toolchain, "--profile", "minimal"])
        .run()
}

/// Installs the Debian packages whose binary is missing, with a single `apt-get update` first.
pub(crate) fn ensure_apt_packages(packages: &[AptPackage]) -> Result<()> {
    let names = |list: &[AptPackage]| {
        list.iter()
            .map(|package| package.name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let missing: Vec<AptPackage> = packages
        .iter()
        .copied()
        .filter(|package| !binary_present(package.binary))
        .collect();
    if missing.is_empty() {
        eprintln!("==> Debian packages: all present ({})", names(packages));
        return Ok(());
    }
    eprintln!("==> installing Debian packages: {}", names(&missing));
    let missing_names: Vec<&str> = missing.iter().map(|package| package.name).collect();
    if find_program("apt-get").is_none() {
        bail!(
            "apt-get not found: this is not a Debian-like system; install these packages \
             yourself: {}",
            missing_names.join(" ")
        );
    }
    apt_get(&["update"])?;
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(&missing_names);
    apt_get(&install)?;
    if let Some(package) = missing
        .iter()
        .find(|package| !binary_present(package.binary))
    {
        bail!(
            "installed Debian package {} but `{}` is still missing",
            package.name,
            package.binary
        );
    }
    Ok(())
}

/// Runs `apt-get ARGS` non-interactively, as root or through sudo.
fn apt_get(args: &[&str]) -> Result<()> {
    let cmd = if is_root() {
        Cmd::new("apt-get").env("DEBIAN_FRONTEND", "noninteractive")
    } else if find_program("sudo").is_some() {
        // sudo resets the environment, so the variable is set by `env` on the root side.
        Cmd::new("sudo").args(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get"])
    } else {
        bail!(
            "installing Debian packages needs root, and sudo is not installed; run as root: \
             apt-get {}",
            args.join(" ")
        );
    };
    cmd.args(args.iter().copied()).run()
}

/// Whether this process runs as root. `id -u` keeps the crate free of libc bindings.
fn is_root() -> bool {
    Cmd::new("id")
        .arg("-u")
        .read()
        .is_ok_and(|uid| uid.trim() == "0")
}

/// Installs a `cargo install` tool unless its probe succeeds (and prints the pinned version).
///
/// `--locked` is tried first for a reproducible build; some crates' lockfiles name versions that
/// this registry mirror lacks, so a failure is retried without it.
pub(crate) fn ensure_cargo_tool(tool: &CargoTool) -> Result<()> {
    let wanted = tool.version.map_or_else(String::new, |v| format!(" {v}"));
    if let Some(found) = installed_version(tool) {
        eprintln!("==> {}: already installed ({found})", tool.krate);
        return Ok(());
    }
    eprintln!("==> installing {}{wanted} with cargo install", tool.krate);
    let mut install = Cmd::new("cargo").args(["install", tool.krate]);
    if let Some(version) = tool.version {
        install = install.args(["--version", &format!("={version}")]);
    }
    if let Err(err) = install.clone().arg("--locked").run() {
        eprintln!("==> {err:#}; retrying without --locked");
        install.run()?;
    }
    if installed_version(tool).is_none() {
        bail!(
            "installed {}{wanted} but `{}` still does not report it; is ~/.cargo/bin on PATH?",
            tool.krate,
            tool.probe.join(" ")
        );
    }
    Ok(())
}

/// The first line the tool's probe prints, if the probe succeeds and shows the wanted version.
fn installed_version(tool: &CargoTool) -> Option<String> {
    let (program, args) = tool.probe.split_first()?;
    let output = Cmd::new(*program).args(args.iter().copied()).read().ok()?;
    if tool
        .version
        .is_some_and(|version| !output.contains(version))
    {
        return None;
    }
    Some(output.lines().next().unwrap_or_default().trim().to_owned())
}

/// Whether `binary` exists: as a path if it contains a slash, otherwise on `PATH` or in the
/// sbin directories (Debian puts daemons like `mosquitto` there, outside a user's `PATH`).
pub(crate) fn binary_present(binary: &str) -> bool {
    if binary.contains('/') {
        Path::new(binary).is_file()
    } else {
        find_program(binary).is_some()
            || ["/usr/local/sbin", "/usr/sbin", "/sbin"]
                .iter()
                .any(|dir| Path::new(dir).join(binary).is_file())
    }
}

/// Looks `name` up on `PATH`, like a shell would.
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_binaries_by_name_and_by_path() {
        assert!(binary_present("sh"));
        assert!(binary_present("/bin/sh"));
        assert!(!binary_present("aviary-xtask-no-such-binary"));
        assert!(!binary_present("/nonexistent/aviary-xtask"));
    }

    #[test]
    fn a_missing_cargo_tool_has_no_version() {
        let tool = CargoTool {
            krate: "none",
            version: None,
            probe: &["aviary-xtask-no-such-program", "--version"],
        };
        assert_eq!(installed_version(&tool), None);
    }
}
