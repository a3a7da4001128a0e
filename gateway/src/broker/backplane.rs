//! The seam to other gateway nodes (cluster mode; see DESIGN.md, "Cluster: the backplane").
//! The broker routes every message to its own subscribers and hands those its clients
//! published to a [`Backplane`], which carries them to the other nodes; messages from other
//! nodes come back in through [`Broker::publish_live`] and [`Broker::publish_streamed`]. The broker never knows it is NATS.
//!
//! In cluster mode the will of each connection is recorded in the cluster too, so that
//! another node can publish it should this one die ([`Backplane::will_set`]), and a node cut
//! off from the others takes no clients ([`Backplane::accepting`]).
//!
//! The backplane also hears which topic filters this node has subscribers for (the interest
//! NATS routes by), as the subscription tree notes them: told under the routing lock, so the
//! changes of one filter arrive in the order they happened.

use std::collections::HashSet;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use super::persist::convert::{self, Clocks};
use super::publish::{Origin, Room, Source, Staged};
use super::router::ClientKey;
use super::{Broker, Message, Routing, Will};
use crate::store::{codec, Forwarded};

/// Why the other nodes did not take a message: the publisher is not acknowledged, and sends
/// it again.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the cluster did not take the message: {0}")]
pub(crate) struct ForwardError(pub(crate) String);

/// The reason a node cut off from its cluster closes its connections with. MQTT 5 has no
/// "Server unavailable" for DISCONNECT (0x88 is CONNACK only); 0x9C Use another server says
/// what the client should do: another node can take it. Such a connection's will is left to
/// the cluster, which publishes it once (the node may be on the wrong side of the cut).
pub(crate) const CUT_OFF: aviary_protocol::ReasonCode =
    aviary_protocol::ReasonCode::USE_ANOTHER_SERVER;

/// Completes when the cluster holds a forwarded QoS 1/2 message.
pub(crate) type AckWait = Pin<Box<dyn Future<Output = Result<(), ForwardError>> + Send>>;

/// The cluster's side of an incoming QoS 2 exchange: its message goes to the other nodes
/// under the exchange's token ([`Forwarded`]), and a resend of the PUBLISH, on whichever node
/// the publisher is connected to then, forwards it again under the same token.
pub(crate) struct Exchange {
    /// The node that opened the exchange, and the token.
    pub(crate) forwarded: Forwarded,
    /// What the message's first forwarding waits for: the store holding the exchange's
    /// record, token included, so that a node adopting the session after this one died
    /// knows the token of any copy that reached the cluster. `None` for a resend, and for a
    /// session the store does not keep (its client starts over when it reconnects).
    pub(crate) after: Option<AckWait>,
}

/// What routing a message published on this node did.
pub(crate) struct Published {
    /// How many local subscribers it was queued for.
    pub(crate) delivered: usize,
    /// For QoS 1/2 in cluster mode, what the acknowledgement must wait for.
    pub(crate) wait: Option<AckWait>,
}

/// Carries messages to the other nodes, and this node's interest to where it is routed by.
pub(crate) trait Backplane: Send + Sync + Debug {
    /// Hands over a message published on this node, by the local client `publisher` if any
    /// (it comes back to this node's persistent sessions through the stream, where No Local
    /// needs to know), at QoS 2 as part of `exchange`. For QoS 1/2 the returned wait
    /// completes once the cluster holds it; the publisher's PUBACK/PUBREC waits for it.
    fn forward(
        &self,
        msg: &Message,
        publisher: Option<ClientKey>,
        exchange: Option<Exchange>,
    ) -> Option<AckWait>;

    /// While the messages this node has handed over and not yet sent queue up past a bound,
    /// what completes once they are down again: a client publishing here waits for it
    /// before it sends more, as for a local subscriber far behind.
    fn room(&self) -> Option<Room>;

    /// How the message of a QoS 2 exchange opened now on this node is forwarded: this node,
    /// and a token no other exchange of its has.
    fn forwarding(&self) -> Forwarded;

