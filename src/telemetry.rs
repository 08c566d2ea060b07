//! What the layer shows of each attempt: an [`AttemptInfo`] on every attempt's request,
//! a `tracing` span per attempt that follows OpenTelemetry's HTTP conventions, and, with
//! the `opentelemetry` feature, retry metrics.
//!
//! # The attempt on the request
//!
//! Every attempt after the first carries an [`AttemptInfo`] in its request's extensions: its
//! number, whether it is a hedge or a transparent retry, and the wait before it. A layer
//! inside the retry layer (tower-http's `TraceLayer`, a metrics layer, a header of your own)
//! reads it with [`AttemptInfo::of`], which gives the first attempt's info for a request that
//! carries none. The first attempt carries nothing: inserting into a request without
//! extensions costs three allocations, which a request that succeeds at once does not pay.
//!
//! # Spans
//!
//! Each attempt is an `INFO` span, target `retryable_http::attempt`, named `attempt`, with
//! the fields of the [OpenTelemetry HTTP client span] (through `tracing-opentelemetry`, the
//! `otel.*` fields name it after the method, make it a CLIENT span and set its status):
//!
//! | field | value |
//! |---|---|
//! | `http.request.method` | the method, or `_OTHER` (with `http.request.method_original`) for one HTTP does not define |
//! | `url.full` | the URL without userinfo and query |
//! | `server.address`, `server.port` | the host, and the port or the scheme's default |
//! | `http.request.resend_count` | 1, 2, … on every attempt after the first, absent on the first |
//! | `http.response.status_code` | the response's status, once the head arrived |
//! | `error.type` | the status code of a 4xx or 5xx, a gRPC status other than `OK`, or a low-cardinality name of the error: `timeout`, `connection_refused`, `never_sent`… |
//! | `rpc.grpc.status_code` | the gRPC status a Trailers-Only response carries (feature `grpc`) |
//! | `retryable_http.attempt` | the attempt's number, from 1 |
//! | `retryable_http.hedge`, `retryable_http.transparent` | set on a hedge and on a retry of a request the server never processed |
//! | `retryable_http.wait`, `retryable_http.wait_reason` | the wait before the attempt, in seconds, and why it lasted as long ([`WaitReason::name`]: `backoff`, `retry_after`…) |
//! | `retryable_http.decision` | what followed the attempt: `retry`, `return`, `abandoned`, or why the layer stopped ([`StopReason::name`]: `exhausted`, `budget`…) |
//!
//! The span starts before the request is handed to the inner service, which is called and
//! polled inside it: a layer below sees it as the current span (to put its own spans under
//! it, or to send it as `traceparent`). It ends when the response head arrives or the attempt
//! fails. The attempts are siblings, children of the span that was current when the request
//! was made; with no span current, they are children of the layer's `retry` span (`DEBUG`,
//! with the method and the URL), and roots when that is off too. The waits and decisions are
//! events of the `retry` span (`retrying` and `not retrying` at `DEBUG`).
//!
//! Without a subscriber that wants `INFO`, nothing is made. Turn the spans off with a filter
//! such as `retryable_http::attempt=off`.
//!
//! [OpenTelemetry HTTP client span]: https://opentelemetry.io/docs/specs/semconv/http/http-spans/#http-client-span

use std::time::Duration;

use http::Extensions;

#[cfg(doc)]
use crate::policy::StopReason;
use crate::record::WaitReason;

mod fields;
#[cfg(feature = "opentelemetry")]
mod metrics;
mod span;

#[cfg(feature = "opentelemetry")]
pub(crate) use metrics::Metrics;
#[cfg(not(feature = "opentelemetry"))]
pub(crate) use span::Metrics;
pub(crate) use span::{AttemptTrace, Telemetry};

/// One attempt, as the layer sent it: in the extensions of every attempt's request after the
/// first, for the layers inside the retry layer.
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Full;
/// use retryable_http::{RetryLayer, backoff::Backoff, body::ReplayBody, telemetry::AttemptInfo};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), retryable_http::error::BoxError> {
/// // Busy until the third attempt, which it can tell apart.
/// let upstream = service_fn(|request: Request<ReplayBody<Full<Bytes>>>| async move {
///     let attempt = AttemptInfo::of(&request);
///     let mut response = Response::new(Full::new(Bytes::new()));
///     if attempt.resend_count() < 2 {
///         *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
///     }
///     Ok::<_, std::convert::Infallible>(response)
/// });
/// let client = RetryLayer::new()
///     .backoff(Backoff::constant(Duration::from_millis(10)))
///     .layer(upstream);
/// let request = Request::get("http://example.com/").body(Full::new(Bytes::new()))?;
/// assert_eq!(client.oneshot(request).await?.status(), StatusCode::OK);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptInfo {
    number: u32,
    hedge: bool,
    transparent: bool,
    waited: Option<(Duration, WaitReason)>,
}

impl AttemptInfo {
    /// The first attempt: what a request without an `AttemptInfo` is.
    pub const FIRST: AttemptInfo = AttemptInfo {
        number: 1,
        hedge: false,
        transparent: false,
        waited: None,
    };

    /// Attempt `number` (from 2), after `waited`.
    pub(crate) fn retry(number: u32, waited: Option<(Duration, WaitReason)>) -> Self {
        AttemptInfo {
            number,
            hedge: false,
            transparent: false,
            waited,
        }
    }

    /// This attempt, as a hedge when `hedge`.
    pub(crate) fn hedge(mut self, hedge: bool) -> Self {
        self.hedge = hedge;
        self
    }

    /// This attempt, as the retry of a request the server never processed when
    /// `transparent`.
    pub(crate) fn transparent(mut self, transparent: bool) -> Self {
        self.transparent = transparent;
        self
    }

    /// The attempt `request` is: the one in its extensions, or the first.
    pub fn of<B>(request: &http::Request<B>) -> AttemptInfo {
        Self::in_extensions(request.extensions())
    }

    /// The attempt these request extensions say: the one they hold, or the first.
    pub fn in_extensions(extensions: &Extensions) -> AttemptInfo {
        extensions
            .get::<AttemptInfo>()
            .copied()
            .unwrap_or(AttemptInfo::FIRST)
    }

    /// The attempt's number, from 1.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// How many times the request was sent before: 0 for the first attempt, then 1, 2, …
    /// whatever the cause (OpenTelemetry's `http.request.resend_count`).
    pub fn resend_count(&self) -> u32 {
        self.number.saturating_sub(1)
    }

    /// Whether this is a hedge: started while an earlier attempt was still in flight.
    pub fn is_hedge(&self) -> bool {
        self.hedge
    }

    /// Whether this retries a request the server provably never processed: a refused
    /// connection or stream, a `GOAWAY` it fell beyond, or a gRPC transparent retry.
    pub fn is_transparent(&self) -> bool {
        self.transparent
    }

    /// The wait before this attempt and why it lasted as long as it did; `None` for the
    /// first attempt.
    pub fn waited(&self) -> Option<(Duration, WaitReason)> {
        self.waited
    }
}

#[cfg(test)]
mod tests;
