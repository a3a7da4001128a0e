//! The client state machine: connection lifecycle, the application's commands, and output.
//!
//! Incoming packets are handled in [`incoming`], the application's publishes, subscribes and
//! unsubscribes in [`commands`]; this file owns the phases of a connection (opening,
//! handshake, connected, waiting to retry, offline, ended). Times are milliseconds on the caller's monotonic clock.

mod auth;
mod commands;
mod incoming;
mod outgoing;
#[cfg(test)]
mod tests;

use commands::subscribe_packet;

use alloc::vec::Vec;
use aviary_protocol::{
    Connect, Disconnect, Packet, SubscribeProperties, SubscriptionOptions, TopicFilter,
    MAX_PACKET_SIZE,
};

use super::alias::{IncomingAliases, OutgoingAliases};
use super::backoff::{Backoff, Rng};
use super::keepalive::{KeepAlive, KeepAliveAction};
use super::queue::OfflineQueue;
use super::session::{Pending, Session};
use super::{Done, ErrorKind, Event, MqttError, Options, Token};

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Created, [`Machine::start`] not called yet.
    Idle,
    /// A WebSocket is being opened.
    Opening { deadline: u64 },
    /// CONNECT sent, waiting for CONNACK.
    Handshake { deadline: u64 },
    /// CONNACK accepted the connection.
    Connected,
    /// No socket; the next attempt is due at `until`.
    Waiting { until: u64 },
    /// No socket, and the browser says it is offline: wait for it to come back.
    Offline,
    /// Stopped for good.
    Ended,
}

/// Limits the broker announced in CONNACK (MQTT 5), or the protocol's maximums.
#[derive(Debug, Clone, Copy)]
struct ServerLimits {
    receive_maximum: usize,
    maximum_packet_size: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            receive_maximum: usize::from(u16::MAX),
            maximum_packet_size: MAX_PACKET_SIZE as usize,
        }
    }
}

/// An MQTT client with no I/O. See the [module docs](super).
#[derive(Debug)]
pub struct Machine {
    options: Options,
    phase: Phase,
    rng: Rng,
    backoff: Backoff,
    attempts: u32,
    online: bool,
    session: Session,
    /// Acknowledged subscriptions, to restore when the broker kept no session, each with the
    /// SUBSCRIBE properties (subscription identifier) it was made with.
    subscriptions: Vec<(TopicFilter, SubscriptionOptions, SubscribeProperties)>,
    /// A graceful end waits until this time for in-flight publishes to be acknowledged.
    closing: Option<u64>,
    queue: OfflineQueue,
    keep_alive: KeepAlive,
    out_aliases: OutgoingAliases,
    in_aliases: IncomingAliases,
    server: ServerLimits,
    /// Received bytes not yet decoded, and output not yet taken: plain vectors, so the npm
    /// package carries none of `BytesMut`'s code.
    recv: Vec<u8>,
    out: Vec<u8>,
    events: Vec<Event>,
    next_token: u32,
}

impl Machine {
    /// A client that will connect with `options`; `seed` drives reconnect jitter.
    pub fn new(options: Options, seed: u64) -> Self {
        let reconnect = options.reconnect;
        Self {
            queue: OfflineQueue::new(options.queue),
            keep_alive: KeepAlive::new(options.keep_alive, 0),
            options,
            phase: Phase::Idle,
            rng: Rng::new(seed),
            backoff: Backoff::new(reconnect.initial_delay_ms, reconnect.max_delay_ms),
            attempts: 0,
            online: true,
            session: Session::default(),
            subscriptions: Vec::new(),
            closing: None,
            out_aliases: OutgoingAliases::default(),
            in_aliases: IncomingAliases::default(),
            server: ServerLimits::default(),
            recv: Vec::new(),
            out: Vec::new(),
            events: Vec::new(),
            next_token: 0,
        }
    }

    /// The options in force (the client id is the broker-assigned one after a CONNACK that
    /// assigned one).
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Whether the broker has accepted the current connection.
    pub fn is_connected(&self) -> bool {
        self.phase == Phase::Connected
    }

    /// Whether the client stopped for good.
    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// Whether the client is between connections, waiting to retry (MQTT.js's `reconnecting`).
    pub fn is_reconnecting(&self) -> bool {
        matches!(self.phase, Phase::Waiting { .. } | Phase::Offline)
            || self.attempts > 1
                && matches!(self.phase, Phase::Opening { .. } | Phase::Handshake { .. })
    }

    /// How many publishes wait in the offline queue.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Milliseconds from `now` until the next connection attempt, while waiting out a reconnect
    /// backoff (`Some(0)` when it is overdue); `None` otherwise (connected, connecting, offline,
    /// ended).
    pub fn next_attempt_in(&self, now: u64) -> Option<u64> {
        match self.phase {
            Phase::Waiting { until } => Some(until.saturating_sub(now)),
            _ => None,
        }
    }

