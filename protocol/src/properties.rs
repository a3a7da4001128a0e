//! MQTT 5 properties (section 2.2.2): one struct per packet kind, decoded by
//! one loop that rejects properties the packet may not carry and properties
//! given twice, and written through [`Sink`] so lengths are exact.

use std::num::{NonZeroU16, NonZeroU32};

use bytes::Bytes;
use bytestring::ByteString;

use crate::wire::{Counter, Reader, Sink};
use crate::{topic, DecodeError, EncodeError, PacketType, QoS};

/// A User Property: a name and a value, both UTF-8 strings. They may repeat,
/// and their order is kept [MQTT-3.3.2-18].
pub type UserProperty = (ByteString, ByteString);

/// Property identifiers (section 2.2.2.2, table 2-4).
#[allow(missing_docs)]
pub mod id {
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    pub const CONTENT_TYPE: u8 = 0x03;
    pub const RESPONSE_TOPIC: u8 = 0x08;
    pub const CORRELATION_DATA: u8 = 0x09;
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    pub const SERVER_REFERENCE: u8 = 0x1C;
    pub const REASON_STRING: u8 = 0x1F;
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub const TOPIC_ALIAS: u8 = 0x23;
    pub const MAXIMUM_QOS: u8 = 0x24;
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    pub const USER_PROPERTY: u8 = 0x26;
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

// ---------------------------------------------------------------- decoding

/// Reads a property block (length, then properties) and hands each property
/// identifier to `f`, which reads the value or rejects the property.
pub(crate) fn read_block(
    r: &mut Reader,
    mut f: impl FnMut(u8, &mut Reader) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let len = r.varint("property length")? as usize;
    let mut block = r.sub(len, "properties")?;
    while !block.is_empty() {
        // Identifiers are variable byte integers, but all defined ones fit one byte.
        let id = block.varint("property identifier")?;
        let id = u8::try_from(id)
            .map_err(|_| DecodeError::Malformed("unknown property identifier [MQTT-2.2.2]"))?;
        f(id, &mut block)?;
    }
    Ok(())
}

/// Stores a property that may appear at most once.
fn once<T>(slot: &mut Option<T>, v: T, id: u8, packet: PacketType) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::DuplicateProperty {
            property: id,
            packet,
        });
    }
    *slot = Some(v);
    Ok(())
}

fn misplaced(id: u8, packet: PacketType) -> DecodeError {
    DecodeError::MisplacedProperty {
        property: id,
        packet,
    }
}

fn flag(r: &mut Reader, field: &'static str) -> Result<bool, DecodeError> {
    match r.u8(field)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::Protocol(
            "a boolean property must be 0 or 1 [MQTT-2.2.2]",
        )),
    }
}

fn non_zero_u16(
    r: &mut Reader,
    field: &'static str,
    rule: &'static str,
) -> Result<NonZeroU16, DecodeError> {
    NonZeroU16::new(r.u16(field)?).ok_or(DecodeError::Protocol(rule))
}

fn user_property(r: &mut Reader) -> Result<UserProperty, DecodeError> {
    Ok((
        r.string("user property name")?,
        r.string("user property value")?,
    ))
}

fn subscription_identifier(r: &mut Reader) -> Result<NonZeroU32, DecodeError> {
    NonZeroU32::new(r.varint("subscription identifier")?).ok_or(DecodeError::Protocol(
        "subscription identifier 0 [MQTT-3.8.2-1]",
    ))
}

/// Reads the properties shared by PUBLISH and the will: both describe an
/// application message.
fn message_property(
    p: &mut MessageProperties,
    id: u8,
    r: &mut Reader,
) -> Result<bool, DecodeError> {
    let packet = r.packet();
    match id {
        id::PAYLOAD_FORMAT_INDICATOR => once(
            &mut p.payload_format_indicator,
            flag(r, "payload format")?,
            id,
            packet,
        )?,
        id::MESSAGE_EXPIRY_INTERVAL => once(
            &mut p.message_expiry_interval,
            r.u32("message expiry")?,
            id,
            packet,
        )?,
        id::CONTENT_TYPE => once(&mut p.content_type, r.string("content type")?, id, packet)?,
        id::RESPONSE_TOPIC => {
            let t = r.string("response topic")?;
            // A response topic is a topic name: no wildcards [MQTT-3.3.2-14].
            topic::validate_topic_name(&t)?;
            once(&mut p.response_topic, t, id, packet)?;
        }
        id::CORRELATION_DATA => once(
            &mut p.correlation_data,
            r.binary("correlation data")?,
            id,
            packet,
        )?,
        id::USER_PROPERTY => p.user_properties.push(user_property(r)?),
        _ => return Ok(false),
    }
    Ok(true)
}

