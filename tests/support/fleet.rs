//! A fleet of clients, each with its own `RetryLayer`, against a modelled server, on tokio's
//! paused clock: how retry policies behave at scale when the server's capacity drops for a
//! while and comes back.
//!
//! The model:
//!
//! - **Clients.** Each virtual client sends GETs open-loop, at Poisson arrivals from a
//!   seeded generator, through a layer of its own (its own budget, its own throttle), with
//!   an attempt timeout. A request whose attempt times out is dropped by its client; the
//!   layer may retry it.
//! - **Server.** `workers` workers take attempts first come, first served from one queue;
//!   an attempt takes `workers / capacity` seconds of a worker's time, longer while the
//!   capacity is down. The queue holds at most one attempt timeout of work at full capacity
//!   (`capacity × timeout` attempts): more would only serve clients that have gone. A full
//!   queue answers 503 at once; the workers pay for it later, `reject_cost` (10 %) of an
//!   attempt's work each, as a server spends time to accept, read and answer a request it
//!   turns away.
//! - **Wasted work.** The server cannot tell that a client has given up: an attempt whose
//!   client timed out is still worked on when its turn comes, and its answer thrown away.
//!   This is the mechanism of metastable failure (Bronson et al., HotOS 2021; Huang et al.,
//!   OSDI 2022): retries keep the queue full, so every attempt waits longer than its
//!   timeout, and all the server's work is wasted, even after the capacity comes back.
//! - **Trigger.** The load is `load × capacity`; from `trigger_at`, for `trigger_for`, the
//!   capacity drops to `trigger_capacity` of itself.
//!
//! Every number is counted in buckets of `bucket`: requests by the time they were sent,
//! successes by the time they came back, attempts by the time they reached the server.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use retryable_http::RetryLayer;
use retryable_http::backoff::{Backoff, Jitter};
use retryable_http::body::ReplayBody;
use retryable_http::budget::Budget;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

/// The fleet, the server and the trigger.
#[derive(Clone, Debug)]
pub struct Params {
    /// Virtual clients, each with a layer of its own.
    pub clients: usize,
    /// Attempts per second the server completes at full capacity (over all its backends).
    pub capacity: f64,
    /// Workers of the server (split between its backends).
    pub workers: usize,
    /// The offered load, as a share of `capacity`.
    pub load: f64,
    /// Each attempt's timeout.
    pub attempt_timeout: Duration,
    /// When the capacity drops, from the start.
    pub trigger_at: Duration,
    /// How long it stays down.
    pub trigger_for: Duration,
    /// The share of the capacity left while it is down.
    pub trigger_capacity: f64,
    /// What answering 503 to an attempt the full queue turns away costs the workers, as a
    /// share of an attempt's work.
    pub reject_cost: f64,
    /// When the clients stop sending; the run then waits for every request to end.
    pub run_for: Duration,
    /// The width of a bucket of the counts.
    pub bucket: Duration,
    /// Seeds the arrivals and the layers' jitter.
    pub seed: u64,
}

impl Params {
    /// The fleet of `benches/fleet.rs`: 1000 clients, a server of 4000 attempts per
    /// second, an attempt timeout of 1 s, the capacity down to 30 % from 10 s to 20 s, and
    /// 40 s more after it.
    pub fn fleet() -> Self {
        Params {
            clients: 1000,
            capacity: 4000.0,
            workers: 40,
            load: 0.8,
            attempt_timeout: Duration::from_secs(1),
            trigger_at: Duration::from_secs(10),
            trigger_for: Duration::from_secs(10),
            trigger_capacity: 0.3,
            reject_cost: 0.1,
            run_for: Duration::from_secs(60),
            bucket: Duration::from_millis(500),
            seed: 0x5eed,
        }
    }

    /// A smaller fleet for a test: 200 clients and a server of 1000 attempts per second,
    /// the capacity down from 5 s to 15 s, and 15 s more after it.
    pub fn small() -> Self {
        Params {
            clients: 200,
            capacity: 1000.0,
            workers: 10,
            run_for: Duration::from_secs(30),
            trigger_at: Duration::from_secs(5),
            ..Params::fleet()
        }
    }

