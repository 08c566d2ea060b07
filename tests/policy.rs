//! Attempts and decisions: which outcomes are retried, how often, and what the caller gets.
//! All on tokio's paused clock against a scripted in-memory upstream.

mod support;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::{attempts, get};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use retryable_http::backoff::{Backoff, Jitter};
use retryable_http::policy::{Action, StandardPolicy, policy_fn};
use retryable_http::{Error, RetryLayer};
use support::upstream::{Reply, Upstream};
use tower::{Layer, ServiceExt};

const SECOND: Duration = Duration::from_secs(1);

/// A layer with a fixed 1 s wait, so attempt times are easy to read.
fn layer() -> RetryLayer {
    RetryLayer::new().backoff(Backoff::constant(SECOND))
}

async fn send(
    layer: RetryLayer,
    upstream: &Upstream,
    request: Request<Full<Bytes>>,
) -> Result<Response<Full<Bytes>>, Error> {
    layer.layer(upstream.clone()).oneshot(request).await
}

fn post(path: &str, body: &'static str) -> Request<Full<Bytes>> {
    Request::post(format!("http://upstream.test{path}"))
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

async fn text(response: Response<Full<Bytes>>) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test(start_paused = true)]
async fn max_retries_n_makes_at_most_n_plus_one_attempts() {
    for n in [1, 3, 7] {
        let upstream = Upstream::always(Reply::status(503).body("Service Unavailable"));
        let response = send(layer().max_retries(n).no_budget(), &upstream, get("/"))
            .await
            .unwrap();
        assert_eq!(upstream.attempts(), n as usize + 1);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(attempts(&response), n + 1);
    }
}

#[tokio::test(start_paused = true)]
async fn default_makes_five_attempts() {
    let upstream = Upstream::always(Reply::status(502));
    let response = send(layer(), &upstream, get("/")).await.unwrap();
    assert_eq!(upstream.attempts(), 5);
    assert_eq!(attempts(&response), 5);
}

#[tokio::test(start_paused = true)]
async fn max_retries_zero_makes_exactly_one_attempt() {
    let upstream = Upstream::always(Reply::status(503));
    let response = send(layer().max_retries(0), &upstream, get("/"))
        .await
        .unwrap();
    assert_eq!(upstream.attempts(), 1);
    assert_eq!(attempts(&response), 1);
}