    /// Claims `client_id` for a connection on this node; the connection is accepted once the
    /// wait completes, and a connection elsewhere with the same client id is closed. A session
    /// the client left on another node moves here first ([`Broker::open_moving_session`]),
    /// unless the client starts clean (`clean_start`), which ends it there.
    fn claim(&self, client_id: &str, clean_start: bool) -> AckWait;

    /// Whether this node's last claim of `client_id` still holds: no newer one was made
    /// elsewhere since. A connection whose claim was overtaken before its session was
    /// registered here (where a takeover finds it) is closed as taken over.
    fn holds(&self, client_id: &str) -> bool;

    /// Filters that gained their first ordinary subscription on this node, and shared groups
    /// (`$share/{group}/{filter}`) their first member here (`true`), or lost their last
    /// (`false`), in order. Must not block: it is called under the routing lock.
    fn interest(&self, changes: Vec<(Box<str>, bool)>);

    /// Completes once this node receives what the interest told so far brings: its stream
    /// consumer listens to every filter subscribed here. A SUBACK that added interest waits
    /// for it, so that a QoS 1/2 message published after the SUBACK, even on this node, is
    /// not missed while the consumer takes the new filter in.
    fn synced(&self) -> AckWait;

    /// Records the will of a connection this node is accepting, or that it has none, so that
    /// the cluster can publish it should this node die; the CONNACK waits for the record.
    /// `expiry_secs` is the session's: a will waits no longer than its session lasts.
    fn will_set(&self, client_id: &str, will: Option<&Will>, expiry_secs: u32) -> Option<AckWait>;

    /// The will of this node's connection of `client_id` was published or discarded here.
    fn will_gone(&self, client_id: &str);

    /// Whether this node takes clients: not while it is cut off from the other nodes.
    fn accepting(&self) -> bool;
}

/// A message as it travels between nodes: the store's encoding, expiry as wall-clock time.
pub(crate) fn encode_wire(msg: &Message) -> Vec<u8> {
    codec::encode_message(&convert::stored_message_with(msg, Clocks::now))
}

/// The message [`encode_wire`] made, or why it is not one.
pub(crate) fn decode_wire(bytes: Bytes) -> Result<Message, String> {
    let stored = codec::decode_message(bytes).map_err(|e| e.0.to_owned())?;
    Ok(convert::message_with(stored, Clocks::now))
}

impl Broker {
    /// Connects this broker to the other nodes. Returns the filters it has subscribers for
    /// already (recovered sessions); from now on the backplane hears every change.
    pub(crate) fn attach_backplane(&self, backplane: Arc<dyn Backplane>) -> Vec<Box<str>> {
        let mut routing = self.shared.routing.write();
        let filters = routing.tree.track_interest();
        // Set under the routing lock: no change can fall between the list and the first event.
        let _ = self.shared.backplane.set(backplane);
        drop(routing);
        filters
    }

    pub(crate) fn backplane(&self) -> Option<&Arc<dyn Backplane>> {
        self.shared.backplane.get()
    }

    /// Closes every connection of this node with `reason`; returns the client ids whose
    /// connection was told to close.
    pub(crate) fn kick_all(&self, reason: aviary_protocol::ReasonCode) -> Vec<String> {
        let sessions: Vec<_> = self.shared.sessions.lock().values().cloned().collect();
        sessions
            .iter()
            .filter(|s| s.kick(reason))
            .map(|s| s.client_id.to_string())
            .collect()
    }

    /// Whether this node holds a session for `client_id`, connected or not.
    pub(crate) fn has_session(&self, client_id: &str) -> bool {
        self.shared.sessions.lock().contains_key(client_id)
    }

    /// Tells the backplane that the will of this node's connection of `client_id` was
    /// published or discarded.
    pub(super) fn will_gone(&self, client_id: &str) {
        if let Some(backplane) = self.backplane() {
            backplane.will_gone(client_id);
        }
    }

    /// Closes this node's connection of `client_id`, if it has one, with `reason`.
    pub(crate) fn kick_client(&self, client_id: &str, reason: aviary_protocol::ReasonCode) -> bool {
        let session = self.shared.sessions.lock().get(client_id).cloned();
        session.is_some_and(|s| s.kick(reason))
    }

