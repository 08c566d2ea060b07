//! The record of what happened to a request: on every response, and in every error.
//! Paused clock, scripted upstream.

mod support;

use std::io;
use std::time::Duration;

use retryable_http::backoff::Backoff;
use retryable_http::classify::ErrorClass;
use retryable_http::policy::{Action, policy_fn};
use retryable_http::{Attempts, RetryLayer, record::Ended, record::WaitReason};
use support::get;
use support::upstream::{Reply, Upstream};
use tower::{Layer, ServiceExt};

const SECOND: Duration = Duration::from_secs(1);

fn layer() -> RetryLayer {
    RetryLayer::new().backoff(Backoff::constant(SECOND))
}

fn record<B>(response: &http::Response<B>) -> Attempts {
    Attempts::of(response).into_owned()
}

fn status(code: u16) -> Ended {
    Ended::Status(http::StatusCode::from_u16(code).unwrap())
}

#[tokio::test(start_paused = true)]
async fn a_request_answered_at_once_has_one_attempt_and_no_wait() {
    let response = layer()
        .layer(Upstream::new([]))
        .oneshot(get("/"))
        .await
        .unwrap();
    let record = record(&response);
    assert_eq!(record.attempts(), 1);
    assert_eq!(record.get(0).unwrap().ended(), status(200));
    assert_eq!(record.get(0).unwrap().waited(), None);
    assert_eq!(record.waited(), Duration::ZERO);
    assert_eq!((record.hedges(), record.abandoned()), (0, 0));
    // It is what the response says: nothing is inserted to say it.
    assert!(response.extensions().get::<Attempts>().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_retried_request_carries_its_record_as_an_extension() {
    let response = layer()
        .layer(Upstream::new([Reply::status(503)]))
        .oneshot(get("/"))
        .await
        .unwrap();
    let carried = response.extensions().get::<Attempts>().unwrap();
    assert_eq!(carried, &*Attempts::of(&response));
    assert_eq!(carried.attempts(), 2);
}

#[tokio::test(start_paused = true)]
async fn nested_layers_give_the_record_of_the_outermost_layer_that_retried() {
    // The inner layer retried once; the outer one made one attempt, which leaves the inner
    // record in place: it counts every request sent.
    let inner = layer().layer(Upstream::new([Reply::status(503)]));
    let response = layer().layer(inner).oneshot(get("/")).await.unwrap();
    assert_eq!(Attempts::of(&response).attempts(), 2);
    // The outer layer retried too: its own record replaces the inner one.
    let inner = layer().layer(Upstream::new([
        Reply::status(503),
        Reply::status(503),
        Reply::status(503),
        Reply::status(503),
        Reply::status(503),
    ]));
    let response = layer()
        .max_retries(1)
        .layer(layer().max_retries(2).layer(inner))
        .oneshot(get("/"))
        .await
        .unwrap();
    let record = Attempts::of(&response);
    assert_eq!(record.attempts(), 2);
    assert_eq!(record.get(0).unwrap().ended(), status(503));
}

#[tokio::test(start_paused = true)]
async fn every_attempt_and_why_each_wait_lasted_as_long_as_it_did() {
    let upstream = Upstream::new([
        Reply::status(503).header("retry-after", "7"),
        Reply::status(429).header("x-ratelimit-reset", "3"),
        Reply::status(502),
    ]);
    let response = layer().layer(upstream).oneshot(get("/")).await.unwrap();
    let record = record(&response);
    let attempts: Vec<_> = record.iter().map(|a| (a.ended(), a.waited())).collect();
    assert_eq!(
        attempts,
        [
            (status(503), None),
            (status(429), Some((7 * SECOND, WaitReason::RetryAfter))),
            (status(502), Some((3 * SECOND, WaitReason::RateLimitReset))),
            (status(200), Some((SECOND, WaitReason::Backoff))),
        ]
    );
    assert_eq!(record.waited(), 11 * SECOND);
    assert_eq!(record.attempts(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_policy_s_own_wait_is_recorded_as_the_policy_s() {
    let upstream = Upstream::new([Reply::status(409)]);
    let response = layer()
        .policy(policy_fn(|attempt| match attempt.status() {
            Some(http::StatusCode::CONFLICT) => Action::RetryAfter(Duration::from_millis(250)),
            _ => Action::Stop,
        }))
        .layer(upstream)
        .oneshot(get("/"))
        .await
        .unwrap();
    let record = record(&response);
    assert_eq!(
        record.get(1).unwrap().waited(),
        Some((Duration::from_millis(250), WaitReason::Policy))
    );
}

#[tokio::test(start_paused = true)]
async fn an_error_carries_the_record_too() {
    let upstream = Upstream::always(Reply::error(io::ErrorKind::ConnectionRefused));
    let error = layer()
        .max_retries(2)
        .layer(upstream)
        .oneshot(get("/"))
        .await
        .unwrap_err();
    let record = error.record().unwrap();
    assert_eq!(record.attempts(), 3);
    assert_eq!(record.attempts(), error.attempts());
    assert!(
        record
            .iter()
            .all(|a| a.ended() == Ended::Error(ErrorClass::NeverSent))
    );
    assert_eq!(record.waited(), 2 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_cut_off_by_the_deadline_is_recorded_as_abandoned() {
    let upstream = Upstream::new([Reply::status(503), Reply::ok().after(10 * SECOND)]);
    let error = layer()
        .deadline(3 * SECOND)
        .layer(upstream)
        .oneshot(get("/"))
        .await
        .unwrap_err();
    assert!(error.is_deadline());
    let record = error.record().unwrap();
    let ended: Vec<_> = record.iter().map(|a| a.ended()).collect();
    assert_eq!(ended, [status(503), Ended::Abandoned]);
    assert_eq!(record.abandoned(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_single_attempt_that_is_not_retried_carries_no_extension_either() {
    // Given back as exhausted, not as the policy's answer: the general path, which makes
    // the same choice as the success's.
    let response = layer()
        .max_retries(0)
        .layer(Upstream::new([Reply::status(503)]))
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.extensions().get::<Attempts>().is_none());
    let record = Attempts::of(&response);
    assert_eq!(record.attempts(), 1);
    assert_eq!(record.get(0).unwrap().ended(), status(503));
}
