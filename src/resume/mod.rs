//! Downloads that survive a broken connection: a response body that fails mid-stream is
//! resumed with `Range` and `If-Range`, and the caller reads every byte once.
//!
//! [`RetryLayer::resume_downloads`](crate::RetryLayer::resume_downloads) makes a
//! [`ResumeLayer`]: the retry layer, whose services answer with a [`ResumeBody`]. For a
//! `GET` without a `Range` of its own, answered `200` with a strong `ETag` or a
//! `Last-Modified`, the body goes on where it broke: when it fails with a connection reset,
//! a truncated message, an HTTP/2 stream reset, a timeout, or a [stall](Resume::stall), the
//! layer asks for `bytes=N-` with `If-Range`, and the caller's body continues from byte `N`.
//!
//! # Never two versions of a resource
//!
//! Only a `206 Partial Content` whose `Content-Range` starts at byte `N`, and whose length
//! is the first response's when that was known, is taken as the rest: any other answer —
//! a `200` (the server ignored the range, or the resource changed and `If-Range` made it
//! send all of it), another `ETag`, another `Content-Encoding`, another start or length — ends
//! the body with a [`ResumeError`] naming the [`Rejected`] rule, and no byte of it reaches
//! the caller. A response without a validator is not resumed unless
//! [`Resume::without_validator`] takes that risk. A `Content-Encoding` the layer does not
//! decode is fine: ranges count the bytes on the wire, which is what the body carries.
//!
//! # Bounded
//!
//! A resume is a retry: it counts against the request's `max_retries` (with the attempts the
//! first response took), waits the backoff, pays from the retry budget and ends by the
//! request's deadline; the request that resumes is retried as any other within what is
//! left. The [`Resumes`] log lists each resume with the byte it started from and the record of
//! its attempts. Nothing is kept beyond the chunk in flight, and dropping the body drops
//! whatever is under way.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::ReplayBody;
use crate::error::{BoxError, Error};
use crate::future::{HttpResponse, ResponseFuture};
use crate::layer::RetryLayer;
use crate::overrides::RetryOverride;
use crate::record::Attempts;
use crate::service::Retry;

mod body;
mod validate;

pub use body::ResumeBody;
pub use validate::Rejected;

/// How a [`ResumeLayer`] resumes bodies.
#[derive(Clone, Debug)]
pub struct Resume {
    stall: Option<Duration>,
    unvalidated: bool,
    on: bool,
}

/// The longest a body may go without a byte before it counts as broken: 30 s.
pub const DEFAULT_STALL: Duration = Duration::from_secs(30);

impl Default for Resume {
    fn default() -> Self {
        Resume::new()
    }
}

impl Resume {
    /// Resumes every eligible download, a body that goes [`DEFAULT_STALL`] without a byte
    /// counting as broken.
    pub fn new() -> Self {
        Resume {
            stall: Some(DEFAULT_STALL),
            unvalidated: false,
            on: true,
        }
    }

    /// Resumes only the requests whose [`RetryOverride::resume`] says so.
    pub fn only_when_asked(mut self) -> Self {
        self.on = false;
        self
    }

    /// A body that goes `stall` without a byte counts as broken, and is resumed; `None`
    /// waits for as long as the connection does.
    pub fn stall(mut self, stall: Option<Duration>) -> Self {
        self.stall = stall.filter(|d| !d.is_zero());
        self
    }

    /// Also resumes a response that carries neither a strong `ETag` nor a `Last-Modified`.
    ///
    /// The risk: nothing then tells the server which version the first bytes came from, and
    /// if the resource changed between the attempts the body is the start of one version and
    /// the end of another. Only the length, when the first response said it, is checked.
    pub fn without_validator(mut self) -> Self {
        self.unvalidated = true;
        self
    }
}

impl RetryLayer {
    /// This layer, resuming response bodies that break mid-stream as `resume` says: see
    /// [`resume`](crate::resume). Its services answer with a [`ResumeBody`].
    pub fn resume_downloads(self, resume: Resume) -> ResumeLayer {
        ResumeLayer {
            retry: self,
            resume: Arc::new(resume),
        }
    }
}

/// A [`RetryLayer`] whose services resume response bodies: made by
/// [`RetryLayer::resume_downloads`].
#[derive(Clone, Debug)]
pub struct ResumeLayer {
    retry: RetryLayer,
    resume: Arc<Resume>,
}

impl<S: Clone> Layer<S> for ResumeLayer {
    type Service = Resumable<S>;

    fn layer(&self, inner: S) -> Resumable<S> {
        Resumable {
            retry: self.retry.layer(inner),
            resume: self.resume.clone(),
        }
    }
}

/// Retries requests as [`Retry`] does, and resumes their response bodies: made by a
/// [`ResumeLayer`].
#[derive(Clone, Debug)]
pub struct Resumable<S> {
    retry: Retry<S>,
    resume: Arc<Resume>,
}

