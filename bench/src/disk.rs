//! What a broker costs the disk: the bytes its process caused to be written (`/proc/PID/io`)
//! and the space its data directory takes (what `du` says, and the files' apparent sizes).

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use anyhow::{Context as _, Result};

/// The storage counters of `/proc/PID/io`, summed over all the process's threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IoCounters {
    /// Bytes the process caused to be sent to the storage layer, counted when the page
    /// cache pages are dirtied: what a write costs the disk, whether or not it was fsynced.
    pub(crate) write_bytes: u64,
    /// Of those, bytes that never reached the disk because the file was truncated or deleted
    /// while the pages were still dirty.
    pub(crate) cancelled_write_bytes: u64,
}

impl IoCounters {
    /// Reads the counters of process `pid`.
    pub(crate) fn of(pid: u32) -> Result<Self> {
        let path = format!("/proc/{pid}/io");
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        parse_io(&text).with_context(|| format!("cannot parse {path}"))
    }

    /// What happened between `earlier` and `self`.
    pub(crate) fn since(self, earlier: Self) -> Self {
        Self {
            write_bytes: self.write_bytes.saturating_sub(earlier.write_bytes),
            cancelled_write_bytes: self
                .cancelled_write_bytes
                .saturating_sub(earlier.cancelled_write_bytes),
        }
    }
}

/// The `write_bytes` and `cancelled_write_bytes` lines of `/proc/PID/io`.
fn parse_io(text: &str) -> Option<IoCounters> {
    let field = |key: &str| -> Option<u64> {
        text.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))?
            .trim()
            .parse()
            .ok()
    };
    Some(IoCounters {
        write_bytes: field("write_bytes")?,
        cancelled_write_bytes: field("cancelled_write_bytes")?,
    })
}

/// The space a directory tree takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DirUsage {
    /// Blocks allocated, in bytes: what `du` reports. Preallocated but unwritten space (a
    /// journal file created at its full size) costs nothing here.
    pub(crate) allocated: u64,
    /// Sum of the files' sizes: what `du --apparent-size` reports.
    pub(crate) apparent: u64,
    /// Regular files.
    pub(crate) files: u64,
    /// Of `allocated`, what journal files (`*.jnl`, fjall's write-ahead log) take; the rest
    /// is the tables the journal is flushed into.
    pub(crate) journal_allocated: u64,
}

impl DirUsage {
    /// Walks `dir`; a missing directory takes no space. Files that vanish during the walk
    /// (a compaction deleting them) are skipped.
    pub(crate) fn of(dir: &Path) -> Result<Self> {
        let mut usage = Self::default();
        if dir.exists() {
            usage.add(dir)?;
        }
        Ok(usage)
    }

    fn add(&mut self, dir: &Path) -> Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
        };
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                self.add(&entry.path())?;
            } else if meta.is_file() {
                // st_blocks counts 512-byte units whatever the file system's block size.
                self.allocated += meta.blocks() * 512;
                if entry.path().extension().is_some_and(|ext| ext == "jnl") {
                    self.journal_allocated += meta.blocks() * 512;
                }
                self.apparent += meta.len();
                self.files += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_write_bytes_from_proc_io() {
        let text = "rchar: 10\nwchar: 20\nsyscr: 1\nsyscw: 2\nread_bytes: 4096\n\
                    write_bytes: 8192\ncancelled_write_bytes: 4096\n";
        let io = parse_io(text).unwrap();
        assert_eq!(io.write_bytes, 8192);
        assert_eq!(io.cancelled_write_bytes, 4096);
        let later = IoCounters {
            write_bytes: 10_000,
            cancelled_write_bytes: 4096,
        };
        assert_eq!(later.since(io).write_bytes, 1808);
        assert!(parse_io("rchar: 1\n").is_none());
    }

    #[test]
    fn our_own_process_has_io_counters() {
        assert!(IoCounters::of(std::process::id()).is_ok());
    }

    #[test]
    fn sizes_a_directory_tree_like_du() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("a"), vec![1u8; 10_000]).unwrap();
        fs::write(dir.path().join("sub/b"), vec![2u8; 100]).unwrap();
        fs::write(dir.path().join("sub/0.jnl"), vec![3u8; 5_000]).unwrap();
        // A sparse file: large apparent size, nothing allocated.
        fs::File::create(dir.path().join("sparse"))
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        let usage = DirUsage::of(dir.path()).unwrap();
        assert_eq!(usage.files, 4);
        assert_eq!(usage.apparent, 15_100 + (1 << 20));
        assert!(usage.journal_allocated >= 5_000 && usage.journal_allocated < 10_000);
        assert!(
            usage.allocated >= 15_100 && usage.allocated < 1 << 20,
            "{usage:?}"
        );
        assert_eq!(
            DirUsage::of(&dir.path().join("missing")).unwrap(),
            DirUsage::default()
        );
    }
}
