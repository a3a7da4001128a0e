//! `GET /metrics` in the Prometheus text exposition format.

use std::fmt::Write;
use std::sync::atomic::AtomicU64;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
use crate::broker::metrics::{Denied, Limit, TRANSPORTS, VERSIONS};
use crate::broker::Metrics;

/// Writes one metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

fn get(c: &AtomicU64) -> u64 {
    Metrics::get(c)
}

/// One counter family with one label, a sample per `(value, counter)`.
fn labelled(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    samples: Vec<(&str, &AtomicU64)>,
) {
    let samples: Vec<(String, u64)> = samples
        .into_iter()
        .map(|(value, c)| (format!("{{{label}=\"{value}\"}}"), get(c)))
        .collect();
    let samples: Vec<(&str, u64)> = samples.iter().map(|(l, n)| (l.as_str(), *n)).collect();
    family(out, name, "counter", help, &samples);
}

/// Failed logins, ACL refusals by action and limit refusals by key.
fn security(out: &mut String, m: &Metrics) {
    family(
        out,
        "aviary_login_failures_total",
        "counter",
        "Logins refused (MQTT CONNECT and REST API): bad username or password, or not authorized.",
        &[("", get(&m.login_failures))],
    );
    labelled(
        out,
        "aviary_acl_denied_total",
        "Operations the ACL refused, by action.",
        "action",
        Denied::ALL
            .iter()
            .map(|d| d.as_str())
            .zip(&m.acl_denied)
            .collect(),
    );
    labelled(
        out,
        "aviary_limit_refusals_total",
        "Refusals by a configured limit, by its key.",
        "limit",
        Limit::ALL
            .iter()
            .map(|l| l.key())
            .zip(&m.limit_refusals)
            .collect(),
    );
}

/// `value` as a Prometheus label value: backslash, double quote and newline escaped.
fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// This node's part in the cluster: its name and state, and its cluster counters.
fn cluster_families(out: &mut String, cluster: &crate::cluster::Node) {
    let labels = format!(
        "{{node=\"{}\",state=\"{}\"}}",
        label_value(cluster.leases().node()),
        cluster.leases().link().state()
    );
    family(
        out,
        "aviary_cluster_node",
        "gauge",
        "This node of the cluster (1), with its name and its state: up, disconnected or cut off.",
        &[(labels.as_str(), 1)],
    );
    for (name, help, value) in cluster.metrics().counters() {
        family(out, name, "counter", help, &[("", value)]);
    }
}

pub(super) async fn render(State(app): State<AppState>) -> impl IntoResponse {
    let b = &app.broker;
    let m = b.metrics();
    let mut out = String::with_capacity(4096);

    let mut connections = Vec::new();
    for (t, transport) in TRANSPORTS.iter().enumerate() {
        for (v, version) in VERSIONS.iter().enumerate() {
            let labels = format!(
                "{{transport=\"{}\",protocol=\"{version}\"}}",
                transport.as_str()
            );
            connections.push((labels, get(&m.connections[t][v])));
        }
    }
    let conn: Vec<(&str, u64)> = connections.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    family(
        &mut out,
        "aviary_connections",
        "gauge",
        "Open MQTT connections by transport and protocol version.",
        &conn,
    );
    let depths = b.queue_depths();
    let queued: u64 = depths.iter().map(|d| d.1 as u64).sum();
    let deepest = depths.first().map_or(0, |d| d.1 as u64);
    let gauges: [(&str, &str, u64); 6] = [
        (
            "aviary_sessions",
            "Sessions, online or not.",
            b.session_count() as u64,
        ),
        (
            "aviary_subscriptions",
            "Subscriptions.",
            b.subscription_count() as u64,
        ),
        (
            "aviary_retained_messages",
            "Retained messages.",
            b.retained_count() as u64,
        ),
        (
            "aviary_queued_messages",
            "Messages queued or in flight, all sessions.",
            queued,
        ),
        (
            "aviary_session_queue_depth_max",
            "Messages queued or in flight in the fullest session.",
            deepest,
        ),
        (
            "aviary_uptime_seconds",
            "Seconds since the broker started.",
            b.uptime().as_secs(),
        ),
    ];
    for (name, help, value) in gauges {
        family(&mut out, name, "gauge", help, &[("", value)]);
    }
    let counters: [(&str, &str, &AtomicU64); 8] = [
        (
            "aviary_connections_total",
            "Connections accepted.",
            &m.connections_total,
        ),
        (
            "aviary_messages_received_total",
            "PUBLISH packets received.",
            &m.messages_received,
        ),
        (
            "aviary_messages_sent_total",
            "PUBLISH packets sent.",
            &m.messages_sent,
        ),
        (
            "aviary_packets_received_total",
            "Packets received.",
            &m.packets_received,
        ),
        (
            "aviary_packets_sent_total",
            "Packets sent.",
            &m.packets_sent,
        ),
        (
            "aviary_bytes_received_total",
            "Bytes received from clients.",
            &m.bytes_received,
        ),
        (
            "aviary_bytes_sent_total",
            "Bytes sent to clients.",
            &m.bytes_sent,
        ),
        (
            "aviary_protocol_errors_total",
            "Connections closed for a protocol violation.",
            &m.protocol_errors,
        ),
    ];
    for (name, help, value) in counters {
        family(&mut out, name, "counter", help, &[("", get(value))]);
    }
    family(
        &mut out,
        "aviary_messages_dropped_total",
        "counter",
        "Messages dropped, by reason.",
        &[
            ("{reason=\"queue_full\"}", get(&m.dropped_queue_full)),
            ("{reason=\"offline_qos0\"}", get(&m.dropped_offline_qos0)),
            ("{reason=\"expired\"}", get(&m.dropped_expired)),
            ("{reason=\"too_large\"}", get(&m.dropped_too_large)),
        ],
    );
    security(&mut out, m);
    let f = &app.handshake_failures;
    family(
        &mut out,
        "aviary_websocket_handshake_failures_total",
        "counter",
        "Refused WebSocket handshakes, by reason.",
        &[
            ("{reason=\"not_websocket\"}", get(&f.not_websocket)),
            ("{reason=\"origin\"}", get(&f.origin)),
            ("{reason=\"subprotocol\"}", get(&f.subprotocol)),
            ("{reason=\"upgrade\"}", get(&f.upgrade)),
        ],
    );
    family(
        &mut out,
        "aviary_http_connections_refused_total",
        "counter",
        "HTTP connections closed by a limit, by reason.",
        &[
            (
                "{reason=\"max_connections\"}",
                get(&m.http_refused_max_connections),
            ),
            ("{reason=\"header_timeout\"}", get(&m.http_header_timeouts)),
            ("{reason=\"idle_timeout\"}", get(&m.http_idle_timeouts)),
        ],
    );
    family(
        &mut out,
        "aviary_tls_handshake_failures_total",
        "counter",
        "TLS handshakes that failed or timed out (mqtts and https).",
        &[("", get(&m.tls_handshake_failures))],
    );
    if let Some(cluster) = &app.cluster {
        cluster_families(&mut out, cluster);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}

#[cfg(test)]
mod tests {
    use super::label_value;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("gw-a"), "gw-a");
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