    /// Starts the first connection attempt.
    pub fn start(&mut self, now: u64) {
        if self.phase == Phase::Idle {
            self.open(now);
        }
    }

    /// Output to write to the socket, as one buffer (one WebSocket frame) for everything queued.
    pub fn take_output(&mut self) -> Option<Vec<u8>> {
        (!self.out.is_empty()).then(|| core::mem::take(&mut self.out))
    }

    /// Events since the last call, in order.
    pub fn take_events(&mut self) -> Vec<Event> {
        core::mem::take(&mut self.events)
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has work, if ever.
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.phase {
            Phase::Opening { deadline } | Phase::Handshake { deadline } => Some(deadline),
            Phase::Waiting { until } => Some(until),
            Phase::Connected => match (self.keep_alive.deadline(), self.closing) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            Phase::Idle | Phase::Offline | Phase::Ended => None,
        }
    }

    /// Does whatever is due at `now`. Safe to call at any time, early, late or repeatedly.
    pub fn handle_timeout(&mut self, now: u64) {
        match self.phase {
            Phase::Opening { deadline } | Phase::Handshake { deadline } if now >= deadline => {
                let error = MqttError::new(ErrorKind::ConnectTimeout, "connect timed out");
                self.lost(error, true, now);
            }
            Phase::Waiting { until } if now >= until => self.open(now),
            // The grace period is over: what is still unacknowledged is dropped.
            Phase::Connected if self.closing.is_some_and(|d| now >= d) => self.disconnect(now),
            Phase::Connected => self.check_keep_alive(now),
            _ => {}
        }
    }

    /// The WebSocket asked for by [`Event::Open`] is open: send CONNECT.
    pub fn socket_opened(&mut self, now: u64) {
        let Phase::Opening { deadline } = self.phase else {
            return;
        };
        self.recv.clear();
        self.out.clear();
        let alias_max = if self.options.protocol.is_v5() {
            self.options.properties.topic_alias_maximum.unwrap_or(0)
        } else {
            0
        };
        self.in_aliases.reset(alias_max);
        self.out_aliases.reset(0);
        self.server = ServerLimits::default();
        self.keep_alive = KeepAlive::new(self.options.keep_alive, now);
        self.phase = Phase::Handshake { deadline };
        if let Err(error) = self.send_connect(now) {
            // Only the application's options can make CONNECT unencodable: retrying won't help.
            self.events.push(Event::Error(error.clone()));
            self.events.push(Event::CloseSocket);
            self.events.push(Event::Closed(Some(error)));
            self.end();
        }
    }

    /// The WebSocket closed or failed by itself (not after [`Event::CloseSocket`]).
    pub fn socket_closed(&mut self, detail: &str, now: u64) {
        if matches!(
            self.phase,
            Phase::Opening { .. } | Phase::Handshake { .. } | Phase::Connected
        ) {
            let error = MqttError::new(ErrorKind::ConnectionLost, detail);
            self.lost(error, false, now);
        }
    }

    /// The browser went online or offline. Online retries at once instead of waiting out the
    /// backoff; offline suspends retries until the browser is back online.
    pub fn set_online(&mut self, online: bool, now: u64) {
        self.online = online;
        match self.phase {
            Phase::Waiting { .. } if !online => self.phase = Phase::Offline,
            Phase::Waiting { .. } | Phase::Offline if online => self.open(now),
            _ => {}
        }
    }

    /// Ends the client gracefully: while connected with outgoing QoS 1/2 publishes in flight
    /// (or waiting for room in the in-flight window), or subscribes and unsubscribes awaiting
    /// their acks (as MQTT.js waits for its outgoing store), new operations are refused and the
    /// DISCONNECT waits until those are acknowledged or `timeout_ms` has passed, whichever
    /// comes first; then as [`disconnect`](Self::disconnect). Anything else ends at once.
    pub fn end_gracefully(&mut self, timeout_ms: u32, now: u64) {
        if self.phase == Phase::Connected && self.closing.is_none() {
            self.closing = Some(now + u64::from(timeout_ms));
            self.finish_closing(now);
        } else if self.closing.is_none() {
            self.disconnect(now);
        }
    }

    /// Whether a graceful end waits for acknowledgements.
    pub fn is_closing(&self) -> bool {
        self.closing.is_some()
    }

    /// Completes a graceful end once nothing outgoing awaits an acknowledgement.
    fn finish_closing(&mut self, now: u64) {
        if self.closing.is_some() && self.session.is_empty() && self.queue.is_empty() {
            self.disconnect(now);
        }
    }

    /// Ends the client at once (a forced end): DISCONNECT if connected, close the socket, fail
    /// what is pending.
    pub fn disconnect(&mut self, now: u64) {
        self.closing = None;
        match self.phase {
            Phase::Ended => return,
            Phase::Connected => {
                // A normal DISCONNECT tells the broker to discard the will [MQTT-3.14.4-3].
                let _ = self.send(&Packet::Disconnect(Disconnect::default()), now);
                self.events.push(Event::CloseSocket);
                self.events.push(Event::Closed(None));
            }
            Phase::Opening { .. } | Phase::Handshake { .. } => {
                self.events.push(Event::CloseSocket);
                self.events.push(Event::Closed(None));
            }
            Phase::Idle | Phase::Waiting { .. } | Phase::Offline => {}
        }
        self.end();
    }

