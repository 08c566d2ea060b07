//! Soak: 64 tasks send requests for a minute through one layer around hyper-util's client,
//! to a loopback upstream that fails at random (seeded): resets before, during and after the
//! upload, 503 and 429 with `Retry-After` before and after reading the body, 502 after
//! processing, slow uploads, slow reads and slow answers.
//!
//! At the end, no request is lost (each ended with a response or an error), every body the
//! upstream read to its end is the original byte for byte, no POST without a key was
//! processed twice, every 200 was answered for a body that arrived whole, the replay gauge is
//! back to 0, and the live heap is as high at the end as after the first ten seconds.
//!
//! Ignored by default; it runs for a minute:
//!
//! ```text
//! cargo test --test soak -- --ignored --nocapture
//! ```
//!
//! `SOAK_SECS` sets the duration (60), `SOAK_SEED` the seed of the upstream's faults and of
//! the requests (1).

#![allow(missing_docs)]

#[path = "../benches/support/counting.rs"]
mod counting;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use retryable_http::backoff::Backoff;
use retryable_http::budget::Budget;
use retryable_http::{Attempts, RetryLayer};
use tokio::net::TcpListener;
use tower::{Layer, ServiceExt};

const TASKS: u64 = 64;
/// The replay cap of one request: some uploads are larger.
const REPLAY_CAP: usize = 32 * 1024;
/// The cap of all requests' replay bytes together.
const REPLAY_TOTAL: usize = 1024 * 1024;
/// A request that takes longer than this is lost.
const LOST_AFTER: Duration = Duration::from_secs(60);

// ---- Seeded randomness ---------------------------------------------------------------------

/// splitmix64: small, seedable, good enough to pick faults.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// One of `choices`, each as likely as its weight.
    fn pick<T: Copy>(&mut self, choices: &[(u64, T)]) -> T {
        let total: u64 = choices.iter().map(|(w, _)| w).sum();
        let mut at = self.below(total);
        for &(weight, choice) in choices {
            if at < weight {
                return choice;
            }
            at -= weight;
        }
        unreachable!()
    }
}

/// The body of request `id`, `len` bytes long: each byte depends on the request and on its
/// offset, so a body shifted, cut or mixed with another's does not match.
fn pattern(id: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (id as u8).wrapping_mul(31).wrapping_add((i % 251) as u8))
        .collect()
}

// ---- A body in pieces, fast or slow --------------------------------------------------------

/// Chunks sent one by one, with a pause before each when `pause` is set; the size hint is
/// exact or says nothing.
struct Pieces {
    chunks: VecDeque<Bytes>,
    pause: Option<Duration>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    exact: Option<u64>,
}

impl Pieces {
    fn new(data: Vec<u8>, chunk: usize, pause: Option<Duration>, exact: bool) -> Self {
        let data = Bytes::from(data);
        let exact = exact.then_some(data.len() as u64);
        let mut chunks = VecDeque::new();
        let mut at = 0;
        while at < data.len() {
            let end = (at + chunk).min(data.len());
            chunks.push_back(data.slice(at..end));
            at = end;
        }
        Pieces {
            chunks,
            pause,
            sleep: None,
            exact,
        }
    }
}

impl Body for Pieces {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.chunks.is_empty() {
            return Poll::Ready(None);
        }
        if let Some(pause) = self.pause {
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(pause)));
            std::task::ready!(sleep.as_mut().poll(cx));
            self.sleep = None;
        }
        let chunk = self.chunks.pop_front().expect("not empty");
        if let Some(exact) = self.exact.as_mut() {
            *exact -= chunk.len() as u64;
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

// ---- The faulty upstream -------------------------------------------------------------------

/// What the upstream does with one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Fault {
    /// Reads the body, answers 200.
    Ok,
    /// Reads the body, answers 200 in four pieces 10 ms apart.
    SlowAnswer,
    /// Reads the body a piece every 2 ms, answers 200.
    SlowRead,
    /// Resets the connection before reading the body.
    ResetBefore,
    /// Resets the connection after the first piece of the body.
    ResetDuring,
    /// Reads the body, then resets the connection: processed, never answered.
    ResetAfter,
    /// Answers 503 with `Retry-After: 0` or `1` before reading the body.
    Early503,
    /// Answers 429 with `Retry-After: 0` before reading the body.
    Early429,
    /// Reads the body, answers 503 with `Retry-After: 0`.
    Late503,
    /// Reads the body, processes it, answers 502 (the seed's mitmproxy).
    Processed502,
}

const FAULTS: &[(u64, Fault)] = &[
    (44, Fault::Ok),
    (8, Fault::SlowAnswer),
    (4, Fault::SlowRead),
    (8, Fault::ResetBefore),
    (5, Fault::ResetDuring),
    (6, Fault::ResetAfter),
    (8, Fault::Early503),
    (4, Fault::Early429),
    (6, Fault::Late503),
    (4, Fault::Processed502),
];

