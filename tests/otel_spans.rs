//! Every attempt as OpenTelemetry sees it: the layer's `tracing` spans, exported through
//! `tracing-opentelemetry` into `opentelemetry_sdk`'s in-memory exporter, and the
//! `AttemptInfo` each attempt's request carries.
//!
//! Every test here installs a subscriber of its own: tracing caches per-callsite interest
//! process-wide, and a test without one could hide spans from another.

mod support;

use std::io;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::Full;
use opentelemetry::Value;
use opentelemetry::propagation::{Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, TracerProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use retryable_http::RetryLayer;
use retryable_http::backoff::Backoff;
use retryable_http::hedge::Hedge;
use retryable_http::record::WaitReason;
use retryable_http::telemetry::AttemptInfo;
use support::upstream::{Reply, Upstream};
use tower::{Layer, ServiceBuilder, ServiceExt};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

/// An OpenTelemetry pipeline into memory, installed for as long as the guard lives.
struct Otel {
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Otel {
    fn install() -> Self {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        let subscriber = tracing_subscriber::registry().with(layer);
        let guard = tracing::subscriber::set_default(subscriber);
        Otel {
            exporter,
            provider,
            _guard: guard,
        }
    }

    /// Every span that ended, in the order they ended.
    fn spans(&self) -> Vec<SpanData> {
        self.provider.force_flush().unwrap();
        self.exporter.get_finished_spans().unwrap()
    }

    /// The CLIENT spans, in the order they started.
    fn attempts(&self) -> Vec<SpanData> {
        let mut spans: Vec<_> = self
            .spans()
            .into_iter()
            .filter(|s| s.span_kind == SpanKind::Client)
            .collect();
        spans.sort_by_key(|s| s.start_time);
        spans
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri).body(Full::new(Bytes::new())).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_request_that_succeeds_on_its_third_attempt_shows_three_sibling_client_spans() {
    let otel = Otel::install();
    let upstream = Upstream::new([
        Reply::status(503),
        Reply::status(502).header("retry-after", "2"),
    ]);
    let client = RetryLayer::new()
        .backoff(Backoff::constant(Duration::from_millis(100)))
        .layer(upstream.clone());

    let caller = tracing::info_span!("caller");
    let caller_id = caller.context().span().span_context().span_id();
    let response = client
        .oneshot(get("http://user:pw@api.test:8443/v1/items?token=secret"))
        .instrument(caller)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let attempts = otel.attempts();
    assert_eq!(attempts.len(), 3, "{attempts:#?}");
    for span in &attempts {
        assert_eq!(
            span.parent_span_id, caller_id,
            "each attempt is the caller's child"
        );
        assert_eq!(span.name, "GET");
        assert_eq!(attribute(span, "http.request.method"), Some("GET".into()));
        assert_eq!(
            attribute(span, "url.full"),
            Some("http://api.test:8443/v1/items".into()),
            "no userinfo, no query"
        );
        assert_eq!(attribute(span, "server.address"), Some("api.test".into()));
        assert_eq!(attribute(span, "server.port"), Some(Value::I64(8443)));
    }
    let resend: Vec<_> = attempts
        .iter()
        .map(|s| attribute(s, "http.request.resend_count"))
        .collect();
    assert_eq!(resend, [None, Some(Value::I64(1)), Some(Value::I64(2))]);
    let status: Vec<_> = attempts
        .iter()
        .map(|s| attribute(s, "http.response.status_code"))
        .collect();
    assert_eq!(
        status,
        [
            Some(Value::I64(503)),
            Some(Value::I64(502)),
            Some(Value::I64(200))
        ]
    );
    let errors: Vec<_> = attempts
        .iter()
        .map(|s| attribute(s, "error.type"))
        .collect();
    assert_eq!(errors, [Some("503".into()), Some("502".into()), None]);
    assert!(matches!(attempts[0].status, Status::Error { .. }));
    assert_eq!(attempts[2].status, Status::Unset);
    let decisions: Vec<_> = attempts
        .iter()
        .map(|s| attribute(s, "retryable_http.decision"))
        .collect();
    assert_eq!(
        decisions,
        [
            Some("retry".into()),
            Some("retry".into()),
            Some("return".into())
        ]
    );
    // The wait before each retry, and why.
    assert_eq!(
        attribute(&attempts[1], "retryable_http.wait"),
        Some(Value::F64(0.1))
    );
    assert_eq!(
        attribute(&attempts[1], "retryable_http.wait_reason"),
        Some("backoff".into())
    );
    assert_eq!(
        attribute(&attempts[2], "retryable_http.wait"),
        Some(Value::F64(2.0))
    );
    assert_eq!(
        attribute(&attempts[2], "retryable_http.wait_reason"),
        Some("retry_after".into())
    );
    // The attempts follow one another: each ends before the next starts.
    assert!(attempts[0].end_time <= attempts[1].start_time);
    assert!(attempts[1].end_time <= attempts[2].start_time);

    // The waits and decisions are events of the request's own span, not of the attempts'.
    let spans = otel.spans();
    let retry = spans.iter().find(|s| s.name == "retry").unwrap();
    assert_eq!(retry.parent_span_id, caller_id);
    assert_eq!(retry.span_kind, SpanKind::Internal);
    let events: Vec<_> = retry.events.iter().map(|e| e.name.to_string()).collect();
    assert_eq!(
        events.iter().filter(|e| *e == "retrying").count(),
        2,
        "{events:?}"
    );
    for span in &attempts {
        assert!(span.events.is_empty(), "{:?}", span.events);
    }
}

#[tokio::test(start_paused = true)]
async fn without_a_span_of_the_caller_the_attempts_are_children_of_the_request_span() {
    let otel = Otel::install();
    let upstream = Upstream::new([Reply::error(io::ErrorKind::ConnectionRefused)]);
    let client = RetryLayer::new()
        .backoff(Backoff::constant(Duration::from_millis(10)))
        .layer(upstream.clone());
    client.oneshot(get("https://api.test/")).await.unwrap();

    let spans = otel.spans();
    let retry = spans.iter().find(|s| s.name == "retry").unwrap();
    let attempts = otel.attempts();
    assert_eq!(attempts.len(), 2);
    for span in &attempts {
        assert_eq!(span.parent_span_id, retry.span_context.span_id());
        assert_eq!(span.span_context.trace_id(), retry.span_context.trace_id());
        assert_eq!(attribute(span, "server.port"), Some(Value::I64(443)));
    }
    assert_eq!(
        attribute(&attempts[0], "error.type"),
        Some("connection_refused".into())
    );
    assert_eq!(attribute(&attempts[0], "http.response.status_code"), None);
    assert_eq!(
        attribute(&attempts[1], "retryable_http.transparent"),
        Some(Value::Bool(true)),
        "a refused connection was never processed"
    );
}

/// Puts a `traceparent` into request headers.
struct Headers<'a>(&'a mut HeaderMap);

impl Injector for Headers<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(
            http::HeaderName::from_bytes(key.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_propagation_layer_inside_the_retry_layer_gives_each_attempt_its_own_traceparent() {
    let otel = Otel::install();
    let upstream = Upstream::new([Reply::status(503), Reply::status(503)]);
    // Inside the retry layer, the current span is the attempt's.
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new().backoff(Backoff::constant(Duration::from_millis(10))))
        .map_request(|mut request: Request<_>| {
            let context = tracing::Span::current().context();
            TraceContextPropagator::new()
                .inject_context(&context, &mut Headers(request.headers_mut()));
            request
        })
        .service(upstream.clone());
    client
        .oneshot(get("http://api.test/"))
        .instrument(tracing::info_span!("caller"))
        .await
        .unwrap();

    let attempts = otel.attempts();
    let sent: Vec<String> = upstream
        .seen()
        .iter()
        .map(|s| s.headers["traceparent"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent.len(), 3);
    for (traceparent, span) in sent.iter().zip(&attempts) {
        // version-traceid-spanid-flags: the attempt's own span is the parent upstream.
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts[1], span.span_context.trace_id().to_string());
        assert_eq!(parts[2], span.span_context.span_id().to_string());
    }
    let ids: std::collections::HashSet<_> = sent.iter().collect();
    assert_eq!(ids.len(), 3, "each attempt has its own: {sent:?}");
}

#[tokio::test(start_paused = true)]
async fn every_attempt_after_the_first_carries_what_it_is() {
    let _otel = Otel::install();
    let upstream = Upstream::new([
        Reply::status(503).header("retry-after", "1"),
        Reply::error(io::ErrorKind::ConnectionRefused),
        Reply::status(500),
    ]);
    let client = RetryLayer::new()
        .backoff(Backoff::constant(Duration::from_millis(10)))
        .layer(upstream.clone());
    client.oneshot(get("http://api.test/")).await.unwrap();

    let seen: Vec<AttemptInfo> = upstream.seen().iter().map(|s| s.attempt).collect();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[0], AttemptInfo::FIRST);
    let numbers: Vec<_> = seen
        .iter()
        .map(|a| (a.number(), a.resend_count()))
        .collect();
    assert_eq!(numbers, [(1, 0), (2, 1), (3, 2), (4, 3)]);
    assert_eq!(
        seen[1].waited(),
        Some((Duration::from_secs(1), WaitReason::RetryAfter))
    );
    assert!(!seen[1].is_transparent());
    assert!(seen[2].waited().is_some());
    assert!(seen[2].is_transparent(), "after a refused connection");
    assert!(!seen[3].is_transparent());
    assert!(seen.iter().all(|a| !a.is_hedge()));
}

#[tokio::test(start_paused = true)]
async fn a_hedge_is_marked_and_the_attempt_it_beat_ends_as_cancelled() {
    let otel = Otel::install();
    let upstream = Upstream::new([Reply::ok().after(Duration::from_secs(5)), Reply::ok()]);
    let client = RetryLayer::new()
        .hedge(Hedge::after(Duration::from_millis(100)))
        .layer(upstream.clone());
    let response = client.oneshot(get("http://api.test/")).await.unwrap();
    assert_eq!(response.status(), 200);

    let seen: Vec<AttemptInfo> = upstream.seen().iter().map(|s| s.attempt).collect();
    assert_eq!(seen.len(), 2);
    assert!(seen[1].is_hedge());
    assert_eq!(
        seen[1].waited(),
        Some((Duration::from_millis(100), WaitReason::Hedge))
    );

    let attempts = otel.attempts();
    assert_eq!(attempts.len(), 2);
    assert_eq!(
        attribute(&attempts[1], "retryable_http.hedge"),
        Some(Value::Bool(true))
    );
    assert_eq!(
        attribute(&attempts[1], "retryable_http.decision"),
        Some("return".into())
    );
    assert_eq!(
        attribute(&attempts[0], "error.type"),
        Some("cancelled".into())
    );
    assert_eq!(
        attribute(&attempts[0], "retryable_http.decision"),
        Some("abandoned".into())
    );
}
