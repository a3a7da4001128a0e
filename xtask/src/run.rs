//! `cargo xtask run [ARGS...]` and `cargo xtask demo [ARGS...]`: build and start the gateway.
//!
//! This is the README's first command, so before the (possibly long) release build it says what
//! will happen and where to point a browser and an MQTT client once the gateway is up.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::Result;

use crate::workspace::Workspace;

/// The gateway's default HTTP address (web app at `/`, MQTT over WebSocket at `/mqtt`).
const DEFAULT_HTTP: &str = "127.0.0.1:8080";
/// The gateway's default MQTT/TCP address.
const DEFAULT_MQTT: &str = "127.0.0.1:1883";
/// How to sign in to the demo's map: the users `aviary --demo` writes (the gateway logs the
/// same next to the URL; gateway/src/simulator/demo_auth.rs has them).
pub(crate) const DEMO_SIGN_IN: &str =
    "sign in as alice / alice-demo (pets 1–12) or bob / bob-demo (pets 13–25)";

/// Builds and runs `aviary ARGS...` in release mode; `demo` adds `--demo` (simulated pets).
pub(crate) fn run(args: &[String], demo: bool) -> Result<()> {
    let workspace = Workspace::find()?;
    let mut gateway_args: Vec<String> = args.to_vec();
    if demo && !gateway_args.iter().any(|arg| arg == "--demo") {
        gateway_args.insert(0, "--demo".to_owned());
    }
    // `aviary passwd ...` and `aviary simulate ...` are tools, not the server: no banner.
    let starts_server = gateway_args.first().is_none_or(|arg| arg.starts_with('-'));
    // The demo is the README's first command: it brings up the map too, building it first.
    if demo && starts_server {
        crate::tools::ensure(&workspace, &crate::tools::WEB)?;
        crate::web::build(&workspace)?;
    }
    eprintln!("==> building the gateway `aviary` (release) and starting it");
    if starts_server {
        let http = flag_value(&gateway_args, "--http").unwrap_or(DEFAULT_HTTP);
        let mqtt = flag_value(&gateway_args, "--mqtt").unwrap_or(DEFAULT_MQTT);
        eprintln!(
            "==> once it is up: web app at {}, MQTT over TCP on {}, Ctrl-C to stop",
            browser_url(http),
            describe_addr(mqtt)
        );
        if gateway_args.iter().any(|arg| arg == "--demo") {
            eprintln!("==> demo users: {DEMO_SIGN_IN}");
        }
    }
    // Replaced by cargo, which replaces itself with the gateway: the gateway then holds this
    // process's id, so SIGINT or SIGTERM for `cargo xtask demo` stops it gracefully. As a
    // child, it outlived an xtask signalled alone (only a terminal's Ctrl-C reached both).
    Err(workspace
        .cargo(["run", "--release", "-p", "aviary", "--"])
        .args(gateway_args)
        .exec())
}

/// The value of `--flag VALUE` or `--flag=VALUE`, the last one winning like in most parsers.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let mut value = None;
    for (index, arg) in args.iter().enumerate() {
        if arg == flag {
            value = args.get(index + 1).map(String::as_str);
        } else if let Some(rest) = arg.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            value = Some(rest);
        }
    }
    value
}

/// The URL to open for an HTTP listen address: a wildcard address becomes loopback, since a
/// browser cannot open `0.0.0.0`.
fn browser_url(addr: &str) -> String {
    match addr.parse::<SocketAddr>() {
        Ok(socket) if socket.port() == 0 => describe_addr(addr),
        Ok(mut socket) => {
            if socket.ip().is_unspecified() {
                socket.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
            }
            format!("http://{socket}/")
        }
        Err(_) => format!("http://{addr}/"),
    }
}

/// A listen address for humans: port 0 means the gateway picks one and logs it.
fn describe_addr(addr: &str) -> String {
    if addr.ends_with(":0") {
        format!("{addr} (a free port; the gateway logs which)")
    } else {
        addr.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|&arg| arg.to_owned()).collect()
    }

    #[test]
    fn finds_flag_values_in_both_spellings() {
        let args = strings(&["--demo", "--http", "0.0.0.0:80", "--mqtt=127.0.0.1:1884"]);
        assert_eq!(flag_value(&args, "--http"), Some("0.0.0.0:80"));
        assert_eq!(flag_value(&args, "--mqtt"), Some("127.0.0.1:1884"));
        assert_eq!(flag_value(&args, "--data-dir"), None);
    }

    #[test]
    fn browser_urls_point_somewhere_a_browser_can_open() {
        assert_eq!(browser_url(DEFAULT_HTTP), "http://127.0.0.1:8080/");
        assert_eq!(browser_url("0.0.0.0:8081"), "http://127.0.0.1:8081/");
        assert_eq!(browser_url("[::1]:8080"), "http://[::1]:8080/");
        assert_eq!(
            browser_url("example.test:8080"),
            "http://example.test:8080/"
        );
        assert!(browser_url("127.0.0.1:0").contains("free port"));
    }
}
