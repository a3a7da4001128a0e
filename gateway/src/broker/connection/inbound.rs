//! The reading half's buffer, which exists only while bytes wait in it.
//!
//! Most connections are idle most of the time, and an idle connection's
//! buffer is empty: holding one anyway costs every idle client its size.
//! So, as Mosquitto does, the buffer is given back once everything in it
//! is decoded, and a read that starts with nothing pending lands on the
//! stack first; only the bytes that arrived are copied into a new buffer.
//! A busy connection (reads that leave a partial packet behind, or reads
//! larger than the stack's scratch) reads straight into its buffer, sized
//! to the traffic.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, ReadBuf};

/// Smallest and largest read sizes.
const MIN_READ: usize = 256;
const MAX_READ: usize = 64 * 1024;
/// Largest read that goes through the stack: enough for a quiet connection's
/// next packets, and a small stack frame. A busy connection, reading more at
/// once, reads into its buffer directly.
const SCRATCH: usize = 4 * 1024;

/// Bytes received and not yet decoded, and how much to read at once.
#[derive(Debug)]
pub(super) struct Inbound {
    /// Empty and unallocated between packets.
    pub(super) buf: BytesMut,
    /// How much to read at once; adapts to the traffic.
    read_hint: usize,
}

impl Inbound {
    /// Takes over what the handshake read past the CONNECT, if anything.
    pub(super) fn new(buf: BytesMut) -> Self {
        let mut inbound = Self {
            buf,
            read_hint: MIN_READ,
        };
        inbound.release_if_empty();
        inbound
    }

    /// Gives the buffer back when everything in it was decoded, unless the
    /// connection is busy (its next read will not go through the stack) and
    /// the buffer is not much larger than its reads.
    pub(super) fn release_if_empty(&mut self) {
        let busy = self.read_hint > SCRATCH && self.buf.capacity() <= 4 * self.read_hint;
        if self.buf.is_empty() && self.buf.capacity() > 0 && !busy {
            self.buf = BytesMut::new();
        }
    }

    /// Reads what the client sent next into the buffer; returns how many
    /// bytes, 0 at end of stream. Cancel-safe: bytes read are in the
    /// buffer before the future completes, and a pending read holds none.
    #[cfg(test)]
    async fn read<R: AsyncRead + Unpin>(&mut self, rd: &mut R) -> io::Result<usize> {
        self.release_if_empty();
        let n = std::future::poll_fn(|cx| self.poll_read(Pin::new(&mut *rd), cx)).await?;
        Ok(n)
    }

    /// [`Inbound::read`] as a poll; call [`Inbound::release_if_empty`] before the first.
    pub(super) fn poll_read<R: AsyncRead>(
        &mut self,
        rd: Pin<&mut R>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        if self.buf.is_empty() && self.read_hint <= SCRATCH {
            return self.poll_read_to_stack(rd, cx);
        }
        if self.buf.capacity() - self.buf.len() < self.read_hint / 2 {
            self.buf.reserve(self.read_hint);
        }
        let spare = self.buf.capacity() - self.buf.len();
        let n = ready!(tokio_util::io::poll_read_buf(rd, cx, &mut self.buf))?;
        self.adapt(n, spare);
        Poll::Ready(Ok(n))
    }

    /// A read with nothing pending: into a scratch buffer on the stack
    /// (never part of the connection's future, which lives as long as the
    /// connection), then copied into a buffer of just the bytes read.
    fn poll_read_to_stack<R: AsyncRead>(
        &mut self,
        rd: Pin<&mut R>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let mut scratch = [MaybeUninit::<u8>::uninit(); SCRATCH];
        let mut read = ReadBuf::uninit(&mut scratch[..self.read_hint]);
        ready!(rd.poll_read(cx, &mut read))?;
        let n = read.filled().len();
        self.buf.extend_from_slice(read.filled());
        self.adapt(n, self.read_hint);
        Poll::Ready(Ok(n))
    }

    /// Grows the read size when a read filled the room it had, shrinks it
    /// when reads come in small.
    fn adapt(&mut self, n: usize, spare: usize) {
        if n >= spare {
            self.read_hint = (self.read_hint * 2).min(MAX_READ);
        } else if n < self.read_hint / 4 {
            self.read_hint = (self.read_hint / 2).max(MIN_READ);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn holds_no_buffer_between_packets() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        let mut inbound = Inbound::new(BytesMut::with_capacity(256));
        assert_eq!(
            inbound.buf.capacity(),
            0,
            "an empty handshake leftover is dropped"
        );
        client.write_all(&[0xC0, 0x00]).await.unwrap();
        assert_eq!(inbound.read(&mut server).await.unwrap(), 2);
        assert_eq!(&inbound.buf[..], &[0xC0, 0x00]);
        let _ = inbound.buf.split_to(2);
        client.write_all(&[0xC0]).await.unwrap();
        assert_eq!(inbound.read(&mut server).await.unwrap(), 1);
        assert_eq!(
            &inbound.buf[..],
            &[0xC0],
            "the old buffer was given back, the new one holds the byte"
        );
        client.write_all(&[0x00]).await.unwrap();
        assert_eq!(inbound.read(&mut server).await.unwrap(), 1);
        assert_eq!(
            &inbound.buf[..],
            &[0xC0, 0x00],
            "a partial packet is read onto"
        );
        drop(client);
        let _ = inbound.buf.split_to(2);
        assert_eq!(inbound.read(&mut server).await.unwrap(), 0);
        assert_eq!(inbound.buf.capacity(), 0);
    }

    #[tokio::test]
    async fn read_size_grows_with_full_reads() {
        let (mut client, mut server) = tokio::io::duplex(1 << 20);
        client.write_all(&vec![0u8; 4 * MAX_READ]).await.unwrap();
        let mut inbound = Inbound::new(BytesMut::new());
        let first = inbound.read(&mut server).await.unwrap();
        assert_eq!(first, MIN_READ);
        let second = inbound.read(&mut server).await.unwrap();
        assert!(second > MIN_READ, "read {second}");
    }
}