    /// Changes the routing state, then tells the backplane (if any) whose interest changed.
    pub(super) fn with_routing<R>(&self, change: impl FnOnce(&mut Routing) -> R) -> R {
        self.with_routing_told(change).0
    }

    /// [`Broker::with_routing`], and whether the backplane was told of a change.
    pub(super) fn with_routing_told<R>(&self, change: impl FnOnce(&mut Routing) -> R) -> (R, bool) {
        let mut routing = self.shared.routing.write();
        let result = change(&mut routing);
        let changes = routing.tree.take_interest();
        let mut told = false;
        if !changes.is_empty() {
            if let Some(backplane) = self.backplane() {
                backplane.interest(changes);
                told = true;
            }
        }
        (result, told)
    }

    /// Routes a message a client of this node published (at QoS 2, as part of `exchange`),
    /// and hands it to the other nodes. Returns what that did (see [`Published`]); `out`
    /// holds what is staged for the local subscribers, and what the publisher waits for:
    /// the subscribers it left far behind, and the cluster's link if it is far behind.
    pub(crate) fn publish_from(
        &self,
        msg: Arc<Message>,
        publisher: Option<ClientKey>,
        exchange: Option<Exchange>,
        out: &mut Staged<'_>,
    ) -> Published {
        let delivered = self.route_staged(&msg, Source::Here(publisher), out);
        // `$SYS` describes this node: each node has its own.
        let wait = match self.backplane() {
            Some(b) if !msg.topic.starts_with("$SYS") => {
                let wait = b.forward(&msg, publisher, exchange);
                if let Some(room) = b.room() {
                    out.pressure().link(room);
                }
                wait
            }
            _ => None,
        };
        Published { delivered, wait }
    }

    /// Forwards again, under its exchange's token, the message of a QoS 2 PUBLISH that a
    /// client of this node resent: the cluster may not hold the first copy (its node died
    /// first), and keeps one of the two. Not routed here: where the first copy arrived, this
    /// node's subscribers have it; where it did not, this copy brings it to them.
    pub(crate) fn forward_again(
        &self,
        msg: &Message,
        publisher: ClientKey,
        forwarded: Forwarded,
    ) -> Option<AckWait> {
        let exchange = Exchange {
            forwarded,
            after: None,
        };
        self.backplane()?
            .forward(msg, Some(publisher), Some(exchange))
    }

    /// Routes a QoS 0 message another node published, which NATS delivered for `filter`:
    /// to the subscriptions to exactly that filter. Not handed on again.
    pub(crate) fn publish_live(&self, msg: Message, filter: &str) -> usize {
        self.route(&Arc::new(msg), Source::Live(filter))
    }

    /// Routes a message from the cluster's stream, which comes once per node: to every
    /// matching subscription, or, when this node published it, to the persistent sessions,
    /// which take their QoS 1/2 messages from the stream only. Not handed on again.
    pub(crate) fn publish_streamed(&self, msg: Message, origin: Origin) -> usize {
        self.route(&Arc::new(msg), Source::Stream(origin))
    }

    /// Routes a message from the stream consumer of a node that died to the sessions adopted
    /// from it here, `sessions`, and to no other.
    pub(crate) fn publish_adopted(&self, msg: Message, sessions: &HashSet<ClientKey>) -> usize {
        self.route(&Arc::new(msg), Source::Adopted(sessions))
    }

    /// Routes a message NATS gave this node for shared group `group` on `filter`: to one of
    /// the group's members here. Not handed on again.
    pub(crate) fn publish_shared(&self, msg: Message, group: &str, filter: &str) -> usize {
        self.route(&Arc::new(msg), Source::Shared { group, filter })
    }

    /// Keeps (or clears) a retained message published on another node, as the cluster's
    /// retained stream brings it.
    pub(crate) fn retain_remote(&self, msg: Message) {
        self.keep_retained(&Arc::new(Message {
            retain: true,
            ..msg
        }));
    }
}
