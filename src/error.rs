//! Errors: what the layer returns when a request fails, and invalid configuration.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use http::Method;

use crate::classify::chain;
use crate::record::Attempts;
use crate::redact::Redacted;

/// A type-erased error, as tower and hyper use.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// The error a [`Retry`](crate::Retry) service returns.
///
/// Its `Display` names the request (method and URL, with userinfo and query removed) and
/// how many attempts were made — `GET http://127.0.0.1:8080/x giving up after 4 attempt(s)`
/// — and its [`source`](StdError::source) is the cause, so callers can downcast to the
/// inner service's error type. [`Report`] prints the whole chain on one line:
/// `GET http://127.0.0.1:8080/x giving up after 4 attempt(s): client error (Connect): tcp
/// connect error: Connection refused (os error 111)`.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    request: Option<(Method, String)>,
    attempts: u32,
    record: Option<Attempts>,
    source: BoxError,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The inner service failed and the layer did not, or could no longer, retry.
    Inner,
    /// The inner service failed to become ready.
    NotReady,
    /// The request's `Reopen` failed to make the body again.
    Reopen,
}

impl Error {
    pub(crate) fn inner(method: &Method, uri: &http::Uri, attempts: u32, source: BoxError) -> Self {
        Error::new(Kind::Inner, Some((method, uri)), attempts, source)
    }

    pub(crate) fn not_ready(
        request: Option<(&Method, &http::Uri)>,
        attempts: u32,
        source: BoxError,
    ) -> Self {
        Error::new(Kind::NotReady, request, attempts, source)
    }

    pub(crate) fn reopen(
        method: &Method,
        uri: &http::Uri,
        attempts: u32,
        source: BoxError,
    ) -> Self {
        Error::new(Kind::Reopen, Some((method, uri)), attempts, source)
    }

    fn new(
        kind: Kind,
        request: Option<(&Method, &http::Uri)>,
        attempts: u32,
        source: BoxError,
    ) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                request: request.map(|(m, u)| (m.clone(), Redacted(u).to_string())),
                attempts,
                record: None,
                source,
            }),
        }
    }

    pub(crate) fn with_record(mut self, record: Attempts) -> Self {
        self.inner.record = Some(record);
        self
    }

    /// How many attempts were made (sent to the inner service) before giving up.
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// What happened to the request, attempt by attempt, when it got as far as an attempt:
    /// the same record a response carries as an extension.
    pub fn record(&self) -> Option<&Attempts> {
        self.inner.record.as_ref()
    }

    /// The request's method, when the error is about a request.
    pub fn method(&self) -> Option<&Method> {
        self.inner.request.as_ref().map(|(m, _)| m)
    }

    /// The request's URL without userinfo and query, when the error is about a request.
    pub fn url(&self) -> Option<&str> {
        self.inner.request.as_ref().map(|(_, u)| u.as_str())
    }

    /// Returns `true` if the inner service failed to become ready, rather than failing a
    /// request.
    pub fn is_not_ready(&self) -> bool {
        self.inner.kind == Kind::NotReady
    }

    /// Returns `true` if the request's [`Reopen`](crate::body::Reopen) failed to make the
    /// body again for a retry. The cause is the factory's error.
    pub fn is_reopen(&self) -> bool {
        self.inner.kind == Kind::Reopen
    }

    /// Returns `true` if the last attempt was cut off by the per-attempt timeout.
    pub fn is_attempt_timeout(&self) -> bool {
        self.find::<AttemptTimedOut>().is_some()
    }

    /// Returns `true` if the request's overall deadline passed while an attempt was in
    /// flight.
    pub fn is_deadline(&self) -> bool {
        self.find::<DeadlineExceeded>().is_some()
    }

    /// The status of the last response, when the layer turned a response it gave up on into
    /// this error (see [`RetryLayer::fail_when_exhausted`](crate::RetryLayer::fail_when_exhausted)).
    pub fn status(&self) -> Option<http::StatusCode> {
        self.find::<UnexpectedStatus>().map(|e| e.status)
    }

    /// Consumes the error and returns its cause.
    pub fn into_source(self) -> BoxError {
        self.inner.source
    }

    fn find<E: StdError + 'static>(&self) -> Option<&E> {
        chain(&*self.inner.source).find_map(|e| e.downcast_ref::<E>())
    }
}

