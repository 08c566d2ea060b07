//! What the layer lets out: no secrets in logs, errors or `Debug` output.
//!
//! This file holds a single test: tracing caches per-callsite interest process-wide, and a
//! test without a subscriber running at the same time could hide events from this one.

mod support;

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use retryable_http::RetryLayer;
use retryable_http::backoff::Backoff;
use support::upstream::{Reply, Upstream};
use tower::{Layer, ServiceExt};
use tracing_subscriber::fmt::MakeWriter;

/// Everything the subscriber writes, kept for inspection.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Captures every event, down to trace, for as long as the guard lives.
fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

const SECRETS: [&str; 5] = [
    "hunter2",
    "s3cret-token",
    "Bearer",
    "abc.def.ghi",
    "cookie-value",
];

fn secret_request() -> Request<Full<Bytes>> {
    Request::post("http://admin:hunter2@upstream.test:8080/api/orders?token=s3cret-token")
        .header("authorization", "Bearer abc.def.ghi")
        .header("cookie", "session=cookie-value")
        .header("idempotency-key", "k")
        .body(Full::new(Bytes::from("{}")))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn logs_errors_and_debug_output_never_show_credentials_queries_or_header_values() {
    let (captured, _guard) = capture();

    // A response that is retried, then transport errors until retries run out.
    let upstream = Upstream::with_default(
        [Reply::status(503).header("retry-after", "1")],
        Reply::error(io::ErrorKind::ConnectionRefused),
    );
    let layer = RetryLayer::new()
        .max_retries(3)
        .backoff(Backoff::constant(Duration::from_millis(10)));
    let client = layer.layer(upstream.clone());
    let debug_layer = format!("{layer:?} {client:?}");
    let mut call = tokio_test::task::spawn(client.oneshot(secret_request()));
    let _ = call.poll();
    let debug_future = format!("{call:?}");
    let error = call.await.unwrap_err();
    assert_eq!(upstream.attempts(), 4);

    let logs = captured.text();
    assert!(logs.contains("retrying"), "nothing was logged: {logs}");
    assert!(logs.contains("upstream.test:8080/api/orders"), "{logs}");
    let outputs = [
        ("logs", logs),
        ("error", error.to_string()),
        ("error debug", format!("{error:?}")),
        ("layer debug", debug_layer),
        ("future debug", debug_future),
    ];
    for (what, text) in &outputs {
        for secret in SECRETS.iter().chain(&["token=", "admin:"]) {
            assert!(!text.contains(secret), "{what} shows {secret:?}: {text}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_success_is_logged_at_trace_and_a_failure_kept_at_debug() {
    let (captured, _guard) = capture();

    let upstream = Upstream::new([Reply::ok(), Reply::status(404)]);
    let client = RetryLayer::new().layer(upstream.clone());
    let get = || {
        Request::get("http://upstream.test/x")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    assert_eq!(client.clone().oneshot(get()).await.unwrap().status(), 200);
    assert_eq!(client.oneshot(get()).await.unwrap().status(), 404);

    let logs = captured.text();
    let lines: Vec<_> = logs
        .lines()
        .filter(|l| l.contains("attempt=1 status="))
        .collect();
    assert_eq!(lines.len(), 2, "{logs}");
    assert!(lines[0].contains("TRACE"), "{logs}");
    assert!(lines[0].ends_with("done attempt=1 status=200"), "{logs}");
    assert!(lines[1].contains("DEBUG"), "{logs}");
    assert!(
        lines[1].contains("not retrying attempt=1 status=404"),
        "{logs}"
    );
}
