//! [`GrpcLayer`]: the retry layer as a tonic client's channel takes it.
//!
//! A generated tonic client sends `http::Request<tonic::body::Body>` and reads a failed
//! call's status from the service's error. [`Retry`] sends the attempts with a
//! [`ReplayBody`] and fails with an [`Error`]: [`GrpcRetry`] turns the one into the other,
//! and the error into the [`Status`] a gRPC client would report.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{HeaderName, HeaderValue, Request, Response};
use tonic::body::Body as TonicBody;
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::{Code as TonicCode, Status};
use tower_layer::Layer;
use tower_service::Service;

use super::ServiceConfig;
use crate::body::ReplayBody;
use crate::error::{BoxError, Error};
use crate::future::{HttpResponse, ResponseFuture};
use crate::record::Attempts;
use crate::{Retry, RetryLayer};

/// Wraps a tonic [`Channel`](https://docs.rs/tonic/latest/tonic/transport/struct.Channel.html),
/// or any service a generated client takes, so that its calls are retried by the service
/// config's rules ([`RetryLayer::grpc`]).
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use retryable_http::grpc::{GrpcLayer, ServiceConfig};
/// use tower::Layer;
///
/// let config = ServiceConfig::from_json(r#"{"methodConfig": [{
///   "name": [{"service": "echo.Echo"}],
///   "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.1s", "maxBackoff": "1s",
///                   "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}
/// }]}"#)?;
/// let channel = tonic::transport::Endpoint::from_static("http://[::1]:50051").connect_lazy();
/// let channel = GrpcLayer::new(config).layer(channel);
/// // let client = EchoClient::new(channel);
/// # Ok(())
/// # }
/// ```
///
/// Each service the layer makes has its own retry throttle, as each gRPC channel has: a
/// tonic client sends its channel requests without the server's name, so calls through one
/// channel count against one bucket. Clones of the service share it.
///
/// # What the caller gets
///
/// - The last attempt's response, when the call succeeded, committed, or failed with a
///   status that is not retried or after its last retry: tonic reads its status as it
///   always does. Its [`Attempts`] record is a response extension, which tonic keeps in a
///   successful call's `tonic::Response`, and drops when it turns a Trailers-Only response
///   into a `Status`: name a header with [`attempt_count_header`](Self::attempt_count_header)
///   to find the number of attempts in the status's metadata.
/// - For a call that ran out of time, `DEADLINE_EXCEEDED`; for a transport failure that was
///   not retried or failed again, `UNAVAILABLE`; for a status the inner service itself
///   failed with, that status. The layer's [`Error`] is the status's
///   [`source`](std::error::Error::source), with the whole record: see [`attempts`].
#[derive(Clone, Debug)]
pub struct GrpcLayer {
    retry: RetryLayer,
    count: Option<HeaderName>,
}

impl GrpcLayer {
    /// A layer that retries gRPC calls as `config` says, with the other settings of
    /// [`RetryLayer::new`].
    pub fn new(config: ServiceConfig) -> Self {
        GrpcLayer::from_layer(RetryLayer::new().grpc(config))
    }

    /// A layer that applies `retry`, which should have been given a service config with
    /// [`RetryLayer::grpc`]: without one, gRPC calls are retried by the HTTP rules.
    pub fn from_layer(retry: RetryLayer) -> Self {
        GrpcLayer { retry, count: None }
    }

    /// Writes the number of attempts a call took into every response, as a header with
    /// this name, and into the metadata of the `Status` of every call the layer failed: a
    /// caller can read it from a failed call's `Status`, which keeps no extension. Off by
    /// default, like Envoy's `x-envoy-attempt-count`.
    pub fn attempt_count_header(mut self, name: HeaderName) -> Self {
        self.count = Some(name);
        self
    }
}

impl<S: Clone> Layer<S> for GrpcLayer {
    type Service = GrpcRetry<S>;

    fn layer(&self, inner: S) -> GrpcRetry<S> {
        GrpcRetry {
            // NOTE: tonic's clients send a relative URI to their channel: the throttles are
            // kept per channel, as gRPC keeps them, not per layer.
            inner: self.retry.with_fresh_throttles().layer(ToTonic(inner)),
            count: self.count.clone(),
        }
    }
}