// ---------------------------------------------------------------- encoding

/// A set of properties that can be written as a property block.
pub(crate) trait PropertyBlock {
    fn write_properties<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError>;

    /// True when no property is set: the block is a single zero byte.
    fn is_empty_block(&self) -> bool {
        false
    }

    /// Writes the block: its length, then the properties.
    fn write_block<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        // The common case, and on the publish path: skip the counting pass.
        if self.is_empty_block() {
            s.put_u8(0);
            return Ok(());
        }
        let mut c = Counter::default();
        self.write_properties(&mut c)?;
        s.put_varint(c.0)?;
        self.write_properties(s)
    }
}

fn put_u8<S: Sink>(s: &mut S, id: u8, v: Option<u8>) {
    if let Some(v) = v {
        s.put_u8(id);
        s.put_u8(v);
    }
}

fn put_flag<S: Sink>(s: &mut S, id: u8, v: Option<bool>) {
    put_u8(s, id, v.map(u8::from));
}

fn put_u16<S: Sink>(s: &mut S, id: u8, v: Option<u16>) {
    if let Some(v) = v {
        s.put_u8(id);
        s.put_u16(v);
    }
}

fn put_u32<S: Sink>(s: &mut S, id: u8, v: Option<u32>) {
    if let Some(v) = v {
        s.put_u8(id);
        s.put_u32(v);
    }
}

fn put_str<S: Sink>(s: &mut S, id: u8, v: Option<&ByteString>) -> Result<(), EncodeError> {
    if let Some(v) = v {
        s.put_u8(id);
        s.put_string(v)?;
    }
    Ok(())
}

fn put_bin<S: Sink>(s: &mut S, id: u8, v: Option<&Bytes>) -> Result<(), EncodeError> {
    if let Some(v) = v {
        s.put_u8(id);
        s.put_binary(v)?;
    }
    Ok(())
}

fn put_user<S: Sink>(s: &mut S, props: &[UserProperty]) -> Result<(), EncodeError> {
    for (k, v) in props {
        s.put_u8(id::USER_PROPERTY);
        s.put_string(k)?;
        s.put_string(v)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- the sets

/// Properties of an application message, carried by PUBLISH and by the will
/// (section 3.3.2.3 and 3.1.3.2). The broker forwards them untouched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageProperties {
    /// `Some(true)`: the payload is UTF-8 text; `Some(false)`: unspecified bytes.
    pub payload_format_indicator: Option<bool>,
    /// Lifetime of the message in seconds.
    pub message_expiry_interval: Option<u32>,
    /// MIME-like description of the payload.
    pub content_type: Option<ByteString>,
    /// Topic name for a response.
    pub response_topic: Option<ByteString>,
    /// Lets a requester match a response to its request.
    pub correlation_data: Option<Bytes>,
    /// Application-defined name/value pairs, in order.
    pub user_properties: Vec<UserProperty>,
}

impl MessageProperties {
    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_flag(
            s,
            id::PAYLOAD_FORMAT_INDICATOR,
            self.payload_format_indicator,
        );
        put_u32(s, id::MESSAGE_EXPIRY_INTERVAL, self.message_expiry_interval);
        put_str(s, id::CONTENT_TYPE, self.content_type.as_ref())?;
        put_str(s, id::RESPONSE_TOPIC, self.response_topic.as_ref())?;
        put_bin(s, id::CORRELATION_DATA, self.correlation_data.as_ref())?;
        put_user(s, &self.user_properties)
    }
}

/// PUBLISH properties (section 3.3.2.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishProperties {
    /// The application message's own properties, forwarded to subscribers.
    pub message: MessageProperties,
    /// Topic alias: stands for the topic name on this connection.
    pub topic_alias: Option<NonZeroU16>,
    /// Identifiers of the subscriptions that matched (server to client only).
    pub subscription_identifiers: Vec<NonZeroU32>,
}

impl PublishProperties {
    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        read_block(r, |id, r| {
            if message_property(&mut p.message, id, r)? {
                return Ok(());
            }
            match id {
                id::TOPIC_ALIAS => once(
                    &mut p.topic_alias,
                    non_zero_u16(r, "topic alias", "topic alias 0 [MQTT-3.3.2-8]")?,
                    id,
                    r.packet(),
                ),
                id::SUBSCRIPTION_IDENTIFIER => {
                    p.subscription_identifiers.push(subscription_identifier(r)?);
                    Ok(())
                }
                _ => Err(misplaced(id, r.packet())),
            }
        })?;
        Ok(p)
    }

    /// True when nothing is set, the common case: the block is one zero byte.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl PropertyBlock for PublishProperties {
    fn is_empty_block(&self) -> bool {
        self.is_empty()
    }

    fn write_properties<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        self.message.write(s)?;
        put_u16(s, id::TOPIC_ALIAS, self.topic_alias.map(NonZeroU16::get));
        for sid in &self.subscription_identifiers {
            s.put_u8(id::SUBSCRIPTION_IDENTIFIER);
            s.put_varint(sid.get() as usize)?;
        }
        Ok(())
    }
}

