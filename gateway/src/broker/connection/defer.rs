//! A connection's own writer, put after the subscribers its reader just woke, on the same
//! worker thread and without waking a second one.
//!
//! When a reader routes a message or two to subscribers and owes its own client a PUBACK, the
//! deliveries are what the latency is made of: the connection returns, and its writer goes
//! once the subscribers' tasks, which the routing woke into this worker's LIFO slot, have had
//! their poll (see `Halves`).
//!
//! Tokio's `yield_now` defers a task that way, but wakes it only after its worker polls the
//! I/O driver once more, without waiting. At QoS 1 the subscriber's PUBACK is often there
//! already: two tasks are then runnable, and tokio wakes the other worker thread to steal one,
//! a futex call and a thread woken and put back to sleep for every message (`strace -f -c` on
//! the broker, one QoS 1 message per millisecond: 6,000 `futex` calls for 3,000 messages).
//! Here the deferred connection's waker waits in a thread-local instead, and the next
//! connection task polled on the thread (the subscriber) wakes it as its poll begins: into the
//! LIFO slot, run right after that poll, nothing to steal and no other thread woken (4 `futex`
//! calls in the same run).
//!
//! A waker left there when no connection task follows (the subscriber's task had ended) is
//! woken when the worker parks, by the hook [`runtime`] installs on its threads. Elsewhere (the
//! tests' runtimes, without the hook) connections defer with `yield_now`, as before.

use std::cell::Cell;
use std::future::Future;
use std::task::{Context, Waker};

thread_local! {
    /// Set on the threads of a runtime built by [`runtime`], whose park hook wakes what is
    /// left in [`DEFERRED`]: only there may a connection leave its waker in it.
    static HOOKED: Cell<bool> = const { Cell::new(false) };
    /// The connection waiting for the next connection task polled on this thread.
    static DEFERRED: Cell<Option<Waker>> = const { Cell::new(None) };
}

/// The runtime the gateway runs on: tokio's multi-threaded one, one worker per core, whose
/// worker threads wake a deferred connection before they park.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(|| HOOKED.set(true))
        .on_thread_park(|| wake_waiting(None))
        .build()
}

/// Has this connection's task polled again once the connection tasks its reader just woke
/// have had their poll on this thread.
pub(super) fn defer(cx: &mut Context<'_>) {
    if HOOKED.get() {
        // None is waiting in practice: `Halves` resumed it as this poll began. Were one there,
        // it goes now rather than be dropped.
        resume_deferred(cx);
        DEFERRED.set(Some(cx.waker().clone()));
        return;
    }
    let yielded = std::pin::pin!(tokio::task::yield_now());
    // Always pending on its first poll; the wake-up is registered, the future not needed.
    let _ = yielded.poll(cx);
}

/// Called as a connection task's poll begins: wakes the connection that deferred to it, which
/// goes to the worker's LIFO slot and is polled right after this poll. Not the task being
/// polled: it is polled now.
pub(super) fn resume_deferred(cx: &Context<'_>) {
    wake_waiting(Some(cx.waker()));
}

/// Wakes the connection left deferred on this thread, if any, unless it is `polled`.
fn wake_waiting(polled: Option<&Waker>) {
    if let Some(waiting) = DEFERRED.take() {
        if polled.is_none_or(|polled| !waiting.will_wake(polled)) {
            waiting.wake();
        }
    }
}

/// Marks the test's thread as one whose connections defer through [`DEFERRED`], as the
/// gateway's workers do; the test takes the part of the park hook.
#[cfg(test)]
pub(super) fn hook_this_thread() {
    HOOKED.set(true);
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Poll;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_deferred_task_is_woken_when_its_worker_parks() {
        let runtime = runtime().unwrap();
        let polls = Arc::new(AtomicUsize::new(0));
        let counted = polls.clone();
        // Defers once with no connection task to follow it: only the park hook wakes it.
        let task = std::future::poll_fn(move |cx| {
            if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                defer(cx);
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        });
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), tokio::spawn(task))
                .await
                .expect("the deferred task was never woken")
                .unwrap();
        });
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }
}