impl<S, B, R> Service<Request<B>> for Resumable<S>
where
    S: Service<Request<ReplayBody<B>>, Response = Response<R>> + Clone,
    S::Error: Into<BoxError>,
    B: Body + Unpin + 'static,
    B::Error: Into<BoxError>,
    R: Body,
{
    type Response = Response<ResumeBody<S, B>>;
    type Error = Error;
    type Future = ResumeFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.retry.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> ResumeFuture<S, B> {
        let own = request.extensions().get::<RetryOverride>();
        let asked = own.and_then(|o| o.resume);
        let eligible = request.method() == http::Method::GET
            && !request.headers().contains_key(http::header::RANGE)
            && asked.unwrap_or(self.resume.on);
        let plan = eligible.then(|| {
            // What every request that resumes starts from: the caller's head, without its
            // extensions (a `Reopen` of a body a `GET` does not send, an override that the
            // resume replaces).
            let (mut head, ()) = Request::new(()).into_parts();
            head.method = request.method().clone();
            head.uri = request.uri().clone();
            head.version = request.version();
            head.headers = request.headers().clone();
            let config = self.retry.config();
            Box::new(body::Plan {
                retry: self.retry.clone(),
                head,
                resume: self.resume.clone(),
                started: tokio::time::Instant::now(),
                max_retries: own
                    .and_then(|o| o.max_retries)
                    .unwrap_or(config.max_retries),
                deadline: own.and_then(|o| o.deadline).or(config.deadline),
            })
        });
        ResumeFuture {
            inner: self.retry.call(request),
            plan,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future a [`Resumable`] returns: the response of the request, with a body that
    /// resumes.
    pub struct ResumeFuture<S, B>
    where
        S: Service<Request<ReplayBody<B>>>,
        S::Response: HttpResponse,
    {
        #[pin]
        inner: ResponseFuture<S, B>,
        plan: Option<Box<body::Plan<S>>>,
    }
}

impl<S, B, R> std::future::Future for ResumeFuture<S, B>
where
    S: Service<Request<ReplayBody<B>>, Response = Response<R>> + Clone,
    S::Error: Into<BoxError>,
    B: Body,
    R: Body,
{
    type Output = Result<Response<ResumeBody<S, B>>, Error>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.inner.poll(cx))?;
        let (mut head, body) = response.into_parts();
        let body = match this.plan.take() {
            Some(plan) => ResumeBody::resumable(body, &mut head, plan),
            None => ResumeBody::plain(body),
        };
        Poll::Ready(Ok(Response::from_parts(head, body)))
    }
}

impl<S, B> fmt::Debug for ResumeFuture<S, B>
where
    S: Service<Request<ReplayBody<B>>>,
    S::Response: HttpResponse,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumeFuture")
            .field("resumable", &self.plan.is_some())
            .finish_non_exhaustive()
    }
}

/// The resumes of a response body, as they happen: in the extensions of a response whose
/// body may resume. Clone it before the body is read, and look at it after.
#[derive(Clone, Debug, Default)]
pub struct Resumes(Arc<Mutex<Vec<Resumed>>>);

/// One resume: the byte it started from, what broke the body before it, and the record of
/// the attempts of the request that resumed it.
#[derive(Clone, Debug)]
pub struct Resumed {
    offset: u64,
    cause: String,
    waited: Duration,
    record: Attempts,
}

impl Resumed {
    /// The first byte the resumed body carried: how many the caller had read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// What broke the body before it, as text.
    pub fn cause(&self) -> &str {
        &self.cause
    }

    /// The wait between the break and the request that resumed the body: the backoff.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// The attempts of the request that resumed the body, with their waits.
    pub fn record(&self) -> &Attempts {
        &self.record
    }
}

impl Resumes {
    /// The log of `response`'s resumes, when its body may resume.
    pub fn of<B>(response: &Response<B>) -> Option<Resumes> {
        response.extensions().get::<Resumes>().cloned()
    }

    /// The resumes so far, in order.
    pub fn list(&self) -> Vec<Resumed> {
        self.0.lock().expect("the log is never poisoned").clone()
    }

    fn push(&self, resumed: Resumed) {
        self.0
            .lock()
            .expect("the log is never poisoned")
            .push(resumed);
    }
}

/// Why a body that broke could not be resumed: the error it ends with.
#[derive(Debug)]
pub struct ResumeError {
    offset: u64,
    reason: Reason,
    /// What broke the body.
    cause: BoxError,
}

/// Why a resume did not happen or was not taken.
#[derive(Debug)]
#[non_exhaustive]
pub enum Reason {
    /// The answer was not the rest of the body.
    Rejected(Rejected),
    /// The request has no retries left.
    Exhausted,
    /// The retry budget refused.
    Budget,
    /// The wait before it would end after the request's deadline.
    Deadline,
    /// The request that resumes failed.
    Failed(Error),
}

impl ResumeError {
    /// How many bytes of the body the caller read before it broke.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Why it was not resumed.
    pub fn reason(&self) -> &Reason {
        &self.reason
    }
}

impl fmt::Display for ResumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the body broke after {} bytes and was not resumed: ",
            self.offset
        )?;
        match &self.reason {
            Reason::Rejected(rejected) => write!(f, "{rejected}"),
            Reason::Exhausted => f.write_str("no retries left"),
            Reason::Budget => f.write_str("the retry budget is spent"),
            Reason::Deadline => f.write_str("the deadline would pass"),
            Reason::Failed(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for ResumeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.reason {
            Reason::Failed(error) => Some(error),
            _ => Some(&*self.cause),
        }
    }
}

/// A response body that went too long without a byte: the
/// [stall](crate::resume::Resume::stall) of a resumed download passed.
#[derive(Debug)]
pub struct Stalled(pub(crate) Duration);

impl Stalled {
    /// How long the body went without a byte.
    pub fn after(&self) -> Duration {
        self.0
    }
}

impl fmt::Display for Stalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no byte of the body for {:?}", self.0)
    }
}

impl std::error::Error for Stalled {}