/// Will properties (section 3.1.3.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WillProperties {
    /// The will's application message properties.
    pub message: MessageProperties,
    /// Seconds to wait after the connection ends before publishing the will.
    pub will_delay_interval: Option<u32>,
}

impl WillProperties {
    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        read_block(r, |id, r| {
            if message_property(&mut p.message, id, r)? {
                return Ok(());
            }
            match id {
                id::WILL_DELAY_INTERVAL => once(
                    &mut p.will_delay_interval,
                    r.u32("will delay")?,
                    id,
                    r.packet(),
                ),
                _ => Err(misplaced(id, r.packet())),
            }
        })?;
        Ok(p)
    }
}

impl PropertyBlock for WillProperties {
    fn write_properties<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_u32(s, id::WILL_DELAY_INTERVAL, self.will_delay_interval);
        self.message.write(s)
    }
}

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
    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        read_block(r, |id, r| {
            let packet = r.packet();
            match id {
                id::SESSION_EXPIRY_INTERVAL => once(
                    &mut p.session_expiry_interval,
                    r.u32("session expiry")?,
                    id,
                    packet,
                ),
                id::RECEIVE_MAXIMUM => once(
                    &mut p.receive_maximum,
                    non_zero_u16(r, "receive maximum", "receive maximum 0 [MQTT-3.1.2-21]")?,
                    id,
                    packet,
                ),
                id::MAXIMUM_PACKET_SIZE => {
                    let v = NonZeroU32::new(r.u32("maximum packet size")?).ok_or(
                        DecodeError::Protocol("maximum packet size 0 [MQTT-3.1.2-24]"),
                    )?;
                    once(&mut p.maximum_packet_size, v, id, packet)
                }
                id::TOPIC_ALIAS_MAXIMUM => once(
                    &mut p.topic_alias_maximum,
                    r.u16("topic alias maximum")?,
                    id,
                    packet,
                ),
                id::REQUEST_RESPONSE_INFORMATION => once(
                    &mut p.request_response_information,
                    flag(r, "request response information")?,
                    id,
                    packet,
                ),
                id::REQUEST_PROBLEM_INFORMATION => once(
                    &mut p.request_problem_information,
                    flag(r, "request problem information")?,
                    id,
                    packet,
                ),
                id::USER_PROPERTY => {
                    p.user_properties.push(user_property(r)?);
                    Ok(())
                }
                id::AUTHENTICATION_METHOD => once(
                    &mut p.authentication_method,
                    r.string("authentication method")?,
                    id,
                    packet,
                ),
                id::AUTHENTICATION_DATA => once(
                    &mut p.authentication_data,
                    r.binary("authentication data")?,
                    id,
                    packet,
                ),
                _ => Err(misplaced(id, packet)),
            }
        })?;
        if p.authentication_data.is_some() && p.authentication_method.is_none() {
            return Err(DecodeError::Protocol(
                "authentication data without authentication method [MQTT-3.1.2-28]",
            ));
        }
        Ok(p)
    }
}

