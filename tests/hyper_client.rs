//! The layer around hyper-util's client, with real HTTP/1.1 framing: first over in-memory
//! pipes on tokio's paused clock, then over loopback sockets in real time.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::attempts;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use retryable_http::RetryLayer;
use retryable_http::backoff::Backoff;
use support::bodies;
use support::duplex::Pipes;
use support::{servers, within};
use tower::{Layer, ServiceExt};

/// What a test server saw of each request.
#[derive(Clone, Default)]
struct Record(Arc<Mutex<Vec<(HeaderMap, Bytes)>>>);

impl Record {
    async fn take(&self, req: Request<Incoming>) {
        let (head, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        self.0.lock().unwrap().push((head.headers, body));
    }

    fn all(&self) -> Vec<(HeaderMap, Bytes)> {
        self.0.lock().unwrap().clone()
    }
}

fn reply(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
}

// ---- In-memory pipes, virtual time -------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_drained_502_lets_the_retry_reuse_the_connection() {
    // The 502's body arrives after its head, so it is not in the client's buffer yet when
    // the layer decides to retry: only draining it lets the connection be reused.
    let pipes = Pipes::new(|n, req: Request<Incoming>| async move {
        let _ = req.into_body().collect().await;
        let (status, delay, body) = match n {
            0 => (502, Duration::from_millis(200), "Bad Gateway Simulation"),
            _ => (200, Duration::ZERO, "ok"),
        };
        let mut response = Response::new(bodies::Delayed::new(delay, body));
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        response
    });
    let client = RetryLayer::new()
        .backoff(Backoff::constant(Duration::from_secs(1)))
        .layer(pipes.client());
    let request = Request::get("http://upstream.test/x")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(pipes.requests(), 2);
    assert_eq!(pipes.connections(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_502_with_a_body_over_the_drain_limit_is_not_read_to_its_end() {
    let pipes = Pipes::new(|n, _req: Request<Incoming>| async move {
        if n == 0 {
            reply(502, vec![b'x'; 256 * 1024])
        } else {
            reply(200, "ok")
        }
    });
    let client = RetryLayer::new()
        .backoff(Backoff::constant(Duration::from_secs(1)))
        .layer(pipes.client());
    let request = Request::get("http://upstream.test/x")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The first connection was given up with its unread body, not drained for 256 KiB.
    assert_eq!(pipes.connections(), 2);
}

#[tokio::test(start_paused = true)]
async fn retry_after_over_http_waits_in_virtual_time() {
    let pipes = Pipes::new(|n, _req: Request<Incoming>| async move {
        if n == 0 {
            let mut r = reply(503, "");
            r.headers_mut().insert("retry-after", "7".parse().unwrap());
            r
        } else {
            reply(200, "ok")
        }
    });
    let start = tokio::time::Instant::now();
    let client = RetryLayer::new().layer(pipes.client());
    let request = Request::get("http://upstream.test/")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(start.elapsed(), Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn a_streamed_post_with_idempotency_key_is_replayed_over_http() {
    let record = Record::default();
    let r = record.clone();
    let pipes = Pipes::new(move |n, req| {
        let r = r.clone();
        async move {
            r.take(req).await;
            if n < 2 {
                reply(502, "")
            } else {
                reply(201, "created")
            }
        }
    });
    let (tx, body) = bodies::channel();
    for i in 0..50 {
        tx.data(format!("line {i}\n"));
    }
    drop(tx);
    let client = RetryLayer::new()
        .backoff(Backoff::constant(Duration::from_millis(100)))
        .layer(pipes.client());
    let request = Request::post("http://upstream.test/upload")
        .header("idempotency-key", "k-1")
        .body(body)
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(attempts(&response), 3);
    let expected: String = (0..50).map(|i| format!("line {i}\n")).collect();
    let seen = record.all();
    assert_eq!(seen.len(), 3);
    for (headers, body) in seen {
        assert_eq!(body, expected.as_bytes());
        assert_eq!(headers["idempotency-key"], "k-1");
        // Unknown length: chunked on every attempt.
        assert_eq!(headers["transfer-encoding"], "chunked");
    }
}

#[tokio::test(start_paused = true)]
async fn a_full_body_keeps_its_content_length_on_every_attempt() {
    let record = Record::default();
    let r = record.clone();
    let pipes = Pipes::new(move |n, req| {
        let r = r.clone();
        async move {
            r.take(req).await;
            if n < 1 {
                reply(503, "")
            } else {
                reply(200, "")
            }
        }
    });
    let client = RetryLayer::new().layer(pipes.client());
    let request = Request::post("http://upstream.test/")
        .body(Full::new(Bytes::from("0123456789")))
        .unwrap();
    client.oneshot(request).await.unwrap();
    let seen = record.all();
    assert_eq!(seen.len(), 2);
    for (headers, body) in seen {
        assert_eq!(headers["content-length"], "10");
        assert_eq!(body, "0123456789");
    }
}

// ---- Loopback sockets, real time ---------------------------------------------------------

#[tokio::test]
async fn exhausted_retries_return_the_last_502_with_its_body_over_loopback() {
    within(async {
        let server = servers::http(|_, _req| async { reply(502, "Bad Gateway Simulation") }).await;
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let client = RetryLayer::new()
            .max_retries(3)
            .backoff(Backoff::constant(Duration::from_millis(10)))
            .layer(client);
        let request = Request::get(server.url("/your-api-endpoint"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = client.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(attempts(&response), 4);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "Bad Gateway Simulation");
        assert_eq!(server.counts.requests(), 4);
        // Every drained 502 let the next attempt reuse the one connection.
        assert_eq!(server.counts.connections(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_drained_502_then_200_uses_one_tcp_connection() {
    within(async {
        let server = servers::http(|n, _req| async move {
            if n == 0 {
                reply(502, "Bad Gateway Simulation")
            } else {
                reply(200, "ok")
            }
        })
        .await;
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let client = RetryLayer::new()
            .backoff(Backoff::constant(Duration::from_millis(10)))
            .layer(client);
        let request = Request::get(server.url("/"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = client.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(server.counts.requests(), 2);
        assert_eq!(server.counts.connections(), 1);
    })
    .await;
}

#[tokio::test]
async fn many_concurrent_requests_through_one_client_over_loopback() {
    within(async {
        let server = servers::http(|n, _req| async move {
            if n % 3 == 0 {
                reply(503, "")
            } else {
                reply(200, "ok")
            }
        })
        .await;
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let client = RetryLayer::new()
            .backoff(Backoff::constant(Duration::from_millis(5)))
            .layer(client);
        let mut tasks = Vec::new();
        for i in 0..40 {
            let client = client.clone();
            let url = server.url(&format!("/item/{i}"));
            tasks.push(tokio::spawn(async move {
                let request = Request::put(url)
                    .body(Full::new(Bytes::from(format!("item {i}"))))
                    .unwrap();
                client.oneshot(request).await.unwrap().status()
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), StatusCode::OK);
        }
        assert!(server.counts.requests() >= 40);
    })
    .await;
}
