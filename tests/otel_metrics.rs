//! The retry metrics, read back from `opentelemetry_sdk`'s in-memory exporter after a
//! scripted run on the paused clock: counts, sums and attributes.
#![cfg(feature = "opentelemetry")]

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use retryable_http::RetryLayer;
use retryable_http::backoff::Backoff;
use retryable_http::budget::Budget;
use retryable_http::hedge::Hedge;
use support::upstream::{Reply, Upstream};
use tower::{Layer, ServiceExt};

struct Meters {
    exporter: InMemoryMetricExporter,
    provider: SdkMeterProvider,
}

impl Meters {
    fn new() -> Self {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        Meters { exporter, provider }
    }

    fn read(&self) -> Vec<ResourceMetrics> {
        self.provider.force_flush().unwrap();
        self.exporter.get_finished_metrics().unwrap()
    }
}

/// One data point: its attributes, and its value (a sum) or its count and sum (a histogram).
#[derive(Debug, Clone, PartialEq)]
struct Point {
    attributes: Vec<KeyValue>,
    count: u64,
    sum: f64,
}

impl Point {
    fn get(&self, key: &str) -> Option<Value> {
        self.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    }
}

/// The points of instrument `name`, from the last export; a counter's value is its `sum`.
fn points(metrics: &[ResourceMetrics], name: &str) -> Vec<Point> {
    let Some(last) = metrics.last() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for scope in last.scope_metrics() {
        assert_eq!(scope.scope().name(), "retryable-http");
        for metric in scope.metrics().filter(|m| m.name() == name) {
            match metric.data() {
                AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                    out.extend(sum.data_points().map(|p| Point {
                        attributes: p.attributes().cloned().collect(),
                        count: 1,
                        sum: p.value() as f64,
                    }))
                }
                AggregatedMetrics::U64(MetricData::Histogram(h)) => {
                    out.extend(h.data_points().map(|p| Point {
                        attributes: p.attributes().cloned().collect(),
                        count: p.count(),
                        sum: p.sum() as f64,
                    }))
                }
                AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                    out.extend(h.data_points().map(|p| Point {
                        attributes: p.attributes().cloned().collect(),
                        count: p.count(),
                        sum: p.sum(),
                    }))
                }
                other => panic!("{name}: unexpected data {other:?}"),
            }
        }
    }
    out
}

fn one(metrics: &[ResourceMetrics], name: &str) -> Point {
    let points = points(metrics, name);
    assert_eq!(points.len(), 1, "{name}: {points:#?}");
    points[0].clone()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri).body(Full::new(Bytes::new())).unwrap()
}

/// A gRPC client's service config for `echo.Echo`: `attempts` attempts on UNAVAILABLE,
/// 0.1 s apart, with `more` (`, "retryThrottling": …`) in its root.
#[cfg(feature = "grpc")]
fn grpc_config(attempts: u32, more: &str) -> retryable_http::grpc::ServiceConfig {
    retryable_http::grpc::ServiceConfig::from_json(&format!(
        r#"{{"methodConfig": [{{"name": [{{"service": "echo.Echo"}}],
            "retryPolicy": {{"maxAttempts": {attempts}, "initialBackoff": "0.1s",
                            "maxBackoff": "0.1s", "backoffMultiplier": 1,
                            "retryableStatusCodes": ["UNAVAILABLE"]}}}}]{more}}}"#
    ))
    .unwrap()
}

/// A unary call of `echo.Echo/Say`, an empty message.
#[cfg(feature = "grpc")]
fn grpc_call() -> Request<Full<Bytes>> {
    Request::post("http://echo.test:50051/echo.Echo/Say")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(b"\0\0\0\0\0")))
        .unwrap()
}

/// A gRPC answer: OK in trailers, or a Trailers-Only `status`.
#[cfg(feature = "grpc")]
fn grpc_reply(status: Option<&str>) -> Reply {
    let reply = Reply::ok().header("content-type", "application/grpc");
    match status {
        Some(status) => reply.header("grpc-status", status),
        None => reply,
    }
}

