//! go-retryablehttp's own test suite (client_test.go and roundtripper_test.go), ported where
//! it applies to a layer. Each test names the Go test it ports; `tests/GO_PARITY.md` lists
//! every Go test with its Rust counterpart or the reason it does not apply.

mod support;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};
use support::{attempts, get};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use retryable_http::RetryLayer;
use retryable_http::backoff::Backoff;
use retryable_http::classify::{ErrorClass, classify};
use retryable_http::policy::{Action, StandardPolicy, policy_fn};
use retryable_http::retry_after::ServerWaits;
use retryable_http::retry_after::parse_retry_after;
use support::bodies::{self, Frames};
use support::upstream::{Reply, Upstream};
use support::{servers, within};
use tower::{Layer, ServiceExt};

const MS: Duration = Duration::from_millis(1);

/// go-retryablehttp's test settings: waits of 10 ms, and no budget, as Go has none.
fn go_client() -> RetryLayer {
    RetryLayer::new()
        .backoff(Backoff::go_default(10 * MS, 10 * MS).unwrap())
        .no_budget()
}

/// `TestClient_Do`: a PUT keeps being retried through refused connections, then 500s, and
/// succeeds once the server answers 200; every attempt carries the body and the headers,
/// and the request hook runs. Go runs it for each kind of body reader; here, for each kind
/// of body.
#[tokio::test(start_paused = true)]
async fn client_do_retries_through_refusals_and_500s_for_every_body_kind() {
    async fn run<B>(body: B)
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<retryable_http::error::BoxError>,
    {
        let mut script = vec![Reply::error(io::ErrorKind::ConnectionRefused); 5];
        script.extend(vec![Reply::status(500); 5]);
        let upstream = Upstream::new(script);
        let hook_calls = Arc::new(AtomicUsize::new(0));
        let calls = hook_calls.clone();
        let request = Request::put("http://127.0.0.1:28934/v1/foo")
            .header("foo", "bar")
            .body(body)
            .unwrap();
        let response = RetryLayer::new()
            .max_retries(50)
            .no_budget()
            .backoff(Backoff::go_default(10 * MS, 50 * MS).unwrap())
            .on_attempt(move |attempt| {
                assert_eq!(attempt.method(), Method::PUT);
                assert_eq!(attempt.uri().path(), "/v1/foo");
                calls.fetch_add(1, Ordering::SeqCst);
            })
            .layer(upstream.clone())
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(upstream.attempts(), 11);
        assert_eq!(hook_calls.load(Ordering::SeqCst), 11);
        for seen in upstream.seen().iter().skip(5) {
            assert_eq!(seen.headers["foo"], "bar");
            assert_eq!(seen.body(), "hello");
        }
    }
    run(Full::new(Bytes::from_static(b"hello"))).await;
    run(Frames::chunks(["he", "l", "lo"])).await;
    let (tx, channel) = bodies::channel();
    tx.data("hel");
    tx.data("lo");
    drop(tx);
    run(channel).await;
}

