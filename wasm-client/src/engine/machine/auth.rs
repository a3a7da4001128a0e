//! MQTT 5 enhanced authentication (MQTT 5.0 section 4.12), the client's side.
//!
//! A CONNECT whose properties name an Authentication Method may be answered with AUTH 0x18
//! (Continue authentication) instead of a CONNACK. The engine does no cryptography: it hands
//! the challenge to the application ([`Event::AuthChallenge`]), whose answer — often computed
//! asynchronously, WebCrypto being async — comes back through [`Machine::answer_auth`] and
//! goes out as AUTH 0x18. The exchange may repeat; it ends with the CONNACK, whose
//! Authentication Data (SCRAM's server signature, say) reaches the application in
//! [`Event::Connected`]'s properties. The handshake's deadline (`connect_timeout_ms`) covers
//! the whole exchange, the application's thinking included.

use alloc::string::String;

use aviary_protocol::{Auth, Packet, ReasonCode};
use bytes::Bytes;

use super::{Machine, Phase};
use crate::engine::{ErrorKind, Event, MqttError};

impl Machine {
    /// An AUTH during the handshake: a challenge for the application, if the CONNECT asked
    /// for enhanced authentication with this method [MQTT-4.12.0-7]. Before CONNACK the
    /// broker may only ask to continue (0x18).
    pub(super) fn on_auth(&mut self, auth: Auth) -> Result<(), MqttError> {
        let ours = self.options.properties.authentication_method.as_deref();
        let theirs = auth.properties.authentication_method.as_deref();
        let Some(method) = ours.filter(|_| theirs == ours) else {
            return Err(super::incoming::protocol(
                "AUTH for another authentication method [MQTT-4.12.0-5]",
            ));
        };
        if auth.reason_code != ReasonCode::CONTINUE_AUTHENTICATION {
            return Err(super::incoming::protocol(
                "AUTH before CONNACK is not a challenge",
            ));
        }
        self.events.push(Event::AuthChallenge {
            attempt: self.attempts,
            method: String::from(method),
            data: auth.properties.authentication_data.unwrap_or_default(),
        });
        Ok(())
    }

    /// Whether `attempt` is the connection now waiting for its CONNACK.
    fn awaits_auth(&self, attempt: u32) -> bool {
        attempt == self.attempts && matches!(self.phase, Phase::Handshake { .. })
    }

    /// The application's answer to the [`Event::AuthChallenge`] of `attempt`: sent as AUTH 0x18
    /// with the same method. Dropped if that connection is gone.
    pub fn answer_auth(&mut self, attempt: u32, data: Bytes, now: u64) {
        if !self.awaits_auth(attempt) {
            return;
        }
        let mut auth = Auth {
            reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
            ..Auth::default()
        };
        auth.properties
            .authentication_method
            .clone_from(&self.options.properties.authentication_method);
        auth.properties.authentication_data = Some(data);
        if let Err(error) = self.send(&Packet::Auth(auth), now) {
            self.protocol_failure(error, now);
        }
    }

    /// The application could not answer the challenge of `attempt` (its hook threw or its
    /// promise rejected): the connection attempt fails as a refused one, and is retried as
    /// any other.
    pub fn fail_auth(&mut self, attempt: u32, now: u64) {
        if !self.awaits_auth(attempt) {
            return;
        }
        let error = MqttError::from_reason(
            ErrorKind::ConnectionRefused,
            ReasonCode::NOT_AUTHORIZED,
            Some("the authenticate hook failed"),
        );
        self.events.push(Event::Error(error.clone()));
        self.lost(error, true, now);
    }
}
