//! `cargo xtask`: Aviary's project automation, in Rust so it runs wherever cargo does.
//!
//! In the style of <https://github.com/matklad/cargo-xtask>: `.cargo/config.toml` aliases
//! `cargo xtask` to `cargo run --package xtask --`, arguments are parsed by hand (no clap, so the
//! first run compiles in seconds), and each subcommand lives in its own module.

mod bench;
mod browser_bench;
mod browser_tests;
mod bundler_tests;
mod cluster;
mod cmd;
mod fuzz;
mod nats;
mod npm;
mod prereq;
mod process;
mod run;
mod steps;
mod test_suite;
mod tools;
mod wasm_names;
mod web;
mod workspace;

use std::process::ExitCode;

use anyhow::{bail, Result};

/// The help text, also printed by `cargo xtask SUBCOMMAND --help`.
pub(crate) const USAGE: &str = "\
cargo xtask: Aviary's project automation

Usage: cargo xtask <COMMAND> [ARGS...]

Commands:
  demo [ARGS...]    Build the web app (as `web` does), then build and run the
                    gateway with simulated pet trackers (same as `run --demo`).
  cluster [--mqtt-port N] [--http-port N] [--nats-port N] [--free-ports]
                    A cluster on this machine: 3 NATS servers (JetStream), then 3
                    release gateways gw-a, gw-b, gw-c (MQTT 1883-1885, HTTP
                    8080-8082, NATS 4222-4224; each flag moves a base port, 0 or
                    --free-ports picks free ones). The demo's trackers run on
                    gw-a, the map is on gw-b. Prints the URLs, runs until
                    Ctrl-C, then stops the gateways and NATS. Configs and logs
                    in target/cluster/.
  run [ARGS...]     Build and run the gateway `aviary` in release mode:
                    `cargo run --release -p aviary -- ARGS`. By default the web
                    app is at http://127.0.0.1:8080/ and MQTT/TCP on port 1883.
  test              Run every check and test, first installing what is missing
                    (the wasm32 target, Debian packages: mosquitto, chromium,
                    chromium-driver; the pinned wasm-bindgen-cli; npm packages):
                    fmt, clippy, cargo test, MQTT.js interop, the browser
                    client in headless Chromium and Node, the npm package
                    built by Vite, esbuild and webpack 5, the web app's
                    end-to-end tests. Stops at the first failure.
  fuzz [--seconds N] [TARGET]
                    Run the cargo-fuzz target TARGET (default: every target) in
                    protocol/fuzz/ on nightly for N seconds each (default 600).
                    Installs the nightly toolchain and cargo-fuzz if missing.
  bench [ARGS...]   Compare Aviary with its peers in one run (release builds):
                    Mosquitto, rumqttd, Aedes, each pinned and installed first
                    (`--brokers` picks). Writes bench/RESULTS.md, results.jsonl
                    and throughput.svg (target/bench/ for --quick or --only);
                    ARGS go to aviary-bench (`cargo xtask bench --help`);
                    `--quick` runs everything small in under 3 minutes.
                    `bench codec [ARGS]` runs the codec's criterion benchmark.
                    Performance is measured here, never in tests.
  web               Build the web app into static/: a wasm-release build of
                    web-app/, wasm-bindgen, wasm-opt, vendored Leaflet and map
                    data, .gz siblings. Installs the pinned wasm-bindgen-cli and
                    the npm packages (web-app/package-lock.json) if missing.
  npm               Build the npm package `aviary-mqtt` (the browser client) into
                    wasm-client/pkg/ and pack it (wasm-client/pkg/aviary-mqtt-*.tgz);
                    prints its gzipped size. Installs the pinned wasm-bindgen-cli
                    and binaryen's wasm-opt (wasm-client/tools) if missing.
  browser-bench     Measure the highest paced QoS 0 rate (msg/s) at which at least
                    99.9% of messages reach a JavaScript callback in headless
                    Chromium: aviary-mqtt vs MQTT.js interleaved on the same page
                    and release gateway, medians of ROUNDS, received/sent beside
                    every rate; also connect time (cold, warm) and JS heap and wasm
                    memory after connect and during a flood. Chromium is driven over
                    its DevTools pipe (no Playwright). Environment: ROUNDS (3),
                    PAYLOADS (64,1024), TRIAL_MS (2000), MESSAGES per trial at most
                    (1000000), START_RATE (10000), CONNECT_RUNS fresh browsers per
                    client (3), WARM_RUNS reloads each (5).
  help              Show this text.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the whole chain on one line: "step `x` failed: `cmd` failed (...)".
            eprintln!("\nerror: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the subcommand named by the first argument.
fn dispatch(args: &[String]) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        print!("{USAGE}");
        return Ok(());
    };
    match command.as_str() {
        "test" => test_suite::run(rest),
        "fuzz" => fuzz::run(rest),
        "bench" => bench::run(rest),
        "run" => run::run(rest, false),
        "demo" => run::run(rest, true),
        "cluster" => cluster::run(rest),
        "web" => web::run(rest),
        "npm" => npm::run(rest),
        "browser-bench" => browser_bench::run(rest),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprint!("{USAGE}");
            bail!("unknown command `{other}`; see the list above")
        }
    }
}