    fn trigger_end(&self) -> Duration {
        self.trigger_at + self.trigger_for
    }

    fn buckets(&self) -> usize {
        // Successes may come back after the clients stop sending: room for a minute more.
        ((self.run_for + Duration::from_secs(60)).as_secs_f64() / self.bucket.as_secs_f64())
            as usize
    }
}

/// A retry policy of the fleet's clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// `max_retries(0)`.
    NoRetries,
    /// go-retryablehttp's defaults: 4 retries, exponential 1 s to 30 s without jitter, no
    /// budget.
    GoRetryablehttp,
    /// 3 retries, 10 ms apart, no budget.
    TightLoop,
    /// This crate's defaults.
    Defaults,
    /// This crate's defaults with the budget's arithmetic alone, no throttle: what the
    /// defaults were before the fleet showed them wanting.
    Unthrottled,
    /// This crate's defaults, the requests split between two backends of which only one
    /// loses capacity: a budget per destination.
    TwoBackends,
    /// The same, with one budget for both backends (`budget(Budget::default())`).
    TwoBackendsShared,
    /// gRPC calls under gRFC A6: `UNAVAILABLE` retried (5 attempts, 1 s to 30 s), the
    /// call's deadline the attempt timeout, retries throttled (10 tokens, 0.1 per
    /// success), per client.
    #[cfg(feature = "grpc")]
    Grpc,
}

impl Variant {
    /// Every variant, in the order of the README's table.
    pub fn all() -> Vec<Variant> {
        vec![
            Variant::NoRetries,
            Variant::GoRetryablehttp,
            Variant::TightLoop,
            Variant::Defaults,
            Variant::Unthrottled,
            Variant::TwoBackends,
            Variant::TwoBackendsShared,
            #[cfg(feature = "grpc")]
            Variant::Grpc,
        ]
    }

    /// A short name, for tables and the plot.
    pub fn name(self) -> &'static str {
        match self {
            Variant::NoRetries => "no retries",
            Variant::GoRetryablehttp => "go-retryablehttp defaults",
            Variant::TightLoop => "tight loop (3 × 10 ms)",
            Variant::Defaults => "this crate's defaults",
            Variant::Unthrottled => "the budget without its throttle",
            Variant::TwoBackends => "two backends, budget per destination",
            Variant::TwoBackendsShared => "two backends, one shared budget",
            #[cfg(feature = "grpc")]
            Variant::Grpc => "gRPC A6, throttled",
        }
    }

    fn backends(self) -> usize {
        match self {
            Variant::TwoBackends | Variant::TwoBackendsShared => 2,
            _ => 1,
        }
    }

    fn grpc(self) -> bool {
        #[cfg(feature = "grpc")]
        if self == Variant::Grpc {
            return true;
        }
        false
    }

    /// The layer of one client.
    fn layer(self, params: &Params, seed: u64) -> RetryLayer {
        let timeout = params.attempt_timeout;
        let base = RetryLayer::new().jitter_seed(seed);
        match self {
            Variant::NoRetries => base.max_retries(0).attempt_timeout(timeout),
            Variant::GoRetryablehttp => {
                let backoff = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(30))
                    .unwrap()
                    .jitter(Jitter::None);
                base.max_retries(4)
                    .backoff(backoff)
                    .no_budget()
                    .attempt_timeout(timeout)
            }
            Variant::TightLoop => base
                .max_retries(3)
                .backoff(Backoff::constant(Duration::from_millis(10)))
                .no_budget()
                .attempt_timeout(timeout),
            Variant::Defaults | Variant::TwoBackends => base.attempt_timeout(timeout),
            Variant::Unthrottled => {
                let budget = Budget::new(Duration::from_secs(10), 10, 0.2).unwrap();
                base.budget_per_destination(budget).attempt_timeout(timeout)
            }
            Variant::TwoBackendsShared => base.budget(Budget::default()).attempt_timeout(timeout),
            #[cfg(feature = "grpc")]
            Variant::Grpc => {
                let config = retryable_http::grpc::ServiceConfig::from_json(
                    r#"{
                      "methodConfig": [{
                        "name": [{}],
                        "retryPolicy": {
                          "maxAttempts": 5, "initialBackoff": "1s", "maxBackoff": "30s",
                          "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]
                        }
                      }],
                      "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}
                    }"#,
                )
                .unwrap();
                base.grpc(config).deadline(timeout)
            }
        }
    }
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct Report {
    pub variant: Variant,
    pub params: Params,
    /// Per backend, per bucket: requests sent.
    pub sent: Vec<Vec<u64>>,
    /// Per backend, per bucket: requests that succeeded, by the time they came back.
    pub succeeded: Vec<Vec<u64>>,
    /// Per backend, per bucket: attempts that reached the server.
    pub attempts: Vec<Vec<u64>>,
    /// Per backend: attempts worked on whose client had gone.
    pub wasted: Vec<u64>,
    /// Per backend: attempts worked on.
    pub worked: Vec<u64>,
}

