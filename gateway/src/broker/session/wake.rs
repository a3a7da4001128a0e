//! A connection's wake-up: how other tasks and the connection's own reader wake its writer,
//! how it is told to close, and the deadline its keep alive runs to. One per connection,
//! shared by the connection's task, its session and the broker's keep alives.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU8, Ordering};
use std::task::{Context, Poll};

use aviary_protocol::ReasonCode;
use futures_util::task::AtomicWaker;

use crate::broker::keep_alive::HELD;
use crate::broker::ClientFacts;

/// Wakes one connection: its writer, when there is something to send, and the whole
/// connection, when it must close (takeover, session ended). One small allocation per
/// connection, and a pointer in its task: an idle connection waits on nothing else.
///
/// The writer is woken two ways: from another task through the waker, from the connection's
/// own task (its reader queued an acknowledgement) by a flag. Why two: a task that wakes
/// itself while it runs is not polled again at once. Tokio notes the wake-up, and once the
/// poll returns puts the task at the back of its worker's queue and wakes another worker
/// thread (a futex or eventfd syscall) to steal it. At a low message rate that was a thread
/// hop, two context switches and a spurious poll for every PUBACK the broker sent and every
/// one it received. With the flag, the connection's loop polls its writer again in the same
/// poll instead (`connection::Halves`).
///
/// Another task wakes the connection only while its writer waits for work. A writer blocked on
/// a full socket looks at the session again once the socket takes more; waking its task for
/// every message queued meanwhile polled a connection that could do nothing, once per message
/// to a subscriber that stopped reading, on the cores its readers needed.
#[derive(Debug)]
pub(crate) struct WriterWake {
    /// The connection's task, registered on every poll of its loop.
    waker: AtomicWaker,
    /// [`NOTIFIED`] and [`WAITING`]: whether another task gave the writer work since it last
    /// looked, and whether it waits for work, so that a notification must wake the task.
    work: AtomicU8,
    /// Set by the connection's own reader; taken by its writer, which the connection's loop
    /// polls right after the reader.
    own: AtomicBool,
    /// Zero until the connection is told to close; then [`KICKED`] with the reason code.
    kick: AtomicU16,
    /// The tick by which the client must be heard from again (see `broker::keep_alive`):
    /// set by the connection's reader, read by the keep alives' driver.
    keep_alive_deadline: AtomicU32,
    /// Who the connection's client is, for the REST API.
    pub(crate) client: ClientFacts,
}

/// What the connection task running on this thread did in its reader's turn: how many
/// messages it read, and whether it woke other connections' writers (it routed messages to
/// subscribers). Counted per thread, as a task runs on one thread for the length of a poll.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Turn {
    messages: u64,
    woke_other: bool,
}

impl Turn {
    /// At most [`FEW_MESSAGES`] messages, delivered to others who now wait for their turn to
    /// write: messages whose latency counts, as a client publishing at its own pace sends
    /// them; not a batch, whose publisher waits for its PUBACKs to send more.
    pub(crate) fn is_small_delivery(self) -> bool {
        self.woke_other && (1..=FEW_MESSAGES).contains(&self.messages)
    }
}

/// What a [`Turn`] may read to count as small. A publisher at 1,000 msg/s sends one or two
/// per turn (two when its timer's tick came late); one that pipelines, a window's worth
/// (100 in the bench) as soon as its PUBACKs come back.
const FEW_MESSAGES: u64 = 4;

thread_local! {
    static TURN: Cell<Turn> = const {
        Cell::new(Turn {
            messages: 0,
            woke_other: false,
        })
    };
}

/// Ends the turn on this thread: what it did since the last call.
pub(crate) fn take_turn() -> Turn {
    TURN.take()
}

/// Counts messages read in this thread's turn.
pub(crate) fn note_messages_read(n: u64) {
    let turn = TURN.get();
    TURN.set(Turn {
        messages: turn.messages + n,
        ..turn
    });
}

/// Marks [`WriterWake::kick`] as set, whatever the reason code.
const KICKED: u16 = 0x100;

