//! Keep alives [MQTT-3.1.2-22]: every connection's in one structure the broker owns, and one
//! task that closes those whose clients went quiet, as Mosquitto's loop does, instead of a
//! timer in each connection.
//!
//! A timer per connection cost every idle client a boxed tokio `Sleep` (112 bytes: a tenth of
//! what an idle TCP connection holds) and every read a reset of it. Here a connection's reader
//! stores, on each read, the tick by which its client must be heard from again in the
//! connection's [`WriterWake`] (4 bytes that were padding), and the table holds one pointer per
//! connection. The driver looks over the table when the earliest deadline it saw comes, closes
//! the connections whose deadline has passed (reason 0x8D, Keep Alive timeout) and sleeps until
//! the earliest still to come. A connection heard from in the meantime only moved its own
//! deadline later: the driver never wakes too late for it, at worst early, and finds it alive.
//!
//! Deadlines are ticks of [`TICK`] since the table was made, taken from tokio's clock (so
//! paused time drives them in tests). A reader heard from its client within some tick `t`
//! sets the deadline `t + limit + 1`, where the limit is one and a half times the keep alive
//! in ticks: the connection closes no earlier than the limit after it was last heard from,
//! and at most one tick later.
//!
//! Locking: the table's lock is a leaf, held only to add, remove or look over entries; the
//! connections are told to close after it is released.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use slab::Slab;
use tokio::time::Instant;

use super::driver::Driver;
use super::WriterWake;

/// The keep alive's resolution, in milliseconds: a connection closes at most this late.
const TICK_MS: u64 = 100;
const TICK: Duration = Duration::from_millis(TICK_MS);
/// Ticks per second of keep alive, times one and a half: the server allows a client one and a
/// half times its keep alive [MQTT-3.1.2-22].
const LIMIT_TICKS_PER_SECOND: u32 = 15;
/// The deadline of a connection that is not to be closed for now: its reader holds its client
/// back (see `Reader::wait_for_room`), so the client's packets are not read, not missing.
pub(crate) const HELD: u32 = u32::MAX;

/// Every connection with a keep alive; see the module documentation.
#[derive(Debug)]
pub(crate) struct KeepAlives {
    /// Tick 0.
    start: Instant,
    table: Mutex<Table>,
    /// The tick the driver sleeps until; [`u64::MAX`] while it waits for a change only.
    wakes_at: AtomicU64,
    /// The task that closes connections, woken by a deadline earlier than it sleeps for, or
    /// close.
    driver: Driver,
}

#[derive(Debug, Default)]
struct Table {
    /// The connections watched, each found again by the key its reader keeps.
    watched: Slab<Arc<WriterWake>>,
    /// The broker is gone: the driver stops and nothing more is watched.
    closed: bool,
}

/// One connection's place in the table, kept by its reader.
#[derive(Debug)]
pub(crate) struct Watch {
    key: u32,
    /// One and a half times the keep alive, in ticks.
    limit: u32,
}

impl Watch {
    /// How long the client may stay silent.
    pub(crate) fn limit(&self) -> Duration {
        TICK * self.limit
    }
}

impl Default for KeepAlives {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            table: Mutex::default(),
            wakes_at: AtomicU64::new(u64::MAX),
            driver: Driver::default(),
        }
    }
}

impl KeepAlives {
    /// Watches the connection `wake` belongs to, whose client keeps `keep_alive` seconds
    /// (not 0), from now. `None` once the broker is gone.
    pub(crate) fn watch(
        self: &Arc<Self>,
        wake: &Arc<WriterWake>,
        keep_alive: u16,
    ) -> Option<Watch> {
        let limit = u32::from(keep_alive) * LIMIT_TICKS_PER_SECOND;
        let deadline = self.heard_now(wake, limit);
        let mut table = self.table.lock();
        if table.closed {
            return None;
        }
        let key = table.watched.insert(wake.clone());
        let Ok(key) = u32::try_from(key) else {
            // Four billion connections: not from one process's file descriptors.
            table.watched.remove(key);
            return None;
        };
        drop(table);
        self.wake_driver_by(deadline);
        self.start_driver();
        Some(Watch { key, limit })
    }

    /// The client was heard from now: its deadline moves to one limit from now.
    pub(crate) fn heard(&self, wake: &WriterWake, watch: &Watch) {
        self.heard_now(wake, watch.limit);
    }

