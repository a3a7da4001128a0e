//! The client as a state machine with no I/O, no timers and no clock of its own.
//!
//! The browser layer feeds it what happened (the socket opened, these bytes arrived, the socket
//! closed, the time is now T, the browser went offline) and carries out what it asks for
//! ([`Event::Open`], [`Event::CloseSocket`], bytes from [`Machine::take_output`], a wake-up at
//! [`Machine::poll_timeout`]). Everything about MQTT — packet ids, the in-flight window,
//! acknowledgements, keep-alive, reconnect backoff, the offline queue — is decided here, so it is
//! tested natively with simulated time (see the tests in `machine/tests.rs`).

use alloc::vec::Vec;

mod alias;
mod backoff;
mod error;
mod keepalive;
mod machine;
mod options;
mod queue;
mod session;
pub(crate) mod small_map;

use aviary_protocol::{ConnAckProperties, Publish, ReasonCode};

pub use backoff::{Backoff, Rng};
pub use error::{ErrorKind, MqttError};
pub use keepalive::{KeepAlive, KeepAliveAction};
pub use machine::Machine;
pub use options::{Options, QueueLimits, Reconnect};
pub use queue::{OfflineQueue, Queued};

/// Names one operation (publish, subscribe, unsubscribe) so its completion can be matched up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub u32);

/// How an operation completed successfully.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// QoS 0: written to the socket. QoS 1: PUBACK. QoS 2: PUBCOMP.
    Published,
    /// SUBACK: one granted QoS (as a reason code) per topic filter.
    Subscribed(Vec<ReasonCode>),
    /// UNSUBACK: the reason codes (MQTT 5; empty for 3.1.1).
    Unsubscribed(Vec<ReasonCode>),
}

/// A successful CONNACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    /// The broker resumed a stored session.
    pub session_present: bool,
    /// MQTT 5 CONNACK properties (empty for 3.1.1).
    pub properties: ConnAckProperties,
}

/// What the machine asks for or reports, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Open a WebSocket (there is none open). `attempt` counts from 1; later ones are reconnects.
    Open {
        /// 1 for the first connection, 2 and up for reconnects.
        attempt: u32,
    },
    /// Close the WebSocket now, after sending any pending output. The machine has already moved
    /// on, so the socket's own close event must not be reported back.
    CloseSocket,
    /// The broker accepted the connection.
    Connected(Connected),
    /// MQTT 5 enhanced authentication: the broker's AUTH 0x18 (Continue authentication)
    /// challenge, during the handshake. The application answers with
    /// [`Machine::answer_auth`] (or gives up with [`Machine::fail_auth`]) naming the same
    /// `attempt`, so that an answer arriving after its connection was lost is dropped.
    AuthChallenge {
        /// The connection attempt the challenge belongs to.
        attempt: u32,
        /// The Authentication Method (the one the CONNECT named).
        method: alloc::string::String,
        /// The broker's Authentication Data.
        data: bytes::Bytes,
    },
    /// A message arrived (its topic alias already resolved).
    Message(Publish),
    /// An operation finished.
    Completed {
        /// The operation.
        token: Token,
        /// How it ended.
        result: Result<Done, MqttError>,
    },
    /// A connection attempt or connection ended; `None` when the application ended it.
    Closed(Option<MqttError>),
    /// A connection that was up has been lost (MQTT.js's `offline` event).
    Offline,
    /// The connection is gone and the next attempt, number `attempt`, starts in `delay_ms`
    /// (the backoff just chosen), unless the browser's `online` event cuts the wait short.
    ReconnectScheduled {
        /// The number the next attempt will have (2 and up).
        attempt: u32,
        /// Milliseconds until it starts.
        delay_ms: u64,
    },
    /// Something went wrong that the application should hear about even if it awaits nothing:
    /// a refused CONNACK, a protocol violation, a DISCONNECT with an error from the broker.
    Error(MqttError),
    /// The client stopped for good: `disconnect()` was called or reconnecting is disabled.
    Ended,
}
