//! Talking to a fault proxy: a connector that goes through an HTTP proxy, as the seed's Go
//! program goes through mitmproxy.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::proxy::matcher::Matcher;
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::error::BoxError;
use crate::error::ConfigError;
use crate::redact::Redacted;

/// A connector for hyper-util's client that goes through an HTTP proxy, the way the seed's
/// Go program goes through mitmproxy and the way `examples/fault_proxy.rs` expects:
///
/// - `http://` requests go to the proxy in absolute form (`GET http://host/path HTTP/1.1`);
/// - `https://` requests go through a `CONNECT` tunnel (hyper-util's
///   [`Tunnel`]), over which a TLS connector such as hyper-rustls's `HttpsConnector`,
///   wrapped around this one, speaks TLS with the origin — so mitmproxy can intercept it when
///   its CA is trusted;
/// - requests the proxy settings leave out go straight to their host.
///
/// The proxy is one URL for every request ([`HttpProxy::new`]), or taken from the
/// environment ([`HttpProxy::from_env`]). This crate does no TLS itself.
///
/// ```
/// use hyper_util::client::legacy::{Client, connect::HttpConnector};
/// use hyper_util::rt::TokioExecutor;
/// use retryable_http::fault::HttpProxy;
///
/// let connector = HttpProxy::new(HttpConnector::new(), "http://127.0.0.1:8888".parse()?)?;
/// // For https:// too: hyper_rustls::HttpsConnectorBuilder::new()...wrap_connector(connector)
/// let client: Client<_, http_body_util::Empty<bytes::Bytes>> =
///     Client::builder(TokioExecutor::new()).build(connector);
/// # Ok::<(), retryable_http::BoxError>(())
/// ```
///
/// # Errors
///
/// A connection that fails because of the proxy fails with an [`io::Error`] whose inner
/// error is a [`ProxyError`]: the proxy could not be reached (the kind of the underlying
/// error, such as `ConnectionRefused`), or it answered the `CONNECT` without opening the
/// tunnel (`ConnectionRefused`: the request never reached the origin, so it is safe to retry
/// whatever its method). Credentials in a proxy URL are sent to open tunnels; hyper-util's
/// client does not send them with absolute-form requests.
#[derive(Clone)]
pub struct HttpProxy<C> {
    inner: C,
    matcher: Arc<Matcher>,
    /// The one proxy of [`HttpProxy::new`].
    proxy: Option<Uri>,
}

impl<C> HttpProxy<C> {
    /// Connects through the proxy at `proxy` (`http://host:port`, with `user:password@` for
    /// a proxy that asks for credentials) with `inner`, for every request.
    ///
    /// # Errors
    ///
    /// When `proxy` is not an `http://` URI with a host.
    pub fn new(inner: C, proxy: Uri) -> Result<Self, ConfigError> {
        if proxy.scheme_str() != Some("http") || proxy.host().is_none() {
            return Err(ConfigError::new(format!(
                "a proxy must be an http:// URI with a host, not {}",
                Redacted(&proxy)
            )));
        }
        let url = proxy.to_string();
        let matcher = Matcher::builder().http(url.clone()).https(url).build();
        Ok(HttpProxy {
            inner,
            matcher: Arc::new(matcher),
            proxy: Some(proxy),
        })
    }

    /// Connects through the proxies the environment names, the way Go's default transport
    /// reads them: `HTTPS_PROXY` for `https://` requests, `HTTP_PROXY` for `http://` ones
    /// (either in lower case too), hosts in `NO_PROXY` directly, and everything directly
    /// when neither proxy is set. `HTTP_PROXY` is ignored in a CGI program (`REQUEST_METHOD`
    /// set), as Go does.
    ///
    /// One difference: Go never sends requests for `localhost` or a loopback address through
    /// a proxy; this connector does, unless `NO_PROXY` says otherwise, so that a local
    /// upstream can be tested through a local proxy.
    pub fn from_env(inner: C) -> Self {
        let var = |names: [&str; 2]| {
            names
                .iter()
                .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
                .unwrap_or_default()
        };
        let http = if std::env::var_os("REQUEST_METHOD").is_some() {
            String::new()
        } else {
            var(["HTTP_PROXY", "http_proxy"])
        };
        let matcher = Matcher::builder()
            .http(http)
            .https(var(["HTTPS_PROXY", "https_proxy"]))
            .no(var(["NO_PROXY", "no_proxy"]))
            .build();
        HttpProxy {
            inner,
            matcher: Arc::new(matcher),
            proxy: None,
        }
    }

    /// The proxy of [`HttpProxy::new`]; `None` for [`HttpProxy::from_env`].
    pub fn proxy(&self) -> Option<&Uri> {
        self.proxy.as_ref()
    }

    /// The proxy a request for `destination` goes through, if any.
    pub fn proxy_for(&self, destination: &Uri) -> Option<Uri> {
        self.matcher.intercept(destination).map(|i| i.uri().clone())
    }
}

impl<C> fmt::Debug for HttpProxy<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("HttpProxy");
        match &self.proxy {
            Some(proxy) => d.field("proxy", &Redacted(proxy)),
            None => d.field("proxy", &"from the environment"),
        };
        d.finish_non_exhaustive()
    }
}

