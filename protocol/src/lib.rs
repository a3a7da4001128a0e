//! MQTT 3.1, 3.1.1 and 5.0 control packets and their codec.
//!
//! One packet model serves every version: MQTT 3.x packets are MQTT 5
//! packets without properties, and 3.x return codes are mapped onto MQTT 5
//! reason codes. [`decode`] takes whole packets off a receive buffer and
//! waits for more when one is incomplete; [`Packet::encode`] writes one.
//! Strings and payloads are slices of the receive buffer (`Bytes`), so a
//! broker can hand one PUBLISH payload to many subscribers without copying.
//!
//! No I/O and no async runtime: the crate builds for `wasm32-unknown-unknown`
//! and serves both the Aviary gateway and its browser client.
//!
//! ```
//! use aviary_protocol::{decode, Packet, ProtocolVersion, Publish, QoS};
//! use bytes::BytesMut;
//!
//! let mut publish = Publish::new("pets/1/location", &b"{}"[..]);
//! publish.qos = QoS::AtLeastOnce;
//! publish.packet_id = std::num::NonZeroU16::new(7);
//! let mut buf = BytesMut::new();
//! Packet::Publish(publish.clone()).encode(ProtocolVersion::V5, &mut buf).unwrap();
//!
//! let decoded = decode(&mut buf, ProtocolVersion::V5, 1024).unwrap();
//! assert_eq!(decoded, Some(Packet::Publish(publish)));
//! assert!(buf.is_empty());
//! ```

// No `std`: the codec needs only `alloc`, and the browser client's package leaves the standard
// library out entirely (its panic machinery and `core::fmt` were 2.3 KiB of the gzipped npm
// package; see wasm-client/src/lib.rs). Tests use `std`.
#![cfg_attr(not(test), no_std)]
// Without a direction (no `client`, no `server`) only the packets that go both ways are left,
// and some shared helpers go unused; the builds that matter, `client` and `full`, stay strict.
#![cfg_attr(not(any(feature = "client", feature = "server")), allow(unused))]

extern crate alloc;

mod codec;
mod error;
mod packet;
pub mod properties;
mod reason;
mod text;
pub mod topic;
mod types;
mod wire;

pub use bytestring::ByteString;
#[cfg(feature = "client")]
pub use codec::decode_slice;
pub use codec::{decode, short_puback, Codec, MAX_PACKET_SIZE};
pub use error::{DecodeError, EncodeError};
pub use packet::{
    Ack, Auth, ConnAck, Connect, Disconnect, LastWill, Packet, Publish, PublishRef, SubAck,
    Subscribe, UnsubAck, Unsubscribe,
};
pub use properties::{
    AckProperties, AuthProperties, ConnAckProperties, ConnectProperties, DisconnectProperties,
    MessageProperties, PublishProperties, PublishPropertiesRef, Sparse, SubscribeProperties,
    UserProperty, WillProperties,
};
pub use reason::ReasonCode;
pub use topic::{matches, TopicError, TopicFilter, TopicName};
pub use types::{PacketType, ProtocolVersion, QoS, RetainHandling, SubscriptionOptions};
pub use wire::MAX_VARINT;
