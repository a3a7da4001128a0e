//! `cargo xtask test`: every check and test the project has, from a brand-new Debian machine.
//!
//! This is the one command CI runs (`.ci/run`) and the README promises, so it installs what it
//! needs first and then runs the checks from cheapest to most expensive, so a formatting slip
//! fails in seconds rather than after the whole test build. To add a check (npm tests, browser
//! tests), add a row to the tables or a [`Step`] to [`steps`].

use anyhow::{bail, Result};

use crate::prereq::{self, AptPackage};
use crate::steps::{self, Step};
use crate::workspace::Workspace;

/// The browser target: the codec (and later the client and web app) must build for it.
const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Debian packages the tests use, each recognised by a binary it ships. Next to come:
/// `chromium` (`chromium`) and `chromium-driver` (`chromedriver`) for the browser tests.
const APT_PACKAGES: &[AptPackage] = &[
    // The reference broker that interop tests and benchmarks compare against.
    AptPackage {
        name: "mosquitto",
        binary: "/usr/sbin/mosquitto",
    },
    // Independent MQTT clients (mosquitto_pub / mosquitto_sub) for interop tests.
    AptPackage {
        name: "mosquitto-clients",
        binary: "mosquitto_pub",
    },
];

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

/// The steps, in order: prerequisites, then checks from fastest to slowest.
fn steps(workspace: &Workspace) -> Vec<Step> {
    vec![
        Step::new("install the wasm32 target if missing", || {
            prereq::ensure_rust_target(WASM_TARGET)
        }),
        Step::new("install Debian packages if missing", || {
            prereq::ensure_apt_packages(APT_PACKAGES)
        }),
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
        // Tests may print a lot (logs of end-to-end runs); it streams through unfiltered.
        Step::command(
            "cargo test",
            workspace.cargo_locked(["test", "--workspace"]),
        ),
        // The codec is shared with the browser client, so it must keep building for wasm32.
        Step::command(
            "build aviary-protocol for wasm32",
            workspace.cargo_locked(["build", "-p", "aviary-protocol", "--target", WASM_TARGET]),
        ),
    ]
}
