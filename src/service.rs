//! [`Retry`]: the service [`RetryLayer`](crate::RetryLayer) wraps a client in.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::body::ReplayBody;
use crate::config::Config;
use crate::error::{BoxError, Error};
use crate::future::ResponseFuture;

/// Retries the requests an inner HTTP service fails, as configured by a
/// [`RetryLayer`](crate::RetryLayer).
///
/// `Retry<S>` is a `Service<http::Request<B>>` for any body `B`, without a `Clone` bound on
/// it: the inner service receives `http::Request<ReplayBody<B>>`. It is usually made with
/// [`RetryLayer`](crate::RetryLayer); [`Retry::new`] wraps a service with the defaults.
///
/// # Readiness
///
/// `poll_ready` asks the inner service. `call` moves the service that was made ready into
/// the response future, leaving a clone in its place, and the future drives its service to
/// readiness again before every retry.
#[derive(Clone)]
pub struct Retry<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> Retry<S> {
    /// Wraps `inner` with the default configuration of
    /// [`RetryLayer::new`](crate::RetryLayer::new).
    pub fn new(inner: S) -> Self {
        Retry::with_config(inner, Arc::new(Config::default()))
    }

    pub(crate) fn with_config(inner: S, config: Arc<Config>) -> Self {
        Retry { inner, config }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes the retry service and returns the inner one.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, R> Service<Request<B>> for Retry<S>
where
    S: Service<Request<ReplayBody<B>>, Response = Response<R>> + Clone,
    S::Error: Into<BoxError>,
    B: Body + Unpin + 'static,
    B::Error: Into<BoxError>,
    R: Body,
{
    type Response = Response<R>;
    type Error = Error;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner
            .poll_ready(cx)
            .map_err(|e| Error::not_ready(None, 0, e.into()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture<S, B> {
        // The service that was made ready goes with the request; a clone takes its place.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::new(ready, request, self.config.clone())
    }
}

impl<S: fmt::Debug> fmt::Debug for Retry<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("config", &*self.config)
            .finish()
    }
}

#[cfg(test)]
mod tests;