impl Report {
    /// Goodput of `backend` per bucket: the requests that came back successful in it, as a
    /// share of the requests sent in it.
    pub fn goodput(&self, backend: usize) -> Vec<f64> {
        let sent = &self.sent[backend];
        let sending = self.bucket_of(self.params.run_for);
        (0..sending)
            .map(|b| self.succeeded[backend][b] as f64 / sent[b].max(1) as f64)
            .collect()
    }

    /// How long after the trigger ends the goodput of `backend` is back at 95 % or more, for
    /// good: `None` if it is not by the time the clients stop sending.
    pub fn recovery(&self, backend: usize) -> Option<Duration> {
        let goodput = self.goodput(backend);
        let end = self.bucket_of(self.params.trigger_end());
        let last_low = (end..goodput.len()).rev().find(|&b| goodput[b] < 0.95);
        match last_low {
            None => Some(Duration::ZERO),
            Some(b) if b + 1 >= goodput.len() => None,
            Some(b) => Some(self.params.bucket * (b + 1 - end) as u32),
        }
    }

    /// Attempts per request of `backend` while the capacity is down.
    pub fn amplification_during(&self, backend: usize) -> f64 {
        let from = self.bucket_of(self.params.trigger_at);
        let to = self.bucket_of(self.params.trigger_end());
        ratio(
            &self.attempts[backend][from..to],
            &self.sent[backend][from..to],
        )
    }

    /// Attempts per request of `backend` over the whole run.
    pub fn amplification(&self, backend: usize) -> f64 {
        ratio(&self.attempts[backend], &self.sent[backend])
    }

    /// The share of the work of `backend` that was wasted.
    pub fn wasted_share(&self, backend: usize) -> f64 {
        self.wasted[backend] as f64 / self.worked[backend].max(1) as f64
    }

    /// The backend that loses capacity.
    pub const DEGRADED: usize = 0;

    fn bucket_of(&self, at: Duration) -> usize {
        (at.as_secs_f64() / self.params.bucket.as_secs_f64()) as usize
    }
}

fn ratio(num: &[u64], den: &[u64]) -> f64 {
    num.iter().sum::<u64>() as f64 / den.iter().sum::<u64>().max(1) as f64
}

/// Counts in buckets, shared by the tasks of a run.
struct Counts {
    start: Instant,
    bucket: Duration,
    cells: Vec<AtomicU64>,
}

