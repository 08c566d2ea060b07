//! Request bodies across attempts: identical bytes, the replay cap, streaming, early
//! answers, trailers, failures, zero-copy replay and freeing what was kept.
//! All on tokio's paused clock.

mod support;

use std::convert::Infallible;
use std::time::Duration;
use support::attempts;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, SizeHint};
use http_body_util::{BodyExt, Full};
use retryable_http::backoff::Backoff;
use retryable_http::{RetryLayer, body::ReplayBody};
use support::bodies::{self, Frames, Gauge, tracked};
use support::upstream::{Reply, Upstream};
use tower::{Layer, ServiceExt, service_fn};

const SECOND: Duration = Duration::from_secs(1);
const MILLI: Duration = Duration::from_millis(1);

fn layer() -> RetryLayer {
    RetryLayer::new().backoff(Backoff::constant(SECOND))
}

fn put<B>(body: B) -> Request<B> {
    Request::put("http://upstream.test/blob")
        .body(body)
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn every_attempt_carries_the_same_bytes_and_length() {
    let upstream = Upstream::new([Reply::status(503), Reply::status(502)]);
    let body = Full::new(Bytes::from_static(b"{\"id\":7,\"name\":\"seven\"}"));
    let response = layer()
        .layer(upstream.clone())
        .oneshot(put(body))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = upstream.seen();
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert_eq!(s.body(), "{\"id\":7,\"name\":\"seven\"}");
        assert_eq!(s.exact_hint, Some(23));
        assert!(s.complete);
    }
}

#[tokio::test(start_paused = true)]
async fn a_streamed_body_of_unknown_length_is_replayed_chunk_for_chunk() {
    let chunks: Vec<Bytes> = (0..200)
        .map(|i| Bytes::from(format!("chunk-{i:03};")))
        .collect();
    let body = Frames::chunks(chunks.clone()).hint(SizeHint::new());
    let upstream = Upstream::new([Reply::status(503), Reply::status(503)]);
    let response = layer()
        .layer(upstream.clone())
        .oneshot(put(body))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for s in upstream.seen() {
        assert_eq!(s.chunks, chunks);
        assert_eq!(s.exact_hint, None);
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_exactly_at_the_cap_is_retried() {
    let upstream = Upstream::new([Reply::status(503)]);
    let body = Frames::chunks([vec![1u8; 600], vec![2u8; 424]]).hint(SizeHint::new());
    let response = layer()
        .replay_limit(1024)
        .layer(upstream.clone())
        .oneshot(put(body))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = upstream.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body(), seen[1].body());
    assert_eq!(seen[1].len, 1024);
}

#[tokio::test(start_paused = true)]
async fn a_body_one_byte_over_the_cap_is_sent_once_and_not_retried() {
    let upstream = Upstream::new([Reply::status(503).body("busy")]);
    // The size hint says nothing: the cap is found by counting bytes read.
    let body = Frames::chunks([vec![1u8; 600], vec![2u8; 425]]).hint(SizeHint::new());
    let response = layer()
        .replay_limit(1024)
        .layer(upstream.clone())
        .oneshot(put(body))
        .await
        .unwrap();
    // The caller gets the first attempt's answer, unchanged.
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(attempts(&response), 1);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "busy"
    );
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].len, 1025);
    assert!(
        seen[0].complete,
        "the body over the cap is still sent in full"
    );
}

