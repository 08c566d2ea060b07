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

mod attempt;
mod closure;
mod or;
mod standard;

use std::fmt;
use std::time::Duration;

use http::request;

pub use attempt::{Attempt, Outcome};
pub use closure::{PolicyFn, policy_fn};
pub use or::Or;
pub use standard::{IDEMPOTENCY_KEY, StandardPolicy, X_IDEMPOTENCY_KEY, is_idempotent};

/// Decides whether an attempt's outcome is retried.
///
/// Implementations are shared by every request of a layer (behind an `Arc`), so they are
/// `Send + Sync` and take `&self`.
pub trait Policy: Send + Sync {
    /// What to do after `attempt`.
    fn decide(&self, attempt: &Attempt<'_>) -> Action;

    /// Whether `request` may be sent more than once at the same time: only such requests
    /// are [hedged](crate::hedge::Hedge). By default, [`is_idempotent`]: an idempotent method, or
    /// an idempotency key.
    fn treats_as_idempotent(&self, request: &request::Parts) -> bool {
        is_idempotent(&request.method, &request.headers)
    }

    /// Whether [`decide`](Policy::decide) answers [`Action::Stop`] for every response with a
    /// 2xx status, whatever else it carries. The layer then returns such a response without
    /// building the [`Attempt`] a policy sees. `false` unless a policy says otherwise; say
    /// `true` only when it always holds.
    fn stops_on_success(&self) -> bool {
        false
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

    fn stops_on_success(&self) -> bool {
        (**self).stops_on_success()
    }

    fn treats_as_idempotent(&self, request: &request::Parts) -> bool {
        (**self).treats_as_idempotent(request)
    }
}

impl<P: Policy + ?Sized> Policy for Box<P> {
    fn decide(&self, attempt: &Attempt<'_>) -> Action {
        (**self).decide(attempt)
    }

    fn stops_on_success(&self) -> bool {
        (**self).stops_on_success()
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
    /// gRPC's retry throttle for the server holds too few tokens: too many of its calls
    /// failed lately (see [`Throttle`](crate::grpc::Throttle)).
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    Throttled,
    /// A gRPC server asked not to retry, with a negative or malformed
    /// `grpc-retry-pushback-ms`.
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    PushedBack,
}

impl StopReason {
    /// A short, stable name for the reason, as spans and metrics carry it: `policy`,
    /// `exhausted`, `body_not_replayable`, `body_in_use`, `server_wait_too_long`, `deadline`,
    /// `budget`, `throttled`, `pushed_back`.
    pub fn name(&self) -> &'static str {
        match self {
            StopReason::Policy => "policy",
            StopReason::Exhausted => "exhausted",
            StopReason::BodyNotReplayable => "body_not_replayable",
            StopReason::BodyInUse => "body_in_use",
            StopReason::ServerWaitTooLong(_) => "server_wait_too_long",
            StopReason::Deadline => "deadline",
            StopReason::Budget => "budget",
            #[cfg(feature = "grpc")]
            StopReason::Throttled => "throttled",
            #[cfg(feature = "grpc")]
            StopReason::PushedBack => "pushed_back",
        }
    }
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
            #[cfg(feature = "grpc")]
            StopReason::Throttled => f.write_str("retries to this server are throttled"),
            #[cfg(feature = "grpc")]
            StopReason::PushedBack => f.write_str("the server asked not to retry"),
        }
    }
}

impl fmt::Debug for dyn Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dyn Policy")
    }
}

#[cfg(test)]
mod tests;
