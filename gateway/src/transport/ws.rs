//! MQTT over WebSocket as a byte stream (MQTT 5.0 section 6).
//!
//! [`WsStream`] turns an upgraded connection into `AsyncRead + AsyncWrite`
//! carrying the payload of binary frames, so the one connection handler
//! serves it exactly as it serves TCP. Frames are not packets: incoming
//! binary frames are concatenated (a packet may span frames, a frame may
//! hold several packets); outgoing bytes are sent on flush as binary
//! frames holding whole packets, many per frame up to a bound, or exactly
//! one per frame for clients that need it.
//!
//! Memory: most connections are idle, so the WebSocket layer holds no
//! buffer while idle. Reads go straight into the caller's buffer and are
//! unframed and unmasked there ([`ws_frame::Decoder`]); outgoing bytes are
//! buffered only until they are sent. Pings are answered with pongs, the
//! client's close with a close, a text frame with close 1003.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use aviary_protocol::MAX_VARINT;
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::ws_frame::{self, code, Decoder};

/// A WebSocket carrying MQTT, seen as a byte stream.
#[derive(Debug)]
pub struct WsStream<S> {
    io: S,
    decoder: Decoder,
    /// What is waiting to be sent; allocated while there is some.
    out: Option<Box<Outgoing>>,
    /// Largest outgoing frame when coalescing.
    max_frame: u32,
    /// Several packets per frame, up to `max_frame` bytes.
    coalesce: bool,
    state: State,
}

/// Bytes on their way out.
#[derive(Debug, Default)]
struct Outgoing {
    /// Written and not yet sent; the front `frame_left` of them are the
    /// payload of the frame being sent.
    wr: BytesMut,
    frame_left: usize,
    /// Header of the frame being sent, and how much of it is out.
    header: [u8; 10],
    header_len: u8,
    header_sent: u8,
    /// Whole control frames (pongs, close), sent before the next data frame.
    control: Vec<u8>,
}

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// The client closed; our reply is queued or sent. Reads end.
    PeerClosed,
    /// We sent (or queued) our own close. Reads end.
    Closing,
    /// The client broke the protocol: after our close frame with this
    /// code is out, reads fail.
    Failed(u16),
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// Wraps an upgraded connection. Incoming frames and messages above
    /// `max_message` bytes close the socket with 1009.
    pub fn new(io: S, coalesce: bool, max_frame: usize, max_message: usize) -> Self {
        Self {
            io,
            decoder: Decoder::new(max_message),
            out: None,
            max_frame: u32::try_from(max_frame).unwrap_or(u32::MAX),
            coalesce,
            state: State::Open,
        }
    }

    /// Sends what is pending: the rest of the current data frame, control
    /// frames, then the buffered bytes as data frames. After a close
    /// nothing but control frames goes out.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(out) = self.out.as_deref_mut() else {
            return Poll::Ready(Ok(()));
        };
        loop {
            if out.header_sent < out.header_len || out.frame_left > 0 {
                ready!(out.poll_frame(&mut self.io, cx))?;
            } else if !out.control.is_empty() {
                let n = ready!(Pin::new(&mut self.io).poll_write(cx, &out.control))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                out.control.drain(..n);
            } else if !out.wr.is_empty() && self.state == State::Open {
                let limit = if self.coalesce {
                    self.max_frame as usize
                } else {
                    0
                };
                out.start_frame(limit);
            } else {
                // All out: give the buffers back rather than keep them idle.
                self.out = None;
                return Poll::Ready(Ok(()));
            }
        }
    }

    /// Whether control frames are waiting.
    fn control_pending(&self) -> bool {
        self.out.as_ref().is_some_and(|o| !o.control.is_empty())
    }

    /// Queues our close frame, unless a close was already queued or sent.
    fn queue_close(&mut self, code: u16, next: State) {
        if self.state == State::Open {
            let out = self.out.get_or_insert_with(Box::default);
            ws_frame::push_close(&mut out.control, code, "");
            self.state = next;
        }
    }

    /// Reads raw bytes into `buf` and unframes them there. True if data
    /// was added; false if more is needed or the stream changed state.
    fn poll_read_frames(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<bool>> {
        // Straight into the caller's buffer, which may be uninitialised: the socket's own
        // read fills it (no zeroing first), and the frames are unmasked and joined in place.
        // How much the caller offers is its business (the connection's reader adapts it to
        // the traffic).
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.io).poll_read(cx, buf))?;
        let n = buf.filled().len() - before;
        if n == 0 {
            // The client went away without a close frame.
            self.state = State::PeerClosed;
            return Poll::Ready(Ok(false));
        }
        // Replies to control frames; no allocation unless there are some.
        let mut replies = Vec::new();
        let decoded = self
            .decoder
            .decode(&mut buf.filled_mut()[before..], &mut replies);
        if !replies.is_empty() {
            let out = self.out.get_or_insert_with(Box::default);
            out.control.extend_from_slice(&replies);
        }
        // Of the raw bytes, only the data they carried stays filled: the payload the decoder
        // moved to their front.
        buf.set_filled(before + decoded.as_ref().map_or(0, |d| d.data));
        match decoded {
            Ok(decoded) => {
                if decoded.closed {
                    self.state = State::PeerClosed;
                }
                // Answer now if the socket takes it; if not, the next read
                // sends it first.
                if self.control_pending() {
                    if let Poll::Ready(Err(e)) = self.poll_send(cx) {
                        return Poll::Ready(Err(e));
                    }
                }
                Poll::Ready(Ok(decoded.data > 0))
            }
            Err(v) => {
                tracing::warn!(
                    code = v.code,
                    reason = v.reason,
                    "WebSocket protocol violation, closing"
                );
                self.queue_close(v.code, State::Failed(v.code));
                Poll::Ready(Ok(false))
            }
        }
    }
}

