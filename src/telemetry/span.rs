//! The spans of a request and of its attempts, and what the metrics are given when an
//! attempt or the request ends.

use std::error::Error as StdError;
use std::io;

use http::{Method, request};
use tokio::time::Instant;
use tracing::Span;
use tracing::field::Empty;

use super::AttemptInfo;
use crate::classify::{ErrorClass, classify};
use crate::decide::Decision;
use crate::error::AttemptTimedOut;
use crate::policy::{Outcome, StopReason};
use crate::redact::Redacted;

#[cfg(feature = "opentelemetry")]
use super::metrics::Metrics;
/// Stands in for the metrics without the `opentelemetry` feature: there are none.
#[cfg(not(feature = "opentelemetry"))]
pub(crate) enum Metrics {}

/// What a request shows: nothing, unless a subscriber wants spans or the layer has metrics.
/// Boxed, so that a request that shows nothing carries a null pointer.
pub(crate) struct Telemetry(Option<Box<Scope>>);

struct Scope {
    /// The request's own span, `retry`.
    request: Span,
    /// Where the attempts' spans go: the span current when the request was made, or the
    /// request's own.
    parent: Span,
    /// The attempt in flight, when the attempts are sequential.
    attempt: AttemptTrace,
    /// Whether attempts are timed, for the metrics.
    timed: bool,
}

/// A span entered, until this is dropped; nothing when the request shows nothing.
// NOTE: a type of its own, so that dropping it when it holds nothing is a test inline rather
// than a call of `Option<EnteredSpan>`'s drop glue.
pub(crate) struct Entered(Option<tracing::span::EnteredSpan>);

impl Drop for Entered {
    #[inline]
    fn drop(&mut self) {
        if let Some(entered) = self.0.take() {
            drop(entered);
        }
    }
}

/// One attempt: its span, and when it started if the metrics time it; nothing, and a null
/// pointer to move around, when the request shows nothing.
#[derive(Default)]
pub(crate) struct AttemptTrace(Option<Box<Attempt>>);

struct Attempt {
    span: Span,
    started: Option<Instant>,
}

impl Telemetry {
    /// What the request `head` shows: spans when a subscriber may want them, and the
    /// attempts timed when there are `metrics`.
    #[inline]
    pub(crate) fn start(head: &request::Parts, metrics: Option<&Metrics>) -> Self {
        let timed = metrics.is_some();
        if !timed && !tracing::level_enabled!(tracing::Level::INFO) {
            return Telemetry(None);
        }
        Self::start_slow(head, timed)
    }

    #[inline(never)]
    fn start_slow(head: &request::Parts, timed: bool) -> Self {
        let request = tracing::debug_span!(
            "retry",
            method = %head.method,
            url = %Redacted(&head.uri),
        );
        let current = Span::current();
        let parent = if current.id().is_some() {
            current
        } else {
            request.clone()
        };
        Telemetry(Some(Box::new(Scope {
            request,
            parent,
            attempt: AttemptTrace::none(),
            timed,
        })))
    }

    /// Enters the request's span, for as long as the guard lives, which borrows nothing.
    #[inline]
    pub(crate) fn entered(&self) -> Entered {
        Entered(self.0.as_ref().map(|scope| scope.request.clone().entered()))
    }

    /// The span and the start of attempt `info` of the request `head`, which starts now.
    #[inline]
    pub(crate) fn open(&self, head: &request::Parts, info: &AttemptInfo) -> AttemptTrace {
        match &self.0 {
            None => AttemptTrace::none(),
            Some(scope) => scope.open(head, info),
        }
    }

    /// Makes `trace` the sequential attempt in flight.
    #[inline]
    pub(crate) fn set_current(&mut self, trace: AttemptTrace) {
        if let Some(scope) = &mut self.0 {
            scope.attempt = trace;
        }
    }

    /// Enters the span of the sequential attempt in flight, for as long as the guard lives,
    /// which borrows nothing.
    #[inline]
    pub(crate) fn entered_attempt(&self) -> Entered {
        let attempt = self.0.as_ref().and_then(|scope| scope.attempt.0.as_ref());
        Entered(attempt.map(|attempt| attempt.span.clone().entered()))
    }

