//! An axum reverse proxy whose upstream client retries, replaying streamed request bodies.
//!
//! ```text
//! cargo run --example axum_proxy
//! ```
//!
//! It starts a flaky upstream and the proxy, each on a loopback port the OS picks, then
//! sends a few requests through the proxy and prints what happened. The proxy forwards the
//! incoming body as it streams in — it is never collected — and `RetryLayer` keeps what it
//! needs to send it again: a PUT that meets a 503 is replayed whole, a plain POST that meets
//! a 502 is not sent twice, a POST with an `Idempotency-Key` is.
//!
//! Each request the proxy serves has a span, `proxy`; each attempt it makes upstream is a span
//! of the retry layer's, `attempt`, inside it, with OpenTelemetry's HTTP fields: the
//! subscriber prints them as they close. With `tracing-opentelemetry` in place of the
//! printing, they are the server span and its CLIENT spans, one per attempt.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use retryable_http::backoff::Backoff;
use retryable_http::{Attempts, Retry, RetryLayer, body::ReplayBody};
use tokio::net::TcpListener;
use tower::{Layer, ServiceExt};
use tracing::Instrument;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The proxy's upstream client: hyper-util's client, retrying.
type Upstream = Retry<Client<HttpConnector, ReplayBody<Body>>>;

#[derive(Clone)]
struct Proxy {
    client: Upstream,
    upstream: SocketAddr,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // The proxy's spans and the attempts', printed as they close.
    let spans = Targets::new()
        .with_target("axum_proxy", tracing::Level::INFO)
        .with_target("retryable_http::attempt", tracing::Level::INFO);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_span_events(FmtSpan::CLOSE)
                .with_ansi(false)
                .without_time()
                .with_target(false),
        )
        .with(spans)
        .init();
    let upstream = flaky_upstream().await?;
    let client = RetryLayer::new()
        .backoff(Backoff::constant(Duration::from_millis(100)))
        .layer(Client::builder(TokioExecutor::new()).build_http());
    let app = Router::new()
        .fallback(forward)
        .with_state(Proxy { client, upstream });
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let proxy = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!("upstream on http://{upstream}, proxy on http://{proxy}\n");

    // A plain client that talks to the proxy, without retries of its own. The PUT body is
    // sent in chunks of unknown total length (chunked encoding), as a stream would be.
    let client: Client<HttpConnector, BoxBody<Bytes, Infallible>> =
        Client::builder(TokioExecutor::new()).build_http();
    let csv = || Chunks(["a,b,c\n", "1,2,3\n", "4,5,6\n"].map(Bytes::from).into()).boxed();
    let json = || Full::new(Bytes::from_static(br#"{"item":"book"}"#)).boxed();
    let cases = [
        ("PUT", "/files/report.csv", None, csv()),
        ("POST", "/orders", None, json()),
        ("POST", "/payments", Some("payment-81"), json()),
    ];
    for (method, path, key, body) in cases {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("http://{proxy}{path}"));
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let request = request.body(body)?;
        let response = client.request(request).await?;
        let status = response.status();
        let attempts = response
            .headers()
            .get("x-upstream-attempts")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?")
            .to_owned();
        let text = response.into_body().collect().await?.to_bytes();
        let key = key.map_or(String::new(), |k| format!(" (Idempotency-Key: {k})"));
        println!(
            "{method} {path}{key}\n  -> {status} after {attempts} upstream attempt(s): {}\n",
            String::from_utf8_lossy(&text)
        );
    }
    Ok(())
}

/// The proxy's one handler: forward the request as it streams in.
async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let (mut head, body) = request.into_parts();
    let path = head.uri.path_and_query().map_or("/", |p| p.as_str());
    let span = tracing::info_span!("proxy", method = %head.method, path);
    head.uri = match format!("http://{}{path}", proxy.upstream).parse::<Uri>() {
        Ok(uri) => uri,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    let forwarded = proxy.client.oneshot(Request::from_parts(head, body));
    match forwarded.instrument(span).await {
        Ok(response) => {
            let attempts = Attempts::of(&response).attempts();
            let mut response = response.map(Body::new);
            response
                .headers_mut()
                .insert("x-upstream-attempts", attempts.into());
            response
        }
        Err(error) => (
            StatusCode::BAD_GATEWAY,
            retryable_http::error::Report::new(&error).to_string(),
        )
            .into_response(),
    }
}

/// A body of a few chunks and no announced length.
struct Chunks(VecDeque<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }
}

/// An upstream that fails the first request to each path: 503 for PUT, 502 for POST.
async fn flaky_upstream() -> Result<SocketAddr, BoxError> {
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let app = Router::new().fallback(move |request: Request| {
        let seen = seen.clone();
        async move {
            let key = format!("{} {}", request.method(), request.uri().path());
            let first = {
                let mut seen = seen.lock().unwrap();
                let n = seen.entry(key).or_default();
                *n += 1;
                *n == 1
            };
            let method = request.method().clone();
            let body = request.into_body().collect().await.map(|b| b.to_bytes());
            let body = body.unwrap_or_default();
            match (first, method.as_str()) {
                (true, "PUT") => (StatusCode::SERVICE_UNAVAILABLE, "busy".to_owned()),
                (true, _) => (StatusCode::BAD_GATEWAY, "Bad Gateway Simulation".to_owned()),
                (false, _) => (StatusCode::OK, format!("stored {} bytes", body.len())),
            }
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}