#[tokio::test(start_paused = true)]
async fn a_body_that_lies_about_its_size_is_capped_on_bytes_read() {
    let upstream = Upstream::new([Reply::status(503)]);
    let mut hint = SizeHint::new();
    hint.set_exact(10);
    let body = Frames::chunks([vec![1u8; 2000]]).hint(hint);
    let response = layer()
        .replay_limit(1024)
        .layer(upstream.clone())
        .oneshot(put(body))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(upstream.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_body_whose_exact_size_is_over_the_cap_is_kept_until_it_outgrows_it() {
    // Its size hint says it cannot fit, but the cap counts bytes read: nothing is given up
    // before the overflow, and everything is freed at it.
    let gauge = Gauge::default();
    let body = Full::new(tracked(4096, b'x', &gauge));
    let probe_gauge = gauge.clone();
    let service = service_fn(move |req: Request<ReplayBody<Full<Bytes>>>| {
        let gauge = probe_gauge.clone();
        async move {
            let mut body = req.into_body();
            assert!(body.is_replayable(), "nothing was read yet");
            let chunk = body.frame().await.unwrap().unwrap().into_data().unwrap();
            assert_eq!(chunk.len(), 4096);
            // The chunk outgrew the cap: nothing is kept, so nothing can be replayed ...
            assert!(!body.is_replayable());
            drop(chunk);
            // ... and once this service lets go of the chunk, nobody else holds it.
            assert_eq!(gauge.live(), 0);
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            Ok::<_, Infallible>(response)
        }
    });
    let response = layer()
        .replay_limit(1024)
        .layer(service)
        .oneshot(put(body))
        .await
        .unwrap();
    assert_eq!(attempts(&response), 1);
}

#[tokio::test(start_paused = true)]
async fn an_upload_over_the_cap_answered_early_is_replayed_from_memory() {
    // 3 MiB of exact size, in 48 chunks of 64 KiB, against the default 1 MiB cap. The
    // server answers 503 after 512 KiB and drops the rest: the retry sends the kept 512 KiB
    // and then the rest of the original body, without a `Reopen`.
    let chunks: Vec<Vec<u8>> = (0..48u8).map(|i| vec![i; 64 * 1024]).collect();
    let whole: Vec<u8> = chunks.concat();
    let mut hint = SizeHint::new();
    hint.set_exact(whole.len() as u64);
    let body = Frames::chunks(chunks).hint(hint);
    let upstream = Upstream::new([Reply::status(503).cut(512 * 1024), Reply::ok()]);
    let response = layer()
        .layer(upstream.clone())
        .oneshot(put(body))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(attempts(&response), 2);
    let seen = upstream.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!((seen[0].len, seen[0].complete), (512 * 1024, false));
    assert_eq!(seen[1].exact_hint, Some(whole.len() as u64));
    assert_eq!((seen[1].len, seen[1].complete), (whole.len(), true));
    assert!(
        seen[1].body() == whole,
        "the retry carries every byte, in order"
    );
}

#[tokio::test(start_paused = true)]
async fn a_body_that_fails_mid_stream_is_not_retried_and_the_error_reaches_the_caller() {
    let upstream = Upstream::always(Reply::status(503));
    let body = Frames::chunks(["one", "two"]).fail("disk on fire");
    let error = layer()
        .layer(upstream.clone())
        .oneshot(put(body))
        .await
        .unwrap_err();
    assert_eq!(upstream.attempts(), 1);
    assert_eq!(error.attempts(), 1);
    assert!(
        retryable_http::error::Report::new(&error)
            .to_string()
            .ends_with(": disk on fire"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_early_answer_is_retried_with_the_whole_body() {
    // The upstream answers 503 after 5 bytes; the connection finishes the upload 300 ms
    // later. The retry must carry the kept prefix and the rest, never the rest alone.
    let (tx, body) = bodies::channel();
    tx.data("hello");
    let upstream = Upstream::new([Reply::status(503).early(5, Duration::from_millis(300))]);
    let client = layer().layer(upstream.clone());
    let call = tokio::spawn(client.oneshot(put(body)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    tx.data(" world");
    tx.data("!");
    drop(tx);
    let response = call.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = upstream.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body(), "hello");
    assert_eq!(upstream.late_bodies(), [Bytes::from(" world!")]);
    assert_eq!(seen[1].body(), "hello world!");
    assert!(seen[1].complete);
}

#[tokio::test(start_paused = true)]
async fn an_early_answer_whose_body_is_not_handed_back_in_time_is_returned() {
    // The previous attempt still holds the body after the drain timeout: the layer gives
    // the 503 back rather than send a partial body.
    let (tx, body) = bodies::channel();
    tx.data("hello");
    let upstream = Upstream::new([Reply::status(503)
        .body("busy")
        .early(5, Duration::from_secs(10))]);
    let client = layer().layer(upstream.clone());
    let response = client.oneshot(put(body)).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(attempts(&response), 1);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "busy"
    );
    assert_eq!(upstream.attempts(), 1);
    drop(tx);
}

#[tokio::test(start_paused = true)]
async fn trailers_are_replayed() {
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", "abc123".parse().unwrap());
    let body = Frames::chunks(["a", "b"]).trailers(trailers.clone());
    let upstream = Upstream::new([Reply::status(503)]);
    layer()
        .layer(upstream.clone())
        .oneshot(put(body))
        .await
        .unwrap();
    let seen = upstream.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!(s.body(), "ab");
        assert_eq!(s.trailers.as_ref(), Some(&trailers));
        assert!(s.complete);
    }
}

#[tokio::test(start_paused = true)]
async fn a_trailers_only_body_is_replayed() {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    let body = Frames::empty().trailers(trailers.clone());
    let upstream = Upstream::new([Reply::status(503)]);
    layer()
        .layer(upstream.clone())
        .oneshot(put(body))
        .await
        .unwrap();
    for s in upstream.seen() {
        assert_eq!(s.len, 0);
        assert_eq!(s.trailers.as_ref(), Some(&trailers));
    }
}

#[tokio::test(start_paused = true)]
async fn an_empty_body_ends_at_once_on_every_attempt() {
    let upstream = Upstream::new([Reply::status(503), Reply::status(502)]);
    let request = Request::get("http://upstream.test/")
        .body(Full::new(Bytes::new()))
        .unwrap();
    layer()
        .layer(upstream.clone())
        .oneshot(request)
        .await
        .unwrap();
    let seen = upstream.seen();
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert!(s.end_stream_at_arrival);
        assert_eq!(s.exact_hint, Some(0));
        assert!(s.complete && s.chunks.is_empty());
    }
}

#[tokio::test(start_paused = true)]
async fn a_one_mebibyte_full_body_is_replayed_without_copying() {
    let original = Bytes::from(vec![7u8; 1024 * 1024]);
    let address = original.as_ptr();
    let upstream = Upstream::new([Reply::status(503), Reply::status(503)]);
    let response = layer()
        .layer(upstream.clone())
        .oneshot(put(Full::new(original)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = upstream.seen();
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert_eq!(s.chunks.len(), 1);
        assert_eq!(s.chunks[0].len(), 1024 * 1024);
        // The same memory every time: refcounted, never copied.
        assert_eq!(s.chunks[0].as_ptr(), address);
    }
}

#[tokio::test(start_paused = true)]
async fn kept_chunks_are_freed_when_the_future_finishes() {
    let gauge = Gauge::default();
    let body = Frames::chunks([tracked(1000, b'a', &gauge), tracked(1000, b'b', &gauge)]);
    let upstream = Upstream::new([Reply::status(503)]).forget_chunks();
    // The finished future is kept alive, so this checks that finishing frees the chunks,
    // not that dropping the future does.
    let mut client = layer().layer(upstream.clone());
    let request = put(body);
    std::future::poll_fn(|cx| tower::Service::<Request<Frames>>::poll_ready(&mut client, cx))
        .await
        .unwrap();
    let mut call = tokio_test::task::spawn(tower::Service::call(&mut client, request));
    let response = loop {
        if let std::task::Poll::Ready(response) = call.poll() {
            break response.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(attempts(&response), 2);
    assert_eq!(gauge.live(), 0);
    drop(call);
}

#[tokio::test(start_paused = true)]
async fn kept_chunks_are_freed_when_the_future_is_dropped_during_the_wait() {
    let gauge = Gauge::default();
    let body = Frames::chunks([tracked(1000, b'a', &gauge)]);
    let upstream = Upstream::always(Reply::status(503)).forget_chunks();
    let mut client = layer().layer(upstream.clone());
    let request = put(body);
    std::future::poll_fn(|cx| tower::Service::<Request<Frames>>::poll_ready(&mut client, cx))
        .await
        .unwrap();
    let mut call = tokio_test::task::spawn(tower::Service::call(&mut client, request));
    assert!(call.poll().is_pending());
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(call.poll().is_pending());
    assert_eq!(upstream.attempts(), 1);
    // Waiting for the retry, the chunk is kept ...
    assert_eq!(gauge.live(), 1000);
    drop(call);
    // ... and dropping the future frees it.
    assert_eq!(gauge.live(), 0);
    tokio::time::sleep(10 * SECOND).await;
    assert_eq!(upstream.attempts(), 1);
}

/// An upstream that reads each attempt's body, drops it, checks what `gauge` says is still
/// alive (`live[n]` bytes after attempt `n`), and answers 503.
fn reads_and_checks(
    gauge: &Gauge,
    live: &'static [usize],
) -> impl tower::Service<
    Request<ReplayBody<Frames>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future: Send,
> + Clone {
    let gauge = gauge.clone();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    service_fn(move |req: Request<ReplayBody<Frames>>| {
        let gauge = gauge.clone();
        let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            let bytes = req.into_body().collect().await.unwrap().to_bytes();
            drop(bytes);
            assert_eq!(gauge.live(), live[n], "live bytes after attempt {}", n + 1);
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            Ok::<_, Infallible>(response)
        }
    })
}

#[tokio::test(start_paused = true)]
async fn nothing_is_kept_when_no_retry_can_follow() {
    let gauge = Gauge::default();
    let body = Frames::chunks([tracked(1000, b'a', &gauge)]);
    let response = layer()
        .max_retries(0)
        .layer(reads_and_checks(&gauge, &[0]))
        .oneshot(put(body))
        .await
        .unwrap();
    assert_eq!(attempts(&response), 1);
}

#[tokio::test(start_paused = true)]
async fn the_last_attempt_hands_kept_chunks_over_instead_of_keeping_them() {
    let gauge = Gauge::default();
    let body = Frames::chunks([tracked(1000, b'a', &gauge)]);
    // After the first attempt the layer keeps the chunk for the retry; during the second
    // and last attempt it keeps no reference.
    let response = layer()
        .max_retries(1)
        .layer(reads_and_checks(&gauge, &[1000, 0]))
        .oneshot(put(body))
        .await
        .unwrap();
    assert_eq!(attempts(&response), 2);
}

#[tokio::test(start_paused = true)]
async fn replay_bodies_report_the_original_size_and_count_down() {
    let service = service_fn(|req: Request<ReplayBody<Full<Bytes>>>| async move {
        let mut body = req.into_body();
        assert_eq!(body.size_hint().exact(), Some(5));
        assert!(!body.is_end_stream());
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "12345");
        assert_eq!(body.size_hint().exact(), Some(0));
        assert!(body.frame().await.is_none());
        assert!(body.is_end_stream());
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        Ok::<_, Infallible>(response)
    });
    let response = layer()
        .max_retries(2)
        .layer(service)
        .oneshot(put(Full::new(Bytes::from("12345"))))
        .await
        .unwrap();
    assert_eq!(attempts(&response), 3);
}

#[test]
fn replay_bodies_and_futures_meet_hyper_utils_bounds() {
    fn body_bounds<T: Body + Send + Unpin + 'static>() {}
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    body_bounds::<ReplayBody<Full<Bytes>>>();
    body_bounds::<ReplayBody<http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>>>();
    type Client = hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        ReplayBody<Full<Bytes>>,
    >;
    send::<retryable_http::Retry<Client>>();
    send_sync::<<retryable_http::Retry<Client> as tower::Service<Request<Full<Bytes>>>>::Future>();
}

/// Reads `body` the way a connection's writer does: one frame at a time, each followed by
/// 1 ms of writing.
async fn write_out<B: Body<Data = Bytes> + Unpin>(mut body: B) -> Result<Bytes, String>
where
    B::Error: std::fmt::Display,
{
    let mut all = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Some(data) = frame.data_ref() {
            all.extend_from_slice(data);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(Bytes::from(all))
}

/// The bodies a writer queue wrote: the attempt (from 0), and what it read.
type Written = std::sync::Arc<std::sync::Mutex<Vec<(usize, Result<Bytes, String>)>>>;

/// An inner service with a writer queue: every attempt's body is read by a task that starts
/// 5 ms after the call. The first attempt is answered 503 at once, before its body is read;
/// later ones once their body was written, with the body's error if it failed. It records
/// every body written, in the order the writes ended.
fn writer_queue() -> (
    impl tower::Service<
        Request<ReplayBody<Frames>>,
        Response = Response<Full<Bytes>>,
        Error = retryable_http::error::BoxError,
        Future: Send,
    > + Clone,
    Written,
) {
    let written = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let record = written.clone();
    let service = service_fn(move |req: Request<ReplayBody<Frames>>| {
        let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let written = record.clone();
        let write = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let result = write_out(req.into_body()).await;
            written.lock().unwrap().push((n, result.clone()));
            result
        });
        async move {
            if n > 0 {
                write.await.unwrap()?;
                return Ok(Response::new(Full::new(Bytes::new())));
            }
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            Ok::<_, retryable_http::error::BoxError>(response)
        }
    });
    (service, written)
}

#[tokio::test(start_paused = true)]
async fn a_body_read_late_by_the_inner_service_does_not_break_the_next_attempt() {
    let body = || Frames::chunks(["order", " ", "7"]);
    for request in [
        Request::post("http://upstream.test/orders")
            .header("idempotency-key", "order-7")
            .body(body())
            .unwrap(),
        put(body()),
    ] {
        let method = request.method().clone();
        let (service, written) = writer_queue();
        let response = RetryLayer::new()
            .backoff(Backoff::constant(Duration::ZERO))
            .layer(service)
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        // No attempt wasted on a broken body: the second one succeeds ...
        assert_eq!(attempts(&response), 2, "{method}");
        // ... after the first attempt's body was written whole.
        let written = written.lock().unwrap().clone();
        assert_eq!(
            written,
            [
                (0, Ok(Bytes::from("order 7"))),
                (1, Ok(Bytes::from("order 7")))
            ],
            "{method}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_never_read_by_the_inner_service_in_time_is_not_replayed_under_it() {
    // The abandoned attempt's body is only read after the drain timeout: the layer gives
    // the 503 back instead of starting an attempt whose body the late reader could break.
    let read = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = read.clone();
    let service = service_fn(move |req: Request<ReplayBody<Full<Bytes>>>| {
        let read = record.clone();
        async move {
            let body = req.into_body();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let written = write_out(body).await;
                read.lock().unwrap().push(written);
            });
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            Ok::<_, Infallible>(response)
        }
    });
    let response = RetryLayer::new()
        .backoff(Backoff::constant(Duration::ZERO))
        .layer(service)
        .oneshot(put(Full::new(Bytes::from("order 7"))))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(attempts(&response), 1);
    tokio::time::sleep(Duration::from_secs(10)).await;
    // The late reader still gets the whole body.
    assert_eq!(*read.lock().unwrap(), [Ok(Bytes::from("order 7"))]);
}

// ---- Bodies made again by a `Reopen` -----------------------------------------------------

/// A `PUT` of `chunks`, of unknown length, with a `Reopen` that makes the same body again;
/// and the count of the factory's calls.
fn put_reopenable(
    chunks: &[Bytes],
) -> (
    Request<Frames>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let frames = |chunks: &[Bytes]| Frames::chunks(chunks.to_vec()).hint(SizeHint::new());
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let again = chunks.to_vec();
    let reopen = retryable_http::body::Reopen::new(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let body = frames(&again);
        async move { Ok::<_, Infallible>(body) }
    });
    let mut request = put(frames(chunks));
    request.extensions_mut().insert(reopen);
    (request, calls)
}

#[tokio::test(start_paused = true)]
async fn a_body_over_the_cap_is_retried_by_reopening_it() {
    let chunks: Vec<Bytes> = (0..3u8).map(|i| Bytes::from(vec![i; 500])).collect();
    let (mut request, calls) = put_reopenable(&chunks);
    request
        .headers_mut()
        .insert("content-length", http::HeaderValue::from_static("1500"));
    let upstream = Upstream::new([Reply::status(503), Reply::status(502)]);
    let response = layer()
        .replay_limit(1024)
        .layer(upstream.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(attempts(&response), 3);
    // Made again for each retry, never before the first attempt.
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    let seen = upstream.seen();
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert_eq!(s.chunks, chunks);
        assert!(s.complete);
        assert_eq!(s.headers["content-length"], "1500");
    }
    // The factory is the layer's: the inner service does not see it.
    let reopen_seen = seen.iter().any(|s| s.headers.contains_key("x-reopen"));
    assert!(!reopen_seen);
}

#[tokio::test(start_paused = true)]
async fn a_body_whose_exact_size_is_over_the_cap_is_reopened_without_keeping_anything() {
    let gauge = Gauge::default();
    let factory_gauge = gauge.clone();
    let reopen = retryable_http::body::Reopen::new(move || {
        let body = Full::new(tracked(4096, b'x', &factory_gauge));
        async move { Ok::<_, Infallible>(body) }
    });
    let mut request = put(Full::new(tracked(4096, b'x', &gauge)));
    request.extensions_mut().insert(reopen);
    let check_gauge = gauge.clone();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let service = service_fn(move |req: Request<ReplayBody<Full<Bytes>>>| {
        let gauge = check_gauge.clone();
        let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            let bytes = req.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(bytes, vec![b'x'; 4096]);
            drop(bytes);
            // Nothing of any attempt's body outlives its attempt.
            assert_eq!(gauge.live(), 0, "attempt {}", n + 1);
            let mut response = Response::new(Full::new(Bytes::new()));
            if n < 2 {
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            }
            Ok::<_, Infallible>(response)
        }
    });
    let response = layer()
        .replay_limit(1024)
        .layer(service)
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(attempts(&response), 3);
}

#[tokio::test(start_paused = true)]
async fn a_reopen_that_fails_ends_the_request_with_an_error_naming_it() {
    let reopen = retryable_http::body::Reopen::new(|| async {
        Err::<Frames, _>(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "backup.tar is gone",
        ))
    });
    let mut request = put(Frames::chunks([vec![1u8; 2000]]).hint(SizeHint::new()));
    request.extensions_mut().insert(reopen);
    let upstream = Upstream::always(Reply::status(503));
    let error = layer()
        .replay_limit(1024)
        .layer(upstream.clone())
        .oneshot(request)
        .await
        .unwrap_err();
    assert!(error.is_reopen(), "{error}");
    assert_eq!(error.attempts(), 1);
    assert_eq!(upstream.attempts(), 1);
    assert_eq!(
        retryable_http::error::Report::new(&error).to_string(),
        "PUT http://upstream.test/blob giving up after 1 attempt(s): the request body could not be reopened: backup.tar is gone"
    );
    let cause = error.into_source();
    assert_eq!(
        cause.downcast_ref::<std::io::Error>().map(|e| e.kind()),
        Some(std::io::ErrorKind::NotFound)
    );
}

