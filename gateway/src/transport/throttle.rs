//! Log lines an attacker could cause once per connection (refused
//! connections, failed handshakes, timeouts) are written at most once per
//! interval, saying how many were left out since: a flood shows in the log
//! without filling it. The metrics count every one.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// At most one log line per interval.
#[derive(Debug)]
pub(crate) struct LogThrottle {
    interval: Duration,
    /// When the last line was let through, and how many were held back since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl LogThrottle {
    /// A throttle letting one line through per `interval`.
    pub(crate) const fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: parking_lot::const_mutex((None, 0)),
        }
    }

    /// `Some(held back since the last line)` if a line may be written now.
    pub(crate) fn allow(&self) -> Option<u64> {
        let now = Instant::now();
        let mut state = self.state.lock();
        let (last, held) = &mut *state;
        match last {
            Some(at) if now.duration_since(*at) < self.interval => {
                *held += 1;
                None
            }
            _ => {
                *last = Some(now);
                Some(std::mem::take(held))
            }
        }
    }
}

/// Every event-type throttle shares this interval.
pub(crate) const LOG_INTERVAL: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_held_back() {
        let throttle = LogThrottle::new(Duration::from_secs(3600));
        assert_eq!(throttle.allow(), Some(0));
        assert_eq!(throttle.allow(), None);
        assert_eq!(throttle.allow(), None);
        let open = LogThrottle::new(Duration::ZERO);
        assert_eq!(open.allow(), Some(0));
        assert_eq!(open.allow(), Some(0));
    }
}
