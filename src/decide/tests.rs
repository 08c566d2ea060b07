use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use http::{Request, Response, StatusCode};

use super::*;
use crate::backoff::Backoff;
use crate::policy::{StandardPolicy, policy_fn};
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

fn run(config: &Config, request: &request::Parts, outcome: Outcome<'_>, h: &History) -> Decision {
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

#[test]
fn the_standard_policy_returns_every_success_as_the_session_s_shortcut_assumes() {
    // The session stops after a 2xx under a `StandardPolicy` without asking it: any such
    // response, to any method, with any headers, must be the caller's here too.
    let policies = [
        StandardPolicy::new(),
        StandardPolicy::new().retry_all_methods(),
    ];
    for policy in policies {
        let config = Config {
            policy: Arc::new(policy),
            ..config()
        };
        for code in 200..300 {
            for headers in [&[][..], &[("retry-after", "1")][..]] {
                let head = response(code, headers);
                for request in [get(), post()] {
                    let decision = run(&config, &request, Outcome::Response(&head), &history(1));
                    assert_eq!(decision, Decision::Stop(StopReason::Policy), "{code}");
                }
            }
        }
    }
}
