//! Hedging: a second attempt while the first is still slow, the first acceptable outcome
//! wins, the losers are dropped. Paused clock, scripted upstream.

mod support;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use retryable_http::budget::Budget;
use retryable_http::classify::ErrorClass;
use retryable_http::policy::{Action, policy_fn};
use retryable_http::{
    Attempts, Retry, RetryLayer, RetryOverride, hedge::Hedge, record::Ended, record::WaitReason,
};
use support::bodies::channel;
use support::hang::Hang;
use support::upstream::{Reply, Upstream};
use support::{attempts, get};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

const MS: Duration = Duration::from_millis(1);

fn hedged(delay: Duration) -> RetryLayer {
    RetryLayer::new().hedge(Hedge::after(delay))
}

fn record<B>(response: &http::Response<B>) -> Attempts {
    Attempts::of(response).into_owned()
}

/// How each attempt of the request behind `response` ended, in the order they started.
fn endings<B>(response: &http::Response<B>) -> Vec<Ended> {
    record(response).iter().map(|a| a.ended()).collect()
}

fn status(code: u16) -> Ended {
    Ended::Status(http::StatusCode::from_u16(code).unwrap())
}

/// Sends `request` through `layer` around `inner`; returns the outcome and how long it took.
async fn timed<S>(
    layer: RetryLayer,
    inner: S,
    request: Request<Full<Bytes>>,
) -> (
    Result<http::Response<Full<Bytes>>, retryable_http::Error>,
    Duration,
)
where
    S: Clone,
    Retry<S>: Service<
            Request<Full<Bytes>>,
            Response = http::Response<Full<Bytes>>,
            Error = retryable_http::Error,
        >,
{
    let started = Instant::now();
    let outcome = layer.layer(inner).oneshot(request).await;
    (outcome, started.elapsed())
}

async fn send(
    service: &mut Retry<Upstream>,
    request: Request<Full<Bytes>>,
) -> http::Response<Full<Bytes>> {
    ServiceExt::<Request<Full<Bytes>>>::ready(service)
        .await
        .unwrap()
        .call(request)
        .await
        .unwrap()
}

/// Counts the attempt futures that were dropped before they finished.
#[derive(Clone)]
struct Counted<S> {
    inner: S,
    unfinished: Arc<AtomicUsize>,
}

impl<S> Counted<S> {
    fn new(inner: S) -> Self {
        Counted {
            inner,
            unfinished: Arc::default(),
        }
    }

    fn dropped_unfinished(&self) -> usize {
        self.unfinished.load(Ordering::SeqCst)
    }
}

impl<S, R> Service<R> for Counted<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = CountedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        CountedFuture {
            inner: Box::pin(self.inner.call(request)),
            unfinished: Some(self.unfinished.clone()),
        }
    }
}

struct CountedFuture<F> {
    inner: Pin<Box<F>>,
    unfinished: Option<Arc<AtomicUsize>>,
}

impl<F: Future> Future for CountedFuture<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let output = std::task::ready!(self.inner.as_mut().poll(cx));
        self.unfinished = None;
        Poll::Ready(output)
    }
}

