//! Starting the real `aviary` binary the way a new user does, when something is in the way: a
//! taken port must end the process with a message that names the address and the flag that
//! moves it, not a bare OS error.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Runs `aviary ARGS` in a scratch data dir and returns its exit success and everything it
/// printed; fails the test if it has not exited within 30 s.
fn run_aviary(args: &[&str]) -> (bool, String) {
    // A data dir of its own: two gateways may not share one (the store's lock).
    let dir = tempfile::tempdir().expect("temporary data dir");
    let child = Command::new(env!("CARGO_BIN_EXE_aviary"))
        .args(args)
        .arg("--data-dir")
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start aviary");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(output) => output.expect("aviary output"),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("aviary {args:?} was still running after 30 s; it should have refused");
        }
    };
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn a_taken_mqtt_port_names_the_address_and_the_flag() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (ok, out) = run_aviary(&["--mqtt", &addr, "--http", "127.0.0.1:0"]);
    assert!(!ok, "aviary must exit with an error: {out}");
    assert!(out.contains(&addr), "no address in: {out}");
    assert!(out.contains("--mqtt ADDR"), "no flag in: {out}");
    assert!(
        out.contains("another program is listening"),
        "no cause in: {out}"
    );
}

#[test]
fn a_taken_http_port_names_the_address_and_the_flag() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (ok, out) = run_aviary(&["--mqtt", "127.0.0.1:0", "--http", &addr]);
    assert!(!ok, "aviary must exit with an error: {out}");
    assert!(out.contains(&addr), "no address in: {out}");
    assert!(out.contains("--http ADDR"), "no flag in: {out}");
}
