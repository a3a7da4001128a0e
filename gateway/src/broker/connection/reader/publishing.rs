//! A PUBLISH from the client: its topic (through a topic alias), the ACL, the QoS 2
//! bookkeeping, routing, and the PUBACK or PUBREC, sent at once or after what it waits for
//! (the store's commit, the cluster's stream).
//!
//! In cluster mode each QoS 2 exchange carries a token ([`Exchange`]): the message goes to
//! the other nodes under it once the store holds the exchange with its token, and a resend
//! of the PUBLISH goes to them again under the same token, which the cluster keeps once. A
//! publisher whose node died with its exchanges open resends them to another node, which
//! adopted its session, tokens included: each message arrives once, whether the first copy
//! reached the cluster or not.

use std::num::NonZeroU16;
use std::sync::Arc;

use aviary_protocol::{Ack, ByteString, Packet, Publish, QoS, ReasonCode};
use tokio::io::AsyncRead;

use super::{protocol, ConnError, Reader};
use crate::broker::connection::acks::{Reply, Wait};
use crate::broker::limits;
use crate::broker::metrics::{Denied, Limit};
use crate::broker::{AckWait, Exchange, ForwardError, Message, Qos2Received, Staged};
use crate::store::{Forwarded, Ticket};

/// What the QoS 2 bookkeeping made of an incoming PUBLISH.
enum Opened {
    /// A new exchange: route the message; in cluster mode, forward it as part of this.
    New(Option<Exchange>),
    /// A resend of an exchange still open, which was forwarded so (cluster mode).
    Resent(Option<Forwarded>),
}