/// `TestClient_Do_WithResponseHandler` and `TestClient_Do_WithPrepareRetry`: how often the
/// retry check and the prepare hook run when a 200 is judged a retryable failure always,
/// never, or once. Go checks the response body in a handler; here the policy judges the
/// head, so the failure is a header.
#[tokio::test(start_paused = true)]
async fn client_do_with_prepare_retry_counts_checks_and_preparations() {
    for (name, failures, checks, prepares) in [
        ("always succeeds", 0, 1, 0),
        ("always fails in a retryable way", usize::MAX, 3, 2),
        ("succeeds on the second attempt", 1, 2, 1),
    ] {
        let check_count = Arc::new(AtomicUsize::new(0));
        let prepare_count = Arc::new(AtomicUsize::new(0));
        let (c, p) = (check_count.clone(), prepare_count.clone());
        let upstream = Upstream::always(Reply::status(200));
        let served = Arc::new(AtomicUsize::new(0));
        let s = served.clone();
        let response = go_client()
            .max_retries(2)
            .policy(policy_fn(move |_| {
                c.fetch_add(1, Ordering::SeqCst);
                if s.fetch_add(1, Ordering::SeqCst) < failures {
                    Action::Retry
                } else {
                    Action::Stop
                }
            }))
            .prepare_retry(move |req, _| {
                let n = p.fetch_add(1, Ordering::SeqCst) + 1;
                req.headers.insert("foo", HeaderValue::from(n));
                Ok(())
            })
            .layer(upstream.clone())
            .oneshot(
                Request::get("http://upstream.test/")
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        assert_eq!(check_count.load(Ordering::SeqCst), checks, "{name}");
        assert_eq!(prepare_count.load(Ordering::SeqCst), prepares, "{name}");
        let last = upstream.seen().pop().unwrap();
        let header = last
            .headers
            .get("foo")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            header,
            (prepares > 0).then(|| prepares.to_string()),
            "{name}"
        );
    }
}

/// `TestClient_Do_fails`: a POST to an always-500 server with RetryMax 2 gives up after 3
/// attempts, the URL's password is not shown, and with the error-propagating policy the
/// message ends with the last status. Go retries POSTs; `retry_all_methods` does here.
#[tokio::test(start_paused = true)]
async fn client_do_fails_after_three_attempts_naming_the_last_status() {
    let upstream = Upstream::always(Reply::status(500));
    let request = Request::post("http://user:pasten@upstream.test:8080/")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let error = go_client()
        .max_retries(2)
        .policy(StandardPolicy::new().retry_all_methods())
        .fail_when_exhausted()
        .layer(upstream.clone())
        .oneshot(request)
        .await
        .unwrap_err();
    assert_eq!(upstream.attempts(), 3);
    let message = retryable_http::error::Report::new(&error).to_string();
    assert!(
        message.ends_with(
            "giving up after 3 attempt(s): unexpected HTTP status 500 Internal Server Error"
        ),
        "{message}"
    );
    assert!(
        message.starts_with("POST http://upstream.test:8080/ "),
        "{message}"
    );
    assert!(!message.contains("pasten"));
}

/// `TestClient_Get`, `TestClient_Head`, `TestClient_Post`, `TestClient_PostForm`: each
/// method reaches a real server with its URI, content type and body.
#[tokio::test]
async fn client_get_head_post_and_post_form_reach_the_server_intact() {
    within(async {
        let server = servers::http(|_, req: Request<hyper::body::Incoming>| async move {
            let method = req.method().clone();
            let path = req.uri().path().to_owned();
            let content_type = req
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let echo = format!(
                "{method} {path} {content_type} {}",
                String::from_utf8_lossy(&body)
            );
            http::Response::new(Full::new(Bytes::from(echo)))
        })
        .await;
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let client = go_client().layer(client);
        let cases = [
            (Method::GET, None, "", "GET /foo/bar  "),
            (Method::HEAD, None, "", ""),
            (
                Method::POST,
                Some("application/json"),
                r#"{"hello":"world"}"#,
                r#"POST /foo/bar application/json {"hello":"world"}"#,
            ),
            (
                Method::POST,
                Some("application/x-www-form-urlencoded"),
                "hello=world",
                "POST /foo/bar application/x-www-form-urlencoded hello=world",
            ),
        ];
        for (method, content_type, body, echo) in cases {
            let mut request = Request::builder()
                .method(method.clone())
                .uri(server.url("/foo/bar"));
            if let Some(ct) = content_type {
                request = request.header("content-type", ct);
            }
            let request = request.body(Full::new(Bytes::from(body))).unwrap();
            let response = client.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{method}");
            let got = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(got, echo, "{method}");
        }
    })
    .await;
}

