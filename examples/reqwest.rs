//! reqwest under the retry layer: a streamed upload retried after a 503, and reqwest's own
//! response read at the end.
//!
//! ```text
//! cargo run --example reqwest
//! ```
//!
//! `reqwest::Client` is a `tower::Service<reqwest::Request>`, where the layer wraps services
//! of `http::Request`. [`Reqwest`] below is the adapter between them, small enough to copy:
//!
//! - the request goes to reqwest as `reqwest::Request::try_from(http::Request)`, its body
//!   through `reqwest::Body::wrap`, which wants a `Sync` body: [`SyncBody`] makes the
//!   layer's replayable body one, as only `poll_frame` ever touches it (through `&mut`);
//! - the response comes back as `http::Response<reqwest::Body>`, and
//!   `reqwest::Response::from` turns it back into reqwest's when the caller wants `text()`
//!   or `json()`;
//! - reqwest's errors keep their sources, so the layer reads a refused connection or a
//!   reset through them as it does hyper's.
//!
//! tower-reqwest's `HttpClientLayer` does the same for bodies that are already
//! `Into<reqwest::Body>`; the layer's `ReplayBody` of a streamed body is not `Sync`, which is
//! what the adapter adds.
//!
//! The upstream is a hyper server on a loopback port the OS picks: it answers the first
//! upload with 503 after reading it whole, and the second with the number of bytes and the
//! checksum it received.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::rt::TokioIo;
use retryable_http::backoff::Backoff;
use retryable_http::{Attempts, RetryLayer};
use sync_wrapper::SyncWrapper;
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder, ServiceExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The upload: 16 chunks of 64 KiB, streamed, never held whole by the caller.
const CHUNKS: usize = 16;
const CHUNK: usize = 64 * 1024;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let upstream = upstream().await?;
    let client = ServiceBuilder::new()
        .layer(
            RetryLayer::new()
                .backoff(Backoff::constant(Duration::from_millis(100)))
                // Above the upload's 1 MiB, so that all of it can be replayed.
                .replay_limit(2 * 1024 * 1024)
                .on_attempt(|attempt| {
                    println!("attempt {}: {}", attempt.attempts(), attempt.url())
                }),
        )
        .layer_fn(Reqwest)
        .service(reqwest::Client::new());

    let chunks = (0..CHUNKS).map(|i| Ok::<_, Infallible>(Frame::data(chunk(i))));
    let upload = StreamBody::new(futures_util::stream::iter(chunks));
    let request = Request::put(format!("http://{upstream}/upload"))
        .header("content-length", (CHUNKS * CHUNK).to_string())
        .body(upload)?;
    let response = client.oneshot(request).await?;

    let record = Attempts::of(&response).into_owned();
    // reqwest's own response, to read as reqwest users do.
    let response = reqwest::Response::from(response);
    let status = response.status();
    let text = response.text().await?;
    println!("{status} after {} attempts: {text}", record.attempts());
    Ok(())
}

/// Chunk `i` of the upload.
fn chunk(i: usize) -> Bytes {
    Bytes::from(vec![i as u8; CHUNK])
}

/// A `Service<http::Request<B>>` over a `Service<reqwest::Request>`: what the retry layer
/// wraps.
#[derive(Clone, Debug)]
struct Reqwest<S>(S);

impl<S, B> Service<Request<B>> for Reqwest<S>
where
    S: Service<reqwest::Request, Response = reqwest::Response, Error = reqwest::Error>,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Into<Bytes>,
    B::Error: Into<BoxError>,
{
    type Response = Response<reqwest::Body>;
    type Error = reqwest::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, reqwest::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), reqwest::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let request = request.map(|body| reqwest::Body::wrap(SyncBody::new(body)));
        match reqwest::Request::try_from(request) {
            Ok(request) => {
                let sent = self.0.call(request);
                Box::pin(async move { sent.await.map(Response::from) })
            }
            Err(error) => Box::pin(std::future::ready(Err(error))),
        }
    }
}

/// A body that is `Sync` because nothing reads it through `&self`: its size hint is read
/// once, when it is wrapped.
struct SyncBody<B> {
    inner: SyncWrapper<Pin<Box<B>>>,
    hint: SizeHint,
}

impl<B: Body> SyncBody<B> {
    fn new(body: B) -> Self {
        let hint = body.size_hint();
        SyncBody {
            inner: SyncWrapper::new(Box::pin(body)),
            hint,
        }
    }
}

impl<B: Body> Body for SyncBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        self.get_mut().inner.get_mut().as_mut().poll_frame(cx)
    }

    fn size_hint(&self) -> SizeHint {
        self.hint
    }
}

/// A hyper server that answers the first upload with 503, once it read it whole, and the
/// next with what it received.
async fn upstream() -> Result<std::net::SocketAddr, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let uploads = Arc::new(AtomicU32::new(0));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let uploads = uploads.clone();
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let uploads = uploads.clone();
                    async move {
                        let body = request.into_body().collect().await?.to_bytes();
                        let sum = body.iter().fold(0u64, |sum, b| sum + u64::from(*b));
                        let (status, text) = match uploads.fetch_add(1, Ordering::SeqCst) {
                            0 => (StatusCode::SERVICE_UNAVAILABLE, "busy".to_owned()),
                            _ => (
                                StatusCode::OK,
                                format!("received {} bytes, sum {sum}", body.len()),
                            ),
                        };
                        let mut response = Response::new(Full::new(Bytes::from(text)));
                        *response.status_mut() = status;
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
