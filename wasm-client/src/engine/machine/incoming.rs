//! Packets from the broker: CONNACK, AUTH (handled in `auth`), incoming messages and their acknowledgements, acks of our
//! own operations, PINGRESP and DISCONNECT.
//!
//! This is the receive hot path: a WebSocket frame may carry many packets (or part of one), so
//! [`Machine::handle_bytes`] decodes everything buffered in one pass, answers QoS 1/2 messages in
//! the same output buffer, and checks keep-alive once per frame — which is what keeps pings
//! going when a background tab's timers are throttled but messages still arrive.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::num::NonZeroU16;

use aviary_protocol::{
    decode_slice, Ack, ConnAck, DecodeError, Disconnect, Packet, Publish, QoS, ReasonCode, SubAck,
    SubscribeProperties, SubscriptionOptions, TopicFilter, UnsubAck, MAX_PACKET_SIZE,
};

use super::{subscribe_packet, Machine, Phase, ServerLimits};
use crate::engine::alias::AliasError;
use crate::engine::session::Pending;
use crate::engine::{Connected, Done, ErrorKind, Event, MqttError};

impl Machine {
    /// Bytes arrived on the WebSocket: decode and handle every complete packet.
    pub fn handle_bytes(&mut self, bytes: &[u8], now: u64) {
        // Appended, not written through `handle_frame`'s slice: the npm package, which only
        // calls this, then links no slice indexing and its panic message.
        if self.receiving() {
            self.recv.extend_from_slice(bytes);
            self.decode_received(now);
        }
    }

    /// Like [`handle_bytes`](Self::handle_bytes) for `len` bytes that `fill` writes straight
    /// into the receive buffer: the browser copies a frame out of its `ArrayBuffer` once.
    pub fn handle_frame(&mut self, len: usize, fill: impl FnOnce(&mut [u8]), now: u64) {
        if self.receiving() {
            let start = self.recv.len();
            self.recv.resize(start + len, 0);
            fill(&mut self.recv[start..]);
            self.decode_received(now);
        }
    }

    /// Whether received bytes are handled now: during the handshake and once connected.
    fn receiving(&self) -> bool {
        matches!(self.phase, Phase::Handshake { .. } | Phase::Connected)
    }

