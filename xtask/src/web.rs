//! `cargo xtask web`: builds the Yew web app (`web-app/`) into `static/`, where the gateway
//! serves it.
//!
//! Steps, each skipped when already done: the wasm32 target and the pinned `wasm-bindgen-cli`
//! (from crates.io; no prebuilt binaries can be downloaded here), `npm ci` of the build inputs
//! in `web-app/` (Leaflet, Natural Earth outlines, topojson-client, binaryen's `wasm-opt`); then
//! a `wasm-release` build, `wasm-bindgen --target web` into `static/pkg/`, `wasm-opt -Oz`,
//! the vendored files copied into `static/vendor/`, and `.gz` siblings of every build output
//! (the gateway serves them as-is). Hand-written `static/index.html` and `static/style.css`
//! are committed; `static/pkg/` and `static/vendor/` are git-ignored build outputs.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use crate::cmd::Cmd;
use crate::tools::{self, npm_projects, CHROMIUM, WASM_TARGET};
use crate::workspace::Workspace;

/// The app's binary name; a binary's wasm file keeps the hyphen.
const APP: &str = "aviary-web";

/// Files copied from `web-app/node_modules/` into `static/vendor/`: (source, destination).
const VENDORED: &[(&str, &str)] = &[
    ("leaflet/dist/leaflet.js", "leaflet/leaflet.js"),
    ("leaflet/dist/leaflet.css", "leaflet/leaflet.css"),
    (
        "leaflet/dist/images/layers.png",
        "leaflet/images/layers.png",
    ),
    (
        "leaflet/dist/images/layers-2x.png",
        "leaflet/images/layers-2x.png",
    ),
    (
        "leaflet/dist/images/marker-icon.png",
        "leaflet/images/marker-icon.png",
    ),
    (
        "leaflet/dist/images/marker-icon-2x.png",
        "leaflet/images/marker-icon-2x.png",
    ),
    (
        "leaflet/dist/images/marker-shadow.png",
        "leaflet/images/marker-shadow.png",
    ),
    ("leaflet/LICENSE", "leaflet/LICENSE"),
    (
        "topojson-client/dist/topojson-client.min.js",
        "topojson-client.min.js",
    ),
    ("world-atlas/countries-50m.json", "countries-50m.json"),
];

/// Runs `cargo xtask web`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        if arg == "-h" || arg == "--help" {
            print!("{}", crate::USAGE);
            return Ok(());
        }
        bail!("`cargo xtask web` takes no arguments (got `{arg}`)");
    }
    let workspace = Workspace::find()?;
    tools::ensure(&workspace, &tools::WEB)?;
    build(&workspace)
}

/// Builds the app into `static/`; [`tools::WEB`] must be installed.
pub(crate) fn build(workspace: &Workspace) -> Result<()> {
    eprintln!("==> building the web app into static/");
    let app_dir = workspace.path(npm_projects::WEB_APP);
    let static_dir = workspace.path("static");
    let pkg = static_dir.join("pkg");
    workspace
        .cargo_locked(["build", "-p", APP, "--target", WASM_TARGET])
        .args(["--profile", "wasm-release"])
        .run()?;
    if pkg.exists() {
        fs::remove_dir_all(&pkg).with_context(|| format!("removing {}", pkg.display()))?;
    }
    let wasm = workspace.target(&format!("{WASM_TARGET}/wasm-release/{APP}.wasm"));
    Cmd::new("wasm-bindgen")
        .args(["--target", "web", "--no-typescript", "--out-dir"])
        .arg(path_arg(&pkg))
        .arg(path_arg(&wasm))
        .run()?;
    optimize(&app_dir, &pkg.join(format!("{APP}_bg.wasm")))?;
    vendor(&app_dir, &static_dir.join("vendor"))?;
    let outputs = compress_all(&[pkg, static_dir.join("vendor")])?;
    report_sizes(&static_dir, &outputs);
    Ok(())
}

