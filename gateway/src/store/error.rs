//! Why the store could not open or commit. Each message names the path and
//! says what the operator can do, because most of these stop the gateway
//! at start.

use std::path::PathBuf;
use std::sync::Arc;

/// A store failure. `Clone`, so that one failed batch can fail the ticket of
/// every submitter in it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory cannot be created, opened or written.
    #[error(
        "cannot use the data directory {path}: {source}; check that it exists or can be \
         created and is writable by this user, or choose another with --data-dir"
    )]
    DataDir {
        /// The directory or file.
        path: PathBuf,
        /// The I/O error.
        source: Arc<std::io::Error>,
    },
    /// Another process holds the data directory's lock.
    #[error(
        "the data directory {path} is in use by another Aviary gateway ({holder}); stop that \
         process first, or give this one another --data-dir"
    )]
    Locked {
        /// The data directory.
        path: PathBuf,
        /// Who holds it: `pid N` as written in the lock file, or that it
        /// could not be read.
        holder: String,
    },
    /// The store was written by a newer Aviary.
    #[error(
        "the store in {path} has format version {found}, but this Aviary reads versions up to \
         {supported}; run the newer Aviary that wrote it, or move the directory aside to start \
         with an empty store"
    )]
    NewerFormat {
        /// The store directory.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The store's files or records are damaged.
    #[error(
        "the store in {path} is corrupt: {detail}; restore the directory from a backup, or move \
         it aside to start with an empty store (its sessions, queues and retained messages are \
         then lost)"
    )]
    Corrupt {
        /// The store directory or the damaged file.
        path: PathBuf,
        /// What is wrong, and where.
        detail: String,
    },
    /// Writing or reading failed after a successful open (disk full, I/O
    /// error). The batch was not committed.
    #[error(
        "the store in {path} failed: {detail}; nothing of this batch was acknowledged; check \
         free disk space and the disk's health, then restart the gateway"
    )]
    Io {
        /// The store directory.
        path: PathBuf,
        /// The engine's error.
        detail: String,
    },
    /// An operation the store cannot hold (a key too long). Nothing of the
    /// commit was applied.
    #[error("the store refused a commit: {reason}; nothing of it was applied")]
    Invalid {
        /// Why.
        reason: String,
    },
    /// The commit reached the local store but not its replica's log (see `store::replica`):
    /// its submitters are told, and acknowledge nothing. The next commit starts the log
    /// again with a snapshot.
    #[error(
        "the store's replica did not take a commit: {detail}; nothing of this batch was \
         acknowledged"
    )]
    Replica {
        /// What the replica said.
        detail: String,
    },
    /// The writer task has stopped: the gateway is shutting down.
    #[error("the store's writer has stopped (the gateway is shutting down); nothing was written")]
    Closed,
}

impl StoreError {
    /// A [`StoreError::DataDir`] for `path`.
    pub(crate) fn data_dir(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::DataDir {
            path: path.into(),
            source: Arc::new(source),
        }
    }
}
