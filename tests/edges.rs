//! Rare paths of the response future: an inner service that stops being ready before a
//! retry, a reopened body that never comes, a future polled after it finished, and what the
//! future shows of itself. Paused clock, scripted upstreams.

mod support;

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use retryable_http::backoff::Backoff;
use retryable_http::{RetryLayer, body::ReplayBody, error::BoxError};
use support::get;
use support::upstream::{Reply, Upstream};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

fn layer() -> RetryLayer {
    RetryLayer::new().backoff(Backoff::constant(Duration::ZERO))
}

/// Answers 503, and is ready only the first `ready` times it is asked.
#[derive(Clone)]
struct ReadyOnly {
    asked: Arc<AtomicUsize>,
    ready: usize,
}

impl Service<Request<ReplayBody<Full<Bytes>>>> for ReadyOnly {
    type Response = Response<Full<Bytes>>;
    type Error = BoxError;
    type Future = Ready<Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.asked.fetch_add(1, Ordering::SeqCst) < self.ready {
            Poll::Ready(Ok(()))
        } else {
            Poll::Ready(Err("the connection pool was closed".into()))
        }
    }

    fn call(&mut self, _: Request<ReplayBody<Full<Bytes>>>) -> Self::Future {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        ready(Ok(response))
    }
}

#[tokio::test(start_paused = true)]
async fn an_inner_service_that_is_not_ready_for_a_retry_ends_the_request() {
    let inner = ReadyOnly {
        asked: Arc::default(),
        ready: 1,
    };
    let error = layer()
        .layer(inner.clone())
        .oneshot(get("/x"))
        .await
        .unwrap_err();
    assert!(error.is_not_ready(), "{error}");
    assert_eq!(error.attempts(), 1);
    assert_eq!(inner.asked.load(Ordering::SeqCst), 2);
    assert_eq!(
        retryable_http::error::Report::new(&error).to_string(),
        "GET http://upstream.test/x giving up after 1 attempt(s): the inner service failed to become ready: the connection pool was closed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_reopened_body_that_never_comes_ends_at_the_deadline() {
    let reopen = retryable_http::body::Reopen::new(|| {
        std::future::pending::<Result<Full<Bytes>, Infallible>>()
    });
    // 100 bytes over a cap of 10: a retry needs the body made again.
    let mut request = Request::put("http://upstream.test/blob")
        .body(Full::new(Bytes::from(vec![7u8; 100])))
        .unwrap();
    request.extensions_mut().insert(reopen);
    let upstream = Upstream::always(Reply::status(503));
    let started = Instant::now();
    let error = layer()
        .replay_limit(10)
        .deadline(Duration::from_secs(5))
        .layer(upstream.clone())
        .oneshot(request)
        .await
        .unwrap_err();
    assert!(error.is_deadline(), "{error}");
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!(upstream.attempts(), 1);
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "ResponseFuture polled after completion")]
async fn a_future_polled_after_it_finished_panics() {
    let mut service = layer().layer(Upstream::always(Reply::ok()));
    let future = ServiceExt::<Request<Full<Bytes>>>::ready(&mut service)
        .await
        .unwrap()
        .call(get("/"));
    let mut task = tokio_test::task::spawn(future);
    assert!(matches!(task.poll(), Poll::Ready(Ok(_))));
    let _ = task.poll();
}

#[tokio::test(start_paused = true)]
async fn a_future_shows_the_attempt_in_flight() {
    let upstream = Upstream::new([
        Reply::status(503),
        Reply::ok().after(Duration::from_secs(1)),
    ]);
    let mut service = layer().layer(upstream.clone());
    let future = ServiceExt::<Request<Full<Bytes>>>::ready(&mut service)
        .await
        .unwrap()
        .call(get("/x"));
    let mut future = Box::pin(future);
    // The 503 is retried at once; the second attempt takes a second.
    let pending = tokio::time::timeout(Duration::from_millis(500), &mut future).await;
    assert!(pending.is_err());
    assert_eq!(upstream.attempts(), 2);
    let shown = format!("{future:?}");
    assert_eq!(
        shown,
        "ResponseFuture { method: GET, url: http://upstream.test/x, attempt: 2, .. }"
    );
}

#[tokio::test(start_paused = true)]
async fn a_future_shows_its_request_without_secrets() {
    let mut service = layer().layer(Upstream::always(Reply::ok()));
    let request = Request::get("http://user:hunter2@upstream.test/x?token=s3cret")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let future = ServiceExt::<Request<Full<Bytes>>>::ready(&mut service)
        .await
        .unwrap()
        .call(request);
    let shown = format!("{future:?}");
    // The first attempt started with the call.
    assert_eq!(
        shown,
        "ResponseFuture { method: GET, url: http://upstream.test/x, attempt: 1, .. }"
    );
    future.await.unwrap();
}
