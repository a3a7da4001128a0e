//! The data directory's lock: one gateway per directory.
//!
//! The lock is an OS file lock (`flock` on Linux) held for as long as the
//! store is open. The kernel releases it when the process dies, `kill -9`
//! included, so a lock file left by a crash never blocks the next start.
//! The pid written into the file is only for the message that names the
//! other process. Two opens in one process conflict too: each open file
//! description holds its own lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use super::StoreError;

/// The lock file's name inside the data directory.
pub(crate) const LOCK_FILE: &str = "aviary.lock";

/// A held lock; dropping it releases the lock (closing the file does).
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Takes the lock of `dir`, or says who holds it.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StoreError::data_dir(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    holder: format!("{}, from {}", holder(&path), path.display()),
                    path: dir.to_owned(),
                })
            }
            Err(TryLockError::Error(e)) => return Err(StoreError::data_dir(&path, e)),
        }
        write_pid(&mut file).map_err(|e| StoreError::data_dir(&path, e))?;
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
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
    match std::fs::read_to_string(path) {
        Ok(text) => match text.trim().parse::<u32>() {
            Ok(pid) => format!("pid {pid}"),
            Err(_) => "a process that has not written its pid yet".to_owned(),
        },
        Err(e) => format!("pid unknown: {e}"),
    }
}
