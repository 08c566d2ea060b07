//! The layer's events for a gRPC call name each attempt's gRPC status. One test alone in its
//! binary: tracing caches per-callsite interest process-wide, and a test without a
//! subscriber running at the same time could hide events from this one.
#![cfg(feature = "grpc")]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use retryable_http::RetryLayer;
use retryable_http::body::ReplayBody;
use retryable_http::grpc::ServiceConfig;
use tower::{Layer, ServiceExt, service_fn};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[tokio::test(start_paused = true)]
async fn a_retried_call_s_events_name_its_grpc_status() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // UNAVAILABLE in a Trailers-Only response, then a response that commits.
    let calls = Arc::new(AtomicU32::new(0));
    let server = service_fn(move |_: Request<ReplayBody<Full<Bytes>>>| {
        let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            let mut response = Response::builder().header("content-type", "application/grpc");
            if first {
                response = response.header("grpc-status", "14");
            }
            Ok::<_, std::convert::Infallible>(response.body(Full::new(Bytes::new())).unwrap())
        }
    });
    let config = ServiceConfig::from_json(
        r#"{"methodConfig": [{"name": [{}], "retryPolicy": {"maxAttempts": 2,
            "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
    )
    .unwrap();
    let request = Request::post("http://echo.test/echo.Echo/Say")
        .header("content-type", "application/grpc")
        .body(Full::new(Bytes::from_static(b"\0\0\0\0\0")))
        .unwrap();
    let response = RetryLayer::new()
        .grpc(config)
        .layer(server)
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let retrying = text.lines().find(|l| l.contains("retrying")).unwrap();
    assert!(retrying.contains("grpc_status=\"UNAVAILABLE\""), "{text}");
    assert!(retrying.contains("wait_from=backoff"), "{text}");
}
