//! Which outcomes are retried.
//!
//! A [`Policy`] sees each attempt's outcome — a response head or an error — with the
//! request head, the attempt number and the time since the request started, and answers
//! with an [`Action`]. The layer then applies its limits (retry count, replayable body,
//! server-requested waits, deadline, budget) before it actually retries.
//!
//! [`StandardPolicy`] is the default. Simple custom rules are closures ([`policy_fn`]), and
//! policies compose with [`Policy::or`]:
//!
//! ```
//! use http::{Method, StatusCode};
//! use retryable_http::RetryLayer;
//! use retryable_http::policy::{Action, Policy, StandardPolicy, policy_fn};
//!
//! // The standard rules, and also 409 Conflict on PUT /locks/...
//! let policy = StandardPolicy::new().or(policy_fn(|attempt| {
//!     let conflict = attempt.status() == Some(StatusCode::CONFLICT)
//!         && attempt.method() == Method::PUT
//!         && attempt.uri().path().starts_with("/locks/");
//!     if conflict { Action::Retry } else { Action::Stop }
//! }));
//! let layer = RetryLayer::new().policy(policy);
//! ```

mod closure;
mod standard;

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode, Uri, request, response};

use crate::error::BoxError;
use crate::redact::{Redacted, RequestHead, ResponseHead};

pub use closure::{PolicyFn, policy_fn};
pub use standard::{IDEMPOTENCY_KEY, StandardPolicy, X_IDEMPOTENCY_KEY, is_idempotent};

/// Decides whether an attempt's outcome is retried.
///
/// Implementations are shared by every request of a layer (behind an `Arc`), so they are
/// `Send + Sync` and take `&self`.
pub trait Policy: Send + Sync {
    /// What to do after `attempt`.
    fn decide(&self, attempt: &Attempt<'_>) -> Action;

    /// Whether `request` may be sent more than once at the same time: only such requests
    /// are [hedged](crate::Hedge). By default, [`is_idempotent`]: an idempotent method, or
    /// an idempotency key.
    fn treats_as_idempotent(&self, request: &request::Parts) -> bool {
        is_idempotent(&request.method, &request.headers)
    }

    /// A policy that retries when `self` or, failing that, `other` says so: the first answer
    /// that is not [`Action::Stop`] wins.
    fn or<P>(self, other: P) -> Or<Self, P>
    where
        Self: Sized,
        P: Policy,
    {
        Or {
            first: self,
            second: other,
        }
    }
}

impl<P: Policy + ?Sized> Policy for std::sync::Arc<P> {
    fn decide(&self, attempt: &Attempt<'_>) -> Action {
        (**self).decide(attempt)
    }

    fn treats_as_idempotent(&self, request: &request::Parts) -> bool {
        (**self).treats_as_idempotent(request)
    }
}

impl<P: Policy + ?Sized> Policy for Box<P> {
    fn decide(&self, attempt: &Attempt<'_>) -> Action {
        (**self).decide(attempt)
    }

    fn treats_as_idempotent(&self, request: &request::Parts) -> bool {
        (**self).treats_as_idempotent(request)
    }
}

/// A policy's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Retry after the backoff (or the wait the server asked for).
    Retry,
    /// Retry after exactly this long, whatever the backoff and the server say.
    RetryAfter(Duration),
    /// Do not retry: the outcome goes to the caller as it is.
    Stop,
}

/// One attempt of a request: what a [`Policy`] sees once it ended, and what every hook sees.
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

/// Why an outcome went to the caller instead of being retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The policy does not retry this outcome: a success, or a failure that is not safe to
    /// retry.
    Policy,
    /// No retries left.
    Exhausted,
    /// The request body outgrew the replay cap, or failed, and cannot be made again.
    BodyNotReplayable,
    /// The previous attempt did not hand the request body back in time.
    BodyInUse,
    /// The server asked for a wait above the longest one honoured (see
    /// [`ServerWaits::max`](crate::retry_after::ServerWaits::max)).
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
                write!(f, "the server asked to wait {wait:?}, longer than honoured")
            }
            StopReason::Deadline => f.write_str("the wait would end after the deadline"),
            StopReason::Budget => f.write_str("the retry budget is spent"),
        }
    }
}

