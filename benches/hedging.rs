//! Tail latency with and without hedging, on loopback.
//!
//! ```text
//! cargo bench --bench hedging
//! ```
//!
//! The server answers in about 1 ms, except that a seeded 2 % of the requests it receives
//! take 200 ms. 16 workers send requests through each variant, in interleaved blocks so
//! that drift on a shared machine hits every variant alike:
//!
//! - `no hedging`: the layer with its defaults;
//! - `hedge 10 ms`: the layer with `Hedge::after(10 ms)` (two attempts at most);
//! - `tower hedge`: tower's `hedge` as a peer, hedging past the 90th percentile of recent
//!   latencies, which it measures itself.
//!
//! It prints p50, p99 and p99.9 latency, and the attempts the server received per request,
//! and writes a latency histogram to `target/hedging-latency.svg`.

#![allow(missing_docs)]

#[path = "support/mod.rs"]
mod support;
#[path = "support/svg.rs"]
mod svg;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use retryable_http::{RetryLayer, hedge::Hedge};
use support::{bare_client, replay_client};
use tower::{Layer, Service, ServiceExt};

/// Requests per variant: `ROUNDS` blocks of `BLOCK`.
const ROUNDS: usize = 10;
const BLOCK: usize = 1000;
const WORKERS: usize = 16;
/// The share of requests the server holds up, in basis points, and for how long.
const SLOW_BP: u64 = 200;
const SLOW: Duration = Duration::from_millis(200);
const FAST: Duration = Duration::from_millis(1);
const HEDGE_AFTER: Duration = Duration::from_millis(10);
const SEED: u64 = 0x5eed;

/// The requests the server received, and how many of them it held up.
#[derive(Default)]
struct Counts {
    received: AtomicU64,
    slow: AtomicU64,
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// An HTTP/1.1 server on a thread of its own: 1 ms per request, 200 ms for a seeded 2 %.
fn server(counts: Arc<Counts>) -> SocketAddr {
    support::server_with_latency(Arc::new(move || {
        let n = counts.received.fetch_add(1, Ordering::Relaxed);
        let slow = splitmix64(SEED ^ n) % 10_000 < SLOW_BP;
        if slow {
            counts.slow.fetch_add(1, Ordering::Relaxed);
        }
        if slow { SLOW } else { FAST }
    }))
}

/// tower's hedge policy: every request may be hedged, cloned up front.
#[derive(Clone)]
struct CloneAll;

impl tower::hedge::Policy<Request<Full<Bytes>>> for CloneAll {
    fn clone_request(&self, req: &Request<Full<Bytes>>) -> Option<Request<Full<Bytes>>> {
        let mut clone = Request::new(req.body().clone());
        *clone.method_mut() = req.method().clone();
        *clone.uri_mut() = req.uri().clone();
        *clone.headers_mut() = req.headers().clone();
        Some(clone)
    }