    /// Sets the deadline of a client heard from now and allowed `limit` ticks; returns it.
    fn heard_now(&self, wake: &WriterWake, limit: u32) -> u64 {
        // Within the tick it was heard in, and one limit after that tick ends.
        let deadline = self.now() + u64::from(limit) + 1;
        // The low bits are stored; if they happen to equal the marker, one tick later.
        let low = deadline as u32;
        wake.set_keep_alive_deadline(if low == HELD { 0 } else { low });
        deadline
    }

    /// The client is read again after [`WriterWake::hold_keep_alive`]: heard from now, and
    /// the driver, which may have had no other deadline to wait for, is told when.
    pub(crate) fn resumed(&self, wake: &WriterWake, watch: &Watch) {
        // Under the lock, as the driver sweeps and then says when it wakes: either its sweep
        // sees this deadline, or this sees when it wakes. Holds are rare.
        let table = self.table.lock();
        let deadline = self.heard_now(wake, watch.limit);
        drop(table);
        self.wake_driver_by(deadline);
    }

    /// Wakes the driver if it sleeps past `deadline`.
    fn wake_driver_by(&self, deadline: u64) {
        if deadline < self.wakes_at.load(Ordering::Acquire) {
            self.driver.wake();
        }
    }

    /// Stops watching a connection: it ended.
    pub(crate) fn unwatch(&self, wake: &WriterWake, watch: &Watch) {
        let key = watch.key as usize;
        let mut table = self.table.lock();
        // Only its own entry: after `close`, the key may not be there.
        let own = table
            .watched
            .get(key)
            .is_some_and(|w| std::ptr::eq(&**w, wake));
        let removed = own.then(|| table.watched.remove(key));
        drop(table);
        // The connection's last reference may go here: outside the lock.
        drop(removed);
    }

    /// Number of connections watched.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.lock().watched.len()
    }

    /// Drops every entry and stops the driver: the broker is gone.
    pub(crate) fn close(&self) {
        let mut table = self.table.lock();
        table.closed = true;
        let watched = std::mem::take(&mut table.watched);
        drop(table);
        drop(watched);
        self.driver.wake();
    }

    /// Ticks since `start`. On every read with a keep alive: no 128-bit division.
    fn now(&self) -> u64 {
        let since = self.start.elapsed();
        since.as_secs() * (1000 / TICK_MS) + u64::from(since.subsec_millis()) / TICK_MS
    }

    /// Starts the driver, unless it runs already. It holds the table, not the broker, and
    /// stops when the table is closed.
    fn start_driver(self: &Arc<Self>) {
        self.driver.start(|| self.clone().run());
    }

    /// The driver: closes the connections whose deadline passed and sleeps until the earliest
    /// of the others (or a change).
    async fn run(self: Arc<Self>) {
        loop {
            let (expired, next) = {
                let table = self.table.lock();
                if table.closed {
                    return;
                }
                let (expired, next) = table.sweep(self.now());
                // Under the lock: a watch added after this sweep sees when the driver wakes.
                self.wakes_at
                    .store(next.unwrap_or(u64::MAX), Ordering::Release);
                (expired, next)
            };
            for wake in expired {
                wake.keep_alive_expired();
            }
            let at =
                next.map(|tick| self.start + Duration::from_millis(tick.saturating_mul(TICK_MS)));
            self.driver.sleep(at).await;
        }
    }
}

impl Table {
    /// The connections whose deadline passed at tick `now`, and the earliest deadline of the
    /// others.
    fn sweep(&self, now: u64) -> (Vec<Arc<WriterWake>>, Option<u64>) {
        let mut expired = Vec::new();
        let mut next: Option<u64> = None;
        for (_, wake) in &self.watched {
            let deadline = wake.keep_alive_deadline();
            if deadline == HELD || wake.kicked().is_some() {
                continue;
            }
            // Stored as the low 32 bits of the tick: what is left of it, in either direction,
            // is far less than 2^31 ticks (a keep alive is at most 65,535 s).
            let left = deadline.wrapping_sub(now as u32) as i32;
            if left <= 0 {
                expired.push(wake.clone());
            } else {
                let at = now + left as u64;
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        (expired, next)
    }
}

#[cfg(test)]
mod tests;
