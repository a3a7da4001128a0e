//! What the client sends: publishes within the broker's Receive Maximum (the rest wait in
//! the offline queue), with topic aliases, and every packet checked against the broker's
//! Maximum Packet Size before it reaches the output.

use aviary_protocol::{Packet, Publish, QoS};

use super::{Machine, Phase};
use crate::engine::session::Pending;
use crate::engine::{Done, ErrorKind, MqttError, Token};

impl Machine {
    /// Whether a publish may go out now: QoS 0 always, QoS 1/2 within the broker's Receive
    /// Maximum.
    pub(super) fn can_send(&self, publish: &Publish) -> bool {
        publish.qos == QoS::AtMostOnce
            || self.session.publishes_in_flight() < self.server.receive_maximum
    }

    pub(super) fn send_publish(
        &mut self,
        mut publish: Publish,
        token: Token,
        now: u64,
    ) -> Result<(), MqttError> {
        if publish.qos == QoS::AtMostOnce {
            self.write_publish(&publish, now)?;
            self.complete(token, Ok(Done::Published));
        } else {
            let id = self.free_id()?;
            publish.packet_id = Some(id);
            self.write_publish(&publish, now)?;
            let pending = Pending::Publish {
                publish,
                token,
                released: false,
            };
            self.session.insert(id, pending);
        }
        Ok(())
    }

    /// Encodes a PUBLISH, with a topic alias where the broker allows one. The size is checked
    /// before an alias is assigned, so a rejected message never leaves an alias the broker
    /// has not seen.
    pub(super) fn write_publish(&mut self, publish: &Publish, now: u64) -> Result<(), MqttError> {
        let packet = Packet::Publish(publish.clone());
        let len = packet.encoded_len(self.options.protocol).map_err(invalid)?;
        if len > self.server.maximum_packet_size {
            return Err(too_large());
        }
        let Packet::Publish(mut wire) = packet else {
            return Ok(());
        };
        self.out_aliases.apply(&mut wire);
        self.send(&Packet::Publish(wire), now)
    }

    /// Encodes a packet into the output, or leaves the output untouched on error.
    pub(super) fn send(&mut self, packet: &Packet, now: u64) -> Result<(), MqttError> {
        let start = self.out.len();
        if let Err(e) = packet.encode_vec(self.options.protocol, &mut self.out) {
            self.out.truncate(start);
            return Err(invalid(e));
        }
        if self.out.len() - start > self.server.maximum_packet_size {
            self.out.truncate(start);
            return Err(too_large());
        }
        self.keep_alive.on_sent(now);
        Ok(())
    }

    /// Sends queued publishes while connected and the window has room.
    pub(super) fn flush_queue(&mut self, now: u64) {
        while self.phase == Phase::Connected {
            match self.queue.front() {
                Some(front) if self.can_send(&front.publish) => {}
                _ => break,
            }
            let Some(item) = self.queue.pop() else { break };
            if let Err(error) = self.send_publish(item.publish, item.token, now) {
                self.complete(item.token, Err(error));
            }
        }
    }
}

/// The codec's text, built without `core::fmt` (see `EncodeError::message`).
pub(super) fn invalid(error: aviary_protocol::EncodeError) -> MqttError {
    MqttError::new(ErrorKind::InvalidArgument, error.message())
}

pub(super) fn too_large() -> MqttError {
    let msg = "packet larger than the broker's Maximum Packet Size";
    MqttError::from_reason(
        ErrorKind::InvalidArgument,
        aviary_protocol::ReasonCode::PACKET_TOO_LARGE,
        Some(msg),
    )
}
