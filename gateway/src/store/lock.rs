//! The data directory's lock: one gateway per directory.
//!
//! Two OS file locks (`flock` on Linux) guard the directory: the storage engine's own, held
//! for as long as the store is open, and this one, `aviary.lock`, held only while the store
//! opens. The kernel releases both when the process dies, `kill -9` included, so a lock file
//! left by a crash never blocks the next start. This one is not held for the process's life:
//! a gateway near its open-files limit needs the descriptor for a connection, and the engine's
//! lock already refuses a second gateway. What it adds is the pid written into it once the
//! store is open, for the message that names the other process. Two opens in one process
//! conflict too: each open file description holds its own lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use super::StoreError;

/// The lock file's name inside the data directory.
pub(crate) const LOCK_FILE: &str = "aviary.lock";

/// The lock, held while the store opens; dropping it releases it (closing the file does).
#[derive(Debug)]
pub(crate) struct DirLock {
    file: File,
    path: PathBuf,
}

impl DirLock {
    /// Takes the lock of `dir`, or says who holds it.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StoreError::data_dir(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { file, path }),
            Err(TryLockError::WouldBlock) => Err(StoreError::Locked {
                holder: holder(&path),
                path: dir.to_owned(),
            }),
            Err(TryLockError::Error(e)) => Err(StoreError::data_dir(&path, e)),
        }
    }

    /// The lock file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Who holds the directory, as the lock file says: the store is open elsewhere.
    pub(crate) fn holder(&self) -> String {
        holder(&self.path)
    }

    /// The store is open, its engine's lock taken: writes our pid for whoever comes next and
    /// lets go of this lock.
    pub(crate) fn opened(mut self) -> Result<(), StoreError> {
        write_pid(&mut self.file).map_err(|e| StoreError::data_dir(&self.path, e))
    }
}

/// Replaces the file's content with our pid.
fn write_pid(file: &mut File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    file.flush()
}

/// What the lock file says about its holder. The holder may be writing it
/// right now, so an empty or odd file is reported as it is.
fn holder(path: &Path) -> String {
    let who = match std::fs::read_to_string(path) {
        Ok(text) => match text.trim().parse::<u32>() {
            Ok(pid) => format!("pid {pid}"),
            Err(_) => "a process that has not written its pid yet".to_owned(),
        },
        Err(e) => format!("pid unknown: {e}"),
    };
    format!("{who}, from {}", path.display())
}
