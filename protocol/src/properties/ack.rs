//! Properties of the acknowledgements, SUBSCRIBE, UNSUBSCRIBE, DISCONNECT
//! and AUTH.

use alloc::vec::Vec;
use core::num::NonZeroU32;

use bytes::Bytes;
use bytestring::ByteString;

use super::*;
use crate::wire::{Reader, Sink};
use crate::{DecodeError, EncodeError};

/// Properties of the acknowledgements (PUBACK, PUBREC, PUBREL, PUBCOMP,
/// SUBACK, UNSUBACK): a reason string and user properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckProperties {
    /// Human-readable diagnostics.
    pub reason_string: Option<ByteString>,
    /// Application-defined name/value pairs.
    pub user_properties: Vec<UserProperty>,
}

impl AckProperties {
    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        read_block(r, &mut |id, r| match id {
            id::REASON_STRING => string_once(r, &mut p.reason_string, id, "reason string"),
            id::USER_PROPERTY => {
                p.user_properties.push(user_property(r)?);
                Ok(())
            }
            _ => Err(misplaced(id, r.packet())),
        })?;
        Ok(p)
    }

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.reason_string.is_none() && self.user_properties.is_empty()
    }
}

impl PropertyBlock for AckProperties {
    fn is_empty_block(&self) -> bool {
        self.is_empty()
    }

    fn write_properties<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_str(s, id::REASON_STRING, self.reason_string.as_ref())?;
        put_user(s, &self.user_properties)
    }
}

/// SUBSCRIBE properties (section 3.8.2.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeProperties {
    /// Identifier sent back with every PUBLISH this subscription matches.
    pub subscription_identifier: Option<NonZeroU32>,
    /// Application-defined name/value pairs.
    pub user_properties: Vec<UserProperty>,
}

impl SubscribeProperties {
    #[cfg(feature = "server")]
    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        read_block(r, &mut |id, r| match id {
            id::SUBSCRIPTION_IDENTIFIER => once(
                &mut p.subscription_identifier,
                subscription_identifier(r)?,
                id,
                r.packet(),
            ),
            id::USER_PROPERTY => {
                p.user_properties.push(user_property(r)?);
                Ok(())
            }
            _ => Err(misplaced(id, r.packet())),
        })?;
        Ok(p)
    }
}

#[cfg(feature = "client")]
impl PropertyBlock for SubscribeProperties {
    fn write_properties<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        if let Some(sid) = self.subscription_identifier {
            s.put_u8(id::SUBSCRIPTION_IDENTIFIER);
            s.put_varint(sid.get() as usize)?;
        }
        put_user(s, &self.user_properties)
    }
}

/// UNSUBSCRIBE carries user properties only (section 3.10.2.1).
#[cfg(feature = "server")]
pub(crate) fn read_user_properties(r: &mut Reader) -> Result<Vec<UserProperty>, DecodeError> {
    let mut v = Vec::new();
    read_block(r, &mut |id, r| match id {
        id::USER_PROPERTY => {
            v.push(user_property(r)?);
            Ok(())
        }
        _ => Err(misplaced(id, r.packet())),
    })?;
    Ok(v)
}

#[cfg(feature = "client")]
impl PropertyBlock for [UserProperty] {
    fn write_properties<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_user(s, self)
    }
}

#[cfg(feature = "client")]
impl PropertyBlock for Vec<UserProperty> {
    fn write_properties<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_user(s, self)
    }
}

/// DISCONNECT properties (section 3.14.2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisconnectProperties {
    /// New session expiry (client to server only).
    pub session_expiry_interval: Option<u32>,
    /// Human-readable diagnostics.
    pub reason_string: Option<ByteString>,
    /// Application-defined name/value pairs.
    pub user_properties: Vec<UserProperty>,
    /// Another server the client may use.
    pub server_reference: Option<ByteString>,
}

impl DisconnectProperties {
    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        read_block(r, &mut |id, r| {
            let packet = r.packet();
            match id {
                id::SESSION_EXPIRY_INTERVAL => {
                    u32_once(r, &mut p.session_expiry_interval, id, "session expiry")
                }
                id::REASON_STRING => string_once(r, &mut p.reason_string, id, "reason string"),
                id::SERVER_REFERENCE => {
                    string_once(r, &mut p.server_reference, id, "server reference")
                }
                id::USER_PROPERTY => {
                    p.user_properties.push(user_property(r)?);
                    Ok(())
                }
                _ => Err(misplaced(id, packet)),
            }
        })?;
        Ok(p)
    }

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.session_expiry_interval.is_none()
            && self.reason_string.is_none()
            && self.user_properties.is_empty()
            && self.server_reference.is_none()
    }
}

impl PropertyBlock for DisconnectProperties {
    fn write_properties<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_u32(s, id::SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        put_str(s, id::REASON_STRING, self.reason_string.as_ref())?;
        put_user(s, &self.user_properties)?;
        put_str(s, id::SERVER_REFERENCE, self.server_reference.as_ref())
    }
}

/// AUTH properties (section 3.15.2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthProperties {
    /// Extended authentication method.
    pub authentication_method: Option<ByteString>,
    /// Extended authentication data.
    pub authentication_data: Option<Bytes>,
    /// Human-readable diagnostics.
    pub reason_string: Option<ByteString>,
    /// Application-defined name/value pairs.
    pub user_properties: Vec<UserProperty>,
}

impl AuthProperties {
    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        read_block(r, &mut |id, r| {
            let packet = r.packet();
            match id {
                id::AUTHENTICATION_METHOD => {
                    string_once(r, &mut p.authentication_method, id, "authentication method")
                }
                id::AUTHENTICATION_DATA => {
                    binary_once(r, &mut p.authentication_data, id, "authentication data")
                }
                id::REASON_STRING => string_once(r, &mut p.reason_string, id, "reason string"),
                id::USER_PROPERTY => {
                    p.user_properties.push(user_property(r)?);
                    Ok(())
                }
                _ => Err(misplaced(id, packet)),
            }
        })?;
        Ok(p)
    }

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.authentication_method.is_none()
            && self.authentication_data.is_none()
            && self.reason_string.is_none()
            && self.user_properties.is_empty()
    }
}

impl PropertyBlock for AuthProperties {
    fn write_properties<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_str(
            s,
            id::AUTHENTICATION_METHOD,
            self.authentication_method.as_ref(),
        )?;
        put_bin(
            s,
            id::AUTHENTICATION_DATA,
            self.authentication_data.as_ref(),
        )?;
        put_str(s, id::REASON_STRING, self.reason_string.as_ref())?;
        put_user(s, &self.user_properties)
    }
}