/// In [`WriterWake::work`]: another task gave the writer work since it last looked.
const NOTIFIED: u8 = 1;
/// In [`WriterWake::work`]: the writer found nothing to do and waits to be woken.
const WAITING: u8 = 2;

impl WriterWake {
    pub(crate) fn new(client: ClientFacts) -> Self {
        Self {
            waker: AtomicWaker::new(),
            work: AtomicU8::new(0),
            own: AtomicBool::new(false),
            kick: AtomicU16::new(0),
            keep_alive_deadline: AtomicU32::new(HELD),
            client,
        }
    }

    /// Wakes the writer from another task, if it waits for work: a writer that is busy, or
    /// blocked on its socket, looks at the session again before it waits.
    pub(crate) fn notify(&self) {
        if self.note() {
            self.wake_task();
        }
    }

    /// Wakes the connection's task: after [`Link::notify_writer`] said the writer waits.
    pub(crate) fn wake_task(&self) {
        let turn = TURN.get();
        TURN.set(Turn {
            woke_other: true,
            ..turn
        });
        self.waker.wake();
    }

    /// Tells the writer it has work; true if it waits for it, and its task must be woken.
    pub(super) fn note(&self) -> bool {
        // One read-modify-write against the writer's in `poll_woken`: of the two, the later
        // sees the earlier, so either the writer sees the work or this sees it waiting.
        let before = self.work.fetch_or(NOTIFIED, Ordering::AcqRel);
        // Only the first notification of a wait wakes the task; the rest find NOTIFIED set.
        before == WAITING
    }

    /// Wakes the writer from its own connection's task, which polls it before it returns.
    pub(crate) fn mark_own(&self) {
        // Relaxed: set and read in polls of the same task, which the scheduler orders.
        self.own.store(true, Ordering::Relaxed);
    }

    /// Whether the connection's own reader woke the writer since the writer last looked.
    pub(crate) fn has_own(&self) -> bool {
        self.own.load(Ordering::Relaxed)
    }

    /// Takes the writer's wake-ups, either way, before it looks for work: one that comes
    /// while it looks is kept for [`WriterWake::poll_woken`], so it is not lost.
    pub(crate) fn take(&self) {
        self.own.store(false, Ordering::Relaxed);
        // No longer waiting either: it is about to look.
        self.work.store(0, Ordering::Relaxed);
    }

    /// Ready once the writer was woken, either way, since [`WriterWake::take`].
    pub(crate) fn poll_woken(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.own.swap(false, Ordering::Relaxed) {
            return Poll::Ready(());
        }
        // Registered before the wait is announced, so the notification it lets through
        // finds the waker.
        self.waker.register(cx.waker());
        if self.work.fetch_or(WAITING, Ordering::AcqRel) & NOTIFIED == 0 {
            return Poll::Pending;
        }
        // Taken, and no longer waiting: a notification that comes now finds the writer about
        // to look, as after `take`.
        self.work.store(0, Ordering::Relaxed);
        Poll::Ready(())
    }

