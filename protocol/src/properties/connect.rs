//! CONNECT and CONNACK properties: what a client asks for and what the
//! server grants.

use alloc::vec::Vec;
use core::num::{NonZeroU16, NonZeroU32};

use bytes::Bytes;
use bytestring::ByteString;

use super::*;
use crate::wire::{Reader, Sink};
use crate::{DecodeError, EncodeError, QoS};

/// CONNECT properties (section 3.1.2.11).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectProperties {
    /// Seconds the session outlives the connection; absent means 0.
    pub session_expiry_interval: Option<u32>,
    /// How many QoS 1/2 publications the client processes at once.
    pub receive_maximum: Option<NonZeroU16>,
    /// Largest packet the client accepts.
    pub maximum_packet_size: Option<NonZeroU32>,
    /// Highest topic alias the client accepts from the server.
    pub topic_alias_maximum: Option<u16>,
    /// Ask for Response Information in the CONNACK.
    pub request_response_information: Option<bool>,
    /// Whether reason strings and user properties may be sent on failures.
    pub request_problem_information: Option<bool>,
    /// Application-defined name/value pairs.
    pub user_properties: Vec<UserProperty>,
    /// Extended authentication method.
    pub authentication_method: Option<ByteString>,
    /// Extended authentication data.
    pub authentication_data: Option<Bytes>,
}

impl ConnectProperties {
    #[cfg(feature = "server")]
    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        read_block(r, &mut |id, r| {
            let packet = r.packet();
            match id {
                id::SESSION_EXPIRY_INTERVAL => {
                    u32_once(r, &mut p.session_expiry_interval, id, "session expiry")
                }
                id::RECEIVE_MAXIMUM => once(
                    &mut p.receive_maximum,
                    non_zero_u16(r, "receive maximum", "receive maximum 0 [MQTT-3.1.2-21]")?,
                    id,
                    packet,
                ),
                id::MAXIMUM_PACKET_SIZE => {
                    let v = NonZeroU32::new(r.u32("maximum packet size")?).ok_or(
                        DecodeError::Protocol(crate::error::text(
                            "maximum packet size 0 [MQTT-3.1.2-24]",
                        )),
                    )?;
                    once(&mut p.maximum_packet_size, v, id, packet)
                }
                id::TOPIC_ALIAS_MAXIMUM => {
                    u16_once(r, &mut p.topic_alias_maximum, id, "topic alias maximum")
                }
                id::REQUEST_RESPONSE_INFORMATION => flag_once(
                    r,
                    &mut p.request_response_information,
                    id,
                    "request response information",
                ),
                id::REQUEST_PROBLEM_INFORMATION => flag_once(
                    r,
                    &mut p.request_problem_information,
                    id,
                    "request problem information",
                ),
                id::USER_PROPERTY => {
                    p.user_properties.push(user_property(r)?);
                    Ok(())
                }
                id::AUTHENTICATION_METHOD => {
                    string_once(r, &mut p.authentication_method, id, "authentication method")
                }
                id::AUTHENTICATION_DATA => {
                    binary_once(r, &mut p.authentication_data, id, "authentication data")
                }
                _ => Err(misplaced(id, packet)),
            }
        })?;
        if p.authentication_data.is_some() && p.authentication_method.is_none() {
            return Err(DecodeError::Protocol(crate::error::text(
                "authentication data without authentication method [MQTT-3.1.2-28]",
            )));
        }
        Ok(p)
    }
}

#[cfg(feature = "client")]
impl PropertyBlock for ConnectProperties {
    fn write_properties<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_u32(s, id::SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        put_u16(
            s,
            id::RECEIVE_MAXIMUM,
            self.receive_maximum.map(NonZeroU16::get),
        );
        put_u32(
            s,
            id::MAXIMUM_PACKET_SIZE,
            self.maximum_packet_size.map(NonZeroU32::get),
        );
        put_u16(s, id::TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum);
        put_flag(
            s,
            id::REQUEST_RESPONSE_INFORMATION,
            self.request_response_information,
        );
        put_flag(
            s,
            id::REQUEST_PROBLEM_INFORMATION,
            self.request_problem_information,
        );
        put_user(s, &self.user_properties)?;
        put_str(
            s,
            id::AUTHENTICATION_METHOD,
            self.authentication_method.as_ref(),
        )?;
        put_bin(
            s,
            id::AUTHENTICATION_DATA,
            self.authentication_data.as_ref(),
        )
    }
}

/// CONNACK properties (section 3.2.2.3): what the server grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnAckProperties {
    /// Session expiry the server uses, if different from the client's.
    pub session_expiry_interval: Option<u32>,
    /// How many QoS 1/2 publications the server processes at once.
    pub receive_maximum: Option<NonZeroU16>,
    /// Highest QoS the server supports (absent means 2).
    pub maximum_qos: Option<QoS>,
    /// Whether the server supports retained messages.
    pub retain_available: Option<bool>,
    /// Largest packet the server accepts.
    pub maximum_packet_size: Option<NonZeroU32>,
    /// The client identifier the server assigned to an empty one.
    pub assigned_client_identifier: Option<ByteString>,
    /// Highest topic alias the server accepts from the client.
    pub topic_alias_maximum: Option<u16>,
    /// Human-readable diagnostics.
    pub reason_string: Option<ByteString>,
    /// Application-defined name/value pairs.
    pub user_properties: Vec<UserProperty>,
    /// Whether wildcard subscriptions are supported.
    pub wildcard_subscription_available: Option<bool>,
    /// Whether subscription identifiers are supported.
    pub subscription_identifiers_available: Option<bool>,
    /// Whether shared subscriptions are supported.
    pub shared_subscription_available: Option<bool>,
    /// Keep alive the client must use instead of its own.
    pub server_keep_alive: Option<u16>,
    /// Basis for response topics, when requested.
    pub response_information: Option<ByteString>,
    /// Another server the client may use.
    pub server_reference: Option<ByteString>,
    /// Extended authentication method.
    pub authentication_method: Option<ByteString>,
    /// Extended authentication data.
    pub authentication_data: Option<Bytes>,
}

