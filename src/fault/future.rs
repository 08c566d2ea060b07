//! The future of a [`Fault`](super::Fault) service.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use super::body::FaultBody;
use super::effect::{Answer, Effect};
use super::injected::{Injected, InjectedFault};
use super::record::FaultLog;
use crate::error::BoxError;

pin_project! {
    /// The future of a [`Fault`] service.
    pub struct FaultFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S::Future>,
        // A delayed fault is the exception: its timer is boxed to keep the common future small.
        sleep: Option<Pin<Box<Sleep>>>,
        service: Option<S>,
        request: Option<Request<B>>,
        effect: Effect,
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

impl<S, B> fmt::Debug for FaultFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultFuture")
            .field("effect", &self.effect)
            .finish_non_exhaustive()
    }
}

impl<S, B> FaultFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(super) fn new(
        service: S,
        request: Request<B>,
        effect: Effect,
        delay: Duration,
        rule: Option<Arc<str>>,
        log: FaultLog,
        entry: usize,
    ) -> Self {
        FaultFuture {
            state: State::Start,
            // A delayed fault is the exception: its timer is boxed to keep the common
            // future small.
            sleep: (!delay.is_zero()).then(|| Box::pin(tokio::time::sleep(delay))),
            service: Some(service),
            request: Some(request),
            effect,
            rule,
            log,
            entry,
        }
    }
}

impl<S, B, R> Future for FaultFuture<S, B>
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
                    let answer = match &*this.effect {
                        Effect::Respond(answer) => answer,
                        Effect::Fail(kind) => {
                            this.log.set_status(*this.entry, None);
                            return Poll::Ready(Err(io::Error::new(*kind, InjectedFault).into()));
                        }
                        Effect::RefuseStream => {
                            this.log.set_status(*this.entry, None);
                            return Poll::Ready(Err(
                                h2::Error::from(h2::Reason::REFUSED_STREAM).into()
                            ));
                        }
                        Effect::Replace(_)
                        | Effect::Forward
                        | Effect::CutBody(_)
                        | Effect::ResetBody(_) => {
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
                    let response = match &*this.effect {
                        // The upstream did the work; the client gets the fault.
                        Effect::Replace(answer) => respond(answer, this.rule),
                        Effect::CutBody(after) => {
                            response.map(|b| FaultBody::cut(b, *after, false))
                        }
                        Effect::ResetBody(after) => {
                            response.map(|b| FaultBody::cut(b, *after, true))
                        }
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