/// Shrinks the module with binaryen's `wasm-opt -Oz` from npm. Debian's binaryen is too old
/// for current Rust output, so there is no fallback to it: without npm's, the module stays
/// as wasm-bindgen wrote it.
fn optimize(app_dir: &Path, wasm: &Path) -> Result<()> {
    let wasm_opt = app_dir.join("node_modules/.bin/wasm-opt");
    if !wasm_opt.is_file() {
        eprintln!("==> wasm-opt not found in web-app/node_modules: skipping size optimisation");
        return Ok(());
    }
    let optimized = wasm.with_extension("opt.wasm");
    Cmd::new(path_arg(&wasm_opt))
        .args([
            "-Oz",
            "--enable-bulk-memory",
            "--enable-nontrapping-float-to-int",
        ])
        .args([
            "--enable-sign-ext",
            "--enable-mutable-globals",
            "--enable-reference-types",
        ])
        .args(["--enable-multivalue", "-o"])
        .arg(path_arg(&optimized))
        .arg(path_arg(wasm))
        .run()?;
    fs::rename(&optimized, wasm).with_context(|| format!("replacing {}", wasm.display()))
}

/// Copies the [`VENDORED`] files into `vendor`.
fn vendor(app_dir: &Path, vendor: &Path) -> Result<()> {
    if vendor.exists() {
        fs::remove_dir_all(vendor).with_context(|| format!("removing {}", vendor.display()))?;
    }
    for (from, to) in VENDORED {
        let (from, to) = (app_dir.join("node_modules").join(from), vendor.join(to));
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    eprintln!(
        "==> vendored {} files into {}",
        VENDORED.len(),
        vendor.display()
    );
    Ok(())
}

/// Writes `FILE.gz` (gzip -9) next to every compressible file under `dirs`; returns the files.
fn compress_all(dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for dir in dirs {
        collect(dir, &mut files)?;
    }
    files.retain(|f| {
        matches!(
            f.extension().and_then(|e| e.to_str()),
            Some("js" | "wasm" | "css" | "json")
        )
    });
    for file in &files {
        Cmd::new("gzip")
            .args(["-9", "-k", "-f", "-n"])
            .arg(path_arg(file))
            .read()?;
    }
    eprintln!("==> precompressed {} files (.gz)", files.len());
    Ok(files)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Prints each output's size, raw and gzipped, and the page's total load.
fn report_sizes(static_dir: &Path, files: &[PathBuf]) {
    let size = |p: &Path| fs::metadata(p).map_or(0, |m| m.len());
    let gz = |p: &Path| size(&PathBuf::from(format!("{}.gz", p.display())));
    let mut total = (0, 0);
    eprintln!("==> web app files (raw / gzipped):");
    for file in files {
        let (raw, zipped) = (size(file), gz(file));
        total = (total.0 + raw, total.1 + zipped);
        let name = file.strip_prefix(static_dir).unwrap_or(file);
        eprintln!(
            "    {:>9} / {:>9}  {}",
            kib(raw),
            kib(zipped),
            name.display()
        );
    }
    eprintln!("    {:>9} / {:>9}  total", kib(total.0), kib(total.1));
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

/// A path as a command-line argument.
fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

/// The web app's end-to-end tests (`web-app/e2e`, Node's test runner with playwright-core and
/// MQTT.js): builds the app and the gateway, then runs them in headless Chromium. Screenshots
/// go to `target/e2e/`. [`tools::TEST`] must be installed.
pub(crate) fn e2e_tests(workspace: &Workspace) -> Result<()> {
    build(workspace)?;
    workspace.cargo_locked(["build", "-p", "aviary"]).run()?;
    let dir = workspace.path(npm_projects::WEB_E2E);
    Cmd::new("npm")
        .arg("test")
        .dir(&dir)
        .env("AVIARY_BIN", path_arg(&workspace.target("debug/aviary")))
        .env(
            "AVIARY_E2E_ARTIFACTS",
            path_arg(&workspace.path("target/e2e")),
        )
        .env("CHROMIUM", CHROMIUM.binary)
        .run()
}
