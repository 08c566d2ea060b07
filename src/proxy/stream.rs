//! [`Proxied`]: a connection made through the proxy, or around it.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use pin_project_lite::pin_project;

/// How a [`Proxied`] connection reaches the origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Via {
    /// Straight to the origin: the proxy settings leave it out.
    Direct,
    /// To the proxy, which gets absolute-form requests.
    Forward,
    /// Through a `CONNECT` tunnel: the origin's bytes, end to end.
    Tunnel,
}

pin_project! {
    /// A connection made by [`HttpProxy`]: to the proxy, through a tunnel, or straight to the
    /// origin. hyper-util's client writes absolute-form request targets on a connection to
    /// the proxy, and origin-form ones on the others.
    pub struct Proxied<T> {
        #[pin]
        io: T,
        via: Via,
    }
}

impl<T> Proxied<T> {
    pub(super) fn new(io: T, via: Via) -> Self {
        Proxied { io, via }
    }

    /// Whether the connection goes through a `CONNECT` tunnel.
    pub fn is_tunnel(&self) -> bool {
        self.via == Via::Tunnel
    }

    /// Whether requests on this connection go to the proxy in absolute form.
    pub fn is_forward(&self) -> bool {
        self.via == Via::Forward
    }
}

impl<T> fmt::Debug for Proxied<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxied")
            .field("via", &self.via)
            .finish_non_exhaustive()
    }
}

impl<T: Connection> Connection for Proxied<T> {
    fn connected(&self) -> Connected {
        let connected = self.io.connected();
        match self.via {
            Via::Forward => connected.proxy(true),
            Via::Direct | Via::Tunnel => connected,
        }
    }
}

impl<T: Read> Read for Proxied<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl<T: Write> Write for Proxied<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write_vectored(cx, bufs)
    }
}
