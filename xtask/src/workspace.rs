//! Where the workspace is, and the cargo invocations every subcommand builds on.
//!
//! The root is found from this crate's own manifest directory (`xtask/..`) at compile time, so
//! `cargo xtask` works from any subdirectory and never depends on the caller's working directory.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Result};

use crate::cmd::Cmd;

/// The Aviary workspace checkout that `cargo xtask` belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// Locates the workspace root: the parent of the xtask crate.
    pub(crate) fn find() -> Result<Self> {
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf();
        ensure!(
            root.join("Cargo.toml").is_file(),
            "no Cargo.toml in {}: was xtask moved out of the workspace?",
            root.display()
        );
        Ok(Self { root })
    }

    /// A path relative to the workspace root.
    pub(crate) fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// A path in cargo's target directory: `$CARGO_TARGET_DIR` when it is set (a relative one
    /// counts from the workspace root, where cargo runs), else `target/`. Without this, a
    /// build elsewhere would leave the tests running stale binaries, or none.
    pub(crate) fn target(&self, relative: &str) -> PathBuf {
        match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if !dir.is_empty() => self.root.join(dir).join(relative),
            _ => self.root.join("target").join(relative),
        }
    }

    /// Whether `Cargo.lock` is present. It is committed, so checks pass `--locked` to catch a
    /// manifest change that forgot to update it; before the first lockfile exists there is
    /// nothing to be locked to.
    pub(crate) fn has_lockfile(&self) -> bool {
        self.root.join("Cargo.lock").is_file()
    }

    /// `cargo ARGS...`, run from the workspace root.
    pub(crate) fn cargo<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd::new("cargo").args(args).dir(&self.root)
    }

    /// `cargo ARGS... [--locked]`, run from the workspace root: `--locked` only when the
    /// lockfile exists. Append anything that belongs after `--` to the returned command.
    pub(crate) fn cargo_locked<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let cmd = self.cargo(args);
        if self.has_lockfile() {
            cmd.arg("--locked")
        } else {
            cmd
        }
    }
}