    fn can_retry(&self, _req: &Request<Full<Bytes>>) -> bool {
        true
    }
}

/// One variant's latencies and the server's count of the requests it received.
struct Run {
    name: &'static str,
    latencies: Vec<Duration>,
    received: u64,
    slow: u64,
}

/// Sends `BLOCK` requests through `service`, `WORKERS` at a time; returns each latency.
async fn block<S>(service: S, url: &'static str) -> Vec<Duration>
where
    S: Service<Request<Full<Bytes>>, Response = Response<hyper::body::Incoming>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    S::Error: std::fmt::Debug,
{
    let mut set = tokio::task::JoinSet::new();
    for w in 0..WORKERS {
        let service = service.clone();
        set.spawn(async move {
            let mut latencies = Vec::new();
            for _ in (w..BLOCK).step_by(WORKERS) {
                let request = Request::get(url).body(Full::new(Bytes::new())).unwrap();
                let start = Instant::now();
                let response = service.clone().oneshot(request).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                let _ = response.into_body().collect().await.unwrap();
                latencies.push(start.elapsed());
            }
            latencies
        });
    }
    let mut all = Vec::with_capacity(BLOCK);
    while let Some(done) = set.join_next().await {
        all.extend(done.unwrap());
    }
    all
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let counts = Arc::new(Counts::default());
    let url: &'static str =
        Box::leak(format!("http://{}/", server(counts.clone())).into_boxed_str());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();

    let plain = RetryLayer::new().layer(replay_client());
    let hedged = RetryLayer::new()
        .hedge(Hedge::after(HEDGE_AFTER))
        .layer(replay_client());
    // tower's hedge is not `Clone`: a buffer shares it between the workers.
    let tower_hedge = tower::buffer::Buffer::new(
        tower::hedge::Hedge::new(
            tower::util::MapErr::new(bare_client(), Into::<tower::BoxError>::into),
            CloneAll,
            100,
            0.9,
            Duration::from_secs(10),
        ),
        1024,
    );

    type Send = Box<dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = Vec<Duration>>>>>;
    let variants: Vec<(&'static str, Send)> = vec![
        (
            "no hedging",
            Box::new(move || Box::pin(block(plain.clone(), url))),
        ),
        (
            "hedge 10 ms",
            Box::new(move || Box::pin(block(hedged.clone(), url))),
        ),
        (
            "tower hedge",
            Box::new(move || Box::pin(block(tower_hedge.clone(), url))),
        ),
    ];

    // Warm-up: connections made, tower's histogram filled.
    for (_, send) in &variants {
        rt.block_on(send());
    }
    let mut runs: Vec<Run> = variants
        .iter()
        .map(|(name, _)| Run {
            name,
            latencies: Vec::new(),
            received: 0,
            slow: 0,
        })
        .collect();
    for round in 0..ROUNDS {
        for k in 0..variants.len() {
            let i = (round + k) % variants.len();
            let (received, slow) = (
                counts.received.load(Ordering::Relaxed),
                counts.slow.load(Ordering::Relaxed),
            );
            let latencies = rt.block_on(variants[i].1());
            // Losers still in flight reach the server a moment later.
            rt.block_on(tokio::time::sleep(SLOW + Duration::from_millis(50)));
            runs[i].latencies.extend(latencies);
            runs[i].received += counts.received.load(Ordering::Relaxed) - received;
            runs[i].slow += counts.slow.load(Ordering::Relaxed) - slow;
        }
    }

    println!(
        "hedging on loopback: {} requests per variant, {WORKERS} at a time; {}% of server requests take {} ms, the rest {} ms",
        ROUNDS * BLOCK,
        SLOW_BP as f64 / 100.0,
        SLOW.as_millis(),
        FAST.as_millis()
    );
    println!(
        "  {:<12} {:>9} {:>9} {:>9} {:>9} {:>14} {:>10}",
        "variant", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "attempts/req", "slow seen"
    );
    let mut sorted_runs = Vec::new();
    for run in &runs {
        let mut sorted = run.latencies.clone();
        sorted.sort();
        let n = sorted.len() as f64;
        println!(
            "  {:<12} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>14.4} {:>9.2}%",
            run.name,
            ms(quantile(&sorted, 0.5)),
            ms(quantile(&sorted, 0.99)),
            ms(quantile(&sorted, 0.999)),
            ms(*sorted.last().unwrap()),
            run.received as f64 / n,
            run.slow as f64 * 100.0 / run.received as f64,
        );
        sorted_runs.push((run.name, sorted));
    }
    let (plain, hedged) = (&sorted_runs[0].1, &sorted_runs[1].1);
    let p99_ratio = ms(quantile(hedged, 0.99)) / ms(quantile(plain, 0.99));
    let extra = runs[1].received as f64 / hedged.len() as f64 - 1.0;
    let slow_fraction = SLOW_BP as f64 / 10_000.0;
    println!(
        "  p99 hedged / p99 plain = {p99_ratio:.3} (target <= 0.1): {}",
        if p99_ratio <= 0.1 { "met" } else { "MISSED" }
    );
    println!(
        "  extra attempts per request = {extra:.4} = {:.2} x the slow fraction (target <= 1.2): {}",
        extra / slow_fraction,
        if extra <= 1.2 * slow_fraction {
            "met"
        } else {
            "MISSED"
        }
    );
    let path = svg::target_file("hedging-latency.svg");
    std::fs::write(&path, histogram(&sorted_runs)).unwrap();
    println!("  histogram: {}", path.display());
}

// The histogram's size and margins.
const W: f64 = 820.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 50.0;
const TOP: f64 = 40.0;
const RIGHT: f64 = 170.0;

/// A latency histogram: log-spaced bins from 0.5 ms to 500 ms, log-scaled counts, one line
/// per variant.
fn histogram(runs: &[(&str, Vec<Duration>)]) -> String {
    const BINS: usize = 60;
    let (lo, hi) = (0.5f64.ln(), 500f64.ln());
    let bin = |d: &Duration| {
        let x = (ms(*d).max(0.5).ln() - lo) / (hi - lo);
        ((x * BINS as f64) as usize).min(BINS - 1)
    };
    let counts: Vec<Vec<u64>> = runs
        .iter()
        .map(|(_, latencies)| {
            let mut c = vec![0u64; BINS];
            for d in latencies {
                c[bin(d)] += 1;
            }
            c
        })
        .collect();
    let max = counts.iter().flatten().copied().max().unwrap_or(1) as f64;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x_of = |v: f64| LEFT + (v.ln() - lo) / (hi - lo) * pw;
    let y_of = |c: u64| TOP + ph - ((c as f64 + 1.0).ln() / (max + 1.0).ln()) * ph;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="14">Request latency on loopback, 2 % of server requests slow (200 ms)</text>
<line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="black"/>
<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}" stroke="black"/>
"#,
        W / 2.0,
        TOP + ph,
        LEFT + pw,
        TOP + ph,
        TOP + ph
    );
    for tick in [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0] {
        let x = x_of(tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{tick}</text>"##,
            TOP + ph,
            TOP + ph + 16.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">latency, ms (log scale)</text>"#,
        LEFT + pw / 2.0,
        H - 12.0
    );
    let mut count = 1u64;
    while (count as f64) <= max {
        let y = y_of(count);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{count}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            y + 4.0
        );
        count *= 10;
    }
    let _ = writeln!(
        svg,
        r#"<text x="18" y="{:.1}" transform="rotate(-90 18 {:.1})" text-anchor="middle">requests (log scale)</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0
    );
    let colours = ["#c0392b", "#2471a3", "#7d7d7d"];
    for (k, ((name, _), c)) in runs.iter().zip(&counts).enumerate() {
        let colour = colours[k % colours.len()];
        let bins = c.iter().enumerate().map(|(i, &n)| {
            let x0 = (lo + (hi - lo) * i as f64 / BINS as f64).exp();
            let x1 = (lo + (hi - lo) * (i + 1) as f64 / BINS as f64).exp();
            (x_of(x0), x_of(x1), y_of(n))
        });
        svg::steps(&mut svg, bins, colour);
        svg::legend(&mut svg, LEFT + pw, TOP, k, colour, name);
    }
    svg.push_str("</svg>\n");
    svg
}
