//! [`Retry`]: the service [`RetryLayer`](crate::RetryLayer) wraps a client in.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::body::ReplayBody;
use crate::config::{Config, Setup};
use crate::error::{BoxError, Error};
use crate::future::ResponseFuture;

/// Retries the requests an inner HTTP service fails, as configured by a
/// [`RetryLayer`](crate::RetryLayer).
///
/// `Retry<S>` is a `Service<http::Request<B>>` for any body `B`, without a `Clone` bound on
/// it: the inner service receives `http::Request<ReplayBody<B>>`. It is usually made with
/// [`RetryLayer`](crate::RetryLayer); [`Retry::new`] wraps a service with the defaults.
///
/// # Readiness, and what a retry runs on
///
/// `poll_ready` asks the inner service, and `call` sends the first attempt on that same
/// service, as tower's contract says: nothing is cloned for a request that succeeds at once.
///
/// A retry needs a service of its own, as the response future outlives the call. When the
/// wrap is made, the `Retry` keeps one clone of the inner service aside, shared by all its
/// requests and never called itself; a request's first retry clones it once, drives that
/// clone to readiness and sends every later attempt (and, for a hedged request, every hedge)
/// on it. A change made through [`get_mut`](Retry::get_mut) is carried over to that clone
/// on the next `call`.
///
/// Peers take other shapes. tower's `Retry` clones its inner service on every `call` and
/// moves the ready one into the future, so a request that succeeds pays for a clone it
/// never uses; hyper-util's `Client` clones itself into every request's future too, which
/// a wrapper cannot avoid. tower's `Buffer` shares one service through a channel to a
/// worker task, which costs a task and a channel send on every request. Cloning on the
/// first retry only costs nothing on the success path and keeps the future small, and for
/// the clients this layer wraps (hyper-util's `Client`, tonic's `Channel`, tower stacks of
/// them) every clone shares the same connection pool, so a retry goes out on the same pool
/// the first attempt used.
#[derive(Clone)]
pub struct Retry<S> {
    inner: S,
    setup: Arc<Setup<S>>,
    /// `inner` was handed out mutably: the clone retries start from is made again.
    changed: bool,
}

impl<S: Clone> Retry<S> {
    /// Wraps `inner` with the default configuration of
    /// [`RetryLayer::new`](crate::RetryLayer::new).
    pub fn new(inner: S) -> Self {
        Retry::with_config(inner, Arc::new(Config::default()))
    }

    pub(crate) fn with_config(inner: S, config: Arc<Config>) -> Self {
        let setup = Arc::new(Setup::new(config, inner.clone()));
        Retry {
            inner,
            setup,
            changed: false,
        }
    }
}

impl<S> Retry<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably. What is changed applies to retries too, from the next
    /// `call` on.
    pub fn get_mut(&mut self) -> &mut S {
        self.changed = true;
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

    #[inline]
    fn call(&mut self, request: Request<B>) -> ResponseFuture<S, B> {
        self.carry_changes();
        // The first attempt goes out on the service that was made ready.
        ResponseFuture::new(&mut self.inner, request, self.setup.clone())
    }
}

impl<S> Retry<S> {
    /// Sends a request without a body of the caller's, a `GET` that resumes a download, on
    /// the inner service, which was made ready: it is retried as any other.
    pub(crate) fn call_empty<B>(&mut self, head: http::request::Parts) -> ResponseFuture<S, B>
    where
        S: Service<Request<ReplayBody<B>>> + Clone,
        S::Response: crate::future::HttpResponse,
        B: Body + 'static,
    {
        self.carry_changes();
        ResponseFuture::empty(&mut self.inner, head, self.setup.clone())
    }

    /// Makes the clone retries start from again when the inner service was handed out
    /// mutably since the last call.
    #[inline]
    fn carry_changes(&mut self)
    where
        S: Clone,
    {
        if std::mem::take(&mut self.changed) {
            let config = self.setup.config.clone();
            self.setup = Arc::new(Setup::new(config, self.inner.clone()));
        }
    }

    /// The layer's configuration.
    pub(crate) fn config(&self) -> &Arc<Config> {
        &self.setup.config
    }
}

impl<S: fmt::Debug> fmt::Debug for Retry<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("config", &*self.setup.config)
            .finish()
    }
}

#[cfg(test)]
mod tests;
