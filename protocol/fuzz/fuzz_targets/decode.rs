//! Fuzz target: arbitrary bytes through the incremental decoder, with a
//! round-trip oracle on every packet it accepts.
//!
//! The first input byte picks the connection's starting protocol version
//! (bits 0-1) and the maximum packet size (bits 2-4); the rest is the byte
//! stream. Packets are taken off the buffer with a [`Codec`], so a CONNECT
//! switches the version of the packets after it, as on a real connection.
//! Decoding must never panic; when it yields a packet, that packet must have
//! consumed a non-empty prefix, its `encoded_len` must match what `encode`
//! writes, and decoding the re-encoded bytes must give the same packet.

#![no_main]

use aviary_protocol::{decode, Codec, ProtocolVersion, MAX_PACKET_SIZE};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

/// Maximum packet sizes to try: tiny ones exercise the early size check.
const MAX_SIZES: [u32; 8] = [1, 2, 5, 16, 127, 128, 4096, MAX_PACKET_SIZE];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let version = match selector & 0b11 {
        0 => ProtocolVersion::V3_1,
        1 => ProtocolVersion::V3_1_1,
        _ => ProtocolVersion::V5,
    };
    let max = MAX_SIZES[usize::from((selector >> 2) & 0b111)];
    let mut codec = Codec::new(version, max);
    let mut buf = BytesMut::from(stream);
    loop {
        let before = buf.len();
        let v = codec.version;
        match codec.decode(&mut buf) {
            Ok(Some(packet)) => {
                let consumed = before - buf.len();
                assert!(consumed >= 2, "a packet is at least two bytes");
                assert!(
                    consumed <= max as usize,
                    "decoded a packet over the maximum"
                );
                let mut out = BytesMut::new();
                packet
                    .encode(v, &mut out)
                    .expect("a decoded packet re-encodes");
                assert_eq!(packet.encoded_len(v), Ok(out.len()), "encoded_len");
                let again = decode(&mut out, v, MAX_PACKET_SIZE);
                assert_eq!(again, Ok(Some(packet)), "round trip in MQTT {v}");
                assert!(out.is_empty(), "re-encoded packet left bytes behind");
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "Ok(None) consumed bytes");
                break;
            }
            Err(e) => {
                // Exercised for panics only: every error must render and map.
                let _ = e.to_string();
                let _ = e.reason_code();
                break;
            }
        }
    }
});
