//! The writing half of a connection: takes batches out of the session
//! (acknowledgements first, then the QoS 0 deliveries their publishers encoded, then
//! messages within the in-flight window), encodes them into one [`Outbox`] (large payloads
//! by reference) and writes it with as few syscalls as the socket allows.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::num::NonZeroU16;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use aviary_protocol::{ByteString, Packet, ProtocolVersion};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tracing::debug;

use super::outbox::Outbox;
use super::Params;
use crate::broker::metrics::Denied;
use crate::broker::{Broker, Metrics, Outgoing, Session, WriterWake};
use crate::store::Ticket;

/// Messages taken from the session per batch; bounds the time its lock is
/// held and the size of one write.
const BATCH: usize = 256;

/// What [`Writer::fill`] found.
enum Filled {
    /// Packets to write are in the buffer.
    Some,
    /// Nothing to send until the session wakes the writer.
    Nothing,
    /// Nothing yet, but more to look at: come back without waiting.
    NotYet,
}

pub(super) struct Writer<'a, W> {
    broker: &'a Broker,
    wr: W,
    /// Wakes this writer: set by the session when there is something to send.
    wake: &'a WriterWake,
    /// Encoded bytes not yet written; kept across cancellation.
    out: Outbox,
    /// Whether `wr` writes vectored, so large payloads go out from where they are.
    vectored: bool,
    session: &'a Arc<Session>,
    link_id: u64,
    version: ProtocolVersion,
    client_max_packet_size: u32,
    problem_information: bool,
    /// Topic aliases we assigned for this client (MQTT 5); allocated with
    /// the first, as the writer lives in every idle connection's task.
    #[expect(
        clippy::box_collection,
        reason = "an idle connection carries only a pointer"
    )]
    aliases: Option<Box<HashMap<ByteString, NonZeroU16>>>,
    alias_max: u16,
    /// The commit `out` must wait for before it is written.
    store_wait: Option<Ticket>,
}

impl<'a, W: AsyncWrite + Unpin> Writer<'a, W> {
    pub(super) fn new(
        broker: &'a Broker,
        wr: W,
        session: &'a Arc<Session>,
        wake: &'a WriterWake,
        params: Params,
    ) -> Self {
        let vectored = wr.is_write_vectored();
        Self {
            broker,
            wr,
            wake,
            // Allocated when there is something to send: most connections
            // are idle most of the time.
            out: Outbox::default(),
            vectored,
            session,
            link_id: params.link_id,
            version: params.version,
            client_max_packet_size: params.client_max_packet_size,
            problem_information: params.problem_information,
            aliases: None,
            alias_max: if params.version.is_v5() {
                params.client_topic_alias_max
            } else {
                0
            },
            store_wait: None,
        }
    }

    /// The protocol version and the link id of the connection this writer serves.
    pub(super) fn link(&self) -> (ProtocolVersion, u64) {
        (self.version, self.link_id)
    }

