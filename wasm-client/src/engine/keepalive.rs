//! Keep-alive bookkeeping, in absolute time so late timers still decide correctly.
//!
//! Background tabs throttle timers (to once a second, then once a minute). So nothing here
//! counts timer ticks: every check compares the current time with when the client last sent a
//! packet. The client pings at three quarters of the interval rather than at the end, which
//! leaves a throttled timer a quarter of the interval plus the broker's 1.5x grace to fire, and
//! the browser layer also runs this check on every incoming WebSocket message.

/// What the keep-alive logic wants done now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAliveAction {
    /// Nothing is due.
    Idle,
    /// Send a PINGREQ.
    Ping,
    /// A PINGREQ went unanswered for a whole interval: the connection is dead.
    TimedOut,
}

/// Keep-alive state of one connection. Times are milliseconds on a monotonic clock.
#[derive(Debug, Clone)]
pub struct KeepAlive {
    interval_ms: u64,
    last_sent: u64,
    ping_sent: Option<u64>,
}

impl KeepAlive {
    /// Keep-alive of `seconds` (0 disables it) on a connection that started at `now`.
    pub fn new(seconds: u16, now: u64) -> Self {
        Self {
            interval_ms: u64::from(seconds) * 1_000,
            last_sent: now,
            ping_sent: None,
        }
    }

    /// Records that a packet was sent: any packet resets the broker's keep-alive timer.
    pub fn on_sent(&mut self, now: u64) {
        self.last_sent = now;
    }

    /// Records that a packet arrived: the connection is alive, so an outstanding ping is answered.
    pub fn on_received(&mut self) {
        self.ping_sent = None;
    }

    /// When [`poll`](Self::poll) next has something to do, if ever.
    pub fn deadline(&self) -> Option<u64> {
        if self.interval_ms == 0 {
            return None;
        }
        Some(match self.ping_sent {
            Some(sent) => sent + self.interval_ms,
            None => self.last_sent + self.interval_ms * 3 / 4,
        })
    }

    /// Decides what is due at `now`, and records a ping as sent when it asks for one.
    pub fn poll(&mut self, now: u64) -> KeepAliveAction {
        match self.deadline() {
            Some(deadline) if now >= deadline => {
                if self.ping_sent.is_some() {
                    KeepAliveAction::TimedOut
                } else {
                    self.ping_sent = Some(now);
                    self.last_sent = now;
                    KeepAliveAction::Ping
                }
            }
            _ => KeepAliveAction::Idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_early_and_times_out_after_an_unanswered_interval() {
        let mut ka = KeepAlive::new(60, 0);
        assert_eq!(ka.deadline(), Some(45_000));
        assert_eq!(ka.poll(44_999), KeepAliveAction::Idle);
        assert_eq!(ka.poll(45_000), KeepAliveAction::Ping);
        assert_eq!(ka.poll(104_999), KeepAliveAction::Idle);
        assert_eq!(ka.poll(105_000), KeepAliveAction::TimedOut);
    }

    #[test]
    fn an_answer_or_any_send_pushes_the_next_ping_back() {
        let mut ka = KeepAlive::new(10, 0);
        assert_eq!(ka.poll(7_500), KeepAliveAction::Ping);
        ka.on_received();
        assert_eq!(ka.deadline(), Some(15_000));
        ka.on_sent(14_000);
        assert_eq!(ka.deadline(), Some(21_500));
    }

    #[test]
    fn a_late_timer_still_pings_once_not_once_per_missed_tick() {
        // A throttled timer fires 50 s late: one ping goes out, not a burst of them.
        let mut ka = KeepAlive::new(10, 0);
        assert_eq!(ka.poll(57_500), KeepAliveAction::Ping);
        assert_eq!(ka.poll(57_501), KeepAliveAction::Idle);
    }

    #[test]
    fn zero_disables_keep_alive() {
        let mut ka = KeepAlive::new(0, 0);
        assert_eq!(ka.deadline(), None);
        assert_eq!(ka.poll(u64::MAX / 2), KeepAliveAction::Idle);
    }
}
