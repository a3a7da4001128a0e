//! Will delays and session expiry: every such deadline of every session in
//! one structure the broker owns, and one task that fires them.
//!
//! A sleeping task per deadline cannot be cancelled when the client comes
//! back, piles up with every disconnect, and is gone after a restart. Here a
//! session has at most one deadline of each [`Timer`] kind: setting one
//! replaces the one before, a reconnect cancels both, the session's end
//! cancels both, and recovery sets them again from absolute times.
//!
//! A deadline also remembers the session's generation when it was set. If
//! the client came back in the meantime (and maybe left again), the
//! deadline should have been cancelled or replaced; if it fires anyway,
//! because the driver took it out just before, the session sees the
//! generation has moved on and does nothing.
//!
//! Locking: the timers' lock is a leaf. It may be taken while holding any
//! other lock, and nothing else is locked, published or awaited while it is
//! held: the driver takes due deadlines out under it and acts on them after
//! releasing it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::driver::Driver;
use super::router::{ClientKey, KeyHashing};
use super::session::Session;

/// Most deadlines the driver acts on before letting other tasks run.
const FIRE_BATCH: usize = 256;

/// The kinds of deadline a session can have, one of each at most. At the
/// same instant, a will goes before the session's end (either would publish
/// it, once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Timer {
    /// The Will Delay Interval is over [MQTT-3.1.3-9].
    Will,
    /// The Session Expiry Interval is over [MQTT-3.1.2-23].
    Expiry,
}

/// A deadline that fell due, for the broker to act on.
#[derive(Debug)]
pub(crate) struct Due {
    pub(crate) timer: Timer,
    pub(crate) session: Arc<Session>,
    /// The session's generation when the deadline was set.
    pub(crate) generation: u64,
}

#[derive(Debug)]
struct Entry {
    at: Instant,
    session: Arc<Session>,
    generation: u64,
}

#[derive(Debug, Default)]
struct Deadlines {
    /// Every deadline, in the order they fall due.
    order: BTreeSet<(Instant, ClientKey, Timer)>,
    /// The same deadlines by session, to replace and cancel them: keyed by the broker's own
    /// keys, so hashed with one multiplication (each connection sets and clears several).
    entries: HashMap<(ClientKey, Timer), Entry, KeyHashing>,
    /// The broker is gone: the driver stops.
    closed: bool,
}

impl Deadlines {
    fn remove(&mut self, key: ClientKey, timer: Timer) -> Option<Entry> {
        let entry = self.entries.remove(&(key, timer))?;
        self.order.remove(&(entry.at, key, timer));
        Some(entry)
    }

    /// Takes out up to `max` deadlines due at `now`, earliest first, and
    /// returns them with the next deadline still to come.
    fn take_due(&mut self, now: Instant, max: usize) -> (Vec<Due>, Option<Instant>) {
        let mut due = Vec::new();
        while let Some(&(at, key, timer)) = self.order.first() {
            if at > now || due.len() == max {
                return (due, Some(at));
            }
            let entry = self.remove(key, timer).expect("indexed both ways");
            due.push(Due {
                timer,
                session: entry.session,
                generation: entry.generation,
            });
        }
        (due, None)
    }
}

/// The broker's deadlines; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    deadlines: Mutex<Deadlines>,
    /// The task that fires them, woken by an earlier deadline than it sleeps for, or close.
    driver: Driver,
}

impl Timers {
    /// Sets `session`'s `timer` to fire at `at`, replacing any deadline of
    /// the same kind. `generation` is the session's generation now.
    pub(crate) fn set(&self, session: &Arc<Session>, timer: Timer, at: Instant, generation: u64) {
        let key = session.key;
        let mut d = self.deadlines.lock();
        d.remove(key, timer);
        let entry = Entry {
            at,
            session: session.clone(),
            generation,
        };
        d.entries.insert((key, timer), entry);
        d.order.insert((at, key, timer));
        let earliest = d.order.first() == Some(&(at, key, timer));
        drop(d);
        if earliest {
            self.driver.wake();
        }
    }

    /// Cancels every deadline of the session `key`. The driver is not
    /// woken: it finds nothing due when it would have, and sleeps on.
    pub(crate) fn cancel(&self, key: ClientKey) {
        let mut d = self.deadlines.lock();
        d.remove(key, Timer::Will);
        d.remove(key, Timer::Expiry);
    }

    /// When the session `key`'s `timer` falls due, if it is set.
    #[cfg(test)]
    pub(crate) fn deadline(&self, key: ClientKey, timer: Timer) -> Option<Instant> {
        let d = self.deadlines.lock();
        d.entries.get(&(key, timer)).map(|e| e.at)
    }

    /// Number of deadlines set.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.deadlines.lock().entries.len()
    }

    /// Drops every deadline and stops the driver: the broker is gone.
    pub(crate) fn close(&self) {
        let mut d = self.deadlines.lock();
        d.closed = true;
        let Deadlines { order, entries, .. } = &mut *d;
        order.clear();
        // Sessions drop outside the lock (they may be the last reference).
        let entries = std::mem::take(entries);
        drop(d);
        drop(entries);
        self.driver.wake();
    }

    /// Starts the driver (see [`Timers::run`]) unless it runs already, with the `fire` that
    /// `make_fire` makes only then.
    pub(crate) fn start_driver<F>(self: &Arc<Self>, make_fire: impl FnOnce() -> F)
    where
        F: FnMut(Vec<Due>) -> bool + Send + 'static,
    {
        self.driver.start(|| {
            let (timers, fire) = (self.clone(), make_fire());
            async move { timers.run(fire).await }
        });
    }

    /// The driver: sleeps until the earliest deadline (or a change), hands
    /// what fell due to `fire`, and stops when the timers are closed or
    /// `fire` returns false. `fire` is called with no lock held.
    pub(crate) async fn run(&self, mut fire: impl FnMut(Vec<Due>) -> bool) {
        loop {
            let (due, next) = {
                let mut d = self.deadlines.lock();
                if d.closed {
                    return;
                }
                d.take_due(Instant::now(), FIRE_BATCH)
            };
            if !due.is_empty() {
                if !fire(due) {
                    return;
                }
                tokio::task::yield_now().await;
                continue;
            }
            self.driver.sleep(next).await;
        }
    }
}

#[cfg(test)]
mod tests;
