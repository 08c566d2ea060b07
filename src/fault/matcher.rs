//! [`Match`]: which requests a rule applies to.

use std::fmt;
use std::sync::Arc;

use http::header::{HeaderName, HeaderValue};
use http::{Method, request};

use crate::error::ConfigError;
use crate::redact::Value;

/// A condition on a request.
#[derive(Clone)]
#[non_exhaustive]
pub enum Match {
    /// The method is this one.
    Method(Method),
    /// The whole URI, as sent, contains this text.
    UrlContains(String),
    /// The path contains this text.
    PathContains(String),
    /// The whole URI matches this regular expression.
    UrlRegex(regex_lite::Regex),
    /// The header is present, with this value if one is given.
    Header(HeaderName, Option<HeaderValue>),
    /// The predicate says yes.
    Predicate(Arc<dyn Fn(&request::Parts) -> bool + Send + Sync>),
}

impl Match {
    /// The method is `method`.
    pub fn method(method: Method) -> Self {
        Match::Method(method)
    }

    /// The URI contains `text`: the seed's `"your-api-endpoint" in flow.request.url`.
    pub fn url_contains(text: impl Into<String>) -> Self {
        Match::UrlContains(text.into())
    }

    /// The path contains `text`.
    pub fn path_contains(text: impl Into<String>) -> Self {
        Match::PathContains(text.into())
    }

    /// The URI matches the regular expression `pattern`.
    ///
    /// # Errors
    ///
    /// When `pattern` is not a valid regular expression.
    pub fn url_regex(pattern: &str) -> Result<Self, ConfigError> {
        regex_lite::Regex::new(pattern)
            .map(Match::UrlRegex)
            .map_err(|e| ConfigError::new(format!("invalid URL pattern {pattern:?}: {e}")))
    }

    /// The header `name` is present, with `value` if one is given.
    pub fn header(name: HeaderName, value: Option<HeaderValue>) -> Self {
        Match::Header(name, value)
    }

    /// `predicate` says yes.
    pub fn predicate<F>(predicate: F) -> Self
    where
        F: Fn(&request::Parts) -> bool + Send + Sync + 'static,
    {
        Match::Predicate(Arc::new(predicate))
    }

    pub(super) fn test(&self, request: &request::Parts) -> bool {
        match self {
            Match::Method(m) => request.method == *m,
            Match::UrlContains(text) => uri_text(request).contains(text.as_str()),
            Match::PathContains(text) => request.uri.path().contains(text.as_str()),
            Match::UrlRegex(re) => re.is_match(&uri_text(request)),
            Match::Header(name, value) => match (request.headers.get(name), value) {
                (Some(_), None) => true,
                (Some(actual), Some(expected)) => actual == expected,
                (None, _) => false,
            },
            Match::Predicate(f) => f(request),
        }
    }
}

/// The URI as text; for an origin-form URI on a server, with the `Host` header in front,
/// so that a rule written against full URLs works on both sides of a connection.
fn uri_text(request: &request::Parts) -> String {
    if request.uri.authority().is_some() {
        return request.uri.to_string();
    }
    match request
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
    {
        Some(host) => format!("http://{host}{}", request.uri),
        None => request.uri.to_string(),
    }
}

impl fmt::Debug for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Match::Method(m) => f.debug_tuple("Method").field(m).finish(),
            Match::UrlContains(t) => f.debug_tuple("UrlContains").field(t).finish(),
            Match::PathContains(t) => f.debug_tuple("PathContains").field(t).finish(),
            Match::UrlRegex(r) => f.debug_tuple("UrlRegex").field(&r.as_str()).finish(),
            Match::Header(n, v) => f
                .debug_tuple("Header")
                .field(n)
                .field(&v.as_ref().map(|v| Value(n, v)))
                .finish(),
            Match::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}
