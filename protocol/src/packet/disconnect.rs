//! DISCONNECT (section 3.14) and AUTH (section 3.15). In MQTT 5 both may
//! omit their reason code and properties when they are "success" and empty.

use super::connect::check_reason;
use crate::properties::{AuthProperties, DisconnectProperties, PropertyBlock};
use crate::reason::allowed;
use crate::wire::{Reader, Sink};
use crate::{DecodeError, EncodeError, PacketType, ProtocolVersion, ReasonCode};

/// The last packet of a connection, from either side (server side: MQTT 5 only).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disconnect {
    /// Why; 0x00 is a normal disconnection, 0x04 asks for the will.
    pub reason_code: ReasonCode,
    /// MQTT 5 properties.
    pub properties: DisconnectProperties,
}

impl Default for ReasonCode {
    fn default() -> Self {
        Self::SUCCESS
    }
}

impl Disconnect {
    /// A DISCONNECT with this reason and no properties.
    pub fn new(reason_code: ReasonCode) -> Self {
        Self {
            reason_code,
            properties: DisconnectProperties::default(),
        }
    }

    pub(crate) fn read(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let mut d = Self::default();
        if version.is_v5() && !r.is_empty() {
            d.reason_code = check_reason(
                r.u8("reason code")?,
                allowed::DISCONNECT,
                PacketType::Disconnect,
            )?;
            if !r.is_empty() {
                d.properties = DisconnectProperties::read(r)?;
            }
        }
        Ok(d)
    }

    pub(crate) fn write<S: Sink + ?Sized>(
        &self,
        v: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        if v.is_v5() && (self.reason_code != ReasonCode::SUCCESS || !self.properties.is_empty()) {
            s.put_u8(self.reason_code.value());
            if !self.properties.is_empty() {
                self.properties.write_block(s)?;
            }
        }
        Ok(())
    }
}

/// An MQTT 5 extended authentication exchange step.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    /// 0x00 success, 0x18 continue, 0x19 re-authenticate.
    pub reason_code: ReasonCode,
    /// Method, data, reason string and user properties.
    pub properties: AuthProperties,
}

impl Auth {
    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut a = Self::default();
        if !r.is_empty() {
            a.reason_code = check_reason(r.u8("reason code")?, allowed::AUTH, PacketType::Auth)?;
            if !r.is_empty() {
                a.properties = AuthProperties::read(r)?;
            }
        }
        Ok(a)
    }

    pub(crate) fn write<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        if self.reason_code != ReasonCode::SUCCESS || !self.properties.is_empty() {
            s.put_u8(self.reason_code.value());
            self.properties.write_block(s)?;
        }
        Ok(())
    }
}