#[tokio::test(start_paused = true)]
async fn a_scripted_run_gives_per_attempt_durations_and_envoy_and_a96_counts() {
    let meters = Meters::new();
    let ms = Duration::from_millis;
    let upstream = Upstream::new([
        // A request that succeeds on its third attempt.
        Reply::status(503).after(ms(50)),
        Reply::status(503).after(ms(50)),
        Reply::ok().after(ms(20)),
        // One whose retries run out.
        Reply::status(503),
        Reply::status(503),
        Reply::status(503),
    ]);
    let client = RetryLayer::new()
        .max_retries(2)
        .backoff(Backoff::constant(ms(100)))
        .metrics(&meters.provider)
        .layer(upstream.clone());
    let first = client
        .clone()
        .oneshot(get("http://api.test/items/1?key=k"))
        .await;
    assert_eq!(first.unwrap().status(), 200);
    let second = client.clone().oneshot(get("http://api.test/items/2")).await;
    assert_eq!(second.unwrap().status(), 503);
    // Not retried: counted nowhere but in the durations (and not as a retry's success).
    let missing = Upstream::new([Reply::status(404)]);
    let plain = RetryLayer::new()
        .metrics(&meters.provider)
        .layer(missing.clone());
    let fourth = plain.oneshot(get("http://api.test/missing")).await;
    assert_eq!(fourth.unwrap().status(), 404);

    // One whose retry the budget refuses: a budget with no reserve and no share.
    let refused = Upstream::new([Reply::status(503)]);
    let stingy = RetryLayer::new()
        .budget(Budget::new(Duration::from_secs(10), 0, 0.0).unwrap())
        .metrics(&meters.provider)
        .layer(refused.clone());
    let third = stingy.oneshot(get("http://other.test/")).await;
    assert_eq!(third.unwrap().status(), 503);
    assert_eq!(refused.attempts(), 1);

    let metrics = meters.read();

    // One duration per attempt, by status: 2 + 3 + 1 failed, 1 succeeded.
    let durations = points(&metrics, "http.client.request.duration");
    let ok = durations
        .iter()
        .find(|p| p.get("http.response.status_code") == Some(Value::I64(200)))
        .unwrap();
    assert_eq!(ok.count, 1);
    assert!(close(ok.sum, 0.02), "{ok:?}");
    assert_eq!(ok.get("error.type"), None);
    assert_eq!(ok.get("http.request.method"), Some("GET".into()));
    assert_eq!(ok.get("server.address"), Some("api.test".into()));
    assert_eq!(ok.get("server.port"), Some(Value::I64(80)));
    assert_eq!(ok.get("url.scheme"), Some("http".into()));
    let failed: Vec<_> = durations
        .iter()
        .filter(|p| p.get("error.type") == Some("503".into()))
        .collect();
    assert_eq!(failed.iter().map(|p| p.count).sum::<u64>(), 6);
    let api = failed
        .iter()
        .find(|p| p.get("server.address") == Some("api.test".into()))
        .unwrap();
    assert_eq!(api.count, 5);
    assert!(close(api.sum, 0.1), "two attempts of 50 ms: {api:?}");

    let missing = durations
        .iter()
        .find(|p| p.get("error.type") == Some("404".into()))
        .unwrap();
    assert_eq!(missing.count, 1);

    // Envoy's counters.
    let retries = one(&metrics, "retryable_http.upstream_rq_retry");
    assert_eq!(retries.sum, 4.0);
    assert_eq!(retries.get("retryable_http.reason"), Some("5xx".into()));
    assert_eq!(retries.get("server.address"), Some("api.test".into()));
    assert_eq!(
        one(&metrics, "retryable_http.upstream_rq_retry_success").sum,
        1.0
    );
    assert_eq!(
        one(&metrics, "retryable_http.upstream_rq_retry_limit_exceeded").sum,
        1.0
    );
    let overflow = one(&metrics, "retryable_http.upstream_rq_retry_overflow");
    assert_eq!(overflow.sum, 1.0);
    assert_eq!(overflow.get("retryable_http.reason"), Some("budget".into()));
    assert_eq!(overflow.get("server.address"), Some("other.test".into()));

    // gRFC A96's per-call histograms: two calls with two retries each, 200 ms of waits each.
    let calls = one(&metrics, "retryable_http.call.retries");
    assert_eq!((calls.count, calls.sum), (2, 4.0));
    let delay = one(&metrics, "retryable_http.call.retry_delay");
    assert_eq!(delay.count, 2);
    assert!(close(delay.sum, 0.4), "{delay:?}");
    assert!(points(&metrics, "retryable_http.call.hedges").is_empty());
    assert!(points(&metrics, "retryable_http.call.transparent_retries").is_empty());

    // No attribute carries a path or a query.
    for name in [
        "http.client.request.duration",
        "retryable_http.upstream_rq_retry",
        "retryable_http.call.retries",
    ] {
        for point in points(&metrics, name) {
            for kv in &point.attributes {
                let text = kv.value.to_string();
                assert!(!text.contains("items") && !text.contains("key"), "{kv:?}");
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_hedge_is_counted_apart_from_retries() {
    let meters = Meters::new();
    let upstream = Upstream::new([Reply::ok().after(Duration::from_secs(5)), Reply::ok()]);
    let client = RetryLayer::new()
        .hedge(Hedge::after(Duration::from_millis(100)))
        .metrics(&meters.provider)
        .layer(upstream.clone());
    let response = client.oneshot(get("http://api.test/")).await.unwrap();
    assert_eq!(response.status(), 200);

    let metrics = meters.read();
    let hedges = one(&metrics, "retryable_http.call.hedges");
    assert_eq!((hedges.count, hedges.sum), (1, 1.0));
    assert!(points(&metrics, "retryable_http.call.retries").is_empty());
    assert!(points(&metrics, "retryable_http.call.retry_delay").is_empty());
    assert!(points(&metrics, "retryable_http.upstream_rq_retry_success").is_empty());
    assert!(points(&metrics, "retryable_http.upstream_rq_retry").is_empty());
    // The winner's duration is recorded; the attempt it beat was dropped, unrecorded.
    let durations = points(&metrics, "http.client.request.duration");
    assert_eq!(durations.iter().map(|p| p.count).sum::<u64>(), 1);
}

#[cfg(feature = "grpc")]
#[tokio::test(start_paused = true)]
async fn a_grpc_call_is_counted_under_a96s_names() {
    let meters = Meters::new();
    let upstream = Upstream::with_default(
        [
            Reply::error(std::io::ErrorKind::ConnectionRefused),
            grpc_reply(Some("14")),
            grpc_reply(Some("14")),
        ],
        grpc_reply(None),
    );
    let client = RetryLayer::new()
        .grpc(grpc_config(4, ""))
        .jitter_seed(7)
        .metrics(&meters.provider)
        .layer(upstream.clone());
    let response = client.oneshot(grpc_call()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(upstream.attempts(), 4);

    let metrics = meters.read();
    let retries = one(&metrics, "grpc.client.call.retries");
    assert_eq!((retries.count, retries.sum), (1, 2.0));
    assert_eq!(retries.get("grpc.method"), Some("echo.Echo/Say".into()));
    assert_eq!(retries.get("grpc.target"), Some("echo.test:50051".into()));
    // The refused connection was retried at once, uncounted: a transparent retry.
    let transparent = one(&metrics, "grpc.client.call.transparent_retries");
    assert_eq!((transparent.count, transparent.sum), (1, 1.0));
    assert_eq!(
        one(&metrics, "retryable_http.upstream_rq_retry_success").sum,
        1.0
    );
    let delay = one(&metrics, "grpc.client.call.retry_delay");
    assert_eq!(delay.count, 1);
    assert!(
        delay.sum > 0.0 && delay.sum <= 0.2 * 1.2 + 1e-9,
        "{delay:?}"
    );
    assert!(points(&metrics, "retryable_http.call.retries").is_empty());
    let counted = points(&metrics, "retryable_http.upstream_rq_retry");
    let by = |reason: &str| {
        counted
            .iter()
            .find(|p| p.get("retryable_http.reason") == Some(reason.to_owned().into()))
            .map(|p| p.sum)
    };
    assert_eq!(by("UNAVAILABLE"), Some(2.0));
    assert_eq!(
        by("never_sent"),
        Some(1.0),
        "the transparent retry is a retry to Envoy"
    );
    // Each attempt's duration says how it ended: a gRPC status is its error type.
    let durations = points(&metrics, "http.client.request.duration");
    let failed = durations
        .iter()
        .find(|p| p.get("error.type") == Some("UNAVAILABLE".into()))
        .unwrap();
    assert_eq!(failed.count, 2);
}

#[tokio::test(start_paused = true)]
async fn a_retry_s_reason_is_a_status_class_or_an_error_class() {
    let meters = Meters::new();
    let upstream = Upstream::new([
        Reply::status(429),
        Reply::status(409),
        Reply::status(500),
        Reply::status(302),
        Reply::error(std::io::ErrorKind::ConnectionReset),
    ]);
    let client = RetryLayer::new()
        .max_retries(5)
        .no_budget()
        .backoff(Backoff::constant(Duration::from_millis(1)))
        .retry_if(|attempt| attempt.status() != Some(http::StatusCode::OK))
        .metrics(&meters.provider)
        .layer(upstream.clone());
    let response = client.oneshot(get("http://api.test/")).await.unwrap();
    assert_eq!(response.status(), 200);

    let metrics = meters.read();
    let mut reasons: Vec<(String, f64)> = points(&metrics, "retryable_http.upstream_rq_retry")
        .iter()
        .map(|p| (p.get("retryable_http.reason").unwrap().to_string(), p.sum))
        .collect();
    reasons.sort_by(|a, b| a.0.cmp(&b.0));
    let expected = [
        ("429", 1.0),
        ("4xx", 1.0),
        ("5xx", 1.0),
        ("maybe_processed", 1.0),
        ("other_status", 1.0),
    ];
    let expected: Vec<(String, f64)> = expected.iter().map(|(r, n)| (r.to_string(), *n)).collect();
    assert_eq!(reasons, expected);
}

#[cfg(feature = "grpc")]
#[tokio::test(start_paused = true)]
async fn a_retry_the_grpc_throttle_refuses_is_an_overflow() {
    let meters = Meters::new();
    let upstream = Upstream::always(grpc_reply(Some("14")));
    // Two tokens: the first failure leaves one, which is not above half.
    let throttling = r#", "retryThrottling": {"maxTokens": 2, "tokenRatio": 0.1}"#;
    let client = RetryLayer::new()
        .grpc(grpc_config(4, throttling))
        .metrics(&meters.provider)
        .layer(upstream.clone());
    client.oneshot(grpc_call()).await.unwrap();
    assert_eq!(upstream.attempts(), 1);

    let metrics = meters.read();
    let overflow = one(&metrics, "retryable_http.upstream_rq_retry_overflow");
    assert_eq!(overflow.sum, 1.0);
    assert_eq!(
        overflow.get("retryable_http.reason"),
        Some("throttled".into())
    );
}

#[cfg(feature = "grpc")]
#[tokio::test(start_paused = true)]
async fn a_call_saved_by_its_transparent_retry_alone_is_a_retry_s_success() {
    let meters = Meters::new();
    let upstream = Upstream::with_default(
        [Reply::error(std::io::ErrorKind::ConnectionRefused)],
        grpc_reply(None),
    );
    let client = RetryLayer::new()
        .grpc(grpc_config(2, ""))
        .metrics(&meters.provider)
        .layer(upstream.clone());
    assert_eq!(client.oneshot(grpc_call()).await.unwrap().status(), 200);

    let metrics = meters.read();
    assert!(points(&metrics, "grpc.client.call.retries").is_empty());
    let transparent = one(&metrics, "grpc.client.call.transparent_retries");
    assert_eq!((transparent.count, transparent.sum), (1, 1.0));
    assert_eq!(one(&metrics, "grpc.client.call.retry_delay").count, 1);
    assert_eq!(
        one(&metrics, "retryable_http.upstream_rq_retry_success").sum,
        1.0
    );
}
