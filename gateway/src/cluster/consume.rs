//! This node's durable consumer of the message stream: each message routed here once, in the
//! stream's order, and acknowledged once the local store (and its copy in JetStream) holds
//! what routing queued, so that a node that dies leaves in its consumer exactly what it had
//! not taken in (see [`super::adoption`]). A consumer with `AckPolicy::All` (created so since
//! acknowledgements go in batches) is acknowledged in stream order, several messages at a
//! time ([`super::acks`]); one made earlier with explicit acknowledgements keeps one per
//! message. Deliveries lost on their way here are read again from the stream, before
//! anything newer is routed ([`super::replay`]).

use std::num::NonZeroU64;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::acks::{Acks, Admit, Event, Routed};
use super::handover::{self, mark_subject, MARK_PREFIX};
use super::messages::{pull, PUBLISHER, STREAM_PREFIX};
use super::metrics::ClusterMetrics;
use super::node::{decode, origin};
use super::replay::{filters, Deliveries, Reader};
use crate::broker::{Broker, ClientKey, Origin};

/// This node's consumer and what it needs to route and acknowledge.
pub(super) struct Consumer {
    pub(super) consumer: consumer::PullConsumer,
    /// The stream it consumes, to read again what was lost on the way.
    pub(super) stream: jetstream::stream::Stream,
    pub(super) client: async_nats::Client,
    pub(super) metrics: Arc<ClusterMetrics>,
    pub(super) node: String,
    pub(super) broker: Broker,
}

/// What the loop woke up for. A message is large, but this lives for one turn of the loop
/// and is never stored: boxing it would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
enum Woke {
    Message(Option<Result<jetstream::Message, consumer::pull::MessagesError>>),
    Acks(Event),
}

impl Consumer {
    /// Routes what this node's consumer brings, once each, and acknowledges it once the
    /// local store holds what it queued.
    pub(super) async fn run(mut self, shutdown: CancellationToken) {
        let batched = self.consumer.cached_info().config.ack_policy == consumer::AckPolicy::All;
        let mut acks = Acks::new();
        if batched {
            // Nothing left by an earlier run: no fence to wait behind.
            if let Ok(info) = self.consumer.info().await {
                acks.server_pending(info.num_ack_pending as u64);
            }
        }
        let mut pulling = None;
        let mut deliveries = Deliveries::default();
        while !shutdown.is_cancelled() {
            let messages = match &mut pulling {
                Some(messages) => messages,
                None => match pull(&self.consumer).await {
                    Ok(messages) => pulling.insert(messages),
                    Err(e) => {
                        warn!(error = %e, "cannot read this node's stream consumer; trying again");
                        pause(Duration::from_millis(500), &shutdown).await;
                        continue;
                    }
                },
            };
            let woke = tokio::select! {
                next = messages.next() => Woke::Message(next),
                event = acks.next() => Woke::Acks(event),
                () = shutdown.cancelled() => Woke::Message(None),
            };
            // A failed pull (a server or leader change) may end the stream: pull again. What
            // it had fetched and not handed out comes again later, nothing is lost.
            let m = match woke {
                Woke::Acks(event) => {
                    self.settle(&mut acks, event).await;
                    continue;
                }
                Woke::Message(Some(Ok(m))) => m,
                Woke::Message(Some(Err(e))) => {
                    debug!(error = %e, "stream consumer hiccup: pulling again");
                    pulling = None;
                    acks.pull_failed();
                    // Not at once: a consumer without a leader answers at once, "no responders".
                    pause(Duration::from_millis(200), &shutdown).await;
                    continue;
                }
                Woke::Message(None) => {
                    pulling = None;
                    acks.pull_failed();
                    continue;
                }
            };
            if batched {
                let lost = m
                    .info()
                    .ok()
                    .and_then(|i| deliveries.note(i.consumer_sequence, i.stream_sequence));
                if let Some(lost) = lost {
                    self.read_again(&mut acks, lost, &shutdown).await;
                }
                self.take_in(&mut acks, m).await;
            } else {
                self.route(&m).await;
                ack_when_stored(&self.broker, m).await;
            }
        }
        if let Some(m) = acks.take(true) {
            ack(&m).await;
        }
    }