/// Two policies, the second asked when the first says [`Action::Stop`]: see [`Policy::or`].
#[derive(Clone, Debug)]
pub struct Or<A, B> {
    first: A,
    second: B,
}

impl<A: Policy, B: Policy> Policy for Or<A, B> {
    fn decide(&self, attempt: &Attempt<'_>) -> Action {
        match self.first.decide(attempt) {
            Action::Stop => self.second.decide(attempt),
            action => action,
        }
    }

    fn treats_as_idempotent(&self, request: &request::Parts) -> bool {
        self.first.treats_as_idempotent(request) || self.second.treats_as_idempotent(request)
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

impl fmt::Debug for dyn Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dyn Policy")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: http::Method, key: bool) -> request::Parts {
        let mut request = http::Request::builder().method(method);
        if key {
            request = request.header("idempotency-key", "k-1");
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_policy_treats_idempotent_methods_and_keyed_requests_as_idempotent_through_any_box() {
        let get = head(http::Method::GET, false);
        let post = head(http::Method::POST, false);
        let keyed = head(http::Method::POST, true);
        let check = |policy: &dyn Policy| {
            [&get, &post, &keyed].map(|request| policy.treats_as_idempotent(request))
        };
        let by_default = policy_fn(|_| Action::Stop);
        assert_eq!(check(&by_default), [true, false, true]);
        let shared: std::sync::Arc<dyn Policy> = std::sync::Arc::new(policy_fn(|_| Action::Stop));
        assert_eq!(check(&shared), [true, false, true]);
        let boxed: Box<dyn Policy> = Box::new(policy_fn(|_| Action::Stop));
        assert_eq!(check(&boxed), [true, false, true]);
        // A policy that retries every method treats every request as idempotent, through a
        // box too.
        let all: Box<dyn Policy> = Box::new(StandardPolicy::new().retry_all_methods());
        assert_eq!(check(&all), [true, true, true]);
        let all: std::sync::Arc<dyn Policy> =
            std::sync::Arc::new(StandardPolicy::new().retry_all_methods());
        assert_eq!(check(&all), [true, true, true]);
    }

    #[test]
    fn either_policy_of_an_or_may_treat_a_request_as_idempotent() {
        let post = head(http::Method::POST, false);
        let get = head(http::Method::GET, false);
        let strict = || policy_fn(|_| Action::Stop);
        let either = strict().or(StandardPolicy::new().retry_all_methods());
        assert!(either.treats_as_idempotent(&post));
        let either = StandardPolicy::new().retry_all_methods().or(strict());
        assert!(either.treats_as_idempotent(&post));
        let neither = strict().or(strict());
        assert!(!neither.treats_as_idempotent(&post));
        assert!(neither.treats_as_idempotent(&get));
    }

    #[test]
    fn every_stop_reason_reads_as_a_sentence_and_a_dyn_policy_shows_its_kind() {
        let reasons = [
            StopReason::Policy,
            StopReason::Exhausted,
            StopReason::BodyNotReplayable,
            StopReason::BodyInUse,
            StopReason::ServerWaitTooLong(std::time::Duration::from_secs(90)),
            StopReason::Deadline,
            StopReason::Budget,
        ]
        .map(|reason| reason.to_string());
        assert_eq!(
            reasons,
            [
                "the policy does not retry this outcome",
                "no retries left",
                "the request body cannot be replayed",
                "the request body is still in use by the previous attempt",
                "the server asked to wait 90s, longer than honoured",
                "the wait would end after the deadline",
                "the retry budget is spent",
            ]
        );
        let policy: Box<dyn Policy> = Box::new(StandardPolicy::new());
        assert_eq!(format!("{:?}", &*policy), "dyn Policy");
        assert_eq!(
            format!("{:?}", policy_fn(|_| Action::Stop)),
            "PolicyFn { .. }"
        );
    }

    #[test]
    fn an_outcome_shows_its_status_or_error_and_no_secret() {
        let head = http::Response::builder()
            .status(503)
            .header("set-cookie", "session=s3cret")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let shown = format!("{:?}", Outcome::Response(&head));
        assert!(
            shown.starts_with("Response(") && shown.contains("503"),
            "{shown}"
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        let error = std::io::Error::other("connection reset");
        let shown = format!("{:?}", Outcome::Error(&error));
        assert!(
            shown.starts_with("Error(") && shown.contains("connection reset"),
            "{shown}"
        );
    }
}
