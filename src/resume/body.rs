//! [`ResumeBody`]: a response body that asks for the rest of itself when it breaks.
//!
//! ```text
//! streaming ──(breaks)──▶ waiting ──▶ ready ──▶ resuming ──(206, checked)──▶ streaming ...
//!     │                      │          │          │
//!     └──(ends, or an error that is not a break)   └──(rejected, out of retries)──▶ done
//! ```

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Buf;
use http::{Request, Response, StatusCode, request, response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use super::validate::Representation;
use super::{Reason, Resume, ResumeError, Resumed, Resumes, Stalled};
use crate::body::ReplayBody;
use crate::budget::Spend;
use crate::classify::breaks_body;
use crate::config::after;
use crate::error::{BoxError, Report};
use crate::future::{HttpResponse, ResponseFuture};
use crate::overrides::RetryOverride;
use crate::record::Attempts;
use crate::rng::{Rng, Seeds};
use crate::service::Retry;

/// What a request that may resume its body keeps from its call.
pub(crate) struct Plan<S> {
    /// The retry service the requests that resume go out on.
    pub(crate) retry: Retry<S>,
    /// The caller's head, without extensions: what every request that resumes starts from.
    pub(crate) head: request::Parts,
    pub(crate) resume: Arc<Resume>,
    /// When the request was called: its deadline counts from then.
    pub(crate) started: Instant,
    /// The request's retries and deadline: its own, or the layer's.
    pub(crate) max_retries: u32,
    pub(crate) deadline: Option<Duration>,
}

pin_project! {
    /// The body of a response from a [`Resumable`](super::Resumable): the inner service's,
    /// resumed with `Range` and `If-Range` where it breaks, when the request and the response
    /// allow it (see [`resume`](super)). Its errors are the inner body's, or a
    /// [`ResumeError`] when a break could not be resumed.
    pub struct ResumeBody<S, B>
    where
        S: Service<Request<ReplayBody<B>>>,
        S::Response: HttpResponse,
    {
        #[pin]
        state: State<ResponseFuture<S, B>, <S::Response as HttpResponse>::Body>,
        resuming: Option<Box<Resuming<S>>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, R> {
        Streaming { #[pin] body: R },
        // The backoff before the request that resumes.
        Waiting,
        // Driving the service to readiness for it.
        Ready,
        // It is in flight.
        Resuming { #[pin] future: F },
        Done,
    }
}

/// What a body that may resume keeps.
struct Resuming<S> {
    plan: Box<Plan<S>>,
    representation: Representation,
    /// The bytes the caller has read.
    delivered: u64,
    /// The attempts made: the first response's, and those of every request that resumed.
    attempts: u32,
    /// When the last byte arrived, for the stall.
    last_byte: Instant,
    /// The stall's timer, and the backoff's.
    timer: Option<Pin<Box<Sleep>>>,
    /// The wait before the last resume, for a decorrelated backoff.
    previous_wait: Duration,
    /// What broke the body last.
    cause: Option<BoxError>,
    rng: Option<Rng>,
    log: Resumes,
}

impl<S, B> ResumeBody<S, B>
where
    S: Service<Request<ReplayBody<B>>>,
    S::Response: HttpResponse,
{
    /// A body that does not resume.
    pub(crate) fn plain(body: <S::Response as HttpResponse>::Body) -> Self {
        ResumeBody {
            state: State::Streaming { body },
            resuming: None,
        }
    }

    /// The body of the response `head` to a request that may resume it: it resumes when the
    /// response allows, and then `head` carries the [`Resumes`] log.
    pub(crate) fn resumable(
        body: <S::Response as HttpResponse>::Body,
        head: &mut response::Parts,
        plan: Box<Plan<S>>,
    ) -> Self {
        let Ok(representation) = Representation::of(head, plan.resume.unvalidated) else {
            return Self::plain(body);
        };
        let attempts = head
            .extensions
            .get::<Attempts>()
            .map_or(1, Attempts::attempts);
        let log = Resumes::default();
        head.extensions.insert(log.clone());
        ResumeBody {
            state: State::Streaming { body },
            resuming: Some(Box::new(Resuming {
                plan,
                representation,
                delivered: 0,
                attempts,
                last_byte: Instant::now(),
                timer: None,
                previous_wait: Duration::ZERO,
                cause: None,
                rng: None,
                log,
            })),
        }
    }
}

impl<S> Resuming<S> {
    /// The body broke with `cause` after the bytes delivered: arms the timer for the wait
    /// before the request that resumes, or says why there is none.
    fn broke(&mut self, cause: BoxError, config: &crate::config::Config) -> Result<(), Reason> {
        tracing::debug!(
            offset = self.delivered,
            error = %Report::new(&*cause),
            "the body broke"
        );
        self.cause = Some(cause);
        if self.attempts > self.plan.max_retries {
            return Err(Reason::Exhausted);
        }
        let now = Instant::now();
        let seeded = config.jitter_seed.as_deref();
        let rng = (self.rng).get_or_insert_with(|| seeded.map_or_else(Rng::new, Seeds::next));
        let wait = config
            .backoff
            .compute(self.attempts, self.previous_wait, None, rng);
        let at = after(now, wait);
        if let Some(deadline) = self.deadline() {
            if at >= deadline {
                return Err(Reason::Deadline);
            }
        }
        if !config.pay(&self.plan.head, now, Spend::Retry) {
            return Err(Reason::Budget);
        }
        self.previous_wait = wait;
        self.arm(at);
        Ok(())
    }

    /// When the request must be done by, if it has a deadline.
    fn deadline(&self) -> Option<Instant> {
        self.plan.deadline.map(|d| after(self.plan.started, d))
    }

    /// Sets the timer for `at`; one already set for then is left as it is, as the stall's
    /// is on every poll that finds no byte.
    fn arm(&mut self, at: Instant) {
        match &mut self.timer {
            Some(timer) if timer.deadline() == at => {}
            Some(timer) => timer.as_mut().reset(at),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }

    /// The head of the request that resumes the body from the bytes delivered, with what is
    /// left of the request's retries and deadline.
    fn request(&self) -> request::Parts {
        let mut head = self.plan.head.clone();
        self.representation
            .ask_from(self.delivered, &mut head.headers);
        // The resume itself is one of the attempts left.
        let left = self.plan.max_retries.saturating_sub(self.attempts);
        let mut limits = RetryOverride::new().max_retries(left);
        if let Some(deadline) = self.deadline() {
            let left = deadline.saturating_duration_since(Instant::now());
            limits = limits.deadline(left);
        }
        head.extensions.insert(limits);
        head
    }

    /// Whether the body has gone the stall without a byte; if not, the timer is armed for
    /// when it would have.
    fn stalled(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(stall) = self.plan.resume.stall else {
            return false;
        };
        let at = after(self.last_byte, stall);
        if at <= Instant::now() {
            return true;
        }
        self.arm(at);
        let timer = self.timer.as_mut().expect("armed above");
        timer.as_mut().poll(cx).is_ready()
    }

    /// The error the body ends with: `reason`, after the bytes delivered.
    fn error(&mut self, reason: Reason) -> BoxError {
        let cause = self.cause.take().unwrap_or_else(|| "the body broke".into());
        Box::new(ResumeError {
            offset: self.delivered,
            reason,
            cause,
        })
    }
}

impl<S, B, R> Body for ResumeBody<S, B>
where
    S: Service<Request<ReplayBody<B>>, Response = Response<R>> + Clone,
    S::Error: Into<BoxError>,
    B: Body + Unpin + 'static,
    B::Error: Into<BoxError>,
    R: Body,
    R::Error: Into<BoxError>,
{
    type Data = R::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<R::Data>, BoxError>>> {
        let mut this = self.project();
        loop {
            let Some(resuming) = this.resuming.as_deref_mut() else {
                // A body that does not resume: the inner body, its errors boxed.
                return match this.state.project() {
                    StateProj::Streaming { body } => body.poll_frame(cx).map_err(Into::into),
                    _ => Poll::Ready(None),
                };
            };
            match this.state.as_mut().project() {
                StateProj::Streaming { body } => {
                    let (error, broke) = match body.poll_frame(cx) {
                        Poll::Ready(Some(Ok(frame))) => {
                            if let Some(data) = frame.data_ref() {
                                resuming.delivered += data.remaining() as u64;
                                resuming.last_byte = Instant::now();
                            }
                            return Poll::Ready(Some(Ok(frame)));
                        }
                        Poll::Ready(None) => {
                            this.state.set(State::Done);
                            return Poll::Ready(None);
                        }
                        Poll::Ready(Some(Err(error))) => {
                            let error: BoxError = error.into();
                            let broke = breaks_body(&*error);
                            (error, broke)
                        }
                        Poll::Pending => {
                            if !resuming.stalled(cx) {
                                return Poll::Pending;
                            }
                            let stall = resuming.plan.resume.stall.unwrap_or_default();
                            (Box::new(Stalled(stall)) as BoxError, true)
                        }
                    };
                    if !broke {
                        this.state.set(State::Done);
                        return Poll::Ready(Some(Err(error)));
                    }
                    // The broken body is dropped here, and its connection with it.
                    let config = resuming.plan.retry.config().clone();
                    match resuming.broke(error, &config) {
                        Ok(()) => this.state.set(State::Waiting),
                        Err(reason) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Some(Err(resuming.error(reason))));
                        }
                    }
                }
                StateProj::Waiting => {
                    if let Some(timer) = resuming.timer.as_mut() {
                        ready!(timer.as_mut().poll(cx));
                    }
                    this.state.set(State::Ready);
                }
                StateProj::Ready => {
                    let retry = &mut resuming.plan.retry;
                    if let Err(error) = ready!(Service::<Request<B>>::poll_ready(retry, cx)) {
                        this.state.set(State::Done);
                        return Poll::Ready(Some(Err(resuming.error(Reason::Failed(error)))));
                    }
                    let head = resuming.request();
                    let future = resuming.plan.retry.call_empty(head);
                    this.state.set(State::Resuming { future });
                }
                StateProj::Resuming { future } => {
                    let outcome = ready!(future.poll(cx));
                    let response = match outcome {
                        Ok(response) => response,
                        Err(error) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Some(Err(resuming.error(Reason::Failed(error)))));
                        }
                    };
                    let record = Attempts::of(&response).into_owned();
                    resuming.attempts = resuming.attempts.saturating_add(record.attempts());
                    let (head, body) = response.into_parts();
                    if let Err(rejected) = accept(resuming, &head) {
                        // The answer's body is dropped unread: none of it reaches the caller.
                        this.state.set(State::Done);
                        return Poll::Ready(Some(Err(resuming.error(Reason::Rejected(rejected)))));
                    }
                    let cause = resuming
                        .cause
                        .take()
                        .map_or_else(String::new, |cause| Report::new(&*cause).to_string());
                    resuming.log.push(Resumed {
                        offset: resuming.delivered,
                        cause,
                        waited: resuming.previous_wait,
                        record,
                    });
                    resuming.last_byte = Instant::now();
                    this.state.set(State::Streaming { body });
                }
                StateProj::Done => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            State::Streaming { body } => body.is_end_stream(),
            State::Done => true,
            _ => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        let length = self
            .resuming
            .as_ref()
            .and_then(|r| Some(r.representation.length()?.saturating_sub(r.delivered)));
        match (&self.state, length) {
            (State::Done, _) => SizeHint::with_exact(0),
            (_, Some(left)) => SizeHint::with_exact(left),
            (State::Streaming { body }, None) => body.size_hint(),
            _ => SizeHint::default(),
        }
    }
}

/// Whether `head` answers the request that resumed the body with the rest of it: a `206`
/// that passes every check, or, before the caller read a byte, the same representation
/// whole again.
fn accept<S>(resuming: &Resuming<S>, head: &response::Parts) -> Result<(), super::Rejected> {
    let checked = resuming.representation.check(resuming.delivered, head);
    if checked.is_err() && resuming.delivered == 0 && head.status == StatusCode::OK {
        let again = Representation::of(head, resuming.plan.resume.unvalidated);
        if again.as_ref() == Ok(&resuming.representation) {
            return Ok(());
        }
    }
    checked
}

impl<S, B> std::fmt::Debug for ResumeBody<S, B>
where
    S: Service<Request<ReplayBody<B>>>,
    S::Response: HttpResponse,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut f = f.debug_struct("ResumeBody");
        if let Some(resuming) = &self.resuming {
            f.field("delivered", &resuming.delivered)
                .field("attempts", &resuming.attempts);
        }
        f.finish_non_exhaustive()
    }
}
