use std::io;

use http::{Request, Response, request};

use super::*;
use crate::a6::call::{PREVIOUS_ATTEMPTS, TIMEOUT};
use crate::a6::{HedgingPolicy, MethodConfig, Name, RetryPolicy, Rules, ServiceConfig, Throttling};

const SECOND: Duration = Duration::from_secs(1);
const MAX_WAIT: Duration = Duration::from_secs(60);

/// A config retrying `echo.Echo` on UNAVAILABLE: `attempts` attempts, 1 s then doubling up
/// to 30 s; throttled as `throttling` says.
fn rules(attempts: u32, throttling: Option<Throttling>) -> Rules {
    let policy = RetryPolicy::new(attempts, SECOND, 30 * SECOND, 2.0, [Code::Unavailable]);
    let method = MethodConfig::new([Name::service("echo.Echo")]).with_retry(policy.unwrap());
    let mut config = ServiceConfig::new().with_method(method).unwrap();
    if let Some(throttling) = throttling {
        config = config.with_throttling(throttling);
    }
    Rules::new(config)
}

fn request(path: &str, content_type: &str) -> request::Parts {
    Request::post(format!("http://echo.example{path}"))
        .header("content-type", content_type)
        .body(())
        .unwrap()
        .into_parts()
        .0
}

fn call(rules: &Rules) -> Call {
    rules
        .call(&request("/echo.Echo/Say", "application/grpc"), u32::MAX)
        .unwrap()
}