    /// Routes `m` unless it is handled already, and acknowledges what may be.
    async fn take_in(&self, acks: &mut Acks<jetstream::Message>, m: jetstream::Message) {
        let Ok(seq) = m.info().map(|i| i.stream_sequence) else {
            // Not from the consumer (no acknowledgement subject): nothing to acknowledge.
            self.route(&m).await;
            return;
        };
        match acks.admit(seq, m) {
            Admit::Route(m) => {
                let routed = self.handle(&m).await;
                acks.routed(seq, Some(m), routed);
            }
            Admit::Ack(m) => ack(&m).await,
            Admit::Held => {}
        }
        if let Some(m) = acks.take(false) {
            ack(&m).await;
        }
    }

    /// Routes `m` and says what its acknowledgement waits for.
    async fn handle(&self, m: &jetstream::Message) -> Routed {
        let writes = self.broker.persist().map(|p| p.writes());
        match self.route(m).await {
            true => Routed::Handled { durable: true },
            false => self.stored(writes),
        }
    }

    /// Reads the stream's messages in `lost` again, with this node's filters, and routes
    /// those not handled yet (see [`super::replay`]). A read that fails (the loss came with a
    /// failover, whose elections may still be under way) is tried again, for up to
    /// [`REREAD`]. If none succeeds, what was lost comes again after the acknowledgement
    /// wait: late, but not lost, as the fence keeps the acknowledgements from covering it.
    async fn read_again(
        &self,
        acks: &mut Acks<jetstream::Message>,
        lost: Range<u64>,
        shutdown: &CancellationToken,
    ) {
        let deadline = tokio::time::Instant::now() + REREAD;
        let mut routed = 0;
        for attempt in 1.. {
            let read = self.read_range(acks, lost.clone(), &mut routed);
            let failed = match tokio::time::timeout_at(deadline, read).await {
                Ok(Ok(())) => {
                    info!(
                        ?lost,
                        routed, attempt, "read again what was lost on the way"
                    );
                    return;
                }
                Ok(Err(e)) => e,
                Err(_) => "out of time".to_owned(),
            };
            if shutdown.is_cancelled() || tokio::time::Instant::now() + REREAD_PAUSE >= deadline {
                warn!(error = %failed, routed, "cannot read again what was lost; it comes later");
                return;
            }
            debug!(error = %failed, attempt, "reading again what was lost failed; trying again");
            pause(REREAD_PAUSE, shutdown).await;
        }
    }

    /// One read of `range` (see [`Consumer::read_again`]); `routed` counts what it routed.
    async fn read_range(
        &self,
        acks: &mut Acks<jetstream::Message>,
        range: Range<u64>,
        routed: &mut usize,
    ) -> Result<(), String> {
        let info = self.consumer.get_info().await.map_err(|e| e.to_string())?;
        let mut reader = Reader::open(&self.stream, filters(&info.config), range, REREAD).await?;
        let read = async {
            while let Some((seq, m)) = reader.next().await? {
                // A read tried again skips what the failed one routed.
                if !acks.holds(seq) {
                    let how = self.handle(&m).await;
                    acks.routed(seq, None, how);
                    ClusterMetrics::count(&self.metrics.reread);
                    *routed += 1;
                }
            }
            Ok(())
        }
        .await;
        reader.close().await;
        read
    }

