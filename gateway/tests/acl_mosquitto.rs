//! The oracle for the ACL file: the real Mosquitto broker (Debian
//! `/usr/sbin/mosquitto`, 2.0) loads the same ACL as the unit tests of
//! `src/auth/acl.rs` and must answer every case of `src/auth/acl/oracle.rs` the same
//! way. A read is probed by subscribing as the user and having `writer`
//! publish the topic and then `sentinel`; a write by publishing as the user
//! while `watcher` listens, then `sentinel`. The sentinel arriving first or
//! alone means the probe was refused, so no wait is ever spent on a timeout.
//! Readiness is Mosquitto's own "running" log line, never a sleep.
//! The few cases where Mosquitto 2.0.11 substitutes `%u` as text rather than
//! as a whole level are listed in `oracle::DIFFERS_FROM_2_0_11` and expected
//! to come out the other way.

mod common;

#[path = "../src/auth/acl/oracle.rs"]
mod oracle;

use std::path::PathBuf;
use std::process::Stdio;

use common::mosquitto::{self, Process};
use common::within;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A Mosquitto broker on a free loopback port, killed when dropped.
struct Mosquitto {
    port: u16,
    _child: Child,
    _dir: tempfile::TempDir,
}

async fn start_mosquitto(acl: &str) -> Mosquitto {
    let binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("the Mosquitto broker (Debian package `mosquitto`) is the oracle of this test");
    let dir = tempfile::tempdir().expect("temp dir");
    let acl_path = dir.path().join("acl");
    std::fs::write(&acl_path, acl).expect("write acl");
    // The port is picked by the OS and released just before Mosquitto binds it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let conf = dir.path().join("mosquitto.conf");
    let text = format!(
        "listener {port} 127.0.0.1\nallow_anonymous true\nacl_file {}\n\
         persistence false\nlog_dest stderr\nlog_type all\n",
        acl_path.display()
    );
    std::fs::write(&conf, text).expect("write conf");
    let mut child = Command::new(binary)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        // The log goes to stderr, which Mosquitto does not buffer.
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start mosquitto");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    within("mosquitto to start", async {
        while let Some(line) = lines.next_line().await.expect("mosquitto output") {
            if line.contains(" running") {
                return;
            }
        }
        panic!("mosquitto exited before it was running");
    })
    .await;
    // Keep draining the log so a full pipe never blocks the broker.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Mosquitto {
        port,
        _child: child,
        _dir: dir,
    }
}

fn identity<'a>(user: Option<&'a str>, client: &'a str) -> Vec<&'a str> {
    let mut args = vec!["-i", client];
    if let Some(user) = user {
        args.extend(["-u", user]);
    }
    args
}

/// Runs one probe: `listener` subscribed to the topic and `sentinel`, the
/// probe published by `publisher`, then the sentinel by `writer`. Whether
/// the probe arrived before the sentinel is the answer.
async fn delivered(port: u16, listener: Vec<&str>, topic: &str, publisher: Vec<&str>) -> bool {
    let mut args = listener;
    args.extend(["-q", "1", "-t", topic, "-t", "sentinel"]);
    let mut sub: Process = mosquitto::subscribe(port, &args).await;
    let mut probe = publisher;
    probe.extend(["-q", "1", "-t", topic, "-m", "probe"]);
    mosquitto::publish(port, &probe).await;
    let sentinel = [
        "-u", "writer", "-i", "writer-s", "-q", "1", "-t", "sentinel", "-m", "s",
    ];
    mosquitto::publish(port, &sentinel).await;
    let first = sub.lines_with_prefix("MSG ", 1).await.remove(0);
    sub.kill().await;
    !first.ends_with(" sentinel s")
}

#[tokio::test]
async fn mosquitto_decides_every_case_as_aviary_does() {
    let broker = start_mosquitto(oracle::ACL).await;
    let mut wrong = Vec::new();
    for &(user, client, topic, write, want) in oracle::CASES {
        let me = identity(user, client);
        let got = if write {
            let watcher = vec!["-u", "watcher", "-i", "watcher"];
            delivered(broker.port, watcher, topic, me).await
        } else {
            let writer = vec!["-u", "writer", "-i", "writer-p"];
            delivered(broker.port, me, topic, writer).await
        };
        let differs = user.is_some_and(|u| oracle::DIFFERS_FROM_2_0_11.contains(&(u, topic)));
        if got != (want != differs) {
            wrong.push(format!(
                "{user:?} {client} write={write} {topic}: mosquitto says {got}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "Mosquitto disagrees:\n{}",
        wrong.join("\n")
    );
}

/// Mosquitto 2.0 grants every subscription and filters only deliveries; issue
/// 11 asks Aviary to refuse a filter that can reach nothing readable (see
/// `AclFile::can_subscribe`). This pins the Mosquitto side of that choice.
#[tokio::test]
async fn mosquitto_grants_subscriptions_it_will_never_deliver_to() {
    let broker = start_mosquitto(oracle::ACL).await;
    let port = broker.port.to_string();
    let args = [
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-d",
        "-u",
        "app-user-456",
        "-i",
        "app",
        "-q",
        "1",
        "-t",
        "other/#",
    ];
    let mut sub = Process::spawn("mosquitto_sub", &args);
    let line = sub.line_containing("Subscribed (mid:").await;
    sub.kill().await;
    assert!(line.ends_with(": 1"), "granted QoS 1: {line}");
}
