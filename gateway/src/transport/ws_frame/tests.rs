//! The frame decoder against hand-built client frames: what RFC 6455
//! lets a client send, and what a server must refuse.

use super::*;

const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

/// A client frame: masked, as RFC 6455 requires.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    push_header(&mut out, opcode, payload.len());
    if !fin {
        out[0] &= !FIN;
    }
    out[1] |= MASKED;
    out.extend_from_slice(&MASK);
    let start = out.len();
    out.extend_from_slice(payload);
    unmask(&mut out[start..], MASK, 0);
    out
}

fn binary(payload: &[u8]) -> Vec<u8> {
    frame(true, OP_BINARY, payload)
}

/// Decodes `raw` in one call: the data, the replies, closed or not.
fn decode_all(dec: &mut Decoder, raw: &[u8]) -> Result<(Vec<u8>, Vec<u8>, bool), Violation> {
    let mut buf = raw.to_vec();
    let mut replies = Vec::new();
    let d = dec.decode(&mut buf, &mut replies)?;
    Ok((buf[..d.data].to_vec(), replies, d.closed))
}

fn refused(raw: &[u8]) -> Violation {
    decode_all(&mut Decoder::new(1 << 20), raw).expect_err("must be refused")
}

#[test]
fn unmasking_in_pieces_equals_unmasking_at_once() {
    let plain: Vec<u8> = (0..=255).collect();
    let mut whole = plain.clone();
    unmask(&mut whole, MASK, 0);
    let mut pieces = plain.clone();
    let mut phase = 0;
    for range in [0..3, 3..4, 4..17, 17..100, 100..256] {
        phase = unmask(&mut pieces[range], MASK, phase);
    }
    assert_eq!(pieces, whole);
    unmask(&mut whole, MASK, 0);
    assert_eq!(whole, plain, "masking twice gives the data back");
}

#[test]
fn server_headers_use_the_shortest_length() {
    for (len, n, b1) in [(0, 2, 0), (125, 2, 125), (126, 4, 126), (65_535, 4, 126)] {
        let (h, got) = header(OP_BINARY, len);
        assert_eq!((got, h[0], h[1]), (n, 0x82, b1), "length {len}");
    }
    let (h, n) = header(OP_BINARY, 65_536);
    assert_eq!((n, h[1]), (10, 127));
    assert_eq!(u64::from_be_bytes(h[2..10].try_into().unwrap()), 65_536);
}

#[test]
fn frames_are_concatenated_and_may_arrive_byte_by_byte() {
    let big: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
    let mid = vec![7u8; 300];
    let mut raw = binary(b"hello ");
    raw.extend(binary(&mid));
    raw.extend(binary(&big));
    raw.extend(binary(b""));
    let mut want = b"hello ".to_vec();
    want.extend(&mid);
    want.extend(&big);

    let (data, replies, closed) = decode_all(&mut Decoder::new(1 << 20), &raw).unwrap();
    assert_eq!((data == want, replies.len(), closed), (true, 0, false));

    let mut dec = Decoder::new(1 << 20);
    let mut got = Vec::new();
    for byte in &raw {
        got.extend(decode_all(&mut dec, &[*byte]).unwrap().0);
    }
    assert!(got == want, "byte by byte");
}

#[test]
fn fragments_join_and_control_frames_may_come_between() {
    let mut raw = frame(false, OP_BINARY, b"ab");
    raw.extend(frame(true, OP_PING, b"hi"));
    raw.extend(frame(false, OP_CONTINUATION, b"cd"));
    raw.extend(frame(true, OP_PONG, b"ignored"));
    raw.extend(frame(true, OP_CONTINUATION, b"ef"));
    let (data, replies, closed) = decode_all(&mut Decoder::new(100), &raw).unwrap();
    assert_eq!(data, b"abcdef");
    assert_eq!(
        replies,
        [0x8A, 2, b'h', b'i'],
        "pong echoes the ping, unmasked"
    );
    assert!(!closed);
}

#[test]
fn close_is_answered_with_its_code_and_ends_decoding() {
    let mut raw = binary(b"last");
    raw.extend(frame(true, OP_CLOSE, b"\x03\xE8bye"));
    raw.extend(binary(b"after close"));
    let (data, replies, closed) = decode_all(&mut Decoder::new(100), &raw).unwrap();
    assert_eq!((data.as_slice(), closed), (&b"last"[..], true));
    assert_eq!(replies, [0x88, 2, 0x03, 0xE8]);

    let (_, replies, closed) =
        decode_all(&mut Decoder::new(100), &frame(true, OP_CLOSE, b"")).unwrap();
    assert_eq!((replies.as_slice(), closed), (&[0x88, 0][..], true));
}

#[test]
fn bad_close_frames_are_refused() {
    let code = |payload: &[u8]| refused(&frame(true, OP_CLOSE, payload)).code;
    assert_eq!(code(b"\x03"), code::PROTOCOL_ERROR, "1-byte payload");
    assert_eq!(
        code(b"\x03\xED"),
        code::PROTOCOL_ERROR,
        "1005 is never sent"
    );
    assert_eq!(
        code(b"\x03\xE8\xFF"),
        code::INVALID_PAYLOAD,
        "reason not UTF-8"
    );
}

#[test]
fn text_frames_are_refused_with_1003() {
    let v = refused(&frame(true, OP_TEXT, b"{}"));
    assert_eq!(v.code, code::UNSUPPORTED_DATA);
    // Refused at the header, before its payload arrives.
    let v = refused(&frame(true, OP_TEXT, &[0; 500])[..2]);
    assert_eq!(v.code, code::UNSUPPORTED_DATA);
}

#[test]
fn frames_a_server_must_refuse() {
    let mut unmasked = binary(b"x");
    unmasked[1] &= !MASKED;
    let mut reserved_bit = binary(b"x");
    reserved_bit[0] |= 0x40;
    let mut top_bit_length = vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1];
    top_bit_length.extend_from_slice(&MASK);
    let mut binary_inside_message = frame(false, OP_BINARY, b"a");
    binary_inside_message.extend(binary(b"b"));
    for (raw, what) in [
        (unmasked, "unmasked"),
        (reserved_bit, "reserved bit"),
        (frame(true, 0x3, b""), "reserved data opcode"),
        (frame(true, 0xB, b""), "reserved control opcode"),
        (frame(false, OP_PING, b""), "fragmented ping"),
        (frame(true, OP_PING, &[0; 126]), "ping over 125 bytes"),
        (frame(true, OP_CONTINUATION, b"a"), "continuation alone"),
        (binary_inside_message, "message inside a message"),
        (top_bit_length, "64-bit length with the top bit"),
    ] {
        assert_eq!(refused(&raw).code, code::PROTOCOL_ERROR, "{what}");
    }
}

#[test]
fn frames_and_messages_over_the_maximum_are_refused() {
    let mut dec = Decoder::new(10);
    assert_eq!(decode_all(&mut dec, &binary(&[1; 10])).unwrap().0, [1; 10]);
    let v = decode_all(&mut dec, &binary(&[1; 11])).unwrap_err();
    assert_eq!(v.code, code::TOO_BIG);

    let mut raw = frame(false, OP_BINARY, &[1; 6]);
    raw.extend(frame(true, OP_CONTINUATION, &[1; 6]));
    let v = decode_all(&mut Decoder::new(10), &raw).unwrap_err();
    assert_eq!(
        v.code,
        code::TOO_BIG,
        "the message, not each frame, is too big"
    );
}
