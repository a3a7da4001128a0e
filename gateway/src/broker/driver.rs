//! What the broker's two deadline tasks share: the keep alives' (`keep_alive`) and that of the
//! will delays and session expiries (`timers`). Each is one task per broker, started by the
//! first deadline set from within a runtime, that sleeps until the earliest deadline it knows
//! of, or until it is told of an earlier one or to stop.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;
use tokio::time::Instant;

/// Whether a deadline task runs, and the signal that wakes it.
#[derive(Debug, Default)]
pub(crate) struct Driver {
    started: AtomicBool,
    changed: Notify,
}

impl Driver {
    /// Spawns the task `make` makes on the current runtime, unless one was started already.
    /// Outside a runtime nothing starts: the next call, made from one, starts it.
    pub(crate) fn start<F>(&self, make: impl FnOnce() -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(make())),
            Err(_) => self.started.store(false, Ordering::Release),
        }
    }

    /// Wakes the task: a deadline earlier than it sleeps for, or the end. A wake that comes
    /// while the task is not waiting is kept until it waits, so none is lost between its look
    /// at the deadlines and its sleep.
    pub(crate) fn wake(&self) {
        self.changed.notify_one();
    }

    /// Sleeps until `next` (with none, until woken), or until woken first.
    pub(crate) async fn sleep(&self, next: Option<Instant>) {
        match next {
            Some(at) => tokio::select! {
                () = tokio::time::sleep_until(at) => {}
                () = self.changed.notified() => {}
            },
            None => self.changed.notified().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// Starts `driver`'s task, one that counts its starts in `started`.
    fn start(driver: &Driver, started: &Arc<AtomicUsize>) {
        let started = started.clone();
        driver.start(move || async move {
            started.fetch_add(1, Ordering::SeqCst);
        });
    }

    #[test]
    fn outside_a_runtime_nothing_starts_and_the_next_call_from_one_does() {
        let (driver, started) = (Driver::default(), Arc::new(AtomicUsize::new(0)));
        start(&driver, &started);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            start(&driver, &started);
            start(&driver, &started);
            tokio::task::yield_now().await;
        });
        assert_eq!(
            started.load(Ordering::SeqCst),
            1,
            "started once, from the runtime"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn sleeps_until_the_deadline_or_a_wake_whichever_comes_first() {
        let driver = Driver::default();
        let start = Instant::now();
        driver.sleep(Some(start + Duration::from_secs(5))).await;
        assert_eq!(start.elapsed(), Duration::from_secs(5), "the deadline came");
        // A wake given before the sleep is kept for it.
        driver.wake();
        let start = Instant::now();
        driver.sleep(Some(start + Duration::from_secs(5))).await;
        driver.wake();
        driver.sleep(None).await;
        assert_eq!(start.elapsed(), Duration::ZERO, "woken at once, twice");
    }
}