/// What the upstream saw of one request, over all its attempts.
#[derive(Debug, Default)]
struct Seen {
    /// Attempts whose body the upstream read to its end.
    whole: u32,
    /// Attempts the upstream processed (read whole and acted on, answered or not).
    processed: u32,
}

#[derive(Debug)]
struct Upstream {
    rng: Mutex<Rng>,
    seen: Mutex<HashMap<u64, Seen>>,
    faults: Mutex<HashMap<Fault, u64>>,
    attempts: AtomicU64,
    /// Bodies read whole, over all requests.
    whole: AtomicU64,
    /// Bodies read whole that were not the original, over all requests.
    wrong: AtomicU64,
}

impl Upstream {
    fn fault(&self) -> Fault {
        let fault = self.rng.lock().unwrap().pick(FAULTS);
        *self.faults.lock().unwrap().entry(fault).or_default() += 1;
        fault
    }

    fn note(&self, id: u64, f: impl FnOnce(&mut Seen)) {
        f(self.seen.lock().unwrap().entry(id).or_default());
    }

    /// Reads the body to its end, a piece every `pause` when set; notes whether it is the
    /// original. `Err` when it did not arrive whole.
    async fn read(
        &self,
        id: u64,
        len: usize,
        mut body: Incoming,
        pause: Option<Duration>,
    ) -> io::Result<()> {
        let mut got = Vec::with_capacity(len);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(io::Error::other)?;
            if let Ok(data) = frame.into_data() {
                got.extend_from_slice(&data);
            }
            if let Some(pause) = pause {
                tokio::time::sleep(pause).await;
            }
        }
        let original = got == pattern(id, len);
        self.whole.fetch_add(1, Ordering::Relaxed);
        self.wrong
            .fetch_add(u64::from(!original), Ordering::Relaxed);
        self.note(id, |s| s.whole += 1);
        Ok(())
    }

    async fn answer(&self, req: Request<Incoming>) -> io::Result<Response<Pieces>> {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let header = |name: &str| -> u64 {
            req.headers()[name]
                .to_str()
                .ok()
                .and_then(|v| v.parse().ok())
                .expect("the soak's headers")
        };
        let (id, len) = (header("x-soak-id"), header("x-soak-len") as usize);
        let fault = self.fault();
        let body = req.into_body();
        let reply = |status: u16, retry_after: Option<&'static str>, text: String, slow: bool| {
            let chunk = if slow {
                text.len().div_ceil(4).max(1)
            } else {
                64
            };
            let pause = slow.then_some(Duration::from_millis(10));
            let mut response = Response::new(Pieces::new(text.into_bytes(), chunk, pause, true));
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            if let Some(after) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from_static(after));
            }
            Ok(response)
        };
        let ok = format!("ok {id}");
        match fault {
            Fault::Ok | Fault::SlowAnswer | Fault::SlowRead | Fault::Processed502 => {
                let pause = (fault == Fault::SlowRead).then_some(Duration::from_millis(2));
                self.read(id, len, body, pause).await?;
                self.note(id, |s| s.processed += 1);
                match fault {
                    Fault::Processed502 => reply(502, None, "Bad Gateway".into(), false),
                    _ => reply(200, None, ok, fault == Fault::SlowAnswer),
                }
            }
            Fault::ResetBefore => Err(io::Error::other("reset before the body")),
            Fault::ResetDuring => {
                let mut body = body;
                let _ = body.frame().await;
                Err(io::Error::other("reset during the body"))
            }
            Fault::ResetAfter => {
                self.read(id, len, body, None).await?;
                self.note(id, |s| s.processed += 1);
                Err(io::Error::other("reset after processing"))
            }
            Fault::Early503 => {
                let after = if self.rng.lock().unwrap().below(4) == 0 {
                    "1"
                } else {
                    "0"
                };
                reply(503, Some(after), String::new(), false)
            }
            Fault::Early429 => reply(429, Some("0"), String::new(), false),
            Fault::Late503 => {
                self.read(id, len, body, None).await?;
                reply(503, Some("0"), String::new(), false)
            }
        }
    }
}

/// Serves `upstream` on a loopback port; every connection lingers zero seconds, so a
/// connection dropped on a fault is reset.
async fn serve(upstream: Arc<Upstream>) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            stream.set_zero_linger().unwrap();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let upstream = upstream.clone();
                    async move { upstream.answer(req).await }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, task)
}

// ---- The client side -----------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Get,
    Put,
    PostWithKey,
    PostWithoutKey,
}