impl PropertyBlock for ConnectProperties {
    fn write_properties<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
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
    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        read_block(r, |id, r| {
            let packet = r.packet();
            match id {
                id::SESSION_EXPIRY_INTERVAL => once(
                    &mut p.session_expiry_interval,
                    r.u32("session expiry")?,
                    id,
                    packet,
                ),
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
                            return Err(DecodeError::Protocol(
                                "maximum QoS must be 0 or 1 [MQTT-3.2.2-9]",
                            ))
                        }
                    };
                    once(&mut p.maximum_qos, q, id, packet)
                }
                id::RETAIN_AVAILABLE => once(
                    &mut p.retain_available,
                    flag(r, "retain available")?,
                    id,
                    packet,
                ),
                id::MAXIMUM_PACKET_SIZE => {
                    let v = NonZeroU32::new(r.u32("maximum packet size")?).ok_or(
                        DecodeError::Protocol("maximum packet size 0 [MQTT-3.2.2-9]"),
                    )?;
                    once(&mut p.maximum_packet_size, v, id, packet)
                }
                id::ASSIGNED_CLIENT_IDENTIFIER => once(
                    &mut p.assigned_client_identifier,
                    r.string("assigned client id")?,
                    id,
                    packet,
                ),
                id::TOPIC_ALIAS_MAXIMUM => once(
                    &mut p.topic_alias_maximum,
                    r.u16("topic alias maximum")?,
                    id,
                    packet,
                ),
                id::REASON_STRING => {
                    once(&mut p.reason_string, r.string("reason string")?, id, packet)
                }
                id::USER_PROPERTY => {
                    p.user_properties.push(user_property(r)?);
                    Ok(())
                }
                id::WILDCARD_SUBSCRIPTION_AVAILABLE => once(
                    &mut p.wildcard_subscription_available,
                    flag(r, "wildcard available")?,
                    id,
                    packet,
                ),
                id::SUBSCRIPTION_IDENTIFIER_AVAILABLE => once(
                    &mut p.subscription_identifiers_available,
                    flag(r, "subscription ids available")?,
                    id,
                    packet,
                ),
                id::SHARED_SUBSCRIPTION_AVAILABLE => once(
                    &mut p.shared_subscription_available,
                    flag(r, "shared available")?,
                    id,
                    packet,
                ),
                id::SERVER_KEEP_ALIVE => once(
                    &mut p.server_keep_alive,
                    r.u16("server keep alive")?,
                    id,
                    packet,
                ),
                id::RESPONSE_INFORMATION => once(
                    &mut p.response_information,
                    r.string("response information")?,
                    id,
                    packet,
                ),
                id::SERVER_REFERENCE => once(
                    &mut p.server_reference,
                    r.string("server reference")?,
                    id,
                    packet,
                ),
                id::AUTHENTICATION_METHOD => once(
                    &mut p.authentication_method,
                    r.string("authentication method")?,
                    id,
                    packet,
                ),
                id::AUTHENTICATION_DATA => once(
                    &mut p.authentication_data,
                    r.binary("authentication data")?,
                    id,
                    packet,
                ),
                _ => Err(misplaced(id, packet)),
            }
        })?;
        Ok(p)
    }
}

impl PropertyBlock for ConnAckProperties {
    fn write_properties<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
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
        read_block(r, |id, r| match id {
            id::REASON_STRING => once(
                &mut p.reason_string,
                r.string("reason string")?,
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

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.reason_string.is_none() && self.user_properties.is_empty()
    }
}

impl PropertyBlock for AckProperties {
    fn is_empty_block(&self) -> bool {
        self.is_empty()
    }

    fn write_properties<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
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
    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        read_block(r, |id, r| match id {
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

impl PropertyBlock for SubscribeProperties {
    fn write_properties<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        if let Some(sid) = self.subscription_identifier {
            s.put_u8(id::SUBSCRIPTION_IDENTIFIER);
            s.put_varint(sid.get() as usize)?;
        }
        put_user(s, &self.user_properties)
    }
}

/// UNSUBSCRIBE carries user properties only (section 3.10.2.1).
pub(crate) fn read_user_properties(r: &mut Reader) -> Result<Vec<UserProperty>, DecodeError> {
    let mut v = Vec::new();
    read_block(r, |id, r| match id {
        id::USER_PROPERTY => {
            v.push(user_property(r)?);
            Ok(())
        }
        _ => Err(misplaced(id, r.packet())),
    })?;
    Ok(v)
}

impl PropertyBlock for [UserProperty] {
    fn write_properties<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_user(s, self)
    }
}

impl PropertyBlock for Vec<UserProperty> {
    fn write_properties<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
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
        read_block(r, |id, r| {
            let packet = r.packet();
            match id {
                id::SESSION_EXPIRY_INTERVAL => once(
                    &mut p.session_expiry_interval,
                    r.u32("session expiry")?,
                    id,
                    packet,
                ),
                id::REASON_STRING => {
                    once(&mut p.reason_string, r.string("reason string")?, id, packet)
                }
                id::SERVER_REFERENCE => once(
                    &mut p.server_reference,
                    r.string("server reference")?,
                    id,
                    packet,
                ),
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
        *self == Self::default()
    }
}

impl PropertyBlock for DisconnectProperties {
    fn write_properties<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
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
        read_block(r, |id, r| {
            let packet = r.packet();
            match id {
                id::AUTHENTICATION_METHOD => once(
                    &mut p.authentication_method,
                    r.string("authentication method")?,
                    id,
                    packet,
                ),
                id::AUTHENTICATION_DATA => once(
                    &mut p.authentication_data,
                    r.binary("authentication data")?,
                    id,
                    packet,
                ),
                id::REASON_STRING => {
                    once(&mut p.reason_string, r.string("reason string")?, id, packet)
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
        *self == Self::default()
    }
}

impl PropertyBlock for AuthProperties {
    fn write_properties<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
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
