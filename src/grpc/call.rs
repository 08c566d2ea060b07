//! A gRPC call as the layer retries it: gRFC A6's decisions, one call at a time.
//!
//! [`Rules`] is what a layer set up with [`RetryLayer::grpc`](crate::RetryLayer::grpc)
//! shares: the service config, and one [`Throttle`] per server. [`Call`] is one call's
//! state: its method's retry policy, its server's throttle, and the retries it made.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, request};
use tokio::time::Instant;

use super::{
    Code, HedgingPolicy, Outcome as Status, Pushback, RetryPolicy, ServiceConfig, Throttle,
};
use crate::authority::{PerAuthority, authority_of};
use crate::body::BodyState;
use crate::classify;
use crate::config::after;
use crate::decide::{Decision, Now};
use crate::error::AttemptTimedOut;
use crate::policy::{Outcome, StopReason};
use crate::record::WaitReason;
use crate::rng::Rng;

/// `grpc-previous-rpc-attempts`: the retries before this attempt, on every attempt but the
/// first.
pub(crate) const PREVIOUS_ATTEMPTS: HeaderName =
    HeaderName::from_static("grpc-previous-rpc-attempts");

/// `grpc-timeout`: the time the call has left.
pub(crate) const TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// What every gRPC call through one layer shares.
pub(crate) struct Rules {
    config: ServiceConfig,
    /// One throttle per server, when the config throttles retries.
    throttles: Option<PerAuthority<Throttle>>,
}

impl Rules {
    pub(crate) fn new(config: ServiceConfig) -> Self {
        let throttles = config.throttling().map(|_| PerAuthority::new());
        Rules { config, throttles }
    }

    /// The call `head` starts, if it is a gRPC call (`content-type: application/grpc`,
    /// or `application/grpc+proto` and the like); `max_retries` caps the retries its
    /// method's policy allows.
    pub(crate) fn call(&self, head: &request::Parts, max_retries: u32) -> Option<Call> {
        if !is_grpc(head) {
            return None;
        }
        let method = self.config.method(head.uri.path());
        let policies = method.filter(|_| max_retries > 0);
        let retry = policies.and_then(|m| m.retry_policy()).cloned();
        let hedging = policies.and_then(|m| m.hedging_policy()).cloned();
        let max_attempts = match (&retry, &hedging) {
            (Some(retry), _) => retry.max_attempts(),
            (_, Some(hedging)) => hedging.max_attempts(),
            (None, None) => 1,
        };
        let max_counted = (max_attempts - 1).min(max_retries);
        let throttle = match (&self.throttles, self.config.throttling()) {
            (Some(throttles), Some(throttling)) if max_counted > 0 => {
                Some(throttles.get(authority_of(head).as_ref(), || throttling.throttle()))
            }
            _ => None,
        };
        let sent = head.headers.get(TIMEOUT).and_then(super::parse_timeout);
        let timeout = match (sent, method.and_then(|m| m.timeout())) {
            (Some(sent), Some(method)) => Some(sent.min(method)),
            (sent, method) => sent.or(method),
        };
        Some(Call {
            retry,
            hedging,
            max_counted,
            throttle,
            timeout,
            sent,
            retries: 0,
            since_pushback: 0,
            transparent: false,
        })
    }
}

impl Rules {
    /// The same rules with throttles of their own, all full.
    pub(crate) fn fresh(&self) -> Self {
        Rules::new(self.config.clone())
    }
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grpc")
            .field("config", &self.config)
            .field("throttles", &self.throttles)
            .finish()
    }
}

/// Whether `head` is a gRPC request.
fn is_grpc(head: &request::Parts) -> bool {
    head.headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|value| {
            let value = value.as_bytes();
            value.starts_with(b"application/grpc")
                && matches!(value.get(16), None | Some(b'+' | b';'))
        })
}

/// One gRPC call's retry state.
#[derive(Debug)]
pub(crate) struct Call {
    /// The method's retry policy; `None` when it has none, and the call is retried only
    /// transparently.
    retry: Option<RetryPolicy>,
    /// The method's hedging policy, if it has one instead.
    hedging: Option<HedgingPolicy>,
    /// The retries the policy allows: `maxAttempts − 1`, or fewer if the request says so.
    max_counted: u32,
    /// The server's throttle, when the config throttles retries and the method has a retry
    /// or hedging policy (a method without one neither spends nor refills it, as in C-core).
    throttle: Option<Arc<Throttle>>,
    /// How long the call may take: the shorter of its `grpc-timeout` and its method's
    /// `timeout`.
    timeout: Option<Duration>,
    /// The `grpc-timeout` the caller sent.
    sent: Option<Duration>,
    /// The retries made, transparent ones not counted.
    retries: u32,
    /// The retries since the last pushback, which restarts the backoff.
    since_pushback: u32,
    /// Whether the call was retried transparently: once per call, as C-core does.
    transparent: bool,
}

impl Call {
    /// How long the call may take, by its own `grpc-timeout` and its method's `timeout`.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The most attempts after the first the call may make: the counted retries, and one
    /// transparent retry.
    pub(crate) fn max_retries(&self) -> u32 {
        self.max_counted + 1
    }

