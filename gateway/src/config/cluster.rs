//! `[cluster]`: several gateways sharing one broker state over NATS JetStream. Without the
//! section (no `nats` URLs) nothing changes and no NATS is needed.

use serde::Deserialize;

use super::ConfigError;

/// Cluster mode (`[cluster]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// NATS servers to connect to, like `nats://127.0.0.1:4222`; setting any turns cluster
    /// mode on.
    pub nats: Vec<String>,
    /// This gateway's unique name in the cluster. Default: the host name and the MQTT port.
    pub node: Option<String>,
    /// JetStream replicas of Aviary's streams and buckets. Default: as many NATS servers as
    /// are listed, at most 3 (1 for a single server).
    pub replicas: Option<u8>,
    /// How long a node's lease lasts without a renewal, in milliseconds (default 15 000).
    /// Every node of a cluster must use the same value: it is the lease bucket's age limit.
    /// Renewals come every fifth of it; a node that cannot renew it stops serving after half
    /// of it (disconnected from NATS) or four fifths (JetStream not answering); other nodes
    /// act on the wills of a node whose lease ran out. Shorter leases notice a dead node
    /// sooner, but a JetStream leader election (seconds) must fit in four fifths of one
    /// with a renewal interval to spare; tests use 2 000.
    pub lease_ms: Option<u64>,
}

impl ClusterConfig {
    /// Whether cluster mode is on.
    pub fn enabled(&self) -> bool {
        !self.nats.is_empty()
    }

    /// The JetStream replicas to ask for.
    pub fn replicas(&self) -> u8 {
        self.replicas
            .unwrap_or_else(|| self.nats.len().clamp(1, 3) as u8)
    }

    /// How long a node's lease lasts without a renewal.
    pub fn lease(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.lease_ms.unwrap_or(DEFAULT_LEASE_MS))
    }

    /// This node's name: the configured one, or the host name and the MQTT port, made of the
    /// characters a NATS consumer and key may hold.
    pub fn node_name(&self, mqtt_port: u16) -> String {
        if let Some(node) = &self.node {
            return node.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "aviary".to_owned());
        let host: String = host
            .chars()
            .map(|c| if node_char(c) { c } else { '-' })
            .collect();
        format!("{host}-{mqtt_port}")
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self
            .nats
            .iter()
            .any(|u| !(u.starts_with("nats://") || u.starts_with("tls://")))
        {
            return Err(ConfigError::Value {
                key: "cluster.nats",
                reason: "every entry must be a NATS URL, like nats://127.0.0.1:4222",
            });
        }
        if matches!(self.replicas, Some(r) if !(1..=5).contains(&r)) {
            return Err(ConfigError::Value {
                key: "cluster.replicas",
                reason: "must be between 1 and 5 (JetStream's limit)",
            });
        }
        if matches!(self.lease_ms, Some(ms) if !(1_000..=600_000).contains(&ms)) {
            return Err(ConfigError::Value {
                key: "cluster.lease_ms",
                reason: "must be between 1000 and 600000 (1 s to 10 min)",
            });
        }
        if let Some(node) = &self.node {
            if node.is_empty() || node.len() > 64 || !node.chars().all(node_char) {
                return Err(ConfigError::Value {
                    key: "cluster.node",
                    reason: "must be 1 to 64 letters, digits, '-' or '_'",
                });
            }
        }
        if !self.enabled()
            && (self.node.is_some() || self.replicas.is_some() || self.lease_ms.is_some())
        {
            return Err(ConfigError::Value {
                key: "cluster.nats",
                reason: "cluster.node, replicas and lease_ms need the NATS servers to connect to",
            });
        }
        Ok(())
    }
}

/// The lease of a node, in milliseconds, unless `[cluster] lease_ms` says otherwise.
const DEFAULT_LEASE_MS: u64 = 15_000;

/// The characters a node name may hold: it names a JetStream consumer and key-value keys.
fn node_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ClusterConfig, String> {
        let c: ClusterConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn off_without_servers() {
        let c = parse("").unwrap();
        assert!(!c.enabled());
        let e = parse("node = \"a\"").unwrap_err();
        assert!(e.contains("cluster.nats"), "{e}");
    }

    #[test]
    fn replicas_follow_the_servers_up_to_three() {
        let one = parse("nats = [\"nats://127.0.0.1:4222\"]").unwrap();
        assert_eq!(one.replicas(), 1);
        let urls: Vec<String> = (0..5)
            .map(|i| format!("\"nats://127.0.0.1:{}\"", 4222 + i))
            .collect();
        let five = parse(&format!("nats = [{}]", urls.join(","))).unwrap();
        assert_eq!(five.replicas(), 3);
        let set = parse("nats = [\"nats://h:1\"]\nreplicas = 1").unwrap();
        assert_eq!(set.replicas(), 1);
        assert!(parse("nats = [\"nats://h:1\"]\nreplicas = 7")
            .unwrap_err()
            .contains("cluster.replicas"));
    }

    #[test]
    fn the_lease_defaults_to_fifteen_seconds_and_is_bounded() {
        let c = parse("nats = [\"nats://h:1\"]").unwrap();
        assert_eq!(c.lease(), std::time::Duration::from_secs(15));
        let c = parse("nats = [\"nats://h:1\"]\nlease_ms = 2000").unwrap();
        assert_eq!(c.lease(), std::time::Duration::from_secs(2));
        let e = parse("nats = [\"nats://h:1\"]\nlease_ms = 10").unwrap_err();
        assert!(e.contains("cluster.lease_ms"), "{e}");
    }

    #[test]
    fn names_and_urls_are_checked() {
        let e = parse("nats = [\"127.0.0.1:4222\"]").unwrap_err();
        assert!(e.contains("cluster.nats"), "{e}");
        let e = parse("nats = [\"nats://h:1\"]\nnode = \"gw a\"").unwrap_err();
        assert!(e.contains("cluster.node"), "{e}");
        let c = parse("nats = [\"nats://h:1\"]\nnode = \"gw-a\"").unwrap();
        assert_eq!(c.node_name(1883), "gw-a");
        let c = parse("nats = [\"nats://h:1\"]").unwrap();
        let name = c.node_name(1883);
        assert!(
            name.ends_with("-1883") && name.chars().all(node_char),
            "{name}"
        );
    }
}
