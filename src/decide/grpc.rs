//! gRFC A6's decisions for a gRPC call: what follows each attempt's outcome, retried or
//! hedged, as C-core orders its checks.

use std::time::Duration;

use tokio::time::Instant;

use super::{Decision, Now};
use crate::a6::{self, Call, Outcome as Status, Pushback};
use crate::body::BodyState;
use crate::classify;
use crate::config::after;
use crate::error::AttemptTimedOut;
use crate::grpc_code::Code;
use crate::policy::{Outcome, StopReason};
use crate::record::WaitReason;
use crate::rng::Rng;

impl Call {
    /// What follows `outcome`, by gRFC A6 and C-core's order of checks:
    ///
    /// 1. A request that never reached the server's application is retried at once,
    ///    transparently: not counted, not throttled, once per call.
    /// 2. Without a retry policy, nothing more: the outcome is the caller's.
    /// 3. OK, or a call committed to its response: a success for the throttle.
    /// 4. A status the policy does not retry: the caller's, unrecorded.
    /// 5. A retryable status is a failure for the throttle, which may then refuse.
    /// 6. A body that cannot be sent again commits the call.
    /// 7. `maxAttempts`.
    /// 8. The server's pushback: a refusal, or the exact wait, which restarts the backoff
    ///    (a wait above `max_wait` is refused: a server cannot make the client sleep for
    ///    hours); else the backoff, `min(initial × multiplier^n, max) × U(0.8, 1.2)`.
    /// 9. The deadline.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn decide(
        &mut self,
        outcome: Outcome<'_>,
        body: BodyState,
        max_wait: Duration,
        deadline: Option<Instant>,
        now: &mut Now,
        rng: &mut Option<Rng>,
    ) -> Decision {
        let stop = Decision::Stop;
        let after_deadline =
            |wait, now: &mut Now| deadline.is_some_and(|d| after(now.get(), wait) > d);
        if let Outcome::Error(error) = outcome {
            if !self.transparent && classify::is_unprocessed(error) {
                if body == BodyState::Spent {
                    return stop(StopReason::BodyNotReplayable);
                }
                if after_deadline(Duration::ZERO, now) {
                    return stop(StopReason::Deadline);
                }
                self.transparent = true;
                return Decision::Retry {
                    wait: Duration::ZERO,
                    why: WaitReason::Transparent,
                };
            }
        }
        let code = code(outcome);
        let Some(policy) = &self.retry else {
            return stop(StopReason::Policy);
        };
        if let Some(reason) = self.count(code, policy.is_retryable(code)) {
            return stop(reason);
        }
        if body == BodyState::Spent {
            return stop(StopReason::BodyNotReplayable);
        }
        if self.retries >= self.max_counted {
            return stop(StopReason::Exhausted);
        }
        let (wait, why, since_pushback) = match pushed_back(outcome, max_wait) {
            Err(reason) => return stop(reason),
            Ok(Some(wait)) => (wait, WaitReason::Pushback, 0),
            Ok(None) => {
                let rng = rng.get_or_insert_with(Rng::new);
                let wait = jittered(policy.backoff(self.since_pushback + 1), rng);
                (wait, WaitReason::Backoff, self.since_pushback + 1)
            }
        };
        if after_deadline(wait, now) {
            return stop(StopReason::Deadline);
        }
        self.retries += 1;
        self.since_pushback = since_pushback;
        Decision::Retry { wait, why }
    }

    /// What follows `outcome`, the outcome of one of the attempts of a hedged call, by
    /// gRFC A6: OK or a committed call wins; a status the policy does not call non-fatal
    /// ends the call; a non-fatal one is a failure for the throttle, which may then stop
    /// the hedges, and starts the next hedge at once, or after the server's pushback, or
    /// never when the pushback says so. The hedges in flight go on unless the call ends.
    pub(crate) fn decide_hedged(&mut self, outcome: Outcome<'_>, max_wait: Duration) -> Decision {
        let code = code(outcome);
        let Some(policy) = &self.hedging else {
            return Decision::Stop(StopReason::Policy);
        };
        if let Some(reason) = self.count(code, policy.is_non_fatal(code)) {
            return Decision::Stop(reason);
        }
        match pushed_back(outcome, max_wait) {
            Err(reason) => Decision::Stop(reason),
            Ok(Some(wait)) => Decision::Retry {
                wait,
                why: WaitReason::Pushback,
            },
            Ok(None) => Decision::Retry {
                wait: Duration::ZERO,
                why: WaitReason::Hedge,
            },
        }
    }

    /// Counts an attempt that ended with `code` in the throttle, as C-core does: OK is a
    /// success, a status the policy acts on (`acted_on`) a failure, any other nothing.
    /// Returns why the call stops here, if it does: it succeeded, the policy does not act
    /// on its status, or the throttle refuses another attempt.
    fn count(&self, code: Code, acted_on: bool) -> Option<StopReason> {
        if code == Code::Ok {
            if let Some(throttle) = &self.throttle {
                throttle.record_success();
            }
            return Some(StopReason::Policy);
        }
        if !acted_on {
            return Some(StopReason::Policy);
        }
        if self.throttle.as_ref().is_some_and(|t| !t.record_failure()) {
            return Some(StopReason::Throttled);
        }
        None
    }
}

/// The status of an attempt that ended with `outcome`: a committed call counts as OK.
fn code(outcome: Outcome<'_>) -> Code {
    match outcome {
        Outcome::Response(head) => match a6::outcome(head) {
            Status::Committed => Code::Ok,
            Status::Status(code) => code,
        },
        Outcome::Error(error) => code_of(error),
    }
}

/// The wait the server asked for with `grpc-retry-pushback-ms`, if any; an error for a
/// pushback that stops the retries: negative or malformed, or above `max_wait`.
fn pushed_back(outcome: Outcome<'_>, max_wait: Duration) -> Result<Option<Duration>, StopReason> {
    let Outcome::Response(head) = outcome else {
        return Ok(None);
    };
    match a6::pushback(&head.headers) {
        Pushback::None => Ok(None),
        Pushback::Refused => Err(StopReason::PushedBack),
        Pushback::After(wait) if wait > max_wait => Err(StopReason::ServerWaitTooLong(wait)),
        Pushback::After(wait) => Ok(Some(wait)),
    }
}

/// The status a gRPC client gives a call whose attempt failed with `error`: DEADLINE_EXCEEDED
/// for an attempt cut off by its timeout, UNAVAILABLE for a failure of the transport.
pub(crate) fn code_of(error: &(dyn std::error::Error + 'static)) -> Code {
    let timed_out = classify::chain(error).any(|e| e.is::<AttemptTimedOut>());
    if timed_out {
        Code::DeadlineExceeded
    } else {
        Code::Unavailable
    }
}

/// `wait` times a factor drawn uniformly from 0.8 to 1.2, as gRFC A6's backoff.
fn jittered(wait: Duration, rng: &mut Rng) -> Duration {
    // 53 random bits: a uniform draw from [0, 1).
    let unit = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    Duration::try_from_secs_f64(wait.as_secs_f64() * (0.8 + 0.4 * unit)).unwrap_or(wait)
}

#[cfg(test)]
mod tests;
