//! Whether an attempt's outcome is retried, and after how long: one pure function.
//!
//! [`decide`] takes the configuration, what is known of the request so far, the outcome and
//! the time, and returns the decision; it changes nothing but the jitter's generator. The
//! retry future only applies it: the budget, paid last, is the one side effect of a retry
//! decided.

use std::time::Duration;

use http::request;
use tokio::time::Instant;

use crate::attempts::WaitReason;
use crate::classify;
use crate::config::{Config, after};
use crate::policy::{Action, Attempt, Outcome, Policy, StopReason};
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

/// Whether a later attempt can have the request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyState {
    /// Empty, or kept in memory so far.
    Replayable,
    /// Not kept, but the request carries a way to make it again.
    Reopenable,
    /// Neither: it outgrew the replay cap or failed.
    Spent,
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

/// Decides what follows `outcome`, the outcome of the last of `history.attempts` attempts
/// of `request`, at `now`. `rng` draws the jitter; it is made when first needed.
#[inline]
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

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::Arc;
    use std::time::SystemTime;

    use http::{Request, Response, StatusCode};

    use super::*;
    use crate::backoff::Backoff;
    use crate::policy::policy_fn;
    use crate::retry_after::ServerWaits;

    const SECOND: Duration = Duration::from_secs(1);

    fn config() -> Config {
        Config {
            backoff: Backoff::constant(SECOND),
            server_waits: ServerWaits::new().wall_clock(|| SystemTime::UNIX_EPOCH),
            ..Config::default()
        }
    }

    fn get() -> request::Parts {
        Request::get("http://example.test/")
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn post() -> request::Parts {
        Request::post("http://example.test/")
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn response(status: u16, headers: &[(&'static str, &'static str)]) -> http::response::Parts {
        let mut response = Response::builder().status(status);
        for (name, value) in headers {
            response = response.header(*name, *value);
        }
        response.body(()).unwrap().into_parts().0
    }

    fn history(attempts: u32) -> History {
        History {
            attempts,
            max_retries: 4,
            started: Instant::now(),
            deadline: None,
            previous_wait: Duration::ZERO,
            body: BodyState::Replayable,
            hedging: false,
        }
    }

    fn run(
        config: &Config,
        request: &request::Parts,
        outcome: Outcome<'_>,
        h: &History,
    ) -> Decision {
        let mut now = Now::at(h.started);
        decide(
            config,
            &*config.policy,
            request,
            outcome,
            h,
            &mut now,
            &mut Some(Rng::from_seed(1)),
        )
    }

    fn retry(wait: Duration, why: WaitReason) -> Decision {
        Decision::Retry { wait, why }
    }

    #[test]
    fn a_retryable_status_waits_for_the_backoff_until_retries_run_out() {
        let (c, head) = (config(), response(502, &[]));
        let outcome = Outcome::Response(&head);
        assert_eq!(
            run(&c, &get(), outcome, &history(1)),
            retry(SECOND, WaitReason::Backoff)
        );
        assert_eq!(
            run(&c, &get(), outcome, &history(4)),
            retry(SECOND, WaitReason::Backoff)
        );
        assert_eq!(
            run(&c, &get(), outcome, &history(5)),
            Decision::Stop(StopReason::Exhausted)
        );
        let ok = response(200, &[]);
        assert_eq!(
            run(&c, &get(), Outcome::Response(&ok), &history(1)),
            Decision::Stop(StopReason::Policy)
        );
    }

    #[test]
    fn the_server_sets_the_wait_unless_it_asks_too_much() {
        let c = config();
        let asks = |v| response(503, &[("retry-after", v)]);
        let seven = asks("7");
        assert_eq!(
            run(&c, &get(), Outcome::Response(&seven), &history(1)),
            retry(7 * SECOND, WaitReason::RetryAfter)
        );
        let hours = asks("3600");
        assert_eq!(
            run(&c, &get(), Outcome::Response(&hours), &history(1)),
            Decision::Stop(StopReason::ServerWaitTooLong(3600 * SECOND))
        );
        // A policy's own wait wins over the server's.
        let c = Config {
            policy: Arc::new(policy_fn(|_| Action::RetryAfter(Duration::from_millis(5)))),
            ..config()
        };
        assert_eq!(
            run(&c, &get(), Outcome::Response(&hours), &history(1)),
            retry(Duration::from_millis(5), WaitReason::Policy)
        );
    }

    #[test]
    fn a_wait_past_the_deadline_is_not_started() {
        let c = config();
        let head = response(502, &[]);
        let mut h = history(1);
        h.deadline = Some(h.started + SECOND);
        assert_eq!(
            run(&c, &get(), Outcome::Response(&head), &h),
            retry(SECOND, WaitReason::Backoff)
        );
        h.deadline = Some(h.started + SECOND / 2);
        assert_eq!(
            run(&c, &get(), Outcome::Response(&head), &h),
            Decision::Stop(StopReason::Deadline)
        );
    }

    #[test]
    fn a_hedged_request_retries_at_once_unless_the_server_asked_for_a_wait() {
        let c = config();
        let mut h = history(1);
        h.hedging = true;
        h.deadline = Some(h.started + SECOND / 2);
        let busy = response(503, &[]);
        assert_eq!(
            run(&c, &get(), Outcome::Response(&busy), &h),
            retry(Duration::ZERO, WaitReason::Hedge)
        );
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(
            run(&c, &get(), Outcome::Error(&refused), &h),
            retry(Duration::ZERO, WaitReason::Hedge)
        );
        h.deadline = None;
        let asked = response(503, &[("retry-after", "2")]);
        assert_eq!(
            run(&c, &get(), Outcome::Response(&asked), &h),
            retry(2 * SECOND, WaitReason::RetryAfter)
        );
    }

    #[test]
    fn a_body_that_cannot_be_had_again_stops_unless_it_can_be_reopened() {
        let c = config();
        let head = response(503, &[]);
        let mut h = history(1);
        h.body = BodyState::Spent;
        assert_eq!(
            run(&c, &get(), Outcome::Response(&head), &h),
            Decision::Stop(StopReason::BodyNotReplayable)
        );
        h.body = BodyState::Reopenable;
        assert_eq!(
            run(&c, &get(), Outcome::Response(&head), &h),
            retry(SECOND, WaitReason::Backoff)
        );
    }

    #[test]
    fn never_sent_requests_are_retried_under_any_policy_unless_told_not_to() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        let never = Config {
            policy: Arc::new(policy_fn(|_| Action::Stop)),
            ..config()
        };
        assert_eq!(
            run(&never, &post(), Outcome::Error(&refused), &history(1)),
            retry(SECOND, WaitReason::Backoff)
        );
        assert_eq!(
            run(&never, &get(), Outcome::Error(&reset), &history(1)),
            Decision::Stop(StopReason::Policy)
        );
        let only = Config {
            retry_unprocessed: false,
            ..never
        };
        assert_eq!(
            run(&only, &post(), Outcome::Error(&refused), &history(1)),
            Decision::Stop(StopReason::Policy)
        );
    }

    #[test]
    fn the_standard_policy_keeps_a_post_that_may_have_been_processed() {
        let c = config();
        let bad_gateway = response(502, &[]);
        let unavailable = response(503, &[]);
        assert_eq!(
            run(&c, &post(), Outcome::Response(&bad_gateway), &history(1)),
            Decision::Stop(StopReason::Policy)
        );
        assert_eq!(
            run(&c, &post(), Outcome::Response(&unavailable), &history(1)),
            retry(SECOND, WaitReason::Backoff)
        );
        let status = StatusCode::from_u16(501).unwrap();
        let not_implemented = response(status.as_u16(), &[]);
        assert_eq!(
            run(&c, &get(), Outcome::Response(&not_implemented), &history(1)),
            Decision::Stop(StopReason::Policy)
        );
    }
}