    /// Drops the acknowledged subscriptions to these filters. One function for unsubscribing
    /// and for a filter subscribed again: each `retain` closure was a copy of `retain`.
    pub(super) fn forget_subscriptions(&mut self, filters: &[TopicFilter]) {
        self.subscriptions
            .retain(|(f, ..)| !filters.iter().any(|u| u == f));
    }

    fn open(&mut self, now: u64) {
        self.attempts += 1;
        self.events.push(Event::Open {
            attempt: self.attempts,
        });
        let deadline = now + u64::from(self.options.connect_timeout_ms);
        self.phase = Phase::Opening { deadline };
    }

    /// Sends CONNECT, built from the options. The will, the password and the MQTT 5
    /// properties are moved into the packet and back out once it is encoded, not cloned: the
    /// clones of those structures were code in the npm package for nothing.
    fn send_connect(&mut self, now: u64) -> Result<(), MqttError> {
        let o = &mut self.options;
        let v5 = o.protocol.is_v5();
        let mut connect = Connect::new(o.protocol, o.client_id.clone());
        connect.clean_start = o.clean_start;
        connect.keep_alive = o.keep_alive;
        connect.will = o.will.take();
        connect.username = o.username.clone().map(Into::into);
        connect.password = o.password.take();
        if v5 {
            connect.properties = core::mem::take(&mut o.properties);
        }
        let packet = Packet::from(connect);
        let sent = self.send(&packet, now);
        if let Packet::Connect(c) = packet {
            let o = &mut self.options;
            o.will = c.will;
            o.password = c.password;
            if v5 {
                o.properties = c.properties;
            }
        }
        sent
    }

    /// The connection is gone: report it, then wait to retry or end.
    fn lost(&mut self, error: MqttError, close_socket: bool, now: u64) {
        let was_connected = self.phase == Phase::Connected;
        if close_socket {
            // Output already written (a DISCONNECT with a reason) goes out before the close.
            self.events.push(Event::CloseSocket);
        } else {
            self.out.clear();
        }
        self.recv.clear();
        self.events.push(Event::Closed(Some(error)));
        if was_connected {
            self.events.push(Event::Offline);
        }
        if !self.options.reconnect.enabled || self.closing.is_some() {
            // A graceful end that lost its connection gives up on what is in flight.
            self.closing = None;
            self.end();
        } else if self.online {
            let delay_ms = self.backoff.next_delay(&mut self.rng);
            self.phase = Phase::Waiting {
                until: now + delay_ms,
            };
            self.events.push(Event::ReconnectScheduled {
                attempt: self.attempts + 1,
                delay_ms,
            });
        } else {
            self.phase = Phase::Offline;
        }
    }

    fn end(&mut self) {
        self.phase = Phase::Ended;
        let ended = || MqttError::new(ErrorKind::ClientEnded, "the client was ended");
        // By reference, and the operations dropped with their vector: iterating it by value was
        // an iterator of its own in the package.
        let pending = self.session.drain();
        for (_, pending) in &pending {
            let token = match *pending {
                Pending::Publish { token, .. } | Pending::Unsubscribe { token, .. } => Some(token),
                Pending::Subscribe { token, .. } => token,
            };
            if let Some(token) = token {
                self.complete(token, Err(ended()));
            }
        }
        while let Some(item) = self.queue.pop() {
            self.complete(item.token, Err(ended()));
        }
        self.events.push(Event::Ended);
    }

    fn check_keep_alive(&mut self, now: u64) {
        match self.keep_alive.poll(now) {
            KeepAliveAction::Idle => {}
            KeepAliveAction::Ping => {
                let _ = self.send(&Packet::PingReq, now);
            }
            KeepAliveAction::TimedOut => {
                let error = MqttError::new(ErrorKind::KeepAliveTimeout, "no PINGRESP in time");
                self.lost(error, true, now);
            }
        }
    }

    fn check_not_ended(&self) -> Result<(), MqttError> {
        if self.phase == Phase::Ended || self.closing.is_some() {
            return Err(MqttError::new(
                ErrorKind::ClientEnded,
                "the client was ended",
            ));
        }
        Ok(())
    }

    fn token(&mut self) -> Token {
        self.next_token = self.next_token.wrapping_add(1);
        Token(self.next_token)
    }

    fn free_id(&mut self) -> Result<core::num::NonZeroU16, MqttError> {
        self.session.free_id().ok_or_else(|| {
            MqttError::new(
                ErrorKind::InvalidArgument,
                "all packet identifiers are in use",
            )
        })
    }

    fn complete(&mut self, token: Token, result: Result<Done, MqttError>) {
        self.events.push(Event::Completed { token, result });
    }
}
