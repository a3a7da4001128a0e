//! What a publisher waits for before the broker reads more from it: the subscribers its
//! messages left far behind (see `session::backlog`), and, in cluster mode, the link to the
//! other nodes when what this node sends them queues up faster than NATS takes it.
//!
//! Without the second, a client publishing QoS 0 faster than the cluster carries it grew the
//! node's outgoing queue without bound: 368 MiB on node A in a bench run of 2 million
//! messages. Held back, it publishes at the pace of the cluster, as it does at the pace of a
//! local subscriber, and TCP slows it down.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::Notify;

use super::super::Session;

/// Completes once the cluster's link has room again (see [`Backplane::room`]).
///
/// [`Backplane::room`]: crate::broker::Backplane::room
pub(crate) type Room = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a publisher's message left far behind; empty nearly always.
#[derive(Default)]
pub(crate) struct Pressure {
    /// Sessions whose queues it left far behind, each with the room its publisher waits for.
    sessions: Vec<(Arc<Session>, Arc<Notify>)>,
    /// The cluster's link, while its queue is long.
    link: Option<Room>,
}

impl Pressure {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.link.is_none()
    }

    /// `session`'s queue is past its high-water mark: wait for `room`.
    pub(crate) fn push(&mut self, (session, room): (Arc<Session>, Arc<Notify>)) {
        self.sessions.push((session, room));
    }

    /// The cluster's link is behind: wait for `room` too.
    pub(crate) fn link(&mut self, room: Room) {
        self.link = Some(room);
    }

    /// Completes once every subscriber waited for caught up or was found slow, and the
    /// cluster's link has room.
    pub(crate) async fn relieved(self) {
        for (session, room) in self.sessions {
            session.room(room).await;
        }
        if let Some(link) = self.link {
            link.await;
        }
    }
}