    /// Tells the connection to close, with `reason` for an MQTT 5 client. Only the first
    /// reason counts; returns whether this was it.
    pub(super) fn kick(&self, reason: ReasonCode) -> bool {
        let set = KICKED | u16::from(reason.value());
        let first = self
            .kick
            .compare_exchange(0, set, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        self.waker.wake();
        first
    }

    /// Tells the connection to close: its client was not heard from in time [MQTT-3.1.2-22].
    pub(crate) fn keep_alive_expired(&self) {
        self.kick(ReasonCode::KEEP_ALIVE_TIMEOUT);
    }

    /// Moves the keep alive's deadline (a tick, see `broker::keep_alive`).
    pub(crate) fn set_keep_alive_deadline(&self, tick: u32) {
        // Relaxed: a deadline seen late only makes the driver look again, or close a
        // connection whose client was silent for the whole limit but for this instant.
        self.keep_alive_deadline.store(tick, Ordering::Relaxed);
    }

    /// The connection's client is held back, its packets not read: its keep alive does not
    /// run out until the next deadline is set.
    pub(crate) fn hold_keep_alive(&self) {
        self.set_keep_alive_deadline(HELD);
    }

    /// The keep alive's deadline, a tick.
    pub(crate) fn keep_alive_deadline(&self) -> u32 {
        self.keep_alive_deadline.load(Ordering::Relaxed)
    }

    /// The reason the connection was told to close, if it was.
    pub(crate) fn kicked(&self) -> Option<ReasonCode> {
        match self.kick.load(Ordering::Acquire) {
            0 => None,
            // Set only from a `ReasonCode` (`kick`): the low byte is a valid code.
            k => Some(ReasonCode::from_u8(k as u8).unwrap_or(ReasonCode::UNSPECIFIED_ERROR)),
        }
    }

    /// Ready with the reason once the connection is told to close. Polled first on every poll
    /// of the connection's loop, which keeps the waker current for the writer's wake-ups too.
    pub(crate) fn poll_kicked(&self, cx: &mut Context<'_>) -> Poll<ReasonCode> {
        self.waker.register(cx.waker());
        match self.kicked() {
            Some(reason) => Poll::Ready(reason),
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    use super::*;

    /// Counts the wake-ups of the task it stands for.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn task() -> (Arc<Wakes>, Waker) {
        let wakes = Arc::new(Wakes::default());
        (wakes.clone(), Waker::from(wakes))
    }

    #[test]
    fn a_wake_up_while_the_writer_looks_is_kept_for_its_wait() {
        let (wakes, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let wake = WriterWake::new(ClientFacts::for_test());
        wake.notify();
        wake.take();
        assert!(
            wake.poll_woken(&mut cx).is_pending(),
            "taken before the look"
        );
        wake.take();
        wake.notify(); // while the writer looks
        assert!(wake.poll_woken(&mut cx).is_ready());
        assert!(wake.poll_woken(&mut cx).is_pending(), "once");
        let before = wakes.0.load(Ordering::SeqCst);
        wake.notify();
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            before + 1,
            "the waiting task is woken"
        );
        assert!(wake.poll_woken(&mut cx).is_ready());
    }

    #[test]
    fn only_a_writer_waiting_for_work_is_woken_and_once() {
        let (wakes, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let wake = WriterWake::new(ClientFacts::for_test());
        // Registered by the connection's loop on every poll, as `Halves` does.
        assert!(wake.poll_kicked(&mut cx).is_pending());
        wake.take(); // the writer looks, then writes (or waits on its socket)
        wake.notify();
        wake.notify();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0, "busy: not woken");
        assert!(wake.poll_woken(&mut cx).is_ready(), "the work is seen");
        wake.take();
        assert!(wake.poll_woken(&mut cx).is_pending());
        wake.notify();
        wake.notify();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "waiting: woken once");
    }

    #[test]
    fn its_own_reader_wakes_the_writer_without_waking_the_task() {
        let (wakes, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let wake = WriterWake::new(ClientFacts::for_test());
        assert!(wake.poll_woken(&mut cx).is_pending());
        wake.mark_own();
        assert!(wake.has_own());
        assert!(wake.poll_woken(&mut cx).is_ready());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
    }

    /// One per connection, idle ones included, in an `Arc` (16 bytes more): at most 96 bytes
    /// keeps it in jemalloc's 112-byte size class rather than the 128 one.
    #[test]
    fn a_wake_fits_its_size_class() {
        let size = std::mem::size_of::<WriterWake>();
        assert!(size <= 96, "WriterWake grew to {size} bytes");
    }

    #[test]
    fn a_kick_wakes_the_connection_and_the_first_reason_stays() {
        let (wakes, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let wake = WriterWake::new(ClientFacts::for_test());
        assert!(wake.poll_kicked(&mut cx).is_pending());
        assert!(wake.kick(ReasonCode::SERVER_SHUTTING_DOWN));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert!(
            !wake.kick(ReasonCode::SESSION_TAKEN_OVER),
            "only the first counts"
        );
        assert_eq!(
            wake.poll_kicked(&mut cx),
            Poll::Ready(ReasonCode::SERVER_SHUTTING_DOWN)
        );
    }
}
