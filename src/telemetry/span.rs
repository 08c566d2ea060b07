//! The spans of a request and of its attempts, and what the metrics are given when an
//! attempt or the request ends.

use http::request;
use tokio::time::Instant;
use tracing::Span;
use tracing::field::Empty;

use super::AttemptInfo;
use super::fields::{Ending, method_name, port_of};
use crate::policy::Outcome;
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
// than a call of `Option<EnteredSpan>`'s drop glue: 58 instructions a request without a
// subscriber, in `benches/instructions.rs` (`layer`).
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
            attempt: AttemptTrace::default(),
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
            None => AttemptTrace::default(),
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
        match &self.0 {
            Some(scope) => scope.attempt.entered(),
            None => Entered(None),
        }
    }

    /// The sequential attempt in flight, which has ended.
    #[inline]
    pub(crate) fn take_current(&mut self) -> Option<AttemptTrace> {
        self.0
            .as_mut()
            .map(|scope| std::mem::take(&mut scope.attempt))
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
    /// Enters the attempt's span, for as long as the guard lives.
    #[inline]
    pub(crate) fn entered(&self) -> Entered {
        Entered(
            self.0
                .as_ref()
                .map(|attempt| attempt.span.clone().entered()),
        )
    }

    /// The attempt of the request `head` ended with `outcome`, and what follows is
    /// `decision` (`retry`, `return`, or why the layer stops): its span says so and ends,
    /// and the metrics count it.
    #[cfg_attr(not(feature = "opentelemetry"), allow(unused_variables))]
    pub(crate) fn ended(
        self,
        head: &request::Parts,
        outcome: Outcome<'_>,
        decision: &'static str,
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
            span.record("retryable_http.decision", decision);
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
