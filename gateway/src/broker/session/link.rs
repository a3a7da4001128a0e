//! The live side of a session: which connection serves it now, how to wake
//! that connection's writer or close it, and what it alone still has to
//! send (acknowledgements). None of this survives the connection, let alone
//! the process: a store never sees it.
//!
//! The generation counts connections. A deadline set when a connection
//! ended (will delay, session expiry) remembers the generation of that
//! moment; if a connection has come and gone since, the deadline is stale
//! even when it is not cancelled in time, and its driver drops it.

use std::sync::Arc;

use aviary_protocol::{Packet, ReasonCode};
use tokio::sync::{oneshot, Notify};

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
    pub(super) wake: Arc<Notify>,
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
    ) -> (oneshot::Receiver<ReasonCode>, Arc<Notify>, bool) {
        let replaced = self.close(ReasonCode::SESSION_TAKEN_OVER);
        let (tx, rx) = oneshot::channel();
        let wake = Arc::new(Notify::new());
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
    pub(super) fn waker(&self) -> Option<Arc<Notify>> {
        self.conn.as_ref().map(|c| c.wake.clone())
    }

    pub(super) fn is_attached(&self) -> bool {
        self.conn.is_some()
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Queues a control packet for connection `id`; returns its wake-up to
    /// fire once the session's lock is released.
    pub(super) fn push_control(&mut self, id: u64, packet: Packet) -> Option<Arc<Notify>> {
        let conn = self.current(id)?;
        conn.control.push(packet);
        Some(conn.wake.clone())
    }
}