fn head(status: u16, headers: &[(&str, &str)]) -> http::response::Parts {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

fn trailers_only(code: u32) -> http::response::Parts {
    head(200, &[("grpc-status", &code.to_string())])
}

/// Decides `outcome` at a fixed time, with a body that can be sent again and no deadline.
fn decide(call: &mut Call, outcome: Outcome<'_>) -> Decision {
    decide_with(call, outcome, BodyState::Replayable, None)
}

fn decide_with(
    call: &mut Call,
    outcome: Outcome<'_>,
    body: BodyState,
    deadline: Option<Instant>,
) -> Decision {
    let mut now = Now::at(Instant::now());
    let mut rng = Some(Rng::from_seed(7));
    call.decide(outcome, body, MAX_WAIT, deadline, &mut now, &mut rng)
}

fn waits(decision: Decision) -> (Duration, WaitReason) {
    match decision {
        Decision::Retry { wait, why } => (wait, why),
        Decision::Stop(reason) => panic!("stopped: {reason}"),
    }
}

#[test]
fn only_grpc_content_types_are_calls() {
    let rules = rules(3, None);
    let is_call = |content_type| {
        rules
            .call(&request("/echo.Echo/Say", content_type), u32::MAX)
            .is_some()
    };
    assert!(is_call("application/grpc"));
    assert!(is_call("application/grpc+proto"));
    assert!(is_call("application/grpc;charset=utf-8"));
    assert!(!is_call("application/grpc-web"));
    assert!(!is_call("application/json"));
    let no_type = Request::post("/echo.Echo/Say")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    assert!(rules.call(&no_type, u32::MAX).is_none());
}

#[test]
fn the_backoff_is_jittered_by_twenty_percent_and_grows_by_the_multiplier() {
    let rules = rules(5, None);
    // The factors drawn, over every wait: spread over the whole range.
    let (mut least, mut most) = (f64::MAX, 0f64);
    for seed in 0..200 {
        let mut call = call(&rules);
        let mut rng = Some(Rng::from_seed(seed));
        let mut now = Now::at(Instant::now());
        let failed = trailers_only(14);
        for n in 0..4 {
            let outcome = Outcome::Response(&failed);
            let decision = call.decide(
                outcome,
                BodyState::Replayable,
                MAX_WAIT,
                None,
                &mut now,
                &mut rng,
            );
            let (wait, why) = waits(decision);
            let base = SECOND * 2u32.pow(n);
            assert!(
                wait >= base.mul_f64(0.8) && wait <= base.mul_f64(1.2),
                "{wait:?}"
            );
            assert_eq!(why, WaitReason::Backoff);
            let factor = wait.as_secs_f64() / base.as_secs_f64();
            (least, most) = (least.min(factor), most.max(factor));
        }
    }
    assert!(least < 0.81 && most > 1.19, "{least} to {most}");
}

#[test]
fn attempts_are_capped_at_max_attempts() {
    let rules = rules(3, None);
    let mut call = call(&rules);
    let failed = trailers_only(14);
    waits(decide(&mut call, Outcome::Response(&failed)));
    waits(decide(&mut call, Outcome::Response(&failed)));
    assert_eq!(
        decide(&mut call, Outcome::Response(&failed)),
        Decision::Stop(StopReason::Exhausted)
    );
}

#[test]
fn a_request_s_retry_count_caps_the_method_s() {
    let rules = rules(5, None);
    let head = request("/echo.Echo/Say", "application/grpc");
    let mut call = rules.call(&head, 1).unwrap();
    let failed = trailers_only(14);
    waits(decide(&mut call, Outcome::Response(&failed)));
    assert_eq!(
        decide(&mut call, Outcome::Response(&failed)),
        Decision::Stop(StopReason::Exhausted)
    );
    // No retries at all: not even the method's policy applies.
    let mut none = rules.call(&head, 0).unwrap();
    assert_eq!(
        decide(&mut none, Outcome::Response(&failed)),
        Decision::Stop(StopReason::Policy)
    );
}

#[test]
fn statuses_outside_the_policy_and_committed_calls_go_to_the_caller() {
    let rules = rules(5, None);
    let mut call = call(&rules);
    for stopped in [
        trailers_only(0),
        trailers_only(3),
        trailers_only(4),
        head(200, &[]),
        head(404, &[]),
    ] {
        assert_eq!(
            decide(&mut call, Outcome::Response(&stopped)),
            Decision::Stop(StopReason::Policy)
        );
    }
    // An HTTP status gRPC maps to UNAVAILABLE is retried.
    waits(decide(&mut call, Outcome::Response(&head(503, &[]))));
}

#[test]
fn a_method_without_a_retry_policy_is_not_retried() {
    let rules = rules(5, None);
    let head = request("/other.Service/Call", "application/grpc");
    let mut call = rules.call(&head, u32::MAX).unwrap();
    assert_eq!(
        decide(&mut call, Outcome::Response(&trailers_only(14))),
        Decision::Stop(StopReason::Policy)
    );
}

#[test]
fn pushback_sets_the_wait_and_restarts_the_backoff() {
    let rules = rules(5, None);
    let mut call = call(&rules);
    let failed = trailers_only(14);
    let (first, _) = waits(decide(&mut call, Outcome::Response(&failed)));
    let (second, _) = waits(decide(&mut call, Outcome::Response(&failed)));
    assert!(second >= 2 * SECOND.mul_f64(0.8), "{first:?} {second:?}");
    let pushed = head(
        200,
        &[("grpc-status", "14"), ("grpc-retry-pushback-ms", "2500")],
    );
    assert_eq!(
        waits(decide(&mut call, Outcome::Response(&pushed))),
        (Duration::from_millis(2500), WaitReason::Pushback)
    );
    // From the initial backoff again.
    let (after, why) = waits(decide(&mut call, Outcome::Response(&failed)));
    assert_eq!(why, WaitReason::Backoff);
    assert!(after <= SECOND.mul_f64(1.2), "{after:?}");
}

#[test]
fn a_negative_malformed_or_too_long_pushback_stops_the_retries() {
    let rules = rules(5, None);
    for (value, reason) in [
        ("-1", StopReason::PushedBack),
        ("soon", StopReason::PushedBack),
        (
            "3600000",
            StopReason::ServerWaitTooLong(Duration::from_secs(3600)),
        ),
    ] {
        let mut call = call(&rules);
        let pushed = head(
            200,
            &[("grpc-status", "14"), ("grpc-retry-pushback-ms", value)],
        );
        assert_eq!(
            decide(&mut call, Outcome::Response(&pushed)),
            Decision::Stop(reason),
            "{value}"
        );
    }
    // A pushback on a status the policy does not retry changes nothing.
    let mut call = call(&rules);
    let pushed = head(
        200,
        &[("grpc-status", "3"), ("grpc-retry-pushback-ms", "10")],
    );
    assert_eq!(
        decide(&mut call, Outcome::Response(&pushed)),
        Decision::Stop(StopReason::Policy)
    );
}

#[test]
fn the_throttle_takes_a_token_per_retryable_failure_and_refills_on_success() {
    let rules = rules(5, Some(Throttling::new(10, 0.1).unwrap()));
    let failed = trailers_only(14);
    // 10 tokens: four failures leave 6, which allows retries; the fifth leaves 5, which
    // does not.
    for _ in 0..4 {
        let mut call = call(&rules);
        waits(decide(&mut call, Outcome::Response(&failed)));
    }
    let mut fifth = call(&rules);
    assert_eq!(
        decide(&mut fifth, Outcome::Response(&failed)),
        Decision::Stop(StopReason::Throttled)
    );
    // Statuses the policy does not retry are not failures; a success gives 0.1 back.
    let mut ok = call(&rules);
    assert_eq!(
        decide(&mut ok, Outcome::Response(&trailers_only(3))),
        Decision::Stop(StopReason::Policy)
    );
    assert_eq!(
        decide(&mut ok, Outcome::Response(&head(200, &[]))),
        Decision::Stop(StopReason::Policy)
    );
    let throttle = ok.throttle.clone().unwrap();
    assert_eq!(throttle.milli_tokens(), 5_100);
    let mut again = call(&rules);
    assert_eq!(
        decide(&mut again, Outcome::Response(&failed)),
        Decision::Stop(StopReason::Throttled)
    );
    assert_eq!(throttle.milli_tokens(), 4_100);
}

#[test]
fn each_server_has_its_own_throttle() {
    let rules = rules(5, Some(Throttling::new(3, 0.1).unwrap()));
    let failed = trailers_only(14);
    let to = |host: &str| {
        let head = Request::post(format!("http://{host}/echo.Echo/Say"))
            .header("content-type", "application/grpc")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        rules.call(&head, u32::MAX).unwrap()
    };
    // 3 tokens: one failure leaves 2, more than half; a second leaves 1.
    waits(decide(&mut to("a.example"), Outcome::Response(&failed)));
    assert_eq!(
        decide(&mut to("a.example"), Outcome::Response(&failed)),
        Decision::Stop(StopReason::Throttled)
    );
    waits(decide(&mut to("b.example"), Outcome::Response(&failed)));
}

#[test]
fn a_body_that_cannot_be_sent_again_commits_the_call_after_the_throttle_counts_it() {
    let rules = rules(5, Some(Throttling::new(10, 0.1).unwrap()));
    let mut call = call(&rules);
    let failed = trailers_only(14);
    assert_eq!(
        decide_with(
            &mut call,
            Outcome::Response(&failed),
            BodyState::Spent,
            None
        ),
        Decision::Stop(StopReason::BodyNotReplayable)
    );
    assert_eq!(call.throttle.unwrap().milli_tokens(), 9_000);
}

#[test]
fn a_wait_past_the_deadline_stops() {
    let rules = rules(5, None);
    let mut call = call(&rules);
    let failed = trailers_only(14);
    let soon = Instant::now() + Duration::from_millis(500);
    assert_eq!(
        decide_with(
            &mut call,
            Outcome::Response(&failed),
            BodyState::Replayable,
            Some(soon)
        ),
        Decision::Stop(StopReason::Deadline)
    );
    // Nothing was counted.
    assert_eq!(call.retries, 0);
}

#[test]
fn a_request_the_server_never_saw_is_retried_once_at_once_uncounted() {
    let rules = rules(2, Some(Throttling::new(10, 0.1).unwrap()));
    let mut call = call(&rules);
    let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
    assert_eq!(
        waits(decide(&mut call, Outcome::Error(&refused))),
        (Duration::ZERO, WaitReason::Transparent)
    );
    assert_eq!(
        (call.retries, call.throttle.as_ref().unwrap().milli_tokens()),
        (0, 10_000)
    );
    // The second time, it is UNAVAILABLE to the retry policy: counted and throttled.
    assert_eq!(
        waits(decide(&mut call, Outcome::Error(&refused))).1,
        WaitReason::Backoff
    );
    assert_eq!(
        (call.retries, call.throttle.as_ref().unwrap().milli_tokens()),
        (1, 9_000)
    );
    assert_eq!(
        decide(&mut call, Outcome::Error(&refused)),
        Decision::Stop(StopReason::Exhausted)
    );
    // Without a retry policy too, but not with a spent body.
    let other = request("/other.Service/Call", "application/grpc");
    let mut call = rules.call(&other, u32::MAX).unwrap();
    assert_eq!(
        decide_with(&mut call, Outcome::Error(&refused), BodyState::Spent, None),
        Decision::Stop(StopReason::BodyNotReplayable)
    );
    waits(decide(&mut call, Outcome::Error(&refused)));
}

#[test]
fn transport_failures_are_unavailable_and_attempt_timeouts_deadline_exceeded() {
    let reset = io::Error::from(io::ErrorKind::ConnectionReset);
    assert_eq!(code_of(&reset), Code::Unavailable);
    let timed_out: crate::error::BoxError = AttemptTimedOut::new(SECOND).into();
    assert_eq!(code_of(&*timed_out), Code::DeadlineExceeded);
    // A reset after the request was sent is UNAVAILABLE to the policy: retried.
    let rules = rules(3, None);
    let mut call = call(&rules);
    waits(decide(&mut call, Outcome::Error(&reset)));
    assert_eq!(
        decide(&mut call, Outcome::Error(&*timed_out)),
        Decision::Stop(StopReason::Policy)
    );
}

#[test]
fn the_deadline_is_the_shorter_of_grpc_timeout_and_the_method_s() {
    let policy = RetryPolicy::new(2, SECOND, SECOND, 2.0, [Code::Unavailable]).unwrap();
    let method = MethodConfig::new([Name::all()])
        .with_retry(policy)
        .with_timeout(3 * SECOND);
    let rules = Rules::new(ServiceConfig::new().with_method(method).unwrap());
    let with_timeout = |value: Option<&str>| {
        let mut head = request("/echo.Echo/Say", "application/grpc");
        if let Some(value) = value {
            head.headers.insert(TIMEOUT, value.parse().unwrap());
        }
        let call = rules.call(&head, u32::MAX).unwrap();
        (call.timeout(), call.sent())
    };
    assert_eq!(with_timeout(None), (Some(3 * SECOND), None));
    assert_eq!(with_timeout(Some("1S")), (Some(SECOND), Some(SECOND)));
    assert_eq!(
        with_timeout(Some("5S")),
        (Some(3 * SECOND), Some(5 * SECOND))
    );
    assert_eq!(with_timeout(Some("bad")), (Some(3 * SECOND), None));
}

#[test]
fn attempts_carry_the_retries_before_them_and_the_time_left() {
    let rules = rules(5, None);
    let mut call = call(&rules);
    let mut head = request("/echo.Echo/Say", "application/grpc");
    call.stamp(&mut head, 1, None);
    assert!(head.headers.get(PREVIOUS_ATTEMPTS).is_none());
    assert!(head.headers.get(TIMEOUT).is_none());
    // A transparent retry is not counted.
    let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
    waits(decide(&mut call, Outcome::Error(&refused)));
    call.stamp(&mut head, 2, Some(Duration::from_millis(1500)));
    assert!(head.headers.get(PREVIOUS_ATTEMPTS).is_none());
    assert_eq!(head.headers[TIMEOUT], "1500000u");
    waits(decide(&mut call, Outcome::Response(&trailers_only(14))));
    waits(decide(&mut call, Outcome::Response(&trailers_only(14))));
    call.stamp(&mut head, 4, None);
    assert_eq!(head.headers[PREVIOUS_ATTEMPTS], "2");
}

/// A config hedging `echo.Echo`: 3 attempts, 1 s apart, UNAVAILABLE non-fatal.
fn hedging_rules() -> Rules {
    let policy = HedgingPolicy::new(3, SECOND, [Code::Unavailable]).unwrap();
    let method = MethodConfig::new([Name::service("echo.Echo")]).with_hedging(policy);
    let config = ServiceConfig::new()
        .with_method(method)
        .unwrap()
        .with_throttling(Throttling::new(3, 0.5).unwrap());
    Rules::new(config)
}

#[test]
fn a_hedged_call_ends_on_ok_or_a_fatal_status_and_hedges_on_a_non_fatal_one() {
    let rules = hedging_rules();
    let mut call = call(&rules);
    assert!(call.hedging().is_some());
    fn hedge(call: &mut Call, head: &http::response::Parts) -> Decision {
        call.decide_hedged(Outcome::Response(head), MAX_WAIT)
    }
    assert_eq!(
        hedge(&mut call, &trailers_only(14)),
        Decision::Retry {
            wait: Duration::ZERO,
            why: WaitReason::Hedge
        }
    );
    assert_eq!(call.throttle.as_ref().unwrap().milli_tokens(), 2_000);
    assert_eq!(
        hedge(&mut call, &trailers_only(3)),
        Decision::Stop(StopReason::Policy)
    );
    assert_eq!(
        hedge(&mut call, &head(200, &[])),
        Decision::Stop(StopReason::Policy)
    );
    assert_eq!(call.throttle.as_ref().unwrap().milli_tokens(), 2_500);
    // The next failure leaves 1.5 tokens: no more hedges.
    assert_eq!(
        hedge(&mut call, &trailers_only(14)),
        Decision::Stop(StopReason::Throttled)
    );
    assert!(!call.allows_another());
}

#[test]
fn a_hedge_s_pushback_delays_the_next_hedge_or_stops_them() {
    let rules = hedging_rules();
    let mut first = call(&rules);
    let pushed = |value| {
        head(
            200,
            &[("grpc-status", "14"), ("grpc-retry-pushback-ms", value)],
        )
    };
    assert_eq!(
        first.decide_hedged(Outcome::Response(&pushed("700")), MAX_WAIT),
        Decision::Retry {
            wait: Duration::from_millis(700),
            why: WaitReason::Pushback
        }
    );
    let mut second = call(&hedging_rules());
    assert_eq!(
        second.decide_hedged(Outcome::Response(&pushed("-5")), MAX_WAIT),
        Decision::Stop(StopReason::PushedBack)
    );
    // A hedge's attempts are numbered from the first: the third follows two.
    let mut head = request("/echo.Echo/Say", "application/grpc");
    second.stamp(&mut head, 3, None);
    assert_eq!(head.headers[PREVIOUS_ATTEMPTS], "2");
}

#[test]
fn a_method_without_a_policy_neither_spends_nor_refills_the_throttle() {
    let rules = rules(5, Some(Throttling::new(10, 0.1).unwrap()));
    let other = request("/other.Service/Call", "application/grpc");
    let call = rules.call(&other, u32::MAX).unwrap();
    assert!(call.throttle.is_none());
    // Nor does a call that may not be retried at all.
    let none = rules
        .call(&request("/echo.Echo/Say", "application/grpc"), 0)
        .unwrap();
    assert!(none.throttle.is_none());
}

#[test]
fn a_call_that_may_not_be_retried_is_not_hedged() {
    let rules = hedging_rules();
    let head = request("/echo.Echo/Say", "application/grpc");
    assert!(rules.call(&head, 0).unwrap().hedging().is_none());
    assert!(rules.call(&head, 1).unwrap().hedging().is_some());
}

#[test]
fn a_wait_may_end_at_the_deadline_and_a_pushback_may_be_the_longest_honoured() {
    let rules = rules(5, None);
    let now = Instant::now();
    let pushed = |value| {
        head(
            200,
            &[("grpc-status", "14"), ("grpc-retry-pushback-ms", value)],
        )
    };
    // 500 ms, ending exactly at the deadline.
    let mut first = call(&rules);
    let decision = first.decide(
        Outcome::Response(&pushed("500")),
        BodyState::Replayable,
        MAX_WAIT,
        Some(now + Duration::from_millis(500)),
        &mut Now::at(now),
        &mut None,
    );
    assert_eq!(waits(decision).0, Duration::from_millis(500));
    // 60 s, the longest honoured.
    let mut second = call(&rules);
    let decision = decide(&mut second, Outcome::Response(&pushed("60000")));
    assert_eq!(waits(decision).0, MAX_WAIT);
}

#[test]
fn the_rules_show_in_the_layer_s_debug_output() {
    let shown = format!("{:?}", rules(5, None));
    assert!(shown.starts_with("Grpc { config: ServiceConfig"), "{shown}");
}
