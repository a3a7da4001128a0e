//! The one error type the client reports, to Rust callers and (as `MqttError`) to JavaScript.
//!
//! Programs branch on [`ErrorKind`] (a stable code such as `SUBSCRIBE_FAILED`) and on the MQTT 5
//! reason code when the broker sent one; people read the message. Messages are built only when
//! something fails, so the happy path never formats text.

use alloc::string::String;
use core::fmt;

use aviary_protocol::ReasonCode;

/// What went wrong, as a stable code. The JavaScript API passes a kind to JavaScript as its
/// number (`CODES` in `wasm-client/npm/api.js` lists the codes in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The broker refused the connection: CONNACK carried an error reason code.
    ConnectionRefused = 0,
    /// The transport did not open, or CONNACK did not arrive, within `connectTimeout`.
    ConnectTimeout = 1,
    /// The broker did not answer a PINGREQ within one keep-alive interval.
    KeepAliveTimeout = 2,
    /// The WebSocket closed or failed.
    ConnectionLost = 3,
    /// The broker closed the connection with a DISCONNECT packet.
    ServerDisconnect = 4,
    /// The broker sent a malformed packet or broke the protocol.
    Protocol = 5,
    /// PUBACK, PUBREC or PUBCOMP carried an error reason code.
    PublishFailed = 6,
    /// SUBACK refused at least one topic filter.
    SubscribeFailed = 7,
    /// UNSUBACK carried an error reason code.
    UnsubscribeFailed = 8,
    /// The offline queue was full: this message was dropped to make room (oldest first).
    QueueFull = 9,
    /// The client was ended (`end()` / `disconnect()`) before the operation completed.
    ClientEnded = 10,
    /// The caller passed something invalid: a bad topic, QoS, option or an oversized packet.
    InvalidArgument = 11,
}

impl ErrorKind {
    /// The stable code, as JavaScript sees it in `error.code`.
    pub const fn code(self) -> &'static str {
        match self {
            Self::ConnectionRefused => "CONNECTION_REFUSED",
            Self::ConnectTimeout => "CONNECT_TIMEOUT",
            Self::KeepAliveTimeout => "KEEPALIVE_TIMEOUT",
            Self::ConnectionLost => "CONNECTION_LOST",
            Self::ServerDisconnect => "SERVER_DISCONNECT",
            Self::Protocol => "PROTOCOL_ERROR",
            Self::PublishFailed => "PUBLISH_FAILED",
            Self::SubscribeFailed => "SUBSCRIBE_FAILED",
            Self::UnsubscribeFailed => "UNSUBSCRIBE_FAILED",
            Self::QueueFull => "QUEUE_FULL",
            Self::ClientEnded => "CLIENT_ENDED",
            Self::InvalidArgument => "INVALID_ARGUMENT",
        }
    }
}

/// An error with its kind, the broker's reason code if any, and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// The MQTT reason code the broker sent (MQTT 3.1.1 CONNACK return codes are mapped to
    /// their MQTT 5 equivalents).
    pub reason_code: Option<ReasonCode>,
    /// A description for people, including the broker's reason string when it sent one.
    pub message: String,
}

impl MqttError {
    /// An error without a reason code.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            reason_code: None,
            message: message.into(),
        }
    }

    /// An error caused by a reason code from the broker, with its optional reason string.
    pub fn from_reason(kind: ErrorKind, code: ReasonCode, reason: Option<&str>) -> Self {
        let mut message = String::from(code.name());
        if let Some(reason) = reason {
            message.push_str(": ");
            message.push_str(reason);
        }
        Self {
            kind,
            reason_code: Some(code),
            message,
        }
    }
}

impl fmt::Display for MqttError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.message)
    }
}

impl core::error::Error for MqttError {}