    /// A commit ended, or it is time to acknowledge what waits (and, while the fence holds,
    /// to ask the server whether a message is missing).
    async fn settle(&mut self, acks: &mut Acks<jetstream::Message>, event: Event) {
        let due = match event {
            Event::Committed(seq, done) => {
                acks.committed(seq, done);
                false
            }
            Event::Due => true,
        };
        if due && acks.fenced() {
            match self.consumer.info().await {
                Ok(info) => acks.server_pending(info.num_ack_pending as u64),
                Err(e) => debug!(error = %e, "cannot read this node's consumer"),
            }
        }
        if let Some(m) = acks.take(due) {
            ack(&m).await;
        }
    }

    /// Routes one message to the local subscribers (a handover marker addressed here hands
    /// its session over). True for a marker: acknowledged as soon as what came before it.
    async fn route(&self, m: &jetstream::Message) -> bool {
        if m.subject.starts_with(MARK_PREFIX) {
            // Another node's filter may take in markers addressed to this one's neighbours.
            if *m.subject == *mark_subject(&self.node) {
                handover::marked(&self.client, &self.broker, &self.metrics, m.payload.clone())
                    .await;
            }
            return true;
        }
        let from = if origin(m.headers.as_ref()) == Some(self.node.as_str()) {
            Origin::Here(
                m.headers
                    .as_ref()
                    .and_then(|h| h.get(PUBLISHER))
                    .and_then(|v| v.as_str().parse::<ClientKey>().ok()),
            )
        } else {
            Origin::Elsewhere
        };
        match decode(&m.subject, m.payload.clone(), STREAM_PREFIX) {
            Ok(mut msg) => {
                msg.stream_seq = m
                    .info()
                    .ok()
                    .and_then(|i| NonZeroU64::new(i.stream_sequence));
                self.broker.publish_streamed(msg, from);
            }
            Err(e) => {
                warn!(subject = %m.subject, error = %e, "dropped a message from the stream")
            }
        }
        false
    }

    /// What the acknowledgement of a message waits for, once routing it is done: nothing if
    /// it wrote nothing to the store (`writes` is the store's count before), else its commit.
    fn stored(&self, writes: Option<u64>) -> Routed {
        let Some(p) = self.broker.persist().filter(|p| writes != Some(p.writes())) else {
            return Routed::Handled { durable: false };
        };
        if p.settled() {
            return Routed::Handled { durable: true };
        }
        match p.barrier() {
            Ok(ticket) => {
                Routed::Committing(Box::pin(async move {
                    ticket
                    .await
                    .map_err(|e| warn!(error = %e, "not acknowledged to the stream: the store failed"))
                    .is_ok()
                }))
            }
            Err(e) => {
                warn!(error = %e, "not acknowledged to the stream: the store is closed");
                Routed::Failed
            }
        }
    }
}

/// How long reading lost deliveries again may take, tries included: a failover's elections
/// may take several seconds, and past the consumer's acknowledgement wait (30 s) the server
/// sends them again anyway.
const REREAD: Duration = Duration::from_secs(25);
/// The pause between two tries.
const REREAD_PAUSE: Duration = Duration::from_millis(200);

async fn pause(wait: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        () = shutdown.cancelled() => {}
    }
}

/// Acknowledges `m` to the stream once the local store holds what routing it queued: at once
/// without a store, or when the store holds everything already (routing queued nothing
/// durable, as for clean sessions: no task and no trip through the store's writer per
/// message); otherwise when the store's next commit is done, without holding up the messages
/// after it. A commit that fails leaves it unacknowledged: the stream sends it again.
pub(super) async fn ack_when_stored(broker: &Broker, m: jetstream::Message) {
    let Some(ticket) = broker
        .persist()
        .filter(|p| !p.settled())
        .and_then(|p| p.barrier().ok())
    else {
        return ack(&m).await;
    };
    tokio::spawn(async move {
        match ticket.await {
            Ok(()) => ack(&m).await,
            Err(e) => warn!(error = %e, "not acknowledged to the stream: the store failed"),
        }
    });
}

async fn ack(m: &jetstream::Message) {
    if let Err(e) = m.ack().await {
        debug!(error = %e, "stream acknowledgement failed; the message may come again");
    }
}
