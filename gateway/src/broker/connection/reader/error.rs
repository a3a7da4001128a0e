//! How a connection's reading half ends: the client's DISCONNECT, or the error that ended it
//! without one, and the reason code an MQTT 5 client is told.

use std::time::Duration;

use aviary_protocol::{DecodeError, ReasonCode};

use super::super::acks::AckError;
use crate::broker::ForwardError;
use crate::store::StoreError;

/// How the client ended the connection with a DISCONNECT.
#[derive(Debug)]
pub(in crate::broker::connection) enum Close {
    /// Normal disconnection: the will is discarded.
    Normal { expiry: Option<u32> },
    /// MQTT 5 reason 0x04: publish the will anyway.
    WithWill { expiry: Option<u32> },
}

/// Why the connection ended without a DISCONNECT from the client.
#[derive(Debug, thiserror::Error)]
pub(in crate::broker::connection) enum ConnError {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed by the client without DISCONNECT")]
    Eof,
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error("protocol error: {1}")]
    Protocol(ReasonCode, &'static str),
    #[error("keep alive timeout: nothing received for {0:?}")]
    KeepAlive(Duration),
    /// A commit failed: what it held is not acknowledged, and the client,
    /// disconnected, sends it again.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The cluster did not take a message: it is not acknowledged, and the
    /// client, disconnected, sends it again.
    #[error("{0}")]
    Cluster(#[from] ForwardError),
}

impl From<AckError> for ConnError {
    fn from(e: AckError) -> Self {
        match e {
            AckError::Store(e) => Self::Store(e),
            AckError::Cluster(e) => Self::Cluster(e),
        }
    }
}

impl ConnError {
    /// The reason to send in a DISCONNECT (MQTT 5), for errors that are
    /// the client's fault.
    pub(in crate::broker::connection) fn reason_code(&self) -> Option<ReasonCode> {
        match self {
            Self::Io(_) | Self::Eof => None,
            Self::Decode(e) => Some(match e.reason_code() {
                // Only a second CONNECT names a protocol version here, and
                // a second CONNECT is a Protocol Error [MQTT-3.1.0-2]; 0x84
                // is valid in CONNACK only (MQTT 5.0 table 3-10).
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION => ReasonCode::PROTOCOL_ERROR,
                code => code,
            }),
            Self::Protocol(code, _) => Some(*code),
            Self::KeepAlive(_) => Some(ReasonCode::KEEP_ALIVE_TIMEOUT),
            Self::Store(_) | Self::Cluster(_) => Some(ReasonCode::UNSPECIFIED_ERROR),
        }
    }
}