/// `TestClient_CheckRetry`: a check that stops with an error after the second attempt.
/// Here a policy answers retry or stop, and the exhaustion hook turns the outcome into an
/// error: `GET <url> giving up after 2 attempt(s): retryError`.
#[tokio::test(start_paused = true)]
async fn client_check_retry_error_stops_the_loop() {
    let upstream = Upstream::always(Reply::status(500).body("test_500_body"));
    let error = go_client()
        .max_retries(1)
        .when_exhausted(|_| Err("retryError".into()))
        .layer(upstream.clone())
        .oneshot(
            Request::get("http://upstream.test/")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(upstream.attempts(), 2);
    assert_eq!(
        retryable_http::error::Report::new(&error).to_string(),
        "GET http://upstream.test/ giving up after 2 attempt(s): retryError"
    );
}

/// `TestClient_CheckRetryStop`: a check that says "stop" on a 500 makes one attempt and
/// returns the 500 without an error.
#[tokio::test(start_paused = true)]
async fn client_check_retry_stop_returns_the_response() {
    let upstream = Upstream::always(Reply::status(500));
    let checks = Arc::new(AtomicUsize::new(0));
    let c = checks.clone();
    let response = go_client()
        .policy(policy_fn(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            Action::Stop
        }))
        .layer(upstream)
        .oneshot(
            Request::get("http://upstream.test/")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(checks.load(Ordering::SeqCst), 1);
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

/// `TestParseRetryAfterHeader`, against Go's static clock (Fri, 31 Dec 1999 23:59:57 GMT).
#[test]
fn parse_retry_after_header() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_797);
    let parse = |v: &'static str| parse_retry_after(&HeaderValue::from_static(v), now);
    assert_eq!(parse("2"), Some(Duration::from_secs(2)), "seconds");
    assert_eq!(
        parse("Fri, 31 Dec 1999 23:59:59 GMT"),
        Some(Duration::from_secs(2)),
        "date"
    );
    assert_eq!(
        parse("Fri, 31 Dec 1999 23:59:00 GMT"),
        Some(Duration::ZERO),
        "past-date"
    );
    assert_eq!(parse(""), None, "empty");
    assert_eq!(parse("-2"), None, "negative");
    assert_eq!(parse("Fri, 32 Dec 1999 23:59:59 GMT"), None, "bad-date");
    assert_eq!(parse("badbadbad"), None, "bad-date-format");
}

/// `TestParseRetryAfterHeader` "two-headers" and "nil": only the first value counts, and a
/// missing header falls back to the backoff.
#[tokio::test(start_paused = true)]
async fn parse_retry_after_header_first_value_and_missing() {
    let upstream = Upstream::new([Reply::status(503)
        .header("retry-after", "2")
        .header("retry-after", "3")]);
    go_client()
        .layer(upstream.clone())
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(upstream.times(), [Duration::ZERO, Duration::from_secs(2)]);

    let upstream = Upstream::new([Reply::status(503)]);
    go_client()
        .layer(upstream.clone())
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(upstream.times(), [Duration::ZERO, 10 * MS]);
}

/// `TestClient_DefaultBackoff`: on 429 and 503, `Retry-After` of 2 s, as seconds or as a
/// date, sets the wait.
#[tokio::test(start_paused = true)]
async fn client_default_backoff_honours_retry_after_on_429_and_503() {
    let now = || SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_797);
    for code in [429, 503] {
        for value in ["2", "Fri, 31 Dec 1999 23:59:59 GMT"] {
            let upstream = Upstream::new([Reply::status(code).header("retry-after", value)]);
            RetryLayer::new()
                .backoff(
                    Backoff::go_default(Duration::from_secs(1), Duration::from_secs(30)).unwrap(),
                )
                .server_waits(ServerWaits::go().wall_clock(now))
                .layer(upstream.clone())
                .oneshot(get("/"))
                .await
                .unwrap();
            assert_eq!(
                upstream.times(),
                [Duration::ZERO, Duration::from_secs(2)],
                "{code} {value}"
            );
        }
    }
}

