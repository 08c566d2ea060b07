//! [`Attempt`]: what a policy and every hook see of an attempt, and its [`Outcome`].

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode, Uri, request, response};

use super::StopReason;
use crate::error::BoxError;
use crate::redact::{Redacted, RequestHead, ResponseHead};

/// One attempt of a request: what a [`Policy`](super::Policy) sees once it ended, and what every hook sees.
///
/// It holds the request's head, the attempt's number (1 for the first), the time since the
/// request started, and — once the attempt ended — its [outcome](Attempt::outcome). A
/// [`when_exhausted`](crate::RetryLayer::when_exhausted) hook also sees why the layer stops.
///
/// Its `Debug` output shows the request's method and URL without userinfo or query, and
/// header names with the values of credentials and cookies masked.
pub struct Attempt<'a> {
    request: &'a request::Parts,
    outcome: Option<Outcome<'a>>,
    attempts: u32,
    elapsed: Elapsed,
    stop: Option<StopReason>,
}

/// The time since the request started: given, or read from the clock when asked for, so a
/// policy that does not look at it costs no clock read.
#[derive(Debug, Clone, Copy)]
enum Elapsed {
    Given(Duration),
    Since(tokio::time::Instant),
}

/// How an attempt ended.
///
/// Its `Debug` output masks the values of sensitive response headers (`Set-Cookie`, ...).
#[derive(Clone, Copy)]
pub enum Outcome<'a> {
    /// The inner service answered; the body has not been read.
    Response(&'a response::Parts),
    /// The inner service failed (or the attempt timed out).
    Error(&'a (dyn StdError + Send + Sync + 'static)),
}

impl<'a> Outcome<'a> {
    /// The outcome of an attempt that returned `result`.
    pub(crate) fn of(result: Result<&'a response::Parts, &'a BoxError>) -> Self {
        match result {
            Ok(head) => Outcome::Response(head),
            Err(error) => Outcome::Error(&**error),
        }
    }
}

impl<'a> Attempt<'a> {
    /// Describes attempt number `attempts` (1 for the first) of `request`, which ended with
    /// `outcome` `elapsed` after the request started. Useful to test a policy.
    pub fn new(
        request: &'a request::Parts,
        outcome: Outcome<'a>,
        attempts: u32,
        elapsed: Duration,
    ) -> Self {
        Attempt {
            request,
            outcome: Some(outcome),
            attempts,
            elapsed: Elapsed::Given(elapsed),
            stop: None,
        }
    }

    /// Attempt `attempts` of a request that started at `started`, before or after it ended.
    pub(crate) fn started_at(
        request: &'a request::Parts,
        outcome: Option<Outcome<'a>>,
        attempts: u32,
        started: tokio::time::Instant,
    ) -> Self {
        Attempt {
            request,
            outcome,
            attempts,
            elapsed: Elapsed::Since(started),
            stop: None,
        }
    }

    /// The same attempt, with the reason the layer stops after it.
    pub(crate) fn stopping(mut self, reason: StopReason) -> Self {
        self.stop = Some(reason);
        self
    }

    /// The request's head: the caller's, as every attempt starts from it (as changed by a
    /// [`prepare_retry`](crate::RetryLayer::prepare_retry) hook), or, before an attempt, the
    /// head about to be sent.
    pub fn request(&self) -> &'a request::Parts {
        self.request
    }

    /// The request's method.
    pub fn method(&self) -> &'a Method {
        &self.request.method
    }

    /// The request's URI. Mind that it may hold credentials and query parameters:
    /// [`url`](Attempt::url) is safe to log.
    pub fn uri(&self) -> &'a Uri {
        &self.request.uri
    }

    /// The request's URL without userinfo and query, for logs.
    pub fn url(&self) -> impl fmt::Display + 'a {
        Redacted(&self.request.uri)
    }

    /// The request's headers.
    pub fn headers(&self) -> &'a HeaderMap {
        &self.request.headers
    }

    /// How the attempt ended; `None` before it ended (in an
    /// [`on_attempt`](crate::RetryLayer::on_attempt) hook).
    pub fn outcome(&self) -> Option<Outcome<'a>> {
        self.outcome
    }

    /// The response status, if the attempt got a response.
    pub fn status(&self) -> Option<StatusCode> {
        match self.outcome {
            Some(Outcome::Response(head)) => Some(head.status),
            _ => None,
        }
    }

    /// The error, if the attempt failed.
    pub fn error(&self) -> Option<&'a (dyn StdError + Send + Sync + 'static)> {
        match self.outcome {
            Some(Outcome::Error(error)) => Some(error),
            _ => None,
        }
    }

    /// How many attempts were made, this one included: 1 for the first attempt.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The time since the request started, waits included.
    pub fn elapsed(&self) -> Duration {
        match self.elapsed {
            Elapsed::Given(elapsed) => elapsed,
            Elapsed::Since(started) => started.elapsed(),
        }
    }

    /// Why the layer stops after this attempt, when it does: in a
    /// [`when_exhausted`](crate::RetryLayer::when_exhausted) hook.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop
    }
}

impl fmt::Debug for Attempt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Attempt");
        d.field("request", &RequestHead(self.request))
            .field("outcome", &self.outcome)
            .field("attempts", &self.attempts)
            .field("elapsed", &self.elapsed);
        if let Some(reason) = &self.stop {
            d.field("stop_reason", reason);
        }
        d.finish()
    }
}

impl fmt::Debug for Outcome<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Response(head) => f
                .debug_tuple("Response")
                .field(&ResponseHead(head))
                .finish(),
            Outcome::Error(error) => f.debug_tuple("Error").field(error).finish(),
        }
    }
}
