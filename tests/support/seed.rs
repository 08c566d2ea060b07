//! The seed experiment's checks, run against any proxy that plays mitmproxy's part: the
//! real mitmproxy with the seed's addon, or `examples/fault_proxy.rs`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use retryable_http::backoff::Backoff;
use retryable_http::proxy::HttpProxy;
use retryable_http::{Attempts, Retry, RetryLayer, body::ReplayBody};
use tower::{Layer, ServiceExt};

use super::servers::Received;

type Proxied = Retry<Client<HttpProxy<HttpConnector>, ReplayBody<Full<Bytes>>>>;

/// The seed's client settings (RetryMax 3, exponential without jitter), with short waits.
pub fn client(proxy: &str) -> Proxied {
    let connector = HttpProxy::new(
        HttpConnector::new(),
        format!("http://{proxy}").parse().unwrap(),
    )
    .unwrap();
    RetryLayer::new()
        .max_retries(3)
        .backoff(Backoff::go_default(Duration::from_millis(10), Duration::from_millis(50)).unwrap())
        .server_waits(retryable_http::retry_after::ServerWaits::go())
        .layer(Client::builder(TokioExecutor::new()).build(connector))
}

fn attempts<B>(response: &http::Response<B>) -> u32 {
    Attempts::of(response).attempts()
}

/// A GET with max 3 retries makes 4 attempts and ends with the 502 and its body; the
/// upstream processed all 4 (the proxy replaced its answers).
pub async fn get_makes_four_attempts_and_ends_with_502(
    proxy: &str,
    upstream: &str,
    seen: &Arc<Mutex<Vec<Received>>>,
) {
    let request = Request::get(format!("http://{upstream}/your-api-endpoint"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client(proxy).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(attempts(&response), 4);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "Bad Gateway Simulation");
    assert_eq!(seen.lock().unwrap().len(), 4);
}

/// A plain POST that gets the 502 is sent once: the upstream did the work.
pub async fn plain_post_is_sent_once(
    proxy: &str,
    upstream: &str,
    seen: &Arc<Mutex<Vec<Received>>>,
) {
    let request = Request::post(format!("http://{upstream}/your-api-endpoint/orders"))
        .body(Full::new(Bytes::from_static(br#"{"item":"book"}"#)))
        .unwrap();
    let response = client(proxy).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(attempts(&response), 1);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, r#"{"item":"book"}"#);
}

/// A POST with an `Idempotency-Key` is retried, every attempt with the same key and body.
pub async fn post_with_key_is_retried_with_the_same_key_and_body(
    proxy: &str,
    upstream: &str,
    seen: &Arc<Mutex<Vec<Received>>>,
) {
    let request = Request::post(format!("http://{upstream}/your-api-endpoint/orders"))
        .header("idempotency-key", "order-2025-03-20")
        .body(Full::new(Bytes::from_static(br#"{"item":"book"}"#)))
        .unwrap();
    let response = client(proxy).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(attempts(&response), 4);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 4);
    for received in seen.iter() {
        assert_eq!(received.method, http::Method::POST);
        assert_eq!(received.headers["idempotency-key"], "order-2025-03-20");
        assert_eq!(received.body, r#"{"item":"book"}"#);
    }
}

/// With a proxy that fails only the first two requests, the third attempt succeeds.
pub async fn third_attempt_succeeds(proxy: &str, upstream: &str, seen: &Arc<Mutex<Vec<Received>>>) {
    let request = Request::get(format!("http://{upstream}/your-api-endpoint"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client(proxy).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(attempts(&response), 3);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "ok"
    );
    assert_eq!(seen.lock().unwrap().len(), 3);
}
