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

#[test]
fn only_policies_that_never_retry_a_success_say_they_stop_on_it() {
    let standard = StandardPolicy::new();
    assert!(standard.stops_on_success());
    assert!(standard.retry_all_methods().stops_on_success());
    assert!(std::sync::Arc::new(standard).stops_on_success());
    let boxed: Box<dyn Policy> = Box::new(standard);
    assert!(boxed.stops_on_success());
    let closure = policy_fn(|_: &Attempt<'_>| Action::Stop);
    assert!(!closure.stops_on_success());
    assert!(standard.or(StandardPolicy::new()).stops_on_success());
    assert!(
        !standard
            .or(policy_fn(|_: &Attempt<'_>| Action::Retry))
            .stops_on_success()
    );
    assert!(
        !policy_fn(|_: &Attempt<'_>| Action::Retry)
            .or(standard)
            .stops_on_success()
    );
}
