//! Waits a server asks for: `Retry-After`, `RateLimit-Reset` and `X-RateLimit-Reset`.
//!
//! Everything about them is here: the parsers, and [`ServerWaits`], the layer's setting
//! that says which responses may set the wait, which headers count, and the longest wait
//! honoured ([`RetryLayer::server_waits`](crate::RetryLayer::server_waits)).
//!
//! The parsers take the current wall-clock time as an argument, so they are pure functions
//! and tests need no real clock.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use http::HeaderValue;
//! use retryable_http::retry_after::parse_retry_after;
//!
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770); // Sun, 06 Nov 1994 08:49:30 GMT
//! let wait = |v: &'static str| parse_retry_after(&HeaderValue::from_static(v), now);
//! assert_eq!(wait("120"), Some(Duration::from_secs(120)));
//! assert_eq!(wait("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::from_secs(7)));
//! assert_eq!(wait("Sunday, 06-Nov-94 08:49:37 GMT"), Some(Duration::from_secs(7)));
//! assert_eq!(wait("Sun Nov  6 08:49:37 1994"), Some(Duration::from_secs(7)));
//! assert_eq!(wait("Sat, 05 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO)); // in the past
//! assert_eq!(wait("-1"), None);
//! assert_eq!(wait("soon"), None);
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use http::response;

use crate::record::WaitReason;

/// The `RateLimit-Reset` header of the IETF rate-limit headers draft.
pub static RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// The `X-RateLimit-Reset` header used by many APIs (GitHub, Twitter, ...).
pub static X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The smallest `X-RateLimit-Reset` value read as a Unix timestamp rather than as seconds to
/// wait: 2001-09-09, over 31 years of seconds. No server asks a client to wait that long,
/// and no rate-limit window resets before that date.
const UNIX_TIMESTAMP_THRESHOLD: u64 = 1_000_000_000;

/// The longest server-requested wait honoured by default: 60 s. A response asking for more
/// is returned at once instead of being retried (go-retryablehttp #247: a client slept for
/// 484 289 hours because a server said so).
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);

/// Which waits a server may ask for, and the longest one honoured.
///
/// On a response the layer retries, a wait the server asks for takes the place of the
/// computed backoff. [`ServerWaits::new`] (the default) honours `Retry-After`,
/// `RateLimit-Reset` and `X-RateLimit-Reset` on any retried response, up to
/// [`DEFAULT_MAX_WAIT`]; a response asking for longer is given back to the caller at once.
///
/// ```
/// use std::time::Duration;
/// use retryable_http::RetryLayer;
/// use retryable_http::retry_after::ServerWaits;
///
/// // go-retryablehttp's rules: Retry-After, on 429 and 503 only; and no wait above 5 min.
/// let layer = RetryLayer::new()
///     .server_waits(ServerWaits::go().max(Duration::from_secs(300)));
/// ```
#[derive(Clone)]
pub struct ServerWaits {
    statuses: Statuses,
    rate_limit_headers: bool,
    max: Duration,
    wall_clock: Arc<dyn Fn() -> SystemTime + Send + Sync>,
}

/// Which responses may set the wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Statuses {
    Any,
    RateLimited,
    Never,
}

impl ServerWaits {
    /// `Retry-After`, `RateLimit-Reset` and `X-RateLimit-Reset`, on any response that is
    /// retried, up to [`DEFAULT_MAX_WAIT`]. A server that says when to come back knows
    /// better than a formula.
    pub fn new() -> Self {
        ServerWaits {
            statuses: Statuses::Any,
            rate_limit_headers: true,
            max: DEFAULT_MAX_WAIT,
            wall_clock: Arc::new(SystemTime::now),
        }
    }

    /// go-retryablehttp's rules (`DefaultBackoff`, `RateLimitLinearJitterBackoff`):
    /// `Retry-After` only, on `429` and `503` only. The cap of [`DEFAULT_MAX_WAIT`] stays:
    /// Go has none, which is its #247.
    pub fn go() -> Self {
        ServerWaits::new().only_rate_limited().retry_after_only()
    }

    /// No server-requested wait is honoured: the backoff always decides, as with
    /// go-retryablehttp's `LinearJitterBackoff`.
    pub fn never() -> Self {
        ServerWaits {
            statuses: Statuses::Never,
            ..ServerWaits::new()
        }
    }

