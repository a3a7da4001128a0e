//! The reading half of a connection: decodes packets as bytes arrive,
//! enforces keep alive, and acts on each packet. What a PUBLISH takes is in
//! [`publishing`]; how the half ends, a DISCONNECT or an error, in [`error`].

mod error;
mod publishing;

pub(super) use error::{Close, ConnError};

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::num::NonZeroU16;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use aviary_protocol::{short_puback, Ack, ByteString, Codec, Packet, ProtocolVersion, ReasonCode};
use bytes::{Buf, BytesMut};
use tokio::io::AsyncRead;

use super::acks::{AckError, PendingAcks, Reply, Wait};
use super::inbound::Inbound;
use super::Params;
use crate::broker::{
    note_messages_read, Broker, Metrics, Pressure, Session, Staged, Watch, WriterWake,
};

/// What ended a connection's idle wait ([`Reader::poll_idle`]).
enum Woke {
    Committed(Result<(), AckError>),
    Read(std::io::Result<usize>),
}

fn protocol(code: ReasonCode, why: &'static str) -> ConnError {
    ConnError::Protocol(code, why)
}

pub(super) struct Reader<'a, R> {
    broker: &'a Broker,
    rd: R,
    inbound: Inbound,
    codec: Codec,
    session: &'a Arc<Session>,
    link_id: u64,
    version: ProtocolVersion,
    /// The connection's wake-up, which holds its keep alive's deadline.
    wake: &'a WriterWake,
    /// Its place among the broker's keep alives, with a keep alive (see
    /// `broker::keep_alive`): the broker's driver closes the connection once the deadline
    /// this reader moves on every read has passed.
    keep_alive: Option<Watch>,
    session_expiry: u32,
    /// Topic aliases the client has set up (MQTT 5); allocated on the
    /// first one, as most clients never set one.
    #[expect(
        clippy::box_collection,
        reason = "an idle connection carries only a pointer"
    )]
    aliases: Option<Box<HashMap<u16, ByteString>>>,
    /// PUBACKs and PUBRECs waiting for their messages' commit.
    acks: PendingAcks,
}

/// Most PUBACKs taken off the buffer as one run (see [`Reader::take_pubacks`]).
const PUBACK_RUN: usize = 64;

/// Packets taken from one read, for the metrics.
#[derive(Default)]
struct Received {
    packets: u64,
    /// Of those, PUBLISH packets.
    messages: u64,
}

/// What handling one packet asks of the read loop.
enum Next {
    /// Go on reading.
    Read,
    /// The client ended the connection.
    Close(Close),
    /// Read nothing more from the client until these subscribers, which its message left far
    /// behind, catch up (see `session::backlog`), and the cluster's link has room.
    Hold(Pressure),
}

impl Next {
    fn hold(pressure: Pressure) -> Self {
        if pressure.is_empty() {
            Self::Read
        } else {
            Self::Hold(pressure)
        }
    }
}

impl<R> Drop for Reader<'_, R> {
    fn drop(&mut self) {
        if let Some(watch) = &self.keep_alive {
            self.broker.keep_alives().unwatch(self.wake, watch);
        }
    }
}

impl<'a, R: AsyncRead + Unpin> Reader<'a, R> {
    pub(super) fn new(
        broker: &'a Broker,
        rd: R,
        buf: BytesMut,
        session: &'a Arc<Session>,
        wake: &'a Arc<WriterWake>,
        params: Params,
    ) -> Self {
        let max = broker.config().max_packet_size;
        let keep_alive = (params.keep_alive > 0)
            .then(|| broker.keep_alives().watch(wake, params.keep_alive))
            .flatten();
        Self {
            broker,
            rd,
            inbound: Inbound::new(buf),
            codec: Codec::new(params.version, max),
            session,
            link_id: params.link_id,
            version: params.version,
            wake,
            keep_alive,
            session_expiry: params.session_expiry,
            aliases: None,
            acks: PendingAcks::default(),
        }
    }

    pub(super) fn session_expiry(&self) -> u32 {
        self.session_expiry
    }

    /// Why the connection ends when the broker's keep alives closed it.
    pub(super) fn keep_alive_expired(&self) -> ConnError {
        ConnError::KeepAlive(
            self.keep_alive
                .as_ref()
                .map(Watch::limit)
                .unwrap_or_default(),
        )
    }

