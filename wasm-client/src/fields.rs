//! The field lists that carry options and MQTT 5 properties across the wasm boundary, both
//! ways, as one `Uint8Array` each instead of one JavaScript object read or written property
//! by property (every `Reflect` call costs the package its glue and the key's string).
//!
//! A list is a sequence of fields: an identifier byte, then either a number (4 bytes, big
//! endian) or bytes (a 4-byte big-endian length, then the bytes; strings are UTF-8). Which of
//! the two follows is fixed per identifier, so no type tag is needed; a user property is one
//! identifier followed by two strings. MQTT 5 properties keep their identifiers from the
//! specification (table 2-4); the other options use identifiers from 0x80 up. The JavaScript
//! side of the package (`wasm-client/npm/api.js`, `FIELD`) writes and reads the same
//! identifiers: a change here is a change there.

use alloc::string::String;
use alloc::vec::Vec;
use core::num::{NonZeroU16, NonZeroU32};

use aviary_protocol::properties::id;
use aviary_protocol::{
    ByteString, ConnAckProperties, ConnectProperties, MessageProperties, PublishProperties,
    UserProperty,
};
use bytes::Bytes;

/// Identifiers of the options that are not MQTT 5 properties.
pub(crate) mod opt {
    pub(crate) const CLIENT_ID: u8 = 0x80;
    pub(crate) const PROTOCOL_VERSION: u8 = 0x81;
    pub(crate) const CLEAN: u8 = 0x82;
    pub(crate) const KEEPALIVE: u8 = 0x83;
    pub(crate) const USERNAME: u8 = 0x84;
    pub(crate) const PASSWORD: u8 = 0x85;
    pub(crate) const CONNECT_TIMEOUT: u8 = 0x86;
    pub(crate) const RECONNECT_PERIOD: u8 = 0x87;
    pub(crate) const RECONNECT_MAX_PERIOD: u8 = 0x88;
    pub(crate) const RESUBSCRIBE: u8 = 0x89;
    pub(crate) const QUEUE_MAX_MESSAGES: u8 = 0x8A;
    pub(crate) const QUEUE_MAX_BYTES: u8 = 0x8B;
    pub(crate) const WILL_TOPIC: u8 = 0x90;
    pub(crate) const WILL_PAYLOAD: u8 = 0x91;
    pub(crate) const WILL_QOS: u8 = 0x92;
    pub(crate) const WILL_RETAIN: u8 = 0x93;
    /// A user property of the will (CONNECT's own use 0x26).
    pub(crate) const WILL_USER_PROPERTY: u8 = 0xA6;
    /// A topic filter of SUBSCRIBE or UNSUBSCRIBE.
    pub(crate) const FILTER: u8 = 0xC0;
    /// The subscription options byte of the filter before it (as in SUBSCRIBE).
    pub(crate) const FILTER_OPTIONS: u8 = 0xC1;
}

/// Reads a field list. The package's own JavaScript writes it, so a short list is a bug
/// there; it reads as zeros and empty strings rather than trapping.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(list: &'a [u8]) -> Self {
        Self { rest: list }
    }

    /// The next field's identifier, or `None` at the end.
    pub(crate) fn next_id(&mut self) -> Option<u8> {
        let (&first, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(first)
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.rest.len());
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        head
    }

    pub(crate) fn num(&mut self) -> u32 {
        let b = self.take(4);
        b.iter().fold(0, |n, &x| (n << 8) | u32::from(x))
    }

    pub(crate) fn bytes(&mut self) -> &'a [u8] {
        let n = self.num() as usize;
        self.take(n)
    }

    pub(crate) fn string(&mut self) -> String {
        String::from_utf8(self.bytes().to_vec()).unwrap_or_default()
    }

    pub(crate) fn flag(&mut self) -> bool {
        self.num() != 0
    }

    pub(crate) fn user_property(&mut self) -> UserProperty {
        let name = ByteString::from(self.string());
        (name, ByteString::from(self.string()))
    }
}

/// Reads the MQTT 5 message property `id` (PUBLISH, will) into `p`; `false` if it is not one.
/// `user` is the identifier user properties have in this list.
pub(crate) fn message_property(
    p: &mut MessageProperties,
    id: u8,
    user: u8,
    r: &mut Reader<'_>,
) -> bool {
    match id {
        id::PAYLOAD_FORMAT_INDICATOR => p.payload_format_indicator = Some(r.flag()),
        id::MESSAGE_EXPIRY_INTERVAL => p.message_expiry_interval = Some(r.num()),
        id::CONTENT_TYPE => p.content_type = Some(r.string().into()),
        id::RESPONSE_TOPIC => p.response_topic = Some(r.string().into()),
        id::CORRELATION_DATA => p.correlation_data = Some(Bytes::copy_from_slice(r.bytes())),
        _ if id == user => p.user_properties.push(r.user_property()),
        _ => return false,
    }
    true
}