    /// Sends whatever the session has for this connection, forever.
    /// Cancel-safe: unwritten bytes stay in `self.out`.
    ///
    /// An `async move` block and not an `async fn`, whose `self` would take room twice in
    /// this future, which is in every idle connection's task.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn keeps its `self` twice, 8 bytes of every idle connection"
    )]
    pub(super) fn run(&mut self) -> impl Future<Output = std::io::Result<()>> + use<'_, 'a, W> {
        async move {
            loop {
                if self.out.is_empty() {
                    // Taken before looking: a wake-up between the look and the wait is kept
                    // for the wait, so it is not lost.
                    self.wake.take();
                    match self.fill() {
                        Filled::Some => {}
                        Filled::Nothing => {
                            // Idle: hand the buffer back rather than keep it while waiting. Not
                            // after every write: a busy writer's next batch would grow a new one
                            // by reallocation, copying it over and over (about a copy of every
                            // byte sent, for 1 KiB payloads).
                            self.out.release();
                            // Another task's wake-up, or our own reader's (the connection's loop
                            // polls this writer right after its reader: see `Halves`).
                            poll_fn(|cx| self.wake.poll_woken(cx)).await;
                            continue;
                        }
                        Filled::NotYet => {
                            // Let the other tasks run before looking again. Boxed: rare, and
                            // inline its future would take room in every idle connection's task.
                            Box::pin(tokio::task::yield_now()).await;
                            continue;
                        }
                    }
                }
                poll_fn(|cx| self.poll_send(cx)).await?;
            }
        }
    }

    /// Sends what `self.out` holds: once the store has committed what it needs committed
    /// first (QoS 2 messages recorded as sent), writes it all and flushes. Cancel-safe: the
    /// store's ticket stays until it is done, and what was written is gone from `self.out`.
    ///
    /// A poll, not an `async fn`: a connection writing to a slow client waits here, and the
    /// future of an `async fn` would take room in every connection's task.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let Some(ticket) = &mut self.store_wait {
            let done = ready!(Pin::new(ticket).poll(cx));
            self.store_wait = None;
            done.map_err(std::io::Error::other)?;
        }
        let sent = &self.broker.metrics().bytes_sent;
        while !self.out.is_empty() {
            match ready!(self.out.poll_write(Pin::new(&mut self.wr), cx))? {
                0 => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                n => Metrics::add(sent, n as u64),
            }
        }
        ready!(Pin::new(&mut self.wr).poll_flush(cx))?;
        Poll::Ready(Ok(()))
    }

    /// Writes out what is pending plus a final packet, then shuts the stream.
    pub(super) async fn finish(&mut self, last: Option<Packet>) -> std::io::Result<()> {
        if let Some(mut p) = last {
            // A DISCONNECT's reason string and user properties go only if
            // the packet still fits the client's maximum [MQTT-3.14.2-3]
            // [MQTT-3.14.2-4].
            let limit = self.client_max_packet_size as usize;
            let too_large = p.encoded_len(self.version).map_or(true, |n| n > limit);
            if let (true, Packet::Disconnect(d)) = (too_large, &mut p) {
                d.properties.reason_string = None;
                d.properties.user_properties.clear();
            }
            if self.encode(&p) {
                Metrics::add(&self.broker.metrics().packets_sent, 1);
            }
        }
        poll_fn(|cx| self.poll_send(cx)).await?;
        self.wr.shutdown().await
    }

    /// Encodes the session's next batch into `self.out`.
    fn fill(&mut self) -> Filled {
        let now = Instant::now();
        let retained = self.broker.retained_store();
        let auth = self.broker.authorizer();
        // Asked only with an ACL in force; the answer for each retained
        // message the subscriber may not read is counted.
        let username = auth.has_acl().then(|| self.session.username()).flatten();
        let denied = std::cell::Cell::new(0u64);
        let readable = |topic: &str| {
            let ok = auth.can_read(username.as_deref(), &self.session.client_id, topic);
            denied.set(denied.get() + u64::from(!ok));
            ok
        };
        let spare = self.out.take_spare();
        let batch = self.session.take_batch_readable(
            self.link_id,
            BATCH,
            now,
            (retained, &readable),
            spare,
        );
        if denied.get() > 0 {
            self.broker
                .metrics()
                .denied_n(Denied::Retained, denied.get());
        }
        if batch.wait_for_store {
            if let Some(persist) = self.broker.persist() {
                // Only an error of a writer that stopped: then nothing waits.
                self.store_wait = persist.barrier().ok();
            }
        }
        let m = self.broker.metrics();
        if batch.expired > 0 {
            Metrics::add(&m.dropped_expired, batch.expired as u64);
        }
        if batch.is_empty() {
            // Retained messages still to come, past a run of skipped ones.
            return if batch.more {
                Filled::NotYet
            } else {
                Filled::Nothing
            };
        }
        let mut packets = 0;
        for mut p in batch.control {
            if !self.problem_information {
                strip_problem_information(&mut p);
            }
            packets += u64::from(self.encode(&p));
        }
        // Encoded by their publishers: after the control packets, ahead of anything queued.
        let encoded = batch.encoded.messages;
        self.out.push_encoded(batch.encoded.bytes);
        packets += encoded as u64;
        let sent = encoded + batch.messages.len();
        let sizes = batch.messages.iter().map(|(out, _, _)| {
            let msg = &out.msg;
            (msg.topic.len(), msg.payload.len())
        });
        self.out.reserve_publishes(sizes, self.vectored);
        for (out, packet_id, dup) in batch.messages {
            packets += u64::from(self.encode_message(&out, packet_id, dup, now));
        }
        // Counted once per batch, not per packet: every worker thread adds to these.
        Metrics::add(&m.packets_sent, packets);
        Metrics::add(&m.messages_sent, sent as u64);
        if batch.more {
            // Let the loop come back for the rest after this write (by the flag: a wake-up
            // of its own running task would only cost a thread hop).
            self.wake.mark_own();
        }
        Filled::Some
    }

    /// Encodes one message for this client; false if it was too large for it and dropped.
    fn encode_message(
        &mut self,
        out: &Outgoing,
        packet_id: Option<NonZeroU16>,
        dup: bool,
        now: Instant,
    ) -> bool {
        let (mut topic_alias, mut new_alias) = (None, None);
        if self.alias_max > 0 {
            let aliases = self.aliases.get_or_insert_default();
            if let Some(&alias) = aliases.get(&out.msg.topic) {
                topic_alias = Some(alias);
            } else if aliases.len() < usize::from(self.alias_max) {
                let alias = NonZeroU16::new(aliases.len() as u16 + 1).expect("non-zero");
                (topic_alias, new_alias) = (Some(alias), Some(alias));
            }
        }
        let publish = out.publish(packet_id, dup, now, topic_alias, new_alias.is_some());
        let limit = self.client_max_packet_size as usize;
        let pushed = self
            .out
            .push_publish(&publish, self.version, self.vectored, limit);
        // An encoding error means a packet too large for MQTT itself (above 256 MiB).
        if pushed.unwrap_or(false) {
            if let Some(alias) = new_alias {
                self.aliases
                    .get_or_insert_default()
                    .insert(out.msg.topic.clone(), alias);
            }
            true
        } else {
            // Too large for this client: drop it as if delivered [MQTT-3.1.2-25].
            let client_id = &self.session.client_id;
            debug!(%client_id, topic = %out.msg.topic, "message exceeds the client's maximum packet size, dropped");
            Metrics::add(&self.broker.metrics().dropped_too_large, 1);
            if let Some(id) = packet_id {
                self.session.abandon(id);
            }
            false
        }
    }

    /// Encodes a packet that is not a message; false if it could not be.
    fn encode(&mut self, packet: &Packet) -> bool {
        if let Err(e) = self.out.push(packet, self.version, self.vectored) {
            // Only possible for values we built wrongly; never take the
            // connection down for it.
            let client_id = &self.session.client_id;
            tracing::error!(%client_id, error = %e, packet = %packet.packet_type(), "cannot encode packet");
            return false;
        }
        true
    }
}

/// Request Problem Information = 0: no reason string or user properties on
/// acknowledgements [MQTT-3.1.2-29].
fn strip_problem_information(p: &mut Packet) {
    let props = match p {
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            &mut a.properties
        }
        Packet::SubAck(a) => &mut a.properties,
        Packet::UnsubAck(a) => &mut a.properties,
        _ => return,
    };
    props.reason_string = None;
    props.user_properties.clear();
}