impl<C> Service<Uri> for HttpProxy<C>
where
    C: Service<Uri> + Clone + Send + 'static,
    C::Future: Send + 'static,
    C::Response: Read + Write + Connection + Unpin + Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = Proxied<C::Response>;
    type Error = BoxError;
    type Future = Connecting<C::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, destination: Uri) -> Connecting<C::Response> {
        // NOTE: `poll_ready` made `inner` ready; the clone made below for a tunnel is driven
        // by hyper-util's `Tunnel`, which polls it itself.
        let Some(intercept) = self.matcher.intercept(&destination) else {
            let connecting = self.inner.call(destination);
            return Connecting::new(async move {
                let io = connecting.await.map_err(Into::into)?;
                Ok(Proxied::new(io, Via::Direct))
            });
        };
        let proxy = intercept.uri().clone();
        let target = destination
            .authority()
            .map_or_else(String::new, |a| a.to_string());
        if proxy.scheme_str() != Some("http") {
            let error = ProxyError::new(Kind::Unsupported, &proxy, target, None);
            return Connecting::new(async move { Err(error.into_io().into()) });
        }
        if destination.scheme_str() == Some("https") {
            let mut tunnel = Tunnel::new(proxy.clone(), self.inner.clone());
            if let Some(auth) = intercept.basic_auth() {
                tunnel = tunnel.with_auth(auth.clone());
            }
            return Connecting::new(async move {
                let mut tunnel = tunnel;
                std::future::poll_fn(|cx| tunnel.poll_ready(cx))
                    .await
                    .map_err(|e| ProxyError::tunnel(&proxy, &target, e.into()))?;
                let io = tunnel
                    .call(destination)
                    .await
                    .map_err(|e| ProxyError::tunnel(&proxy, &target, e.into()))?;
                Ok(Proxied::new(io, Via::Tunnel))
            });
        }
        let connecting = self.inner.call(proxy.clone());
        Connecting::new(async move {
            let io = connecting.await.map_err(|e| {
                ProxyError::new(Kind::Unreachable, &proxy, target, Some(e.into())).into_io()
            })?;
            Ok(Proxied::new(io, Via::Forward))
        })
    }
}

/// The future of an [`HttpProxy`] connection.
pub struct Connecting<T> {
    future: Pin<Box<dyn Future<Output = Result<Proxied<T>, BoxError>> + Send>>,
}

impl<T> Connecting<T> {
    fn new<F>(future: F) -> Self
    where
        F: Future<Output = Result<Proxied<T>, BoxError>> + Send + 'static,
    {
        Connecting {
            future: Box::pin(future),
        }
    }
}

impl<T> Future for Connecting<T> {
    type Output = Result<Proxied<T>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.future.as_mut().poll(cx)
    }
}

impl<T> fmt::Debug for Connecting<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connecting").finish_non_exhaustive()
    }
}

/// How a [`Proxied`] connection reaches the origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
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
    fn new(io: T, via: Via) -> Self {
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

/// A connection through an HTTP proxy that could not be made.
///
/// [`HttpProxy`] returns it inside an [`io::Error`], whose kind says what a retry policy
/// needs to know: the kind of the underlying network error when the proxy could not be
/// reached, `ConnectionRefused` when the proxy answered without opening a tunnel. Either
/// way the request never reached the origin.
#[derive(Debug)]
pub struct ProxyError {
    kind: Kind,
    /// The proxy, without credentials.
    proxy: String,
    /// The origin's `host:port`.
    target: String,
    source: Option<BoxError>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Unreachable,
    TunnelRefused,
    Unsupported,
}

impl ProxyError {
    fn new(kind: Kind, proxy: &Uri, target: String, source: Option<BoxError>) -> Self {
        ProxyError {
            kind,
            proxy: Redacted(proxy).to_string().trim_end_matches('/').to_owned(),
            target,
            source,
        }
    }

    /// A tunnel that could not be opened: the proxy was unreachable when hyper-util's
    /// `Tunnel` reports a network error, and refused the tunnel otherwise.
    fn tunnel(proxy: &Uri, target: &str, error: BoxError) -> io::Error {
        let network = crate::classify::chain(&*error).any(|e| e.is::<io::Error>());
        let kind = if network {
            Kind::Unreachable
        } else {
            Kind::TunnelRefused
        };
        ProxyError::new(kind, proxy, target.to_owned(), Some(error)).into_io()
    }

    /// Wraps the error in an `io::Error` of the kind that classifies it.
    fn into_io(self) -> io::Error {
        let kind = match self.kind {
            Kind::Unreachable => self
                .source
                .as_deref()
                .and_then(|e| {
                    crate::classify::chain(e)
                        .find_map(|e| e.downcast_ref::<io::Error>().map(io::Error::kind))
                })
                .unwrap_or(io::ErrorKind::NotConnected),
            Kind::TunnelRefused => io::ErrorKind::ConnectionRefused,
            Kind::Unsupported => io::ErrorKind::Unsupported,
        };
        io::Error::new(kind, self)
    }

    /// Whether the proxy could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        self.kind == Kind::Unreachable
    }

    /// Whether the proxy answered a `CONNECT` without opening the tunnel (it refused it,
    /// could not reach the origin, or asked for credentials).
    pub fn is_tunnel_refused(&self) -> bool {
        self.kind == Kind::TunnelRefused
    }

    /// The proxy, as `http://host:port`, without credentials.
    pub fn proxy(&self) -> &str {
        &self.proxy
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Unreachable => write!(f, "could not reach the proxy {}", self.proxy),
            Kind::TunnelRefused => write!(
                f,
                "the proxy {} did not open a tunnel to {}",
                self.proxy, self.target
            ),
            Kind::Unsupported => write!(f, "the proxy {} is not an http:// proxy", self.proxy),
        }
    }
}

impl StdError for ProxyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}