impl<R: AsyncRead + Unpin> Reader<'_, R> {
    /// Whether the ACL lets this client publish on `topic` (counted when not).
    fn may_publish(&self, topic: &str) -> bool {
        let auth = self.broker.authorizer();
        if !auth.has_acl() {
            return true;
        }
        let user = self.session.username();
        let ok = auth.can_publish(user.as_deref(), &self.session.client_id, topic);
        if !ok {
            self.broker.metrics().denied(Denied::Publish);
            tracing::debug!(client_id = %self.session.client_id, topic, "PUBLISH refused by the ACL");
        }
        ok
    }

    /// Resolves the topic of an incoming PUBLISH through its topic alias.
    fn resolve_topic(&mut self, p: &Publish) -> Result<ByteString, ConnError> {
        let Some(alias) = p.properties.topic_alias else {
            return Ok(p.topic.clone());
        };
        if alias.get() > self.broker.config().topic_alias_maximum {
            return Err(protocol(
                ReasonCode::TOPIC_ALIAS_INVALID,
                "topic alias above the maximum [MQTT-3.3.2-9]",
            ));
        }
        if p.topic.is_empty() {
            let known = self.aliases.as_ref().and_then(|a| a.get(&alias.get()));
            known.cloned().ok_or(protocol(
                ReasonCode::PROTOCOL_ERROR,
                "unknown topic alias [MQTT-3.3.4-7]",
            ))
        } else {
            self.aliases
                .get_or_insert_default()
                .insert(alias.get(), p.topic.clone());
            Ok(p.topic.clone())
        }
    }

    /// Opens the QoS 2 exchange `id` of an incoming PUBLISH, unless it is a resend of one
    /// open already, or one too many.
    fn open_exchange(&mut self, id: NonZeroU16) -> Result<Opened, ConnError> {
        // Only MQTT 5 clients were told a Receive Maximum; 3.x clients
        // are bounded by their 65,535 packet identifiers alone.
        let limit = self
            .version
            .is_v5()
            .then(|| usize::from(self.broker.config().receive_maximum));
        let forwarded = self.broker.backplane().map(|b| b.forwarding());
        match self
            .session
            .incoming_qos2_begin(id, limit, forwarded.clone())
        {
            Qos2Received::New => Ok(Opened::New(forwarded.map(|forwarded| Exchange {
                forwarded,
                after: self.session.stored().map(|ticket| {
                    Box::pin(async move { ticket.await.map_err(|e| ForwardError(e.to_string())) })
                        as _
                }),
            }))),
            Qos2Received::Duplicate(forwarded) => Ok(Opened::Resent(forwarded)),
            Qos2Received::TooMany => {
                self.broker.refused(
                    Limit::Inflight,
                    format_args!("client {}", self.session.client_id),
                );
                Err(protocol(
                    ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
                    "more QoS 2 in flight than Receive Maximum [MQTT-3.3.4-9]",
                ))
            }
        }
    }

    /// Sends `ack` once the store holds its message (`store`) and the cluster does
    /// (`cluster`), after the acknowledgements before it.
    fn acknowledge(&mut self, ack: Packet, store: Option<Ticket>, cluster: Option<AckWait>) {
        let wait = match (store, cluster) {
            (store, None) => store.map(Wait::Store),
            (None, Some(cluster)) => Some(Wait::Cluster(cluster)),
            (Some(store), Some(cluster)) => Some(Wait::Cluster(Box::pin(async move {
                store.await.map_err(|e| ForwardError(e.to_string()))?;
                cluster.await
            }))),
        };
        if wait.is_none() && self.acks.is_empty() {
            self.reply(ack);
        } else {
            self.acks.push(wait, Reply::Packet(ack));
        }
    }

    /// A QoS 2 PUBLISH sent again for exchange `id`, still open: acknowledged and not routed
    /// again, so that it is delivered once. In cluster mode its message goes to the other
    /// nodes again first, under the exchange's token (`forwarded`): the node the first copy
    /// was sent to may have died before the cluster held it.
    fn resent(
        &mut self,
        p: Publish,
        topic: ByteString,
        id: NonZeroU16,
        forwarded: Option<Forwarded>,
    ) {
        let wait = match forwarded {
            Some(forwarded) if !topic.starts_with("$SYS") && self.may_publish(&topic) => {
                let msg = Message::from_publish(p, topic);
                self.broker.forward_again(&msg, self.session.key, forwarded)
            }
            _ => None,
        };
        let ack = Packet::PubRec(Ack::new(id));
        match wait {
            None if self.acks.is_empty() => self.reply(ack),
            wait => self.acks.push(wait.map(Wait::Cluster), Reply::Packet(ack)),
        }
    }

    /// Routes a PUBLISH, its deliveries staged in `out` (see [`Staged`]), which also gathers
    /// the subscribers it left far behind.
    pub(super) fn publish(&mut self, p: Publish, out: &mut Staged<'_>) -> Result<(), ConnError> {
        if !p.properties.subscription_identifiers.is_empty() {
            return Err(protocol(
                ReasonCode::PROTOCOL_ERROR,
                "subscription identifier from a client [MQTT-3.3.4-6]",
            ));
        }
        let topic = self.resolve_topic(&p)?;
        if let Err(limit) = limits::check_topic(&topic, self.broker.config()) {
            self.broker.refused(
                limit,
                format_args!("a PUBLISH topic from client {}", self.session.client_id),
            );
            return Err(protocol(
                ReasonCode::TOPIC_NAME_INVALID,
                "topic name longer or deeper than the configured limit",
            ));
        }
        let (qos, packet_id) = (p.qos, p.packet_id);
        let mut exchange = None;
        if qos == QoS::ExactlyOnce {
            let id = packet_id.expect("QoS 2 has a packet id");
            match self.open_exchange(id)? {
                Opened::New(opened) => exchange = opened,
                Opened::Resent(forwarded) => {
                    self.resent(p, topic, id, forwarded);
                    return Ok(());
                }
            }
        }
        // `$SYS` belongs to the broker; clients cannot forge it.
        let refused = topic.starts_with("$SYS") || !self.may_publish(&topic);
        let mut commit = false;
        let mut cluster = None;
        let mut stored = None;
        let delivered = if refused {
            0
        } else {
            let msg = Arc::new(Message::from_publish(p, topic));
            let published =
                self.broker
                    .publish_from(msg.clone(), Some(self.session.key), exchange, out);
            let (delivered, wait) = (published.delivered, published.wait);
            // Written to the store: queued for a persistent session, or retained.
            commit = msg.stored.written() || msg.retain;
            cluster = wait;
            stored = Some(msg);
            // Other nodes may have subscribers: "no matching subscribers" is not ours to say.
            if self.broker.backplane().is_some() {
                delivered.max(1)
            } else {
                delivered
            }
        };
        // MQTT 3.1.1 has no way to say no: the message is acknowledged and
        // dropped, as Mosquitto does.
        let reason = match (refused, delivered, self.version.is_v5()) {
            (true, _, true) => ReasonCode::NOT_AUTHORIZED,
            (false, 0, true) => ReasonCode::NO_MATCHING_SUBSCRIBERS,
            _ => ReasonCode::SUCCESS,
        };
        if reason.is_error() {
            if let (QoS::ExactlyOnce, Some(id)) = (qos, packet_id) {
                // An error PUBREC ends the exchange: no PUBREL will come.
                self.session.incoming_qos2_abort(id);
            }
        }
        let ack = |id: NonZeroU16| Ack::with_reason(id, reason);
        let ack = match (qos, packet_id) {
            (QoS::AtLeastOnce, Some(id)) => Packet::PubAck(ack(id)),
            (QoS::ExactlyOnce, Some(id)) => Packet::PubRec(ack(id)),
            _ => return Ok(()),
        };
        let store = match (self.broker.persist(), &stored) {
            (Some(persist), Some(msg)) if commit => Some(persist.ack_ticket(msg)?),
            _ => None,
        };
        self.acknowledge(ack, store, cluster);
        Ok(())
    }
}
