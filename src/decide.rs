//! Whether an attempt's outcome is retried, and after how long: one pure function.
//!
//! [`decide`] takes the configuration, what is known of the request so far, the outcome and
//! the time, and returns the decision; it changes nothing but the jitter's generator. The
//! retry future only applies it: the budget, paid last, is the one side effect of a retry
//! decided.

use std::time::Duration;

use http::request;
use tokio::time::Instant;

use crate::body::BodyState;
use crate::classify::{self, classify};
use crate::config::{Config, after};
use crate::error::Report;
use crate::policy::{Action, Attempt, Outcome, Policy, StopReason};
use crate::record::WaitReason;
use crate::rng::Rng;

/// What the layer knows of a request when it decides.
#[derive(Clone, Copy, Debug)]
pub(crate) struct History {
    /// The attempts made, the last included.
    pub(crate) attempts: u32,
    /// The retries the request may make.
    pub(crate) max_retries: u32,
    pub(crate) started: Instant,
    pub(crate) deadline: Option<Instant>,
    /// The wait before the last attempt; zero before the first retry.
    pub(crate) previous_wait: Duration,
    /// Whether a later attempt can have the request body.
    pub(crate) body: BodyState,
    /// Whether the request is hedged: a retry the backoff would delay starts at once.
    pub(crate) hedging: bool,
}

/// The current time, read from the clock the first time it is needed: a request that is
/// not retried does not read it again.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Now(Option<Instant>);

impl Now {
    /// The time, when asked.
    pub(crate) fn lazy() -> Self {
        Now(None)
    }

    /// A fixed time.
    #[cfg(test)]
    pub(crate) fn at(now: Instant) -> Self {
        Now(Some(now))
    }

    pub(crate) fn get(&mut self) -> Instant {
        *self.0.get_or_insert_with(Instant::now)
    }
}

/// The decision after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Retry after `wait`, unless the budget refuses.
    Retry { wait: Duration, why: WaitReason },
    /// Give the outcome to the caller.
    Stop(StopReason),
}

impl Decision {
    /// What it is, as an attempt's span says: `retry`, `return` (the policy accepts the
    /// outcome), or why the layer stops ([`StopReason::name`]).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Decision::Retry { .. } => "retry",
            Decision::Stop(StopReason::Policy) => "return",
            Decision::Stop(reason) => reason.name(),
        }
    }
}

/// Decides what follows `outcome`, the outcome of the last of `history.attempts` attempts
/// of `request`, at `now`. `rng` draws the jitter; it is made when first needed.
#[inline(always)]
pub(crate) fn decide(
    config: &Config,
    policy: &dyn Policy,
    request: &request::Parts,
    outcome: Outcome<'_>,
    history: &History,
    now: &mut Now,
    rng: &mut Option<Rng>,
) -> Decision {
    let attempt = Attempt::started_at(request, Some(outcome), history.attempts, history.started);
    let action = match (policy.decide(&attempt), outcome) {
        // A request the server provably never saw is safe to retry, whatever the policy
        // was written for.
        (Action::Stop, Outcome::Error(error))
            if config.retry_unprocessed && classify::is_unprocessed(error) =>
        {
            Action::Retry
        }
        (action, _) => action,
    };
    let stop = |reason| Decision::Stop(reason);
    if action == Action::Stop {
        return stop(StopReason::Policy);
    }
    if history.attempts > history.max_retries {
        return stop(StopReason::Exhausted);
    }
    if history.body == BodyState::Spent {
        return stop(StopReason::BodyNotReplayable);
    }
    let (wait, why) = match (action, outcome) {
        (Action::RetryAfter(wait), _) => (wait, WaitReason::Policy),
        (_, Outcome::Error(error)) if classify::is_graceful_shutdown(error) => {
            (Duration::ZERO, WaitReason::GracefulShutdown)
        }
        (_, Outcome::Response(head)) => match config.server_waits.requested(head) {
            Some(Ok(asked)) => asked,
            Some(Err(too_long)) => return stop(StopReason::ServerWaitTooLong(too_long)),
            None if history.hedging => (Duration::ZERO, WaitReason::Hedge),
            None => (
                backoff(config, history, Some(head), rng),
                WaitReason::Backoff,
            ),
        },
        (_, Outcome::Error(_)) if history.hedging => (Duration::ZERO, WaitReason::Hedge),
        (_, Outcome::Error(_)) => (backoff(config, history, None, rng), WaitReason::Backoff),
    };
    if history.deadline.is_some_and(|d| after(now.get(), wait) > d) {
        return stop(StopReason::Deadline);
    }
    Decision::Retry { wait, why }
}

/// One event per decision: `retrying` and `not retrying` at debug, a success at trace.
#[inline(always)]
pub(crate) fn log(attempt: u32, max_retries: u32, outcome: Outcome<'_>, decision: &Decision) {
    // NOTE: the success, by far the most common decision, is checked inline; the others
    // are worth a call.
    match (decision, outcome) {
        (Decision::Stop(_), Outcome::Response(head)) if head.status.is_success() => {
            tracing::trace!(attempt, status = head.status.as_u16(), "done")
        }
        _ => log_retry_or_stop(attempt, max_retries, outcome, decision),
    }
}

fn log_retry_or_stop(attempt: u32, max_retries: u32, outcome: Outcome<'_>, decision: &Decision) {
    let left = max_retries.saturating_sub(attempt);
    match (decision, outcome) {
        (Decision::Retry { wait, why }, Outcome::Response(head)) => tracing::debug!(
            attempt,
            status = head.status.as_u16(),
            grpc_status = grpc_status(head),
            wait = ?wait,
            wait_from = %why,
            retries_left = left,
            "retrying",
        ),
        (Decision::Retry { wait, why }, Outcome::Error(error)) => tracing::debug!(
            attempt,
            error = %Report::new(error),
            class = ?classify(error),
            wait = ?wait,
            wait_from = %why,
            retries_left = left,
            "retrying",
        ),
        (Decision::Stop(reason), Outcome::Response(head)) => tracing::debug!(
            attempt,
            status = head.status.as_u16(),
            grpc_status = grpc_status(head),
            reason = %reason,
            "not retrying",
        ),
        (Decision::Stop(reason), Outcome::Error(error)) => tracing::debug!(
            attempt,
            error = %Report::new(error),
            class = ?classify(error),
            reason = %reason,
            "not retrying",
        ),
    }
}

/// The name of the gRPC status a response head carries, for the events: `UNAVAILABLE`.
#[cfg_attr(not(feature = "grpc"), allow(unused_variables))]
fn grpc_status(head: &http::response::Parts) -> Option<&'static str> {
    #[cfg(feature = "grpc")]
    return crate::grpc_code::status_in_headers(&head.headers).map(|code| code.as_str());
    #[cfg(not(feature = "grpc"))]
    None
}

fn backoff(
    config: &Config,
    history: &History,
    head: Option<&http::response::Parts>,
    rng: &mut Option<Rng>,
) -> Duration {
    let rng = rng.get_or_insert_with(Rng::new);
    config
        .backoff
        .compute(history.attempts, history.previous_wait, head, rng)
}

#[cfg(feature = "grpc")]
mod grpc;
#[cfg(test)]
mod tests;
