//! What is safe to log and to print with `Debug`: URLs without userinfo or query, heads
//! without the values of sensitive headers.

use std::fmt;

use http::header::{
    AUTHORIZATION, COOKIE, HeaderMap, HeaderName, HeaderValue, PROXY_AUTHORIZATION, SET_COOKIE,
};
use http::{Uri, request, response};

/// Displays a URI as `scheme://host[:port]/path`: without `user:password@` and without the
/// query, which often carries tokens and keys. Fragments never reach a client.
#[derive(Clone, Copy)]
pub(crate) struct Redacted<'a>(pub(crate) &'a Uri);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uri = self.0;
        if let Some(scheme) = uri.scheme() {
            write!(f, "{scheme}://")?;
        }
        if let Some(authority) = uri.authority() {
            // `host()` and `port()` leave out the userinfo.
            f.write_str(authority.host())?;
            if let Some(port) = authority.port() {
                write!(f, ":{port}")?;
            }
        }
        // An authority-form URI (CONNECT) has no path; `path()` would print "/".
        if uri.scheme().is_some() || uri.authority().is_none() {
            f.write_str(uri.path())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Whether a header's value must never be printed: credentials and cookies by name, and
/// any value marked with [`HeaderValue::set_sensitive`].
pub(crate) fn is_sensitive(name: &HeaderName, value: &HeaderValue) -> bool {
    value.is_sensitive()
        || *name == AUTHORIZATION
        || *name == PROXY_AUTHORIZATION
        || *name == COOKIE
        || *name == SET_COOKIE
        || name.as_str() == "x-api-key"
        || name.as_str() == "x-auth-token"
}

/// Prints headers as `{name: value}`, with the values of sensitive headers masked.
pub(crate) struct Headers<'a>(pub(crate) &'a HeaderMap);

impl fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .map(|(name, value)| (name, Value(name, value))),
            )
            .finish()
    }
}

/// One header value, masked when it is sensitive.
pub(crate) struct Value<'a>(pub(crate) &'a HeaderName, pub(crate) &'a HeaderValue);

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_sensitive(self.0, self.1) {
            f.write_str("<redacted>")
        } else {
            fmt::Debug::fmt(self.1, f)
        }
    }
}

/// Prints a request head: the method, the redacted URL, the version and the headers, with
/// sensitive values masked. Extensions are left out.
pub(crate) struct RequestHead<'a>(pub(crate) &'a request::Parts);

impl fmt::Debug for RequestHead<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = self.0;
        f.debug_struct("Request")
            .field("method", &head.method)
            .field("url", &Redacted(&head.uri))
            .field("version", &head.version)
            .field("headers", &Headers(&head.headers))
            .finish_non_exhaustive()
    }
}

/// Prints a response head: the status, the version and the headers, with sensitive values
/// masked. Extensions are left out.
pub(crate) struct ResponseHead<'a>(pub(crate) &'a response::Parts);

impl fmt::Debug for ResponseHead<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = self.0;
        f.debug_struct("Response")
            .field("status", &head.status)
            .field("version", &head.version)
            .field("headers", &Headers(&head.headers))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
