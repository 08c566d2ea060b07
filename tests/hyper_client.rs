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

/// A loopback server that answers `status` to its first request and 200 to the others.
async fn failing_once(status: u16) -> servers::Server {
    servers::http(move |n, _req| async move {
        if n == 0 {
            reply(status, "failed")
        } else {
            reply(200, "ok")
        }
    })
    .await
}

/// hyper-util's client, retrying after 10 ms.
fn retrying_client() -> retryable_http::Retry<
    hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        retryable_http::body::ReplayBody<Full<Bytes>>,
    >,
> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    RetryLayer::new()
        .backoff(Backoff::constant(Duration::from_millis(10)))
        .layer(client)
}

/// A GET of `server`'s root.
fn get_from(server: &servers::Server) -> Request<Full<Bytes>> {
    Request::get(server.url("/"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[tokio::test]
async fn a_drained_502_then_200_uses_one_tcp_connection() {
    within(async {
        let server = failing_once(502).await;
        let response = retrying_client().oneshot(get_from(&server)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(server.counts.requests(), 2);
        assert_eq!(server.counts.connections(), 1);
    })
    .await;
}

#[cfg(feature = "hyper")]
#[tokio::test]
async fn with_reconnect_on_retry_a_retry_after_a_503_goes_out_on_a_new_connection() {
    within(async {
        let server = failing_once(503).await;
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let client = RetryLayer::new()
            .backoff(Backoff::constant(Duration::from_millis(10)))
            .reconnect_on_retry()
            .layer(client);
        let response = client.clone().oneshot(get_from(&server)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(server.counts.requests(), 2);
        assert_eq!(
            server.counts.connections(),
            2,
            "the failed attempt's was not reused"
        );
        // The retry's connection, which succeeded, is reused.
        let response = client.oneshot(get_from(&server)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(server.counts.connections(), 2);
    })
    .await;
}

#[cfg(feature = "hyper")]
#[tokio::test]
async fn each_retry_after_a_reset_goes_out_on_a_new_connection() {
    within(async {
        let server = servers::fault(servers::Fault::Reset).await;
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let client = RetryLayer::new()
            .max_retries(2)
            .backoff(Backoff::constant(Duration::from_millis(10)))
            .reconnect_on_retry()
            .layer(client);
        let error = client.oneshot(get_from(&server)).await.unwrap_err();
        assert_eq!(error.attempts(), 3);
        // Every attempt reached the server, each on a connection of its own. hyper-util
        // drops a connection that was reset on its own, so this holds without the setting
        // too; what the setting adds, a new connection after an answer, is the 503 test's.
        assert_eq!(server.counts.requests(), 3);
        assert_eq!(server.counts.connections(), 3);
    })
    .await;
}

// hyper-util's `HttpInfo` is read with the `hyper` feature.
#[cfg(feature = "hyper")]
#[tokio::test]
async fn the_record_names_the_server_each_attempt_reached() {
    within(async {
        let server = failing_once(503).await;
        let client = retrying_client();
        let response = client.clone().oneshot(get_from(&server)).await.unwrap();
        let record = retryable_http::Attempts::of(&response);
        let remotes: Vec<_> = record.iter().map(|a| a.remote()).collect();
        assert_eq!(remotes, [Some(server.addr), Some(server.addr)]);
        // A request that succeeds at once: its record is made from the response.
        let response = client.clone().oneshot(get_from(&server)).await.unwrap();
        let record = retryable_http::Attempts::of(&response);
        assert_eq!(record.get(0).unwrap().remote(), Some(server.addr));
        // An attempt that reached no server has none.
        let refused = servers::refused().await;
        let request = Request::get(format!("http://{refused}/"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let error = client.oneshot(request).await.unwrap_err();
        let record = error.record().unwrap();
        assert!(record.attempts() > 1);
        assert!(record.iter().all(|a| a.remote().is_none()));
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
        // No budget: the throttle would stop the retries of 40 requests failing at once.
        let client = RetryLayer::new()
            .backoff(Backoff::constant(Duration::from_millis(5)))
            .no_budget()
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

#[tokio::test(start_paused = true)]
async fn a_body_hyper_writes_after_the_answer_does_not_break_the_retry() {
    // The server answers 503 without waiting for the upload; the client's connection
    // starts writing the body 5 ms later. The retry must carry the whole body.
    let record = Record::default();
    let seen = record.clone();
    let pipes = Pipes::new(move |n, req: Request<Incoming>| {
        let seen = seen.clone();
        async move {
            // The first attempt of each request is answered at once.
            if n % 2 == 0 {
                tokio::spawn(async move { seen.take(req).await });
                return reply(503, "");
            }
            seen.take(req).await;
            reply(200, "ok")
        }
    });
    let client = tower::ServiceBuilder::new()
        .layer(RetryLayer::new().backoff(Backoff::constant(Duration::ZERO)))
        .map_request(
            |req: Request<retryable_http::body::ReplayBody<Full<Bytes>>>| {
                req.map(|body| bodies::LateStart::new(Duration::from_millis(5), body))
            },
        )
        .service(pipes.client());
    for method in [http::Method::PUT, http::Method::POST] {
        let request = Request::builder()
            .method(method.clone())
            .uri("http://upstream.test/orders")
            .header("idempotency-key", "order-7")
            .body(Full::new(Bytes::from("order 7")))
            .unwrap();
        let response = client.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        assert_eq!(attempts(&response), 2, "{method}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let all = record.all();
    assert_eq!(all.len(), 4);
    for (headers, body) in all {
        assert_eq!(body, "order 7");
        assert_eq!(headers["content-length"], "7");
    }
}

/// A file, streamed in chunks of 64 KiB: the body type of the upload tests.
fn file_body(
    file: tokio::fs::File,
) -> impl http_body::Body<Data = Bytes, Error = std::io::Error> + Send + Unpin + 'static {
    use futures_util::TryStreamExt;
    http_body_util::StreamBody::new(
        tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024)
            .map_ok(hyper::body::Frame::data),
    )
}

#[tokio::test]
async fn a_file_upload_over_the_cap_is_retried_by_reopening_the_file() {
    // 3 MiB, three times the replay cap. The server answers 503 after reading 1 MiB of the
    // first attempt (and reads the rest afterwards), then takes the second attempt whole.
    let content: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let dir = std::env::temp_dir().join(format!("retryable-http-upload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("backup.tar");
    std::fs::write(&path, &content).unwrap();

    let record = Record::default();
    let seen = record.clone();
    let server = servers::http(move |n, req: Request<Incoming>| {
        let seen = seen.clone();
        async move {
            if n > 0 {
                seen.take(req).await;
                return reply(200, "stored");
            }
            let (head, mut body) = req.into_parts();
            let mut read = Vec::new();
            while read.len() < 1024 * 1024 {
                match body.frame().await {
                    Some(Ok(frame)) => read.extend_from_slice(frame.data_ref().unwrap()),
                    _ => break,
                }
            }
            seen.0
                .lock()
                .unwrap()
                .push((head.headers, Bytes::from(read)));
            // The rest of the upload is read after the answer, so the connection is not
            // reset under the client.
            tokio::spawn(async move { while body.frame().await.is_some() {} });
            reply(503, "busy")
        }
    })
    .await;

    let opened = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reopen = {
        let (path, opened) = (path.clone(), opened.clone());
        retryable_http::body::Reopen::new(move || {
            let path = path.clone();
            opened.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { Ok::<_, std::io::Error>(file_body(tokio::fs::File::open(path).await?)) }
        })
    };
    let file = tokio::fs::File::open(&path).await.unwrap();
    let len = file.metadata().await.unwrap().len();
    let mut request = Request::put(server.url("/backup.tar"))
        .header(http::header::CONTENT_LENGTH, len)
        .body(file_body(file))
        .unwrap();
    request.extensions_mut().insert(reopen);
    let client = RetryLayer::new()
        .backoff(Backoff::constant(Duration::from_millis(10)))
        .layer(
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http(),
        );
    let response = within(client.oneshot(request)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(attempts(&response), 2);
    assert_eq!(opened.load(std::sync::atomic::Ordering::SeqCst), 1);
    let all = record.all();
    assert_eq!(all.len(), 2);
    // The first attempt was answered part-way.
    assert!(all[0].1.len() >= 1024 * 1024 && all[0].1.len() < content.len());
    assert!(all[1].1 == content, "the retry carries the whole file");
    for (headers, _) in &all {
        assert_eq!(
            headers["content-length"],
            content.len().to_string().as_str()
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A connector whose first connection is served by hyper until `close` is notified, then
/// dropped: a pooled keep-alive connection the server closes while it is idle. Later
/// connections are served normally. `http2` picks the protocol; `read_end` is notified when
/// the client has read the end of the first connection.
#[cfg(feature = "hyper")]
#[derive(Clone)]
struct ClosesIdle {
    close: Arc<tokio::sync::Notify>,
    read_end: Arc<tokio::sync::Notify>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
    record: Record,
    http2: bool,
}

#[cfg(feature = "hyper")]
impl ClosesIdle {
    fn new(http2: bool) -> Self {
        ClosesIdle {
            close: Arc::default(),
            read_end: Arc::default(),
            connections: Arc::default(),
            record: Record::default(),
            http2,
        }
    }
}

/// The client's end of a [`ClosesIdle`] connection: it tells when it reads the end.
#[cfg(feature = "hyper")]
struct Watched {
    stream: tokio::io::DuplexStream,
    read_end: Option<Arc<tokio::sync::Notify>>,
}

#[cfg(feature = "hyper")]
impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, std::task::Poll::Ready(Ok(()))) && buf.filled().len() == before {
            if let Some(read_end) = self.read_end.take() {
                read_end.notify_one();
            }
        }
        polled
    }
}

#[cfg(feature = "hyper")]
impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// [`Watched`], for hyper.
#[cfg(feature = "hyper")]
struct WatchedEnd(hyper_util::rt::TokioIo<Watched>);

#[cfg(feature = "hyper")]
impl hyper_util::client::legacy::connect::Connection for WatchedEnd {
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        hyper_util::client::legacy::connect::Connected::new()
    }
}

#[cfg(feature = "hyper")]
impl hyper::rt::Read for WatchedEnd {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

#[cfg(feature = "hyper")]
impl hyper::rt::Write for WatchedEnd {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(feature = "hyper")]
impl tower::Service<http::Uri> for ClosesIdle {
    type Response = WatchedEnd;
    type Error = std::io::Error;
    type Future = std::future::Ready<std::io::Result<WatchedEnd>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http::Uri) -> Self::Future {
        let n = self
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (close, record, http2) = (self.close.clone(), self.record.clone(), self.http2);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let record = record.clone();
                async move {
                    record.take(req).await;
                    Ok::<_, std::convert::Infallible>(reply(200, "ok"))
                }
            });
            let io = hyper_util::rt::TokioIo::new(server);
            let serve = async move {
                if http2 {
                    let _ = hyper::server::conn::http2::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(io, service)
                    .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                }
            };
            if n == 0 {
                // Dropping the connection closes the pipe, with no GOAWAY and no answer.
                tokio::select! {
                    _ = serve => {}
                    _ = close.notified() => {}
                }
            } else {
                serve.await;
            }
        });
        std::future::ready(Ok(WatchedEnd(hyper_util::rt::TokioIo::new(Watched {
            stream: client,
            read_end: (n == 0).then(|| self.read_end.clone()),
        }))))
    }
}

// hyper-util's errors are read with the `hyper` feature.
#[cfg(feature = "hyper")]
#[tokio::test(start_paused = true)]
async fn a_pooled_connection_closed_before_the_request_was_written_is_retried_for_a_post() {
    for http2 in [false, true] {
        let connector = ClosesIdle::new(http2);
        // hyper-util would retry such a request itself; here the layer is to do it.
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .http2_only(http2)
                .retry_canceled_requests(false)
                .build(connector.clone());
        // A policy that retries nothing: only the layer's own rule for requests that
        // provably never reached the server can retry. It records what it is shown.
        let classes = Arc::new(Mutex::new(Vec::new()));
        let seen = classes.clone();
        let client = RetryLayer::new()
            .backoff(Backoff::constant(Duration::from_secs(1)))
            .retry_if(move |attempt| {
                if let Some(error) = attempt.error() {
                    seen.lock()
                        .unwrap()
                        .push(retryable_http::classify::classify(error));
                }
                false
            })
            .layer(client);
        let post = |body: &'static str| {
            Request::post("http://upstream.test/orders")
                .body(Full::new(Bytes::from(body)))
                .unwrap()
        };
        let response = client.clone().oneshot(post("first")).await.unwrap();
        response.into_body().collect().await.unwrap();
        // The connection goes back to the pool ...
        tokio::time::sleep(Duration::from_millis(1)).await;
        // ... and the server closes it just as the next request is handed to it.
        let second = if http2 {
            // NOTE: h2 reports a stream it opened before it read the connection's end as
            // broken, like one the server may have processed. So the request is handed to
            // the connection after h2 read its end, before hyper's dispatch task learns of
            // it: hyper then hands the request back unwritten. A task, not the test's own
            // future, so that it runs in the order it is woken.
            let (client, read_end) = (client.clone(), connector.read_end.clone());
            tokio::spawn(async move {
                read_end.notified().await;
                client.oneshot(post("second")).await
            })
        } else {
            tokio::spawn(client.clone().oneshot(post("second")))
        };
        connector.close.notify_one();
        let response = second.await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::OK, "http2: {http2}");
        assert_eq!(attempts(&response), 2, "http2: {http2}");
        assert_eq!(
            *classes.lock().unwrap(),
            [retryable_http::classify::ErrorClass::NeverSent],
            "http2: {http2}"
        );
        let bodies: Vec<Bytes> = connector.record.all().into_iter().map(|(_, b)| b).collect();
        assert_eq!(bodies, ["first", "second"], "http2: {http2}");
        assert_eq!(
            connector
                .connections
                .load(std::sync::atomic::Ordering::SeqCst),
            2,
            "http2: {http2}"
        );
    }
}

/// Counts the server handlers dropped before they answered.
struct Cancelled(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Cancelled {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_hedge_answers_for_a_stalled_request_over_loopback_and_the_stalled_one_is_cancelled() {
    for http2 in [false, true] {
        within(async {
            let cancelled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let handler = {
                let cancelled = cancelled.clone();
                move |n: usize, _req: Request<Incoming>| {
                    let guard = Cancelled(cancelled.clone());
                    async move {
                        if n == 0 {
                            // Stalls until the client gives up on it.
                            tokio::time::sleep(Duration::from_secs(60)).await;
                        }
                        std::mem::forget(guard);
                        reply(200, format!("answer {n}"))
                    }
                }
            };
            let server = if http2 {
                servers::http2(handler).await
            } else {
                servers::http(handler).await
            };
            let client =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .http2_only(http2)
                    .build_http();
            let client = RetryLayer::new()
                .hedge(retryable_http::hedge::Hedge::after(Duration::from_millis(
                    50,
                )))
                .layer(client);
            let request = Request::get(server.url("/"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            let response = client.oneshot(request).await.unwrap();
            assert_eq!(attempts(&response), 2, "http2: {http2}");
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "answer 1", "http2: {http2}");
            assert_eq!(server.counts.requests(), 2, "http2: {http2}");
            // HTTP/1.1 needs a second connection for the hedge; HTTP/2 multiplexes it.
            let connections = if http2 { 1 } else { 2 };
            assert_eq!(server.counts.connections(), connections, "http2: {http2}");
            // The stalled attempt was dropped: its stream reset (HTTP/2) or its connection
            // closed (HTTP/1.1), and the server's handler cancelled.
            while cancelled.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }
}
