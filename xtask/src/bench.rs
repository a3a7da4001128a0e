//! `cargo xtask bench [ARGS...]`: where performance is measured.
//!
//! Tests never time anything (a loaded CI machine makes timing assertions flaky); numbers come
//! from here: today the criterion codec benchmark in `protocol/`, later the load generator that
//! compares the gateway with Mosquitto side by side.

use anyhow::Result;

use crate::workspace::Workspace;

/// Runs `cargo bench --workspace ARGS...`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let workspace = Workspace::find()?;
    eprintln!("==> running benchmarks (release build; this is where performance is measured)");
    // `--workspace` would override a package the caller picked, so it is only the default.
    // Only cargo's own flags count: what follows `--` belongs to the benchmark harness.
    let picks_package = args
        .iter()
        .take_while(|arg| *arg != "--")
        .any(|arg| arg == "-p" || arg.starts_with("--package"));
    let mut cmd = workspace.cargo(["bench"]);
    if !picks_package {
        cmd = cmd.arg("--workspace");
    }
    cmd.args(args.iter().cloned()).run()
}