/// How one request ended, as the client saw it.
#[derive(Debug, Default)]
struct Outcomes {
    statuses: HashMap<u16, u64>,
    errors: HashMap<&'static str, u64>,
    attempts: u64,
    lost: u64,
    /// 200s whose body was not the upstream's answer.
    bad_answers: u64,
    /// Requests with a body answered 200 whose body never arrived whole.
    answered_unseen: Vec<u64>,
    /// POSTs without a key that the upstream processed more than once.
    duplicated: Vec<(u64, u32)>,
}

impl Outcomes {
    fn merge(&mut self, other: Outcomes) {
        for (k, v) in other.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.attempts += other.attempts;
        self.lost += other.lost;
        self.bad_answers += other.bad_answers;
        self.answered_unseen.extend(other.answered_unseen);
        self.duplicated.extend(other.duplicated);
    }

    fn requests(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.errors.values().sum::<u64>() + self.lost
    }
}

fn request(rng: &mut Rng, id: u64, url: &str) -> (Kind, Request<Pieces>) {
    let kind = rng.pick(&[
        (25, Kind::Get),
        (30, Kind::Put),
        (25, Kind::PostWithKey),
        (20, Kind::PostWithoutKey),
    ]);
    let len = match (kind, rng.below(10)) {
        (Kind::Get, _) => 0,
        (_, 0..=5) => rng.below(4096) as usize,
        (_, 6..=8) => 4096 + rng.below(28 * 1024) as usize,
        _ => REPLAY_CAP + rng.below(64 * 1024) as usize,
    };
    let chunk = 1 + rng.below(16 * 1024) as usize;
    let pause = (rng.below(5) == 0).then(|| Duration::from_millis(1 + rng.below(4)));
    let exact = rng.below(2) == 0;
    let method = match kind {
        Kind::Get => Method::GET,
        Kind::Put => Method::PUT,
        Kind::PostWithKey | Kind::PostWithoutKey => Method::POST,
    };
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("{url}/items/{id}"))
        .header("x-soak-id", id)
        .header("x-soak-len", len);
    if kind == Kind::PostWithKey {
        builder = builder.header("idempotency-key", format!("soak-{id}"));
    }
    let body = Pieces::new(pattern(id, len), chunk, pause, exact);
    (kind, builder.body(body).unwrap())
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn live_heap() -> usize {
    counting::LIVE.load(Ordering::SeqCst)
}

