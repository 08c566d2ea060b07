//! Timing: backoff, server-requested waits, timeouts, cancellation and readiness.
//! All on tokio's paused clock, with a scripted upstream or tower-test's mock.

mod support;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};
use support::{attempts, get};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use retryable_http::backoff::{Backoff, Jitter};
use retryable_http::retry_after::ServerWaits;
use retryable_http::{RetryLayer, body::ReplayBody, error::BoxError};
use support::hang::Hang;
use support::upstream::{Reply, Upstream};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

const SECOND: Duration = Duration::from_secs(1);

/// Gaps between consecutive attempts.
fn gaps(upstream: &Upstream) -> Vec<Duration> {
    upstream.times().windows(2).map(|w| w[1] - w[0]).collect()
}

/// The gaps between the attempts of a GET through `layer` to an upstream that answers
/// `first`, then 200.
async fn gaps_after(layer: RetryLayer, first: Reply) -> Vec<Duration> {
    let upstream = Upstream::new([first]);
    layer
        .layer(upstream.clone())
        .oneshot(get("/"))
        .await
        .unwrap();
    gaps(&upstream)
}

/// Sun, 06 Nov 1994 08:49:30 GMT.
fn fixed_now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770)
}

#[tokio::test(start_paused = true)]
async fn exponential_backoff_without_jitter_waits_1_2_4_8_seconds() {
    let upstream = Upstream::always(Reply::status(503));
    let backoff = Backoff::exponential(SECOND, 30 * SECOND)
        .unwrap()
        .jitter(Jitter::None);
    RetryLayer::new()
        .backoff(backoff)
        .layer(upstream.clone())
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(
        gaps(&upstream),
        [SECOND, 2 * SECOND, 4 * SECOND, 8 * SECOND]
    );
}

