//! Acknowledgements that wait for the store: a PUBACK (QoS 1) or PUBREC (QoS 2) goes to the
//! publisher only once the batch holding its message is committed, so an acknowledged message
//! survives a `kill -9`. The reader keeps reading meanwhile (the store commits many
//! connections' writes at once), and the acknowledgements leave in the order their PUBLISHes
//! came: one that needs no commit waits behind those that do. In cluster mode a QoS 1/2
//! message also waits for the cluster to hold it (a JetStream acknowledgement).

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};

use aviary_protocol::Packet;

use crate::broker::{AckWait, ForwardError, RetainedCursor};
use crate::store::{StoreError, Ticket};

/// What an acknowledgement waits for.
pub(super) enum Wait {
    /// The store's commit of its message.
    Store(Ticket),
    /// The cluster holding its message (and the store's commit before, if any).
    Cluster(AckWait),
}

impl std::fmt::Debug for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Store(_) => "Wait::Store",
            Self::Cluster(_) => "Wait::Cluster",
        })
    }
}

/// Why an acknowledgement will not go: what it waited for failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum AckError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cluster(#[from] ForwardError),
}

impl Future for Wait {
    type Output = Result<(), AckError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        match &mut *self {
            Self::Store(ticket) => Pin::new(ticket).poll(cx).map_err(AckError::from),
            Self::Cluster(wait) => wait.as_mut().poll(cx).map_err(AckError::from),
        }
    }
}

/// What goes to the client once its turn comes.
#[derive(Debug)]
pub(super) enum Reply {
    /// An acknowledgement.
    Packet(Packet),
    /// A SUBACK, then the retained messages of its cursors (see `Session::subscribed`).
    Subscribed(Packet, Vec<RetainedCursor>),
}

/// A reply and what it waits for (nothing: only its turn).
type Waiting = (Option<Wait>, Reply);

/// Acknowledgements waiting for commits, oldest first. Boxed, and only
/// once one waits: every connection carries this, and most never use it.
#[derive(Debug, Default)]
pub(super) struct PendingAcks {
    // A pointer rather than the deque's four words inline: the connection
    // future, allocated per connection, is what an idle connection costs.
    #[expect(
        clippy::box_collection,
        reason = "an idle connection carries only a pointer"
    )]
    queue: Option<Box<VecDeque<Waiting>>>,
}

impl PendingAcks {
    /// Whether an acknowledgement without a commit of its own must still wait (to keep order).
    pub(super) fn is_empty(&self) -> bool {
        self.queue.as_ref().is_none_or(|q| q.is_empty())
    }

    /// Queues `reply`, to go once `ticket` (if any) and everything queued before it are done.
    pub(super) fn push(&mut self, ticket: Option<Wait>, reply: Reply) {
        self.queue
            .get_or_insert_default()
            .push_back((ticket, reply));
    }

    /// The replies whose commits are done, in order, without waiting.
    pub(super) fn ready(&mut self) -> Result<Vec<Reply>, AckError> {
        let mut ready = Vec::new();
        let Some(queue) = self.queue.as_mut() else {
            return Ok(ready);
        };
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        while let Some((ticket, _)) = queue.front_mut() {
            if let Some(t) = ticket {
                match Pin::new(t).poll(&mut cx) {
                    Poll::Pending => break,
                    Poll::Ready(result) => {
                        *ticket = None;
                        result?;
                    }
                }
            }
            ready.push(queue.pop_front().expect("front exists").1);
        }
        if queue.is_empty() {
            // Back to nothing held while the connection is quiet.
            self.queue = None;
        }
        Ok(ready)
    }

    /// Completes when the oldest acknowledgement's commit is done (never, if none waits).
    /// A done ticket is dropped from its place, so it is not polled again.
    pub(super) async fn next_commit(&mut self) -> Result<(), AckError> {
        poll_fn(|cx| self.poll_next_commit(cx)).await
    }

    /// [`PendingAcks::next_commit`] as a poll, for a connection's idle wait, where a future
    /// would take room in every connection's task.
    pub(super) fn poll_next_commit(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), AckError>> {
        match self.queue.as_mut().and_then(|q| q.front_mut()) {
            Some((slot @ Some(_), _)) => {
                let ticket = slot.as_mut().expect("matched Some");
                let done = std::task::ready!(Pin::new(ticket).poll(cx));
                *slot = None;
                Poll::Ready(done)
            }
            Some((None, _)) => Poll::Ready(Ok(())),
            None => Poll::Pending,
        }
    }
}