#[test]
#[ignore = "a minute of load; run with --ignored"]
fn soak_sixty_four_tasks_against_a_faulty_upstream() {
    let duration = Duration::from_secs(env_u64("SOAK_SECS", 60));
    let seed = env_u64("SOAK_SEED", 1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let heap_before = live_heap();
    let upstream = Arc::new(Upstream {
        rng: Mutex::new(Rng(seed)),
        seen: Mutex::default(),
        faults: Mutex::default(),
        attempts: AtomicU64::new(0),
        whole: AtomicU64::new(0),
        wrong: AtomicU64::new(0),
    });
    let layer = RetryLayer::new()
        .max_retries(5)
        .backoff(
            Backoff::exponential(Duration::from_millis(5), Duration::from_millis(200)).unwrap(),
        )
        .replay_limit(REPLAY_CAP)
        .replay_limit_total(REPLAY_TOTAL)
        .attempt_timeout(Duration::from_secs(5))
        .deadline(Duration::from_secs(30))
        .budget(Budget::new(Duration::from_secs(10), 50, 1.0).unwrap());
    let gauge = layer.clone();
    let started = Instant::now();
    let (outcomes, samples, server) = runtime.block_on(async {
        let (addr, server) = serve(upstream.clone()).await;
        let url = format!("http://{addr}");
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .build_http::<retryable_http::body::ReplayBody<Pieces>>();
        let client = layer.layer(client);
        let next_id = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let (client, url, next_id) = (client.clone(), url.clone(), next_id.clone());
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let mut rng = Rng(seed ^ (task + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
                    let mut out = Outcomes::default();
                    while started.elapsed() < duration {
                        let id = next_id.fetch_add(1, Ordering::Relaxed);
                        let (kind, req) = request(&mut rng, id, &url);
                        let has_body = !req.body().chunks.is_empty();
                        let call = async {
                            let response = client.clone().oneshot(req).await?;
                            let status = response.status();
                            let n = Some(Attempts::of(&response).attempts());
                            let body = response.into_body().collect().await?.to_bytes();
                            Ok::<_, retryable_http::error::BoxError>((status, n, body))
                        };
                        let ended = tokio::time::timeout(LOST_AFTER, call).await;
                        // What the upstream saw of this request, checked and forgotten,
                        // so that the heap holds only what is in flight.
                        let seen = upstream
                            .seen
                            .lock()
                            .unwrap()
                            .remove(&id)
                            .unwrap_or_default();
                        if kind == Kind::PostWithoutKey && seen.processed > 1 {
                            out.duplicated.push((id, seen.processed));
                        }
                        match ended {
                            Err(_) => out.lost += 1,
                            Ok(Ok((status, n, body))) => {
                                *out.statuses.entry(status.as_u16()).or_default() += 1;
                                out.attempts += u64::from(n.unwrap_or(0));
                                if status == StatusCode::OK {
                                    if body != format!("ok {id}").as_bytes() {
                                        out.bad_answers += 1;
                                    }
                                    if has_body && seen.whole == 0 {
                                        out.answered_unseen.push(id);
                                    }
                                }
                            }
                            Ok(Err(error)) => {
                                let (name, n) = match error.downcast_ref::<retryable_http::Error>()
                                {
                                    Some(e) if e.is_deadline() => ("deadline", e.attempts()),
                                    Some(e) if e.is_attempt_timeout() => {
                                        ("attempt timeout", e.attempts())
                                    }
                                    Some(e) => ("transport", e.attempts()),
                                    None => ("response body", 0),
                                };
                                *out.errors.entry(name).or_default() += 1;
                                out.attempts += u64::from(n);
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        // The live heap every five seconds while the load runs.
        let mut samples = Vec::new();
        let sampler = async {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let held = gauge.replay_bytes_held().unwrap_or(0);
                samples.push((started.elapsed().as_secs(), live_heap(), held));
            }
        };
        let joined = async {
            let mut outcomes = Outcomes::default();
            for task in tasks {
                outcomes.merge(task.await.unwrap());
            }
            outcomes
        };
        let outcomes = tokio::select! {
            outcomes = joined => outcomes,
            _ = sampler => unreachable!(),
        };
        drop(client);
        (outcomes, samples, server)
    });
    let elapsed = started.elapsed();
    let held = gauge.replay_bytes_held();
    server.abort();
    drop(runtime);
    let heap_after = live_heap();

    // ---- Report ----
    let faults = upstream.faults.lock().unwrap();
    let requests = outcomes.requests();
    println!(
        "soak: {requests} requests by {TASKS} tasks in {:.1} s (seed {seed}), {} attempts made by the client, {} received by the upstream",
        elapsed.as_secs_f64(),
        outcomes.attempts,
        upstream.attempts.load(Ordering::SeqCst)
    );
    let mut statuses: Vec<_> = outcomes.statuses.iter().collect();
    statuses.sort();
    println!("responses: {statuses:?}");
    println!("errors: {:?}", outcomes.errors);
    let mut faults: Vec<_> = faults.iter().map(|(f, n)| (format!("{f:?}"), *n)).collect();
    faults.sort();
    println!("upstream faults: {faults:?}");
    let wrong = upstream.wrong.load(Ordering::SeqCst);
    println!(
        "bodies read whole by the upstream: {}; not the original: {wrong}",
        upstream.whole.load(Ordering::SeqCst)
    );
    println!(
        "live heap (s, bytes, replay bytes held): before {heap_before}, {samples:?}, after {heap_after}"
    );
    println!("replay bytes held at the end: {held:?}");

    // ---- Checks ----
    assert!(requests > 0);
    assert_eq!(outcomes.lost, 0, "requests that never ended");
    assert_eq!(
        outcomes.bad_answers, 0,
        "200s whose body was not the upstream's answer"
    );
    assert_eq!(wrong, 0, "bodies that arrived changed");
    assert!(
        outcomes.answered_unseen.is_empty(),
        "answered 200 but their bodies never arrived whole: {:?}",
        outcomes.answered_unseen
    );
    assert!(
        outcomes.duplicated.is_empty(),
        "POSTs without a key processed more than once (id, times): {:?}",
        outcomes.duplicated
    );
    assert_eq!(held, Some(0), "replay bytes still held");
    // Flat: the heap at the end of the load is no higher than after its first ten seconds,
    // give or take the connections and tasks of the moment.
    let warm = samples
        .iter()
        .find(|(at, ..)| *at >= 10)
        .or(samples.first())
        .map(|(_, bytes, _)| *bytes)
        .expect("a sample of the heap");
    let end = samples.last().map(|(_, bytes, _)| *bytes).unwrap();
    for (at, _, held) in &samples {
        assert!(*held <= REPLAY_TOTAL, "{held} replay bytes held at {at} s");
    }
    let slack = 4 * 1024 * 1024;
    assert!(
        end <= warm + warm / 2 + slack,
        "the live heap grew from {warm} to {end} bytes"
    );
    // Once the client, the upstream and the runtime are gone, what was live before is all
    // that is left, give or take the allocator's own bookkeeping.
    assert!(
        heap_after <= heap_before + 64 * 1024,
        "after the load, {heap_after} bytes live against {heap_before} before"
    );
}
