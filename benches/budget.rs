//! The retry budget under contention: what its check costs per request when 32 tasks on the
//! multi-threaded runtime share one layer, sending to 16 hosts (two tasks each).
//!
//! ```text
//! cargo bench --bench budget
//! ```
//!
//! - `budget_first_attempt`: requests that succeed at once; the budget only takes a deposit.
//! - `budget_retry`: requests that fail once and are retried at once; the budget takes a
//!   deposit and a withdrawal (from a budget large enough never to refuse).
//!
//! Each group has `no_budget`, `budget` (one shared) and `per_destination` (one for each of
//! the 16 hosts), measured side by side in the same run.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use retryable_http::backoff::Backoff;
use retryable_http::budget::Budget;
use retryable_http::{RetryLayer, body::ReplayBody};
use tower::{Layer, ServiceExt, service_fn};

const TASKS: u64 = 32;
const HOSTS: u64 = 16;

/// Runs `iters` requests through `layer`, split over the tasks, and returns the wall time.
fn run(rt: &tokio::runtime::Runtime, layer: &RetryLayer, fail_first: bool, iters: u64) -> Duration {
    let calls = Arc::new(AtomicU64::new(0));
    let service = service_fn(move |_req: Request<ReplayBody<Full<Bytes>>>| {
        let n = calls.fetch_add(1, Ordering::Relaxed);
        async move {
            let mut response = Response::new(Full::new(Bytes::new()));
            // With `fail_first`, every other call fails: each request's first attempt.
            if fail_first && n % 2 == 0 {
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            }
            Ok::<_, Infallible>(response)
        }
    });
    let client = layer.layer(service);
    rt.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let client = client.clone();
                let url = format!("http://host-{}.bench.test/", task % HOSTS);
                tokio::spawn(async move {
                    for _ in 0..iters.div_ceil(TASKS) {
                        let request = Request::get(&url).body(Full::new(Bytes::new())).unwrap();
                        let response = client.clone().oneshot(request).await.unwrap();
                        std::hint::black_box(response);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        start.elapsed()
    })
}

fn layers() -> [(&'static str, RetryLayer); 3] {
    let base = RetryLayer::new()
        .max_retries(1)
        .backoff(Backoff::constant(Duration::ZERO));
    // A budget that never refuses: the benchmark measures its bookkeeping, not refusals.
    let huge = Budget::new(Duration::from_secs(10), 1_000_000, 10.0).unwrap();
    [
        ("no_budget", base.clone().no_budget()),
        ("budget", base.clone().budget(huge.clone())),
        ("per_destination", base.budget_per_destination(huge)),
    ]
}

fn budget(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    for (group, fail_first) in [("budget_first_attempt", false), ("budget_retry", true)] {
        let mut group = c.benchmark_group(group);
        for (name, layer) in layers() {
            group.bench_function(name, |b| {
                b.iter_custom(|iters| run(&rt, &layer, fail_first, iters))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, budget);
criterion_main!(benches);