    /// Reads and handles packets until the client disconnects or fails.
    /// Cancel-safe: partial packets stay in `self.inbound`.
    ///
    /// An `async move` block and not an `async fn`, whose `self` would take room twice in
    /// this future, which is in every idle connection's task.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn keeps its `self` twice, 8 bytes of every idle connection"
    )]
    pub(super) fn run(
        &mut self,
    ) -> impl Future<Output = Result<Close, ConnError>> + use<'_, 'a, R> {
        async move {
            loop {
                // Settled before any wait, down to a pointer: a value a `match` or a local
                // holds stays in this future while it waits (a `Pressure` kept here took 40
                // bytes of every idle connection's task), even once moved from. In a block:
                // `held` borrows the reader until it is dropped.
                {
                    let held = match self.take_in()? {
                        Next::Read => None,
                        Next::Close(close) => return Ok(close),
                        // Boxed: the wait is rare, and would otherwise grow every idle
                        // connection's task by its size.
                        Next::Hold(pressure) => Some(Box::pin(self.held(pressure))),
                    };
                    if let Some(held) = held {
                        held.await?;
                        continue;
                    }
                }
                self.inbound.release_if_empty();
                // One poll of the three, not `select!` of three futures: a connection waits
                // here nearly all its life, holding only a pointer to itself.
                match poll_fn(|cx| self.poll_idle(cx)).await {
                    Woke::Committed(committed) => committed?,
                    Woke::Read(n) => {
                        let n = n?;
                        if n == 0 {
                            return Err(ConnError::Eof);
                        }
                        Metrics::add(&self.broker.metrics().bytes_received, n as u64);
                    }
                }
            }
        }
    }

    /// Waits for an acknowledgement's commit or bytes from the client, whichever comes
    /// first. Cancel-safe both ways: a read cut short keeps its bytes in `self.inbound`, and
    /// a commit that completes is not lost.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<Woke> {
        if let Poll::Ready(committed) = self.acks.poll_next_commit(cx) {
            return Poll::Ready(Woke::Committed(committed));
        }
        self.inbound
            .poll_read(Pin::new(&mut self.rd), cx)
            .map(Woke::Read)
    }

    /// Handles the packets read so far, up to one that holds the client back, and sends
    /// the acknowledgements whose commits are done.
    fn take_in(&mut self) -> Result<Next, ConnError> {
        let mut counts = Received::default();
        let next = self.handle_read(&mut counts);
        // Counted once per read, not per packet: every worker thread adds to these.
        let m = self.broker.metrics();
        Metrics::add(&m.packets_received, counts.packets);
        Metrics::add(&m.messages_received, counts.messages);
        if counts.messages > 0 {
            note_messages_read(counts.messages);
        }
        let next = next?;
        if let Next::Close(_) = next {
            return Ok(next);
        }
        if counts.packets > 0 {
            self.restart_keep_alive();
        }
        for reply in self.acks.ready()? {
            self.send(reply);
        }
        Ok(next)
    }

    /// Handles the packets read so far, up to one that holds the client back or closes the
    /// connection, counting them in `counts`.
    /// The messages' deliveries are staged and queued per subscriber (see [`Staged`]): at the
    /// end of the read, and before any other packet is handled.
    fn handle_read(&mut self, counts: &mut Received) -> Result<Next, ConnError> {
        let mut out = Staged::runs(self.broker);
        let mut next = Next::Read;
        while matches!(next, Next::Read) && !out.presses() {
            if short_puback(&self.inbound.buf).is_some() {
                out.flush();
                counts.packets += self.take_pubacks();
                continue;
            }
            let Some(packet) = self.codec.decode(&mut self.inbound.buf)? else {
                break;
            };
            counts.packets += 1;
            if matches!(packet, Packet::Publish(_)) {
                counts.messages += 1;
            } else {
                out.flush();
            }
            next = self.handle(packet, &mut out)?;
        }
        let pressure = out.finish();
        Ok(match next {
            Next::Read => Next::hold(pressure),
            next => next,
        })
    }

    /// Takes the run of plain PUBACKs at the front of the buffer, up to [`PUBACK_RUN`] of
    /// them, and completes their deliveries under one lock of the session, without decoding
    /// each into a packet. Returns how many it took.
    fn take_pubacks(&mut self) -> u64 {
        let mut ids = [NonZeroU16::MIN; PUBACK_RUN];
        let mut n = 0;
        let run = self.inbound.buf.chunks_exact(4).map_while(short_puback);
        for (slot, id) in ids.iter_mut().zip(run) {
            *slot = id;
            n += 1;
        }
        if n > 0 {
            self.inbound.buf.advance(4 * n);
            self.session.pubacks(self.link_id, &ids[..n]);
        }
        n as u64
    }

    /// The client was heard from: its keep alive starts over.
    fn restart_keep_alive(&self) {
        if let Some(watch) = &self.keep_alive {
            self.broker.keep_alives().heard(self.wake, watch);
        }
    }

    /// The client is held back, its bytes unread: no keep alive runs out meanwhile.
    fn hold_keep_alive(&self) {
        if self.keep_alive.is_some() {
            self.wake.hold_keep_alive();
        }
    }

    /// The client is read again after [`Reader::hold_keep_alive`]: its keep alive starts over.
    fn resume_keep_alive(&self) {
        if let Some(watch) = &self.keep_alive {
            self.broker.keep_alives().resumed(self.wake, watch);
        }
    }

    /// [`Reader::wait_for_room`], with the client's keep alive paused meanwhile: it is not
    /// read, so its silence is ours, not its own.
    async fn held(&mut self, pressure: Pressure) -> Result<(), ConnError> {
        self.hold_keep_alive();
        let waited = self.wait_for_room(pressure).await;
        self.resume_keep_alive();
        waited
    }

    /// Holds this client back, its bytes unread, until the subscribers its messages left far
    /// behind catch up or are found slow, and the cluster's link has room; its
    /// acknowledgements still go out meanwhile.
    async fn wait_for_room(&mut self, pressure: Pressure) -> Result<(), ConnError> {
        let rooms = pressure.relieved();
        tokio::pin!(rooms);
        loop {
            tokio::select! {
                () = &mut rooms => return Ok(()),
                committed = self.acks.next_commit() => {
                    committed?;
                    for reply in self.acks.ready()? {
                        self.send(reply);
                    }
                }
            }
        }
    }

    fn reply(&self, packet: Packet) {
        self.session.send_control(self.link_id, packet);
    }

    fn send(&self, reply: Reply) {
        match reply {
            Reply::Packet(packet) => self.reply(packet),
            Reply::Subscribed(ack, cursors) => {
                self.session.subscribed(self.link_id, ack, cursors);
            }
        }
    }

    /// Acts on one packet; a PUBLISH's deliveries are staged in `out`.
    fn handle(&mut self, packet: Packet, out: &mut Staged<'_>) -> Result<Next, ConnError> {
        match packet {
            Packet::Publish(p) => self.publish(p, out)?,
            Packet::PubAck(a) => self.session.pubacks(self.link_id, &[a.packet_id]),
            Packet::PubRec(a) => {
                let known = self.session.pubrec(a.packet_id, a.reason_code.is_error());
                if known {
                    self.reply(Packet::PubRel(Ack::new(a.packet_id)));
                } else if !a.reason_code.is_error() {
                    self.reply(Packet::PubRel(Ack::with_reason(
                        a.packet_id,
                        ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
                    )));
                } else {
                    self.session.wake_from(self.link_id);
                }
            }
            Packet::PubRel(a) => {
                let known = self.session.incoming_qos2_release(a.packet_id);
                let reason = if known {
                    ReasonCode::SUCCESS
                } else {
                    ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
                };
                self.reply(Packet::PubComp(Ack::with_reason(a.packet_id, reason)));
            }
            Packet::PubComp(a) => {
                if self.session.pubcomp(a.packet_id) {
                    self.session.wake_from(self.link_id);
                }
            }
            Packet::Subscribe(s) => {
                if s.properties.subscription_identifier.is_some() && !self.version.is_v5() {
                    return Err(protocol(
                        ReasonCode::PROTOCOL_ERROR,
                        "subscription identifier before MQTT 5",
                    ));
                }
                // The SUBACK goes before the retained messages, which the
                // writer pulls from the store as it has room for them.
                let (ack, cursors, synced) = self.broker.subscribe(self.session, s);
                let reply = Reply::Subscribed(Packet::SubAck(ack), cursors);
                match synced {
                    None if self.acks.is_empty() => self.send(reply),
                    synced => self.acks.push(synced.map(Wait::Cluster), reply),
                }
            }
            Packet::Unsubscribe(u) => {
                let ack = self.broker.unsubscribe(self.session, u);
                self.reply(Packet::UnsubAck(ack));
            }
            Packet::PingReq => self.reply(Packet::PingResp),
            Packet::Disconnect(d) => {
                return self
                    .disconnect(d.reason_code, d.properties.session_expiry_interval)
                    .map(Next::Close)
            }
            Packet::Auth(_) => {
                // Enhanced authentication ends at the CONNACK (handshake/enhanced.rs):
                // re-authentication is not offered, so any AUTH now is refused and
                // the connection closed (0x8C is CONNACK-only, MQTT 5.0 table 3-10).
                return Err(protocol(
                    ReasonCode::PROTOCOL_ERROR,
                    "AUTH after CONNACK: re-authentication is not supported [MQTT-4.12.0-7]",
                ));
            }
            Packet::Connect(_) => {
                return Err(protocol(
                    ReasonCode::PROTOCOL_ERROR,
                    "second CONNECT [MQTT-3.1.0-2]",
                ))
            }
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                return Err(protocol(
                    ReasonCode::PROTOCOL_ERROR,
                    "a packet only a server may send",
                ));
            }
        }
        Ok(Next::Read)
    }

    fn disconnect(&mut self, reason: ReasonCode, expiry: Option<u32>) -> Result<Close, ConnError> {
        if let Some(e) = expiry {
            // A session that ends with the connection cannot be extended
            // at DISCONNECT [MQTT-3.14.2-2].
            if self.session_expiry == 0 && e != 0 {
                return Err(protocol(
                    ReasonCode::PROTOCOL_ERROR,
                    "session expiry set at DISCONNECT after 0 [MQTT-3.14.2-2]",
                ));
            }
        }
        let expiry = expiry.map(|e| e.min(self.broker.config().max_session_expiry_secs));
        Ok(if reason == ReasonCode::DISCONNECT_WITH_WILL {
            Close::WithWill { expiry }
        } else {
            Close::Normal { expiry }
        })
    }
}
