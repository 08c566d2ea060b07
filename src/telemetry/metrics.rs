//! Retry metrics, through the OpenTelemetry metrics API.

use std::time::Duration;

use http::request;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};

use super::fields::{Ending, method_name, port_of};
use crate::policy::StopReason;
use crate::record::{Attempts, Ended};

/// The bucket boundaries OpenTelemetry advises for `http.client.request.duration`, in
/// seconds; used for the retry delay too.
const SECONDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The bucket boundaries of the per-call counts, as gRFC A96 gives them.
const COUNTS: [f64; 5] = [1.0, 2.0, 3.0, 4.0, 5.0];

/// The instruments the layer records to.
pub(crate) struct Metrics {
    /// OpenTelemetry's `http.client.request.duration`, one value per attempt.
    duration: Histogram<f64>,
    /// Envoy's `upstream_rq_retry`, `…_success`, `…_limit_exceeded` and `…_overflow`.
    retry: Counter<u64>,
    retry_success: Counter<u64>,
    retry_limit_exceeded: Counter<u64>,
    retry_overflow: Counter<u64>,
    /// gRFC A96's per-call histograms, for HTTP requests under the crate's name.
    http_calls: Calls,
    /// The same, for gRPC calls under A96's own names.
    grpc_calls: Calls,
}

/// gRFC A96's per-call histograms.
struct Calls {
    retries: Histogram<u64>,
    transparent_retries: Histogram<u64>,
    hedges: Histogram<u64>,
    retry_delay: Histogram<f64>,
}

impl Calls {
    fn new(meter: &Meter, prefix: &'static str) -> Self {
        let name = |suffix: &str| format!("{prefix}.{suffix}");
        let count = |suffix: &str, description: &'static str| {
            meter
                .u64_histogram(name(suffix))
                .with_description(description)
                .with_unit("{attempt}")
                .with_boundaries(COUNTS.to_vec())
                .build()
        };
        Calls {
            retries: count(
                "retries",
                "Retries of a call that was retried, transparent retries and hedges apart",
            ),
            transparent_retries: count(
                "transparent_retries",
                "Transparent retries of a call: of attempts the server never processed",
            ),
            hedges: count("hedges", "Hedges a call started"),
            retry_delay: meter
                .f64_histogram(name("retry_delay"))
                .with_description("Time a retried call spent with no attempt in flight")
                .with_unit("s")
                .with_boundaries(SECONDS.to_vec())
                .build(),
        }
    }
}

impl Metrics {
    /// The instruments, made with `meter`.
    pub(crate) fn new(meter: &Meter) -> Self {
        let counter = |name: &'static str, description: &'static str| {
            meter
                .u64_counter(name)
                .with_description(description)
                .with_unit("{request}")
                .build()
        };
        Metrics {
            duration: meter
                .f64_histogram("http.client.request.duration")
                .with_description("Duration of HTTP client requests: one value per attempt")
                .with_unit("s")
                .with_boundaries(SECONDS.to_vec())
                .build(),
            retry: meter
                .u64_counter("retryable_http.upstream_rq_retry")
                .with_description("Retries made (Envoy's upstream_rq_retry), hedges apart")
                .with_unit("{retry}")
                .build(),
            retry_success: counter(
                "retryable_http.upstream_rq_retry_success",
                "Requests retried whose last outcome the policy accepted",
            ),
            retry_limit_exceeded: counter(
                "retryable_http.upstream_rq_retry_limit_exceeded",
                "Requests not retried again because their retries ran out",
            ),
            retry_overflow: counter(
                "retryable_http.upstream_rq_retry_overflow",
                "Requests not retried because the budget or the throttle refused",
            ),
            http_calls: Calls::new(meter, "retryable_http.call"),
            grpc_calls: Calls::new(meter, "grpc.client.call"),
        }
    }