impl<F> Drop for CountedFuture<F> {
    fn drop(&mut self) {
        if let Some(unfinished) = &self.unfinished {
            unfinished.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_first_attempt_is_beaten_by_its_hedge_at_delay_plus_latency() {
    let upstream = Upstream::new([
        Reply::ok().after(1000 * MS),
        Reply::ok().body("hedge").after(5 * MS),
    ]);
    let inner = Counted::new(upstream.clone());
    let (response, took) = timed(hedged(10 * MS), inner.clone(), get("/")).await;
    let response = response.unwrap();
    assert_eq!(took, 15 * MS);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "hedge");
    // The slow first attempt was dropped when the hedge won.
    assert_eq!(upstream.attempts(), 2);
    assert_eq!(inner.dropped_unfinished(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_record_lists_the_hedge_and_the_abandoned_attempt() {
    let upstream = Upstream::new([Reply::ok().after(1000 * MS), Reply::ok().after(5 * MS)]);
    let response = hedged(10 * MS)
        .layer(upstream)
        .oneshot(get("/"))
        .await
        .unwrap();
    let record = record(&response);
    let attempts: Vec<_> = record
        .iter()
        .map(|a| (a.ended(), a.waited(), a.is_hedge()))
        .collect();
    assert_eq!(
        attempts,
        [
            (Ended::Abandoned, None, false),
            (status(200), Some((10 * MS, WaitReason::Hedge)), true),
        ]
    );
    assert_eq!((record.hedges(), record.abandoned()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn an_answer_before_the_delay_makes_no_hedge() {
    let upstream = Upstream::new([Reply::ok().after(5 * MS)]);
    let inner = Counted::new(upstream.clone());
    let (response, took) = timed(hedged(10 * MS), inner.clone(), get("/")).await;
    let response = response.unwrap();
    assert_eq!(took, 5 * MS);
    assert_eq!(attempts(&response), 1);
    assert_eq!(upstream.attempts(), 1);
    assert_eq!(inner.dropped_unfinished(), 0);
    // Nothing is left behind to start later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(upstream.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_503_starts_the_next_attempt_at_once() {
    let upstream = Upstream::new([Reply::status(503).after(2 * MS), Reply::ok().after(3 * MS)]);
    let (response, took) = timed(hedged(10 * MS), upstream.clone(), get("/")).await;
    let response = response.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(took, 5 * MS);
    assert_eq!(upstream.times(), [Duration::ZERO, 2 * MS]);
    let attempts: Vec<_> = record(&response)
        .iter()
        .map(|a| (a.ended(), a.waited(), a.is_hedge()))
        .collect();
    assert_eq!(
        attempts,
        [
            (status(503), None, false),
            // Nothing else was in flight: a retry, not a hedge.
            (
                status(200),
                Some((Duration::ZERO, WaitReason::Hedge)),
                false
            ),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_s_retry_after_holds_the_next_attempt_back() {
    let upstream = Upstream::new([Reply::status(503).header("retry-after", "1")]);
    let (response, took) = timed(hedged(10 * MS), upstream.clone(), get("/")).await;
    let response = response.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(took, Duration::from_secs(1));
    assert_eq!(
        record(&response).get(1).unwrap().waited(),
        Some((Duration::from_secs(1), WaitReason::RetryAfter))
    );
}

#[tokio::test(start_paused = true)]
async fn an_outcome_the_policy_does_not_retry_wins_at_once() {
    // The hedge is under way when the first attempt's 404 comes back: the 404 is final.
    let upstream = Upstream::new([
        Reply::status(404).after(15 * MS),
        Reply::ok().after(100 * MS),
    ]);
    let inner = Counted::new(upstream.clone());
    let (response, took) = timed(hedged(10 * MS), inner.clone(), get("/")).await;
    let response = response.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(took, 15 * MS);
    assert_eq!(inner.dropped_unfinished(), 1);
    assert_eq!(endings(&response), [status(404), Ended::Abandoned]);
}

#[tokio::test(start_paused = true)]
async fn when_every_attempt_fails_the_last_outcome_goes_back() {
    let upstream = Upstream::new([
        Reply::status(502).after(30 * MS),
        Reply::error(io::ErrorKind::ConnectionReset).after(15 * MS),
        Reply::status(504).after(1 * MS),
    ]);
    let (response, took) = timed(
        RetryLayer::new().hedge(Hedge::after(10 * MS).max_attempts(3).unwrap()),
        upstream.clone(),
        get("/"),
    )
    .await;
    let response = response.unwrap();
    // Attempts start at 0, 10 and 20 ms and end at 30, 25 and 21 ms.
    assert_eq!(response.status(), 502);
    assert_eq!(took, 30 * MS);
    assert_eq!(upstream.times(), [Duration::ZERO, 10 * MS, 20 * MS]);
    assert_eq!(
        endings(&response),
        [
            status(502),
            Ended::Error(ErrorClass::MaybeProcessed),
            status(504)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn max_attempts_bounds_the_attempts_in_flight() {
    let hang = Hang::default();
    let (error, took) = timed(
        RetryLayer::new()
            .hedge(Hedge::after(10 * MS).max_attempts(5).unwrap())
            .deadline(Duration::from_secs(1)),
        hang.clone(),
        get("/"),
    )
    .await;
    let error = error.unwrap_err();
    assert!(error.is_deadline(), "{error}");
    assert_eq!(took, Duration::from_secs(1));
    assert_eq!((hang.calls(), hang.dropped()), (5, 5));
    let record = error.record().unwrap();
    assert_eq!(
        (record.attempts(), record.hedges(), record.abandoned()),
        (5, 4, 5)
    );
}

#[tokio::test(start_paused = true)]
async fn the_layer_s_max_retries_bounds_the_hedges_too() {
    let hang = Hang::default();
    let mut future = Box::pin(
        RetryLayer::new()
            .max_retries(1)
            .hedge(Hedge::after(10 * MS).max_attempts(5).unwrap())
            .layer(hang.clone())
            .oneshot(get("/")),
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(1), &mut future)
            .await
            .is_err()
    );
    assert_eq!(hang.calls(), 2);
    // `never` turns hedging off for one request.
    let hang = Hang::default();
    let mut request = get("/");
    request.extensions_mut().insert(RetryOverride::never());
    let mut future = Box::pin(hedged(10 * MS).layer(hang.clone()).oneshot(request));
    assert!(
        tokio::time::timeout(Duration::from_secs(1), &mut future)
            .await
            .is_err()
    );
    assert_eq!(hang.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_spent_budget_starts_no_hedge() {
    let budget = Budget::new(Duration::from_secs(10), 0, 0.0).unwrap();
    let upstream = Upstream::new([Reply::ok().after(100 * MS)]);
    let (response, took) = timed(hedged(10 * MS).budget(budget), upstream.clone(), get("/")).await;
    let response = response.unwrap();
    assert_eq!(took, 100 * MS);
    assert_eq!(attempts(&response), 1);
    assert_eq!(upstream.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn every_hedge_is_paid_from_the_budget() {
    // Room for exactly one retry: the first request's hedge takes it, the second request
    // gets none.
    let budget = Budget::new(Duration::from_secs(10), 0, 0.0).unwrap();
    let reserve = Budget::new(Duration::from_secs(10), 1, 0.0).unwrap();
    assert_eq!(budget.available(), 0);
    let available = reserve.available();
    let upstream = Upstream::always(Reply::ok().after(100 * MS));
    let mut service = hedged(10 * MS)
        .budget(reserve.clone())
        .layer(upstream.clone());
    for _ in 0..available {
        let response = send(&mut service, get("/")).await;
        assert_eq!(attempts(&response), 2);
    }
    assert_eq!(reserve.available(), 0);
    let response = send(&mut service, get("/")).await;
    assert_eq!(attempts(&response), 1);
}

#[tokio::test(start_paused = true)]
async fn a_post_without_a_key_is_never_hedged() {
    let upstream = Upstream::new([Reply::ok().after(100 * MS)]);
    let request = Request::post("http://upstream.test/orders")
        .body(Full::new(Bytes::from("{}")))
        .unwrap();
    let (response, took) = timed(hedged(10 * MS), upstream.clone(), request).await;
    let response = response.unwrap();
    assert_eq!(took, 100 * MS);
    assert_eq!((attempts(&response), upstream.attempts()), (1, 1));

    // With a key it is, and each attempt gets the whole body.
    let upstream = Upstream::new([Reply::ok().after(100 * MS), Reply::ok().after(5 * MS)]);
    let request = Request::post("http://upstream.test/orders")
        .header("idempotency-key", "order-1")
        .body(Full::new(Bytes::from("{\"item\":1}")))
        .unwrap();
    let response = hedged(10 * MS)
        .layer(upstream.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(attempts(&response), 2);
    let bodies: Vec<_> = upstream.seen().iter().map(|s| s.body()).collect();
    assert_eq!(bodies, ["{\"item\":1}", "{\"item\":1}"]);
}

#[tokio::test(start_paused = true)]
async fn only_when_decides_which_requests_are_hedged() {
    let hedge = Hedge::after(10 * MS).only_when(|request| request.uri.path() != "/slow-on-purpose");
    let upstream = Upstream::always(Reply::ok().after(100 * MS));
    let mut service = RetryLayer::new().hedge(hedge).layer(upstream.clone());
    let response = send(&mut service, get("/slow-on-purpose")).await;
    assert_eq!(attempts(&response), 1);
    let request = Request::post("http://upstream.test/search")
        .body(Full::new(Bytes::from("q")))
        .unwrap();
    let response = send(&mut service, request).await;
    assert_eq!(attempts(&response), 2);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_future_drops_every_attempt_in_flight() {
    let hang = Hang::default();
    let layer = RetryLayer::new().hedge(Hedge::after(10 * MS).max_attempts(3).unwrap());
    let mut future = Box::pin(layer.layer(hang.clone()).oneshot(get("/")));
    assert!(tokio::time::timeout(25 * MS, &mut future).await.is_err());
    assert_eq!((hang.calls(), hang.dropped()), (3, 0));
    drop(future);
    assert_eq!(hang.dropped(), 3);
    // No hedge starts after the future is gone.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(hang.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_loser_whose_answer_comes_after_the_winner_is_dropped_not_leaked() {
    // The first attempt would answer at 12 ms, the hedge answers at 11 ms.
    let upstream = Upstream::new([
        Reply::ok().body("late").after(12 * MS),
        Reply::ok().body("winner").after(MS),
    ]);
    let inner = Counted::new(upstream.clone());
    let response = hedged(10 * MS)
        .layer(inner.clone())
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(inner.dropped_unfinished(), 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "winner");
    // Nothing holds a reference to the upstream but the test: no attempt lives on.
    assert_eq!(Arc::strong_count(&inner.unfinished), 1);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_timeout_cuts_off_the_slow_attempt_and_starts_the_next() {
    let upstream = Upstream::new([Reply::ok().after(200 * MS), Reply::ok().after(300 * MS)]);
    let inner = Counted::new(upstream.clone());
    let (response, took) = timed(
        RetryLayer::new().attempt_timeout(50 * MS).hedge(
            Hedge::after(Duration::from_secs(1))
                .max_attempts(3)
                .unwrap(),
        ),
        inner.clone(),
        get("/"),
    )
    .await;
    let response = response.unwrap();
    // Cut off at 50 ms, the second cut off at 100 ms, the third answers at once.
    assert_eq!(took, 100 * MS);
    assert_eq!(upstream.times(), [Duration::ZERO, 50 * MS, 100 * MS]);
    assert_eq!(inner.dropped_unfinished(), 2);
    assert_eq!(
        endings(&response),
        [
            Ended::Error(ErrorClass::MaybeProcessed),
            Ended::Error(ErrorClass::MaybeProcessed),
            status(200)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn hedge_on_attempt_timeout_keeps_waiting_for_the_slow_attempt() {
    let upstream = Upstream::new([
        Reply::ok().body("slow").after(200 * MS),
        Reply::ok().after(300 * MS),
    ]);
    let inner = Counted::new(upstream.clone());
    let (response, took) = timed(
        RetryLayer::new()
            .attempt_timeout(50 * MS)
            .hedge(Hedge::after(Duration::from_secs(1)).on_attempt_timeout()),
        inner.clone(),
        get("/"),
    )
    .await;
    let response = response.unwrap();
    // The second attempt started at 50 ms; the first still answered, at 200 ms.
    assert_eq!(took, 200 * MS);
    assert_eq!(upstream.times(), [Duration::ZERO, 50 * MS]);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "slow");
    assert_eq!(inner.dropped_unfinished(), 1);
}

#[tokio::test(start_paused = true)]
async fn no_hedge_starts_past_the_deadline() {
    let hang = Hang::default();
    let error = RetryLayer::new()
        .deadline(25 * MS)
        .hedge(Hedge::after(20 * MS).max_attempts(5).unwrap())
        .layer(hang.clone())
        .oneshot(get("/"))
        .await
        .unwrap_err();
    assert!(error.is_deadline());
    assert_eq!((hang.calls(), hang.dropped()), (2, 2));
}

#[tokio::test(start_paused = true)]
async fn a_computed_delay_sets_each_hedge_apart() {
    let hang = Hang::default();
    let layer = RetryLayer::new().hedge(
        Hedge::after_fn(|n| MS * 10 * (n - 1))
            .max_attempts(4)
            .unwrap(),
    );
    let mut future = Box::pin(layer.layer(hang.clone()).oneshot(get("/")));
    let mut calls = Vec::new();
    for _ in 0..7 {
        let _ = tokio::time::timeout(10 * MS, &mut future).await;
        calls.push(hang.calls());
    }
    // Hedges at 10, 10 + 20 and 30 + 30 ms.
    assert_eq!(calls, [2, 2, 3, 3, 3, 4, 4]);
}

#[tokio::test(start_paused = true)]
async fn a_body_still_streaming_holds_the_hedge_back_until_it_ends() {
    let (tx, body) = channel();
    tx.data("part one, ");
    let upstream = Upstream::new([Reply::ok().after(100 * MS), Reply::ok().after(MS)]);
    let request = Request::put("http://upstream.test/doc").body(body).unwrap();
    let started = Instant::now();
    let future = hedged(10 * MS).layer(upstream.clone()).oneshot(request);
    let feeder = async {
        tokio::time::sleep(30 * MS).await;
        // Only one attempt so far: the body has not ended.
        assert_eq!(upstream.attempts(), 0);
        tx.data("part two");
        drop(tx);
    };
    let (response, ()) = tokio::join!(future, feeder);
    let response = response.unwrap();
    // The hedge started as soon as the body ended, at 30 ms, and answered at 31 ms.
    assert_eq!(started.elapsed(), 31 * MS);
    assert_eq!(attempts(&response), 2);
    let bodies: Vec<_> = upstream.seen().iter().map(|s| s.body()).collect();
    assert_eq!(bodies, ["part one, part two", "part one, part two"]);
}

#[tokio::test(start_paused = true)]
async fn a_body_over_the_replay_cap_is_never_hedged() {
    let upstream = Upstream::new([Reply::ok().after(100 * MS)]);
    let request = Request::put("http://upstream.test/blob")
        .body(Full::new(Bytes::from(vec![1u8; 100])))
        .unwrap();
    let response = hedged(10 * MS)
        .replay_limit(10)
        .layer(upstream.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!((attempts(&response), upstream.attempts()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_hedge_waiting_for_a_body_gives_up_when_the_body_goes_over_the_cap() {
    let (tx, body) = channel();
    tx.data(vec![1u8; 8]);
    let upstream = Upstream::new([Reply::ok().after(100 * MS)]);
    let request = Request::put("http://upstream.test/blob")
        .body(body)
        .unwrap();
    let started = Instant::now();
    let future = hedged(10 * MS)
        .replay_limit(10)
        .layer(upstream.clone())
        .oneshot(request);
    let feeder = async {
        // The hedge is due at 10 ms and waits for the body to end.
        tokio::time::sleep(30 * MS).await;
        tx.data(vec![2u8; 8]);
        drop(tx);
    };
    let (response, ()) = tokio::join!(future, feeder);
    let response = response.unwrap();
    // 16 bytes cannot be kept under a cap of 10: the first attempt alone answers, 100 ms
    // after its body ended at 30 ms.
    assert_eq!((attempts(&response), upstream.attempts()), (1, 1));
    assert_eq!(started.elapsed(), 130 * MS);
    assert_eq!(upstream.seen()[0].body().len(), 16);
}

#[tokio::test(start_paused = true)]
async fn a_policy_s_retry_after_applies_between_hedged_attempts() {
    let upstream = Upstream::new([Reply::status(409)]);
    let (response, took) = timed(
        hedged(Duration::from_secs(5)).policy(policy_fn(|attempt| match attempt.status() {
            Some(http::StatusCode::CONFLICT) => Action::RetryAfter(250 * MS),
            _ => Action::Stop,
        })),
        upstream,
        get("/"),
    )
    .await;
    let response = response.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(took, 250 * MS);
}

#[test]
fn max_attempts_outside_2_to_5_is_refused_when_built() {
    for n in [0, 1, 6, 100] {
        let error = Hedge::after(MS).max_attempts(n).unwrap_err();
        assert!(error.to_string().contains("2 to 5"), "{error}");
    }
    for n in 2..=5 {
        assert!(Hedge::after(MS).max_attempts(n).is_ok());
    }
}

#[tokio::test(start_paused = true)]
async fn the_hooks_see_each_hedged_attempt_by_its_own_number() {
    let upstream = Upstream::new([
        Reply::status(503).after(15 * MS),
        Reply::ok().after(20 * MS),
    ]);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (sent, answered) = (seen.clone(), seen.clone());
    let layer = hedged(10 * MS)
        .on_attempt(move |attempt| {
            sent.lock()
                .unwrap()
                .push(("sent", attempt.attempts(), None))
        })
        .on_response(move |attempt| {
            let status = attempt.status().map(|s| s.as_u16());
            answered
                .lock()
                .unwrap()
                .push(("answered", attempt.attempts(), status));
        });
    let response = layer.layer(upstream).oneshot(get("/")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("sent", 1, None),
            ("sent", 2, None),
            ("answered", 1, Some(503)),
            ("answered", 2, Some(200)),
        ]
    );
    assert_eq!(endings(&response), [status(503), status(200)]);
}

#[tokio::test(start_paused = true)]
async fn a_long_server_wait_between_hedged_attempts_is_kept() {
    // Longer than the drain timeout: only a held body is bounded by that.
    let upstream = Upstream::new([Reply::status(503).header("retry-after", "3")]);
    let (response, took) = timed(hedged(10 * MS), upstream.clone(), get("/")).await;
    assert_eq!(response.unwrap().status(), 200);
    assert_eq!(took, Duration::from_secs(3));
    assert_eq!(upstream.attempts(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_hedge_waits_for_a_body_an_ended_attempt_still_reads() {
    // The first attempt answers 503 at once but reads the rest of its body for 300 ms: the
    // next attempt, due at once, waits for it, within the drain timeout.
    let upstream = Upstream::new([Reply::status(503).early(1, 300 * MS), Reply::ok()]);
    let (tx, body) = channel();
    tx.data("part one, ");
    tx.data("part two");
    drop(tx);
    let request = Request::put("http://upstream.test/doc").body(body).unwrap();
    let started = Instant::now();
    let response = hedged(10 * MS)
        .layer(upstream.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(started.elapsed(), 300 * MS);
    // The first attempt answered having read a prefix; the hedge sent the body whole.
    let bodies: Vec<_> = upstream.seen().iter().map(|s| s.body()).collect();
    assert_eq!(bodies, ["part one, ", "part one, part two"]);
}

#[tokio::test(start_paused = true)]
async fn no_wait_is_left_once_the_last_attempt_allowed_has_started() {
    // The hedge is the last attempt allowed: its 503's Retry-After leads nowhere, and the
    // first attempt's 503 goes back as soon as it comes.
    let upstream = Upstream::new([
        Reply::status(503).after(20 * MS),
        Reply::status(503).header("retry-after", "5").after(MS),
    ]);
    let (response, took) = timed(hedged(10 * MS), upstream.clone(), get("/")).await;
    assert_eq!(response.unwrap().status(), 503);
    assert_eq!(took, 20 * MS);
    assert_eq!(upstream.attempts(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_request_that_makes_its_body_again_is_not_hedged() {
    // A `Reopen` means the body may not be kept: attempts take turns, as retries do.
    let upstream = Upstream::with_default([Reply::ok().after(100 * MS)], Reply::ok());
    let mut request = Request::put("http://upstream.test/doc")
        .body(Full::new(Bytes::from("document")))
        .unwrap();
    request
        .extensions_mut()
        .insert(retryable_http::body::Reopen::new(|| async {
            Ok::<_, std::convert::Infallible>(Full::new(Bytes::from("document")))
        }));
    let (response, took) = timed(hedged(10 * MS), upstream.clone(), request).await;
    assert_eq!(response.unwrap().status(), 200);
    assert_eq!(took, 100 * MS);
    assert_eq!(upstream.attempts(), 1);
}