impl fmt::Display for Error {
    /// What this error is: the request, the attempts and the kind; not its causes, which
    /// [`source`](StdError::source) gives (print them all with [`Report`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        let what = match inner.kind {
            Kind::Inner => None,
            Kind::NotReady => Some("the inner service failed to become ready"),
            Kind::Reopen => Some("the request body could not be reopened"),
        };
        match (&inner.request, what) {
            (Some((method, url)), what) => {
                write!(
                    f,
                    "{method} {url} giving up after {} attempt(s)",
                    inner.attempts
                )?;
                if let Some(what) = what {
                    write!(f, ": {what}")?;
                }
                Ok(())
            }
            (None, Some(what)) => f.write_str(what),
            (None, None) => f.write_str("request failed"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        let mut d = f.debug_struct("Error");
        d.field("kind", &inner.kind);
        if let Some((method, url)) = &inner.request {
            d.field("method", method).field("url", url);
        }
        d.field("attempts", &inner.attempts)
            .field("source", &inner.source)
            .finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.inner.source)
    }
}

/// Displays an error and every cause in its [`source`](StdError::source) chain on one line,
/// joined by `": "`: for logs and for people.
///
/// [`Error`]'s own `Display` says what went wrong with the request and leaves the causes to
/// `source()`, as the Rust API guidelines and hyper-util do, so that a reporter that walks
/// the chain (anyhow's `{:#}`, eyre, this one) prints each cause once.
///
/// ```
/// use std::io;
/// use retryable_http::error::Report;
///
/// #[derive(Debug)]
/// struct Upload(io::Error);
/// impl std::fmt::Display for Upload {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("upload failed")
///     }
/// }
/// impl std::error::Error for Upload {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
///
/// let error = Upload(io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by peer"));
/// assert_eq!(Report::new(&error).to_string(), "upload failed: connection reset by peer");
/// ```
#[derive(Clone, Copy)]
pub struct Report<'a>(&'a (dyn StdError + 'static));

impl<'a> Report<'a> {
    /// Reports `error` and its causes.
    pub fn new(error: &'a (dyn StdError + 'static)) -> Self {
        Report(error)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A configuration value that makes no sense, found when it is set.
///
/// Every constructor and setter that can be given a bad value returns this instead of
/// panicking later in the middle of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    message: String,
}

impl ConfigError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        ConfigError {
            message: message.into(),
        }
    }

    /// This error, its message said of `what`.
    pub(crate) fn of(self, what: &str) -> Self {
        ConfigError::new(format!("{what}: {}", self.message))
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid retry configuration: {}", self.message)
    }
}

impl StdError for ConfigError {}

/// An attempt was cut off by the layer's per-attempt timeout.
///
/// It is the cause of the [`Error`] returned when such an attempt is the last one, and the
/// error the retry policy sees. [`classify`](crate::classify::classify) puts it in
/// [`MaybeProcessed`](crate::classify::ErrorClass::MaybeProcessed): the server may have
/// received the request and still be working on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptTimedOut {
    after: Duration,
}

impl AttemptTimedOut {
    pub(crate) fn new(after: Duration) -> Self {
        AttemptTimedOut { after }
    }

    /// The timeout that expired.
    pub fn after(&self) -> Duration {
        self.after
    }
}

impl fmt::Display for AttemptTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attempt timed out after {:?}", self.after)
    }
}

impl StdError for AttemptTimedOut {}

/// The layer's overall deadline passed while an attempt was in flight.
///
/// It is the cause of the [`Error`] returned then; the attempt is cut off and no other is
/// made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlineExceeded {
    after: Duration,
}

impl DeadlineExceeded {
    pub(crate) fn new(after: Duration) -> Self {
        DeadlineExceeded { after }
    }

    /// The deadline, from the start of the request.
    pub fn after(&self) -> Duration {
        self.after
    }
}

impl fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "deadline of {:?} exceeded", self.after)
    }
}

impl StdError for DeadlineExceeded {}

/// A response the layer gave up on, turned into an error by
/// [`RetryLayer::fail_when_exhausted`](crate::RetryLayer::fail_when_exhausted): the cause of
/// the [`Error`] the caller gets instead of the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnexpectedStatus {
    status: http::StatusCode,
}

impl UnexpectedStatus {
    /// An error for a response with `status`.
    pub fn new(status: http::StatusCode) -> Self {
        UnexpectedStatus { status }
    }

    /// The status of the last response.
    pub fn status(&self) -> http::StatusCode {
        self.status
    }
}

impl fmt::Display for UnexpectedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unexpected HTTP status {}", self.status)
    }
}

impl StdError for UnexpectedStatus {}

#[cfg(test)]
mod tests;
