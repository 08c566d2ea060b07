//! Test support: a scripted in-memory upstream, test bodies, and real-socket servers.
#![allow(dead_code, unreachable_pub)]

pub mod bodies;
pub mod duplex;
pub mod files;
#[cfg(feature = "grpc")]
pub mod grpc;
pub mod h2;
pub mod hang;
pub mod nginx;
pub mod programs;
#[cfg(all(feature = "fault", feature = "proxy"))]
pub mod seed;
pub mod servers;
pub mod upstream;

use std::time::Duration;

/// A generous bound for real-socket tests: they check counts and outcomes, not timings.
pub const REAL_TIME_LIMIT: Duration = Duration::from_secs(20);

/// Runs `f` with a time limit, failing the test instead of hanging it.
pub async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(REAL_TIME_LIMIT, f)
        .await
        .expect("the test took longer than its time limit")
}

/// How many attempts the layer made for a response it returned.
pub fn attempts<B>(response: &http::Response<B>) -> u32 {
    retryable_http::Attempts::of(response).attempts()
}

/// A GET with an empty body to the scripted upstream's host.
pub fn get(path: &str) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    http::Request::get(format!("http://upstream.test{path}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap()
}
