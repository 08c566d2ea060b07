//! [`ResponseFuture`]: one request, through all its attempts.
//!
//! The future is a state machine, advanced in one `loop`:
//!
//! ```text
//! call ──▶ decide ──▶ release ──▶ drain ──▶ wait ──▶ [reopen] ──▶ ready ──▶ call ...
//!            │           │
//!            └───────────┴──▶ the outcome goes to the caller
//! ```
//!
//! - *call*: the inner service's future for this attempt (cut off by the attempt timeout).
//! - *decide*: the policy and the layer's limits choose between retrying and returning.
//! - *release*: wait until the earlier attempts' request bodies are out of the way, so the
//!   next attempt can replay the body from the first byte (bounded by the drain timeout).
//! - *drain*: read a little of the response that will be retried, so the connection can be
//!   reused (bounded in bytes and time).
//! - *wait*: the backoff, on one inline tokio [`Sleep`].
//! - *reopen*: make the body again with the request's [`Reopen`](crate::body::Reopen), when
//!   the kept bytes cannot cover the retry.
//! - *ready*: drive the inner service to readiness before the next attempt.
//!
//! A [hedged](crate::hedge::Hedge) request takes another path from its first attempt on: every
//! attempt lives in one boxed set, polled in turn, with the next attempt started when the
//! hedging delay passes or an attempt fails in a way the policy retries; the first outcome
//! the policy does not retry wins and the rest are dropped.
//!
//! Nothing is spawned and nothing is boxed but what only a retry or a hedge needs: dropping
//! the future cancels every attempt in flight or the wait, and frees the kept request body.
//!
//! The type is nameable, for a struct field or a hand-written future:
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper_util::client::legacy::{Client, connect::HttpConnector};
//! use retryable_http::{body::ReplayBody, future::ResponseFuture};
//!
//! type Inner = Client<HttpConnector, ReplayBody<Full<Bytes>>>;
//! /// What `Retry<Inner>` returns for a `Request<Full<Bytes>>`.
//! type Pending = ResponseFuture<Inner, Full<Bytes>>;
//!
//! fn is_send<T: Send>() {}
//! is_send::<Pending>();
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Buf;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use crate::body::ReplayBody;
use crate::config::{Setup, after};
use crate::error::{AttemptTimedOut, BoxError, Error};
use crate::redact::Redacted;
use crate::telemetry::AttemptInfo;
use hedged::Hedging;
use session::{Next, Released, Session, Step};

mod hedged;
mod session;

/// The response types [`ResponseFuture`] works with: [`http::Response<B>`] for any `B`.
///
/// It only names the body type of the inner service's response; it is implemented for
/// `http::Response<B>` and cannot be implemented elsewhere.
pub trait HttpResponse: sealed::Sealed {
    /// The response body type.
    type Body;
}

impl<B> HttpResponse for Response<B> {
    type Body = B;
}

mod sealed {
    pub trait Sealed {}
    impl<B> Sealed for http::Response<B> {}
}

