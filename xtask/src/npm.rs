//! `cargo xtask npm`: build the `aviary-mqtt` npm package into `wasm-client/pkg/` and pack it.
//!
//! The plain, offline path (TOOLCHAIN.md): `cargo build` the client for wasm32 with the
//! size-tuned `wasm-release` profile, run `wasm-bindgen` three times (browser ESM `web`,
//! `bundler`, `nodejs`), bind the package's JavaScript API (`wasm-client/npm/api.js`, plain
//! JavaScript over the wasm `Engine`) in each build's entry, minify what browsers load with
//! esbuild, shrink each module with binaryen's `wasm-opt -Oz` from npm (Debian's
//! binaryen miscompiles current Rust output; the flags are in `WASM_OPT_FLAGS`), add `package.json`, README, the small entry
//! wrappers and the MQTT.js-compatible entry point (`compat/`) from `wasm-client/npm/`, and
//! `npm pack`. The size that matters to a web page —
//! the `web` build's `.wasm` plus its JavaScript (the glue and `api.js`), gzipped — is printed
//! at the end.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};

use crate::cmd::Cmd;
use crate::tools::{self, npm_projects, WASM_TARGET};
use crate::workspace::Workspace;

/// The library's file stem (`[lib] name` of `wasm-client`).
const LIB: &str = "aviary_mqtt";
const PACKAGE: &str = "aviary-mqtt";
/// The package's JavaScript API, shared by every build: `wasm-client/npm/api.js` and the
/// modules it imports, bundled into one file of this name by [`bundle_api`].
const API: &str = "api.js";
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

/// How wasm-opt shrinks the module, each flag measured on the gzipped package (web build):
/// - `-Oz --converge`: repeat `-Oz` until it stops paying (0.3 KiB over one pass);
/// - `--low-memory-unused`: lets binaryen fold `pointer + constant` into load and store
///   offsets (0.25 KiB). Sound for rustc's output: the stack comes first (`--stack-first`) and
///   grows down towards address 0 from 1 MiB, so the low 1 KiB is only ever reached by a
///   stack overflow, and no valid pointer computation wraps around into it;
/// - `--one-caller-inline-max-function-size=30`: a function with one caller is inlined into
///   it only if it is small (by default at any size): the `.wasm` went from 42.5 to 41.3 KiB
///   gzipped, though 1.3 KB larger raw (large bodies merged into their one caller compress
///   worse). A sweep from 0 to 100 found 25 to 30 best, and each side of it worse;
/// - `--strip-target-features` and the two other strips: sections only tools read.
const WASM_OPT_FLAGS: &[&str] = &[
    "-Oz",
    "--converge",
    "--low-memory-unused",
    "--one-caller-inline-max-function-size=30",
    "--strip-debug",
    "--strip-producers",
    "--strip-target-features",
];

/// What `cargo xtask npm` produced.
#[derive(Debug)]
pub(crate) struct Built {
    /// The packed tarball, ready for `npm install <tarball>`.
    pub(crate) tarball: PathBuf,
    /// gzip -9 sizes of the `web` build's `.wasm` and its JavaScript: the glue and `api.js`,
    /// compressed as one file, as a bundle would hold them.
    pub(crate) wasm_gz: usize,
    pub(crate) js_gz: usize,
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
    let workspace = Workspace::find()?;
    tools::ensure(&workspace, &tools::NPM_PACKAGE)?;
    let built = build(&workspace)?;
    report(&built);
    Ok(())
}

/// Prints the package's location and size.
pub(crate) fn report(built: &Built) {
    let total = built.wasm_gz + built.js_gz;
    eprintln!("==> packed {}", built.tarball.display());
    eprintln!(
        "==> web build, gzip -9: .wasm {:.1} KiB + JS (glue and api.js) {:.1} KiB = {:.1} KiB \
         (target: 35 KiB; mqtt.min.js 5.16: about 103 KiB)",
        kib(built.wasm_gz),
        kib(built.js_gz),
        kib(total),
    );
}

fn kib(bytes: usize) -> f64 {
    bytes as f64 / 1024.0
}

