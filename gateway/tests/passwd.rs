//! Password files against the real mosquitto tools (Debian `mosquitto` 2.0): a file made by
//! `mosquitto_passwd` is read by our reader, and a file made by `aviary passwd` is accepted by
//! the `mosquitto` broker itself. A missing mosquitto fails the test, saying what to install
//! (`cargo xtask test` installs it): a test that cannot run its oracle has tested nothing.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use aviary::auth::password::PasswordFile;

const MOSQUITTO_PASSWD: &str = "/usr/bin/mosquitto_passwd";
const MOSQUITTO: &str = "/usr/sbin/mosquitto";
const MOSQUITTO_PUB: &str = "/usr/bin/mosquitto_pub";
const DEADLINE: Duration = Duration::from_secs(20);

/// Fails the test unless `tools` are installed.
fn require(tools: &[&str]) {
    let missing: Vec<_> = tools.iter().filter(|t| !Path::new(t).exists()).collect();
    assert!(
        missing.is_empty(),
        "{missing:?} not installed: these tests need the Debian package `mosquitto` \
         (`apt-get install mosquitto`; `cargo xtask test` installs it)"
    );
}

/// Waits for `child` at most [`DEADLINE`], killing it if it overruns.
fn wait_bounded(child: &mut Child) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("child process did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn run(cmd: &mut Command) -> ExitStatus {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_bounded(&mut child)
}

#[test]
fn our_reader_accepts_mosquitto_passwd_files() {
    require(&[MOSQUITTO_PASSWD]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pw");
    let pw = path.to_str().unwrap();
    let add = |args: &[&str]| {
        let status = run(Command::new(MOSQUITTO_PASSWD).args(args));
        assert!(status.success(), "mosquitto_passwd {args:?}: {status}");
    };
    add(&["-b", "-c", pw, "alice", "secret"]);
    add(&["-b", "-H", "sha512", pw, "bob", "hunter2"]);
    add(&["-b", "-H", "sha512-pbkdf2", pw, "carol", "pa:ss word"]);

    let file = PasswordFile::load(&path).unwrap();
    assert_eq!(file.len(), 3);
    assert!(file.verify("alice", b"secret"));
    assert!(!file.verify("alice", b"Secret"));
    assert!(file.verify("bob", b"hunter2"));
    assert!(!file.verify("bob", b"secret"));
    assert!(file.verify("carol", b"pa:ss word"));
    assert!(!file.verify("dave", b"secret"));
}

/// Runs `aviary passwd [extra] FILE USER` with `stdin` as the piped password.
fn aviary_passwd(extra: &[&str], file: &Path, user: &str, stdin: &str) -> ExitStatus {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aviary"))
        .arg("passwd")
        .args(extra)
        .arg(file)
        .arg(user)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    wait_bounded(&mut child)
}

/// The mosquitto broker, killed on drop.
struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_mosquitto(dir: &Path, password_file: &Path) -> (Broker, u16) {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Run as root, mosquitto would switch to user `mosquitto`, who cannot read our 0600 file;
    // naming the current user keeps it as it is (and is ignored when not root).
    let me = Command::new("id").arg("-un").output().unwrap();
    let me = String::from_utf8(me.stdout).unwrap();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\nuser {}\n",
            password_file.display(),
            me.trim()
        ),
    )
    .unwrap();
    let child = Command::new(MOSQUITTO)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut broker = Broker(child);
    // Ready when it accepts connections; it exits at once on a bad password file.
    let start = Instant::now();
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        if let Some(status) = broker.0.try_wait().unwrap() {
            panic!("mosquitto exited: {status} (rejected our password file?)");
        }
        assert!(start.elapsed() < DEADLINE, "mosquitto did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    (broker, port)
}

fn publish(port: u16, user: &str, password: &str) -> bool {
    run(Command::new(MOSQUITTO_PUB)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args([
            "-u",
            user,
            "-P",
            password,
            "-t",
            "pets/1/location",
            "-m",
            "x",
        ]))
    .success()
}

#[test]
fn mosquitto_accepts_aviary_passwd_files() {
    require(&[MOSQUITTO, MOSQUITTO_PUB]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pw");
    assert!(aviary_passwd(&[], &path, "alice", "secret\n").success());
    assert!(aviary_passwd(&[], &path, "bob", "hunter2\n").success());
    assert!(aviary_passwd(&[], &path, "carol", "gone\n").success());
    assert!(aviary_passwd(&["-D"], &path, "carol", "").success());
    assert!(
        !aviary_passwd(&["-D"], &path, "carol", "").success(),
        "absent user"
    );
    assert!(
        !aviary_passwd(&[], &path, "a:b", "x\n").success(),
        "bad username"
    );
    assert!(
        !aviary_passwd(&[], &path, "dave", "\n").success(),
        "empty password"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("alice:$7$101$"), "{text}");
    assert_eq!(text.lines().count(), 2, "{text}");

    let (_broker, port) = start_mosquitto(dir.path(), &path);
    assert!(publish(port, "alice", "secret"));
    assert!(publish(port, "bob", "hunter2"));
    assert!(!publish(port, "alice", "hunter2"), "wrong password refused");
    assert!(!publish(port, "carol", "gone"), "deleted user refused");
}
