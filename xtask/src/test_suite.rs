//! `cargo xtask test`: every check and test the project has, from a brand-new Debian machine.
//!
//! This is the one command CI runs (`.ci/run`) and the README promises, so it installs what it
//! needs first and then runs the checks from cheapest to most expensive, so a formatting slip
//! fails in seconds rather than after the whole test build. To add a check (npm tests, browser
//! tests), add a row to the tables or a [`Step`] to [`steps`].

use anyhow::{bail, Result};

use crate::cmd::Cmd;
use crate::steps::{self, Step};
use crate::tools::{self, WASM_TARGET};
use crate::workspace::Workspace;

/// The MQTT.js interop tests: a Node project run with `node --test` against the real binary.
const NODE_TESTS: &str = tools::npm_projects::MQTTJS_INTEROP;

/// Runs `cargo xtask test`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        if arg == "-h" || arg == "--help" {
            print!("{}", crate::USAGE);
            return Ok(());
        }
        bail!("`cargo xtask test` takes no arguments (got `{arg}`)");
    }
    let workspace = Workspace::find()?;
    if !workspace.has_lockfile() {
        eprintln!("==> note: no Cargo.lock yet, so cargo runs without --locked");
    }
    steps::run_all("cargo xtask test", steps(&workspace))
}

/// The steps, in order: every install first (so no later step finds a tool missing), then
/// checks from fastest to slowest.
fn steps(workspace: &Workspace) -> Vec<Step> {
    let mut steps = tools::steps(workspace, &tools::TEST);
    steps.extend(checks(workspace));
    steps
}

/// The checks, from fastest to slowest; they assume [`tools::TEST`] is installed.
fn checks(workspace: &Workspace) -> Vec<Step> {
    vec![
        Step::command(
            "check formatting",
            workspace.cargo(["fmt", "--all", "--", "--check"]),
        ),
        Step::command(
            "clippy, warnings denied",
            workspace
                .cargo_locked(["clippy", "--workspace", "--all-targets"])
                .args(["--", "-D", "warnings"]),
        ),
        // The workspace builds the codec with both directions (the gateway's `full`); the browser
        // client's build (feature `client`) leaves the server-only packets out, so it gets its
        // own lint and test run.
        Step::command(
            "aviary-protocol, client build: clippy, warnings denied",
            workspace
                .cargo_locked(["clippy", "-p", "aviary-protocol", "--all-targets"])
                .args(["--no-default-features", "--features", "client"])
                .args(["--", "-D", "warnings"]),
        ),
        // Tests may print a lot (logs of end-to-end runs); it streams through unfiltered.
        Step::command(
            "cargo test",
            workspace.cargo_locked(["test", "--workspace"]),
        ),
        Step::command(
            "aviary-protocol, client build: cargo test",
            workspace
                .cargo_locked(["test", "-p", "aviary-protocol"])
                .args(["--no-default-features", "--features", "client"]),
        ),
        // MQTT.js, the client most web developers know, against the real binary over WebSocket
        // and TCP.
        Step::new("MQTT.js interop tests (npm test in gateway/tests/node)", {
            let workspace = workspace.clone();
            move || node_tests(&workspace)
        }),
        // The browser client in headless Chromium against a supervised gateway, then its npm
        // package (packed tarball) under Node and Playwright.
        Step::new("browser client: wasm-bindgen-test in headless Chromium", {
            let workspace = workspace.clone();
            move || crate::browser_tests::wasm_tests(&workspace)
        }),
        Step::new("browser client: npm package tests (Node, Playwright)", {
            let workspace = workspace.clone();
            move || crate::browser_tests::npm_tests(&workspace)
        }),
        // What a bundler user gets: the tarball built into an app by each bundler, in Chromium.
        Step::new(
            "browser client: the package through Vite, esbuild and webpack 5 (Playwright)",
            {
                let workspace = workspace.clone();
                move || crate::bundler_tests::run(&workspace)
            },
        ),
        // The web app's UI only exists on wasm32, which the workspace clippy above does not build.
        Step::command(
            "web app: clippy for wasm32, warnings denied",
            workspace
                .cargo_locked(["clippy", "-p", "aviary-web", "--target", WASM_TARGET])
                .args(["--all-targets", "--", "-D", "warnings"]),
        ),
        // The map app built as `cargo xtask web` does, against the real gateway, in Chromium.
        Step::new(
            "web app: end-to-end tests in headless Chromium (web-app/e2e)",
            {
                let workspace = workspace.clone();
                move || crate::web::e2e_tests(&workspace)
            },
        ),
        // The codec is shared with the browser client, so it must keep building for wasm32.
        Step::command(
            "build aviary-protocol for wasm32",
            workspace.cargo_locked(["build", "-p", "aviary-protocol", "--target", WASM_TARGET]),
        ),
    ]
}

/// Builds the gateway binary and runs `npm test` in the MQTT.js interop project with
/// `AVIARY_BIN` naming the binary.
fn node_tests(workspace: &Workspace) -> Result<()> {
    workspace.cargo_locked(["build", "-p", "aviary"]).run()?;
    let bin = workspace.target("debug/aviary");
    Cmd::new("npm")
        .arg("test")
        .dir(workspace.path(NODE_TESTS))
        .env("AVIARY_BIN", bin.to_string_lossy())
        .run()
}