/// Builds, optimises, assembles and packs the package; [`tools::NPM_PACKAGE`] must be installed.
pub(crate) fn build(ws: &Workspace) -> Result<Built> {
    ws.cargo_locked([
        "build",
        "-p",
        "aviary-wasm-client",
        "--lib",
        // The JavaScript API, linked without std (`npm` implies `js`; see wasm-client/Cargo.toml).
        "--features",
        "npm",
        "--target",
        WASM_TARGET,
    ])
    .args(["--profile", "wasm-release"])
    .run()?;
    let wasm = ws.target(&format!("{WASM_TARGET}/wasm-release/{LIB}.wasm"));
    let pkg = ws.path("wasm-client/pkg");
    let dir = pkg.join(PACKAGE);
    if pkg.exists() {
        fs::remove_dir_all(&pkg).with_context(|| format!("removing {}", pkg.display()))?;
    }
    for (target, folder) in BUILDS {
        let out = dir.join(folder);
        Cmd::new("wasm-bindgen")
            .args(["--target", target, "--out-name", LIB, "--out-dir"])
            .arg(out.display().to_string())
            // Every engine the package supports has `TextEncoder.encodeInto`: no fallback.
            .args(["--encode-into", "always"])
            .arg(wasm.display().to_string())
            .run()?;
        shorten_import_names(&out)?;
        bind_api(&out, target)?;
    }
    optimize(ws, &dir)?;
    assemble(ws, &dir)?;
    minify(ws, &dir)?;
    let web = dir.join("web");
    let wasm_gz = gzip_len(&[web.join(format!("{LIB}_bg.wasm"))])?;
    let js_gz = gzip_len(&[web.join(format!("{LIB}.js")), dir.join(API)])?;
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
    })
}

/// Drops the hashes from the import names of the module in `out` and its glue (see
/// [`wasm_names`](crate::wasm_names)).
fn shorten_import_names(out: &Path) -> Result<()> {
    let mut glue = Vec::new();
    for entry in fs::read_dir(out)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(".js") || name.ends_with(".ts") {
            glue.push(path);
        }
    }
    let glue: Vec<&Path> = glue.iter().map(PathBuf::as_path).collect();
    crate::wasm_names::shorten(&out.join(format!("{LIB}_bg.wasm")), &glue)
}

/// Exports the package's JavaScript API (`connect`, `createClient`, `MqttClient`) from the
/// glue of an ES module build, bound to that build's `Engine`; the `nodejs` build (CommonJS)
/// is bound by its ES module entry, `node/index.mjs`.
fn bind_api(out: &Path, target: &str) -> Result<()> {
    let import_engine = match target {
        "web" => "",
        "bundler" => "import { Engine } from \"./aviary_mqtt_bg.js\";\n",
        _ => return Ok(()),
    };
    let glue = out.join(format!("{LIB}.js"));
    let mut text =
        fs::read_to_string(&glue).with_context(|| format!("reading {}", glue.display()))?;
    text.push_str(&format!(
        "\n// The package's JavaScript API, on this build's Engine.\n{import_engine}\
         import {{ bind }} from \"../{API}\";\n\
         export const {{ connect, createClient, MqttClient }} = bind(Engine);\n"
    ));
    fs::write(&glue, text).with_context(|| format!("writing {}", glue.display()))
}

/// Runs `wasm-opt` ([`WASM_OPT_FLAGS`]) from the npm `binaryen` package (pinned in `wasm-client/tools/`) on
/// each module. A failure is an error: a package that silently came out 2x larger would be a
/// regression nobody sees.
fn optimize(ws: &Workspace, dir: &Path) -> Result<()> {
    let wasm_opt = ws
        .path(npm_projects::WASM_TOOLS)
        .join("node_modules/.bin/wasm-opt");
    for (_, folder) in BUILDS {
        let module = dir.join(folder).join(format!("{LIB}_bg.wasm"));
        let module = module.display().to_string();
        Cmd::new(wasm_opt.display().to_string())
            .args(WASM_OPT_FLAGS.iter().copied())
            .args(WASM_FEATURES.iter().copied())
            .args([module.as_str(), "-o", module.as_str()])
            .run()?;
    }
    Ok(())
}

