//! Load safety: the retry budget, the overall deadline, memory bounds and cancellation.
//! Paused clock with scripted upstreams and tower-test mocks, except the multi-threaded
//! budget test, which runs in real time with no waits at all.

mod support;

use std::time::Duration;
use support::{attempts, get};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use retryable_http::backoff::Backoff;
use retryable_http::budget::Budget;
use retryable_http::{RetryLayer, body::ReplayBody};
use support::bodies::{Frames, Gauge, tracked};
use support::hang::Hang;
use support::upstream::{Reply, Upstream};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

const SECOND: Duration = Duration::from_secs(1);

/// Retries without waiting, so a thousand requests fit in one budget window.
fn fast() -> RetryLayer {
    RetryLayer::new().backoff(Backoff::constant(Duration::from_millis(1)))
}

// ---- Retry budget --------------------------------------------------------------------------

/// The default budget's arithmetic, without its throttle: 20 % of the last 10 s of
/// requests, plus 10 retries a second.
fn unthrottled() -> Budget {
    Budget::new(10 * SECOND, 10, 0.2).unwrap()
}

#[tokio::test(start_paused = true)]
async fn by_default_retries_stop_once_most_attempts_fail() {
    let upstream = Upstream::always(Reply::status(503));
    let client = fast().layer(upstream.clone());
    for _ in 0..1000 {
        let response = client.clone().oneshot(get("/")).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    // The throttle's 10 tokens: the first request's four failed attempts are retried (6
    // tokens left); the second's first failure leaves 5.2 after its refill, and is retried;
    // every failure after that leaves no more than half.
    assert_eq!(upstream.attempts(), 1000 + 4 + 1);
}

#[tokio::test(start_paused = true)]
async fn by_default_requests_the_server_never_saw_are_retried_however_many_fail() {
    // Each of 50 requests first meets a refused connection, as a client does while a
    // server restarts: no sign that the server fails, so the throttle neither counts nor
    // refuses these retries (the reserve pays for them).
    let mut script = Vec::new();
    for _ in 0..50 {
        script.push(Reply::error(std::io::ErrorKind::ConnectionRefused));
        script.push(Reply::ok());
    }
    let upstream = Upstream::new(script);
    let client = fast().layer(upstream.clone());
    for _ in 0..50 {
        let response = client.clone().oneshot(get("/")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(attempts(&response), 2);
    }
    // Answers the server gave are counted: after a few 503s in a row, no more retries.
    let upstream = Upstream::new(vec![Reply::status(503); 20]);
    let client = fast().layer(upstream.clone());
    for _ in 0..10 {
        client.clone().oneshot(get("/")).await.unwrap();
    }
    assert_eq!(upstream.attempts(), 10 + 4 + 1);
}

#[tokio::test(start_paused = true)]
async fn against_an_always_503_upstream_the_budget_keeps_attempts_near_1_2_per_request() {
    let upstream = Upstream::always(Reply::status(503));
    let client = fast()
        .budget_per_destination(unthrottled())
        .layer(upstream.clone());
    for _ in 0..1000 {
        let response = client.clone().oneshot(get("/")).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    // 1000 first attempts, 20 % of them in retries, and the reserve of 10/s × 10 s: exactly
    // 1000 + 200 + 100, since five requests pay for exactly one retry.
    assert_eq!(upstream.attempts(), 1300);
}

#[tokio::test(start_paused = true)]
async fn without_the_budget_every_request_makes_five_attempts() {
    let upstream = Upstream::always(Reply::status(503));
    let client = fast().no_budget().layer(upstream.clone());
    for _ in 0..1000 {
        client.clone().oneshot(get("/")).await.unwrap();
    }
    assert_eq!(upstream.attempts(), 5000);
}

#[tokio::test(start_paused = true)]
async fn a_thousand_concurrent_requests_stay_within_the_budget_and_all_get_an_attempt() {
    let upstream = Upstream::always(Reply::status(503));
    let client = fast().layer(upstream.clone());
    let tasks: Vec<_> = (0..1000)
        .map(|_| tokio::spawn(client.clone().oneshot(get("/"))))
        .collect();
    for task in tasks {
        let response = task.await.unwrap().unwrap();
        assert!(attempts(&response) >= 1);
    }
    let made = upstream.attempts();
    assert!((1000..=1300).contains(&made), "{made} attempts");
}

#[test]
fn tasks_on_many_threads_sharing_one_layer_stay_within_the_budget() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let upstream = Upstream::always(Reply::status(503));
    let client = runtime.block_on(async {
        RetryLayer::new()
            .backoff(Backoff::constant(Duration::ZERO))
            .layer(upstream.clone())
    });
    runtime.block_on(async {
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    for _ in 0..64 {
                        client.clone().oneshot(get("/")).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    // 1024 first attempts + ⌊0.2 × 1024 + 100⌋ retries at most.
    let made = upstream.attempts();
    assert!((1024..=1024 + 304).contains(&made), "{made} attempts");
}

/// Two hosts behind one client: `down.test` answers with `down`'s script, `up.test` with
/// `up`'s.
fn two_hosts(
    down: Upstream,
    up: Upstream,
) -> impl Service<
    Request<ReplayBody<Full<Bytes>>>,
    Response = Response<Full<Bytes>>,
    Error = Box<dyn std::error::Error + Send + Sync>,
    Future = impl Send,
> + Clone {
    tower::service_fn(move |request: Request<ReplayBody<Full<Bytes>>>| {
        let host = if request.uri().host() == Some("down.test") {
            down.clone()
        } else {
            up.clone()
        };
        host.oneshot(request)
    })
}

fn to(host: &str) -> Request<Full<Bytes>> {
    Request::get(format!("http://{host}/"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// 200 requests to a host that is down, then one to a host that fails once: whether that
/// one is retried.
async fn after_an_outage_elsewhere(layer: RetryLayer) -> u32 {
    let down = Upstream::always(Reply::status(503));
    let flaky = Upstream::new([Reply::status(503), Reply::ok()]);
    let client = layer.layer(two_hosts(down, flaky));
    for _ in 0..200 {
        client.clone().oneshot(to("down.test")).await.unwrap();
    }
    let response = client.oneshot(to("up.test")).await.unwrap();
    attempts(&response)
}

#[tokio::test(start_paused = true)]
async fn one_host_s_outage_leaves_another_host_s_retries_alone() {
    // By default each destination has a budget of its own.
    assert_eq!(after_an_outage_elsewhere(fast()).await, 2);
    // One budget for both: the outage spent it.
    let shared = fast().budget(Budget::default());
    assert_eq!(after_an_outage_elsewhere(shared).await, 1);
}

/// 300 requests to a healthy host, then 100 to a host that is down: the retries the
/// second host gets.
async fn retries_for_the_host_that_is_down(layer: RetryLayer, healthy: usize) -> usize {
    let down = Upstream::always(Reply::status(503));
    let client = layer.layer(two_hosts(down.clone(), Upstream::always(Reply::ok())));
    for _ in 0..healthy {
        client.clone().oneshot(to("up.test")).await.unwrap();
    }
    for _ in 0..100 {
        client.clone().oneshot(to("down.test")).await.unwrap();
    }
    down.attempts() - 100
}

#[tokio::test(start_paused = true)]
async fn one_host_s_healthy_traffic_buys_no_retries_for_another() {
    // By default, its own budget and throttle: the same 5 retries before the throttle
    // stops them, with or without the other host's traffic.
    assert_eq!(retries_for_the_host_that_is_down(fast(), 0).await, 5);
    assert_eq!(retries_for_the_host_that_is_down(fast(), 300).await, 5);
    // Without the throttle, its own budget pays the reserve of 100 and 20 % of its own
    // 100 requests, with or without the other host's traffic.
    let per_destination = || fast().budget_per_destination(unthrottled());
    assert_eq!(
        retries_for_the_host_that_is_down(per_destination(), 0).await,
        120
    );
    assert_eq!(
        retries_for_the_host_that_is_down(per_destination(), 300).await,
        120
    );
    // One budget for both: the healthy host's 300 requests pay for 60 more.
    let shared = fast().budget(unthrottled());
    assert_eq!(retries_for_the_host_that_is_down(shared, 300).await, 180);
}

#[tokio::test(start_paused = true)]
async fn a_cap_bounds_the_retries_of_every_destination_together() {
    // 10 retries per destination, and 15 over all of them; no deposits count.
    let per_destination = Budget::new(10 * SECOND, 1, 0.0).unwrap();
    let cap = Budget::new(15 * SECOND, 1, 0.0).unwrap();
    let down = || Upstream::always(Reply::status(503));
    let (first, second) = (down(), down());
    let client = fast()
        .budget_per_destination(per_destination)
        .budget_cap(cap.clone())
        .layer(two_hosts(first.clone(), second.clone()));
    for _ in 0..20 {
        client.clone().oneshot(to("down.test")).await.unwrap();
    }
    for _ in 0..20 {
        client.clone().oneshot(to("up.test")).await.unwrap();
    }
    // The first host spends its own 10; the second, the 5 the cap has left.
    assert_eq!((first.attempts() - 20, second.attempts() - 20), (10, 5));
    assert_eq!(cap.available(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_retry_the_cap_refuses_costs_its_own_budget_nothing() {
    let shared = Budget::new(10 * SECOND, 1, 0.0).unwrap();
    let cap = Budget::new(5 * SECOND, 1, 0.0).unwrap();
    let upstream = Upstream::always(Reply::status(503));
    let client = fast()
        .budget(shared.clone())
        .budget_cap(cap.clone())
        .layer(upstream.clone());
    for _ in 0..20 {
        client.clone().oneshot(get("/")).await.unwrap();
    }
    // 5 retries, as the cap allows; each refused one was given back to the shared budget.
    assert_eq!(upstream.attempts(), 25);
    assert_eq!((shared.available(), cap.available()), (5, 0));
}

#[tokio::test(start_paused = true)]
async fn one_budget_is_shared_by_clones_and_by_layers_given_the_same_budget() {
    // No reserve: every retry must be paid for by first attempts.
    let budget = Budget::new(10 * SECOND, 0, 0.2).unwrap();
    let ok = Upstream::always(Reply::ok());
    let failing = Upstream::new([Reply::status(503), Reply::status(503)]);
    let layer_a = fast().budget(budget.clone());
    let layer_b = fast().budget(budget.clone());

    // Three requests through clones of layer A and one through layer B: 0.8 of a retry.
    for _ in 0..3 {
        layer_a
            .clone()
            .layer(ok.clone())
            .oneshot(get("/"))
            .await
            .unwrap();
    }
    let response = layer_b
        .layer(failing.clone())
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(
        attempts(&response),
        1,
        "the shared budget had 0.8 of a retry"
    );

    // A fifth first attempt makes one retry's worth; a sixth request uses it (and the 0.2 it
    // deposits is not enough for a second retry).
    layer_a.layer(ok.clone()).oneshot(get("/")).await.unwrap();
    let failing = Upstream::new([Reply::status(503), Reply::status(503)]);
    let response = fast()
        .budget(budget.clone())
        .layer(failing.clone())
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(attempts(&response), 2);
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(start_paused = true)]
async fn the_budget_refills_as_the_window_slides() {
    let budget = Budget::new(10 * SECOND, 1, 0.0).unwrap();
    let upstream = Upstream::always(Reply::status(503));
    let client = fast().budget(budget.clone()).layer(upstream.clone());
    // The reserve: 1/s over 10 s.
    for _ in 0..3 {
        client.clone().oneshot(get("/")).await.unwrap();
    }
    assert_eq!(upstream.attempts(), 3 + 10);
    tokio::time::sleep(11 * SECOND).await;
    client.clone().oneshot(get("/")).await.unwrap();
    assert_eq!(upstream.attempts(), 13 + 5);
}

// ---- Overall deadline ---------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn the_layer_never_starts_a_wait_that_ends_after_the_deadline() {
    let upstream = Upstream::always(Reply::status(503).body("still busy"));
    let start = Instant::now();
    let response = RetryLayer::new()
        .backoff(Backoff::constant(2 * SECOND))
        .deadline(5 * SECOND)
        .layer(upstream.clone())
        .oneshot(get("/"))
        .await
        .unwrap();
    // Attempts at 0, 2 and 4 s; a wait to 6 s would pass the deadline, so the last 503
    // comes back at 4 s.
    assert_eq!(upstream.times(), [Duration::ZERO, 2 * SECOND, 4 * SECOND]);
    assert_eq!(start.elapsed(), 4 * SECOND);
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(attempts(&response), 3);
}

#[tokio::test(start_paused = true)]
async fn a_server_requested_wait_past_the_deadline_is_not_slept() {
    let upstream = Upstream::always(Reply::status(429).header("retry-after", "30"));
    let start = Instant::now();
    let response = RetryLayer::new()
        .deadline(10 * SECOND)
        .layer(upstream.clone())
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(upstream.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_in_flight_at_the_deadline_is_cut_off_with_a_clear_error() {
    let hang = Hang::default();
    let start = Instant::now();
    let error = RetryLayer::new()
        .deadline(3 * SECOND)
        .layer(hang.clone())
        .oneshot(get("/"))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), 3 * SECOND);
    assert!(error.is_deadline());
    assert_eq!(error.attempts(), 1);
    assert_eq!(
        retryable_http::error::Report::new(&error).to_string(),
        "GET http://upstream.test/ giving up after 1 attempt(s): deadline of 3s exceeded"
    );
    assert_eq!(hang.dropped(), 1, "the attempt was cut off");
}

#[tokio::test(start_paused = true)]
async fn attempt_timeouts_and_waits_all_count_against_the_deadline() {
    let hang = Hang::default();
    let start = Instant::now();
    let error = RetryLayer::new()
        .backoff(Backoff::constant(SECOND))
        .attempt_timeout(2 * SECOND)
        .deadline(5 * SECOND)
        .layer(hang.clone())
        .oneshot(get("/"))
        .await
        .unwrap_err();
    // Attempt 1 times out at 2 s, the wait ends at 3 s, attempt 2 is cut off at 5 s.
    assert_eq!(start.elapsed(), 5 * SECOND);
    assert_eq!(hang.calls(), 2);
    assert!(error.is_deadline());
    assert!(!error.is_attempt_timeout());
    assert_eq!(error.attempts(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_also_ends_a_wait_for_readiness() {
    let (mock, mut handle) =
        tower_test::mock::pair::<Request<ReplayBody<Full<Bytes>>>, Response<Full<Bytes>>>();
    handle.allow(1);
    let mut client = RetryLayer::new()
        .backoff(Backoff::constant(SECOND))
        .deadline(4 * SECOND)
        .layer(mock);
    client.ready().await.unwrap();
    let start = Instant::now();
    let call = tokio::spawn(client.call(get("/")));
    let (_, reply) = handle.next_request().await.unwrap();
    let mut unavailable = Response::new(Full::new(Bytes::new()));
    *unavailable.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    reply.send_response(unavailable);
    // The service never becomes ready again.
    let error = call.await.unwrap().unwrap_err();
    assert!(error.is_deadline());
    assert_eq!(error.attempts(), 1);
    assert_eq!(start.elapsed(), 4 * SECOND);
}

// ---- Memory -------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_request_over_the_layer_wide_replay_cap_is_sent_but_not_retried() {
    let gauge = Gauge::default();
    let upstream = Upstream::new([Reply::status(503), Reply::status(503)]).forget_chunks();
    let layer = RetryLayer::new()
        .backoff(Backoff::constant(SECOND))
        .replay_limit_total(1500);
    let client = layer.layer(upstream.clone());
    let body = || Frames::chunks([tracked(1000, b'a', &gauge)]);
    let put = |body| Request::put("http://upstream.test/").body(body).unwrap();

    let first = tokio::spawn(client.clone().oneshot(put(body())));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The first request holds 1000 bytes while it waits to retry.
    assert_eq!(layer.replay_bytes_held(), Some(1000));
    let second = tokio::spawn(client.clone().oneshot(put(body())));

    let second = second.await.unwrap().unwrap();
    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        attempts(&second),
        1,
        "500 more bytes would pass the 1500-byte cap"
    );
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(attempts(&first), 2);

    assert_eq!(upstream.attempts(), 3);
    assert!(upstream.seen().iter().all(|s| s.len == 1000 && s.complete));
    assert_eq!(layer.replay_bytes_held(), Some(0));
    assert_eq!(gauge.live(), 0);
}

// ---- Cancellation -------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn dropping_the_future_during_the_wait_stops_attempts_and_frees_the_body() {
    let gauge = Gauge::default();
    let (mock, mut handle) =
        tower_test::mock::pair::<Request<ReplayBody<Frames>>, Response<Full<Bytes>>>();
    let layer = RetryLayer::new()
        .backoff(Backoff::constant(5 * SECOND))
        .replay_limit_total(1 << 20);
    let client = layer.layer(mock);
    let body = Frames::chunks([tracked(4096, b'z', &gauge)]);
    let mut call = tokio_test::task::spawn(
        client.oneshot(Request::put("http://upstream.test/").body(body).unwrap()),
    );
    assert!(call.poll().is_pending());
    let (request, reply) = handle.next_request().await.unwrap();
    // The upstream reads the whole body, then answers 503.
    let _ = http_body_util::BodyExt::collect(request.into_body()).await;
    let mut unavailable = Response::new(Full::new(Bytes::new()));
    *unavailable.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    reply.send_response(unavailable);
    assert!(call.poll().is_pending());
    tokio::time::sleep(SECOND).await;
    assert!(call.poll().is_pending());
    assert_eq!(gauge.live(), 4096, "kept for the retry");
    assert_eq!(layer.replay_bytes_held(), Some(4096));

    drop(call);
    assert_eq!(gauge.live(), 0);
    assert_eq!(layer.replay_bytes_held(), Some(0));
    tokio::time::sleep(60 * SECOND).await;
    // The service went with the future: no request came, none ever will.
    assert!(handle.next_request().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_future_during_an_attempt_stops_attempts_and_frees_the_body() {
    let gauge = Gauge::default();
    let (mock, mut handle) =
        tower_test::mock::pair::<Request<ReplayBody<Frames>>, Response<Full<Bytes>>>();
    let client = RetryLayer::new().layer(mock);
    let body = Frames::chunks([tracked(4096, b'z', &gauge)]);
    let mut call = tokio_test::task::spawn(
        client.oneshot(Request::put("http://upstream.test/").body(body).unwrap()),
    );
    assert!(call.poll().is_pending());
    let (request, _reply) = handle.next_request().await.unwrap();
    drop(call);
    // Only the request the upstream still holds keeps the bytes alive.
    assert_eq!(gauge.live(), 4096);
    drop(request);
    assert_eq!(gauge.live(), 0);
    tokio::time::sleep(60 * SECOND).await;
    assert!(handle.next_request().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn configuration_errors_come_at_construction() {
    assert!(Budget::new(10 * SECOND, 10, 10.5).is_err());
    assert!(Budget::new(Duration::ZERO, 10, 0.2).is_err());
    assert!(Backoff::exponential(5 * SECOND, SECOND).is_err());
    // Everything that is accepted runs without panicking, at the extremes too.
    let upstream = Upstream::new([Reply::status(503)]);
    let response = RetryLayer::new()
        .max_retries(u32::MAX)
        .backoff(Backoff::constant(Duration::ZERO))
        .server_waits(retryable_http::retry_after::ServerWaits::new().max(Duration::MAX))
        .deadline(Duration::MAX)
        .attempt_timeout(Duration::MAX)
        .drain_timeout(Duration::MAX)
        .replay_limit(usize::MAX)
        .replay_limit_total(usize::MAX)
        .layer(upstream)
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(attempts(&response), 2);
}
