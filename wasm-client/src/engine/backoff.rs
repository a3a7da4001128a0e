//! Reconnect delays: exponential backoff with jitter, and the small random source behind it.
//!
//! When a broker restarts, every open tab reconnects at once; MQTT.js's fixed one-second period
//! turns that into synchronized waves. Here the window doubles from `initial` up to `max`, and
//! the delay is drawn from the upper half of the window ("equal jitter"): half spreads the herd,
//! the fixed half keeps any one client from retrying in a tight loop.

/// A xorshift64* generator: tiny, deterministic for tests, seeded from `Math.random()` in the
/// browser. It only spreads reconnects and makes client ids, so it need not be cryptographic.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced, since xorshift never leaves it).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        // 53 random bits fill an f64 mantissa exactly.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The delay before each reconnect attempt.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial_ms: u64,
    max_ms: u64,
    failures: u32,
}

impl Backoff {
    /// A backoff whose window starts at `initial_ms` and never exceeds `max_ms`.
    pub fn new(initial_ms: u32, max_ms: u32) -> Self {
        Self {
            initial_ms: u64::from(initial_ms.max(1)),
            max_ms: u64::from(max_ms.max(initial_ms).max(1)),
            failures: 0,
        }
    }

    /// The delay before the next attempt, in ms; each call widens the window.
    pub fn next_delay(&mut self, rng: &mut Rng) -> u64 {
        // A shift, not `saturating_mul`: `initial_ms` fits 32 bits, so shifted by at most 30
        // it cannot overflow, and the package then carries no 128-bit multiplication.
        let window = (self.initial_ms << self.failures.min(30)).min(self.max_ms);
        self.failures = self.failures.saturating_add(1);
        let half = window / 2;
        half + (rng.next_f64() * (window - half) as f64) as u64
    }

    /// Starts over from the smallest window: called once a connection is accepted.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_within_jittered_bounds() {
        let mut rng = Rng::new(42);
        let mut backoff = Backoff::new(1_000, 30_000);
        let windows = [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000];
        for window in windows {
            let delay = backoff.next_delay(&mut rng);
            assert!(
                (window / 2..=window).contains(&delay),
                "{delay} outside [{}, {window}]",
                window / 2
            );
        }
        backoff.reset();
        assert!(backoff.next_delay(&mut rng) <= 1_000);
    }

    #[test]
    fn jitter_spreads_clients_apart() {
        let delays: Vec<u64> = (1..=50)
            .map(|seed| Backoff::new(1_000, 30_000).next_delay(&mut Rng::new(seed)))
            .collect();
        let min = delays.iter().min().unwrap();
        let max = delays.iter().max().unwrap();
        assert!(max - min > 300, "delays too alike: {delays:?}");
    }

    #[test]
    fn random_numbers_are_in_unit_interval() {
        let mut rng = Rng::new(0);
        for _ in 0..10_000 {
            let x = rng.next_f64();
            assert!((0.0..1.0).contains(&x));
        }
    }
}