    /// The sequential attempt in flight, which has ended.
    #[inline]
    pub(crate) fn take_current(&mut self) -> Option<AttemptTrace> {
        self.0
            .as_mut()
            .map(|scope| std::mem::take(&mut scope.attempt))
    }

    /// Whether anything is shown.
    #[inline]
    pub(crate) fn is_on(&self) -> bool {
        self.0.is_some()
    }
}

impl Scope {
    #[inline(never)]
    fn open(&self, head: &request::Parts, info: &AttemptInfo) -> AttemptTrace {
        let started = self.timed.then(Instant::now);
        let (method, original) = method_name(&head.method);
        let host = head.uri.host().unwrap_or_default();
        // Integers as `i64`: that is what OpenTelemetry's attributes hold.
        let port = port_of(&head.uri).map(i64::from);
        let span = tracing::info_span!(
            target: "retryable_http::attempt",
            parent: &self.parent,
            "attempt",
            otel.name = method,
            otel.kind = "client",
            otel.status_code = Empty,
            http.request.method = method,
            http.request.method_original = original,
            url.full = %Redacted(&head.uri),
            server.address = host,
            server.port = port,
            http.request.resend_count = Empty,
            http.response.status_code = Empty,
            "error.type" = Empty,
            rpc.grpc.status_code = Empty,
            retryable_http.attempt = i64::from(info.number()),
            retryable_http.hedge = Empty,
            retryable_http.transparent = Empty,
            retryable_http.wait = Empty,
            retryable_http.wait_reason = Empty,
            retryable_http.decision = Empty,
        );
        if !span.is_disabled() && info.number() > 1 {
            span.record("http.request.resend_count", i64::from(info.resend_count()));
            if info.is_hedge() {
                span.record("retryable_http.hedge", true);
            }
            if info.is_transparent() {
                span.record("retryable_http.transparent", true);
            }
            if let Some((wait, why)) = info.waited() {
                span.record("retryable_http.wait", wait.as_secs_f64());
                span.record("retryable_http.wait_reason", why.name());
            }
        }
        AttemptTrace(Some(Box::new(Attempt { span, started })))
    }
}

impl AttemptTrace {
    /// An attempt that shows nothing.
    #[inline]
    pub(crate) fn none() -> Self {
        AttemptTrace(None)
    }

    /// Enters the attempt's span, for as long as the guard lives.
    #[inline]
    pub(crate) fn entered(&self) -> Entered {
        Entered(
            self.0
                .as_ref()
                .map(|attempt| attempt.span.clone().entered()),
        )
    }

    /// The attempt of the request `head` ended with `outcome`, and `decision` follows: its
    /// span says so and ends, and the metrics count it.
    #[cfg_attr(not(feature = "opentelemetry"), allow(unused_variables))]
    pub(crate) fn ended(
        self,
        head: &request::Parts,
        outcome: Outcome<'_>,
        decision: &Decision,
        metrics: Option<&Metrics>,
    ) {
        let Some(attempt) = self.0 else {
            return;
        };
        let Attempt { span, started } = *attempt;
        if span.is_disabled() && started.is_none() {
            return;
        }
        let ending = Ending::of(outcome);
        if !span.is_disabled() {
            if let Some(status) = ending.status {
                span.record("http.response.status_code", i64::from(status));
            }
            #[cfg(feature = "grpc")]
            if let Some(code) = ending.grpc {
                span.record("rpc.grpc.status_code", code as i64);
            }
            if let Some(error) = ending.error_type {
                span.record("error.type", tracing::field::display(error));
                span.record("otel.status_code", "error");
            }
            span.record("retryable_http.decision", decision_name(decision));
        }
        #[cfg(feature = "opentelemetry")]
        if let (Some(metrics), Some(started)) = (metrics, started) {
            metrics.attempt_ended(head, &ending, started.elapsed());
        }
    }

    /// The attempt was dropped before it ended: a hedge that lost, or an attempt cut off by
    /// the deadline.
    pub(crate) fn abandoned(self) {
        if let Some(attempt) = self.0.filter(|a| !a.span.is_disabled()) {
            attempt.span.record("error.type", "cancelled");
            attempt.span.record("retryable_http.decision", "abandoned");
        }
    }
}

