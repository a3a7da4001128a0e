//! Limits that keep one client, or one address, from taking more than its share: connections
//! in total and per source address, new connections per second per address, and the checks
//! of sizes (topic levels and length, client id length) that the reader and the handshake
//! ask for.
//!
//! Every refusal is counted ([`Metrics::limit_refusals`]) and logged, at most one line per
//! limit per [`LOG_EVERY`], saying how many refusals it stands for: under attack the log
//! says so without drowning.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::metrics::{Limit, Metrics};
use crate::config::BrokerConfig;

/// At most one log line per limit this often.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Counts and logs refusals, one line per limit per [`LOG_EVERY`].
#[derive(Debug, Default)]
pub(crate) struct RefusalLog {
    /// Per limit: when a line was last written, and refusals since.
    last: Mutex<[(Option<Instant>, u64); Limit::ALL.len()]>,
}

impl RefusalLog {
    /// Counts a refusal by `limit` and logs it unless a line about the same limit went out
    /// lately; `detail` says who and what.
    pub(crate) fn refused(&self, metrics: &Metrics, limit: Limit, detail: std::fmt::Arguments<'_>) {
        metrics.refused(limit);
        let i = limit as usize;
        let now = Instant::now();
        let refusals = {
            let mut last = self.last.lock();
            let (at, count) = &mut last[i];
            *count += 1;
            if at.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
                return;
            }
            *at = Some(now);
            std::mem::take(count)
        };
        tracing::warn!(
            limit = limit.key(),
            refusals,
            "refused by limit {} ({detail}); refusals by this limit since its last log line: {refusals}",
            limit.key()
        );
    }
}

/// The connections held per source address, and the new ones' rate.
#[derive(Debug)]
pub(crate) struct ConnectionGate {
    total: AtomicUsize,
    by_addr: Mutex<ByAddr>,
}

/// The addresses with connections open or a bucket not yet full again. Those with neither
/// are swept out whenever the table has doubled since the last sweep, so a stream of new
/// addresses cannot grow it without bound and a sweep's cost is spread over many admits.
#[derive(Debug)]
struct ByAddr {
    map: HashMap<IpAddr, AddrState>,
    sweep_at: usize,
}

/// Sweep no table smaller than this.
const MIN_SWEEP: usize = 1024;

#[derive(Debug)]
struct AddrState {
    open: usize,
    /// Token bucket of new connections: tokens left, as of `refilled`.
    tokens: f64,
    refilled: Instant,
}

impl AddrState {
    /// Nothing open and a full bucket again: as good as never seen.
    fn idle(&self, now: Instant) -> bool {
        self.open == 0 && now.duration_since(self.refilled) >= Duration::from_secs(1)
    }
}

/// A connection admitted by the gate; dropping it gives its place back.
#[derive(Debug)]
pub(crate) struct Admitted {
    gate: Arc<ConnectionGate>,
    addr: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.gate.total.fetch_sub(1, Ordering::Relaxed);
        let mut by = self.gate.by_addr.lock();
        if let Some(s) = by.map.get_mut(&self.addr) {
            s.open -= 1;
            if s.idle(Instant::now()) {
                by.map.remove(&self.addr);
            }
        }
    }
}

