//! Decoding a PUBLISH allocates nothing but its message properties, if any: the topic and
//! the payload are slices of the receive buffer. Counted with `dhat` in testing mode; this
//! file is its own test binary, with a single test, so the counting global
//! allocator sees nothing else.
//!
//! One subtlety of `bytes`: the first time a freshly built, `Vec`-backed
//! `BytesMut` is split, it allocates one small control block to become
//! shareable; every later split of that buffer is free. A connection's read
//! buffer pays this once, not per packet, so the steady state (a buffer that
//! has been split before) must be exactly zero, and the very first decode
//! exactly that one block.
//!
//! The one allocation a PUBLISH may make is its application message's properties (content
//! type, expiry...), which are boxed so that a PUBLISH without them, nearly every one, is
//! small; a topic alias alone allocates nothing. A client-only build keeps them inline.

use std::num::NonZeroU16;

use aviary_protocol::{decode, Packet, ProtocolVersion, Publish, QoS, MAX_PACKET_SIZE};
use bytes::BytesMut;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// A QoS 1 PUBLISH with a 64-byte payload, as `version` encodes it, with a topic alias
/// (`alias`) and message properties (`message`).
fn publish(version: ProtocolVersion, alias: bool, message: bool) -> Vec<u8> {
    let mut p = Publish::new("pets/1/location", vec![b'x'; 64]);
    p.qos = QoS::AtLeastOnce;
    p.packet_id = NonZeroU16::new(1);
    if alias {
        p.properties.topic_alias = NonZeroU16::new(3);
    }
    if message {
        // Properties that are not lists decode without a `Vec`.
        let m = p.properties.message.to_mut();
        m.message_expiry_interval = Some(30);
        m.payload_format_indicator = Some(true);
        m.content_type = Some("application/json".into());
    }
    let mut buf = BytesMut::new();
    Packet::Publish(p).encode(version, &mut buf).unwrap();
    buf.to_vec()
}

/// Heap blocks allocated while decoding one PUBLISH off `buf`.
fn allocations_to_decode(buf: &mut BytesMut, version: ProtocolVersion) -> u64 {
    let before = dhat::HeapStats::get().total_blocks;
    let packet = decode(buf, version, MAX_PACKET_SIZE);
    let after = dhat::HeapStats::get().total_blocks;
    assert!(matches!(packet, Ok(Some(Packet::Publish(_)))), "{packet:?}");
    drop(packet);
    after - before
}

#[test]
fn decoding_a_publish_does_not_allocate() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let cases = [
        (ProtocolVersion::V3_1_1, false, false),
        (ProtocolVersion::V5, false, false),
        (ProtocolVersion::V5, true, false),
        (ProtocolVersion::V5, true, true),
    ];
    for (version, alias, message) in cases {
        let one = publish(version, alias, message);
        // The message's properties, boxed (by a build with the server side), are the only
        // block a PUBLISH's decode allocates.
        let boxed = u64::from(message && cfg!(feature = "server"));
        if !alias && !message {
            assert_eq!(
                one.len(),
                2 + 2 + 15 + 2 + usize::from(version.is_v5()) + 64
            );
        }
        // A read buffer holding three packets, as after one TCP read.
        let mut buf = BytesMut::with_capacity(one.len() * 3);
        for _ in 0..3 {
            buf.extend_from_slice(&one);
        }
        let first = allocations_to_decode(&mut buf, version);
        dhat::assert_eq!(
            first,
            1 + boxed,
            "first split of a fresh buffer ({version})"
        );
        for _ in 0..2 {
            let n = allocations_to_decode(&mut buf, version);
            dhat::assert_eq!(n, boxed, "PUBLISH decode allocated ({version})");
        }
        assert!(buf.is_empty());
    }
}
