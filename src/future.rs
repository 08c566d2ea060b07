//! [`ResponseFuture`]: one request, through all its attempts.
//!
//! The future is a state machine, advanced in one `loop`:
//!
//! ```text
//! call ──▶ decide ──▶ release ──▶ drain ──▶ wait ──▶ ready ──▶ call ...
//!            │           │
//!            └───────────┴──▶ the outcome goes to the caller
//! ```
//!
//! - *call*: the inner service's future for this attempt (cut off by the attempt timeout).
//! - *decide*: the policy and the layer's limits choose between retrying and returning.
//! - *release*: wait until the attempt's request body is handed back, so the next attempt can
//!   replay it from the first byte (bounded by the drain timeout).
//! - *drain*: read a little of the response that will be retried, so the connection can be
//!   reused (bounded in bytes and time).
//! - *wait*: the backoff, on one inline tokio [`Sleep`].
//! - *ready*: drive the inner service to readiness before the next attempt.
//!
//! Nothing is spawned and nothing is boxed: dropping the future cancels the attempt in
//! flight or the wait, and frees the kept request body.
//!
//! The type is nameable, for a struct field or a hand-written future:
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper_util::client::legacy::{Client, connect::HttpConnector};
//! use retryable_http::{ReplayBody, future::ResponseFuture};
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
use std::time::Duration;

