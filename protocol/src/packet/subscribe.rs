//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK (sections 3.8 to 3.11).

use alloc::vec::Vec;
use core::num::NonZeroU16;

#[cfg(feature = "client")]
use super::connect::check_reason;
#[cfg(feature = "server")]
use crate::properties::read_user_properties;
use crate::properties::{AckProperties, PropertyBlock, SubscribeProperties, UserProperty};
#[cfg(feature = "client")]
use crate::reason::allowed;
use crate::wire::{Reader, Sink};
#[cfg(feature = "client")]
use crate::PacketType;
use crate::{
    DecodeError, EncodeError, ProtocolVersion, ReasonCode, SubscriptionOptions, TopicFilter,
};

/// A request to subscribe to one or more topic filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet identifier, echoed in the SUBACK.
    pub packet_id: NonZeroU16,
    /// MQTT 5 properties.
    pub properties: SubscribeProperties,
    /// The filters and their options, at least one.
    pub filters: Vec<(TopicFilter, SubscriptionOptions)>,
}

impl Subscribe {
    #[cfg(feature = "server")]
    pub(crate) fn read(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let properties = if version.is_v5() {
            SubscribeProperties::read(r)?
        } else {
            SubscribeProperties::default()
        };
        let mut filters = Vec::new();
        while !r.is_empty() {
            let filter = TopicFilter::new(r.string("topic filter")?)?;
            let options = SubscriptionOptions::from_byte(r.u8("subscription options")?, version)?;
            if options.no_local && version.is_v5() && filter.shared().is_some() {
                return Err(DecodeError::Protocol(crate::error::text(
                    "No Local on a shared subscription [MQTT-3.8.3-4]",
                )));
            }
            filters.push((filter, options));
        }
        if filters.is_empty() {
            return Err(DecodeError::Protocol(crate::error::text(
                "SUBSCRIBE without a topic filter [MQTT-3.8.3-2]",
            )));
        }
        Ok(Self {
            packet_id,
            properties,
            filters,
        })
    }

    #[cfg(feature = "client")]
    pub(crate) fn write<S: Sink + ?Sized>(
        &self,
        v: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::Invalid(
                "SUBSCRIBE needs at least one topic filter",
            ));
        }
        s.put_u16(self.packet_id.get());
        if v.is_v5() {
            self.properties.write_block(s)?;
        }
        for (filter, options) in &self.filters {
            s.put_string(filter.as_str())?;
            s.put_u8(options.to_byte(v));
        }
        Ok(())
    }
}

/// The answer to a SUBSCRIBE: one reason code per filter, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// The SUBSCRIBE's packet identifier.
    pub packet_id: NonZeroU16,
    /// MQTT 5 properties.
    pub properties: AckProperties,
    /// Granted QoS (0x00..0x02) or a failure, per filter.
    pub reason_codes: Vec<ReasonCode>,
}

impl SubAck {
    #[cfg(feature = "client")]
    pub(crate) fn read(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let (properties, allowed) = if version.is_v5() {
            (AckProperties::read(r)?, allowed::SUBACK)
        } else {
            (AckProperties::default(), allowed::SUBACK_V3)
        };
        let mut reason_codes = Vec::with_capacity(r.remaining());
        while !r.is_empty() {
            reason_codes.push(check_reason(
                r.u8("reason code")?,
                allowed,
                PacketType::SubAck,
            )?);
        }
        if reason_codes.is_empty() {
            return Err(DecodeError::Protocol(crate::error::text(
                "SUBACK without a reason code [MQTT-3.9.3-1]",
            )));
        }
        Ok(Self {
            packet_id,
            properties,
            reason_codes,
        })
    }

    #[cfg(feature = "server")]
    pub(crate) fn write<S: Sink + ?Sized>(
        &self,
        v: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        s.put_u16(self.packet_id.get());
        if v.is_v5() {
            self.properties.write_block(s)?;
            for rc in &self.reason_codes {
                s.put_u8(rc.value());
            }
        } else {
            for rc in &self.reason_codes {
                s.put_u8(rc.to_v3_suback());
            }
        }
        Ok(())
    }
}

/// A request to remove subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet identifier, echoed in the UNSUBACK.
    pub packet_id: NonZeroU16,
    /// MQTT 5 user properties.
    pub user_properties: Vec<UserProperty>,
    /// The filters to remove, at least one.
    pub filters: Vec<TopicFilter>,
}

impl Unsubscribe {
    #[cfg(feature = "server")]
    pub(crate) fn read(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let user_properties = if version.is_v5() {
            read_user_properties(r)?
        } else {
            Vec::new()
        };
        let mut filters = Vec::new();
        while !r.is_empty() {
            filters.push(TopicFilter::new(r.string("topic filter")?)?);
        }
        if filters.is_empty() {
            return Err(DecodeError::Protocol(crate::error::text(
                "UNSUBSCRIBE without a topic filter [MQTT-3.10.3-2]",
            )));
        }
        Ok(Self {
            packet_id,
            user_properties,
            filters,
        })
    }

    #[cfg(feature = "client")]
    pub(crate) fn write<S: Sink + ?Sized>(
        &self,
        v: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::Invalid(
                "UNSUBSCRIBE needs at least one topic filter",
            ));
        }
        s.put_u16(self.packet_id.get());
        if v.is_v5() {
            self.user_properties.write_block(s)?;
        }
        for filter in &self.filters {
            s.put_string(filter.as_str())?;
        }
        Ok(())
    }
}

/// The answer to an UNSUBSCRIBE. MQTT 3.x carries no reason codes, so
/// `reason_codes` is empty there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// The UNSUBSCRIBE's packet identifier.
    pub packet_id: NonZeroU16,
    /// MQTT 5 properties.
    pub properties: AckProperties,
    /// MQTT 5: one reason code per filter, in order.
    pub reason_codes: Vec<ReasonCode>,
}

impl UnsubAck {
    #[cfg(feature = "client")]
    pub(crate) fn read(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let mut ack = Self {
            packet_id,
            properties: AckProperties::default(),
            reason_codes: Vec::new(),
        };
        if version.is_v5() {
            ack.properties = AckProperties::read(r)?;
            while !r.is_empty() {
                let code = check_reason(
                    r.u8("reason code")?,
                    allowed::UNSUBACK,
                    PacketType::UnsubAck,
                )?;
                ack.reason_codes.push(code);
            }
        }
        Ok(ack)
    }

    #[cfg(feature = "server")]
    pub(crate) fn write<S: Sink + ?Sized>(
        &self,
        v: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        s.put_u16(self.packet_id.get());
        if v.is_v5() {
            self.properties.write_block(s)?;
            for rc in &self.reason_codes {
                s.put_u8(rc.value());
            }
        }
        Ok(())
    }
}