#[tokio::test(start_paused = true)]
async fn the_last_allowed_attempt_may_succeed() {
    let upstream = Upstream::new([
        Reply::status(502),
        Reply::status(503),
        Reply::status(500),
        Reply::status(504),
    ]);
    let response = send(layer().max_retries(4), &upstream, get("/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(attempts(&response), 5);
    assert_eq!(text(response).await, "ok");
}

#[tokio::test(start_paused = true)]
async fn first_attempt_starts_at_once_and_nothing_sleeps_after_the_last() {
    let upstream = Upstream::always(Reply::status(503));
    let backoff = Backoff::exponential(SECOND, 30 * SECOND)
        .unwrap()
        .jitter(Jitter::None);
    let start = tokio::time::Instant::now();
    let layer = RetryLayer::new().max_retries(2).backoff(backoff);
    let response = send(layer, &upstream, get("/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Waits of 1 s and 2 s: 3 s in all, not 7 s.
    assert_eq!(upstream.times(), [Duration::ZERO, SECOND, 3 * SECOND]);
    assert_eq!(start.elapsed(), 3 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn non_retryable_statuses_pass_straight_through_with_the_body_untouched() {
    for code in [200, 201, 204, 301, 400, 401, 403, 404, 409, 422, 501] {
        let upstream = Upstream::always(Reply::status(code).body("the body"));
        let response = send(layer(), &upstream, get("/")).await.unwrap();
        assert_eq!(upstream.attempts(), 1, "{code}");
        assert_eq!(response.status().as_u16(), code);
        assert_eq!(attempts(&response), 1);
        assert_eq!(text(response).await, "the body", "{code}");
    }
}

#[tokio::test(start_paused = true)]
async fn retryable_statuses_are_retried_for_get() {
    for code in [429, 500, 502, 503, 504, 507, 599] {
        let upstream = Upstream::new([Reply::status(code)]);
        let response = send(layer(), &upstream, get("/")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{code}");
        assert_eq!(upstream.attempts(), 2, "{code}");
    }
}

#[tokio::test(start_paused = true)]
async fn idempotent_methods_are_retried_after_502() {
    for method in [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::PUT,
        Method::DELETE,
    ] {
        let upstream = Upstream::new([Reply::status(502)]);
        let request = Request::builder()
            .method(method.clone())
            .uri("http://upstream.test/")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = send(layer(), &upstream, request).await.unwrap();
        assert_eq!(upstream.attempts(), 2, "{method}");
        assert_eq!(response.status(), StatusCode::OK);
    }
}

#[tokio::test(start_paused = true)]
async fn post_without_idempotency_key_is_not_retried_after_502() {
    for method in [Method::POST, Method::PATCH] {
        let upstream = Upstream::always(Reply::status(502).body("Bad Gateway Simulation"));
        let request = Request::builder()
            .method(method.clone())
            .uri("http://upstream.test/orders")
            .body(Full::new(Bytes::from("order")))
            .unwrap();
        let response = send(layer(), &upstream, request).await.unwrap();
        assert_eq!(upstream.attempts(), 1, "{method}");
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(text(response).await, "Bad Gateway Simulation");
    }
}

#[tokio::test(start_paused = true)]
async fn post_without_idempotency_key_is_not_retried_after_500_or_504() {
    for code in [500, 504] {
        let upstream = Upstream::always(Reply::status(code));
        let response = send(layer(), &upstream, post("/", "x")).await.unwrap();
        assert_eq!(upstream.attempts(), 1, "{code}");
        assert_eq!(response.status().as_u16(), code);
    }
}

#[tokio::test(start_paused = true)]
async fn post_is_retried_after_503_and_429_since_they_were_not_processed() {
    for code in [503, 429] {
        let upstream = Upstream::new([Reply::status(code), Reply::status(code)]);
        let response = send(layer(), &upstream, post("/orders", "order"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{code}");
        assert_eq!(upstream.attempts(), 3);
        for seen in upstream.seen() {
            assert_eq!(seen.body(), "order");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn post_is_retried_when_it_never_reached_the_server() {
    let upstream = Upstream::new([
        Reply::error(io::ErrorKind::ConnectionRefused),
        Reply::error(io::ErrorKind::ConnectionRefused),
    ]);
    let response = send(layer(), &upstream, post("/orders", "order"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(upstream.attempts(), 3);
}

#[tokio::test(start_paused = true)]
async fn the_standard_policy_itself_retries_a_post_that_never_reached_the_server() {
    // With `policy_only`, only the policy decides: the layer adds no retry of its own.
    let upstream = Upstream::new([Reply::error(io::ErrorKind::ConnectionRefused)]);
    let response = send(layer().policy_only(), &upstream, post("/orders", "order"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(upstream.attempts(), 2);
}

#[tokio::test(start_paused = true)]
async fn connection_reset_is_retried_for_get_but_not_for_post() {
    let upstream = Upstream::new([Reply::error(io::ErrorKind::ConnectionReset)]);
    let response = send(layer(), &upstream, get("/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(upstream.attempts(), 2);

    let upstream = Upstream::new([Reply::error(io::ErrorKind::ConnectionReset)]);
    let error = send(layer(), &upstream, post("/", "x")).await.unwrap_err();
    assert_eq!(upstream.attempts(), 1);
    assert_eq!(error.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_never_retried() {
    let upstream = Upstream::new([Reply::error(io::ErrorKind::InvalidData)]);
    let error = send(layer(), &upstream, get("/")).await.unwrap_err();
    assert_eq!(upstream.attempts(), 1);
    assert_eq!(error.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn post_with_idempotency_key_is_retried_like_get_and_keeps_its_key() {
    let upstream = Upstream::new([Reply::status(502), Reply::status(500)]);
    let request = Request::post("http://upstream.test/orders")
        .header("Idempotency-Key", "8e03978e-40d5-43e8-bc93-6894a57f9324")
        .body(Full::new(Bytes::from(r#"{"sku":42}"#)))
        .unwrap();
    let response = send(layer(), &upstream, request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = upstream.seen();
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert_eq!(
            s.headers["idempotency-key"],
            "8e03978e-40d5-43e8-bc93-6894a57f9324"
        );
        assert_eq!(s.body(), r#"{"sku":42}"#);
    }
}

#[tokio::test(start_paused = true)]
async fn x_idempotency_key_counts_like_idempotency_key() {
    let upstream = Upstream::new([Reply::status(502)]);
    let request = Request::post("http://upstream.test/orders")
        .header("X-Idempotency-Key", "order-42")
        .body(Full::new(Bytes::from(r#"{"sku":42}"#)))
        .unwrap();
    let response = send(layer(), &upstream, request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = upstream.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|s| s.headers["x-idempotency-key"] == "order-42")
    );
}

#[tokio::test(start_paused = true)]
async fn a_custom_policy_for_statuses_still_retries_a_refused_connection() {
    let only_503 =
        || layer().retry_if(|attempt| attempt.status() == Some(StatusCode::SERVICE_UNAVAILABLE));
    let refused = || Upstream::new([Reply::error(io::ErrorKind::ConnectionRefused)]);
    let post = || {
        Request::post("http://upstream.test/orders")
            .body(Full::new(Bytes::from("{}")))
            .unwrap()
    };
    let upstream = refused();
    let response = send(only_503(), &upstream, post()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(upstream.attempts(), 2);
    // A reset after the request was written is not the layer's to retry: the policy says.
    let upstream = Upstream::new([Reply::error(io::ErrorKind::ConnectionReset)]);
    let error = send(only_503(), &upstream, get("/")).await.unwrap_err();
    assert_eq!(error.attempts(), 1);
    // And `policy_only` leaves even a refused connection to the policy.
    let upstream = refused();
    let error = send(only_503().policy_only(), &upstream, post())
        .await
        .unwrap_err();
    assert_eq!(error.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn retry_all_methods_retries_a_post_after_502_like_go() {
    let upstream = Upstream::new([Reply::status(502)]);
    let layer = layer().policy(StandardPolicy::new().retry_all_methods());
    let response = send(layer, &upstream, post("/", "x")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(upstream.attempts(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_policy_that_stops_on_a_5xx_returns_it_as_ok() {
    let upstream = Upstream::always(Reply::status(500).body("boom"));
    let layer = layer().policy(policy_fn(|_| Action::Stop));
    let response = send(layer, &upstream, get("/")).await.unwrap();
    assert_eq!(upstream.attempts(), 1);
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(text(response).await, "boom");
}

#[tokio::test(start_paused = true)]
async fn retry_if_closure_decides() {
    let upstream = Upstream::new([Reply::status(409), Reply::status(409)]);
    let layer = layer().retry_if(|a| a.status() == Some(StatusCode::CONFLICT));
    let response = send(layer, &upstream, post("/", "x")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(upstream.attempts(), 3);
}

#[tokio::test(start_paused = true)]
async fn policies_compose_with_or() {
    use retryable_http::policy::Policy;
    let upstream = Upstream::new([Reply::status(409), Reply::status(503)]);
    let policy = StandardPolicy::new().or(policy_fn(|a| {
        if a.status() == Some(StatusCode::CONFLICT) {
            Action::Retry
        } else {
            Action::Stop
        }
    }));
    let response = send(layer().policy(policy), &upstream, get("/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(upstream.attempts(), 3);
}

#[tokio::test(start_paused = true)]
async fn policy_retry_after_sets_the_exact_wait() {
    let upstream = Upstream::new([Reply::status(418)]);
    let layer = layer().policy(policy_fn(|a| match a.status() {
        Some(StatusCode::IM_A_TEAPOT) => Action::RetryAfter(Duration::from_millis(1500)),
        _ => Action::Stop,
    }));
    send(layer, &upstream, get("/")).await.unwrap();
    assert_eq!(
        upstream.times(),
        [Duration::ZERO, Duration::from_millis(1500)]
    );
}

#[tokio::test(start_paused = true)]
async fn policy_sees_attempt_number_elapsed_time_and_request_head() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let upstream = Upstream::always(Reply::status(503));
    let layer = layer().max_retries(2).policy(policy_fn(move |a| {
        record.lock().unwrap().push((
            a.attempts(),
            a.elapsed(),
            a.method().clone(),
            a.uri().path().to_owned(),
            a.headers().contains_key("x-trace"),
        ));
        Action::Retry
    }));
    let request = Request::get("http://upstream.test/a/b")
        .header("x-trace", "1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(layer, &upstream, request).await.unwrap();
    let seen = seen.lock().unwrap();
    let numbers: Vec<_> = seen.iter().map(|s| (s.0, s.1)).collect();
    assert_eq!(numbers, [(1, Duration::ZERO), (2, SECOND), (3, 2 * SECOND)]);
    assert!(
        seen.iter()
            .all(|s| s.2 == Method::GET && s.3 == "/a/b" && s.4)
    );
}

#[tokio::test(start_paused = true)]
async fn every_attempt_starts_from_the_callers_original_head() {
    // An inner layer that adds a header and rewrites the path, on the first call only.
    let calls = Arc::new(AtomicUsize::new(0));
    let upstream = Upstream::new([Reply::status(503)]);
    let inner = tower::util::MapRequestLayer::new(move |mut req: Request<_>| {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            req.headers_mut()
                .insert("x-added-by-inner", "1".parse().unwrap());
            *req.uri_mut() = "http://upstream.test/rewritten".parse().unwrap();
        }
        req
    })
    .layer(upstream.clone());
    let request = Request::get("http://upstream.test/original")
        .header("x-caller", "c")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = layer().layer(inner).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = upstream.seen();
    assert!(seen[0].headers.contains_key("x-added-by-inner"));
    assert_eq!(seen[0].uri.path(), "/rewritten");
    assert!(!seen[1].headers.contains_key("x-added-by-inner"));
    assert_eq!(seen[1].uri.path(), "/original");
    assert!(seen.iter().all(|s| s.headers["x-caller"] == "c"));
}

#[tokio::test(start_paused = true)]
async fn attempt_header_is_off_by_default_and_counts_when_on() {
    let upstream = Upstream::new([Reply::status(503), Reply::status(503)]);
    send(layer(), &upstream, get("/")).await.unwrap();
    assert!(upstream.seen().iter().all(|s| s.headers.is_empty()));

    let upstream = Upstream::new([Reply::status(503), Reply::status(503)]);
    let layer = layer().attempt_header(http::HeaderName::from_static("x-retry-attempt"));
    send(layer, &upstream, get("/")).await.unwrap();
    let counts: Vec<_> = upstream
        .seen()
        .iter()
        .map(|s| s.headers["x-retry-attempt"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(counts, ["1", "2", "3"]);
}

#[tokio::test]
async fn a_reporter_that_walks_the_sources_prints_each_cause_once() {
    // A hyper-util connect error, as a client meets one: three errors deep.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<retryable_http::body::ReplayBody<Full<Bytes>>>();
    let refused = support::servers::refused().await;
    let request = Request::get(format!("http://{refused}/x"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let error = support::within(layer().max_retries(0).layer(client).oneshot(request))
        .await
        .unwrap_err();
    // What this error is, and nothing of its causes ...
    let top = error.to_string();
    assert_eq!(
        top,
        format!("GET http://{refused}/x giving up after 1 attempt(s)")
    );
    // ... which a reporter that walks `source()` adds, each once: the way anyhow's `{:#}`
    // and eyre print an error.
    let mut causes = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = next {
        causes.push(e.to_string());
        next = e.source();
    }
    let walked = causes.join(": ");
    assert_eq!(
        walked,
        retryable_http::error::Report::new(&error).to_string()
    );
    assert!(causes.len() >= 3, "{causes:?}");
    for (i, cause) in causes.iter().enumerate() {
        assert_eq!(
            walked.matches(cause.as_str()).count(),
            1,
            "cause {i} ({cause:?}) appears more than once in {walked:?}"
        );
    }
    assert!(walked.contains("Connection refused"), "{walked}");
}

#[tokio::test(start_paused = true)]
async fn exhausted_transport_errors_name_the_request_and_the_attempts() {
    let upstream = Upstream::always(Reply::error(io::ErrorKind::ConnectionRefused));
    let request = Request::get("http://user:hunter2@upstream.test:8080/x?token=s3cret")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let error = send(layer().max_retries(3), &upstream, request)
        .await
        .unwrap_err();
    assert_eq!(upstream.attempts(), 4);
    assert_eq!(error.attempts(), 4);
    assert_eq!(error.method(), Some(&Method::GET));
    assert_eq!(error.url(), Some("http://upstream.test:8080/x"));
    let message = retryable_http::error::Report::new(&error).to_string();
    assert!(
        message.starts_with("GET http://upstream.test:8080/x giving up after 4 attempt(s): "),
        "{message}"
    );
    let debug = format!("{error:?}");
    for secret in ["hunter2", "s3cret", "token"] {
        assert!(
            !message.contains(secret) && !debug.contains(secret),
            "{secret}"
        );
    }
    // The cause is still there to downcast.
    let source = std::error::Error::source(&error).unwrap();
    let io = source.downcast_ref::<io::Error>().unwrap();
    assert_eq!(io.kind(), io::ErrorKind::ConnectionRefused);
}

#[tokio::test(start_paused = true)]
async fn a_retried_then_answered_request_carries_the_attempts_extension() {
    let upstream = Upstream::new([Reply::error(io::ErrorKind::ConnectionRefused)]);
    let response = send(layer(), &upstream, get("/")).await.unwrap();
    assert_eq!(attempts(&response), 2);
}

/// Retries a 200 that says, in a header, that the work was not done.
fn busy_in_disguise() -> impl Fn(&retryable_http::policy::Attempt<'_>) -> bool + Send + Sync {
    |attempt| match attempt.outcome() {
        Some(retryable_http::policy::Outcome::Response(head)) => {
            head.headers.get("x-outcome").is_some_and(|v| v == "busy")
        }
        _ => false,
    }
}

#[tokio::test(start_paused = true)]
async fn a_policy_of_the_layer_or_of_the_request_is_asked_about_a_success_too() {
    // Only the standard policy is known to return every 2xx without being asked.
    let upstream = Upstream::new([Reply::status(200).header("x-outcome", "busy"), Reply::ok()]);
    let response = send(layer().retry_if(busy_in_disguise()), &upstream, get("/"))
        .await
        .unwrap();
    assert_eq!((upstream.attempts(), attempts(&response)), (2, 2));

    let upstream = Upstream::new([Reply::status(200).header("x-outcome", "busy"), Reply::ok()]);
    let predicate = busy_in_disguise();
    let mut request = get("/");
    request
        .extensions_mut()
        .insert(
            retryable_http::RetryOverride::new().policy(policy_fn(move |attempt| {
                if predicate(attempt) {
                    Action::Retry
                } else {
                    Action::Stop
                }
            })),
        );
    let response = send(layer(), &upstream, request).await.unwrap();
    assert_eq!((upstream.attempts(), attempts(&response)), (2, 2));

    // The standard policy returns it.
    let upstream = Upstream::new([Reply::status(200).header("x-outcome", "busy"), Reply::ok()]);
    let response = send(layer(), &upstream, get("/")).await.unwrap();
    assert_eq!((upstream.attempts(), attempts(&response)), (1, 1));
}
