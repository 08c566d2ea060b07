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
use retryable_http::{ReplayBody, RetryLayer};
use support::bodies::{self, Frames, Gauge, tracked};
use support::upstream::{Reply, Upstream};
use tower::{Layer, ServiceExt, service_fn};

const SECOND: Duration = Duration::from_secs(1);

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
async fn a_body_whose_exact_size_is_over_the_cap_is_not_buffered_at_all() {
    let gauge = Gauge::default();
    let body = Full::new(tracked(4096, b'x', &gauge));
    let probe_gauge = gauge.clone();
    let service = service_fn(move |req: Request<ReplayBody<Full<Bytes>>>| {
        let gauge = probe_gauge.clone();
        async move {
            let body = req.into_body();
            // Nothing has been kept, so nothing can be replayed ...
            assert!(!body.is_replayable());
            let bytes = body.collect().await.unwrap().to_bytes();
            assert_eq!(bytes.len(), 4096);
            drop(bytes);
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
    assert!(error.to_string().ends_with(": disk on fire"), "{error}");
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