impl Outgoing {
    /// Starts the next data frame: whole packets from the front of `wr`,
    /// at most `limit` bytes of them unless one packet is larger.
    fn start_frame(&mut self, limit: usize) {
        let n = frame_len(&self.wr, limit);
        let (header, len) = ws_frame::header(ws_frame::BINARY, n);
        self.header = header;
        self.header_len = len as u8;
        self.header_sent = 0;
        self.frame_left = n;
    }

    /// Writes more of the current data frame, header and payload in one
    /// vectored write.
    fn poll_frame<S: AsyncWrite + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let header = &self.header[usize::from(self.header_sent)..usize::from(self.header_len)];
        let bufs = [
            IoSlice::new(header),
            IoSlice::new(&self.wr[..self.frame_left]),
        ];
        let n = ready!(Pin::new(io).poll_write_vectored(cx, &bufs))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        let from_header = n.min(header.len());
        self.header_sent += from_header as u8;
        let from_payload = n - from_header;
        self.wr.advance(from_payload);
        self.frame_left -= from_payload;
        Poll::Ready(Ok(()))
    }
}

/// Why reads fail after the client broke the protocol.
fn failure(code: u16) -> io::Error {
    let why = match code {
        code::UNSUPPORTED_DATA => "text frame received: MQTT needs binary frames [MQTT-6.0.0-1]",
        code::TOO_BIG => "WebSocket message larger than the maximum packet size",
        code::INVALID_PAYLOAD => "WebSocket close reason is not UTF-8",
        _ => "WebSocket protocol violation",
    };
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// Length of the next frame to send from `buf`: whole packets totalling at
/// most `limit` bytes, and always at least one packet. The buffer holds
/// packets we encoded, so their headers are well-formed; anything else is
/// sent as it is.
fn frame_len(buf: &[u8], limit: usize) -> usize {
    let mut end = 0;
    while end < buf.len() {
        let Some(len) = packet_len(&buf[end..]) else {
            return buf.len();
        };
        if end > 0 && end + len > limit {
            break;
        }
        end = (end + len).min(buf.len());
        if end >= limit {
            break;
        }
    }
    end
}

/// Length of the packet at the start of `buf`, from its fixed header.
fn packet_len(buf: &[u8]) -> Option<usize> {
    let mut value = 0usize;
    for (i, &b) in buf.iter().enumerate().skip(1).take(4) {
        value |= usize::from(b & 0x7F) << (7 * (i - 1));
        if b & 0x80 == 0 {
            return (value <= MAX_VARINT as usize).then_some(1 + i + value);
        }
    }
    None
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            // Answers (pongs, close replies) go out before more is read,
            // which also bounds how many can pile up.
            if this.control_pending() {
                ready!(this.poll_send(cx))?;
            }
            match this.state {
                State::Open => {}
                State::PeerClosed | State::Closing => return Poll::Ready(Ok(())),
                State::Failed(code) => {
                    ready!(Pin::new(&mut this.io).poll_flush(cx))?;
                    return Poll::Ready(Err(failure(code)));
                }
            }
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            if ready!(this.poll_read_frames(cx, buf))? {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    /// Takes all the slices into the frame buffer: the connection's writer
    /// hands large payloads over where they are (this is their one copy
    /// before the socket), and always whole packets, which frames made in
    /// one-packet-per-frame mode rely on.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.state != State::Open {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        // Push back once a frame's worth is waiting, so a slow browser
        // holds up only its own writer.
        let max_frame = this.max_frame as usize;
        if this.out.as_ref().is_some_and(|o| o.wr.len() >= max_frame) {
            ready!(this.poll_send(cx))?;
        }
        let out = this.out.get_or_insert_with(Box::default);
        let n = bufs.iter().map(|b| b.len()).sum();
        out.wr.reserve(n);
        for buf in bufs {
            out.wr.extend_from_slice(buf);
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // What was written goes out before the close frame.
        ready!(this.poll_send(cx))?;
        this.queue_close(code::NORMAL, State::Closing);
        ready!(this.poll_send(cx))?;
        ready!(Pin::new(&mut this.io).poll_flush(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
