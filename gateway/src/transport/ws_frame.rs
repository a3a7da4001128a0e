//! RFC 6455 framing for the server side of MQTT over WebSocket, with no
//! buffer of its own.
//!
//! [`Decoder`] works in place: the caller reads raw bytes from the socket
//! straight into the buffer MQTT decodes from, and the decoder strips the
//! frame headers and unmasks the payloads there, moving binary data to the
//! front. Between frames it keeps only the few bytes of a header that
//! arrived split across reads, so an idle WebSocket costs no more than an
//! idle TCP connection. Control frames (ping, close) are collected aside,
//! briefly, and answered with complete frames the caller sends.
//!
//! What a server must refuse (RFC 6455 section 5): unmasked client frames,
//! reserved bits or opcodes, control frames that are fragmented or longer
//! than 125 bytes, continuations without a message and messages that start
//! inside another. MQTT adds: text frames are refused with 1003 [MQTT-6.0.0-1].

use std::fmt;

/// Close codes (RFC 6455 section 7.4.1).
pub(crate) mod code {
    /// Normal closure.
    pub(crate) const NORMAL: u16 = 1000;
    /// The peer broke the protocol.
    pub(crate) const PROTOCOL_ERROR: u16 = 1002;
    /// A frame type we do not accept: for MQTT, text.
    pub(crate) const UNSUPPORTED_DATA: u16 = 1003;
    /// A close reason that is not UTF-8.
    pub(crate) const INVALID_PAYLOAD: u16 = 1007;
    /// A frame or message larger than we accept.
    pub(crate) const TOO_BIG: u16 = 1009;
}

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;
const FIN: u8 = 0x80;
const RSV: u8 = 0x70;
const MASKED: u8 = 0x80;
/// Longest payload of a control frame (RFC 6455 section 5.5).
const MAX_CONTROL: u64 = 125;
/// Longest frame header: 2 bytes, 8 of extended length, 4 of mask.
const MAX_HEADER: usize = 14;

/// A frame the client had no right to send: answered with a close frame
/// carrying `code`, then the connection ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    /// The close code to send.
    pub(crate) code: u16,
    /// What was wrong, for the log and the close reason.
    pub(crate) reason: &'static str,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebSocket close {}: {}", self.code, self.reason)
    }
}

fn violation(code: u16, reason: &'static str) -> Violation {
    Violation { code, reason }
}

fn protocol(reason: &'static str) -> Violation {
    violation(code::PROTOCOL_ERROR, reason)
}

/// What one call to [`Decoder::decode`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decoded {
    /// Binary payload bytes, now at the start of the buffer.
    pub(crate) data: usize,
    /// The client's close frame arrived (its reply is queued): nothing
    /// after it counts.
    pub(crate) closed: bool,
}

/// Incremental, in-place decoder of client frames. Its state is a few
/// dozen bytes inline: it lives as long as the connection.
#[derive(Debug)]
pub(crate) struct Decoder {
    /// Payload bytes of the current frame still to come.
    left: u64,
    /// Payload of the control frame being read; empty (no allocation)
    /// otherwise.
    control: Vec<u8>,
    /// Largest frame payload and largest message.
    max: u32,
    /// Bytes of the current binary message so far (at most `max`).
    message: u32,
    mask: [u8; 4],
    /// Header bytes received so far (a header may arrive in pieces).
    header: [u8; MAX_HEADER],
    header_len: u8,
    /// Reading a header, not a payload.
    in_header: bool,
    /// Index into `mask` of the next payload byte.
    phase: u8,
    opcode: u8,
    /// A binary message whose last frame has not come yet.
    in_message: bool,
}

