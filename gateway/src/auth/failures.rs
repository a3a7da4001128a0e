//! Failed logins, per source address: how long to wait before answering the next one, and
//! whether to log it.
//!
//! The first failure is answered at once (a typo); each further failure within
//! [`WINDOW`] of the previous one doubles the delay before its CONNACK, up to a maximum, so a
//! password file cannot be guessed at line rate from one address. An IPv6 client owns a whole
//! /64, so failures are counted per /64. The log gets one line per address per
//! [`LOG_EVERY`], saying how many failures it stands for, so an attack does not flood it.
//!
//! The table is bounded: past [`MAX_ADDRESSES`] entries, those idle for a window are dropped,
//! and if all are fresh, a new address is treated as if it had failed many times already
//! (a flood from many addresses at once is slowed down too).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Failures further apart than this start the count again.
const WINDOW: Duration = Duration::from_secs(60);
/// At most one log line per address this often.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// Addresses tracked at once.
const MAX_ADDRESSES: usize = 10_000;

#[derive(Debug)]
struct Entry {
    count: u32,
    last: Instant,
    logged: Option<Instant>,
    unlogged: u64,
}

/// The failed logins of recent source addresses.
#[derive(Debug)]
pub(super) struct LoginFailures {
    delay: Duration,
    max_delay: Duration,
    by_addr: Mutex<HashMap<IpAddr, Entry>>,
}

impl LoginFailures {
    pub(super) fn new(delay: Duration, max_delay: Duration) -> Self {
        Self {
            delay,
            max_delay,
            by_addr: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure from `addr`, logs it unless one was logged lately, and returns how
    /// long to wait before answering it.
    pub(super) fn record(&self, addr: IpAddr) -> Duration {
        let key = subnet(addr);
        let now = Instant::now();
        let mut map = self.by_addr.lock();
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&key) {
            map.retain(|_, e| now.duration_since(e.last) < WINDOW);
            if map.len() >= MAX_ADDRESSES {
                drop(map);
                tracing::warn!(%addr, "login failed; too many addresses failing to track each");
                return self.max_delay;
            }
        }
        let entry = map.entry(key).or_insert(Entry {
            count: 0,
            last: now,
            logged: None,
            unlogged: 0,
        });
        if now.duration_since(entry.last) >= WINDOW {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        entry.unlogged += 1;
        let delay = self.delay_after(entry.count);
        if entry
            .logged
            .is_none_or(|at| now.duration_since(at) >= LOG_EVERY)
        {
            let failures = std::mem::take(&mut entry.unlogged);
            entry.logged = Some(now);
            let recent = entry.count;
            drop(map);
            tracing::warn!(
                %addr,
                failures,
                recent,
                delay_ms = delay.as_millis() as u64,
                "login failed (bad username or password, or not authorized); \
                 failures since the last such line from this address: {failures}"
            );
        }
        delay
    }

    /// The delay before answering the `count`th failure in a row.
    fn delay_after(&self, count: u32) -> Duration {
        match count {
            0 | 1 => Duration::ZERO,
            n => self
                .delay
                .saturating_mul(1u32 << (n - 2).min(20))
                .min(self.max_delay),
        }
    }
}

/// The key an address is counted under: itself for IPv4, its /64 for IPv6.
fn subnet(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn delay_doubles_per_failure_and_resets_after_a_quiet_window() {
        let f = LoginFailures::new(ms(100), ms(1000));
        let a: IpAddr = "192.0.2.7".parse().unwrap();
        let got: Vec<Duration> = (0..7).map(|_| f.record(a)).collect();
        assert_eq!(
            got,
            [
                ms(0),
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1000),
                ms(1000)
            ]
        );
        // Another address is not slowed down by the first one's failures.
        assert_eq!(f.record("192.0.2.8".parse().unwrap()), ms(0));
        tokio::time::advance(WINDOW).await;
        assert_eq!(f.record(a), ms(0));
    }

    #[tokio::test(start_paused = true)]
    async fn ipv6_is_counted_per_64() {
        let f = LoginFailures::new(ms(100), ms(1000));
        assert_eq!(f.record("2001:db8::1".parse().unwrap()), ms(0));
        assert_eq!(f.record("2001:db8::2".parse().unwrap()), ms(100));
        assert_eq!(f.record("2001:db8:0:1::1".parse().unwrap()), ms(0));
    }

    #[tokio::test(start_paused = true)]
    async fn the_table_is_bounded() {
        let f = LoginFailures::new(ms(100), ms(1000));
        for i in 0..MAX_ADDRESSES as u32 {
            f.record(IpAddr::V4(i.into()));
        }
        // All fresh: a new address waits the longest.
        assert_eq!(f.record("198.51.100.1".parse().unwrap()), ms(1000));
        tokio::time::advance(WINDOW).await;
        // All stale: they make room.
        assert_eq!(f.record("198.51.100.1".parse().unwrap()), ms(0));
        assert_eq!(f.by_addr.lock().len(), 1);
    }
}
