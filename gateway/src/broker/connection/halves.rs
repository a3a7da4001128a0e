//! A reading and a writing half of one stream, without an allocation.
//!
//! `tokio::io::split` puts the stream behind an `Arc` so the halves can
//! live anywhere; every connection would pay for that allocation. Here
//! both halves stay in the one task that serves the connection, so they
//! can borrow the stream, which lives in that task's future. The lock is
//! never contended (a task polls one half at a time): it only makes the
//! sharing safe.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The stream both halves borrow.
#[derive(Debug)]
pub(super) struct Shared<S>(Mutex<S>);

impl<S> Shared<S> {
    pub(super) fn new(stream: S) -> Self {
        Self(Mutex::new(stream))
    }

    /// The two halves; either may read or write, by convention one does each.
    pub(super) fn halves(&self) -> (Half<'_, S>, Half<'_, S>) {
        (Half(&self.0), Half(&self.0))
    }
}

/// One half: reads or writes the shared stream.
#[derive(Debug)]
pub(super) struct Half<'a, S>(&'a Mutex<S>);

impl<S: AsyncRead + Unpin> AsyncRead for Half<'_, S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0.lock()).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Half<'_, S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0.lock()).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0.lock()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.lock().is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0.lock()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0.lock()).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn halves_read_and_write_one_stream() {
        let (mut client, server) = tokio::io::duplex(64);
        let shared = Shared::new(server);
        let (mut rd, mut wr) = shared.halves();
        client.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        rd.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        wr.write_all(b"pong").await.unwrap();
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pong");
    }
}
