//! Fault injection: make an HTTP service fail on purpose, and watch the retries.
//!
//! [`FaultLayer`] is the seed experiment — mitmproxy answering 502 for a matched URL — as a
//! tower layer. It wraps any HTTP service, in a client stack (between [`RetryLayer`] and the
//! real client) or in a server, and applies [`Rule`]s: the first rule that matches a request
//! and whose trigger fires decides what happens to it. Every request is recorded, so a test
//! can assert how many attempts were made, and when.
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use retryable_http::fault::{Action, Answer, FaultLayer, Match, Rule, Trigger};
//! use retryable_http::{ReplayBody, RetryLayer, backoff::Backoff};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), retryable_http::BoxError> {
//! // The upstream: always fine.
//! let upstream = service_fn(|_req: Request<ReplayBody<Full<Bytes>>>| async {
//!     Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("ok"))))
//! });
//! // Two 502s for the matched URL, after the upstream did the work.
//! let faults = FaultLayer::new().rule(
//!     Rule::new(Action::Replace(Answer::new(502).body("Bad Gateway Simulation")))
//!         .matching(Match::url_contains("your-api-endpoint"))
//!         .trigger(Trigger::First(2)),
//! );
//! let log = faults.log();
//! let client = ServiceBuilder::new()
//!     .layer(RetryLayer::new().backoff(Backoff::constant(std::time::Duration::ZERO)))
//!     .layer(faults)
//!     .service(upstream);
//!
//! let request = Request::get("http://example.com/your-api-endpoint").body(Full::new(Bytes::new()))?;
//! let response = client.oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(log.len(), 3);
//! assert_eq!(log.entries()[0].rule.as_deref(), Some("0"));
//! # Ok(())
//! # }
//! ```
//!
//! [`RetryLayer`]: crate::RetryLayer

mod proxy;
mod record;
mod rule;

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_layer::Layer;
use tower_service::Service;

use crate::BoxError;

pub use proxy::{Connecting, HttpProxy, Proxied, ProxyError};
pub use record::{FaultLog, Seen};
pub use rule::{Action, Answer, Chance, Match, Rule, Trigger};

/// A tower [`Layer`] that injects faults into an HTTP service. See the
/// [module documentation](self).
///
/// # Clone
///
/// Clones, and the services they make, share the rules' counters and the record.
#[derive(Clone, Debug)]
pub struct FaultLayer {
    rules: Vec<Rule>,
    log: FaultLog,
    started: Instant,
}

#[derive(Debug)]
struct Shared {
    rules: Vec<Rule>,
    log: FaultLog,
    started: Instant,
}

impl FaultLayer {
    /// A layer with no rules: it forwards everything and records it.
    pub fn new() -> Self {
        FaultLayer {
            rules: Vec::new(),
            log: FaultLog::default(),
            started: Instant::now(),
        }
    }

    /// Adds a rule; rules are tried in the order they were added. A rule without a
    /// [name](Rule::named) is named by its position (`"0"` for the first).
    pub fn rule(mut self, mut rule: Rule) -> Self {
        let position = self.rules.len();
        rule.name.get_or_insert_with(|| position.to_string().into());
        self.rules.push(rule);
        self
    }

    /// The record of every request the layer's services saw.
    pub fn log(&self) -> FaultLog {
        self.log.clone()
    }
}

impl Default for FaultLayer {
    fn default() -> Self {
        FaultLayer::new()
    }
}

impl<S> Layer<S> for FaultLayer {
    type Service = Fault<S>;

    fn layer(&self, inner: S) -> Fault<S> {
        Fault {
            inner,
            shared: Arc::new(Shared {
                // NOTE: a rule's counters and generator are behind `Arc`s, so these copies
                // share them with the layer and its other services.
                rules: self.rules.clone(),
                log: self.log.clone(),
                started: self.started,
            }),
        }
    }
}

/// The service [`FaultLayer`] makes.
#[derive(Clone)]
pub struct Fault<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Fault<S> {
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
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture<S, B> {
        let elapsed = self.shared.started.elapsed();
        let (head, body) = request.into_parts();
        let fired = self
            .shared
            .rules
            .iter()
            .find(|rule| rule.fires(&head, elapsed));
        let (action, delay, name) = match fired {
            Some(rule) => (rule.action.clone(), rule.delay, rule.name.clone()),
            None => (Action::Forward, Duration::ZERO, None),
        };
        let entry = self.shared.log.push(elapsed, &head, name.clone());
        let request = Request::from_parts(head, body);
        let clone = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, clone);
        let mut future = ResponseFuture {
            state: State::Start,
            sleep: None,
            service: Some(service),
            request: Some(request),
            action,
            rule: name,
            log: self.shared.log.clone(),
            entry,
        };
        if !delay.is_zero() {
            future.sleep = Some(Box::pin(tokio::time::sleep(delay)));
        }
        future
    }
}