    /// An attempt of the request `head` ended as `ending`, `elapsed` after it started.
    pub(crate) fn attempt_ended(&self, head: &request::Parts, ending: &Ending, elapsed: Duration) {
        let mut attributes = Vec::with_capacity(6);
        attributes.extend(base(head));
        if let Some(port) = port_of(&head.uri) {
            attributes.push(KeyValue::new("server.port", i64::from(port)));
        }
        if let Some(scheme) = head.uri.scheme_str() {
            attributes.push(KeyValue::new("url.scheme", scheme.to_owned()));
        }
        if let Some(status) = ending.status {
            attributes.push(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        if let Some(error) = ending.error_type {
            attributes.push(KeyValue::new("error.type", error.to_string()));
        }
        self.duration.record(elapsed.as_secs_f64(), &attributes);
    }

    /// The request `head` ended with `record`, the layer having stopped for `stop` when it
    /// did; `grpc` when it is a gRPC call.
    pub(crate) fn request_ended(
        &self,
        head: &request::Parts,
        record: &Attempts,
        stop: Option<StopReason>,
        grpc: bool,
    ) {
        let base = base(head);
        let (mut retries, mut transparent, mut delay) = (0, 0, Duration::ZERO);
        let mut previous = None;
        for entry in record.iter() {
            if let (Some(before), Some((wait, why)), false) =
                (previous, entry.waited(), entry.is_hedge())
            {
                delay = delay.saturating_add(wait);
                if why.is_transparent() {
                    transparent += 1;
                } else {
                    retries += 1;
                }
                self.retry.add(1, &with_reason(&base, reason_of(before)));
            }
            previous = Some(entry.ended());
        }
        let hedges = u64::from(record.hedges());
        match stop {
            Some(StopReason::Policy) if retries + transparent > 0 => {
                self.retry_success.add(1, &base)
            }
            Some(StopReason::Exhausted) => self.retry_limit_exceeded.add(1, &base),
            Some(reason @ StopReason::Budget) => self.overflow(&base, reason),
            #[cfg(feature = "grpc")]
            Some(reason @ StopReason::Throttled) => self.overflow(&base, reason),
            _ => {}
        }
        if record.attempts() == 1 {
            return;
        }
        let (calls, attributes) = if grpc {
            let method = head.uri.path().trim_start_matches('/').to_owned();
            let target = head
                .uri
                .authority()
                .map_or_else(String::new, |a| a.to_string());
            let attributes = [
                KeyValue::new("grpc.method", method),
                KeyValue::new("grpc.target", target),
            ];
            (&self.grpc_calls, attributes)
        } else {
            (&self.http_calls, base)
        };
        if retries > 0 {
            calls.retries.record(retries, &attributes);
        }
        if transparent > 0 {
            calls.transparent_retries.record(transparent, &attributes);
        }
        if hedges > 0 {
            calls.hedges.record(hedges, &attributes);
        }
        if retries + transparent > 0 {
            calls.retry_delay.record(delay.as_secs_f64(), &attributes);
        }
    }

    fn overflow(&self, base: &[KeyValue; 2], reason: StopReason) {
        self.retry_overflow
            .add(1, &with_reason(base, reason.name()));
    }
}

/// The attributes every instrument of an HTTP request carries: its method and its host.
fn base(head: &request::Parts) -> [KeyValue; 2] {
    let (method, _) = method_name(&head.method);
    let server = head.uri.host().unwrap_or_default().to_owned();
    [
        KeyValue::new("http.request.method", method),
        KeyValue::new("server.address", server),
    ]
}

/// `base`, and a reason.
fn with_reason(base: &[KeyValue; 2], reason: &'static str) -> [KeyValue; 3] {
    let [method, server] = base.clone();
    [
        method,
        server,
        KeyValue::new("retryable_http.reason", reason),
    ]
}

/// Why an attempt that ended as `ended` was retried, in few words: `429`, `5xx`, the error's
/// class, or the gRPC status.
fn reason_of(ended: Ended) -> &'static str {
    match ended {
        Ended::Status(status) if status.as_u16() == 429 => "429",
        Ended::Status(status) if status.is_server_error() => "5xx",
        Ended::Status(status) if status.is_client_error() => "4xx",
        Ended::Status(_) => "other_status",
        Ended::Error(class) => class.name(),
        #[cfg(feature = "grpc")]
        Ended::Grpc(code) => code.as_str(),
        Ended::Abandoned => "abandoned",
    }
}