impl Counts {
    fn new(start: Instant, bucket: Duration, len: usize) -> Self {
        Counts {
            start,
            bucket,
            cells: (0..len).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn add(&self, now: Instant) {
        let b = ((now - self.start).as_secs_f64() / self.bucket.as_secs_f64()) as usize;
        if let Some(cell) = self.cells.get(b) {
            cell.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn take(&self) -> Vec<u64> {
        self.cells
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }
}

/// An attempt waiting for a worker.
struct Job {
    reply: oneshot::Sender<()>,
}

/// One backend: its queue, its workers' speed, and what it counts.
struct Backend {
    queue: Mutex<VecDeque<Job>>,
    ready: Notify,
    limit: usize,
    /// A worker's time per attempt at full capacity.
    work: Duration,
    /// The workers' time that turning attempts away took, and no worker has yet paid, in
    /// nanoseconds.
    owed: AtomicU64,
    degraded: bool,
    attempts: Counts,
    wasted: AtomicU64,
    worked: AtomicU64,
}

/// The server, as the clients' inner service sees it.
#[derive(Clone)]
struct Server {
    backends: Arc<Vec<Backend>>,
    params: Arc<Params>,
    start: Instant,
    grpc: bool,
}

impl Server {
    /// The share of capacity left at `now`.
    fn speed(&self, degraded: bool, now: Instant) -> f64 {
        let t = now - self.start;
        let p = &self.params;
        if degraded && t >= p.trigger_at && t < p.trigger_end() {
            p.trigger_capacity
        } else {
            1.0
        }
    }

    async fn work(self, backend: usize) {
        let b = &self.backends[backend];
        loop {
            let job = loop {
                let ready = b.ready.notified();
                if let Some(job) = b.queue.lock().unwrap().pop_front() {
                    break job;
                }
                ready.await;
            };
            let speed = self.speed(b.degraded, Instant::now());
            // The worker pays what turning attempts away cost, before its next attempt.
            let owed = Duration::from_nanos(b.owed.swap(0, Ordering::Relaxed));
            tokio::time::sleep((b.work + owed).div_f64(speed)).await;
            b.worked.fetch_add(1, Ordering::Relaxed);
            if job.reply.send(()).is_err() {
                b.wasted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn respond(&self, ok: bool) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::new()));
        if self.grpc {
            let status = if ok { "0" } else { "14" };
            response
                .headers_mut()
                .insert("content-type", "application/grpc".parse().unwrap());
            response
                .headers_mut()
                .insert("grpc-status", status.parse().unwrap());
        } else if !ok {
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        }
        response
    }
}

impl Service<Request<ReplayBody<Full<Bytes>>>> for Server {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<ReplayBody<Full<Bytes>>>) -> Self::Future {
        let backend = usize::from(request.uri().host() == Some("b.svc"));
        let b = &self.backends[backend];
        b.attempts.add(Instant::now());
        let admitted = {
            let mut queue = b.queue.lock().unwrap();
            if queue.len() >= b.limit {
                let cost = b.work.mul_f64(self.params.reject_cost).as_nanos() as u64;
                b.owed.fetch_add(cost, Ordering::Relaxed);
                None
            } else {
                let (reply, done) = oneshot::channel();
                queue.push_back(Job { reply });
                Some(done)
            }
        };
        let server = self.clone();
        match admitted {
            None => Box::pin(async move { Ok(server.respond(false)) }),
            Some(done) => {
                b.ready.notify_one();
                Box::pin(async move {
                    // A worker always answers, unless the run ends first.
                    let ok = done.await.is_ok();
                    Ok(server.respond(ok))
                })
            }
        }
    }
}

/// SplitMix64, for the arrivals.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An exponential wait of mean `mean`.
    fn exponential(&mut self, mean: f64) -> Duration {
        Duration::from_secs_f64(-mean * (1.0 - self.next_f64()).ln())
    }
}

/// Runs `variant`'s fleet on the current runtime, whose clock must be paused.
pub async fn run(variant: Variant, params: &Params) -> Report {
    let start = Instant::now();
    let backends = variant.backends();
    let len = params.buckets();
    let (capacity, per_backend) = (params.capacity / backends as f64, params.workers / backends);
    let server = Server {
        backends: Arc::new(
            (0..backends)
                .map(|i| Backend {
                    queue: Mutex::new(VecDeque::new()),
                    ready: Notify::new(),
                    limit: (capacity * params.attempt_timeout.as_secs_f64()) as usize,
                    work: Duration::from_secs_f64(per_backend as f64 / capacity),
                    degraded: i == Report::DEGRADED,
                    attempts: Counts::new(start, params.bucket, len),
                    owed: AtomicU64::new(0),
                    wasted: AtomicU64::new(0),
                    worked: AtomicU64::new(0),
                })
                .collect(),
        ),
        params: Arc::new(params.clone()),
        start,
        grpc: variant.grpc(),
    };
    let mut workers = Vec::new();
    for backend in 0..backends {
        for _ in 0..per_backend {
            workers.push(tokio::spawn(server.clone().work(backend)));
        }
    }
    let sent: Arc<Vec<Counts>> = Arc::new(
        (0..backends)
            .map(|_| Counts::new(start, params.bucket, len))
            .collect(),
    );
    let succeeded: Arc<Vec<Counts>> = Arc::new(
        (0..backends)
            .map(|_| Counts::new(start, params.bucket, len))
            .collect(),
    );
    // Each client sends `load × capacity / clients` requests a second.
    let mean_gap = params.clients as f64 / (params.load * params.capacity);
    let end = start + params.run_for;
    let mut clients = Vec::new();
    for i in 0..params.clients {
        let seed = params.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let client = variant.layer(params, seed).layer(server.clone());
        let (sent, succeeded) = (sent.clone(), succeeded.clone());
        let grpc = variant.grpc();
        clients.push(tokio::spawn(async move {
            let mut rng = Rng(seed);
            let mut requests = Vec::new();
            loop {
                tokio::time::sleep(rng.exponential(mean_gap)).await;
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let backend = if backends == 2 {
                    usize::from(rng.next_f64() < 0.5)
                } else {
                    0
                };
                sent[backend].add(now);
                let request = request(backend, grpc);
                let client = client.clone();
                let succeeded = succeeded.clone();
                requests.push(tokio::spawn(async move {
                    let ok = match client.oneshot(request).await {
                        Ok(response) => succeeded_response(&response),
                        Err(_) => false,
                    };
                    if ok {
                        succeeded[backend].add(Instant::now());
                    }
                }));
            }
            for request in requests {
                request.await.unwrap();
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    for worker in workers {
        worker.abort();
    }
    Report {
        variant,
        params: params.clone(),
        sent: sent.iter().map(Counts::take).collect(),
        succeeded: succeeded.iter().map(Counts::take).collect(),
        attempts: server.backends.iter().map(|b| b.attempts.take()).collect(),
        wasted: server
            .backends
            .iter()
            .map(|b| b.wasted.load(Ordering::Relaxed))
            .collect(),
        worked: server
            .backends
            .iter()
            .map(|b| b.worked.load(Ordering::Relaxed))
            .collect(),
    }
}

fn request(backend: usize, grpc: bool) -> Request<Full<Bytes>> {
    let host = if backend == 1 { "b.svc" } else { "a.svc" };
    if grpc {
        Request::post(format!("http://{host}/fleet.Fleet/Call"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(Bytes::new()))
            .unwrap()
    } else {
        Request::get(format!("http://{host}/"))
            .body(Full::new(Bytes::new()))
            .unwrap()
    }
}

fn succeeded_response(response: &Response<Full<Bytes>>) -> bool {
    response.status() == StatusCode::OK
        && response
            .headers()
            .get("grpc-status")
            .is_none_or(|status| status == "0")
}

/// A run on a runtime of its own, with the clock paused.
pub fn run_paused(variant: Variant, params: &Params) -> Report {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(run(variant, params))
}

/// How long the degraded backend took to get back to 95 % goodput, or "never".
pub fn recovery(report: &Report) -> String {
    match report.recovery(Report::DEGRADED) {
        Some(t) => format!("{:.1} s", t.as_secs_f64()),
        None => "never".to_owned(),
    }
}

/// A table row: the recovery, and the attempts per request during the trigger and over
/// the run, of the degraded backend.
pub fn row(report: &Report) -> String {
    let d = Report::DEGRADED;
    let mut row = format!(
        "| {} | {} | {:.2} | {:.2} | {:.0} % |",
        report.variant.name(),
        recovery(report),
        report.amplification_during(d),
        report.amplification(d),
        100.0 * report.wasted_share(d),
    );
    if report.sent.len() == 2 {
        let healthy = 1 - d;
        let low = report
            .goodput(healthy)
            .into_iter()
            .fold(f64::INFINITY, f64::min);
        let _ = write!(
            row,
            " healthy backend: goodput never below {:.0} % |",
            100.0 * low
        );
    }
    row
}
