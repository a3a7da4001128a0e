//! MQTT over WebSocket as a byte stream (MQTT 5.0 section 6).
//!
//! [`WsStream`] turns an axum WebSocket into `AsyncRead + AsyncWrite`, so
//! the one connection handler serves it exactly as it serves TCP. Frames
//! are not packets: incoming binary frames are concatenated (a packet may
//! span frames, a frame may hold several packets); outgoing bytes are sent
//! on flush as binary frames holding whole packets, many per frame up to a
//! bound, or exactly one per frame for clients that need it. A text frame
//! is a protocol violation: the socket is closed with code 1003.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use aviary_protocol::MAX_VARINT;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Close code for a frame type we do not accept (RFC 6455 section 7.4.1).
const UNSUPPORTED_DATA: u16 = 1003;
/// Close code for a normal close.
const NORMAL: u16 = 1000;

/// A WebSocket carrying MQTT, seen as a byte stream.
#[derive(Debug)]
pub struct WsStream {
    ws: WebSocket,
    /// The rest of the binary frame being read.
    rd: Bytes,
    /// Bytes written and not yet sent as frames.
    wr: BytesMut,
    /// Several packets per frame, up to `max_frame` bytes.
    coalesce: bool,
    max_frame: usize,
    close: CloseState,
}

/// Progress of the close handshake we start.
#[derive(Debug)]
enum CloseState {
    Open,
    /// A close frame with this code is to be sent.
    Pending(u16, &'static str),
    /// Sent; flushing it.
    Flushing,
    Closed,
}

impl WsStream {
    /// Wraps an upgraded socket.
    pub fn new(ws: WebSocket, coalesce: bool, max_frame: usize) -> Self {
        Self {
            ws,
            rd: Bytes::new(),
            wr: BytesMut::new(),
            coalesce,
            max_frame,
            close: CloseState::Open,
        }
    }

    /// Sends our close frame if one is pending, then flushes it.
    fn poll_close_frame(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match self.close {
                CloseState::Open | CloseState::Closed => return Poll::Ready(Ok(())),
                CloseState::Pending(code, reason) => {
                    ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(io::Error::other)?;
                    let frame = CloseFrame {
                        code,
                        reason: reason.into(),
                    };
                    Pin::new(&mut self.ws)
                        .start_send(Message::Close(Some(frame)))
                        .map_err(io::Error::other)?;
                    self.close = CloseState::Flushing;
                }
                CloseState::Flushing => {
                    let r = ready!(Pin::new(&mut self.ws).poll_flush(cx));
                    self.close = CloseState::Closed;
                    return Poll::Ready(r.map_err(io::Error::other));
                }
            }
        }
    }

    /// Sends the buffered bytes as binary frames of whole packets.
    fn poll_send_buffered(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.wr.is_empty() {
            ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(io::Error::other)?;
            let limit = if self.coalesce { self.max_frame } else { 0 };
            let n = frame_len(&self.wr, limit);
            let frame = self.wr.split_to(n).freeze();
            Pin::new(&mut self.ws)
                .start_send(Message::Binary(frame))
                .map_err(io::Error::other)?;
        }
        Poll::Ready(Ok(()))
    }
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

impl AsyncRead for WsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.rd.is_empty() {
                let n = this.rd.len().min(buf.remaining());
                buf.put_slice(&this.rd[..n]);
                this.rd.advance(n);
                return Poll::Ready(Ok(()));
            }
            if !matches!(this.close, CloseState::Open) {
                ready!(this.poll_close_frame(cx))?;
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "text frame received: MQTT needs binary frames [MQTT-6.0.0-1]",
                )));
            }
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                // The peer's close frame is answered by the WebSocket layer.
                None | Some(Ok(Message::Close(_))) => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
                Some(Ok(Message::Binary(data))) => this.rd = data,
                Some(Ok(Message::Text(_))) => {
                    tracing::warn!("text frame on an MQTT WebSocket, closing with 1003");
                    this.close = CloseState::Pending(UNSUPPORTED_DATA, "MQTT needs binary frames");
                }
                // Pings are answered by the WebSocket layer.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            }
        }
    }
}

impl AsyncWrite for WsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Push back once a frame's worth is waiting, so a slow browser
        // holds up only its own writer.
        if this.wr.len() >= this.max_frame {
            ready!(this.poll_send_buffered(cx))?;
        }
        this.wr.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_buffered(cx))?;
        Pin::new(&mut this.ws)
            .poll_flush(cx)
            .map_err(io::Error::other)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_buffered(cx))?;
        if matches!(this.close, CloseState::Open) {
            this.close = CloseState::Pending(NORMAL, "");
        }
        ready!(this.poll_close_frame(cx))?;
        Pin::new(&mut this.ws)
            .poll_close(cx)
            .map_err(io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_hold_whole_packets_up_to_the_limit() {
        // Three PINGRESP-sized packets (2 bytes) and one of 5 bytes.
        let buf = [0xD0, 0x00, 0xD0, 0x00, 0x30, 0x03, 1, 2, 3, 0xD0, 0x00];
        assert_eq!(frame_len(&buf, 0), 2, "one packet per frame");
        assert_eq!(frame_len(&buf, 4), 4, "two pings fit in 4 bytes");
        assert_eq!(frame_len(&buf, 8), 4, "the publish would cross the limit");
        assert_eq!(frame_len(&buf, 9), 9);
        assert_eq!(frame_len(&buf, 64 * 1024), buf.len());
        assert_eq!(
            frame_len(&buf[4..], 2),
            5,
            "a packet larger than the limit goes alone"
        );
    }

    #[test]
    fn packet_len_reads_the_remaining_length() {
        assert_eq!(packet_len(&[0x30, 0x80, 0x01]), Some(3 + 128));
        assert_eq!(packet_len(&[0x30]), None);
    }
}