impl ConnectionGate {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            total: AtomicUsize::new(0),
            by_addr: Mutex::new(ByAddr {
                map: HashMap::new(),
                sweep_at: MIN_SWEEP,
            }),
        })
    }

    /// Admits a new connection from `addr`, or names the limit it is over.
    pub(crate) fn admit(
        self: &Arc<Self>,
        addr: IpAddr,
        c: &BrokerConfig,
    ) -> Result<Admitted, Limit> {
        if self.total.fetch_add(1, Ordering::Relaxed) >= c.max_connections {
            self.total.fetch_sub(1, Ordering::Relaxed);
            return Err(Limit::Connections);
        }
        let refused = |limit| {
            self.total.fetch_sub(1, Ordering::Relaxed);
            Err(limit)
        };
        let now = Instant::now();
        let rate = f64::from(c.max_connection_rate_per_address);
        let mut by = self.by_addr.lock();
        if by.map.len() >= by.sweep_at {
            by.map.retain(|_, s| !s.idle(now));
            by.sweep_at = (2 * by.map.len()).max(MIN_SWEEP);
        }
        let s = by.map.entry(addr).or_insert(AddrState {
            open: 0,
            tokens: rate,
            refilled: now,
        });
        if s.open >= c.max_connections_per_address {
            return refused(Limit::ConnectionsPerAddress);
        }
        if rate > 0.0 {
            let elapsed = now.duration_since(s.refilled).as_secs_f64();
            s.tokens = elapsed.mul_add(rate, s.tokens).min(rate);
            s.refilled = now;
            if s.tokens < 1.0 {
                return refused(Limit::ConnectionRate);
            }
            s.tokens -= 1.0;
        }
        s.open += 1;
        Ok(Admitted {
            gate: self.clone(),
            addr,
        })
    }

    /// Connections admitted and still open.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

/// Checks a topic name or filter against `max_topic_length` and `max_topic_levels`.
pub(crate) fn check_topic(topic: &str, c: &BrokerConfig) -> Result<(), Limit> {
    if topic.len() > c.max_topic_length {
        return Err(Limit::TopicLength);
    }
    // Levels are one more than the separators. A byte count, as this runs on every PUBLISH:
    // splitting into levels cost several times more.
    let separators = topic.bytes().filter(|&b| b == b'/').count();
    if separators >= c.max_topic_levels {
        return Err(Limit::TopicLevels);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BrokerConfig {
        BrokerConfig {
            max_connections: 3,
            max_connections_per_address: 2,
            max_connection_rate_per_address: 4,
            ..BrokerConfig::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn connections_are_bounded_in_total_and_per_address() {
        let (gate, c) = (ConnectionGate::new(), config());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = gate.admit(a, &c).unwrap();
        let _a2 = gate.admit(a, &c).unwrap();
        assert_eq!(gate.admit(a, &c).unwrap_err(), Limit::ConnectionsPerAddress);
        let _b1 = gate.admit(b, &c).unwrap();
        assert_eq!(gate.admit(b, &c).unwrap_err(), Limit::Connections);
        assert_eq!(gate.open(), 3);
        drop(a1);
        assert_eq!(gate.open(), 2);
        gate.admit(a, &c).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn new_connections_per_second_are_bounded_per_address() {
        let gate = ConnectionGate::new();
        let c = BrokerConfig {
            max_connection_rate_per_address: 4,
            ..BrokerConfig::default()
        };
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..4 {
            drop(gate.admit(a, &c).unwrap());
        }
        assert_eq!(gate.admit(a, &c).unwrap_err(), Limit::ConnectionRate);
        // Another address has its own bucket.
        let _other = gate.admit("192.0.2.9".parse().unwrap(), &c).unwrap();
        tokio::time::advance(Duration::from_millis(250)).await;
        drop(gate.admit(a, &c).unwrap());
        assert_eq!(gate.admit(a, &c).unwrap_err(), Limit::ConnectionRate);
        assert_eq!(gate.open(), 1);
    }

    #[test]
    fn topics_are_checked_for_length_and_levels() {
        let c = BrokerConfig {
            max_topic_levels: 3,
            max_topic_length: 16,
            ..BrokerConfig::default()
        };
        assert_eq!(check_topic("a/b/c", &c), Ok(()));
        assert_eq!(check_topic("a/b/c/d", &c), Err(Limit::TopicLevels));
        assert_eq!(check_topic("a/b/", &c), Ok(()));
        assert_eq!(check_topic("a/b//", &c), Err(Limit::TopicLevels));
        assert_eq!(check_topic(&"x".repeat(17), &c), Err(Limit::TopicLength));
        let deep = "+/".repeat(10_000);
        assert_eq!(
            check_topic(&deep, &BrokerConfig::default()),
            Err(Limit::TopicLength)
        );
    }
}
