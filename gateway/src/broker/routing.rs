//! The routing state (the subscription tree and the map from session keys to sessions) and
//! its lock, which also keeps a stamp of the state: every write takes a new one.
//!
//! The stamp lets a publish skip the lock altogether when its worker thread has matched the
//! topic lately ([`super::router::cache`]): a cached match with the current stamp is what the
//! state would give now. The stamp sits in an atomic beside the lock, on its own cache line:
//! every read lock writes the lock's word, and with publishers on every core that word
//! bounced between them on each PUBLISH, while the stamp's line changes only when a client
//! subscribes, unsubscribes, connects or goes.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::registry::{ByKey, Registry};
use super::router::SubscriptionTree;

/// What a PUBLISH is routed by.
#[derive(Debug, Default)]
pub(crate) struct Routing {
    pub(super) tree: SubscriptionTree,
    pub(super) by_key: Registry<ByKey>,
}

/// [`Routing`] behind a read-mostly lock, with the stamp of its state.
#[derive(Debug)]
pub(super) struct RoutingLock {
    state: RwLock<Routing>,
    stamp: Stamp,
}

/// The stamp, alone on its cache line (64 bytes on x86-64 and most ARM cores).
#[derive(Debug)]
#[repr(align(64))]
struct Stamp(AtomicU64);

/// Every write to any broker's routing takes the next stamp, so that a stamp names one state
/// of one broker's routing, and the match caches, which are per thread, never mistake one
/// broker's state for another's (tests run many in one process). Starts at 1: 0 names none.
static STAMPS: AtomicU64 = AtomicU64::new(1);

fn next_stamp() -> u64 {
    // Unique is all it needs to be: the order comes from the routing lock.
    STAMPS.fetch_add(1, Ordering::Relaxed)
}

impl Default for RoutingLock {
    fn default() -> Self {
        Self {
            state: RwLock::default(),
            stamp: Stamp(AtomicU64::new(next_stamp())),
        }
    }
}

impl RoutingLock {
    pub(super) fn read(&self) -> RwLockReadGuard<'_, Routing> {
        self.state.read()
    }

    /// The state for a change; the change takes a new stamp when the guard goes.
    pub(super) fn write(&self) -> RoutingWrite<'_> {
        RoutingWrite {
            state: self.state.write(),
            stamp: &self.stamp.0,
        }
    }

    /// The stamp of the state now. Read under [`RoutingLock::read`], it is the stamp of the
    /// state the guard shows: writers store it while they still hold the lock.
    pub(super) fn stamp(&self) -> u64 {
        // Acquire, against the writer's Release: whoever sees a stamp sees its state.
        self.stamp.0.load(Ordering::Acquire)
    }
}

/// The routing state held for writing.
pub(super) struct RoutingWrite<'a> {
    state: RwLockWriteGuard<'a, Routing>,
    stamp: &'a AtomicU64,
}

impl Drop for RoutingWrite<'_> {
    fn drop(&mut self) {
        // Before the lock is released (fields drop after this body): a reader under the lock
        // never sees a stamp newer or older than the state.
        self.stamp.store(next_stamp(), Ordering::Release);
    }
}

impl Deref for RoutingWrite<'_> {
    type Target = Routing;

    fn deref(&self) -> &Routing {
        &self.state
    }
}

impl DerefMut for RoutingWrite<'_> {
    fn deref_mut(&mut self) -> &mut Routing {
        &mut self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_write_takes_a_new_stamp_and_reads_keep_it() {
        let lock = RoutingLock::default();
        let first = lock.stamp();
        assert_ne!(first, 0);
        drop(lock.read());
        assert_eq!(lock.stamp(), first);
        drop(lock.write());
        let second = lock.stamp();
        assert_ne!(second, first);
        assert_ne!(
            RoutingLock::default().stamp(),
            second,
            "another broker's state"
        );
    }
}