/// `TestClient_DefaultRetryPolicy_invalidheadername` and `_invalidheadervalue`: such a
/// request cannot even be built with the `http` crate, so no attempt is made; the builder's
/// error is permanent.
#[test]
fn client_default_retry_policy_invalid_header_name_and_value() {
    let name = Request::get("http://x/")
        .header("Header-Name-\x1b", "v")
        .body(())
        .unwrap_err();
    let value = Request::get("http://x/")
        .header("Header-Name", "bad \x1b")
        .body(())
        .unwrap_err();
    assert_eq!(classify(&name), ErrorClass::Permanent);
    assert_eq!(classify(&value), ErrorClass::Permanent);
}

/// `TestClient_DefaultRetryPolicy_redirects`: a redirect is not retried. Here it is not
/// followed either: the 302 goes to the caller after one attempt.
#[tokio::test(start_paused = true)]
async fn client_default_retry_policy_redirects_are_not_retried() {
    let upstream = Upstream::always(Reply::status(302).header("location", "/"));
    let response = go_client()
        .layer(upstream.clone())
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(upstream.attempts(), 1);
}

/// `TestBackoff`: `DefaultBackoff(1s, 5m, i)` is 1, 2, 4, 8 s, and 5 min at i = 63 and 128.
#[test]
fn backoff_doubles_and_caps_without_overflow() {
    let backoff = Backoff::go_default(Duration::from_secs(1), Duration::from_secs(300)).unwrap();
    let delays: Vec<_> = backoff.delays().take(129).collect();
    // Go numbers its retries from 0; `delays()` yields retry 1, 2, ...
    assert_eq!(delays[0], Duration::from_secs(1));
    assert_eq!(delays[1], Duration::from_secs(2));
    assert_eq!(delays[2], Duration::from_secs(4));
    assert_eq!(delays[3], Duration::from_secs(8));
    assert_eq!(delays[63], Duration::from_secs(300));
    assert_eq!(delays[128], Duration::from_secs(300));
}

/// `TestClient_BackoffCustom`: a custom backoff is asked once per retry, and the request
/// succeeds once the server has seen RetryMax failures.
#[tokio::test(start_paused = true)]
async fn client_backoff_custom_is_called_once_per_retry() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let upstream = Upstream::new(vec![Reply::status(500); 4]);
    let response = RetryLayer::new()
        .backoff(Backoff::custom(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            MS
        }))
        .layer(upstream.clone())
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(upstream.attempts(), 5);
}

/// `TestRoundTripper_RoundTrip`: a custom check that retries 404 gets the 200 and its body.
#[tokio::test(start_paused = true)]
async fn round_tripper_round_trip_retries_what_the_custom_check_says() {
    let upstream = Upstream::new([
        Reply::status(404),
        Reply::status(404),
        Reply::status(200).body("success!"),
    ]);
    let response = go_client()
        .retry_if(|a| a.status() == Some(StatusCode::NOT_FOUND))
        .layer(upstream)
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(attempts(&response), 3);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "success!"
    );
}

/// `TestRoundTripper_TransportFailureErrorHandling`: with pass-through error handling the
/// transport's own error reaches the caller. Here it is the `source()` of the layer's error,
/// downcastable to hyper-util's error type.
#[tokio::test]
async fn round_tripper_transport_failure_keeps_the_transport_error() {
    within(async {
        let addr = servers::refused().await;
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let error = go_client()
            .max_retries(1)
            .layer(client)
            .oneshot(
                Request::get(format!("http://{addr}/"))
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await
            .unwrap_err();
        let source = std::error::Error::source(&error).unwrap();
        let client_error = source
            .downcast_ref::<hyper_util::client::legacy::Error>()
            .expect("the transport's error type");
        assert!(client_error.is_connect());
        assert_eq!(error.attempts(), 2);
    })
    .await;
}
