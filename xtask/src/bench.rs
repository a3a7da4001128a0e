//! `cargo xtask bench [ARGS...]`: where performance is measured.
//!
//! Tests never time anything (a loaded CI machine makes timing assertions flaky); numbers come
//! from here. Two kinds of benchmark:
//!
//! - `cargo xtask bench [ARGS...]`: the broker comparison. Installs the peers `--brokers` names
//!   (all by default, pinned: Mosquitto from Debian, rumqttd built into `target/tools/`, Aedes
//!   with `npm ci`; see [`peers`]), builds the gateway and the load generator (`bench/`, binary
//!   `aviary-bench`) in release mode, and runs the same scenarios against every broker, one
//!   after the other. ARGS go to `aviary-bench` (see `cargo xtask bench -- --help`); the
//!   Markdown table is printed and written, with the raw numbers (`results.jsonl`) and a chart
//!   (`throughput.svg`) beside it, to `bench/RESULTS.md` (committed) for a full run, or to
//!   `target/bench/report.md` for a `--quick` or `--only` run, so a partial or small run
//!   never overwrites the committed results; `--out` picks another place.
//!   `--only durability` runs the store's measurements (throughput per durability mode,
//!   restart with a full store, store size under load).
//!   `--only cluster` runs the cluster measurements (3 nats-servers and 2 gateways against a
//!   single node); it also installs the pinned nats-server and passes it as `--nats-server`.
//!   The default run leaves them out: they need nats-server and add minutes to a run that
//!   already takes several.
//! - `cargo xtask bench codec [ARGS...]`: the criterion benchmark of the codec in `protocol/`
//!   (`cargo bench --package aviary-protocol --bench codec ARGS`; `-p` or `--workspace` pick
//!   other packages instead).

use anyhow::{Context as _, Result};

use crate::prereq;
use crate::tools;
use crate::workspace::Workspace;

mod peers;

/// Runs `bench codec ARGS...` or the broker comparison.
pub(crate) fn run(args: &[String]) -> Result<()> {
    match args.split_first() {
        Some((first, rest)) if first == "codec" => codec(rest),
        // `--` is optional: `cargo xtask bench -- --help` and `cargo xtask bench --help` both
        // reach the load generator.
        Some((first, rest)) if first == "--" => compare(rest),
        _ => compare(args),
    }
}

/// Runs `cargo bench --package aviary-protocol --bench codec ARGS...`: the criterion benchmark.
fn codec(args: &[String]) -> Result<()> {
    let workspace = Workspace::find()?;
    eprintln!("==> running the criterion benchmarks (release build)");
    // The codec's package is only the default: the caller may pick another or `--workspace`.
    // Only cargo's own flags count: what follows `--` belongs to the benchmark harness.
    let picks_package = args
        .iter()
        .take_while(|arg| *arg != "--")
        .any(|arg| arg == "-p" || arg.starts_with("--package") || arg == "--workspace");
    let mut cmd = workspace.cargo(["bench"]);
    if !picks_package {
        // `--bench codec`: criterion's flags after `--` would upset the libtest harness of the
        // crate's unit tests, which a bare `cargo bench` also runs.
        cmd = cmd.args(["--package", "aviary-protocol", "--bench", "codec"]);
    }
    cmd.args(args.iter().cloned()).run()
}

/// Where cargo puts the release build: under `$CARGO_TARGET_DIR` when it is set (a relative
/// one counts from the workspace root, where the build runs), else under `target/`. Running
/// `target/release` regardless would run stale binaries, or none, for whoever builds elsewhere.
fn release_dir(workspace: &Workspace) -> std::path::PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace.path("").join(dir).join("release"),
        _ => workspace.path("target/release"),
    }
}

/// Whether `--only` (as `--only A,B` or `--only=A,B`, possibly repeated) names `cluster`.
fn wants_cluster(args: &[String]) -> bool {
    let mut only: Vec<&str> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--only" {
            only.extend(args.next().map(String::as_str));
        } else if let Some(value) = arg.strip_prefix("--only=") {
            only.push(value);
        }
    }
    only.iter()
        .flat_map(|value| value.split(','))
        .any(|group| group == "cluster")
}

