//! `cargo xtask npm`: build the `aviary-mqtt` npm package into `wasm-client/pkg/` and pack it.
//!
//! The plain, offline path (TOOLCHAIN.md): `cargo build` the client for wasm32 with the
//! size-tuned `wasm-release` profile, run `wasm-bindgen` three times (browser ESM `web`,
//! `bundler`, `nodejs`), shrink each module with binaryen's `wasm-opt -Oz` from npm (Debian's
//! binaryen miscompiles current Rust output), add `package.json`, README and the small entry
//! wrappers from `wasm-client/npm/`, and `npm pack`. The size that matters to a web page —
//! the `web` build's `.wasm` plus its JS glue, gzipped — is printed at the end.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};

use crate::cmd::Cmd;
use crate::prereq::{self, CargoTool};
use crate::workspace::Workspace;

const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// The library's file stem (`[lib] name` of `wasm-client`).
const LIB: &str = "aviary_mqtt";
const PACKAGE: &str = "aviary-mqtt";
/// wasm-bindgen targets and the package folders they go to.
const BUILDS: &[(&str, &str)] = &[("web", "web"), ("bundler", "bundler"), ("nodejs", "node")];
/// Features rustc's wasm32 output uses, which wasm-opt must accept.
const WASM_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-reference-types",
    "--enable-multivalue",
];

/// What `cargo xtask npm` produced.
#[derive(Debug)]
pub(crate) struct Built {
    /// The packed tarball, ready for `npm install <tarball>`.
    pub(crate) tarball: PathBuf,
    /// gzip -9 sizes of the `web` build's `.wasm` and JS glue.
    pub(crate) wasm_gz: usize,
    pub(crate) js_gz: usize,
    /// Whether wasm-opt ran.
    pub(crate) optimized: bool,
}

/// Runs `cargo xtask npm`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        if arg == "-h" || arg == "--help" {
            print!("{}", crate::USAGE);
            return Ok(());
        }
        bail!("`cargo xtask npm` takes no arguments (got `{arg}`)");
    }
    let built = build(&Workspace::find()?)?;
    report(&built);
    Ok(())
}

/// Prints the package's location and size.
pub(crate) fn report(built: &Built) {
    let total = built.wasm_gz + built.js_gz;
    eprintln!("==> packed {}", built.tarball.display());
    eprintln!(
        "==> web build, gzip -9: .wasm {:.1} KiB + JS glue {:.1} KiB = {:.1} KiB (target: 35 KiB; \
         mqtt.min.js 5.16: about 103 KiB){}",
        kib(built.wasm_gz),
        kib(built.js_gz),
        kib(total),
        if built.optimized {
            ""
        } else {
            " — without wasm-opt"
        }
    );
}

fn kib(bytes: usize) -> f64 {
    bytes as f64 / 1024.0
}

/// Builds, optimises, assembles and packs the package.
pub(crate) fn build(ws: &Workspace) -> Result<Built> {
    prereq::ensure_rust_target(WASM_TARGET)?;
    ensure_wasm_bindgen(ws)?;
    ws.cargo_locked([
        "build",
        "-p",
        "aviary-wasm-client",
        "--lib",
        // The JavaScript API (a default feature, named so that it is on whatever the default).
        "--features",
        "js",
        "--target",
        WASM_TARGET,
    ])
    .args(["--profile", "wasm-release"])
    .run()?;
    let wasm = ws.path(&format!("target/{WASM_TARGET}/wasm-release/{LIB}.wasm"));
    let pkg = ws.path("wasm-client/pkg");
    let dir = pkg.join(PACKAGE);
    if pkg.exists() {
        fs::remove_dir_all(&pkg).with_context(|| format!("removing {}", pkg.display()))?;
    }
    for (target, folder) in BUILDS {
        Cmd::new("wasm-bindgen")
            .args(["--target", target, "--out-name", LIB, "--out-dir"])
            .arg(dir.join(folder).display().to_string())
            .arg(wasm.display().to_string())
            .run()?;
    }
    let optimized = optimize(ws, &dir);
    assemble(ws, &dir)?;
    let web = dir.join("web");
    let wasm_gz = gzip_len(&web.join(format!("{LIB}_bg.wasm")))?;
    let js_gz = gzip_len(&web.join(format!("{LIB}.js")))?;
    Cmd::new("npm")
        .args(["pack", "--pack-destination", ".."])
        .dir(&dir)
        .run()?;
    let version = env!("CARGO_PKG_VERSION");
    let tarball = pkg.join(format!("{PACKAGE}-{version}.tgz"));
    if !tarball.is_file() {
        bail!("npm pack did not produce {}", tarball.display());
    }
    Ok(Built {
        tarball,
        wasm_gz,
        js_gz,
        optimized,
    })
}

