//! [`HttpProxy`]: the connector, which picks the way to each origin, and its future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper::rt::{Read, Write};
use hyper_util::client::legacy::connect::Connection;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use tower_service::Service;

use super::error::{Kind, ProxyError};
use super::stream::{Proxied, Via};
use crate::error::{BoxError, ConfigError};
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
/// use retryable_http::proxy::HttpProxy;
///
/// let connector = HttpProxy::new(HttpConnector::new(), "http://127.0.0.1:8888".parse()?)?;
/// // For https:// too: hyper_rustls::HttpsConnectorBuilder::new()...wrap_connector(connector)
/// let client: Client<_, http_body_util::Empty<bytes::Bytes>> =
///     Client::builder(TokioExecutor::new()).build(connector);
/// # Ok::<(), retryable_http::error::BoxError>(())
/// ```
///
/// # Errors
///
/// A connection that fails because of the proxy fails with an [`io::Error`](std::io::Error) whose inner
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