    /// Decodes and handles every complete packet in the receive buffer.
    fn decode_received(&mut self, now: u64) {
        let max = self
            .options
            .properties
            .maximum_packet_size
            .map_or(MAX_PACKET_SIZE, |m| m.get());
        // What the packets decoded so far took, consumed once at the end: a frame may carry
        // many packets, and moving the rest of the buffer after each would be quadratic.
        let mut taken = 0;
        loop {
            let Some(rest) = self.recv.get(taken..) else {
                return;
            };
            match decode_slice(rest, self.options.protocol, max) {
                Ok(Some((packet, size))) => {
                    taken += size;
                    self.keep_alive.on_received();
                    if let Err(error) = self.on_packet(packet, now) {
                        self.protocol_failure(error, now);
                    }
                    if !self.receiving() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(DecodeError::NotReceived(_)) => {
                    // A packet only a server receives, which the client's build of the codec
                    // does not decode: answered like any other packet out of place.
                    self.keep_alive.on_received();
                    let error = self.out_of_place();
                    return self.protocol_failure(error, now);
                }
                Err(e) => {
                    // The decode error's own text is not used: its Display and Debug code
                    // would add kilobytes to the browser package for a message seen rarely.
                    let _ = e;
                    let code = ReasonCode::MALFORMED_PACKET;
                    let error = MqttError::from_reason(
                        ErrorKind::Protocol,
                        code,
                        Some("malformed packet from the broker"),
                    );
                    return self.protocol_failure(error, now);
                }
            }
        }
        // Usually the whole buffer; otherwise the start of a packet stays for the next frame.
        // Not `drain`, whose range check brings a panic path into the package.
        if taken == self.recv.len() {
            self.recv.clear();
        } else if taken > 0 {
            self.recv = self
                .recv
                .get(taken..)
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
        }
        // Acknowledgements may have emptied what a graceful end waits for.
        self.finish_closing(now);
        if self.phase == Phase::Connected {
            self.check_keep_alive(now);
        }
    }

    fn on_packet(&mut self, packet: Packet, now: u64) -> Result<(), MqttError> {
        if let Phase::Handshake { .. } = self.phase {
            return match packet {
                Packet::ConnAck(ack) => {
                    self.on_connack(*ack, now);
                    Ok(())
                }
                Packet::Disconnect(d) => {
                    self.on_disconnect(d, now);
                    Ok(())
                }
                Packet::Auth(auth) => self.on_auth(auth),
                _ => Err(self.out_of_place()),
            };
        }
        match packet {
            Packet::Publish(publish) => self.on_publish(publish, now)?,
            Packet::PubAck(ack) => self.on_puback(ack, now),
            Packet::PubRec(ack) => self.on_pubrec(ack, now)?,
            Packet::PubRel(ack) => {
                self.session.release_qos2(ack.packet_id);
                self.send(&Packet::PubComp(Ack::new(ack.packet_id)), now)?;
            }
            Packet::PubComp(ack) => self.on_pubcomp(ack, now),
            Packet::SubAck(ack) => self.on_suback(ack),
            Packet::UnsubAck(ack) => self.on_unsuback(ack),
            Packet::PingResp => {}
            Packet::Disconnect(d) => self.on_disconnect(d, now),
            _ => return Err(self.out_of_place()),
        }
        Ok(())
    }

    /// The error for a packet the broker may not send now (anything but CONNACK or DISCONNECT
    /// during the handshake) or ever (CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ).
    fn out_of_place(&self) -> MqttError {
        match self.phase {
            Phase::Handshake { .. } => protocol("expected CONNACK first [MQTT-3.2.0-1]"),
            _ => protocol("unexpected packet from the broker"),
        }
    }

    fn on_connack(&mut self, ack: ConnAck, now: u64) {
        let props = &ack.properties;
        if ack.reason_code.is_error() {
            let reason = props.reason_string.as_deref();
            let error =
                MqttError::from_reason(ErrorKind::ConnectionRefused, ack.reason_code, reason);
            self.events.push(Event::Error(error.clone()));
            return self.lost(error, true, now);
        }
        self.phase = Phase::Connected;
        self.backoff.reset();
        self.server = ServerLimits {
            receive_maximum: props
                .receive_maximum
                .map_or(usize::from(u16::MAX), |m| usize::from(m.get())),
            maximum_packet_size: props
                .maximum_packet_size
                .map_or(MAX_PACKET_SIZE as usize, |m| m.get() as usize),
        };
        self.out_aliases
            .reset(props.topic_alias_maximum.unwrap_or(0));
        if let Some(seconds) = props.server_keep_alive {
            self.keep_alive = crate::engine::KeepAlive::new(seconds, now);
        }
        if let Some(id) = &props.assigned_client_identifier {
            // Reconnects must present the same id to resume the session.
            self.options.client_id = String::from(&**id);
        }
        let session_present = ack.session_present;
        self.events.push(Event::Connected(Connected {
            session_present,
            properties: ack.properties,
        }));
        if !session_present {
            self.session.clear_incoming();
        }
        self.resend_pending(session_present, now);
        if !session_present && self.options.resubscribe && !self.subscriptions.is_empty() {
            self.resubscribe(now);
        }
        self.flush_queue(now);
    }

    /// Sends again everything unacknowledged from the previous connection, oldest first.
    fn resend_pending(&mut self, session_present: bool, now: u64) {
        for id in self.session.ids_in_order() {
            let packet = match self.session.get_mut(id) {
                Some(Pending::Publish {
                    released: true,
                    token,
                    ..
                }) => {
                    if session_present {
                        Packet::PubRel(Ack::new(id))
                    } else {
                        // The broker had the message (it sent PUBREC) and kept no session
                        // to complete: it is delivered.
                        let token = *token;
                        self.session.remove(id);
                        self.complete(token, Ok(Done::Published));
                        continue;
                    }
                }
                Some(Pending::Publish { publish, .. }) => {
                    let mut again = publish.clone();
                    again.dup = true; // a redelivery [MQTT-3.3.1-1]
                    let _ = self.write_publish(&again, now);
                    continue;
                }
                Some(Pending::Subscribe {
                    filters,
                    properties,
                    ..
                }) => subscribe_packet(id, filters.clone(), properties.clone()),
                Some(Pending::Unsubscribe { packet, .. }) => Packet::Unsubscribe(packet.clone()),
                None => continue,
            };
            let _ = self.send(&packet, now);
        }
    }

    /// The broker kept no session: subscribe again to everything acknowledged before, one
    /// SUBSCRIBE per distinct set of properties (a subscription identifier belongs to a whole
    /// packet), in the order the subscriptions were made.
    fn resubscribe(&mut self, now: u64) {
        let mut groups: Vec<(SubscribeProperties, Vec<(TopicFilter, SubscriptionOptions)>)> =
            Vec::new();
        for (filter, options, properties) in &self.subscriptions {
            let entry = (filter.clone(), *options);
            match groups.iter_mut().find(|(p, _)| p == properties) {
                Some((_, filters)) => filters.push(entry),
                None => groups.push((properties.clone(), vec![entry])),
            }
        }
        // Taken out by index rather than by `into_iter`, whose iterator for this element type
        // was code of its own in the package.
        for group in &mut groups {
            let (properties, filters) = core::mem::take(group);
            let Ok(id) = self.free_id() else { return };
            let packet = subscribe_packet(id, filters.clone(), properties.clone());
            if self.send(&packet, now).is_ok() {
                let pending = Pending::Subscribe {
                    filters,
                    properties,
                    token: None,
                };
                self.session.insert(id, pending);
            }
        }
    }

    fn on_publish(&mut self, mut publish: Publish, now: u64) -> Result<(), MqttError> {
        if let Err(e) = self.in_aliases.resolve(&mut publish) {
            let msg = match e {
                AliasError::OutOfRange => "topic alias out of range [MQTT-3.3.2-9]",
                AliasError::Unknown => "unknown topic alias [MQTT-3.3.4-9]",
            };
            let code = ReasonCode::TOPIC_ALIAS_INVALID;
            return Err(MqttError::from_reason(ErrorKind::Protocol, code, Some(msg)));
        }
        match (publish.qos, publish.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => {
                self.events.push(Event::Message(publish));
                self.send(&Packet::PubAck(Ack::new(id)), now)?;
            }
            (QoS::ExactlyOnce, Some(id)) => {
                if self.session.receive_qos2(id) {
                    self.events.push(Event::Message(publish));
                }
                self.send(&Packet::PubRec(Ack::new(id)), now)?;
            }
            _ => self.events.push(Event::Message(publish)),
        }
        Ok(())
    }

    /// Removes and returns the pending publish with this id, leaving anything else in place.
    fn take_publish(&mut self, id: NonZeroU16) -> Option<crate::engine::Token> {
        match self.session.get_mut(id) {
            Some(Pending::Publish { token, .. }) => {
                let token = *token;
                self.session.remove(id);
                Some(token)
            }
            _ => None,
        }
    }

    fn on_puback(&mut self, ack: Ack, now: u64) {
        if let Some(token) = self.take_publish(ack.packet_id) {
            self.complete(token, publish_result(&ack));
        }
        // The ack freed a slot in the in-flight window.
        self.flush_queue(now);
    }

    fn on_pubrec(&mut self, ack: Ack, now: u64) -> Result<(), MqttError> {
        if ack.reason_code.is_error() {
            if let Some(token) = self.take_publish(ack.packet_id) {
                self.complete(token, publish_result(&ack));
            }
            self.flush_queue(now);
            return Ok(());
        }
        if let Some(Pending::Publish { released, .. }) = self.session.get_mut(ack.packet_id) {
            *released = true;
        }
        self.send(&Packet::PubRel(Ack::new(ack.packet_id)), now)
    }

    fn on_pubcomp(&mut self, ack: Ack, now: u64) {
        if let Some(token) = self.take_publish(ack.packet_id) {
            self.complete(token, publish_result(&ack));
        }
        self.flush_queue(now);
    }

    fn on_suback(&mut self, ack: SubAck) {
        let Some(Pending::Subscribe { .. }) = self.session.get_mut(ack.packet_id) else {
            return;
        };
        let Some(Pending::Subscribe {
            filters,
            properties,
            token,
        }) = self.session.remove(ack.packet_id)
        else {
            return;
        };
        // By reference (the filters are cheap clones of shared bytes): iterating the vector by
        // value was an iterator of its own in the package.
        for ((filter, options), code) in filters.iter().zip(&ack.reason_codes) {
            if !code.is_error() {
                self.forget_subscriptions(core::slice::from_ref(filter));
                self.subscriptions
                    .push((filter.clone(), *options, properties.clone()));
            }
        }
        let Some(token) = token else { return };
        let reason = ack.properties.reason_string.as_deref();
        let result = match ack.reason_codes.iter().find(|c| c.is_error()) {
            Some(&code) => Err(MqttError::from_reason(
                ErrorKind::SubscribeFailed,
                code,
                reason,
            )),
            None => Ok(Done::Subscribed(ack.reason_codes)),
        };
        self.complete(token, result);
    }

    fn on_unsuback(&mut self, ack: UnsubAck) {
        let Some(Pending::Unsubscribe { .. }) = self.session.get_mut(ack.packet_id) else {
            return;
        };
        let Some(Pending::Unsubscribe { token, .. }) = self.session.remove(ack.packet_id) else {
            return;
        };
        let reason = ack.properties.reason_string.as_deref();
        let result = match ack.reason_codes.iter().find(|c| c.is_error()) {
            Some(&code) => Err(MqttError::from_reason(
                ErrorKind::UnsubscribeFailed,
                code,
                reason,
            )),
            None => Ok(Done::Unsubscribed(ack.reason_codes)),
        };
        self.complete(token, result);
    }

    fn on_disconnect(&mut self, d: Disconnect, now: u64) {
        let reason = d.properties.reason_string.as_deref();
        let error = MqttError::from_reason(ErrorKind::ServerDisconnect, d.reason_code, reason);
        if d.reason_code.is_error() {
            self.events.push(Event::Error(error.clone()));
        }
        self.lost(error, true, now);
    }

    /// The broker broke the protocol: tell it why (MQTT 5), report, and reconnect.
    pub(super) fn protocol_failure(&mut self, error: MqttError, now: u64) {
        if self.options.protocol.is_v5() {
            let code = error.reason_code.unwrap_or(ReasonCode::PROTOCOL_ERROR);
            let _ = self.send(&Packet::Disconnect(Disconnect::new(code)), now);
        }
        self.events.push(Event::Error(error.clone()));
        self.lost(error, true, now);
    }
}

fn publish_result(ack: &Ack) -> Result<Done, MqttError> {
    if ack.reason_code.is_error() {
        let reason = ack.properties.reason_string.as_deref();
        Err(MqttError::from_reason(
            ErrorKind::PublishFailed,
            ack.reason_code,
            reason,
        ))
    } else {
        Ok(Done::Published)
    }
}

pub(super) fn protocol(msg: &'static str) -> MqttError {
    MqttError::from_reason(ErrorKind::Protocol, ReasonCode::PROTOCOL_ERROR, Some(msg))
}
