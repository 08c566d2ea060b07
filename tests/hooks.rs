//! Hooks: before each attempt, on each response, before each retry, and when retries run
//! out. Paused clock, scripted upstream.

mod support;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::get;

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode};
use http_body_util::Full;
use retryable_http::backoff::Backoff;
use retryable_http::budget::Budget;
use retryable_http::policy::{Attempt, Outcome, StopReason};
use retryable_http::{Attempts, RetryLayer};
use support::upstream::{Reply, Upstream};
use tower::{Layer, ServiceExt};

fn layer() -> RetryLayer {
    RetryLayer::new().backoff(Backoff::constant(Duration::from_millis(10)))
}

type Log = Arc<Mutex<Vec<String>>>;

#[tokio::test(start_paused = true)]
async fn on_attempt_runs_before_every_attempt_with_what_is_sent() {
    let log = Log::default();
    let l = log.clone();
    let upstream = Upstream::new([Reply::status(503), Reply::status(502)]);
    layer()
        .attempt_header(http::HeaderName::from_static("x-attempt"))
        .on_attempt(move |attempt| {
            assert!(attempt.outcome().is_none());
            let header = attempt.headers()["x-attempt"].to_str().unwrap().to_owned();
            l.lock().unwrap().push(format!(
                "{} {} {} {header}",
                attempt.attempts(),
                attempt.method(),
                attempt.uri().path()
            ));
        })
        .layer(upstream.clone())
        .oneshot(get("/a"))
        .await
        .unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        ["1 GET /a 1", "2 GET /a 2", "3 GET /a 3"]
    );
    assert_eq!(upstream.attempts(), 3);
}

#[tokio::test(start_paused = true)]
async fn on_response_sees_every_response_head_and_leaves_the_body_to_the_caller() {
    let log = Log::default();
    let l = log.clone();
    let upstream = Upstream::new([
        Reply::status(500).body("test_500_body"),
        Reply::status(500).body("test_500_body"),
        Reply::status(200).body("test_200_body"),
    ]);
    let response = layer()
        .on_response(move |attempt| {
            l.lock().unwrap().push(format!(
                "{} {}",
                attempt.attempts(),
                attempt.status().unwrap().as_u16()
            ))
        })
        .layer(upstream)
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(*log.lock().unwrap(), ["1 500", "2 500", "3 200"]);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(body, "test_200_body");
}

#[tokio::test(start_paused = true)]
async fn prepare_retry_runs_before_each_retry_only_and_its_changes_are_sent() {
    let log = Log::default();
    let l = log.clone();
    let upstream = Upstream::new([
        Reply::status(503),
        Reply::error(io::ErrorKind::ConnectionRefused),
    ]);
    let response = layer()
        .prepare_retry(move |req, last| {
            let mut log = l.lock().unwrap();
            log.push(match last.outcome().unwrap() {
                Outcome::Response(head) => format!("after {}", head.status.as_u16()),
                Outcome::Error(error) => format!("after error: {error}"),
            });
            assert_eq!(last.attempts() as usize, log.len());
            let n = log.len().to_string();
            req.headers
                .insert("x-token", HeaderValue::from_str(&n).unwrap());
            Ok(())
        })
        .layer(upstream.clone())
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        *log.lock().unwrap(),
        ["after 503", "after error: connection refused"]
    );
    let tokens: Vec<_> = upstream
        .seen()
        .iter()
        .map(|s| {
            s.headers
                .get("x-token")
                .map(|v| v.to_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(tokens, [None, Some("1".into()), Some("2".into())]);
}

#[tokio::test(start_paused = true)]
async fn an_error_from_prepare_retry_stops_the_request_with_it() {
    let upstream = Upstream::always(Reply::status(503));
    let error = layer()
        .prepare_retry(|_, _| Err("token refresh failed".into()))
        .layer(upstream.clone())
        .oneshot(get("/x"))
        .await
        .unwrap_err();
    assert_eq!(upstream.attempts(), 1);
    assert_eq!(
        retryable_http::error::Report::new(&error).to_string(),
        "GET http://upstream.test/x giving up after 1 attempt(s): token refresh failed"
    );
}

#[tokio::test(start_paused = true)]
async fn fail_when_exhausted_turns_the_last_response_into_an_error_like_go() {
    let upstream = Upstream::always(Reply::status(502).body("Bad Gateway Simulation"));
    let error = layer()
        .max_retries(3)
        .fail_when_exhausted()
        .layer(upstream.clone())
        .oneshot(get("/your-api-endpoint"))
        .await
        .unwrap_err();
    assert_eq!(upstream.attempts(), 4);
    assert_eq!(error.attempts(), 4);
    assert_eq!(error.status(), Some(StatusCode::BAD_GATEWAY));
    assert_eq!(
        retryable_http::error::Report::new(&error).to_string(),
        "GET http://upstream.test/your-api-endpoint giving up after 4 attempt(s): unexpected HTTP status 502 Bad Gateway"
    );
}

#[tokio::test(start_paused = true)]
async fn fail_when_exhausted_leaves_successes_and_final_answers_alone() {
    for (code, attempts) in [(200, 2), (404, 2)] {
        let upstream = Upstream::new([Reply::status(503), Reply::status(code)]);
        let response = layer()
            .fail_when_exhausted()
            .layer(upstream)
            .oneshot(get("/"))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), code);
        assert_eq!(Attempts::of(&response).attempts(), attempts);
    }
    // A POST that got a 502 is not retried by policy: that is no exhaustion either.
    let upstream = Upstream::always(Reply::status(502));
    let request = Request::post("http://upstream.test/")
        .body(Full::new(Bytes::from("x")))
        .unwrap();
    let response = layer()
        .fail_when_exhausted()
        .layer(upstream)
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
}

#[tokio::test(start_paused = true)]
async fn when_exhausted_sees_why_the_layer_gave_up() {
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let r = reasons.clone();
    let hook = move |attempt: &Attempt<'_>| {
        r.lock().unwrap().push((
            attempt.stop_reason().unwrap(),
            attempt.attempts(),
            attempt.status().unwrap().as_u16(),
        ));
        Ok(())
    };
    // Out of retries.
    let upstream = Upstream::always(Reply::status(503));
    layer()
        .max_retries(1)
        .when_exhausted(hook.clone())
        .layer(upstream)
        .oneshot(get("/"))
        .await
        .unwrap();
    // The budget refuses.
    let upstream = Upstream::always(Reply::status(500));
    layer()
        .budget(Budget::new(Duration::from_secs(10), 0, 0.0).unwrap())
        .when_exhausted(hook.clone())
        .layer(upstream)
        .oneshot(get("/"))
        .await
        .unwrap();
    // The server asks for too long a wait.
    let upstream = Upstream::always(Reply::status(429).header("retry-after", "3600"));
    layer()
        .when_exhausted(hook)
        .layer(upstream)
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(
        *reasons.lock().unwrap(),
        [
            (StopReason::Exhausted, 2, 503),
            (StopReason::Budget, 1, 500),
            (
                StopReason::ServerWaitTooLong(Duration::from_secs(3600)),
                1,
                429
            ),
        ]
    );
}