impl Decoder {
    /// A decoder that refuses frames and messages above `max` bytes.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            left: 0,
            control: Vec::new(),
            max: u32::try_from(max).unwrap_or(u32::MAX),
            message: 0,
            mask: [0; 4],
            header: [0; MAX_HEADER],
            header_len: 0,
            in_header: true,
            phase: 0,
            opcode: 0,
            in_message: false,
        }
    }

    /// Decodes the raw bytes in `buf`: binary payload, unmasked, is moved
    /// to the front of `buf`; answers to control frames (pong, the close
    /// reply) are appended to `replies` as whole frames. Stops at the
    /// client's close frame.
    pub(crate) fn decode(
        &mut self,
        buf: &mut [u8],
        replies: &mut Vec<u8>,
    ) -> Result<Decoded, Violation> {
        let (mut read, mut data) = (0, 0);
        while read < buf.len() {
            if self.in_header {
                read += self.take_header(&buf[read..])?;
                if !self.in_header && self.left == 0 && self.frame_done(replies)? {
                    return Ok(Decoded { data, closed: true });
                }
                continue;
            }
            let left = self.left;
            let n = left.min((buf.len() - read) as u64) as usize;
            let chunk = &mut buf[read..read + n];
            self.phase = unmask(chunk, self.mask, self.phase);
            if self.opcode >= OP_CLOSE {
                self.control.extend_from_slice(chunk);
            } else {
                buf.copy_within(read..read + n, data);
                data += n;
            }
            read += n;
            self.left = left - n as u64;
            if self.left == 0 && self.frame_done(replies)? {
                return Ok(Decoded { data, closed: true });
            }
        }
        Ok(Decoded {
            data,
            closed: false,
        })
    }

    /// Takes header bytes from `raw`; returns how many. Once the header is
    /// whole it is checked and the payload begins.
    fn take_header(&mut self, raw: &[u8]) -> Result<usize, Violation> {
        let mut used = 0;
        loop {
            let have = usize::from(self.header_len);
            let need = if have < 2 {
                2
            } else {
                header_len(self.header[1])
            };
            let n = (need - have).min(raw.len() - used);
            self.header[have..have + n].copy_from_slice(&raw[used..used + n]);
            used += n;
            self.header_len += n as u8;
            if usize::from(self.header_len) < need {
                return Ok(used);
            }
            if need == 2 {
                // The first two bytes say what the rest is: check them now,
                // before waiting for a length that may never come.
                self.check_start()?;
                continue;
            }
            self.start_payload()?;
            return Ok(used);
        }
    }

    /// Checks the first two bytes of a header.
    fn check_start(&mut self) -> Result<(), Violation> {
        let [b0, b1, ..] = self.header;
        let opcode = b0 & 0x0F;
        if b0 & RSV != 0 {
            return Err(protocol("reserved bits set without an extension"));
        }
        if b1 & MASKED == 0 {
            return Err(protocol("client frames must be masked"));
        }
        match opcode {
            OP_TEXT => {
                return Err(violation(
                    code::UNSUPPORTED_DATA,
                    "MQTT needs binary frames [MQTT-6.0.0-1]",
                ))
            }
            OP_CLOSE | OP_PING | OP_PONG => {
                if b0 & FIN == 0 {
                    return Err(protocol("fragmented control frame"));
                }
                if u64::from(b1 & 0x7F) > MAX_CONTROL {
                    return Err(protocol("control frame longer than 125 bytes"));
                }
            }
            OP_BINARY if self.in_message => {
                return Err(protocol("new message inside a fragmented one"));
            }
            OP_CONTINUATION if !self.in_message => {
                return Err(protocol("continuation frame without a message"));
            }
            OP_BINARY | OP_CONTINUATION => {}
            _ => return Err(protocol("reserved opcode")),
        }
        self.opcode = opcode;
        Ok(())
    }

    /// The header is whole: reads the length and mask, checks the limits.
    fn start_payload(&mut self) -> Result<(), Violation> {
        let h = &self.header[..usize::from(self.header_len)];
        let (len, mask_at) = match h[1] & 0x7F {
            126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
            127 => {
                let len = u64::from_be_bytes(h[2..10].try_into().expect("8 bytes"));
                if len >> 63 != 0 {
                    return Err(protocol("frame length with the top bit set"));
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        self.mask.copy_from_slice(&h[mask_at..mask_at + 4]);
        self.phase = 0;
        self.header_len = 0;
        if self.opcode < OP_CLOSE {
            if self.opcode == OP_BINARY {
                self.message = 0;
            }
            let message = u64::from(self.message) + len;
            if message > u64::from(self.max) {
                return Err(violation(code::TOO_BIG, "message larger than the maximum"));
            }
            self.message = message as u32;
            self.in_message = self.header[0] & FIN == 0;
        }
        self.left = len;
        self.in_header = false;
        Ok(())
    }

    /// The current frame's payload is complete. True for a close frame.
    fn frame_done(&mut self, replies: &mut Vec<u8>) -> Result<bool, Violation> {
        self.in_header = true;
        let payload = std::mem::take(&mut self.control);
        match self.opcode {
            OP_PING => {
                push_header(replies, OP_PONG, payload.len());
                replies.extend_from_slice(&payload);
                Ok(false)
            }
            OP_CLOSE => {
                let code = close_code(&payload)?;
                match code {
                    Some(code) => push_close(replies, code, ""),
                    None => push_header(replies, OP_CLOSE, 0),
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// Header length once its second byte is known (client frames are masked).
fn header_len(b1: u8) -> usize {
    let extended = match b1 & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + extended + 4
}

/// The code of a client's close frame, checked: `None` for an empty one.
fn close_code(payload: &[u8]) -> Result<Option<u16>, Violation> {
    let (code, reason) = match payload {
        [] => return Ok(None),
        [_] => return Err(protocol("close frame with a 1-byte payload")),
        [hi, lo, reason @ ..] => (u16::from_be_bytes([*hi, *lo]), reason),
    };
    // Codes an endpoint may send (RFC 6455 section 7.4): 1000-1003,
    // 1007-1014, and the registered and private ranges 3000-4999.
    let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
    if !valid {
        return Err(protocol("invalid close code"));
    }
    if std::str::from_utf8(reason).is_err() {
        return Err(violation(
            code::INVALID_PAYLOAD,
            "close reason is not UTF-8",
        ));
    }
    Ok(Some(code))
}

/// XORs `buf` with `mask`, starting at mask byte `phase`; returns the
/// phase for the byte after `buf`. Eight bytes at a time: this runs over
/// every byte a client sends.
pub(crate) fn unmask(buf: &mut [u8], mask: [u8; 4], phase: u8) -> u8 {
    let p = usize::from(phase);
    let m: [u8; 4] = std::array::from_fn(|i| mask[(p + i) % 4]);
    let wide = u64::from_ne_bytes([m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes(chunk.try_into().expect("8 bytes")) ^ wide;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= m[i % 4];
    }
    ((p + buf.len()) % 4) as u8
}

/// Appends the header of an unmasked, final server frame.
pub(crate) fn push_header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    let (header, n) = header(opcode, len);
    out.extend_from_slice(&header[..n]);
}

/// The header of an unmasked, final server frame, and its length.
pub(crate) fn header(opcode: u8, len: usize) -> ([u8; 10], usize) {
    let mut h = [0u8; 10];
    h[0] = FIN | opcode;
    match len {
        0..=125 => {
            h[1] = len as u8;
            (h, 2)
        }
        126..=0xFFFF => {
            h[1] = 126;
            h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            (h, 4)
        }
        _ => {
            h[1] = 127;
            h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            (h, 10)
        }
    }
}

/// Appends a close frame with `code` and a short `reason`.
pub(crate) fn push_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    // A control frame holds at most 125 bytes: 2 of code, 123 of reason.
    let reason = &reason.as_bytes()[..reason.len().min(123)];
    push_header(out, OP_CLOSE, 2 + reason.len());
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(reason);
}

/// The opcode of a binary frame, for the sender.
pub(crate) const BINARY: u8 = OP_BINARY;

#[cfg(test)]
mod tests;