/// Reads the MQTT 5 CONNECT property `id` into `p`; `false` if it is not one.
pub(crate) fn connect_property(p: &mut ConnectProperties, id: u8, r: &mut Reader<'_>) -> bool {
    match id {
        id::SESSION_EXPIRY_INTERVAL => p.session_expiry_interval = Some(r.num()),
        // 0 is the JavaScript API's "absent", as before (the protocol forbids 0 for these).
        id::RECEIVE_MAXIMUM => p.receive_maximum = NonZeroU16::new(r.num() as u16),
        id::MAXIMUM_PACKET_SIZE => p.maximum_packet_size = NonZeroU32::new(r.num()),
        id::TOPIC_ALIAS_MAXIMUM => p.topic_alias_maximum = Some(r.num() as u16),
        id::REQUEST_RESPONSE_INFORMATION => p.request_response_information = Some(r.flag()),
        id::REQUEST_PROBLEM_INFORMATION => p.request_problem_information = Some(r.flag()),
        id::USER_PROPERTY => p.user_properties.push(r.user_property()),
        id::AUTHENTICATION_METHOD => p.authentication_method = Some(r.string().into()),
        id::AUTHENTICATION_DATA => {
            p.authentication_data = Some(Bytes::copy_from_slice(r.bytes()));
        }
        _ => return false,
    }
    true
}

/// Writes a field list.
#[derive(Default)]
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    fn num(&mut self, id: u8, v: Option<u32>) {
        if let Some(v) = v {
            self.0.push(id);
            self.0.extend_from_slice(&v.to_be_bytes());
        }
    }

    fn flag(&mut self, id: u8, v: Option<bool>) {
        self.num(id, v.map(u32::from));
    }

    /// A length and the bytes, without an identifier.
    fn raw(&mut self, v: &[u8]) {
        self.0.extend_from_slice(&(v.len() as u32).to_be_bytes());
        self.0.extend_from_slice(v);
    }

    fn bytes(&mut self, id: u8, v: Option<&[u8]>) {
        if let Some(v) = v {
            self.0.push(id);
            self.raw(v);
        }
    }

    fn string(&mut self, id: u8, v: Option<&ByteString>) {
        self.bytes(id, v.map(|s| s.as_ref()));
    }

    fn users(&mut self, props: &[UserProperty]) {
        for (k, v) in props {
            self.0.push(id::USER_PROPERTY);
            self.raw(k.as_bytes());
            self.raw(v.as_bytes());
        }
    }

    /// A message's properties, in the order the `packet.properties` object has its keys.
    pub(crate) fn publish(&mut self, p: &PublishProperties) {
        let m = &p.message;
        self.flag(id::PAYLOAD_FORMAT_INDICATOR, m.payload_format_indicator);
        self.num(id::MESSAGE_EXPIRY_INTERVAL, m.message_expiry_interval);
        self.string(id::CONTENT_TYPE, m.content_type.as_ref());
        self.string(id::RESPONSE_TOPIC, m.response_topic.as_ref());
        self.bytes(id::CORRELATION_DATA, m.correlation_data.as_deref());
        self.users(&m.user_properties);
        for sid in &p.subscription_identifiers {
            self.num(id::SUBSCRIPTION_IDENTIFIER, Some(sid.get()));
        }
    }

    /// The CONNACK properties the `connect` event's packet shows, in its keys' order.
    pub(crate) fn connack(&mut self, p: &ConnAckProperties) {
        self.num(id::SESSION_EXPIRY_INTERVAL, p.session_expiry_interval);
        let receive_maximum = p.receive_maximum.map(|v| u32::from(v.get()));
        self.num(id::RECEIVE_MAXIMUM, receive_maximum);
        self.num(id::MAXIMUM_QOS, p.maximum_qos.map(|q| q as u32));
        self.flag(id::RETAIN_AVAILABLE, p.retain_available);
        let maximum_packet_size = p.maximum_packet_size.map(NonZeroU32::get);
        self.num(id::MAXIMUM_PACKET_SIZE, maximum_packet_size);
        let assigned = p.assigned_client_identifier.as_ref();
        self.string(id::ASSIGNED_CLIENT_IDENTIFIER, assigned);
        self.num(
            id::TOPIC_ALIAS_MAXIMUM,
            p.topic_alias_maximum.map(u32::from),
        );
        self.string(id::REASON_STRING, p.reason_string.as_ref());
        self.num(id::SERVER_KEEP_ALIVE, p.server_keep_alive.map(u32::from));
        let method = p.authentication_method.as_ref();
        self.string(id::AUTHENTICATION_METHOD, method);
        self.bytes(id::AUTHENTICATION_DATA, p.authentication_data.as_deref());
        let wildcard = p.wildcard_subscription_available;
        self.flag(id::WILDCARD_SUBSCRIPTION_AVAILABLE, wildcard);
        let shared = p.shared_subscription_available;
        self.flag(id::SHARED_SUBSCRIPTION_AVAILABLE, shared);
        self.users(&p.user_properties);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_list_reads_back() {
        let mut p = PublishProperties::default();
        let m = p.message.to_mut();
        m.content_type = Some("text/plain".into());
        m.user_properties = alloc::vec![("k".into(), "v".into()), ("k".into(), "w".into())];
        p.subscription_identifiers = alloc::vec![NonZeroU32::new(7).unwrap()];
        let mut w = Writer::default();
        w.publish(&p);
        let mut r = Reader::new(&w.0);
        let mut back = MessageProperties::default();
        let mut ids = Vec::new();
        while let Some(id) = r.next_id() {
            if !message_property(&mut back, id, id::USER_PROPERTY, &mut r) {
                assert_eq!(id, id::SUBSCRIPTION_IDENTIFIER);
                ids.push(r.num());
            }
        }
        assert_eq!(back, *p.message);
        assert_eq!(ids, [7]);
    }

    #[test]
    fn a_short_list_reads_as_zeros() {
        let mut r = Reader::new(&[0x80, 0, 0]);
        assert_eq!(r.next_id(), Some(0x80));
        assert_eq!(r.string(), "");
        assert_eq!(r.next_id(), None);
    }
}
