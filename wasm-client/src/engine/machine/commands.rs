//! The application's commands: a publish, sent now or queued offline; a subscribe or an
//! unsubscribe, sent now or when the connection is up, and remembered for resubscribing.

use alloc::vec::Vec;
use aviary_protocol::topic::validate_topic_name;
use aviary_protocol::{
    Packet, Publish, Subscribe, SubscribeProperties, SubscriptionOptions, TopicFilter, Unsubscribe,
    UserProperty,
};

use super::{Machine, Phase};
use crate::engine::queue::Queued;
use crate::engine::session::Pending;
use crate::engine::{ErrorKind, MqttError, Token};

impl Machine {
    /// Publishes a message: sent now if connected and the in-flight window has room, queued
    /// otherwise. The token completes on PUBACK/PUBCOMP (QoS 0: once written).
    pub fn publish(&mut self, mut publish: Publish, now: u64) -> Result<Token, MqttError> {
        self.check_not_ended()?;
        validate_topic_name(&publish.topic)
            .map_err(|e| MqttError::new(ErrorKind::InvalidArgument, e.message()))?;
        publish.packet_id = None;
        publish.dup = false;
        let token = self.token();
        if self.phase == Phase::Connected && self.queue.is_empty() && self.can_send(&publish) {
            self.send_publish(publish, token, now)?;
        } else {
            let item = Queued { publish, token };
            if !self.queue.admits(&item) {
                let msg = "message is larger than the offline queue";
                return Err(MqttError::new(ErrorKind::QueueFull, msg));
            }
            while let Some(old) = self.queue.evict_for(&item) {
                let error =
                    MqttError::new(ErrorKind::QueueFull, "dropped from the full offline queue");
                self.complete(old.token, Err(error));
            }
            self.queue.push(item);
        }
        Ok(token)
    }

    /// Subscribes to topic filters; sent now if connected, else when the connection is up.
    pub fn subscribe(
        &mut self,
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
        now: u64,
    ) -> Result<Token, MqttError> {
        self.subscribe_with(filters, SubscribeProperties::default(), now)
    }

    /// Subscribes with MQTT 5 SUBSCRIBE properties: a subscription identifier, which the
    /// broker sends back with every message these filters match, and user properties. Both
    /// are kept for the resubscription after a reconnect; MQTT 3.1.1 leaves them out.
    pub fn subscribe_with(
        &mut self,
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
        properties: SubscribeProperties,
        now: u64,
    ) -> Result<Token, MqttError> {
        self.check_not_ended()?;
        if filters.is_empty() {
            let msg = "subscribe needs at least one topic filter";
            return Err(MqttError::new(ErrorKind::InvalidArgument, msg));
        }
        let id = self.free_id()?;
        if self.phase == Phase::Connected {
            let packet = subscribe_packet(id, filters.clone(), properties.clone());
            self.send(&packet, now)?;
        }
        let token = self.token();
        let token_opt = Some(token);
        self.session.insert(
            id,
            Pending::Subscribe {
                filters,
                properties,
                token: token_opt,
            },
        );
        Ok(token)
    }

    /// Unsubscribes from topic filters; they are also dropped from the resubscription list.
    pub fn unsubscribe(&mut self, filters: Vec<TopicFilter>, now: u64) -> Result<Token, MqttError> {
        self.unsubscribe_with(filters, Vec::new(), now)
    }

    /// Unsubscribes with MQTT 5 user properties on the UNSUBSCRIBE.
    pub fn unsubscribe_with(
        &mut self,
        filters: Vec<TopicFilter>,
        user_properties: Vec<UserProperty>,
        now: u64,
    ) -> Result<Token, MqttError> {
        self.check_not_ended()?;
        if filters.is_empty() {
            let msg = "unsubscribe needs at least one topic filter";
            return Err(MqttError::new(ErrorKind::InvalidArgument, msg));
        }
        let id = self.free_id()?;
        let packet = Unsubscribe {
            packet_id: id,
            user_properties,
            filters,
        };
        if self.phase == Phase::Connected {
            self.send(&Packet::Unsubscribe(packet.clone()), now)?;
        }
        self.forget_subscriptions(&packet.filters);
        let token = self.token();
        self.session
            .insert(id, Pending::Unsubscribe { packet, token });
        Ok(token)
    }
}

pub(super) fn subscribe_packet(
    packet_id: core::num::NonZeroU16,
    filters: Vec<(TopicFilter, SubscriptionOptions)>,
    properties: SubscribeProperties,
) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id,
        properties,
        filters,
    })
}
