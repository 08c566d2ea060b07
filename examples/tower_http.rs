//! A client stack of `RetryLayer` over tower-http's `TraceLayer` and `SetRequestHeader`, with
//! a timeout per attempt, and the spans it shows.
//!
//! ```text
//! cargo run --example tower_http
//! ```
//!
//! Which way round:
//!
//! - **`RetryLayer` outermost.** Every layer below it runs once per attempt: `TraceLayer`
//!   makes a span per attempt (inside the layer's `attempt` span, whose child it is), the
//!   header is set on each attempt, the timeout bounds each attempt. Above the retry layer,
//!   `TraceLayer` would see one request however many attempts it took, and a timeout would
//!   bound all of them together (what [`RetryLayer::deadline`] does, waits included).
//! - **The header from the attempt.** `SetRequestHeader` below the retry layer reads the
//!   [`AttemptInfo`] each attempt's request carries: here it sends the attempt's number.
//! - **The timeout as an error.** tower's `TimeoutLayer` fails a slow attempt with `Elapsed`,
//!   an error the layer does not know, so it may have been processed: it is retried for an
//!   idempotent request, and its span's `error.type` is `maybe_processed`. tower-http's own
//!   `TimeoutLayer` answers `408` with a `Default` body instead: that suits a server, and
//!   hyper's `Incoming` has no `Default`. The layer's own [`RetryLayer::attempt_timeout`]
//!   does what tower's does, and says `timeout`.
//!
//! The upstream, on a loopback port the OS picks, is slow to the first attempt, answers the
//! second with 503 and the third with 200. The subscriber prints each span as it closes, the
//! attempts' fields among them.
//!
//! [`RetryLayer::deadline`]: retryable_http::RetryLayer::deadline
//! [`RetryLayer::attempt_timeout`]: retryable_http::RetryLayer::attempt_timeout
//! [`AttemptInfo`]: retryable_http::telemetry::AttemptInfo

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderName;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use retryable_http::backoff::Backoff;
use retryable_http::telemetry::AttemptInfo;
use retryable_http::{Attempts, RetryLayer};
use tokio::net::TcpListener;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::set_header::SetRequestHeaderLayer;
use tower_http::trace::{DefaultMakeSpan, TraceLayer};
use tracing::{Instrument, Level};
use tracing_subscriber::fmt::format::FmtSpan;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const ATTEMPT: HeaderName = HeaderName::from_static("x-attempt");

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_max_level(Level::INFO)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .init();
    let upstream = upstream().await?;

    let client = ServiceBuilder::new()
        .layer(RetryLayer::new().backoff(Backoff::constant(Duration::from_millis(50))))
        .layer(TraceLayer::new_for_http().make_span_with(DefaultMakeSpan::new().level(Level::INFO)))
        .layer(SetRequestHeaderLayer::overriding(
            ATTEMPT,
            |request: &Request<_>| Some(HeaderValue::from(AttemptInfo::of(request).number())),
        ))
        .layer(tower::timeout::TimeoutLayer::new(Duration::from_millis(
            300,
        )))
        .service(Client::builder(TokioExecutor::new()).build_http());

    let request = Request::get(format!("http://{upstream}/report")).body(Empty::<Bytes>::new())?;
    let response = client
        .oneshot(request)
        .instrument(tracing::info_span!("fetch_report"))
        .await?;
    let record = Attempts::of(&response).into_owned();
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    println!(
        "{status} after {} attempts: {}",
        record.attempts(),
        String::from_utf8_lossy(&body)
    );
    Ok(())
}

/// Slow to the first attempt, 503 to the second, 200 to the third, which it tells the
/// number it was sent with.
async fn upstream() -> Result<std::net::SocketAddr, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let calls = Arc::new(AtomicU32::new(0));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let calls = calls.clone();
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let call = calls.fetch_add(1, Ordering::SeqCst);
                    let attempt = request.headers().get(ATTEMPT).cloned();
                    async move {
                        let mut response = Response::new(Full::new(Bytes::new()));
                        match call {
                            0 => tokio::time::sleep(Duration::from_secs(5)).await,
                            1 => *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE,
                            _ => {
                                let attempt = attempt.as_ref().and_then(|v| v.to_str().ok());
                                *response.body_mut() = Full::new(Bytes::from(format!(
                                    "sent as attempt {}",
                                    attempt.unwrap_or("?")
                                )));
                            }
                        }
                        Ok::<_, hyper::Error>(response)
                    }
                });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}