/// Whether `args` hold `flag`, alone or as `flag=VALUE`.
fn has_flag(args: &[String], flag: &str) -> bool {
    args.iter()
        .any(|a| a == flag || a.strip_prefix(flag).is_some_and(|v| v.starts_with('=')))
}

/// Where the report goes when ARGS do not say: `bench/RESULTS.md`, the committed results, for
/// a full run; `target/bench/report.md` for a small (`--quick`) or partial (`--only`) one.
fn default_report(args: &[String]) -> &'static str {
    if has_flag(args, "--quick") || has_flag(args, "--only") {
        "target/bench/report.md"
    } else {
        "bench/RESULTS.md"
    }
}

/// Installs the peers, builds `aviary` and `aviary-bench` in release mode and runs the
/// comparison.
fn compare(args: &[String]) -> Result<()> {
    let workspace = Workspace::find()?;
    let cluster = wants_cluster(args);
    let chosen = peers::Chosen::from_args(args);
    peers::ensure(&workspace, chosen, cluster)?;
    eprintln!("==> building the gateway and the load generator (release)");
    // One at a time: built together, cargo would give the gateway the load generator's tokio
    // features, and "signal" costs the gateway 4 file descriptors (gateway/src/signals.rs).
    for package in ["aviary", "aviary-bench"] {
        workspace
            .cargo_locked(["build", "--release", "--package", package])
            .run()?;
    }
    let target = release_dir(&workspace);
    eprintln!("==> comparing Aviary with its peers (takes minutes; keep the machine quiet)");
    let bench = target.join("aviary-bench");
    let mut cmd = crate::cmd::Cmd::new(bench.to_string_lossy())
        .arg("--aviary")
        .arg(target.join("aviary").to_string_lossy());
    // The caller's own flags win; clap refuses a flag twice.
    if !has_flag(args, "--out") {
        let report = workspace.path(default_report(args));
        cmd = cmd.arg("--out").arg(report.to_string_lossy());
    }
    if chosen.rumqttd && !has_flag(args, "--rumqttd") {
        cmd = cmd
            .arg("--rumqttd")
            .arg(peers::rumqttd(&workspace).to_string_lossy());
    }
    // The load generator finds Mosquitto in /usr/sbin itself; passing the path found here
    // keeps the two lookups from disagreeing.
    if let Some(mosquitto) = prereq::find_program("mosquitto").or_else(|| {
        ["/usr/local/sbin", "/usr/sbin", "/sbin"]
            .iter()
            .map(|dir| std::path::Path::new(dir).join("mosquitto"))
            .find(|path| path.is_file())
    }) {
        if !has_flag(args, "--mosquitto") {
            cmd = cmd.arg("--mosquitto").arg(mosquitto.to_string_lossy());
        }
    }
    if cluster && !has_flag(args, "--nats-server") {
        let nats = tools::nats_server(&workspace);
        cmd = cmd.arg("--nats-server").arg(nats.to_string_lossy());
    }
    cmd.args(args.iter().cloned())
        .dir(workspace.path(""))
        .run()
        .context("the broker comparison failed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cluster_is_seen_in_either_spelling() {
        let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(wants_cluster(&args(&["--only", "p2p,cluster"])));
        assert!(wants_cluster(&args(&["--repeat", "3", "--only=cluster"])));
        assert!(!wants_cluster(&args(&["--only", "p2p"])));
        assert!(!wants_cluster(&args(&[])));
    }

    #[test]
    fn only_a_full_run_writes_the_committed_results() {
        let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(default_report(&args(&[])), "bench/RESULTS.md");
        assert_eq!(
            default_report(&args(&["--repeat", "5"])),
            "bench/RESULTS.md"
        );
        assert_eq!(
            default_report(&args(&["--quick"])),
            "target/bench/report.md"
        );
        assert_eq!(
            default_report(&args(&["--only=p2p"])),
            "target/bench/report.md"
        );
        assert!(has_flag(&args(&["--out=x.md"]), "--out"));
        assert!(!has_flag(&args(&["--outfoo"]), "--out"));
    }
}