/// What the span and the metrics say of how an attempt ended.
pub(crate) struct Ending {
    /// The response's status, if there was one.
    pub(crate) status: Option<u16>,
    /// The gRPC status a Trailers-Only response carries.
    #[cfg(feature = "grpc")]
    pub(crate) grpc: Option<crate::grpc_code::Code>,
    /// OpenTelemetry's `error.type`, when the attempt failed.
    pub(crate) error_type: Option<ErrorType>,
}

/// OpenTelemetry's `error.type`: a status code, or a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorType {
    /// A 4xx or 5xx status.
    Status(u16),
    /// A gRPC status, or a transport error's low-cardinality name.
    Name(&'static str),
}

impl std::fmt::Display for ErrorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorType::Status(status) => write!(f, "{status}"),
            ErrorType::Name(name) => f.write_str(name),
        }
    }
}

impl Ending {
    fn of(outcome: Outcome<'_>) -> Self {
        match outcome {
            Outcome::Response(head) => {
                #[cfg(feature = "grpc")]
                let grpc = crate::grpc_code::status_in_headers(&head.headers);
                #[cfg(feature = "grpc")]
                if let Some(code) = grpc.filter(|c| *c != crate::grpc_code::Code::Ok) {
                    return Ending {
                        status: Some(head.status.as_u16()),
                        grpc,
                        error_type: Some(ErrorType::Name(code.as_str())),
                    };
                }
                let status = head.status.as_u16();
                Ending {
                    status: Some(status),
                    #[cfg(feature = "grpc")]
                    grpc,
                    error_type: (status >= 400).then_some(ErrorType::Status(status)),
                }
            }
            Outcome::Error(error) => Ending {
                status: None,
                #[cfg(feature = "grpc")]
                grpc: None,
                error_type: Some(ErrorType::Name(error_type(error))),
            },
        }
    }
}

/// The method as OpenTelemetry names it, and the method itself when that is `_OTHER`.
pub(crate) fn method_name(method: &Method) -> (&'static str, Option<&str>) {
    let known = match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => return ("_OTHER", Some(method.as_str())),
    };
    (known, None)
}

/// The port `uri` goes to: its own, or its scheme's.
pub(crate) fn port_of(uri: &http::Uri) -> Option<u16> {
    uri.port_u16().or(match uri.scheme_str() {
        Some("https") | Some("wss") => Some(443),
        Some("http") | Some("ws") => Some(80),
        _ => None,
    })
}

/// A low-cardinality name of a transport error, for `error.type`: an attempt timeout, the
/// kind of an I/O error in the chain, or what [`classify`] says of it.
pub(crate) fn error_type(error: &(dyn StdError + 'static)) -> &'static str {
    let mut next: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = next {
        if e.is::<AttemptTimedOut>() || e.is::<tokio::time::error::Elapsed>() {
            return "timeout";
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if let Some(name) = io_kind_name(io.kind()) {
                return name;
            }
        }
        next = e.source();
    }
    match classify(error) {
        ErrorClass::NeverSent => "never_sent",
        ErrorClass::MaybeProcessed => "maybe_processed",
        ErrorClass::Permanent => "permanent",
    }
}

fn io_kind_name(kind: io::ErrorKind) -> Option<&'static str> {
    use io::ErrorKind::*;
    Some(match kind {
        ConnectionRefused => "connection_refused",
        ConnectionReset => "connection_reset",
        ConnectionAborted => "connection_aborted",
        NotConnected => "not_connected",
        BrokenPipe => "broken_pipe",
        TimedOut => "timeout",
        UnexpectedEof => "unexpected_eof",
        AddrNotAvailable => "address_not_available",
        _ => return None,
    })
}

/// What followed an attempt, as the span's `retryable_http.decision` says it.
pub(crate) fn decision_name(decision: &Decision) -> &'static str {
    match decision {
        Decision::Retry { .. } => "retry",
        Decision::Stop(StopReason::Policy) => "return",
        Decision::Stop(reason) => reason.name(),
    }
}
