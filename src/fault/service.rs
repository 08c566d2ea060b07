//! [`Fault`]: the service a [`FaultLayer`](super::FaultLayer) makes.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tokio::time::Instant;
use tower_service::Service;

use super::body::FaultBody;
use super::effect::Effect;
use super::future::FaultFuture;
use super::record::FaultLog;
use super::rule::Rule;
use crate::error::BoxError;

/// What a layer's services share.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) rules: Vec<Rule>,
    pub(super) log: FaultLog,
    pub(super) started: Instant,
}

/// The service [`FaultLayer`](super::FaultLayer) makes.
#[derive(Clone)]
pub struct Fault<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Fault<S> {
    pub(super) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Fault { inner, shared }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes the fault service and returns the inner one.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for Fault<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fault")
            .field("inner", &self.inner)
            .field("rules", &self.shared.rules.len())
            .finish()
    }
}

impl<S, B, R> Service<Request<B>> for Fault<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone,
    S::Error: Into<BoxError>,
    R: Body<Data = Bytes>,
    R::Error: Into<BoxError>,
{
    type Response = Response<FaultBody<R>>;
    type Error = BoxError;
    type Future = FaultFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> FaultFuture<S, B> {
        let elapsed = self.shared.started.elapsed();
        let (head, body) = request.into_parts();
        let fired = self
            .shared
            .rules
            .iter()
            .find(|rule| rule.fires(&head, elapsed));
        let (effect, delay, name) = match fired {
            Some(rule) => (rule.effect.clone(), rule.delay, rule.name.clone()),
            None => (Effect::Forward, Duration::ZERO, None),
        };
        let entry = self.shared.log.push(elapsed, &head, name.clone());
        let request = Request::from_parts(head, body);
        let clone = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, clone);
        FaultFuture::new(
            service,
            request,
            effect,
            delay,
            name,
            self.shared.log.clone(),
            entry,
        )
    }
}
