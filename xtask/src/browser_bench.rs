//! `cargo xtask browser-bench`: the highest paced rate of QoS 0 messages at which at least
//! 99.9 % reach a JavaScript callback in headless Chromium, for the `aviary-mqtt` package and
//! MQTT.js on the same page, through the release gateway, at 64-byte and 1 KiB payloads; and
//! each client's connect time (cold and warm) and memory (JS heap and wasm, after connect and
//! during a flood). Chromium is spawned directly and driven over its DevTools pipe, not through
//! Playwright (whose Network domain mirrors every WebSocket frame). The method is in the header
//! of `wasm-client/npm-tests/bench/throughput.mjs`. A measurement, never a test: it prints
//! numbers and fails only if it cannot run. `ROUNDS`, `PAYLOADS`, `TRIAL_MS`, `MESSAGES`,
//! `START_RATE`, `CONNECT_RUNS` and `WARM_RUNS` in the environment tune the run.

use anyhow::{bail, Result};

use crate::browser_tests::prepare_npm_project;
use crate::cmd::Cmd;
use crate::tools::{self, CHROMIUM};
use crate::workspace::Workspace;

/// Runs `cargo xtask browser-bench`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        if arg == "-h" || arg == "--help" {
            print!("{}", crate::USAGE);
            return Ok(());
        }
        bail!("`cargo xtask browser-bench` takes no arguments (got `{arg}`)");
    }
    let ws = Workspace::find()?;
    tools::ensure(&ws, &tools::BROWSER_BENCH)?;
    ws.cargo_locked(["build", "--release", "-p", "aviary", "--bin", "aviary"])
        .run()?;
    let project = prepare_npm_project(&ws)?;
    Cmd::new("node")
        .arg("bench/throughput.mjs")
        .env(
            "AVIARY_BIN",
            ws.target("release/aviary").display().to_string(),
        )
        .env("CHROMIUM", CHROMIUM.binary)
        .dir(project)
        .run()
}