pin_project! {
    /// The future of a [`Fault`] service.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S::Future>,
        // A delayed fault is the exception: its timer is boxed to keep the common future small.
        sleep: Option<Pin<Box<Sleep>>>,
        service: Option<S>,
        request: Option<Request<B>>,
        action: Action,
        rule: Option<Arc<str>>,
        log: FaultLog,
        entry: usize,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Start,
        Calling { #[pin] future: F },
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("action", &self.action)
            .finish_non_exhaustive()
    }
}

impl<S, B, R> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Error: Into<BoxError>,
    R: Body<Data = Bytes>,
    R::Error: Into<BoxError>,
{
    type Output = Result<Response<FaultBody<R>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(sleep) = this.sleep.as_mut() {
            ready!(sleep.as_mut().poll(cx));
            *this.sleep = None;
        }
        loop {
            match this.state.as_mut().project() {
                StateProj::Start => {
                    let request = this.request.take().expect("polled after completion");
                    let answer = match &*this.action {
                        Action::Respond(answer) => answer,
                        Action::Fail(kind) => {
                            this.log.set_status(*this.entry, None);
                            return Poll::Ready(Err(io::Error::new(*kind, InjectedFault).into()));
                        }
                        Action::RefuseStream => {
                            this.log.set_status(*this.entry, None);
                            return Poll::Ready(Err(
                                h2::Error::from(h2::Reason::REFUSED_STREAM).into()
                            ));
                        }
                        Action::Replace(_) | Action::Forward => {
                            let mut service = this.service.take().expect("polled after completion");
                            let future = service.call(request);
                            this.state.set(State::Calling { future });
                            continue;
                        }
                    };
                    this.log.set_status(*this.entry, Some(answer.status));
                    return Poll::Ready(Ok(respond(answer, this.rule)));
                }
                StateProj::Calling { future } => {
                    let response = ready!(future.poll(cx)).map_err(Into::into)?;
                    let response = match &*this.action {
                        // The upstream did the work; the client gets the fault.
                        Action::Replace(answer) => respond(answer, this.rule),
                        _ => response.map(FaultBody::inner),
                    };
                    this.log.set_status(*this.entry, Some(response.status()));
                    return Poll::Ready(Ok(response));
                }
            }
        }
    }
}

fn respond<R>(answer: &Answer, rule: &Option<Arc<str>>) -> Response<FaultBody<R>> {
    let mut response = Response::new(FaultBody::injected(answer.body.clone()));
    *response.status_mut() = answer.status;
    if let Some(rule) = rule {
        response
            .extensions_mut()
            .insert(Injected { rule: rule.clone() });
    }
    for (name, value) in &answer.headers {
        response.headers_mut().append(name.clone(), value.clone());
    }
    response
}

/// A response extension on every response a fault made (by [`Action::Respond`] or
/// [`Action::Replace`]), naming the rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injected {
    rule: Arc<str>,
}

impl Injected {
    /// The rule's name, or its position (`"0"` for the first rule).
    pub fn rule(&self) -> &str {
        &self.rule
    }
}

/// The cause of the `io::Error` an [`Action::Fail`] fault returns.
#[derive(Debug)]
pub struct InjectedFault;

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("injected fault")
    }
}

impl std::error::Error for InjectedFault {}

pin_project! {
    /// The response body of a [`Fault`] service: the upstream's, or the fault's own.
    pub struct FaultBody<R> {
        #[pin]
        kind: Kind<R>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<R> {
        Inner { #[pin] body: R },
        Injected { body: Option<Bytes> },
    }
}

impl<R> FaultBody<R> {
    fn inner(body: R) -> Self {
        FaultBody {
            kind: Kind::Inner { body },
        }
    }

    fn injected(body: Bytes) -> Self {
        FaultBody {
            kind: Kind::Injected {
                body: Some(body).filter(|b| !b.is_empty()),
            },
        }
    }

    /// Whether a fault made this body (rather than the upstream).
    pub fn is_injected(&self) -> bool {
        matches!(self.kind, Kind::Injected { .. })
    }
}

impl<R> Body for FaultBody<R>
where
    R: Body<Data = Bytes>,
    R::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx).map_err(Into::into),
            KindProj::Injected { body } => Poll::Ready(body.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Injected { body } => body.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Injected { body } => {
                SizeHint::with_exact(body.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

impl<R> fmt::Debug for FaultBody<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultBody")
            .field("injected", &self.is_injected())
            .finish_non_exhaustive()
    }
}