#[tokio::test(start_paused = true)]
async fn default_backoff_is_jittered_inside_min_and_cap() {
    let upstream = Upstream::always(Reply::status(503));
    let layer = RetryLayer::new().max_retries(8).no_budget();
    layer
        .layer(upstream.clone())
        .oneshot(get("/"))
        .await
        .unwrap();
    let bounds = [
        (1, 2),
        (2, 4),
        (4, 8),
        (8, 16),
        (15, 30),
        (15, 30),
        (15, 30),
        (15, 30),
    ];
    let gaps = gaps(&upstream);
    assert_eq!(gaps.len(), bounds.len());
    for (gap, (lo, hi)) in gaps.into_iter().zip(bounds) {
        assert!(
            gap >= lo * SECOND && gap <= hi * SECOND,
            "{gap:?} not in [{lo}, {hi}] s"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn jitter_differs_between_requests() {
    let upstream = Upstream::always(Reply::status(503));
    let client = RetryLayer::new()
        .max_retries(1)
        .no_budget()
        .layer(upstream.clone());
    for _ in 0..8 {
        client.clone().oneshot(get("/")).await.unwrap();
    }
    let times = upstream.times();
    let mut gaps: Vec<_> = times.chunks(2).map(|w| w[1] - w[0]).collect();
    gaps.dedup();
    assert!(
        gaps.len() > 1,
        "eight requests retried in lock-step: {gaps:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_seconds_on_503_is_honoured() {
    // 7 s: a wait the 1 s exponential backoff cannot produce on its first retry.
    let upstream = Upstream::new([Reply::status(503).header("retry-after", "7")]);
    let response = RetryLayer::new()
        .layer(upstream.clone())
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(gaps(&upstream), [7 * SECOND]);
}

#[tokio::test(start_paused = true)]
async fn retry_after_on_429_is_honoured_for_a_post() {
    let upstream = Upstream::new([Reply::status(429).header("retry-after", "2")]);
    let request = Request::post("http://upstream.test/")
        .body(Full::new(Bytes::from("x")))
        .unwrap();
    RetryLayer::new()
        .layer(upstream.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(gaps(&upstream), [2 * SECOND]);
}

#[tokio::test(start_paused = true)]
async fn retry_after_http_date_in_the_future_waits_until_then() {
    let gaps = gaps_after(
        RetryLayer::new().server_waits(ServerWaits::new().wall_clock(fixed_now)),
        Reply::status(503).header("retry-after", "Sun, 06 Nov 1994 08:49:39 GMT"),
    )
    .await;
    assert_eq!(gaps, [9 * SECOND]);
}

#[tokio::test(start_paused = true)]
async fn retry_after_http_date_in_the_past_retries_at_once() {
    let gaps = gaps_after(
        RetryLayer::new().server_waits(ServerWaits::new().wall_clock(fixed_now)),
        Reply::status(503).header("retry-after", "Sat, 05 Nov 1994 08:49:39 GMT"),
    )
    .await;
    assert_eq!(gaps, [Duration::ZERO]);
}

#[tokio::test(start_paused = true)]
async fn malformed_retry_after_falls_back_to_the_backoff() {
    for value in ["-5", "", "soon", "1.5", "Sun, 06 Nov"] {
        let gaps = gaps_after(
            RetryLayer::new()
                .backoff(Backoff::constant(3 * SECOND))
                .server_waits(ServerWaits::new().wall_clock(fixed_now)),
            Reply::status(503).header("retry-after", value),
        )
        .await;
        assert_eq!(gaps, [3 * SECOND], "{value:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_on_502_is_honoured_by_default_and_ignored_by_go_rules() {
    let script = || [Reply::status(502).header("retry-after", "7")];
    let upstream = Upstream::new(script());
    RetryLayer::new()
        .layer(upstream.clone())
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(gaps(&upstream), [7 * SECOND]);

    // go-retryablehttp's DefaultBackoff, RateLimitLinearJitterBackoff, LinearJitterBackoff.
    for (backoff, waits) in [
        (
            Backoff::go_default(SECOND, 5 * SECOND).unwrap(),
            ServerWaits::go(),
        ),
        (
            Backoff::linear_jitter(SECOND, SECOND).unwrap(),
            ServerWaits::go(),
        ),
        (
            Backoff::linear_jitter(SECOND, SECOND).unwrap(),
            ServerWaits::never(),
        ),
    ] {
        let upstream = Upstream::new(script());
        RetryLayer::new()
            .backoff(backoff.clone())
            .server_waits(waits.clone())
            .layer(upstream.clone())
            .oneshot(get("/"))
            .await
            .unwrap();
        assert_eq!(gaps(&upstream), [SECOND], "{backoff:?} {waits:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn go_default_honours_retry_after_on_503_beyond_its_max() {
    let gaps = gaps_after(
        RetryLayer::new()
            .backoff(Backoff::go_default(SECOND, 5 * SECOND).unwrap())
            .server_waits(ServerWaits::go()),
        Reply::status(503).header("retry-after", "20"),
    )
    .await;
    assert_eq!(gaps, [20 * SECOND]);
}

#[tokio::test(start_paused = true)]
async fn a_server_wait_above_the_cap_is_not_slept() {
    // go-retryablehttp #247: a server asked for 484289 hours.
    let start = Instant::now();
    let upstream = Upstream::new([Reply::status(503)
        .header("retry-after", "1743440400")
        .body("come back in 55 years")]);
    let response = RetryLayer::new()
        .layer(upstream.clone())
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(upstream.attempts(), 1);
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(attempts(&response), 1);

    // Just above a lowered cap, too.
    let upstream = Upstream::new([Reply::status(429).header("retry-after", "11")]);
    let response = RetryLayer::new()
        .server_waits(ServerWaits::new().max(10 * SECOND))
        .layer(upstream.clone())
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(upstream.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_reset_headers_are_honoured() {
    for name in ["ratelimit-reset", "x-ratelimit-reset"] {
        let gaps = gaps_after(RetryLayer::new(), Reply::status(429).header(name, "4")).await;
        assert_eq!(gaps, [4 * SECOND], "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn dropping_the_future_during_the_backoff_cancels_the_retry() {
    let upstream = Upstream::always(Reply::status(503));
    let mut call = tokio_test::task::spawn(
        RetryLayer::new()
            .backoff(Backoff::constant(5 * SECOND))
            .layer(upstream.clone())
            .oneshot(get("/")),
    );
    assert!(call.poll().is_pending());
    tokio::time::sleep(SECOND).await;
    assert!(call.poll().is_pending());
    assert_eq!(upstream.attempts(), 1);
    drop(call);
    tokio::time::sleep(60 * SECOND).await;
    assert_eq!(upstream.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_future_during_an_attempt_drops_the_inner_call() {
    let hang = Hang::default();
    let mut call = tokio_test::task::spawn(RetryLayer::new().layer(hang.clone()).oneshot(get("/")));
    assert!(call.poll().is_pending());
    tokio::time::sleep(10 * SECOND).await;
    assert!(call.poll().is_pending());
    assert_eq!(hang.dropped(), 0);
    drop(call);
    assert_eq!(hang.dropped(), 1);
    assert_eq!(hang.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_is_ended_only_by_the_attempt_timeout() {
    // Without a timeout the attempt waits as long as the server does.
    let hang = Hang::default();
    let mut call = tokio_test::task::spawn(RetryLayer::new().layer(hang.clone()).oneshot(get("/")));
    assert!(call.poll().is_pending());
    tokio::time::sleep(3600 * SECOND).await;
    assert!(call.poll().is_pending());
    assert_eq!(hang.calls(), 1);
    drop(call);

    // With one, a GET is retried after each timeout, then fails naming the timeout.
    let hang = Hang::default();
    let start = Instant::now();
    let error = RetryLayer::new()
        .max_retries(2)
        .backoff(Backoff::constant(SECOND))
        .attempt_timeout(2 * SECOND)
        .layer(hang.clone())
        .oneshot(get("/"))
        .await
        .unwrap_err();
    assert_eq!(hang.calls(), 3);
    assert_eq!(error.attempts(), 3);
    assert!(error.is_attempt_timeout());
    assert!(
        retryable_http::error::Report::new(&error)
            .to_string()
            .ends_with(": attempt timed out after 2s"),
        "{error}"
    );
    // 3 attempts of 2 s and 2 waits of 1 s.
    assert_eq!(start.elapsed(), 8 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_post_is_not_retried() {
    let hang = Hang::default();
    let request = Request::post("http://upstream.test/")
        .body(Full::new(Bytes::from("x")))
        .unwrap();
    let error = RetryLayer::new()
        .attempt_timeout(2 * SECOND)
        .layer(hang.clone())
        .oneshot(request)
        .await
        .unwrap_err();
    assert_eq!(hang.calls(), 1);
    assert!(error.is_attempt_timeout());
}

#[tokio::test(start_paused = true)]
async fn a_slow_answer_within_the_attempt_timeout_is_kept() {
    let upstream = Upstream::new([Reply::status(200).after(SECOND)]);
    let response = RetryLayer::new()
        .attempt_timeout(2 * SECOND)
        .layer(upstream.clone())
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(upstream.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_inner_service_is_driven_to_readiness_before_every_attempt() {
    // tower-test's mock panics when called without being ready; it is ready only once
    // per `allow`.
    let (mock, mut handle) =
        tower_test::mock::pair::<Request<ReplayBody<Full<Bytes>>>, Response<Full<Bytes>>>();
    handle.allow(1);
    let mut client = RetryLayer::new()
        .backoff(Backoff::constant(SECOND))
        .layer(mock);
    client.ready().await.unwrap();
    let mut call = tokio_test::task::spawn(client.call(get("/")));
    assert!(call.poll().is_pending());
    let (_, reply) = handle.next_request().await.unwrap();
    let mut unavailable = Response::new(Full::new(Bytes::new()));
    *unavailable.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    reply.send_response(unavailable);

    // The backoff passes, but the service is not ready: no second attempt.
    assert!(call.poll().is_pending());
    tokio::time::sleep(10 * SECOND).await;
    assert!(call.poll().is_pending());
    assert!(
        tokio_test::task::spawn(handle.next_request())
            .poll()
            .is_pending()
    );

    // Once it is ready, the retry goes out.
    handle.allow(1);
    assert!(call.poll().is_pending());
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_response(Response::new(Full::new(Bytes::from("ok"))));
    let response = call.await.unwrap();
    assert_eq!(attempts(&response), 2);
}

#[tokio::test(start_paused = true)]
async fn a_drained_response_is_read_only_up_to_the_drain_bounds() {
    use http_body::Frame;
    use std::sync::atomic::AtomicU64;

    /// An endless body that counts the bytes read from it.
    struct Endless(Arc<AtomicU64>);

    impl http_body::Body for Endless {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            self.0.fetch_add(1024, Ordering::SeqCst);
            Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; 1024])))))
        }
    }

    let read = Arc::new(AtomicU64::new(0));
    let counter = read.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let service = tower::service_fn(move |_req: Request<ReplayBody<Full<Bytes>>>| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        let body = Endless(counter.clone());
        async move {
            let mut response = Response::new(body);
            if n == 0 {
                *response.status_mut() = StatusCode::BAD_GATEWAY;
            }
            Ok::<_, BoxError>(response)
        }
    });
    let response = RetryLayer::new()
        .backoff(Backoff::constant(SECOND))
        .layer(service)
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(attempts(&response), 2);
    // 4 KiB, in 1 KiB frames.
    assert_eq!(read.load(Ordering::SeqCst), 4096);
}

#[tokio::test(start_paused = true)]
async fn a_drain_that_stalls_is_cut_off_by_the_drain_timeout() {
    use http_body::Frame;

    /// A body that never yields.
    struct Stalled;

    impl http_body::Body for Stalled {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Pending
        }
    }

    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let service = tower::service_fn(move |_req: Request<ReplayBody<Full<Bytes>>>| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            let mut response = Response::new(Stalled);
            if n == 0 {
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            }
            Ok::<_, BoxError>(response)
        }
    });
    let start = Instant::now();
    let response = RetryLayer::new()
        .backoff(Backoff::constant(Duration::ZERO))
        .drain_timeout(SECOND)
        .layer(service)
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(attempts(&response), 2);
    assert_eq!(start.elapsed(), SECOND);
}

/// The gaps between the five attempts of each of three GETs, one after another, through
/// one layer with `seed`, to an upstream that answers 503 to everything.
async fn seeded_gaps(seed: u64) -> Vec<Duration> {
    let upstream = Upstream::always(Reply::status(503));
    let client = RetryLayer::new()
        .jitter_seed(seed)
        .no_budget()
        .layer(upstream.clone());
    for _ in 0..3 {
        client.clone().oneshot(get("/")).await.unwrap();
    }
    let times = upstream.times();
    times
        .chunks(5)
        .flat_map(|attempts| attempts.windows(2).map(|w| w[1] - w[0]))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_seeded_layer_draws_the_same_jitter_in_every_run() {
    let first = seeded_gaps(7).await;
    assert_eq!(first.len(), 12);
    assert_eq!(seeded_gaps(7).await, first);
    // Another seed, other draws; and the requests of one run draw apart.
    assert_ne!(seeded_gaps(8).await, first);
    assert_ne!(first[..4], first[4..8]);
    // Still inside the backoff's bounds, 1 s to 30 s.
    assert!(first.iter().all(|gap| (SECOND..=30 * SECOND).contains(gap)));
}