/// The JavaScript that pages and bundlers load, minified in place by [`minify`].
const MINIFIED: &[&str] = &[
    "web/aviary_mqtt.js",
    "bundler/aviary_mqtt.js",
    "bundler/aviary_mqtt_bg.js",
    API,
];

/// Minifies [`MINIFIED`] with esbuild (pinned in `wasm-client/tools/`), keeping each file's
/// module format and exports. The comments of `api.js` and of wasm-bindgen's glue are for
/// readers of the repository; shipped, they were 4 KiB of the 10.4 KiB of gzipped JavaScript.
fn minify(ws: &Workspace, dir: &Path) -> Result<()> {
    let esbuild = ws
        .path(npm_projects::WASM_TOOLS)
        .join("node_modules/.bin/esbuild");
    for file in MINIFIED {
        let path = dir.join(file).display().to_string();
        Cmd::new(esbuild.display().to_string())
            .args([
                path.as_str(),
                "--minify",
                "--allow-overwrite",
                "--log-level=warning",
            ])
            .arg(format!("--outfile={path}"))
            .run()?;
    }
    Ok(())
}

/// Bundles `wasm-client/npm/api.js` and its modules (fields, reports, runtime) into the
/// package's one `api.js`, ES module format, with esbuild (pinned in `wasm-client/tools/`):
/// the sources stay split by concern, and a page loads one file (minified by [`minify`]).
fn bundle_api(ws: &Workspace, dir: &Path) -> Result<()> {
    let esbuild = ws
        .path(npm_projects::WASM_TOOLS)
        .join("node_modules/.bin/esbuild");
    Cmd::new(esbuild.display().to_string())
        .arg(ws.path("wasm-client/npm").join(API).display().to_string())
        .args(["--bundle", "--format=esm", "--log-level=warning"])
        .arg(format!("--outfile={}", dir.join(API).display()))
        .run()
}

/// Adds package.json (with the workspace version), README, the entry wrappers and the
/// MQTT.js-compatible entry point.
fn assemble(ws: &Workspace, dir: &Path) -> Result<()> {
    let npm = ws.path("wasm-client/npm");
    let template = fs::read_to_string(npm.join("package.json"))?;
    let manifest = template.replace("__VERSION__", env!("CARGO_PKG_VERSION"));
    fs::write(dir.join("package.json"), manifest)?;
    fs::copy(ws.path("wasm-client/README.md"), dir.join("README.md"))?;
    bundle_api(ws, dir)?;
    fs::copy(npm.join("node-index.mjs"), dir.join("node/index.mjs"))?;
    fs::copy(npm.join("node-package.json"), dir.join("node/package.json"))?;
    fs::copy(npm.join("bundler-index.js"), dir.join("bundler/index.js"))?;
    // The MQTT.js-compatible entry point (`aviary-mqtt/compat`): shared modules in `compat/`
    // and one small entry per build, next to the build it loads.
    let compat = dir.join("compat");
    fs::create_dir_all(&compat)?;
    for entry in fs::read_dir(npm.join("compat"))? {
        let entry = entry?;
        fs::copy(entry.path(), compat.join(entry.file_name()))?;
    }
    fs::copy(npm.join("compat-web.js"), dir.join("web/compat.js"))?;
    fs::copy(npm.join("compat-bundler.js"), dir.join("bundler/compat.js"))?;
    fs::copy(npm.join("compat-node.mjs"), dir.join("node/compat.mjs"))?;
    for (_, folder) in BUILDS {
        // wasm-bindgen writes a .gitignore of `*` into each output folder; npm would honour it.
        let _ = fs::remove_file(dir.join(folder).join(".gitignore"));
    }
    Ok(())
}

/// The size of `paths`, one after the other, compressed with `gzip -9`, as a web server would
/// send them bundled.
fn gzip_len(paths: &[PathBuf]) -> Result<usize> {
    let mut child = Command::new("gzip")
        .args(["-9", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("could not start gzip")?;
    let mut data = Vec::new();
    for path in paths {
        data.extend(fs::read(path).with_context(|| format!("reading {}", path.display()))?);
    }
    let mut stdin = child.stdin.take().context("gzip stdin")?;
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let output = child.wait_with_output()?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("gzip writer panicked"))??;
    Ok(output.stdout.len())
}