    /// The `grpc-timeout` the caller sent.
    pub(crate) fn sent(&self) -> Option<Duration> {
        self.sent
    }

    /// The hedging policy, when the call is hedged.
    pub(crate) fn hedging(&self) -> Option<&HedgingPolicy> {
        self.hedging.as_ref().filter(|_| self.max_counted > 0)
    }

    /// Whether the server's throttle allows another attempt now: always, when the config
    /// does not throttle.
    pub(crate) fn allows_another(&self) -> bool {
        self.throttle.as_ref().is_none_or(|t| t.allows())
    }

    /// Sets the metadata of attempt `number`: `grpc-previous-rpc-attempts` after a retry
    /// or a hedge, and `grpc-timeout` to the time `left`, if given.
    pub(crate) fn stamp(&self, head: &mut request::Parts, number: u32, left: Option<Duration>) {
        // A hedge follows every attempt before it; a retry, the counted ones.
        let previous = match self.hedging {
            Some(_) => number - 1,
            None => self.retries,
        };
        if previous > 0 {
            head.headers
                .insert(PREVIOUS_ATTEMPTS, HeaderValue::from(previous));
        }
        if let Some(left) = left {
            head.headers.insert(TIMEOUT, super::format_timeout(left));
        }
    }

    /// Whether `head` ends the call whatever else is known: OK, or committed by its
    /// Response-Headers. It is then a success for the throttle. [`decide`](Self::decide)
    /// would say so too; this says it at less cost.
    #[inline]
    pub(crate) fn accepts_at_once(&self, head: &http::response::Parts) -> bool {
        let done = match super::outcome(head) {
            Status::Committed | Status::Status(Code::Ok) => true,
            Status::Status(_) => false,
        };
        if let (true, Some(throttle)) = (done, &self.throttle) {
            throttle.record_success();
        }
        done
    }

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
        let code = match outcome {
            Outcome::Response(head) => match super::outcome(head) {
                Status::Committed => Code::Ok,
                Status::Status(code) => code,
            },
            Outcome::Error(error) => {
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
                code_of(error)
            }
        };
        let Some(policy) = &self.retry else {
            return stop(StopReason::Policy);
        };
        if code == Code::Ok {
            if let Some(throttle) = &self.throttle {
                throttle.record_success();
            }
            return stop(StopReason::Policy);
        }
        if !policy.is_retryable(code) {
            return stop(StopReason::Policy);
        }
        if self.throttle.as_ref().is_some_and(|t| !t.record_failure()) {
            return stop(StopReason::Throttled);
        }
        if body == BodyState::Spent {
            return stop(StopReason::BodyNotReplayable);
        }
        if self.retries >= self.max_counted {
            return stop(StopReason::Exhausted);
        }
        let pushback = match outcome {
            Outcome::Response(head) => super::pushback(&head.headers),
            Outcome::Error(_) => Pushback::None,
        };
        let (wait, why, since_pushback) = match pushback {
            Pushback::Refused => return stop(StopReason::PushedBack),
            Pushback::After(wait) if wait > max_wait => {
                return stop(StopReason::ServerWaitTooLong(wait));
            }
            Pushback::After(wait) => (wait, WaitReason::Pushback, 0),
            Pushback::None => {
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
}

impl Call {
    /// What follows `outcome`, the outcome of one of the attempts of a hedged call, by
    /// gRFC A6: OK or a committed call wins; a status the policy does not call non-fatal
    /// ends the call; a non-fatal one is a failure for the throttle, which may then stop
    /// the hedges, and starts the next hedge at once, or after the server's pushback, or
    /// never when the pushback says so. The hedges in flight go on unless the call ends.
    pub(crate) fn decide_hedged(&mut self, outcome: Outcome<'_>, max_wait: Duration) -> Decision {
        let stop = Decision::Stop;
        let code = match outcome {
            Outcome::Response(head) => match super::outcome(head) {
                Status::Committed => Code::Ok,
                Status::Status(code) => code,
            },
            Outcome::Error(error) => code_of(error),
        };
        let Some(policy) = &self.hedging else {
            return stop(StopReason::Policy);
        };
        if code == Code::Ok {
            if let Some(throttle) = &self.throttle {
                throttle.record_success();
            }
            return stop(StopReason::Policy);
        }
        if !policy.is_non_fatal(code) {
            return stop(StopReason::Policy);
        }
        if self.throttle.as_ref().is_some_and(|t| !t.record_failure()) {
            return stop(StopReason::Throttled);
        }
        let pushback = match outcome {
            Outcome::Response(head) => super::pushback(&head.headers),
            Outcome::Error(_) => Pushback::None,
        };
        match pushback {
            Pushback::Refused => stop(StopReason::PushedBack),
            Pushback::After(wait) if wait > max_wait => stop(StopReason::ServerWaitTooLong(wait)),
            Pushback::After(wait) => Decision::Retry {
                wait,
                why: WaitReason::Pushback,
            },
            Pushback::None => Decision::Retry {
                wait: Duration::ZERO,
                why: WaitReason::Hedge,
            },
        }
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