use bytes::Buf;
use http::{HeaderValue, Request, Response, request, response};
use http_body::Body;
use pin_project_lite::pin_project;
use sync_wrapper::SyncWrapper;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use crate::BoxError;
use crate::attempts::Attempts;
use crate::body::{Reopen, Reopening, Replay, ReplayBody};
use crate::classify::{self, classify};
use crate::error::{AttemptTimedOut, DeadlineExceeded, Error, Report};
use crate::hooks::{GiveUp, StopReason};
use crate::layer::Config;
use crate::policy::{Action, Attempt, Outcome};
use crate::redact::Redacted;
use crate::retry_after::requested_wait;
use crate::rng::Rng;

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
        state: State<S::Future, <S::Response as HttpResponse>::Body>,
        // The one timer, armed in turn for the attempt timeout, the release and drain bound,
        // and the backoff. Made on first use: a request that needs no timer never touches
        // the timer wheel.
        #[pin]
        timer: Option<Sleep>,
        service: S,
        ctx: Ctx<B>,
        span: tracing::Span,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, R> {
        // An attempt is in flight.
        Calling { #[pin] future: F },
        // The outcome will be retried once the attempt's body is handed back. Boxed: only
        // a retry pays for its size.
        Releasing { outcome: Option<Box<Result<Response<R>, BoxError>>> },
        // Reading a little of the response that will be retried.
        Draining { #[pin] body: R, read: usize },
        // The backoff.
        Waiting,
        // Making the request body again, with the request's `Reopen`.
        Reopening,
        // Driving the service to readiness for the next attempt.
        Ready,
        // The output was returned.
        Done,
    }
}

/// Everything about the request that does not need pinning.
struct Ctx<B> {
    config: Arc<Config>,
    /// The caller's request head: every attempt starts from a copy of it.
    head: request::Parts,
    replay: Replay<B>,
    /// How to make the body again when the kept bytes cannot cover a retry.
    reopen: Option<Reopen<B>>,
    /// The number of the attempt in flight or last made, from 1.
    attempt: u32,
    started: Instant,
    /// When the whole request must be done by, if the layer has a deadline.
    deadline: Option<Instant>,
    /// What only a request that is retried needs; made on its first retry, so that the
    /// future of a request that succeeds at once stays small.
    retry: Option<Box<Retrying<B>>>,
}

/// The state of a request that is being retried.
struct Retrying<B> {
    /// When the next attempt may start.
    at: Instant,
    previous_delay: Duration,
    rng: Rng,
    /// The outcome being retried, for the prepare-retry hook: its head, or its error.
    last: Option<Result<response::Parts, BoxError>>,
    /// The next attempt's body is made again by the request's `Reopen`.
    reopen: bool,
    /// The body being made again, then made.
    reopening: Option<SyncWrapper<Reopening<B>>>,
    fresh: Option<B>,
}

impl<B> Retrying<B> {
    /// The retry state in `slot`, made on first use.
    fn of(slot: &mut Option<Box<Retrying<B>>>, started: Instant) -> &mut Retrying<B> {
        slot.get_or_insert_with(|| {
            Box::new(Retrying {
                at: started,
                previous_delay: Duration::ZERO,
                rng: Rng::new(),
                last: None,
                reopen: false,
                reopening: None,
                fresh: None,
            })
        })
    }
}

/// What to do with an attempt's outcome.
enum Next<R> {
    Return(Result<Response<R>, Error>),
    Retry(Result<Response<R>, BoxError>),
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<ReplayBody<B>>>,
    S::Response: HttpResponse,
    B: Body + 'static,
{
    pub(crate) fn new(mut service: S, request: Request<B>, config: Arc<Config>) -> Self {
        let (mut head, body) = request.into_parts();
        let reopen = head.extensions.remove::<Reopen<B>>();
        let span = tracing::debug_span!(
            "retry",
            method = %head.method,
            url = %Redacted(&head.uri),
        );
        let now = Instant::now();
        if let Some(budget) = &config.budget {
            budget.deposit_at(now);
        }
        let (body, replay) = ReplayBody::new(
            body,
            config.replay_limit,
            config.memory.clone(),
            config.max_retries > 0,
        );
        let ctx = Ctx {
            deadline: config.deadline.map(|d| after(now, d)),
            config,
            head,
            replay,
            reopen,
            attempt: 1,
            started: now,
            retry: None,
        };
        let timer = ctx.attempt_deadline(now).map(tokio::time::sleep_until);
        let first = ctx.attempt_request(body);
        let future = {
            let _entered = span.enter();
            tracing::trace!(attempt = 1, "sending");
            service.call(first)
        };
        ResponseFuture {
            state: State::Calling { future },
            timer,
            service,
            ctx,
            span,
        }
    }
}

impl<S, B, R> Future for ResponseFuture<S, B>
where
    S: Service<Request<ReplayBody<B>>, Response = Response<R>>,
    S::Error: Into<BoxError>,
    B: Body,
    R: Body,
{
    type Output = Result<Response<R>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let _entered = this.span.enter();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let outcome = match future.poll(cx) {
                        Poll::Ready(result) => result.map_err(Into::into),
                        Poll::Pending => {
                            let timed = this.ctx.deadline.is_some()
                                || this.ctx.config.attempt_timeout.is_some();
                            if !timed || poll_timer(this.timer.as_mut(), cx).is_pending() {
                                return Poll::Pending;
                            }
                            if this.ctx.past_deadline() {
                                // Dropping the attempt's future cuts it off.
                                this.state.set(State::Done);
                                return Poll::Ready(Err(this.ctx.deadline_exceeded()));
                            }
                            let timeout = this.ctx.config.attempt_timeout.unwrap_or_default();
                            Err(AttemptTimedOut::new(timeout).into())
                        }
                    };
                    // Dropping the attempt's future here also ends a timed-out attempt.
                    this.state.set(State::Done);
                    match this.ctx.decide(outcome) {
                        Next::Return(output) => return Poll::Ready(output),
                        Next::Retry(outcome) => {
                            let now = Instant::now();
                            let bound = after(now, this.ctx.config.drain_timeout);
                            arm(this.timer.as_mut(), this.ctx.bounded(bound));
                            this.state.set(State::Releasing {
                                outcome: Some(Box::new(outcome)),
                            });
                        }
                    }
                }
                StateProj::Releasing { outcome } => {
                    let ctx = &mut *this.ctx;
                    // A body made again by the request's `Reopen` does not wait for the
                    // earlier ones: it shares nothing with them.
                    let reopening = ctx.reopens();
                    let released = reopening || ctx.replay.poll_released(cx).is_ready();
                    if !released && poll_timer(this.timer.as_mut(), cx).is_pending() {
                        return Poll::Pending;
                    }
                    let outcome = *outcome.take().expect("outcome is held until released");
                    let replayable = released && ctx.replay.is_replayable();
                    if !reopening && !replayable && ctx.reopen.is_none() {
                        let reason = if released {
                            // The body outgrew the cap while the attempt still sent it.
                            StopReason::BodyNotReplayable
                        } else {
                            StopReason::BodyInUse
                        };
                        tracing::debug!(attempt = ctx.attempt, reason = %reason, "not retrying");
                        this.state.set(State::Done);
                        return Poll::Ready(ctx.give_back(outcome, reason));
                    }
                    if reopening || !replayable {
                        // The kept bytes cannot cover the retry: from now on every attempt
                        // makes the body again, and nothing more is kept.
                        ctx.retrying().reopen = true;
                        ctx.replay.finish();
                    }
                    match outcome {
                        Ok(response) => {
                            let (head, body) = response.into_parts();
                            ctx.remember(Ok(head));
                            if ctx.config.drain_limit > 0 && !body.is_end_stream() {
                                this.state.set(State::Draining { body, read: 0 });
                            } else {
                                ctx.wait(this.state.as_mut(), this.timer.as_mut());
                            }
                        }
                        Err(error) => {
                            ctx.remember(Err(error));
                            ctx.wait(this.state.as_mut(), this.timer.as_mut());
                        }
                    }
                }
                StateProj::Draining { mut body, read } => {
                    while *read < this.ctx.config.drain_limit {
                        match body.as_mut().poll_frame(cx) {
                            Poll::Ready(Some(Ok(frame))) => {
                                if let Some(data) = frame.data_ref() {
                                    *read += data.remaining();
                                }
                            }
                            Poll::Ready(_) => break,
                            Poll::Pending => {
                                if poll_timer(this.timer.as_mut(), cx).is_pending() {
                                    return Poll::Pending;
                                }
                                break;
                            }
                        }
                    }
                    // Dropping the body here: fully read, HTTP/1.1 reuses the connection.
                    this.ctx.wait(this.state.as_mut(), this.timer.as_mut());
                }
                StateProj::Waiting => {
                    ready!(poll_timer(this.timer.as_mut(), cx));
                    this.ctx.ready(this.state.as_mut(), this.timer.as_mut());
                }
                StateProj::Reopening => {
                    let ctx = &mut *this.ctx;
                    let retry = ctx.retry.as_mut().expect("a retry is being prepared");
                    let future = retry
                        .reopening
                        .as_mut()
                        .expect("the body is being reopened");
                    match future.get_mut().as_mut().poll(cx) {
                        Poll::Ready(Ok(body)) => {
                            retry.reopening = None;
                            retry.fresh = Some(body);
                            this.state.set(State::Ready);
                        }
                        Poll::Ready(Err(error)) => {
                            retry.reopening = None;
                            this.state.set(State::Done);
                            tracing::debug!(attempt = ctx.attempt, error = %Report::new(&*error), "reopening the body failed");
                            let head = &ctx.head;
                            return Poll::Ready(Err(Error::reopen(
                                &head.method,
                                &head.uri,
                                ctx.attempt,
                                error,
                            )));
                        }
                        Poll::Pending => {
                            // Only the deadline ends it.
                            if ctx.deadline.is_some()
                                && poll_timer(this.timer.as_mut(), cx).is_ready()
                            {
                                this.state.set(State::Done);
                                return Poll::Ready(Err(ctx.deadline_exceeded()));
                            }
                            return Poll::Pending;
                        }
                    }
                }
                StateProj::Ready => {
                    let ready = match this.service.poll_ready(cx) {
                        Poll::Ready(ready) => ready,
                        Poll::Pending => {
                            // Only the deadline ends a wait for readiness.
                            if this.ctx.deadline.is_some()
                                && poll_timer(this.timer.as_mut(), cx).is_ready()
                            {
                                this.state.set(State::Done);
                                return Poll::Ready(Err(this.ctx.deadline_exceeded()));
                            }
                            return Poll::Pending;
                        }
                    };
                    if let Err(error) = ready {
                        this.state.set(State::Done);
                        this.ctx.replay.finish();
                        let head = &this.ctx.head;
                        return Poll::Ready(Err(Error::not_ready(
                            Some((&head.method, &head.uri)),
                            this.ctx.attempt,
                            error.into(),
                        )));
                    }
                    let ctx = &mut *this.ctx;
                    if let Err(error) = ctx.prepare_retry() {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(error));
                    }
                    ctx.attempt = ctx.attempt.saturating_add(1);
                    let body = match ctx.retry.as_mut().and_then(|r| r.fresh.take()) {
                        Some(fresh) => ReplayBody::fresh(fresh),
                        None => {
                            if ctx.attempt > ctx.config.max_retries {
                                // No attempt follows this one: its body need not keep
                                // anything.
                                ctx.replay.last_attempt();
                            }
                            ctx.replay.body()
                        }
                    };
                    let request = ctx.attempt_request(body);
                    if let Some(at) = ctx.attempt_deadline(Instant::now()) {
                        arm(this.timer.as_mut(), at);
                    }
                    tracing::trace!(attempt = ctx.attempt, "sending");
                    let future = this.service.call(request);
                    this.state.set(State::Calling { future });
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}

impl<B> Ctx<B> {
    /// The request of the current attempt: a copy of the caller's head, with `body`.
    fn attempt_request(&self, body: ReplayBody<B>) -> Request<ReplayBody<B>> {
        let mut head = self.head.clone();
        if let Some(name) = &self.config.attempt_header {
            head.headers
                .insert(name.clone(), HeaderValue::from(self.attempt));
        }
        if let Some(hook) = &self.config.hooks.on_attempt {
            hook(self.attempt, &head);
        }
        Request::from_parts(head, body)
    }

    fn decide<R>(&mut self, outcome: Result<Response<R>, BoxError>) -> Next<R> {
        match outcome {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                if let Some(hook) = &self.config.hooks.on_response {
                    hook(self.attempt, &parts);
                }
                let verdict = self.judge(Outcome::Response(&parts));
                let response = Response::from_parts(parts, body);
                match verdict {
                    Ok(()) => Next::Retry(Ok(response)),
                    Err(reason) => Next::Return(self.give_back(Ok(response), reason)),
                }
            }
            Err(error) => match self.judge(Outcome::Error(&*error)) {
                Ok(()) => Next::Retry(Err(error)),
                Err(reason) => Next::Return(self.give_back(Err(error), reason)),
            },
        }
    }

    /// Decides whether to retry `outcome` and, if so, sets when.
    fn judge(&mut self, outcome: Outcome<'_>) -> Result<(), StopReason> {
        let attempt = Attempt::started_at(&self.head, outcome, self.attempt, self.started);
        let action = match (self.config.policy.decide(&attempt), outcome) {
            // A request the server provably never saw is safe to retry, whatever the policy
            // was written for.
            (Action::Stop, Outcome::Error(error))
                if self.config.retry_unprocessed && classify::is_unprocessed(error) =>
            {
                Action::Retry
            }
            (action, _) => action,
        };
        // NOTE: the clock is read here, after the policy, so a request that succeeds (or
        // fails for good) reads it only when it starts.
        let now = Instant::now();
        let verdict = self.wait_for(action, outcome).and_then(|(delay, from)| {
            // The last checks: a retry that will happen is the only one paid for.
            if self.deadline.is_some_and(|d| after(now, delay) > d) {
                return Err(StopReason::Deadline);
            }
            if self
                .config
                .budget
                .as_ref()
                .is_some_and(|b| !b.withdraw_at(now))
            {
                return Err(StopReason::Budget);
            }
            Ok((delay, from))
        });
        log(self.attempt, self.config.max_retries, outcome, &verdict);
        let (delay, _) = verdict?;
        let retry = self.retrying();
        retry.previous_delay = delay;
        retry.at = after(now, delay);
        Ok(())
    }

    /// The wait before retrying after `action`, and where it comes from; or why not to retry.
    fn wait_for(
        &mut self,
        action: Action,
        outcome: Outcome<'_>,
    ) -> Result<(Duration, &'static str), StopReason> {
        let config = &*self.config;
        if action == Action::Stop {
            return Err(StopReason::Policy);
        }
        if self.attempt > config.max_retries {
            return Err(StopReason::Exhausted);
        }
        if !self.replay.is_replayable() && self.reopen.is_none() {
            return Err(StopReason::BodyNotReplayable);
        }
        if let Action::RetryAfter(delay) = action {
            return Ok((delay, "policy"));
        }
        let response = match outcome {
            Outcome::Response(head) => Some(head),
            Outcome::Error(error) if classify::is_graceful_shutdown(error) => {
                // The server closes the connection in good order: the next attempt goes to a
                // new one at once.
                return Ok((Duration::ZERO, "goaway"));
            }
            Outcome::Error(_) => None,
        };
        let backoff = &config.backoff;
        let requested = response
            .filter(|head| backoff.honours_server_delay(head.status))
            .and_then(|head| {
                requested_wait(
                    &head.headers,
                    &*config.wall_clock,
                    backoff.reads_rate_limit_headers(),
                )
            });
        match requested {
            Some(wait) if wait > config.max_retry_after => Err(StopReason::ServerWaitTooLong(wait)),
            Some(wait) => Ok((wait, "server")),
            None => {
                let attempt = self.attempt;
                let retry = Retrying::of(&mut self.retry, self.started);
                let delay =
                    backoff.compute(attempt, retry.previous_delay, response, &mut retry.rng);
                Ok((delay, "backoff"))
            }
        }
    }

    /// The caller's output for an outcome that is not retried.
    fn give_back<R>(
        &mut self,
        outcome: Result<Response<R>, BoxError>,
        reason: StopReason,
    ) -> Result<Response<R>, Error> {
        self.replay.finish();
        let error = match outcome {
            Ok(mut response) => {
                let exhausted = match &self.config.hooks.when_exhausted {
                    Some(hook) if reason != StopReason::Policy => {
                        let (head, body) = response.into_parts();
                        let verdict = hook(&GiveUp::new(&self.head, &head, self.attempt, reason));
                        response = Response::from_parts(head, body);
                        verdict.err()
                    }
                    _ => None,
                };
                match exhausted {
                    Some(error) => error,
                    None => {
                        response
                            .extensions_mut()
                            .insert(Attempts::new(self.attempt));
                        return Ok(response);
                    }
                }
            }
            Err(error) => error,
        };
        Err(Error::inner(
            &self.head.method,
            &self.head.uri,
            self.attempt,
            error,
        ))
    }

    /// Runs the prepare-retry hook on the head every attempt starts from.
    fn prepare_retry(&mut self) -> Result<(), Error> {
        let last = self.retry.as_ref().and_then(|r| r.last.as_ref());
        let (Some(hook), Some(last)) = (&self.config.hooks.prepare_retry, last) else {
            return Ok(());
        };
        let last = match last {
            Ok(head) => Outcome::Response(head),
            Err(error) => Outcome::Error(&**error),
        };
        let result = hook(&mut self.head, last);
        result.map_err(|error| {
            self.replay.finish();
            Error::inner(&self.head.method, &self.head.uri, self.attempt, error)
        })
    }

    /// Whether the next attempt's body is made again by the request's `Reopen`, rather than
    /// replayed from the kept bytes.
    fn reopens(&self) -> bool {
        self.retry.as_ref().is_some_and(|r| r.reopen)
            || (self.reopen.is_some() && !self.replay.is_replayable())
    }

    /// The retry state, made on first use.
    fn retrying(&mut self) -> &mut Retrying<B> {
        Retrying::of(&mut self.retry, self.started)
    }

    /// Keeps the outcome being retried for the prepare-retry hook.
    fn remember(&mut self, outcome: Result<response::Parts, BoxError>) {
        self.retrying().last = Some(outcome);
    }

    /// Moves to the backoff, or straight to the next attempt when its time has come.
    fn wait<F, R>(&mut self, mut state: Pin<&mut State<F, R>>, timer: Pin<&mut Option<Sleep>>) {
        let at = self.retry.as_ref().map_or_else(Instant::now, |r| r.at);
        if at > Instant::now() {
            arm(timer, at);
            state.set(State::Waiting);
        } else {
            self.ready(state, timer);
        }
    }

    /// Moves to making the body again if the next attempt needs that, then to driving the
    /// service to readiness. Only the deadline bounds either.
    fn ready<F, R>(&mut self, mut state: Pin<&mut State<F, R>>, timer: Pin<&mut Option<Sleep>>) {
        if let Some(deadline) = self.deadline {
            arm(timer, deadline);
        }
        if let (Some(reopen), Some(retry)) = (&self.reopen, self.retry.as_mut()) {
            if retry.reopen {
                tracing::trace!(attempt = self.attempt + 1, "reopening the body");
                retry.reopening = Some(SyncWrapper::new(reopen.open()));
                state.set(State::Reopening);
                return;
            }
        }
        state.set(State::Ready);
    }

    /// When the current attempt must end: at the attempt timeout or the deadline.
    fn attempt_deadline(&self, now: Instant) -> Option<Instant> {
        let timeout = self.config.attempt_timeout.map(|t| after(now, t));
        match (timeout, self.deadline) {
            (Some(t), Some(d)) => Some(t.min(d)),
            (t, d) => t.or(d),
        }
    }

    /// `at`, or the deadline if that comes first.
    fn bounded(&self, at: Instant) -> Instant {
        self.deadline.map_or(at, |d| d.min(at))
    }

    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// The error for a request cut off by the deadline.
    fn deadline_exceeded(&mut self) -> Error {
        self.replay.finish();
        let deadline = self.config.deadline.unwrap_or_default();
        tracing::debug!(attempt = self.attempt, deadline = ?deadline, "deadline exceeded");
        Error::inner(
            &self.head.method,
            &self.head.uri,
            self.attempt,
            DeadlineExceeded::new(deadline).into(),
        )
    }
}

