//! The live side of a session: which connection serves it now (waking it or
//! closing it through its [`WriterWake`]), and what it alone still has to
//! send (acknowledgements). None of this survives the connection, let alone
//! the process: a store never sees it.
//!
//! The generation counts connections. A deadline set when a connection
//! ended (will delay, session expiry) remembers the generation of that
//! moment; if a connection has come and gone since, the deadline is stale
//! even when it is not cancelled in time, and its driver drops it.

use std::sync::Arc;

use aviary_protocol::{Packet, ReasonCode};

use super::outbox::Direct;
use super::wake::WriterWake;
use crate::broker::ClientFacts;

/// The connection attached to a session.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) id: u64,
    /// Acknowledgements and responses to send before any new message.
    pub(super) control: Vec<Packet>,
    /// In-flight messages must be sent again (a resumed session).
    pub(super) resend: bool,
    /// How many QoS 1/2 messages may be in flight to this client.
    pub(super) window: u16,
    /// How it takes QoS 0 deliveries encoded by their publishers (see `outbox::direct`).
    direct: Direct,
    /// Wakes this connection's writer.
    pub(super) wake: Arc<WriterWake>,
}

impl Conn {
    /// Tells the connection to close, with `reason` for an MQTT 5 client.
    fn kick(self, reason: ReasonCode) {
        self.wake.kick(reason);
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
        (client, direct): (ClientFacts, Direct),
    ) -> (Arc<WriterWake>, bool) {
        let replaced = self.close(ReasonCode::SESSION_TAKEN_OVER);
        let wake = Arc::new(WriterWake::new(client));
        self.conn = Some(Conn {
            id,
            control: Vec::new(),
            resend,
            // No more than 65,535 messages can be in flight: one per packet identifier.
            window: u16::try_from(window.max(1)).unwrap_or(u16::MAX),
            direct,
            wake: wake.clone(),
        });
        self.generation += 1;
        (wake, replaced)
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
        self.conn.as_ref().is_some_and(|c| c.wake.kick(reason))
    }

    /// The connection `id`, if it is still the current one.
    pub(super) fn current(&mut self, id: u64) -> Option<&mut Conn> {
        self.conn.as_mut().filter(|c| c.id == id)
    }

    /// The current connection's wake-up, if there is a connection.
    pub(super) fn waker(&self) -> Option<Arc<WriterWake>> {
        self.conn.as_ref().map(|c| c.wake.clone())
    }

    /// Tells the current connection's writer, if any, that a message was queued; returns its
    /// wake-up to fire once the session's lock is released if the writer waits for work. A
    /// busy writer, as in a steady stream, costs no reference count.
    ///
    /// Not while the queue's front waits for the in-flight window (`waits_for_window`, given
    /// the connection's window): the writer could send nothing more. Only an acknowledgement
    /// frees the window, and the connection's own reader takes it and wakes its writer by the
    /// flag. Waking the task for every message queued behind a full window polled a writer
    /// that could do nothing, once per message to a QoS 1 subscriber that stopped reading.
    pub(super) fn notify_writer(
        &self,
        waits_for_window: impl FnOnce(usize) -> bool,
    ) -> Option<Arc<WriterWake>> {
        let conn = self.conn.as_ref()?;
        if waits_for_window(usize::from(conn.window)) {
            return None;
        }
        conn.wake.note().then(|| conn.wake.clone())
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

    /// How the current connection takes deliveries encoded by their publishers, if it takes
    /// them now: not while its in-flight messages wait to be sent again, which go first.
    pub(super) fn direct(&self) -> Option<Direct> {
        let conn = self.conn.as_ref()?;
        (!conn.resend && conn.direct.is_some()).then_some(conn.direct)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Inline in every session's state, idle ones included: the connection's terms for
    /// encoded deliveries fit in what was padding.
    #[test]
    fn a_connection_s_link_stays_small() {
        let size = std::mem::size_of::<Conn>();
        assert!(size <= 48, "Conn grew to {size} bytes");
    }
}
