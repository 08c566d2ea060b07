//! [`ProxyError`]: a connection through the proxy that could not be made, as an
//! [`io::Error`] of the kind that classifies it.

use std::error::Error as StdError;
use std::fmt;
use std::io;

use http::Uri;

use crate::error::BoxError;
use crate::redact::Redacted;

/// A connection through an HTTP proxy that could not be made.
///
/// [`HttpProxy`](super::HttpProxy) returns it inside an [`io::Error`], whose kind says what a retry policy
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
pub(super) enum Kind {
    Unreachable,
    TunnelRefused,
    Unsupported,
}

impl ProxyError {
    pub(super) fn new(kind: Kind, proxy: &Uri, target: String, source: Option<BoxError>) -> Self {
        ProxyError {
            kind,
            proxy: Redacted(proxy).to_string().trim_end_matches('/').to_owned(),
            target,
            source,
        }
    }

    /// A tunnel that could not be opened: the proxy was unreachable when hyper-util's
    /// `Tunnel` reports a network error, and refused the tunnel otherwise.
    pub(super) fn tunnel(proxy: &Uri, target: &str, error: BoxError) -> io::Error {
        let network = crate::classify::chain(&*error).any(|e| e.is::<io::Error>());
        let kind = if network {
            Kind::Unreachable
        } else {
            Kind::TunnelRefused
        };
        ProxyError::new(kind, proxy, target.to_owned(), Some(error)).into_io()
    }

    /// Wraps the error in an `io::Error` of the kind that classifies it.
    pub(super) fn into_io(self) -> io::Error {
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