impl ConnAckProperties {
    #[cfg(feature = "client")]
    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        read_block(r, &mut |id, r| {
            let packet = r.packet();
            match id {
                id::SESSION_EXPIRY_INTERVAL => {
                    u32_once(r, &mut p.session_expiry_interval, id, "session expiry")
                }
                id::RECEIVE_MAXIMUM => once(
                    &mut p.receive_maximum,
                    non_zero_u16(r, "receive maximum", "receive maximum 0 [MQTT-3.2.2-9]")?,
                    id,
                    packet,
                ),
                id::MAXIMUM_QOS => {
                    let q = match r.u8("maximum qos")? {
                        0 => QoS::AtMostOnce,
                        1 => QoS::AtLeastOnce,
                        _ => {
                            return Err(DecodeError::Protocol(crate::error::text(
                                "maximum QoS must be 0 or 1 [MQTT-3.2.2-9]",
                            )))
                        }
                    };
                    once(&mut p.maximum_qos, q, id, packet)
                }
                id::RETAIN_AVAILABLE => {
                    flag_once(r, &mut p.retain_available, id, "retain available")
                }
                id::MAXIMUM_PACKET_SIZE => {
                    let v = NonZeroU32::new(r.u32("maximum packet size")?).ok_or(
                        DecodeError::Protocol(crate::error::text(
                            "maximum packet size 0 [MQTT-3.2.2-9]",
                        )),
                    )?;
                    once(&mut p.maximum_packet_size, v, id, packet)
                }
                id::ASSIGNED_CLIENT_IDENTIFIER => string_once(
                    r,
                    &mut p.assigned_client_identifier,
                    id,
                    "assigned client id",
                ),
                id::TOPIC_ALIAS_MAXIMUM => {
                    u16_once(r, &mut p.topic_alias_maximum, id, "topic alias maximum")
                }
                id::REASON_STRING => string_once(r, &mut p.reason_string, id, "reason string"),
                id::USER_PROPERTY => {
                    p.user_properties.push(user_property(r)?);
                    Ok(())
                }
                id::WILDCARD_SUBSCRIPTION_AVAILABLE => flag_once(
                    r,
                    &mut p.wildcard_subscription_available,
                    id,
                    "wildcard available",
                ),
                id::SUBSCRIPTION_IDENTIFIER_AVAILABLE => flag_once(
                    r,
                    &mut p.subscription_identifiers_available,
                    id,
                    "subscription ids available",
                ),
                id::SHARED_SUBSCRIPTION_AVAILABLE => flag_once(
                    r,
                    &mut p.shared_subscription_available,
                    id,
                    "shared available",
                ),
                id::SERVER_KEEP_ALIVE => {
                    u16_once(r, &mut p.server_keep_alive, id, "server keep alive")
                }
                id::RESPONSE_INFORMATION => {
                    string_once(r, &mut p.response_information, id, "response information")
                }
                id::SERVER_REFERENCE => {
                    string_once(r, &mut p.server_reference, id, "server reference")
                }
                id::AUTHENTICATION_METHOD => {
                    string_once(r, &mut p.authentication_method, id, "authentication method")
                }
                id::AUTHENTICATION_DATA => {
                    binary_once(r, &mut p.authentication_data, id, "authentication data")
                }
                _ => Err(misplaced(id, packet)),
            }
        })?;
        Ok(p)
    }
}

#[cfg(feature = "server")]
impl PropertyBlock for ConnAckProperties {
    fn write_properties<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_u32(s, id::SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        put_u16(
            s,
            id::RECEIVE_MAXIMUM,
            self.receive_maximum.map(NonZeroU16::get),
        );
        put_u8(s, id::MAXIMUM_QOS, self.maximum_qos.map(|q| q as u8));
        put_flag(s, id::RETAIN_AVAILABLE, self.retain_available);
        put_u32(
            s,
            id::MAXIMUM_PACKET_SIZE,
            self.maximum_packet_size.map(NonZeroU32::get),
        );
        put_str(
            s,
            id::ASSIGNED_CLIENT_IDENTIFIER,
            self.assigned_client_identifier.as_ref(),
        )?;
        put_u16(s, id::TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum);
        put_str(s, id::REASON_STRING, self.reason_string.as_ref())?;
        put_user(s, &self.user_properties)?;
        put_flag(
            s,
            id::WILDCARD_SUBSCRIPTION_AVAILABLE,
            self.wildcard_subscription_available,
        );
        put_flag(
            s,
            id::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
            self.subscription_identifiers_available,
        );
        put_flag(
            s,
            id::SHARED_SUBSCRIPTION_AVAILABLE,
            self.shared_subscription_available,
        );
        put_u16(s, id::SERVER_KEEP_ALIVE, self.server_keep_alive);
        put_str(
            s,
            id::RESPONSE_INFORMATION,
            self.response_information.as_ref(),
        )?;
        put_str(s, id::SERVER_REFERENCE, self.server_reference.as_ref())?;
        put_str(
            s,
            id::AUTHENTICATION_METHOD,
            self.authentication_method.as_ref(),
        )?;
        put_bin(
            s,
            id::AUTHENTICATION_DATA,
            self.authentication_data.as_ref(),
        )
    }
}
