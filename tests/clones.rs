//! What a retry runs on: a request that succeeds clones nothing, a retried request clones
//! the wrapped service once, every call follows a `poll_ready` on the same instance, and a
//! change made through `get_mut` reaches retries. Paused clock, an in-memory service.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use retryable_http::backoff::Backoff;
use retryable_http::{Attempts, Retry, RetryLayer, body::ReplayBody};
use tower::{Layer, Service, ServiceExt};

/// Counts its clones, answers the scripted statuses (then 200), records the tag of the
/// instance each attempt went out on, and fails the test when called without having been
/// made ready.
struct Counted {
    tag: u32,
    ready: bool,
    clones: Arc<AtomicUsize>,
    script: Arc<Mutex<VecDeque<u16>>>,
    tags: Arc<Mutex<Vec<u32>>>,
}

impl Counted {
    fn new(script: impl IntoIterator<Item = u16>) -> Self {
        Counted {
            tag: 0,
            ready: false,
            clones: Arc::default(),
            script: Arc::new(Mutex::new(script.into_iter().collect())),
            tags: Arc::default(),
        }
    }
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, Ordering::SeqCst);
        Counted {
            tag: self.tag,
            // A clone starts out not ready, as tower's services do.
            ready: false,
            clones: self.clones.clone(),
            script: self.script.clone(),
            tags: self.tags.clone(),
        }
    }
}

impl Service<Request<ReplayBody<Full<Bytes>>>> for Counted {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<ReplayBody<Full<Bytes>>>) -> Self::Future {
        assert!(
            std::mem::take(&mut self.ready),
            "called without poll_ready on this instance"
        );
        self.tags.lock().unwrap().push(self.tag);
        let status = self.script.lock().unwrap().pop_front().unwrap_or(200);
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        ready(Ok(response))
    }
}

fn layer() -> RetryLayer {
    RetryLayer::new().backoff(Backoff::constant(Duration::ZERO))
}

fn get() -> Request<Full<Bytes>> {
    Request::get("http://upstream.test/")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// Sends one request through `retry` itself, as a caller holding the service does.
async fn send(retry: &mut Retry<Counted>) -> (StatusCode, u32) {
    let response = retry.ready().await.unwrap().call(get()).await.unwrap();
    (response.status(), Attempts::of(&response).attempts())
}

#[tokio::test(start_paused = true)]
async fn a_request_that_succeeds_clones_nothing() {
    let inner = Counted::new([]);
    let clones = inner.clones.clone();
    let mut retry = layer().layer(inner);
    // The copy kept aside for retries.
    assert_eq!(clones.load(Ordering::SeqCst), 1);
    for _ in 0..10 {
        assert_eq!(send(&mut retry).await, (StatusCode::OK, 1));
    }
    assert_eq!(clones.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_retried_request_clones_the_service_once_for_all_its_retries() {
    let inner = Counted::new([503, 503, 503, 200, 502, 200]);
    let clones = inner.clones.clone();
    let mut retry = layer().layer(inner);
    assert_eq!(send(&mut retry).await, (StatusCode::OK, 4));
    assert_eq!(clones.load(Ordering::SeqCst), 2);
    assert_eq!(send(&mut retry).await, (StatusCode::OK, 2));
    assert_eq!(clones.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn a_change_through_get_mut_reaches_the_retries_of_later_requests() {
    let inner = Counted::new([503, 200, 503, 200]);
    let tags = inner.tags.clone();
    let mut retry = layer().layer(inner);
    assert_eq!(send(&mut retry).await, (StatusCode::OK, 2));
    retry.get_mut().tag = 7;
    assert_eq!(send(&mut retry).await, (StatusCode::OK, 2));
    assert_eq!(*tags.lock().unwrap(), [0, 0, 7, 7]);
}

#[tokio::test(start_paused = true)]
async fn clones_of_a_retry_share_the_copy_kept_for_retries() {
    // The usual way to share a client: clone it per request. Each clone costs one clone of
    // the inner service, as it would without the layer, and nothing more.
    let inner = Counted::new([]);
    let clones = inner.clones.clone();
    let retry = layer().layer(inner);
    for _ in 0..10 {
        let response = retry.clone().oneshot(get()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(clones.load(Ordering::SeqCst), 1 + 10);
}
