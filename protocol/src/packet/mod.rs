//! The packet model: one enum for every control packet of every version,
//! and the dispatch from a fixed header to each packet's decoder and back.

use alloc::boxed::Box;

mod connect;
mod disconnect;
mod publish;
mod subscribe;

pub use connect::{ConnAck, Connect, LastWill};
pub use disconnect::{Auth, Disconnect};
pub use publish::{Ack, Publish, PublishRef};
pub use subscribe::{SubAck, Subscribe, UnsubAck, Unsubscribe};

use bytes::BytesMut;

use crate::wire::{sink, varint_len, Counter, Reader, Sink, MAX_VARINT};
use crate::{DecodeError, EncodeError, PacketType, ProtocolVersion};

/// Any MQTT control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is the packet of the same name
pub enum Packet {
    Connect(Box<Connect>),
    ConnAck(Box<ConnAck>),
    Publish(Publish),
    PubAck(Ack),
    PubRec(Ack),
    PubRel(Ack),
    PubComp(Ack),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
    Auth(Auth),
}

impl Packet {
    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Self::Connect(_) => PacketType::Connect,
            Self::ConnAck(_) => PacketType::ConnAck,
            Self::Publish(_) => PacketType::Publish,
            Self::PubAck(_) => PacketType::PubAck,
            Self::PubRec(_) => PacketType::PubRec,
            Self::PubRel(_) => PacketType::PubRel,
            Self::PubComp(_) => PacketType::PubComp,
            Self::Subscribe(_) => PacketType::Subscribe,
            Self::SubAck(_) => PacketType::SubAck,
            Self::Unsubscribe(_) => PacketType::Unsubscribe,
            Self::UnsubAck(_) => PacketType::UnsubAck,
            Self::PingReq => PacketType::PingReq,
            Self::PingResp => PacketType::PingResp,
            Self::Disconnect(_) => PacketType::Disconnect,
            Self::Auth(_) => PacketType::Auth,
        }
    }

    /// `ack` as a packet of type `packet`, which must be PUBACK, PUBREC, PUBREL or PUBCOMP
    /// (anything else makes a PUBCOMP).
    pub(crate) fn acknowledgement(packet: PacketType, ack: Ack) -> Self {
        match packet {
            PacketType::PubAck => Self::PubAck(ack),
            PacketType::PubRec => Self::PubRec(ack),
            PacketType::PubRel => Self::PubRel(ack),
            _ => Self::PubComp(ack),
        }
    }

    /// Decodes a packet body whose fixed header has been read and checked (its flags too:
    /// see [`decode`](crate::decode)). `version` is the connection's; a CONNECT carries its
    /// own.
    pub(crate) fn read(
        packet: PacketType,
        flags: u8,
        body: Reader,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let mut r = body;
        // Each side compiles only the decoders of what it receives (see the crate features).
        let p = match packet {
            #[cfg(feature = "server")]
            PacketType::Connect => Self::Connect(Box::new(Connect::read(&mut r)?)),
            #[cfg(feature = "client")]
            PacketType::ConnAck => Self::ConnAck(Box::new(ConnAck::read(&mut r, version)?)),
            // The payload is the rest of the packet: nothing can trail it.
            PacketType::Publish => {
                return Ok(Self::Publish(Publish::read(flags, &mut r, version)?))
            }
            // One read for the four: each call is a copy of the moves around it.
            PacketType::PubAck | PacketType::PubRec | PacketType::PubRel | PacketType::PubComp => {
                let ack = Ack::read(&mut r, version)?;
                Self::acknowledgement(packet, ack)
            }
            #[cfg(feature = "server")]
            PacketType::Subscribe => Self::Subscribe(Subscribe::read(&mut r, version)?),
            #[cfg(feature = "client")]
            PacketType::SubAck => Self::SubAck(SubAck::read(&mut r, version)?),
            #[cfg(feature = "server")]
            PacketType::Unsubscribe => Self::Unsubscribe(Unsubscribe::read(&mut r, version)?),
            #[cfg(feature = "client")]
            PacketType::UnsubAck => Self::UnsubAck(UnsubAck::read(&mut r, version)?),
            #[cfg(feature = "server")]
            PacketType::PingReq => Self::PingReq,
            #[cfg(feature = "client")]
            PacketType::PingResp => Self::PingResp,
            PacketType::Disconnect => Self::Disconnect(Disconnect::read(&mut r, version)?),
            PacketType::Auth if version.is_v5() => Self::Auth(Auth::read(&mut r)?),
            PacketType::Auth => return Err(DecodeError::PacketNotInVersion { packet, version }),
            // With both directions compiled in, every type has its arm above.
            #[allow(unreachable_patterns)]
            _ => return Err(DecodeError::NotReceived(packet)),
        };
        r.finish()?;
        Ok(p)
    }

    /// The first byte of the fixed header.
    fn first_byte(&self) -> u8 {
        let t = self.packet_type();
        let flags = match self {
            Self::Publish(p) => p.flags(),
            _ => t.required_flags(),
        };
        (t as u8) << 4 | flags
    }

    fn write_body<S: Sink + ?Sized>(
        &self,
        v: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        // Each side compiles only the encoders of what it sends (see the crate features).
        match self {
            #[cfg(feature = "client")]
            Self::Connect(c) => c.write(s),
            #[cfg(feature = "server")]
            Self::ConnAck(c) => c.write(v, s),
            Self::Publish(p) => p.write(v, s),
            Self::PubAck(a) | Self::PubRec(a) | Self::PubRel(a) | Self::PubComp(a) => a.write(v, s),
            #[cfg(feature = "client")]
            Self::Subscribe(p) => p.write(v, s),
            #[cfg(feature = "server")]
            Self::SubAck(p) => p.write(v, s),
            #[cfg(feature = "client")]
            Self::Unsubscribe(p) => p.write(v, s),
            #[cfg(feature = "server")]
            Self::UnsubAck(p) => p.write(v, s),
            #[cfg(feature = "client")]
            Self::PingReq => Ok(()),
            #[cfg(feature = "server")]
            Self::PingResp => Ok(()),
            Self::Disconnect(d) => d.write(v, s),
            Self::Auth(a) if v.is_v5() => a.write(s),
            Self::Auth(_) => Err(EncodeError::PacketNotInVersion {
                packet: PacketType::Auth,
                version: v,
            }),
            // With both directions compiled in, every packet has its arm above.
            #[allow(unreachable_patterns)]
            _ => Err(EncodeError::NotSent(self.packet_type())),
        }
    }

    /// Length of the variable header and payload.
    fn remaining_len(&self, v: ProtocolVersion) -> Result<usize, EncodeError> {
        let mut c = Counter::default();
        self.write_body(v, sink(&mut c))?;
        if c.0 > MAX_VARINT as usize {
            return Err(EncodeError::VarIntTooLarge(c.0));
        }
        Ok(c.0)
    }

    /// Bytes this packet takes on the wire, fixed header included.
    pub fn encoded_len(&self, v: ProtocolVersion) -> Result<usize, EncodeError> {
        let n = self.remaining_len(v)?;
        Ok(1 + varint_len(n) + n)
    }

    /// Appends the packet, as `v` encodes it, to `dst`. On error nothing is
    /// appended.
    pub fn encode(&self, v: ProtocolVersion, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let n = self.remaining_len(v)?;
        dst.reserve(1 + varint_len(n) + n);
        Sink::put_u8(dst, self.first_byte());
        Sink::put_varint(dst, n)?;
        self.write_body(v, sink(dst))
    }

    /// Appends the packet, as [`encode`](Self::encode) does, to a plain vector (the browser
    /// client's output buffer). On error nothing is appended.
    #[cfg(feature = "client")]
    pub fn encode_vec(
        &self,
        v: ProtocolVersion,
        dst: &mut alloc::vec::Vec<u8>,
    ) -> Result<(), EncodeError> {
        let n = self.remaining_len(v)?;
        dst.reserve(1 + varint_len(n) + n);
        Sink::put_u8(dst, self.first_byte());
        Sink::put_varint(dst, n)?;
        self.write_body(v, sink(dst))
    }
}

macro_rules! from_packet {
    ($($ty:ident => $variant:ident $(($wrap:path))?),*) => {$(
        impl From<$ty> for Packet {
            fn from(p: $ty) -> Self {
                Self::$variant($($wrap)?(p))
            }
        }
    )*};
}

from_packet!(
    Connect => Connect (Box::new),
    ConnAck => ConnAck (Box::new),
    Publish => Publish,
    Subscribe => Subscribe,
    SubAck => SubAck,
    Unsubscribe => Unsubscribe,
    UnsubAck => UnsubAck,
    Disconnect => Disconnect,
    Auth => Auth
);
