//! Talking to a fault proxy: a connector that sends requests through a plain HTTP proxy.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::BoxError;
use crate::error::ConfigError;
use crate::redact::Redacted;

/// A connector for hyper-util's client that sends every plain-HTTP request through an HTTP
/// forward proxy, in absolute form (`GET http://host/path HTTP/1.1`) — the way the seed's Go
/// program talks to mitmproxy, and the way `examples/fault_proxy.rs` expects.
///
/// `https://` URLs would need a `CONNECT` tunnel and TLS: they are refused with an error.
///
/// ```
/// use hyper_util::client::legacy::{Client, connect::HttpConnector};
/// use hyper_util::rt::TokioExecutor;
/// use retryable_http::fault::HttpProxy;
///
/// let connector = HttpProxy::new(HttpConnector::new(), "http://127.0.0.1:8888".parse()?)?;
/// let client: Client<_, http_body_util::Empty<bytes::Bytes>> =
///     Client::builder(TokioExecutor::new()).build(connector);
/// # Ok::<(), retryable_http::BoxError>(())
/// ```
#[derive(Clone)]
pub struct HttpProxy<C> {
    inner: C,
    proxy: Uri,
}

impl<C> HttpProxy<C> {
    /// Connects through the proxy at `proxy` (`http://host:port`) with `inner`.
    ///
    /// # Errors
    ///
    /// When `proxy` is not an `http://` URI with a host.
    pub fn new(inner: C, proxy: Uri) -> Result<Self, ConfigError> {
        if proxy.scheme_str() != Some("http") || proxy.host().is_none() {
            return Err(ConfigError::new(format!(
                "a proxy must be an http:// URI with a host, not {proxy}"
            )));
        }
        Ok(HttpProxy { inner, proxy })
    }

    /// The proxy's URI.
    pub fn proxy(&self) -> &Uri {
        &self.proxy
    }
}

impl<C> fmt::Debug for HttpProxy<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpProxy")
            .field("proxy", &Redacted(&self.proxy))
            .finish_non_exhaustive()
    }
}

impl<C> Service<Uri> for HttpProxy<C>
where
    C: Service<Uri>,
    C::Error: Into<BoxError>,
{
    type Response = Proxied<C::Response>;
    type Error = BoxError;
    type Future = Connecting<C::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, destination: Uri) -> Self::Future {
        if destination.scheme_str() == Some("https") {
            let error = "https:// through an HTTP proxy needs a CONNECT tunnel and TLS, which this connector does not do";
            return Connecting {
                state: State::Refused {
                    error: Some(error.into()),
                },
            };
        }
        Connecting {
            state: State::Connecting {
                future: self.inner.call(self.proxy.clone()),
            },
        }
    }
}

pin_project! {
    /// The future of an [`HttpProxy`] connection.
    pub struct Connecting<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Connecting { #[pin] future: F },
        Refused { error: Option<BoxError> },
    }
}

impl<F> fmt::Debug for Connecting<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Connecting")
    }
}

impl<F, T, E> Future for Connecting<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Proxied<T>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Connecting { future } => {
                let io = ready!(future.poll(cx)).map_err(Into::into)?;
                Poll::Ready(Ok(Proxied { io }))
            }
            StateProj::Refused { error } => Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| "polled after completion".into()))),
        }
    }
}

pin_project! {
    /// A connection to a proxy: hyper-util's client writes absolute-form request targets
    /// on it.
    pub struct Proxied<T> {
        #[pin]
        io: T,
    }
}

impl<T> fmt::Debug for Proxied<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Proxied")
    }
}

impl<T: Connection> Connection for Proxied<T> {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(true)
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
