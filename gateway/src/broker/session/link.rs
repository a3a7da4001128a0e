//! The live side of a session: which connection serves it now, how to wake
//! that connection's writer or close it, and what it alone still has to
//! send (acknowledgements). None of this survives the connection, let alone
//! the process: a store never sees it.
//!
//! The generation counts connections. A deadline set when a connection
//! ended (will delay, session expiry) remembers the generation of that
//! moment; if a connection has come and gone since, the deadline is stale
//! even when it is not cancelled in time, and its driver drops it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use aviary_protocol::{Packet, ReasonCode};
use tokio::sync::futures::Notified;
use tokio::sync::{oneshot, Notify};

/// Wakes one connection's writer: from another task through a [`Notify`], from the
/// connection's own task (its reader queued an acknowledgement) by a flag.
///
/// Why two ways: a task that wakes itself while it runs is not polled again at once. Tokio
/// notes the wake-up, and once the poll returns puts the task at the back of its worker's
/// queue and wakes another worker thread (a futex or eventfd syscall) to steal it. At a low
/// message rate that was a thread hop, two context switches and a spurious poll for every
/// PUBACK the broker sent and every one it received. With the flag, the connection's loop
/// polls its writer again in the same poll instead (`connection::Halves`).
#[derive(Debug, Default)]
pub(crate) struct WriterWake {
    notify: Notify,
    /// Set by the connection's own reader; taken by its writer, which the connection's loop
    /// polls right after the reader.
    own: AtomicBool,
}

impl WriterWake {
    /// Wakes the writer from another task.
    pub(crate) fn notify(&self) {
        self.notify.notify_one();
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

    /// Takes the writer's wake-up from its own reader, if any.
    pub(crate) fn take_own(&self) -> bool {
        self.own.swap(false, Ordering::Relaxed)
    }

    /// The next wake-up, either way. Created before looking for work, so that a wake-up from
    /// another task in between is not lost (see [`Notify::notified`]).
    pub(crate) fn woken(&self) -> Woken<'_> {
        Woken {
            wake: self,
            notified: self.notify.notified(),
        }
    }
}

pin_project_lite::pin_project! {
    /// Completes on the writer's next wake-up: see [`WriterWake::woken`].
    #[derive(Debug)]
    pub(crate) struct Woken<'a> {
        wake: &'a WriterWake,
        #[pin]
        notified: Notified<'a>,
    }
}

impl Future for Woken<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.wake.take_own() {
            return Poll::Ready(());
        }
        this.notified.poll(cx)
    }
}

/// The connection attached to a session.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) id: u64,
    /// Acknowledgements and responses to send before any new message.
    pub(super) control: Vec<Packet>,
    /// Fires to make the connection close (takeover, session ended).
    kick: Option<oneshot::Sender<ReasonCode>>,
    /// In-flight messages must be sent again (a resumed session).
    pub(super) resend: bool,
    /// How many QoS 1/2 messages may be in flight to this client.
    pub(super) window: usize,
    /// Wakes this connection's writer.
    pub(super) wake: Arc<WriterWake>,
}

impl Conn {
    /// Tells the connection to close, with `reason` for an MQTT 5 client.
    fn kick(mut self, reason: ReasonCode) {
        if let Some(kick) = self.kick.take() {
            let _ = kick.send(reason);
        }
    }
}

/// The live part of a session; see the module documentation.
#[derive(Debug, Default)]
pub(super) struct Link {
    conn: Option<Conn>,
    generation: u64,
}

impl Link {
    /// Attaches connection `id`, kicking out the one attached before (if
    /// any, which is returned as true). Each connection has its own wake-up,
    /// so a writer on its way out cannot swallow one meant for its successor.
    pub(super) fn attach(
        &mut self,
        id: u64,
        window: usize,
        resend: bool,
    ) -> (oneshot::Receiver<ReasonCode>, Arc<WriterWake>, bool) {
        let replaced = self.close(ReasonCode::SESSION_TAKEN_OVER);
        let (tx, rx) = oneshot::channel();
        let wake = Arc::new(WriterWake::default());
        self.conn = Some(Conn {
            id,
            control: Vec::new(),
            kick: Some(tx),
            resend,
            window: window.max(1),
            wake: wake.clone(),
        });
        self.generation += 1;
        (rx, wake, replaced)
    }

    /// Detaches connection `id` if it is the current one.
    pub(super) fn detach(&mut self, id: u64) -> bool {
        if self.current(id).is_some() {
            self.conn = None;
            true
        } else {
            false
        }
    }

    /// Kicks the current connection out, if there is one.
    pub(super) fn close(&mut self, reason: ReasonCode) -> bool {
        match self.conn.take() {
            Some(conn) => {
                conn.kick(reason);
                true
            }
            None => false,
        }
    }

    /// Tells the current connection, if any, to close with `reason`, leaving it attached: its
    /// end detaches it as any other close would (a client taken over on another node).
    pub(super) fn kick_current(&mut self, reason: ReasonCode) -> bool {
        let kick = self.conn.as_mut().and_then(|c| c.kick.take());
        kick.map(|k| k.send(reason)).is_some()
    }

    /// The connection `id`, if it is still the current one.
    pub(super) fn current(&mut self, id: u64) -> Option<&mut Conn> {
        self.conn.as_mut().filter(|c| c.id == id)
    }

    /// The current connection's wake-up, if there is a connection.
    pub(super) fn waker(&self) -> Option<Arc<WriterWake>> {
        self.conn.as_ref().map(|c| c.wake.clone())
    }

    /// Wakes the current connection's writer by the flag if it is connection `id`, whose own
    /// task calls this; if it is another (after a takeover), returns its wake-up to fire once
    /// the session's lock is released.
    pub(super) fn wake_from(&self, id: u64) -> Option<Arc<WriterWake>> {
        let conn = self.conn.as_ref()?;
        if conn.id == id {
            conn.wake.mark_own();
            return None;
        }
        Some(conn.wake.clone())
    }

    pub(super) fn is_attached(&self) -> bool {
        self.conn.is_some()
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Queues a control packet for connection `id` and wakes its writer by the flag: only
    /// connection `id`'s own task queues for it (its reader answering its client).
    pub(super) fn push_control(&mut self, id: u64, packet: Packet) {
        if let Some(conn) = self.current(id) {
            conn.control.push(packet);
            conn.wake.mark_own();
        }
    }
}
