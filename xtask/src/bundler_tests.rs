//! The npm package as a bundler user gets it: `wasm-client/bundler-tests` builds a tiny app
//! from the packed tarball with Vite, esbuild and webpack 5, checks each build emitted the
//! `.wasm`, and runs it in headless Chromium against the real gateway (`node --test`).

use anyhow::Result;

use crate::browser_tests::{build_gateway, install_package, node_tests};
use crate::tools::npm_projects;
use crate::workspace::Workspace;

/// Builds the gateway and the package, installs the tarball into the bundler test project
/// (whose pinned bundlers the prerequisites installed) and runs its tests.
pub(crate) fn run(ws: &Workspace) -> Result<()> {
    let binary = build_gateway(ws)?;
    let project = install_package(ws, npm_projects::BUNDLER_TESTS)?;
    node_tests(&binary, &project)
}
