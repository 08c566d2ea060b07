//! Test support: a scripted in-memory upstream, test bodies, and real-socket servers.
#![allow(dead_code, unreachable_pub)]

pub mod bodies;
pub mod duplex;
pub mod hang;
pub mod programs;
#[cfg(feature = "fault")]
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
