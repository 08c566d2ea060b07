//! Where requests go: the layer only ever retries the URI the caller chose.

mod support;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use retryable_http::RetryLayer;
use support::upstream::{Reply, Upstream};
use tower::{Layer, ServiceExt};

fn secret_request() -> Request<Full<Bytes>> {
    Request::post("http://admin:hunter2@upstream.test:8080/api/orders?token=s3cret-token")
        .header("idempotency-key", "k")
        .body(Full::new(Bytes::from("{}")))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn retries_go_to_the_same_uri_and_never_follow_location() {
    let upstream = Upstream::new([
        Reply::status(503).header("location", "http://elsewhere.test/other"),
        Reply::status(302).header("location", "http://elsewhere.test/other"),
    ]);
    let response = RetryLayer::new()
        .layer(upstream.clone())
        .oneshot(secret_request())
        .await
        .unwrap();
    // The 302 goes back to the caller as it is.
    assert_eq!(response.status(), StatusCode::FOUND);
    let seen = upstream.seen();
    assert_eq!(seen.len(), 2);
    for s in seen {
        assert_eq!(
            s.uri,
            "http://admin:hunter2@upstream.test:8080/api/orders?token=s3cret-token"
        );
    }
}