    /// Only `429 Too Many Requests` and `503 Service Unavailable` may set the wait.
    pub fn only_rate_limited(mut self) -> Self {
        if self.statuses == Statuses::Any {
            self.statuses = Statuses::RateLimited;
        }
        self
    }

    /// Only `Retry-After` counts; `RateLimit-Reset` and `X-RateLimit-Reset` are ignored.
    pub fn retry_after_only(mut self) -> Self {
        self.rate_limit_headers = false;
        self
    }

    /// Sets the longest wait honoured. A response asking for longer is not retried: it goes
    /// to the caller at once, who can decide what to do.
    pub fn max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// Sets the wall clock HTTP dates and Unix timestamps are measured against. The default
    /// is [`SystemTime::now`]; tests set a fixed time.
    pub fn wall_clock<F>(mut self, now: F) -> Self
    where
        F: Fn() -> SystemTime + Send + Sync + 'static,
    {
        self.wall_clock = Arc::new(now);
        self
    }

    /// The longest wait honoured.
    pub fn max_wait(&self) -> Duration {
        self.max
    }

    /// The wait the response with `head` asks for, and the header that asked, if these
    /// settings honour one: `Ok` within the cap, `Err` with the wait asked for above it.
    pub(crate) fn requested(
        &self,
        head: &response::Parts,
    ) -> Option<Result<(Duration, WaitReason), Duration>> {
        let honoured = match self.statuses {
            Statuses::Any => true,
            Statuses::RateLimited => {
                head.status == StatusCode::TOO_MANY_REQUESTS
                    || head.status == StatusCode::SERVICE_UNAVAILABLE
            }
            Statuses::Never => false,
        };
        if !honoured {
            return None;
        }
        let (wait, reason) =
            requested_wait(&head.headers, &*self.wall_clock, self.rate_limit_headers)?;
        Some(if wait > self.max {
            Err(wait)
        } else {
            Ok((wait, reason))
        })
    }
}

impl Default for ServerWaits {
    fn default() -> Self {
        ServerWaits::new()
    }
}

impl fmt::Debug for ServerWaits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerWaits")
            .field("statuses", &self.statuses)
            .field("rate_limit_headers", &self.rate_limit_headers)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

/// Parses a `Retry-After` value (RFC 9110 §10.2.3) into a wait from `now`.
///
/// Accepts delta-seconds and the three HTTP-date forms (IMF-fixdate, RFC 850, asctime).
/// A date in the past gives [`Duration::ZERO`]. Negative, empty or malformed values give
/// `None`, so the caller falls back to its own backoff. A delta too large to represent
/// saturates, so a caller's cap on server-requested waits still catches it.
pub fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let value = value.to_str().ok()?.trim();
    if let Some(secs) = parse_delta_seconds(value) {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses a `RateLimit-Reset` or `X-RateLimit-Reset` value into a wait from `now`.
///
/// The value is seconds to wait, or, when it is clearly one (at least 1 000 000 000), a Unix
/// timestamp in seconds, as GitHub sends. A timestamp in the past gives [`Duration::ZERO`].
pub fn parse_rate_limit_reset(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let secs = parse_delta_seconds(value.to_str().ok()?.trim())?;
    if secs < UNIX_TIMESTAMP_THRESHOLD {
        return Some(Duration::from_secs(secs));
    }
    let at = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The wait a response asks for: `Retry-After` first, then, when `rate_limit_headers` is
/// set, `RateLimit-Reset` and `X-RateLimit-Reset`. Only the first value of each is read, and
/// the wall clock only when one of them is there.
fn requested_wait(
    headers: &HeaderMap,
    now: impl Fn() -> SystemTime,
    rate_limit_headers: bool,
) -> Option<(Duration, WaitReason)> {
    if let Some(wait) = headers
        .get(RETRY_AFTER)
        .and_then(|v| parse_retry_after(v, now()))
    {
        return Some((wait, WaitReason::RetryAfter));
    }
    if !rate_limit_headers {
        return None;
    }
    [&RATELIMIT_RESET, &X_RATELIMIT_RESET]
        .into_iter()
        .find_map(|name| {
            headers
                .get(name)
                .and_then(|v| parse_rate_limit_reset(v, now()))
        })
        .map(|wait| (wait, WaitReason::RateLimitReset))
}

/// `1*DIGIT`, saturating instead of overflowing.
fn parse_delta_seconds(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(value.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

#[cfg(test)]
mod tests;