/// One event per decision: `retrying` and `not retrying` at debug, a success at trace.
fn log(
    attempt: u32,
    max_retries: u32,
    outcome: Outcome<'_>,
    verdict: &Result<(Duration, &'static str), StopReason>,
) {
    match (verdict, outcome) {
        (Ok((wait, from)), Outcome::Response(head)) => tracing::debug!(
            attempt,
            status = head.status.as_u16(),
            wait = ?wait,
            wait_from = from,
            retries_left = max_retries - attempt,
            "retrying",
        ),
        (Ok((wait, from)), Outcome::Error(error)) => tracing::debug!(
            attempt,
            error = %Report::new(error),
            class = ?classify(error),
            wait = ?wait,
            wait_from = from,
            retries_left = max_retries - attempt,
            "retrying",
        ),
        (Err(_), Outcome::Response(head)) if head.status.is_success() => {
            tracing::trace!(attempt, status = head.status.as_u16(), "done")
        }
        (Err(reason), Outcome::Response(head)) => tracing::debug!(
            attempt,
            status = head.status.as_u16(),
            reason = %reason,
            "not retrying",
        ),
        (Err(reason), Outcome::Error(error)) => tracing::debug!(
            attempt,
            error = %Report::new(error),
            class = ?classify(error),
            reason = %reason,
            "not retrying",
        ),
    }
}

/// The instant `delay` after `now`; about 30 years from now when that does not fit.
fn after(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay)
        .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 24 * 60 * 60))
}

/// Sets the timer to fire at `deadline`, reusing its registration when it has one.
fn arm(mut timer: Pin<&mut Option<Sleep>>, deadline: Instant) {
    match timer.as_mut().as_pin_mut() {
        Some(sleep) => sleep.reset(deadline),
        None => timer.set(Some(tokio::time::sleep_until(deadline))),
    }
}

/// Polls the timer; one that was never armed has fired.
fn poll_timer(timer: Pin<&mut Option<Sleep>>, cx: &mut Context<'_>) -> Poll<()> {
    match timer.as_pin_mut() {
        Some(sleep) => sleep.poll(cx),
        None => Poll::Ready(()),
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<ReplayBody<B>>>,
    S::Response: HttpResponse,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("method", &self.ctx.head.method)
            .field("url", &Redacted(&self.ctx.head.uri))
            .field("attempt", &self.ctx.attempt)
            .finish_non_exhaustive()
    }
}
