//! Reason codes (MQTT 5.0 section 2.4) and their mapping onto the return
//! codes of MQTT 3.1 and 3.1.1, so the rest of the code handles one model.

use core::fmt;

/// An MQTT 5 reason code. One byte; values below 0x80 mean success.
///
/// MQTT 3.x return codes are mapped onto these on decode and back on encode,
/// so the broker and client never branch on the version to read a result.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReasonCode(u8);

macro_rules! reason_codes {
    ($($name:ident = $value:literal, $text:literal;)*) => {
        impl ReasonCode {
            $(
                #[doc = $text]
                pub const $name: Self = Self($value);
            )*

            /// The code for a byte, if the specification defines one.
            pub const fn from_u8(v: u8) -> Option<Self> {
                match v {
                    $($value)|* => Some(Self(v)),
                    _ => None,
                }
            }

            /// The specification's name for this code.
            pub const fn name(self) -> &'static str {
                // A search of two tables rather than a `match`: the match compiled to a jump
                // table with two constants per arm, several hundred bytes of the browser
                // client's package for a lookup that only runs when something failed.
                const VALUES: &[u8] = &[$($value),*];
                const NAMES: &[&str] = &[$($text),*];
                let mut i = 0;
                while i < VALUES.len() {
                    if VALUES[i] == self.0 {
                        return NAMES[i];
                    }
                    i += 1;
                }
                "unknown"
            }
        }
    };
}

reason_codes! {
    SUCCESS = 0x00, "Success";
    GRANTED_QOS_1 = 0x01, "Granted QoS 1";
    GRANTED_QOS_2 = 0x02, "Granted QoS 2";
    DISCONNECT_WITH_WILL = 0x04, "Disconnect with Will Message";
    NO_MATCHING_SUBSCRIBERS = 0x10, "No matching subscribers";
    NO_SUBSCRIPTION_EXISTED = 0x11, "No subscription existed";
    CONTINUE_AUTHENTICATION = 0x18, "Continue authentication";
    RE_AUTHENTICATE = 0x19, "Re-authenticate";
    UNSPECIFIED_ERROR = 0x80, "Unspecified error";
    MALFORMED_PACKET = 0x81, "Malformed Packet";
    PROTOCOL_ERROR = 0x82, "Protocol Error";
    IMPLEMENTATION_SPECIFIC_ERROR = 0x83, "Implementation specific error";
    UNSUPPORTED_PROTOCOL_VERSION = 0x84, "Unsupported Protocol Version";
    CLIENT_IDENTIFIER_NOT_VALID = 0x85, "Client Identifier not valid";
    BAD_USER_NAME_OR_PASSWORD = 0x86, "Bad User Name or Password";
    NOT_AUTHORIZED = 0x87, "Not authorized";
    SERVER_UNAVAILABLE = 0x88, "Server unavailable";
    SERVER_BUSY = 0x89, "Server busy";
    BANNED = 0x8A, "Banned";
    SERVER_SHUTTING_DOWN = 0x8B, "Server shutting down";
    BAD_AUTHENTICATION_METHOD = 0x8C, "Bad authentication method";
    KEEP_ALIVE_TIMEOUT = 0x8D, "Keep Alive timeout";
    SESSION_TAKEN_OVER = 0x8E, "Session taken over";
    TOPIC_FILTER_INVALID = 0x8F, "Topic Filter invalid";
    TOPIC_NAME_INVALID = 0x90, "Topic Name invalid";
    PACKET_IDENTIFIER_IN_USE = 0x91, "Packet Identifier in use";
    PACKET_IDENTIFIER_NOT_FOUND = 0x92, "Packet Identifier not found";
    RECEIVE_MAXIMUM_EXCEEDED = 0x93, "Receive Maximum exceeded";
    TOPIC_ALIAS_INVALID = 0x94, "Topic Alias invalid";
    PACKET_TOO_LARGE = 0x95, "Packet too large";
    MESSAGE_RATE_TOO_HIGH = 0x96, "Message rate too high";
    QUOTA_EXCEEDED = 0x97, "Quota exceeded";
    ADMINISTRATIVE_ACTION = 0x98, "Administrative action";
    PAYLOAD_FORMAT_INVALID = 0x99, "Payload format invalid";
    RETAIN_NOT_SUPPORTED = 0x9A, "Retain not supported";
    QOS_NOT_SUPPORTED = 0x9B, "QoS not supported";
    USE_ANOTHER_SERVER = 0x9C, "Use another server";
    SERVER_MOVED = 0x9D, "Server moved";
    SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E, "Shared Subscriptions not supported";
    CONNECTION_RATE_EXCEEDED = 0x9F, "Connection rate exceeded";
    MAXIMUM_CONNECT_TIME = 0xA0, "Maximum connect time";
    SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1, "Subscription Identifiers not supported";
    WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2, "Wildcard Subscriptions not supported";
}

