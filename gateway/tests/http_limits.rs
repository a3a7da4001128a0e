//! The HTTP server's limits against clients that hold connections open: a
//! partial request header (slowloris) is cut off after the header timeout,
//! a connection on which nothing moves after the idle timeout, and over
//! `max_connections` a new connection is closed at once. Each is counted
//! in `/metrics`. Timeouts are configured short (1 s) and every wait is
//! bounded.

mod common;
mod ws_common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{within, within_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use ws_common::Gw;

/// How long a connection may take to be closed after its timeout fired.
const SLACK: Duration = Duration::from_secs(4);

async fn open(addr: SocketAddr) -> TcpStream {
    within("TCP connect", TcpStream::connect(addr))
        .await
        .expect("connect to the HTTP listener")
}

/// Reads until the server closes the connection (EOF or reset) and
/// returns what it sent; fails if that takes longer than `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    within_for(limit, "the server to close the connection", async {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return seen,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
}

/// Sends `GET path` on a keep-alive connection and reads the whole
/// response (headers and a Content-Length body).
async fn get(stream: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    within("an HTTP response", async {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.expect("read response");
            assert!(
                n > 0,
                "closed mid-response: {}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).into_owned();
            let Some(end) = text.find("\r\n\r\n") else {
                continue;
            };
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().expect("length"))
                })
                .expect("a Content-Length header");
            if got.len() >= end + 4 + len {
                return text;
            }
        }
    })
    .await
}

/// The value of the `aviary_http_connections_refused_total` sample for
/// `reason`, read through `/metrics`.
async fn refused(http: SocketAddr, reason: &str) -> u64 {
    let mut stream = open(http).await;
    let text = get(&mut stream, "/metrics").await;
    let key = format!("aviary_http_connections_refused_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .unwrap_or_else(|| panic!("no {key} in /metrics"))
        .parse()
        .expect("a number")
}

#[tokio::test]
async fn a_partial_header_is_cut_off_after_the_header_timeout() {
    let gw = Gw::start_with(|c| c.http.header_read_timeout_secs = 1).await;
    let mut slow = open(gw.http).await;
    let started = Instant::now();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("send a partial header");
    closed_within(&mut slow, Duration::from_secs(1) + SLACK).await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed before the timeout: {:?}",
        started.elapsed()
    );
    assert_eq!(refused(gw.http, "header_timeout").await, 1);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let gw = Gw::start_with(|c| {
        c.http.idle_timeout_secs = 1;
        c.http.header_read_timeout_secs = 30;
    })
    .await;
    let mut idle = open(gw.http).await;
    let reply = get(&mut idle, "/healthz").await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let quiet_since = Instant::now();
    closed_within(&mut idle, Duration::from_secs(1) + SLACK).await;
    assert!(quiet_since.elapsed() >= Duration::from_millis(900));

    // A request body that stops coming is no better.
    let mut stalled = open(gw.http).await;
    stalled
        .write_all(
            b"POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"topic\":",
        )
        .await
        .expect("send a partial body");
    closed_within(&mut stalled, Duration::from_secs(1) + SLACK).await;
    assert_eq!(refused(gw.http, "idle_timeout").await, 2);
}

#[tokio::test]
async fn over_max_connections_a_new_connection_is_closed_at_once() {
    let gw = Gw::start_with(|c| c.http.max_connections = 2).await;
    // Two keep-alive connections that have been served hold both places.
    let mut first = open(gw.http).await;
    let mut second = open(gw.http).await;
    for held in [&mut first, &mut second] {
        assert!(get(held, "/healthz").await.starts_with("HTTP/1.1 200"));
    }
    let mut third = open(gw.http).await;
    let _ = third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let answer = closed_within(&mut third, SLACK).await;
    assert!(
        answer.is_empty(),
        "the third connection was served: {answer:?}"
    );
    // The two held connections still work.
    assert!(get(&mut second, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));

    // Once one closes, its place is free again: the metrics can be read.
    drop(first);
    let count = within("a free place for /metrics", async {
        loop {
            let mut probe = open(gw.http).await;
            let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
            let _ = probe.write_all(request).await;
            let text =
                String::from_utf8_lossy(&closed_within(&mut probe, SLACK).await).into_owned();
            let key = "aviary_http_connections_refused_total{reason=\"max_connections\"} ";
            if let Some(v) = text.lines().find_map(|l| l.strip_prefix(key)) {
                break v.parse::<u64>().expect("a number");
            }
            // Refused too: the closed connection's place is not free yet.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(count >= 1, "refusals counted: {count}");
}
