//! Per-request settings: a `RetryOverride` in a request's extensions takes the place of the
//! layer's settings for that request only. Paused clock, scripted upstream.

mod support;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use retryable_http::backoff::Backoff;
use retryable_http::classify::ErrorClass;
use retryable_http::policy::{Action, policy_fn};
use retryable_http::{
    Attempts, RetryLayer, RetryOverride, body::ReplayBody, error::BoxError, record::Ended,
};
use support::upstream::{Reply, Upstream};
use support::{attempts, get};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

const SECOND: Duration = Duration::from_secs(1);

fn layer() -> RetryLayer {
    RetryLayer::new().backoff(Backoff::constant(SECOND))
}

fn with(request_override: RetryOverride) -> http::Request<Full<Bytes>> {
    let mut request = get("/");
    request.extensions_mut().insert(request_override);
    request
}

#[tokio::test(start_paused = true)]
async fn never_makes_one_attempt_whatever_the_layer_allows() {
    let upstream = Upstream::always(Reply::status(503));
    let response = layer()
        .layer(upstream.clone())
        .oneshot(with(RetryOverride::never()))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(attempts(&response), 1);
    assert_eq!(upstream.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn max_retries_lowers_and_raises_the_layer_s() {
    for (layer_retries, request_retries) in [(4, 1), (1, 6)] {
        let upstream = Upstream::always(Reply::status(503));
        let response = layer()
            .max_retries(layer_retries)
            .no_budget()
            .layer(upstream.clone())
            .oneshot(with(RetryOverride::new().max_retries(request_retries)))
            .await
            .unwrap();
        assert_eq!(attempts(&response), request_retries + 1);
        assert_eq!(upstream.attempts() as u32, request_retries + 1);
    }
}

#[tokio::test(start_paused = true)]
async fn deadline_bounds_the_request_where_the_layer_has_none() {
    let upstream = Upstream::always(Reply::status(503));
    let started = Instant::now();
    let response = layer()
        .max_retries(10)
        .layer(upstream.clone())
        .oneshot(with(
            RetryOverride::new().deadline(Duration::from_millis(2500)),
        ))
        .await
        .unwrap();
    // Attempts at 0, 1 and 2 s; the next wait would end past 2.5 s, so it is not started
    // and the last response is returned.
    assert_eq!(response.status(), 503);
    assert_eq!(upstream.attempts(), 3);
    assert_eq!(started.elapsed(), 2 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn deadline_replaces_a_longer_layer_deadline() {
    let upstream = Upstream::always(Reply::status(200).after(10 * SECOND));
    let started = Instant::now();
    let error = layer()
        .deadline(60 * SECOND)
        .layer(upstream)
        .oneshot(with(RetryOverride::new().deadline(3 * SECOND)))
        .await
        .unwrap_err();
    assert!(error.is_deadline(), "{error}");
    assert_eq!(started.elapsed(), 3 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn attempt_timeout_cuts_off_each_attempt_of_this_request() {
    let upstream = Upstream::always(Reply::status(200).after(10 * SECOND));
    let started = Instant::now();
    let error = layer()
        .max_retries(2)
        .layer(upstream.clone())
        .oneshot(with(RetryOverride::new().attempt_timeout(SECOND)))
        .await
        .unwrap_err();
    assert!(error.is_attempt_timeout(), "{error}");
    assert_eq!(upstream.attempts(), 3);
    // Three attempts of 1 s, two waits of 1 s.
    assert_eq!(started.elapsed(), 5 * SECOND);
    let record = error.record().unwrap();
    assert!(
        record
            .iter()
            .all(|a| a.ended() == Ended::Error(ErrorClass::MaybeProcessed))
    );
}

#[tokio::test(start_paused = true)]
async fn policy_decides_this_request_s_retries() {
    let upstream = Upstream::new([Reply::status(409), Reply::status(409)]);
    let retry_conflicts = policy_fn(|attempt| match attempt.status() {
        Some(http::StatusCode::CONFLICT) => Action::Retry,
        _ => Action::Stop,
    });
    let response = layer()
        .layer(upstream.clone())
        .oneshot(with(RetryOverride::new().policy(retry_conflicts)))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(upstream.attempts(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_request_s_policy_still_retries_what_never_reached_the_server() {
    let never = policy_fn(|_| Action::Stop);
    let upstream = Upstream::new([Reply::error(io::ErrorKind::ConnectionRefused)]);
    let response = layer()
        .layer(upstream.clone())
        .oneshot(with(RetryOverride::new().policy(never)))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(upstream.attempts(), 2);

    // Unless the layer says its policies have the last word.
    let never = policy_fn(|_| Action::Stop);
    let upstream = Upstream::new([Reply::error(io::ErrorKind::ConnectionRefused)]);
    let error = layer()
        .policy_only()
        .layer(upstream.clone())
        .oneshot(with(RetryOverride::new().policy(never)))
        .await
        .unwrap_err();
    assert_eq!(error.attempts(), 1);
    assert_eq!(upstream.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn what_the_override_leaves_unset_comes_from_the_layer() {
    // Only the deadline is set: the layer's retries and backoff still apply.
    let upstream = Upstream::new([Reply::status(503), Reply::status(503)]);
    let started = Instant::now();
    let response = layer()
        .layer(upstream.clone())
        .oneshot(with(RetryOverride::new().deadline(60 * SECOND)))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(attempts(&response), 3);
    assert_eq!(started.elapsed(), 2 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn an_override_applies_to_its_request_only_and_the_inner_service_never_sees_it() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let statuses = Arc::new(Mutex::new(0u32));
    let inner = {
        let seen = seen.clone();
        tower::service_fn(move |request: http::Request<_>| {
            let seen = seen.clone();
            let statuses = statuses.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .push(request.extensions().get::<RetryOverride>().is_some());
                let mut count = statuses.lock().unwrap();
                *count += 1;
                // Every other attempt fails.
                let status = if *count % 2 == 1 { 503 } else { 200 };
                let mut response = http::Response::new(Full::new(Bytes::new()));
                *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                Ok::<_, BoxError>(response)
            }
        })
    };
    let mut service = layer().layer(inner);
    let first = service
        .ready()
        .await
        .unwrap()
        .call(with(RetryOverride::never()))
        .await
        .unwrap();
    assert_eq!((first.status().as_u16(), attempts(&first)), (503, 1));
    // The next request through the same service has the layer's settings again.
    let second = service.ready().await.unwrap().call(get("/")).await.unwrap();
    assert_eq!((second.status().as_u16(), attempts(&second)), (200, 1));
    let third = service.ready().await.unwrap().call(get("/")).await.unwrap();
    assert_eq!((third.status().as_u16(), attempts(&third)), (200, 2));
    assert_eq!(*seen.lock().unwrap(), [false, false, false, false]);
}

#[tokio::test(start_paused = true)]
async fn never_keeps_nothing_of_the_body() {
    let layer = layer().replay_limit_total(1 << 20);
    let held = Arc::new(Mutex::new(Vec::new()));
    let inner = {
        let layer = layer.clone();
        let held = held.clone();
        tower::service_fn(move |request: http::Request<ReplayBody<Full<Bytes>>>| {
            let layer = layer.clone();
            let held = held.clone();
            async move {
                let body: Bytes = request.into_body().collect().await?.to_bytes();
                held.lock()
                    .unwrap()
                    .push((body.len(), layer.replay_bytes_held().unwrap()));
                Ok::<_, BoxError>(http::Response::new(Full::new(Bytes::new())))
            }
        })
    };
    let mut service = layer.layer(inner);
    for request_override in [None, Some(RetryOverride::never())] {
        let mut request = http::Request::put("http://upstream.test/file")
            .body(Full::new(Bytes::from(vec![7u8; 1000])))
            .unwrap();
        if let Some(o) = request_override {
            request.extensions_mut().insert(o);
        }
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        let record = Attempts::of(&response);
        assert_eq!(record.attempts(), 1);
    }
    // With the layer's settings the body is kept while it is sent; with `never` it is not.
    assert_eq!(*held.lock().unwrap(), [(1000, 1000), (1000, 0)]);
}
