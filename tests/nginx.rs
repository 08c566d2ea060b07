//! Interop with a real HTTP/2 server: nginx serving h2c with a low `keepalive_requests`.
//! nginx ends every connection with a graceful `GOAWAY` after that many requests; the
//! streams above its last stream id were never processed, and every `POST` on them must be
//! retried and succeed.
//!
//! `.ci/run` installs Debian's nginx-light where it can; without nginx the test says it was
//! skipped. The layer reads the `GOAWAY` with its `hyper` feature.
#![cfg(feature = "hyper")]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use retryable_http::{RetryLayer, backoff::Backoff};
use support::nginx::Nginx;
use tower::{Layer, ServiceExt};

/// Starts nginx answering `200 ok` to everything over h2c (HTTP/2 with prior knowledge)
/// on a loopback port, closing each connection after `keepalive_requests` requests.
async fn nginx(keepalive_requests: u32) -> Option<Nginx> {
    Nginx::start(
        &format!("h2c-{keepalive_requests}"),
        &format!("keepalive_requests {keepalive_requests};"),
        |port, _| {
            format!(
                "listen 127.0.0.1:{port} http2;
        location / {{ return 200 \"ok\\n\"; }}"
            )
        },
        |_| {},
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_post_succeeds_across_nginx_connection_rollovers() {
    support::within(async {
        let Some(nginx) = nginx(100).await else {
            return;
        };
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .http2_only(true)
                .build_http();
        let client = RetryLayer::new()
            .backoff(Backoff::constant(Duration::from_millis(5)))
            .layer(client);
        let url = format!("http://127.0.0.1:{}/orders", nginx.port);
        let (workers, each) = (32, 50);
        let retried = Arc::new(AtomicUsize::new(0));
        let extra = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for worker in 0..workers {
            let (client, url) = (client.clone(), url.clone());
            let (retried, extra) = (retried.clone(), extra.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..each {
                    let request = Request::post(&url)
                        .body(Full::new(Bytes::from(format!("order {worker}-{i}"))))
                        .unwrap();
                    let response = client.clone().oneshot(request).await.unwrap_or_else(|e| {
                        panic!("POST {worker}-{i} failed: {e}");
                    });
                    assert_eq!(response.status(), StatusCode::OK);
                    let attempts = support::attempts(&response);
                    if attempts > 1 {
                        retried.fetch_add(1, Ordering::Relaxed);
                        extra.fetch_add(attempts as usize - 1, Ordering::Relaxed);
                    }
                    assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "ok\n");
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let (retried, extra) = (retried.load(Ordering::Relaxed), extra.load(Ordering::Relaxed));
        eprintln!(
            "nginx h2c, keepalive_requests 100: {} POSTs all succeeded; {retried} needed a retry ({extra} retries in all)",
            workers * each
        );
        // The rollovers did hit requests in flight, and the layer made up for them.
        assert!(retried > 0, "no request was retried: {}", nginx.error_log());
    })
    .await;
}