/// The service [`GrpcLayer`] makes: a tonic client's channel whose calls are retried.
#[derive(Clone, Debug)]
pub struct GrpcRetry<S> {
    inner: Retry<ToTonic<S>>,
    count: Option<HeaderName>,
}

impl<S> GrpcRetry<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner.get_ref().0
    }
}

/// Hands each attempt's body to the inner service as the body type tonic's services take.
#[derive(Clone, Debug)]
pub struct ToTonic<S>(S);

impl<S> Service<Request<ReplayBody<TonicBody>>> for ToTonic<S>
where
    S: Service<Request<TonicBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReplayBody<TonicBody>>) -> S::Future {
        self.0.call(request.map(TonicBody::new))
    }
}

impl<S, R> Service<Request<TonicBody>> for GrpcRetry<S>
where
    S: Service<Request<TonicBody>, Response = Response<R>> + Clone,
    S::Error: Into<BoxError>,
    R: http_body::Body,
{
    type Response = Response<R>;
    type Error = Status;
    type Future = GrpcFuture<S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        self.inner.poll_ready(cx).map_err(|e| status_of(e, None))
    }

    fn call(&mut self, request: Request<TonicBody>) -> GrpcFuture<S> {
        GrpcFuture {
            inner: Box::pin(self.inner.call(request)),
            count: self.count.clone(),
        }
    }
}

/// The future of a call through [`GrpcRetry`].
pub struct GrpcFuture<S>
where
    S: Service<Request<TonicBody>>,
    S::Response: HttpResponse,
{
    /// Boxed: tonic's client moves the future of every call several times, and a
    /// pointer is cheaper to move than the request's state.
    inner: Pin<Box<ResponseFuture<ToTonic<S>, TonicBody>>>,
    count: Option<HeaderName>,
}

impl<S, R> Future for GrpcFuture<S>
where
    S: Service<Request<TonicBody>, Response = Response<R>> + Clone,
    S::Error: Into<BoxError>,
    R: http_body::Body,
{
    type Output = Result<Response<R>, Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let output = ready!(this.inner.as_mut().poll(cx));
        Poll::Ready(match output {
            Ok(mut response) => {
                if let Some(name) = &this.count {
                    let count = Attempts::of(&response).attempts();
                    response
                        .headers_mut()
                        .insert(name.clone(), HeaderValue::from(count));
                }
                Ok(response)
            }
            Err(error) => Err(status_of(error, this.count.as_ref())),
        })
    }
}

impl<S> fmt::Debug for GrpcFuture<S>
where
    S: Service<Request<TonicBody>>,
    S::Response: HttpResponse,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcFuture").finish_non_exhaustive()
    }
}

/// The status a gRPC client reports for a call the layer failed with `error`, with the
/// error as its source and, if `count` names a header, the number of attempts in its
/// metadata.
fn status_of(error: Error, count: Option<&HeaderName>) -> Status {
    let inner = crate::classify::chain(&error).find_map(|e| e.downcast_ref::<Status>());
    let mut status = match inner {
        Some(status) => status.clone(),
        None => {
            let code = if error.is_deadline() || error.is_attempt_timeout() {
                TonicCode::DeadlineExceeded
            } else {
                TonicCode::Unavailable
            };
            Status::new(code, crate::error::Report::new(&error).to_string())
        }
    };
    if let Some(name) = count {
        let key = MetadataKey::from_bytes(name.as_str().as_bytes());
        if let Ok(key) = key {
            let attempts = error.record().map_or(error.attempts(), Attempts::attempts);
            status
                .metadata_mut()
                .insert(key, MetadataValue::from(attempts));
        }
    }
    status.set_source(Arc::new(error));
    status
}

/// The record of a call [`GrpcRetry`] failed: the layer's [`Error`] in the status's source.
/// `None` for a status the server sent, which tonic made from a response: read the
/// [`attempt_count_header`](GrpcLayer::attempt_count_header) there.
pub fn attempts(status: &Status) -> Option<&Attempts> {
    let source = std::error::Error::source(status)?;
    source.downcast_ref::<Error>()?.record()
}
