//! A PUBLISH from the client: its topic (through a topic alias), the ACL, the QoS 2
//! bookkeeping, routing, and the PUBACK or PUBREC, sent at once or after what it waits for
//! (the store's commit, the cluster's stream).

use std::num::NonZeroU16;
use std::sync::Arc;

use aviary_protocol::{Ack, ByteString, Packet, Publish, QoS, ReasonCode};
use tokio::io::AsyncRead;
use tokio::time::Instant;

use super::{protocol, ConnError, Reader};
use crate::broker::connection::acks::{Reply, Wait};
use crate::broker::limits;
use crate::broker::metrics::{Denied, Limit};
use crate::broker::{ForwardError, Message, Metrics, Pressure, Qos2Received};

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

    /// Routes a PUBLISH; returns the subscribers it left far behind.
    pub(super) fn publish(&mut self, p: Publish) -> Result<Pressure, ConnError> {
        let m = self.broker.metrics();
        Metrics::add(&m.messages_received, 1);
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
        if qos == QoS::ExactlyOnce {
            let id = packet_id.expect("QoS 2 has a packet id");
            // Only MQTT 5 clients were told a Receive Maximum; 3.x clients
            // are bounded by their 65,535 packet identifiers alone.
            let limit = self
                .version
                .is_v5()
                .then(|| usize::from(self.broker.config().receive_maximum));
            match self.session.incoming_qos2_begin(id, limit) {
                Qos2Received::New => {}
                Qos2Received::Duplicate => {
                    // A resend of a message already routed: acknowledge
                    // only, so it is delivered exactly once.
                    self.reply(Packet::PubRec(Ack::new(id)));
                    return Ok(Pressure::new());
                }
                Qos2Received::TooMany => {
                    self.broker.refused(
                        Limit::Inflight,
                        format_args!("client {}", self.session.client_id),
                    );
                    return Err(protocol(
                        ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
                        "more QoS 2 in flight than Receive Maximum [MQTT-3.3.4-9]",
                    ));
                }
            }
        }
        // `$SYS` belongs to the broker; clients cannot forge it.
        let refused = topic.starts_with("$SYS") || !self.may_publish(&topic);
        let mut commit = false;
        let mut pressure = Pressure::new();
        let mut cluster = None;
        let mut stored = None;
        let delivered = if refused {
            0
        } else {
            let msg = Arc::new(Message::from_publish(p, topic, Instant::now()));
            let published = self
                .broker
                .publish_from(msg.clone(), Some(self.session.key));
            let (delivered, wait) = (published.delivered, published.wait);
            pressure = published.pressure;
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
            _ => return Ok(pressure),
        };
        let ticket = match (self.broker.persist(), &stored) {
            (Some(persist), Some(msg)) if commit => Some(persist.ack_ticket(msg)?),
            _ => None,
        };
        let ticket = match (ticket, cluster) {
            (ticket, None) => ticket.map(Wait::Store),
            (None, Some(cluster)) => Some(Wait::Cluster(cluster)),
            (Some(ticket), Some(cluster)) => Some(Wait::Cluster(Box::pin(async move {
                ticket.await.map_err(|e| ForwardError(e.to_string()))?;
                cluster.await
            }))),
        };
        if ticket.is_none() && self.acks.is_empty() {
            self.reply(ack);
        } else {
            self.acks.push(ticket, Reply::Packet(ack));
        }
        Ok(pressure)
    }
}
