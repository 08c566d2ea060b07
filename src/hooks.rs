//! Hooks: code of yours that runs at each step of a request.
//!
//! | go-retryablehttp | here | when |
//! |---|---|---|
//! | `RequestLogHook` | [`RetryLayer::on_attempt`] | before every attempt, the first included |
//! | `ResponseLogHook` | [`RetryLayer::on_response`] | on every response head |
//! | `PrepareRetry` | [`RetryLayer::prepare_retry`] | before every retry (never before the first attempt), with `&mut` access to the request head |
//! | `ErrorHandler` | [`RetryLayer::when_exhausted`], [`RetryLayer::fail_when_exhausted`] | when the layer gives up on a response it wanted to retry |
//!
//! Hooks are synchronous and run inside the request's future: keep them short. A hook that
//! needs fresh data (a token) reads it from a cache that something else keeps fresh.
//!
//! ```
//! use std::sync::{Arc, RwLock};
//! use http::header::{AUTHORIZATION, HeaderValue};
//! use retryable_http::RetryLayer;
//!
//! let token = Arc::new(RwLock::new(HeaderValue::from_static("Bearer first")));
//! let current = token.clone();
//! let layer = RetryLayer::new()
//!     .on_attempt(|attempt, request| {
//!         tracing::info!(attempt, method = %request.method, "sending");
//!     })
//!     // A 401 is not retried by the standard policy, but a 503 is: make sure the retry
//!     // carries the newest token.
//!     .prepare_retry(move |request, _last| {
//!         request.headers.insert(AUTHORIZATION, current.read().unwrap().clone());
//!         Ok(())
//!     })
//!     // go-retryablehttp's default: an error once retries run out.
//!     .fail_when_exhausted();
//! ```
//!
//! [`RetryLayer::on_attempt`]: crate::RetryLayer::on_attempt
//! [`RetryLayer::on_response`]: crate::RetryLayer::on_response
//! [`RetryLayer::prepare_retry`]: crate::RetryLayer::prepare_retry
//! [`RetryLayer::when_exhausted`]: crate::RetryLayer::when_exhausted
//! [`RetryLayer::fail_when_exhausted`]: crate::RetryLayer::fail_when_exhausted

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{request, response};

use crate::BoxError;
use crate::policy::Outcome;
use crate::redact::{RequestHead, ResponseHead};

pub(crate) type OnAttempt = Arc<dyn Fn(u32, &request::Parts) + Send + Sync>;
pub(crate) type OnResponse = Arc<dyn Fn(u32, &response::Parts) + Send + Sync>;
pub(crate) type PrepareRetry =
    Arc<dyn Fn(&mut request::Parts, Outcome<'_>) -> Result<(), BoxError> + Send + Sync>;
pub(crate) type WhenExhausted = Arc<dyn Fn(&GiveUp<'_>) -> Result<(), BoxError> + Send + Sync>;

/// The hooks of a layer; all off by default.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) on_attempt: Option<OnAttempt>,
    pub(crate) on_response: Option<OnResponse>,
    pub(crate) prepare_retry: Option<PrepareRetry>,
    pub(crate) when_exhausted: Option<WhenExhausted>,
}

/// Why an outcome went to the caller instead of being retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The policy does not retry this outcome: a success, or a failure that is not safe to
    /// retry.
    Policy,
    /// No retries left.
    Exhausted,
    /// The request body outgrew the replay cap, or failed.
    BodyNotReplayable,
    /// The previous attempt did not hand the request body back in time.
    BodyInUse,
    /// The server asked for a wait above
    /// [`max_retry_after`](crate::RetryLayer::max_retry_after).
    ServerWaitTooLong(Duration),
    /// The wait would end after the layer's [deadline](crate::RetryLayer::deadline).
    Deadline,
    /// The [retry budget](crate::budget) cannot pay for a retry.
    Budget,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Policy => f.write_str("the policy does not retry this outcome"),
            StopReason::Exhausted => f.write_str("no retries left"),
            StopReason::BodyNotReplayable => f.write_str("the request body cannot be replayed"),
            StopReason::BodyInUse => {
                f.write_str("the request body is still in use by the previous attempt")
            }
            StopReason::ServerWaitTooLong(wait) => {
                write!(
                    f,
                    "the server asked to wait {wait:?}, above max_retry_after"
                )
            }
            StopReason::Deadline => f.write_str("the wait would end after the deadline"),
            StopReason::Budget => f.write_str("the retry budget is spent"),
        }
    }
}

/// A response the layer wanted to retry but gives up on: what a
/// [`when_exhausted`](crate::RetryLayer::when_exhausted) hook sees.
///
/// Its `Debug` output shows the URL without userinfo or query, and masks the values of
/// sensitive headers.
pub struct GiveUp<'a> {
    request: &'a request::Parts,
    response: &'a response::Parts,
    attempts: u32,
    reason: StopReason,
}

impl<'a> GiveUp<'a> {
    pub(crate) fn new(
        request: &'a request::Parts,
        response: &'a response::Parts,
        attempts: u32,
        reason: StopReason,
    ) -> Self {
        GiveUp {
            request,
            response,
            attempts,
            reason,
        }
    }

    /// The caller's request head.
    pub fn request(&self) -> &'a request::Parts {
        self.request
    }

    /// The head of the last response.
    pub fn response(&self) -> &'a response::Parts {
        self.response
    }

    /// How many attempts were made.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Why the layer stops.
    pub fn reason(&self) -> StopReason {
        self.reason
    }
}

impl fmt::Debug for GiveUp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GiveUp")
            .field("request", &RequestHead(self.request))
            .field("response", &ResponseHead(self.response))
            .field("attempts", &self.attempts)
            .field("reason", &self.reason)
            .finish()
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("on_attempt", &self.on_attempt.is_some())
            .field("on_response", &self.on_response.is_some())
            .field("prepare_retry", &self.prepare_retry.is_some())
            .field("when_exhausted", &self.when_exhausted.is_some())
            .finish()
    }
}