pin_project! {
    /// The future returned by [`Retry`](crate::Retry): the response of the last attempt, or
    /// an [`Error`].
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<ReplayBody<B>>>,
        S::Response: HttpResponse,
    {
        #[pin]
        state: State<S::Future, <S::Response as HttpResponse>::Body, B>,
        timer: Timer,
        session: Session<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, R, B> {
        // An attempt is in flight.
        Calling { #[pin] future: F },
        // A hedged request's attempts are in flight. Boxed: only a hedged request pays for
        // its size.
        Hedging { hedging: Box<Hedging<F, R, B>> },
        // The outcome will be retried once the earlier bodies are out of the way. Boxed:
        // only a retry pays for its size.
        Releasing { outcome: Option<Box<Result<Response<R>, BoxError>>> },
        // Reading a little of the response that will be retried.
        Draining { #[pin] body: R, read: usize },
        // The backoff.
        Waiting,
        // Making the request body again.
        Reopening,
        // Driving the service to readiness for the next attempt.
        Ready,
        // The output was returned.
        Done,
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<ReplayBody<B>>>,
    S::Response: HttpResponse,
    B: Body + 'static,
{
    /// Sends the first attempt on `service`, which was made ready.
    pub(crate) fn new(service: &mut S, request: Request<B>, setup: Arc<Setup<S>>) -> Self {
        let (head, body) = request.into_parts();
        let body = |cap, memory: Option<&Arc<_>>| ReplayBody::new(body, cap, memory);
        Self::start(service, Session::start(setup, head, body))
    }

    /// Sends the first attempt of a request without a body of the caller's (a request that
    /// resumes a download) on `service`, which was made ready.
    pub(crate) fn empty(service: &mut S, head: http::request::Parts, setup: Arc<Setup<S>>) -> Self {
        Self::start(
            service,
            Session::start(setup, head, |_, _| ReplayBody::empty()),
        )
    }

    /// Sends the first attempt of the request `session` started with `body`.
    #[inline(always)]
    fn start(service: &mut S, (mut session, body): (Session<S, B>, ReplayBody<B>)) -> Self {
        let (first, trace) = session.attempt_request(AttemptInfo::FIRST, body);
        let future = {
            let _entered = session.telemetry().entered();
            tracing::trace!(attempt = 1, "sending");
            let _attempt = trace.entered();
            service.call(first)
        };
        if session.is_hedged() {
            let hedging = Box::new(Hedging::new(future, trace, &mut session));
            return ResponseFuture {
                state: State::Hedging { hedging },
                timer: Timer::default(),
                session,
            };
        }
        session.set_current(trace);
        ResponseFuture {
            state: State::Calling { future },
            timer: Timer::at(session.attempt_ends(session.started())),
            session,
        }
    }
}

impl<S, B, R> Future for ResponseFuture<S, B>
where
    S: Service<Request<ReplayBody<B>>, Response = Response<R>> + Clone,
    S::Error: Into<BoxError>,
    B: Body,
    R: Body,
{
    type Output = Result<Response<R>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let session = &mut *this.session;
        let _entered = session.telemetry().entered();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    // The attempt's span is entered while its future is polled: the layers
                    // below see it as the current span.
                    let attempt = session.telemetry().entered_attempt();
                    let outcome = match future.poll(cx) {
                        Poll::Ready(result) => result.map_err(Into::into),
                        Poll::Pending => {
                            if !session.is_timed() || this.timer.poll(cx).is_pending() {
                                return Poll::Pending;
                            }
                            if session.past_deadline(Instant::now()) {
                                // Dropping the attempt's future cuts it off.
                                this.state.set(State::Done);
                                return Poll::Ready(Err(session.deadline_exceeded(true)));
                            }
                            let timeout = session.attempt_timeout().unwrap_or_default();
                            Err(AttemptTimedOut::new(timeout).into())
                        }
                    };
                    drop(attempt);
                    // Dropping the attempt's future here also ends a timed-out attempt.
                    this.state.set(State::Done);
                    match session.after_attempt(outcome) {
                        Next::Return(output) => return Poll::Ready(output),
                        Next::Retry(outcome) => {
                            let bound = after(Instant::now(), session.config().drain_timeout);
                            this.timer.arm(bound_by(session.deadline(), bound));
                            this.state.set(State::Releasing {
                                outcome: Some(Box::new(outcome)),
                            });
                        }
                    }
                }
                _ => {
                    let next = ready!(poll_retrying(this.state.as_mut(), this.timer, session, cx));
                    if let Some(output) = next {
                        return Poll::Ready(output);
                    }
                    // The next attempt is in flight.
                }
            }
        }
    }
}

/// Everything but an attempt in flight: hedging, and what comes between attempts. Ready
/// with the caller's output, or with `None` once the next attempt is in flight.
// NOTE: kept out of line, so that the code a request that succeeds at once runs stays
// small: the instruction cache then holds the client's own code.
#[inline(never)]
fn poll_retrying<S, B, R>(
    mut state: Pin<&mut State<S::Future, R, B>>,
    timer: &mut Timer,
    session: &mut Session<S, B>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Response<R>, Error>>>
where
    S: Service<Request<ReplayBody<B>>, Response = Response<R>> + Clone,
    S::Error: Into<BoxError>,
    B: Body,
    R: Body,
{
    loop {
        match state.as_mut().project() {
            StateProj::Hedging { hedging } => {
                let output = ready!(hedging.poll(cx, session, timer));
                return end(state, output);
            }
            StateProj::Releasing { outcome } => {
                let released = session.poll_released(cx).is_ready();
                if !released && timer.poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let outcome = *outcome.take().expect("outcome is held until released");
                match session.released(released, outcome) {
                    Released::Return(output) => {
                        return end(state, output);
                    }
                    Released::Drain(body) => state.set(State::Draining { body, read: 0 }),
                    Released::Proceed => {
                        let step = session.step(Instant::now());
                        go(step, session, state.as_mut(), timer);
                    }
                }
            }
            StateProj::Draining { mut body, read } => {
                while *read < session.config().drain_limit {
                    match body.as_mut().poll_frame(cx) {
                        Poll::Ready(Some(Ok(frame))) => {
                            if let Some(data) = frame.data_ref() {
                                *read += data.remaining();
                            }
                        }
                        Poll::Ready(_) => break,
                        Poll::Pending => {
                            if timer.poll(cx).is_pending() {
                                return Poll::Pending;
                            }
                            break;
                        }
                    }
                }
                // Dropping the body here: fully read, HTTP/1.1 reuses the connection.
                let step = session.step(Instant::now());
                go(step, session, state.as_mut(), timer);
            }
            StateProj::Waiting => {
                ready!(timer.poll(cx));
                let step = session.after_wait();
                go(step, session, state.as_mut(), timer);
            }
            StateProj::Reopening => {
                let made = match session.poll_reopened(cx) {
                    Poll::Ready(made) => made,
                    Poll::Pending => {
                        // Only the deadline ends it.
                        let error = ready!(deadline_passed(session, timer, cx));
                        return end(state, Err(error));
                    }
                };
                if let Err(error) = made {
                    return end(state, Err(error));
                }
                state.set(State::Ready);
            }
            StateProj::Ready => {
                let ready = match session.service().poll_ready(cx) {
                    Poll::Ready(ready) => ready,
                    Poll::Pending => {
                        // Only the deadline ends a wait for readiness.
                        let error = ready!(deadline_passed(session, timer, cx));
                        return end(state, Err(error));
                    }
                };
                if let Err(error) = ready {
                    return end(state, Err(session.not_ready(error.into())));
                }
                let (request, trace) = match session.next_request() {
                    Ok(next) => next,
                    Err(error) => {
                        return end(state, Err(error));
                    }
                };
                if let Some(at) = session.attempt_ends(Instant::now()) {
                    timer.arm(at);
                }
                let future = {
                    let _attempt = trace.entered();
                    session.service().call(request)
                };
                session.set_current(trace);
                state.set(State::Calling { future });
                return Poll::Ready(None);
            }
            StateProj::Calling { .. } => return Poll::Ready(None),
            StateProj::Done => panic!("ResponseFuture polled after completion"),
        }
    }
}

/// The request is over: the state is done, and `output` is the caller's.
fn end<F, R, B, T>(mut state: Pin<&mut State<F, R, B>>, output: T) -> Poll<Option<T>> {
    state.set(State::Done);
    Poll::Ready(Some(output))
}

/// Moves to the state `step` names. Making the body again and readiness are bounded by
/// the deadline only, which the timer is then armed for.
fn go<S, B, F, R>(
    step: Step,
    session: &Session<S, B>,
    mut state: Pin<&mut State<F, R, B>>,
    timer: &mut Timer,
) {
    match step {
        Step::Wait(at) => {
            timer.arm(at);
            state.set(State::Waiting);
            return;
        }
        Step::Reopen => state.set(State::Reopening),
        Step::Ready => state.set(State::Ready),
    }
    if let Some(deadline) = session.deadline() {
        timer.arm(deadline);
    }
}

/// Ready with the error that ends the request once the deadline, which the timer is armed
/// for, has passed; pending until then, and for good when the request has no deadline.
fn deadline_passed<S, B>(
    session: &mut Session<S, B>,
    timer: &mut Timer,
    cx: &mut Context<'_>,
) -> Poll<Error> {
    if session.deadline().is_none() {
        return Poll::Pending;
    }
    ready!(timer.poll(cx));
    Poll::Ready(session.deadline_exceeded(false))
}

/// `at`, or the deadline if that comes first.
fn bound_by(deadline: Option<Instant>, at: Instant) -> Instant {
    deadline.map_or(at, |d| d.min(at))
}

/// A request's one timer, armed in turn for the attempt timeout, the release and drain
/// bound, the backoff and the deadline.
///
/// Made on first use, so that a request that needs no timer never touches the timer wheel,
/// and boxed: a tokio `Sleep` is 112 bytes, which every request would otherwise move
/// around, where registering one in the wheel already costs far more than the allocation.
#[derive(Default)]
pub(crate) struct Timer(Option<Pin<Box<Sleep>>>);

impl Timer {
    /// A timer armed for `deadline`, if there is one.
    fn at(deadline: Option<Instant>) -> Self {
        Timer(deadline.map(|at| Box::pin(tokio::time::sleep_until(at))))
    }

    /// Sets the timer to fire at `deadline`, reusing its registration when it has one.
    pub(crate) fn arm(&mut self, deadline: Instant) {
        match &mut self.0 {
            Some(sleep) => sleep.as_mut().reset(deadline),
            None => self.0 = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
    }

    /// Polls the timer; one that was never armed has fired.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.0 {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Ready(()),
        }
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<ReplayBody<B>>>,
    S::Response: HttpResponse,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("method", &self.session.head().method)
            .field("url", &Redacted(&self.session.head().uri))
            .field("attempt", &self.session.attempts())
            .finish_non_exhaustive()
    }
}