/// Installs `wasm-bindgen-cli` at exactly the version of the `wasm-bindgen` crate in
/// `Cargo.lock`: the CLI refuses modules built by another version.
fn ensure_wasm_bindgen(ws: &Workspace) -> Result<()> {
    let version = locked_version(&ws.path("Cargo.lock"), "wasm-bindgen")?;
    // `CargoTool` wants 'static strings; xtask is a short-lived process.
    let version: &'static str = Box::leak(version.into_boxed_str());
    prereq::ensure_cargo_tool(&CargoTool {
        krate: "wasm-bindgen-cli",
        version: Some(version),
        probe: &["wasm-bindgen", "--version"],
    })
}

/// The version of package `name` in a Cargo.lock.
fn locked_version(lockfile: &Path, name: &str) -> Result<String> {
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
    bail!("{name} is not in {}", lockfile.display())
}

/// Runs `wasm-opt -Oz` from the npm `binaryen` package (pinned in `wasm-client/tools/`) on
/// each module. Returns whether it ran; without it the package still works, only larger.
fn optimize(ws: &Workspace, dir: &Path) -> bool {
    let tools = ws.path("wasm-client/tools");
    let installed = Cmd::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .dir(&tools)
        .run();
    if let Err(err) = installed {
        eprintln!("==> warning: no wasm-opt ({err:#}); the package is not size-optimised");
        return false;
    }
    let wasm_opt = tools.join("node_modules/.bin/wasm-opt");
    for (_, folder) in BUILDS {
        let module = dir.join(folder).join(format!("{LIB}_bg.wasm"));
        let module = module.display().to_string();
        let result = Cmd::new(wasm_opt.display().to_string())
            .args(["-Oz", "--strip-debug", "--strip-producers"])
            .args(WASM_FEATURES.iter().copied())
            .args([module.as_str(), "-o", module.as_str()])
            .run();
        if let Err(err) = result {
            eprintln!("==> warning: wasm-opt failed ({err:#}); keeping the unoptimised module");
            return false;
        }
    }
    true
}

/// Adds package.json (with the workspace version), README and the entry wrappers.
fn assemble(ws: &Workspace, dir: &Path) -> Result<()> {
    let npm = ws.path("wasm-client/npm");
    let template = fs::read_to_string(npm.join("package.json"))?;
    let manifest = template.replace("__VERSION__", env!("CARGO_PKG_VERSION"));
    fs::write(dir.join("package.json"), manifest)?;
    fs::copy(ws.path("wasm-client/README.md"), dir.join("README.md"))?;
    fs::copy(npm.join("node-index.mjs"), dir.join("node/index.mjs"))?;
    fs::copy(npm.join("node-package.json"), dir.join("node/package.json"))?;
    fs::copy(npm.join("bundler-index.js"), dir.join("bundler/index.js"))?;
    for (_, folder) in BUILDS {
        // wasm-bindgen writes a .gitignore of `*` into each output folder; npm would honour it.
        let _ = fs::remove_file(dir.join(folder).join(".gitignore"));
    }
    Ok(())
}

/// The size of `path` compressed with `gzip -9`, as a web server would send it.
fn gzip_len(path: &Path) -> Result<usize> {
    let mut child = Command::new("gzip")
        .args(["-9", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("could not start gzip")?;
    let data = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut stdin = child.stdin.take().context("gzip stdin")?;
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let output = child.wait_with_output()?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("gzip writer panicked"))??;
    Ok(output.stdout.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_locked_version() {
        let dir = std::env::temp_dir().join(format!("xtask-npm-{}", std::process::id()));
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
}