#[tokio::test(start_paused = true)]
async fn a_body_an_earlier_attempt_still_holds_is_reopened_instead_of_given_up() {
    // The upstream answers 503 after 5 bytes and reads the rest 10 s later, past the drain
    // timeout: without a `Reopen` the 503 would be returned.
    let (tx, body) = bodies::channel();
    tx.data("hello");
    let mut request = put(body);
    request
        .extensions_mut()
        .insert(retryable_http::body::Reopen::new(|| async {
            let (tx, body) = bodies::channel();
            tx.data("hello world!");
            Ok::<_, Infallible>(body)
        }));
    let upstream = Upstream::new([Reply::status(503).early(5, Duration::from_secs(10))]);
    let call = tokio::spawn(layer().layer(upstream.clone()).oneshot(request));
    tokio::time::sleep(Duration::from_millis(100)).await;
    tx.data(" world!");
    drop(tx);
    let response = call.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(attempts(&response), 2);
    let seen = upstream.seen();
    assert_eq!(seen[1].body(), "hello world!");
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(upstream.late_bodies(), [Bytes::from(" world!")]);
}

#[tokio::test(start_paused = true)]
async fn a_body_made_again_does_not_wait_for_one_an_earlier_attempt_still_reads() {
    // Each attempt answers after its first chunk, already over the cap, and reads the rest
    // for 300 ms: a retry that makes its body again has nothing to wait for.
    let chunks = vec![Bytes::from(vec![1u8; 1100]), Bytes::from(vec![2u8; 500])];
    let (request, calls) = put_reopenable(&chunks);
    let upstream = Upstream::new([
        Reply::status(503).early(1, 300 * MILLI),
        Reply::status(503).early(1, 300 * MILLI),
    ]);
    let started = tokio::time::Instant::now();
    let response = RetryLayer::new()
        .backoff(Backoff::constant(Duration::ZERO))
        .replay_limit(1024)
        .layer(upstream.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(attempts(&response), 3);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    // Every attempt started at once, none waiting for the 300 ms of reading.
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_body_kept_in_memory_is_replayed_even_with_a_reopen() {
    let chunks: Vec<Bytes> = (0..3u8).map(|i| Bytes::from(vec![i; 100])).collect();
    let (request, calls) = put_reopenable(&chunks);
    let upstream = Upstream::new([Reply::status(503)]);
    let response = layer()
        .layer(upstream.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The kept bytes cover the retry: the factory is never called.
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    let seen = upstream.seen();
    assert_eq!(seen[1].chunks, chunks);
}
