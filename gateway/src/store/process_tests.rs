//! Tests with a second process: the test binary runs itself as a helper
//! (an ignored test that acts only when its environment variable is set),
//! and is killed with SIGKILL, as a crashing gateway would be.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use super::tests::samples::message;
use super::*;

/// What the helper does, and in which data directory: `lock:DIR` or
/// `commit:DIR`.
const HELPER: &str = "AVIARY_STORE_TEST_HELPER";

/// Batches the crash helper commits at most; the parent kills it long
/// before, so this only bounds a helper whose parent went away.
const CRASH_BATCHES: u64 = 100_000;
/// Messages per batch of the crash helper.
const PER_BATCH: u64 = 10;

/// Not a test: the other process of the tests below.
#[test]
#[ignore = "helper process, started by the tests of store::process_tests"]
fn helper_process() {
    let Some(what) = std::env::var(HELPER).ok() else {
        return;
    };
    let (mode, dir) = what.split_once(':').unwrap();
    let store = DiskStore::open(Path::new(dir), SyncMode::Process).unwrap();
    let mut out = std::io::stdout();
    match mode {
        "lock" => {
            writeln!(out, "LOCKED").unwrap();
            out.flush().unwrap();
            // Holds the store until stdin closes (the parent ends) or a kill.
            let _ = std::io::stdin().read(&mut [0u8; 1]);
        }
        _ => {
            for batch in 0..CRASH_BATCHES {
                store.commit(&batch_ops(batch)).unwrap();
                // Printed only once the commit returned: "acknowledged".
                writeln!(out, "{batch}").unwrap();
                out.flush().unwrap();
            }
        }
    }
}

fn batch_ops(batch: u64) -> Vec<Op> {
    (0..PER_BATCH)
        .map(|i| Op::PutMessage {
            id: MessageId(batch * PER_BATCH + i),
            message: message("pets/1/location", b"{\"lat\":1.0,\"lng\":2.0}"),
        })
        .collect()
}

/// Starts the helper in `mode` on `dir`.
fn spawn_helper(mode: &str, dir: &Path) -> (Child, impl Iterator<Item = String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "store::process_tests::helper_process",
            "--ignored",
            "--nocapture",
        ])
        .env(HELPER, format!("{mode}:{}", dir.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout: ChildStdout = child.stdout.take().unwrap();
    (child, BufReader::new(stdout).lines().map_while(Result::ok))
}

#[test]
fn another_process_holding_the_lock_is_named_and_its_kill_frees_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut lines) = spawn_helper("lock", dir.path());
    assert!(
        lines.any(|l| l == "LOCKED"),
        "the helper did not take the lock"
    );
    let e = DiskStore::open(dir.path(), SyncMode::Process).unwrap_err();
    assert!(
        e.to_string().contains(&format!("pid {}", child.id())),
        "{e}"
    );
    // kill -9: the OS drops the lock; the pid left in the file is stale.
    child.kill().unwrap();
    child.wait().unwrap();
    DiskStore::open(dir.path(), SyncMode::Process).unwrap();
}

#[test]
fn kill_9_loses_no_committed_batch_and_tears_none() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, lines) = spawn_helper("commit", dir.path());
    // Kill mid-stream, once 300 batches were acknowledged.
    let acked = lines
        .filter_map(|l| l.parse::<u64>().ok())
        .find(|&b| b >= 300)
        .expect("the helper committed 300 batches");
    child.kill().unwrap();
    child.wait().unwrap();
    let snap = DiskStore::open(dir.path(), SyncMode::Process)
        .unwrap()
        .load()
        .unwrap();
    let ids: Vec<u64> = snap.messages.keys().map(|id| id.0).collect();
    // Every batch acknowledged is there, whole; what follows is a prefix of
    // whole batches too (a batch written but not yet acknowledged may be).
    let batches = ids.len() as u64 / PER_BATCH;
    assert!(
        batches > acked,
        "{batches} batches for {acked} acknowledged"
    );
    assert_eq!(ids, (0..batches * PER_BATCH).collect::<Vec<_>>());
}
