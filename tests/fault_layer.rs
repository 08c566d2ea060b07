//! `FaultLayer`: rules, actions, triggers and the record, in a client stack on tokio's paused
//! clock, and in a real server on loopback.
#![cfg(feature = "fault")]

mod support;

use std::io;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use retryable_http::backoff::Backoff;
use retryable_http::fault::{Answer, Effect, FaultLayer, Match, Rule, Trigger};
use retryable_http::{Attempts, RetryLayer};
use support::upstream::Upstream;
use support::within;
use tower::{Layer, ServiceBuilder, ServiceExt};

const SECOND: Duration = Duration::from_secs(1);

fn request(method: Method, url: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::from("payload")))
        .unwrap()
}

fn seed_rule() -> Rule {
    Rule::new(Effect::Replace(
        Answer::new(StatusCode::BAD_GATEWAY)
            .body("Bad Gateway Simulation")
            .header(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain"),
            ),
    ))
    .matching(Match::url_contains("your-api-endpoint"))
}

#[tokio::test(start_paused = true)]
async fn the_seed_experiment_upstream_does_the_work_and_the_client_sees_502() {
    let upstream = Upstream::new([]);
    let faults = FaultLayer::new().rule(seed_rule());
    let log = faults.log();
    let client = ServiceBuilder::new()
        .layer(
            RetryLayer::new().max_retries(3).backoff(
                Backoff::exponential(SECOND, 5 * SECOND)
                    .unwrap()
                    .jitter(retryable_http::backoff::Jitter::None),
            ),
        )
        .layer(faults)
        .service(upstream.clone());
    let response = client
        .oneshot(request(
            Method::GET,
            "https://example.test/your-api-endpoint",
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(Attempts::of(&response).attempts(), 4);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "Bad Gateway Simulation");
    // The upstream processed every attempt; the layer saw them 1, 2 and 4 s apart.
    assert_eq!(upstream.attempts(), 4);
    assert_eq!(
        log.times(),
        [Duration::ZERO, SECOND, 3 * SECOND, 7 * SECOND]
    );
    assert!(
        log.entries()
            .iter()
            .all(|s| s.status == Some(StatusCode::BAD_GATEWAY))
    );
    assert_eq!(log.fired(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_plain_post_through_the_seed_rule_goes_once() {
    let upstream = Upstream::new([]);
    let client =
        RetryLayer::new().layer(FaultLayer::new().rule(seed_rule()).layer(upstream.clone()));
    let response = client
        .oneshot(request(
            Method::POST,
            "http://example.test/your-api-endpoint",
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(upstream.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn respond_answers_without_forwarding() {
    let upstream = Upstream::new([]);
    let faults = FaultLayer::new().rule(
        Rule::new(Effect::Respond(
            Answer::new(StatusCode::TOO_MANY_REQUESTS).header(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("2"),
            ),
        ))
        .trigger(Trigger::first(2)),
    );
    let log = faults.log();
    let client = RetryLayer::new().layer(faults.layer(upstream.clone()));
    let response = client
        .oneshot(request(Method::POST, "http://example.test/orders"))
        .await
        .unwrap();
    // A 429 proves the request was not processed: the POST is retried, after 2 s each time.
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(upstream.attempts(), 1);
    assert_eq!(log.times(), [Duration::ZERO, 2 * SECOND, 4 * SECOND]);
    let statuses: Vec<_> = log.entries().iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        [
            Some(StatusCode::TOO_MANY_REQUESTS),
            Some(StatusCode::TOO_MANY_REQUESTS),
            Some(StatusCode::OK)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn fail_injects_transport_errors_that_classify_like_real_ones() {
    // Refused: never sent, so even a POST is retried.
    let upstream = Upstream::new([]);
    let faults = FaultLayer::new()
        .rule(Rule::new(Effect::Fail(io::ErrorKind::ConnectionRefused)).trigger(Trigger::first(1)));
    let response = RetryLayer::new()
        .backoff(Backoff::constant(SECOND))
        .layer(faults.layer(upstream.clone()))
        .oneshot(request(Method::POST, "http://example.test/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(upstream.attempts(), 1);

    // Reset: maybe processed, so a POST is not retried.
    let faults = FaultLayer::new().rule(Rule::new(Effect::Fail(io::ErrorKind::ConnectionReset)));
    let error = RetryLayer::new()
        .layer(faults.layer(Upstream::new([])))
        .oneshot(request(Method::POST, "http://example.test/"))
        .await
        .unwrap_err();
    assert_eq!(error.attempts(), 1);
    assert!(
        retryable_http::error::Report::new(&error)
            .to_string()
            .ends_with(": injected fault"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_stream_is_retried_even_for_a_post() {
    let upstream = Upstream::new([]);
    let faults = FaultLayer::new().rule(Rule::new(Effect::RefuseStream).trigger(Trigger::first(2)));
    let log = faults.log();
    let response = RetryLayer::new()
        .backoff(Backoff::constant(SECOND))
        .layer(faults.layer(upstream.clone()))
        .oneshot(request(Method::POST, "http://example.test/orders"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(log.len(), 3);
    // The upstream never saw the refused attempts.
    assert_eq!(upstream.attempts(), 1);
    let statuses: Vec<_> = log.entries().iter().map(|e| e.status).collect();
    assert_eq!(statuses, [None, None, Some(StatusCode::OK)]);
}

#[tokio::test(start_paused = true)]
async fn a_delay_slows_the_upstream_down() {
    let upstream = Upstream::new([]);
    let faults = FaultLayer::new().rule(Rule::new(Effect::Forward).delay(3 * SECOND));
    let start = tokio::time::Instant::now();
    let response = faults
        .layer(upstream.clone())
        .oneshot(request(Method::GET, "http://example.test/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(start.elapsed(), 3 * SECOND);
    // And an attempt timeout cuts a slow attempt off.
    let faults = FaultLayer::new().rule(
        Rule::new(Effect::Forward)
            .delay(10 * SECOND)
            .trigger(Trigger::first(1)),
    );
    let response = RetryLayer::new()
        .attempt_timeout(2 * SECOND)
        .backoff(Backoff::constant(SECOND))
        .layer(faults.layer(upstream.clone()))
        .oneshot(request(Method::GET, "http://example.test/"))
        .await
        .unwrap();
    assert_eq!(Attempts::of(&response).attempts(), 2);
}

#[tokio::test(start_paused = true)]
async fn matchers_select_requests() {
    let answer = || Effect::Respond(Answer::new(StatusCode::SERVICE_UNAVAILABLE));
    let cases: Vec<(Match, Request<Full<Bytes>>, bool)> = vec![
        (
            Match::method(Method::PUT),
            request(Method::PUT, "http://a.test/x"),
            true,
        ),
        (
            Match::method(Method::PUT),
            request(Method::GET, "http://a.test/x"),
            false,
        ),
        (
            Match::url_contains("a.test/x?q"),
            request(Method::GET, "http://a.test/x?q=1"),
            true,
        ),
        (
            Match::path_contains("/api/"),
            request(Method::GET, "http://a.test/api/v1"),
            true,
        ),
        (
            Match::path_contains("/api/"),
            request(Method::GET, "http://api.test/"),
            false,
        ),
        (
            Match::url_regex(r"^http://[a-z]+\.test/items/\d+$").unwrap(),
            request(Method::GET, "http://shop.test/items/42"),
            true,
        ),
        (
            Match::url_regex(r"/items/\d+$").unwrap(),
            request(Method::GET, "http://shop.test/items/new"),
            false,
        ),
        (
            Match::predicate(|req| req.uri.port_u16() == Some(8080)),
            request(Method::GET, "http://a.test:8080/"),
            true,
        ),
    ];
    for (m, req, hit) in cases {
        let description = format!("{m:?} on {} {}", req.method(), req.uri());
        let faults = FaultLayer::new().rule(Rule::new(answer()).matching(m));
        let response = faults.layer(Upstream::new([])).oneshot(req).await.unwrap();
        assert_eq!(
            response.status() == StatusCode::SERVICE_UNAVAILABLE,
            hit,
            "{description}"
        );
    }

    let with_header = Match::header(
        HeaderName::from_static("x-canary"),
        Some(HeaderValue::from_static("1")),
    );
    let faults = FaultLayer::new().rule(Rule::new(answer()).matching(with_header));
    let mut req = request(Method::GET, "http://a.test/");
    req.headers_mut()
        .insert("x-canary", HeaderValue::from_static("1"));
    let response = faults
        .clone()
        .layer(Upstream::new([]))
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let response = faults
        .layer(Upstream::new([]))
        .oneshot(request(Method::GET, "http://a.test/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn the_first_rule_that_matches_and_fires_wins() {
    let faults = FaultLayer::new()
        .rule(
            Rule::new(Effect::Respond(Answer::new(
                StatusCode::SERVICE_UNAVAILABLE,
            )))
            .named("first-two")
            .trigger(Trigger::first(2)),
        )
        .rule(
            Rule::new(Effect::Respond(Answer::new(
                StatusCode::INTERNAL_SERVER_ERROR,
            )))
            .named("then"),
        );
    let log = faults.log();
    let service = faults.layer(Upstream::new([]));
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = service
            .clone()
            .oneshot(request(Method::GET, "http://a.test/"))
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [503, 503, 500, 500]);
    let entries = log.entries();
    let rules: Vec<_> = entries.iter().map(|s| s.rule.as_deref().unwrap()).collect();
    assert_eq!(rules, ["first-two", "first-two", "then", "then"]);
}

async fn statuses(trigger: Trigger, n: usize) -> Vec<u16> {
    let faults = FaultLayer::new()
        .rule(Rule::new(Effect::Respond(Answer::new(StatusCode::BAD_GATEWAY))).trigger(trigger));
    let service = faults.layer(Upstream::new([]));
    let mut out = Vec::new();
    for _ in 0..n {
        let response = service
            .clone()
            .oneshot(request(Method::GET, "http://a.test/"))
            .await
            .unwrap();
        out.push(response.status().as_u16());
        tokio::time::sleep(SECOND).await;
    }
    out
}

#[tokio::test(start_paused = true)]
async fn triggers_first_every_nth_window_and_seeded_probability() {
    // The triggers that could never fire, or never stop, are refused where they are made.
    assert!(Trigger::every_nth(0).is_err());
    assert!(Trigger::window(3 * SECOND, SECOND).is_err());
    assert!(Trigger::probability(1.5, 0).is_err());
    assert_eq!(statuses(Trigger::first(2), 4).await, [502, 502, 200, 200]);
    assert_eq!(
        statuses(Trigger::every_nth(3).unwrap(), 6).await,
        [200, 200, 502, 200, 200, 502]
    );
    // Requests arrive at 0, 1, 2, 3, 4 s; the window is [1 s, 3 s).
    let window = Trigger::window(SECOND, 3 * SECOND).unwrap();
    assert_eq!(statuses(window, 5).await, [200, 502, 502, 200, 200]);

    let run = |seed| async move { statuses(Trigger::probability(0.5, seed).unwrap(), 64).await };
    let a = run(7).await;
    assert_eq!(a, run(7).await, "the same seed gives the same faults");
    assert_ne!(a, run(8).await);
    let faults = a.iter().filter(|&&s| s == 502).count();
    assert!((16..=48).contains(&faults), "{faults} of 64 at p = 0.5");
    assert!(
        statuses(Trigger::probability(0.0, 1).unwrap(), 20)
            .await
            .iter()
            .all(|&s| s == 200)
    );
    assert!(
        statuses(Trigger::probability(1.0, 1).unwrap(), 20)
            .await
            .iter()
            .all(|&s| s == 502)
    );
}

#[test]
fn invalid_fault_configuration_is_rejected() {
    assert!(Trigger::probability(1.5, 0).is_err());
    assert!(Trigger::probability(-0.1, 0).is_err());
    assert!(Trigger::probability(f64::NAN, 0).is_err());
    assert!(Trigger::every_nth(0).is_err());
    assert!(Match::url_regex("(unclosed").is_err());
}

#[tokio::test(start_paused = true)]
async fn the_record_keeps_headers_for_attempt_counts_and_idempotency_keys() {
    let faults = FaultLayer::new().rule(seed_rule().trigger(Trigger::first(2)));
    let log = faults.log();
    let client = RetryLayer::new()
        .backoff(Backoff::constant(SECOND))
        .attempt_header(HeaderName::from_static("x-retry-attempt"))
        .layer(faults.layer(Upstream::new([])));
    let mut req = request(Method::POST, "http://a.test/your-api-endpoint");
    req.headers_mut()
        .insert("idempotency-key", HeaderValue::from_static("k-9"));
    client.oneshot(req).await.unwrap();
    let entries = log.entries();
    assert_eq!(entries.len(), 3);
    for (i, seen) in entries.iter().enumerate() {
        assert_eq!(
            seen.headers["x-retry-attempt"],
            (i + 1).to_string().as_str()
        );
        assert_eq!(seen.headers["idempotency-key"], "k-9");
        assert_eq!(seen.method, Method::POST);
    }
}

#[tokio::test]
async fn in_a_server_a_fault_answers_or_drops_the_connection() {
    within(async {
        let upstream = tower::service_fn(|_req: Request<hyper::body::Incoming>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from("real"))))
        });
        let faults = FaultLayer::new()
            .rule(
                Rule::new(Effect::Respond(
                    Answer::new(StatusCode::BAD_GATEWAY).body("Bad Gateway Simulation"),
                ))
                .matching(Match::path_contains("/flaky")),
            )
            .rule(
                Rule::new(Effect::Fail(io::ErrorKind::ConnectionReset))
                    .matching(Match::path_contains("/drop")),
            );
        let service = faults.layer(upstream);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let service = hyper_util::service::TowerToHyperService::new(service.clone());
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Full<Bytes>>();
        let get = |path: &str| {
            Request::get(format!("http://{addr}{path}"))
                .body(Full::new(Bytes::new()))
                .unwrap()
        };
        let response = client.request(get("/flaky")).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "Bad Gateway Simulation");
        let response = client.request(get("/fine")).await.unwrap();
        assert_eq!(
            response.into_body().collect().await.unwrap().to_bytes(),
            "real"
        );
        assert!(client.request(get("/drop")).await.is_err());
        server.abort();
    })
    .await;
}
