//! Transport errors from real sockets on 127.0.0.1, through hyper-util's client: which are
//! retried for which methods. Real time, short waits, generous limits; only counts and
//! outcomes are checked. The layer reads hyper-util's errors with its `hyper` feature.
#![cfg(feature = "hyper")]

mod support;

use std::future::{Ready, ready};
use std::io;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use retryable_http::backoff::Backoff;
use retryable_http::classify::{ErrorClass, classify};
use retryable_http::{Error, RetryLayer, body::ReplayBody};
use support::servers::{self, Fault};
use support::within;
use tower::{Layer, Service, ServiceExt};

fn client() -> Client<HttpConnector, ReplayBody<Full<Bytes>>> {
    Client::builder(TokioExecutor::new()).build_http()
}

fn layer() -> RetryLayer {
    RetryLayer::new()
        .max_retries(2)
        .backoff(Backoff::constant(Duration::from_millis(10)))
}

fn request(method: Method, url: String) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::from("payload")))
        .unwrap()
}

async fn send(method: Method, url: String) -> Result<http::Response<hyper::body::Incoming>, Error> {
    layer().layer(client()).oneshot(request(method, url)).await
}

fn class(error: &Error) -> ErrorClass {
    classify(std::error::Error::source(error).unwrap())
}

#[tokio::test]
async fn connection_refused_is_retried_for_post() {
    within(async {
        let addr = servers::refused().await;
        let error = send(Method::POST, format!("http://{addr}/orders"))
            .await
            .unwrap_err();
        assert_eq!(error.attempts(), 3);
        assert_eq!(class(&error), ErrorClass::NeverSent);
        let message = retryable_http::error::Report::new(&error).to_string();
        assert!(
            message.starts_with(&format!(
                "POST http://{addr}/orders giving up after 3 attempt(s): "
            )),
            "{message}"
        );
    })
    .await;
}

#[tokio::test]
async fn reset_after_the_request_was_written_is_retried_for_get_not_for_post() {
    within(async {
        let server = servers::fault(Fault::Reset).await;
        let error = send(Method::GET, server.url("/")).await.unwrap_err();
        assert_eq!(error.attempts(), 3);
        assert_eq!(server.counts.requests(), 3);
        assert_eq!(class(&error), ErrorClass::MaybeProcessed);

        let server = servers::fault(Fault::Reset).await;
        let error = send(Method::POST, server.url("/")).await.unwrap_err();
        assert_eq!(error.attempts(), 1);
        assert_eq!(server.counts.requests(), 1);
    })
    .await;
}

#[tokio::test]
async fn close_after_the_request_was_written_is_retried_for_get_not_for_post() {
    within(async {
        let server = servers::fault(Fault::Close).await;
        let error = send(Method::GET, server.url("/")).await.unwrap_err();
        assert_eq!(error.attempts(), 3);
        assert_eq!(server.counts.requests(), 3);

        let server = servers::fault(Fault::Close).await;
        let error = send(Method::POST, server.url("/")).await.unwrap_err();
        assert_eq!(error.attempts(), 1);
        assert_eq!(server.counts.requests(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_server_that_never_answers_is_ended_by_the_attempt_timeout() {
    within(async {
        let server = servers::fault(Fault::Stall).await;
        let client = layer()
            .attempt_timeout(Duration::from_millis(200))
            .layer(client());
        let error = client
            .oneshot(request(Method::GET, server.url("/")))
            .await
            .unwrap_err();
        assert!(error.is_attempt_timeout());
        assert_eq!(error.attempts(), 3);
        assert_eq!(server.counts.requests(), 3);
    })
    .await;
}

#[tokio::test]
async fn an_invalid_uri_is_never_retried() {
    within(async {
        // hyper-util's client refuses a URI without scheme and authority before sending.
        let error = send(Method::GET, "/relative/only".to_owned())
            .await
            .unwrap_err();
        assert_eq!(error.attempts(), 1);
        assert_eq!(class(&error), ErrorClass::Permanent);
    })
    .await;
}

#[tokio::test]
async fn an_unsupported_scheme_is_never_retried() {
    within(async {
        let addr = servers::refused().await;
        let error = send(Method::GET, format!("ftp://{addr}/file"))
            .await
            .unwrap_err();
        assert_eq!(error.attempts(), 1);
        assert_eq!(class(&error), ErrorClass::Permanent);
    })
    .await;
}

/// A connector that fails the way a TLS stack (tokio-rustls) reports a certificate error:
/// an `io::Error` of kind `InvalidData`.
#[derive(Clone, Default)]
struct BadCertificate {
    calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Service<Uri> for BadCertificate {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = io::Error;
    type Future = Ready<io::Result<Self::Response>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        ready(Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        )))
    }
}

#[tokio::test]
async fn a_certificate_error_is_never_retried() {
    within(async {
        let connector = BadCertificate::default();
        let client: Client<_, ReplayBody<Full<Bytes>>> =
            Client::builder(TokioExecutor::new()).build(connector.clone());
        let error = layer()
            .layer(client)
            .oneshot(request(Method::GET, "https://127.0.0.1:1/".to_owned()))
            .await
            .unwrap_err();
        assert_eq!(error.attempts(), 1);
        assert_eq!(connector.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(class(&error), ErrorClass::Permanent);
    })
    .await;
}
