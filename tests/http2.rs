//! HTTP/2: what the server provably never processed is retried for every method, over real
//! HTTP/2 framing — hyper-util's client with prior knowledge against servers built from the
//! `h2` crate (resets and `GOAWAY` frames at chosen moments) and hyper's own HTTP/2 server.
//! In-memory pipes on tokio's paused clock first, then loopback sockets in real time.
//! The layer reads HTTP/2 errors with its `hyper` feature.
#![cfg(feature = "hyper")]

mod support;

use std::time::Duration;

use bytes::Bytes;
use h2::Reason;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use retryable_http::classify::{ErrorClass, classify};
use retryable_http::{RetryLayer, backoff::Backoff};
use support::attempts;
use support::h2::{Conn, H2Server, Stream};
use tokio::time::Instant;
use tower::{Layer, ServiceExt};

const SECOND: Duration = Duration::from_secs(1);

fn layer() -> RetryLayer {
    RetryLayer::new().backoff(Backoff::constant(SECOND))
}

fn request(method: Method, body: &'static str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri("http://upstream.test/orders")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

/// The h2 error in `error`'s cause chain.
fn h2_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a h2::Error> {
    std::iter::successors(Some(error), |e| e.source()).find_map(|e| e.downcast_ref())
}

/// The reason of the h2 error in `error`'s cause chain.
fn h2_reason(error: &(dyn std::error::Error + 'static)) -> Option<Reason> {
    h2_error(error).and_then(h2::Error::reason)
}

/// Resets the first stream with `REFUSED_STREAM`, answers 200 to the others.
fn refuses_first() -> H2Server {
    H2Server::new(
        |_| Conn::Serve,
        |n| {
            if n == 0 {
                Stream::Reset(Reason::REFUSED_STREAM)
            } else {
                Stream::Answer(200)
            }
        },
    )
}

#[tokio::test(start_paused = true)]
async fn a_refused_post_is_retried_with_the_same_body_and_key() {
    let server = refuses_first();
    let mut post = request(Method::POST, "order 7");
    post.headers_mut()
        .insert("idempotency-key", "order-7".parse().unwrap());
    let response = layer().layer(server.client()).oneshot(post).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(attempts(&response), 2);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, None, "the refused stream was never read");
    assert_eq!(seen[1].body.as_deref(), Some(&b"order 7"[..]));
    for s in &seen {
        assert_eq!(s.headers["idempotency-key"], "order-7");
    }
    // A refused stream leaves the connection usable: both went over one.
    assert_eq!(server.connections(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_refused_post_without_a_key_is_retried_too() {
    let server = refuses_first();
    let response = layer()
        .layer(server.client())
        .oneshot(request(Method::POST, "order 8"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(attempts(&response), 2);
    assert_eq!(server.seen()[1].body.as_deref(), Some(&b"order 8"[..]));
}

#[tokio::test(start_paused = true)]
async fn a_custom_policy_for_statuses_still_retries_a_refused_stream_unless_told_not_to() {
    let only_503 =
        || layer().retry_if(|attempt| attempt.status() == Some(StatusCode::SERVICE_UNAVAILABLE));
    let server = refuses_first();
    let response = only_503()
        .layer(server.client())
        .oneshot(request(Method::POST, "order 9"))
        .await
        .unwrap();
    assert_eq!(attempts(&response), 2);

    let server = refuses_first();
    let error = only_503()
        .policy_only()
        .layer(server.client())
        .oneshot(request(Method::POST, "order 9"))
        .await
        .unwrap_err();
    assert_eq!(error.attempts(), 1);
    assert_eq!(classify(&*error.into_source()), ErrorClass::NeverSent);
}

/// A server whose first connection does `first`; it serves the others, answering 200.
fn first_connection(first: Conn) -> H2Server {
    H2Server::new(
        move |n| if n == 0 { first } else { Conn::Serve },
        |_| Stream::Answer(200),
    )
}

/// Sends a POST of `body` through the layer to `server`: the response, and how long it took
/// on the paused clock.
async fn post(
    server: &H2Server,
    body: &'static str,
) -> (http::Response<hyper::body::Incoming>, Duration) {
    let start = Instant::now();
    let response = layer()
        .layer(server.client())
        .oneshot(request(Method::POST, body))
        .await
        .unwrap();
    (response, start.elapsed())
}

/// Sends a POST of `body` through the layer to `server`, which must fail: the error.
async fn post_error(server: &H2Server, body: &'static str) -> retryable_http::Error {
    layer()
        .layer(server.client())
        .oneshot(request(Method::POST, body))
        .await
        .unwrap_err()
}

#[tokio::test(start_paused = true)]
async fn a_graceful_goaway_before_any_stream_makes_a_post_retry_at_once() {
    let server = first_connection(Conn::GoAway(Reason::NO_ERROR));
    let (response, took) = post(&server, "order 10").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(attempts(&response), 2);
    // No backoff: the server asked the client to reconnect, not to slow down.
    assert_eq!(took, Duration::ZERO);
    assert_eq!(server.connections(), 2);
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].connection, 1);
    assert_eq!(seen[0].body.as_deref(), Some(&b"order 10"[..]));
}

#[tokio::test(start_paused = true)]
async fn a_goaway_the_client_sends_itself_does_not_make_a_post_look_unsent() {
    // The server breaks the protocol after the request's HEADERS: the client answers with
    // its own GOAWAY(PROTOCOL_ERROR). The server may have acted on the request.
    let server = first_connection(Conn::BreakProtocol);
    let error = post_error(&server, "order 15").await;
    assert_eq!(error.attempts(), 1);
    let cause = error.into_source();
    let h2 = h2_error(&*cause).expect("an h2 error in the chain");
    assert!(h2.is_go_away() && !h2.is_remote(), "{h2:?}");
    assert_eq!(h2.reason(), Some(Reason::PROTOCOL_ERROR));
    assert_eq!(classify(&*cause), ErrorClass::MaybeProcessed);
    assert_eq!(server.connections(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_goaway_before_the_request_was_sent_makes_a_post_retry_after_the_backoff() {
    // The GOAWAY arrives before hyper opened the request's stream: hyper hands the request
    // back as canceled, without the GOAWAY's code, which could have asked the client to
    // calm down. Never sent, so retried for a POST, after the backoff.
    let server = first_connection(Conn::GoAwayAtOnce(Reason::NO_ERROR));
    let (response, took) = post(&server, "order 14").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(attempts(&response), 2);
    assert_eq!(took, SECOND);
    assert_eq!(server.connections(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_stream_at_the_goaways_last_id_that_dies_is_retried_for_get_not_for_post() {
    let server = || first_connection(Conn::GoAwayAfterFirst);
    // Stream 1 is at the GOAWAY's last stream id: the server may have processed it.
    let post = server();
    let error = post_error(&post, "order 11").await;
    assert_eq!(error.attempts(), 1);
    assert_eq!(classify(&*error.into_source()), ErrorClass::MaybeProcessed);
    assert_eq!(post.seen().len(), 1);

    let get = server();
    let response = layer()
        .layer(get.client())
        .oneshot(request(Method::GET, ""))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(attempts(&response), 2);
    assert_eq!(get.connections(), 2);
}

#[tokio::test(start_paused = true)]
async fn enhance_your_calm_goaways_stop_at_max_retries_with_backoff_between_them() {
    let server = H2Server::new(
        |_| Conn::GoAway(Reason::ENHANCE_YOUR_CALM),
        |_| Stream::Answer(200),
    );
    let error = layer()
        .max_retries(3)
        .layer(server.client())
        .oneshot(request(Method::POST, "order 12"))
        .await
        .unwrap_err();
    // Never processed, so retried even for a POST; but the server is overloaded, so the
    // backoff is kept.
    assert_eq!(error.attempts(), 4);
    let cause = error.into_source();
    assert_eq!(classify(&*cause), ErrorClass::NeverSent);
    assert_eq!(h2_reason(&*cause), Some(Reason::ENHANCE_YOUR_CALM));
    assert_eq!(server.arrivals(), [0, 1, 2, 3].map(|s| s * SECOND));
    assert!(server.seen().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_early_503_while_flow_control_holds_the_upload_is_retried_whole_or_returned() {
    // 256 KiB: four times the stream's initial flow-control window, so the upload is still
    // blocked when the server answers without reading it.
    let body: &'static [u8] = Box::leak(vec![b'u'; 256 * 1024].into_boxed_slice());
    let server = H2Server::new(
        |_| Conn::Serve,
        |n| {
            if n == 0 {
                Stream::AnswerEarly(503)
            } else {
                Stream::Answer(200)
            }
        },
    );
    let put = Request::put("http://upstream.test/blob")
        .body(Full::new(Bytes::from_static(body)))
        .unwrap();
    let response = layer().layer(server.client()).oneshot(put).await.unwrap();
    let seen = server.seen();
    match response.status() {
        StatusCode::OK => {
            assert_eq!(attempts(&response), 2);
            assert_eq!(
                seen[1].body.as_deref(),
                Some(body),
                "the retry carries it all"
            );
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            assert_eq!(attempts(&response), 1);
            assert_eq!(seen.len(), 1);
        }
        other => panic!("unexpected {other}"),
    }
    // Whichever it was, no attempt carried a partial body.
    assert!(
        seen.iter()
            .all(|s| s.body.is_none() || s.body.as_deref() == Some(body))
    );
}

// ---- Loopback sockets, real time ---------------------------------------------------------

#[tokio::test]
async fn a_refused_post_is_retried_over_loopback() {
    support::within(async {
        let server = refuses_first();
        let listening = server.listen().await;
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .http2_only(true)
                .build_http();
        let response = RetryLayer::new()
            .backoff(Backoff::constant(Duration::from_millis(10)))
            .layer(client)
            .oneshot(
                Request::post(listening.url("/orders"))
                    .body(Full::new(Bytes::from("order 13")))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(attempts(&response), 2);
        assert_eq!(server.seen()[1].body.as_deref(), Some(&b"order 13"[..]));
    })
    .await;
}

#[tokio::test]
async fn statuses_from_hyper_s_http2_server_are_retried_over_one_connection() {
    support::within(async {
        let server = support::servers::http2(|n, _req| async move {
            let status = match n {
                0 => 502,
                1 => 503,
                _ => 200,
            };
            let mut response = http::Response::new(Full::new(Bytes::from("h2")));
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            response
        })
        .await;
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .http2_only(true)
                .build_http();
        let response = RetryLayer::new()
            .backoff(Backoff::constant(Duration::from_millis(10)))
            .layer(client)
            .oneshot(
                Request::get(server.url("/x"))
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(attempts(&response), 3);
        assert_eq!(response.version(), http::Version::HTTP_2);
        assert_eq!(
            response.into_body().collect().await.unwrap().to_bytes(),
            "h2"
        );
        assert_eq!(server.counts.requests(), 3);
        assert_eq!(server.counts.connections(), 1);
    })
    .await;
}