impl ReasonCode {
    /// 0x00 in a DISCONNECT.
    pub const NORMAL_DISCONNECTION: Self = Self::SUCCESS;
    /// 0x00 in a SUBACK.
    pub const GRANTED_QOS_0: Self = Self::SUCCESS;

    /// The byte on the wire (MQTT 5).
    pub const fn value(self) -> u8 {
        self.0
    }

    /// True for codes of 0x80 and above.
    pub const fn is_error(self) -> bool {
        self.0 >= 0x80
    }

    /// The MQTT 3.x CONNACK return code for this reason (section 3.2.2.3 of
    /// 3.1.1). Errors 3.x cannot express become "server unavailable".
    pub const fn to_v3_connack(self) -> u8 {
        match self.0 {
            0x00 => 0,
            0x84 => 1,
            0x85 => 2,
            0x86 => 4,
            0x87 | 0x8A => 5,
            _ => 3,
        }
    }

    /// The reason for an MQTT 3.x CONNACK return code.
    pub const fn from_v3_connack(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::SUCCESS,
            1 => Self::UNSUPPORTED_PROTOCOL_VERSION,
            2 => Self::CLIENT_IDENTIFIER_NOT_VALID,
            3 => Self::SERVER_UNAVAILABLE,
            4 => Self::BAD_USER_NAME_OR_PASSWORD,
            5 => Self::NOT_AUTHORIZED,
            _ => return None,
        })
    }

    /// The MQTT 3.1.1 SUBACK return code: the granted QoS or 0x80 failure.
    pub const fn to_v3_suback(self) -> u8 {
        match self.0 {
            0..=2 => self.0,
            _ => 0x80,
        }
    }
}

impl fmt::Debug for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#04x} ({})", self.0, self.name())
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:#04x})", self.name(), self.0)
    }
}

/// Reason codes each MQTT 5 packet may carry (section 2.4 table 2-6).
pub(crate) mod allowed {
    #[cfg(feature = "client")]
    pub(crate) const CONNACK: &[u8] = &[
        0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95,
        0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
    ];
    pub(crate) const PUBACK: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
    pub(crate) const PUBREL: &[u8] = &[0x00, 0x92];
    #[cfg(feature = "client")]
    pub(crate) const SUBACK: &[u8] = &[
        0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
    ];
    #[cfg(feature = "client")]
    pub(crate) const UNSUBACK: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
    pub(crate) const DISCONNECT: &[u8] = &[
        0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94,
        0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
    ];
    pub(crate) const AUTH: &[u8] = &[0x00, 0x18, 0x19];
    /// MQTT 3.1.1 SUBACK return codes.
    #[cfg(feature = "client")]
    pub(crate) const SUBACK_V3: &[u8] = &[0x00, 0x01, 0x02, 0x80];
}

#[cfg(test)]
mod tests {
    use super::ReasonCode;

    #[test]
    fn every_defined_code_and_only_those_has_its_specification_name() {
        assert_eq!(ReasonCode::SUCCESS.name(), "Success");
        assert_eq!(ReasonCode::NOT_AUTHORIZED.name(), "Not authorized");
        assert_eq!(
            ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED.name(),
            "Wildcard Subscriptions not supported"
        );
        for v in 0..=u8::MAX {
            let defined = ReasonCode::from_u8(v).is_some();
            assert_eq!(ReasonCode(v).name() != "unknown", defined, "{v:#04x}");
        }
    }
}
