//! Memory: the sizes of the values a request moves, allocations per request, the bytes a
//! budget per destination keeps for each, what replaying a 1 MiB body costs, and the peak heap of a 256 MiB streamed upload, measured with a
//! counting global allocator, bare client and layer side by side.
//!
//! ```text
//! cargo bench --bench memory
//! ```
//!
//! Exits with an error when a target is missed: replaying a 1 MiB `Full<Bytes>` body must
//! allocate less than 16 KiB more than sending it once; the layer's peak heap while
//! streaming 256 MiB must stay within the bare client's plus the 1 MiB cap plus 4 chunks;
//! and so must its peak while uploading 256 MiB over loopback, answered 503 halfway and
//! retried through a reopened source, which the server must receive whole.

#![allow(missing_docs)]

#[path = "support/counting.rs"]
mod counting;

use std::convert::Infallible;
use std::future::{Future, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use retryable_http::backoff::Backoff;
use retryable_http::{RetryLayer, body::ReplayBody};
use tower::{Layer, Service, ServiceExt, service_fn};

use counting::{ALLOCATED, ALLOCATIONS, LIVE, PEAK};

/// Allocations and bytes allocated per run of `f`, averaged over `runs`.
fn per_request<F, Fut>(rt: &tokio::runtime::Runtime, runs: u64, mut f: F) -> (f64, f64)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    // Warm up: pools, lazily made statics.
    rt.block_on(async {
        for _ in 0..100 {
            f().await;
        }
    });
    let (count, bytes) = (
        ALLOCATIONS.load(Ordering::SeqCst),
        ALLOCATED.load(Ordering::SeqCst),
    );
    rt.block_on(async {
        for _ in 0..runs {
            f().await;
        }
    });
    let count = ALLOCATIONS.load(Ordering::SeqCst) - count;
    let bytes = ALLOCATED.load(Ordering::SeqCst) - bytes;
    (count as f64 / runs as f64, bytes as f64 / runs as f64)
}

fn ok() -> Response<Full<Bytes>> {
    Response::new(Full::new(Bytes::from_static(b"ok")))
}

async fn send<S, B, R>(service: S, request: Request<B>)
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Error: std::fmt::Debug,
    R: Body,
    R::Error: std::fmt::Debug,
{
    let response = service.oneshot(request).await.unwrap();
    std::hint::black_box(response.into_body().collect().await.unwrap());
}

/// A body of `total` bytes in fresh 64 KiB chunks, of unknown length: a stream.
struct Stream {
    left: usize,
}

const CHUNK: usize = 64 * 1024;

impl Body for Stream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(CHUNK);
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![0u8; n])))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::new()
    }
}

/// The peak heap above what was live before, while `f` runs.
fn peak_above_start<F: Future<Output = ()>>(rt: &tokio::runtime::Runtime, f: F) -> usize {
    let start = LIVE.load(Ordering::SeqCst);
    PEAK.store(start, Ordering::SeqCst);
    rt.block_on(f);
    PEAK.load(Ordering::SeqCst).saturating_sub(start)
}

/// The sizes of what a request through hyper-util's client moves, bare and through the
/// layer: every byte of them is copied each time the value moves.
fn sizes() {
    use std::mem::size_of;
    type Bare = Client<HttpConnector, Full<Bytes>>;
    type Inner = Client<HttpConnector, ReplayBody<Full<Bytes>>>;
    type Layered = retryable_http::Retry<Inner>;
    let rows = [
        ("Full<Bytes>", size_of::<Full<Bytes>>()),
        (
            "ReplayBody<Full<Bytes>>",
            size_of::<ReplayBody<Full<Bytes>>>(),
        ),
        ("Request<Full<Bytes>>", size_of::<Request<Full<Bytes>>>()),
        (
            "Request<ReplayBody<Full<Bytes>>>",
            size_of::<Request<ReplayBody<Full<Bytes>>>>(),
        ),
        ("hyper-util Client (bare)", size_of::<Bare>()),
        ("Retry<Client>", size_of::<Layered>()),
        (
            "hyper-util ResponseFuture",
            size_of::<<Bare as Service<Request<Full<Bytes>>>>::Future>(),
        ),
        (
            "Retry<Client>'s ResponseFuture",
            size_of::<<Layered as Service<Request<Full<Bytes>>>>::Future>(),
        ),
    ];
    println!("{:<44} {:>12}", "size of", "bytes");
    for (name, size) in rows {
        println!("{name:<44} {size:>12}");
    }
    println!();
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut failures = Vec::new();
    sizes();
    println!(
        "{:<44} {:>12} {:>14}",
        "per request", "allocations", "bytes"
    );

    // In memory: GET.
    let bare = service_fn(|_req: Request<Full<Bytes>>| ready(Ok::<_, Infallible>(ok())));
    let layer = RetryLayer::new().layer(service_fn(|_req: Request<ReplayBody<Full<Bytes>>>| {
        ready(Ok::<_, Infallible>(ok()))
    }));
    let get = || {
        Request::get("http://bench.test/")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let rows = [
        (
            "in_process_get bare",
            per_request(&rt, 10_000, || send(bare, get())),
        ),
        (
            "in_process_get retry_layer",
            per_request(&rt, 10_000, || send(layer.clone(), get())),
        ),
    ];
    for (name, (count, bytes)) in rows {
        println!("{name:<44} {count:>12.1} {bytes:>14.0}");
    }

    // A budget per destination: what a request allocates, and what each destination keeps.
    let per_destination = RetryLayer::new()
        .budget_per_destination(retryable_http::budget::Budget::default())
        .layer(service_fn(|_req: Request<ReplayBody<Full<Bytes>>>| {
            ready(Ok::<_, Infallible>(ok()))
        }));
    let (count, bytes) = per_request(&rt, 10_000, || send(per_destination.clone(), get()));
    println!(
        "{:<44} {count:>12.1} {bytes:>14.0}",
        "in_process_get budget_per_destination"
    );
    #[cfg(feature = "hyper")]
    {
        let reconnecting = RetryLayer::new().reconnect_on_retry().layer(service_fn(
            |_req: Request<ReplayBody<Full<Bytes>>>| ready(Ok::<_, Infallible>(ok())),
        ));
        let (count, bytes) = per_request(&rt, 10_000, || send(reconnecting.clone(), get()));
        println!(
            "{:<44} {count:>12.1} {bytes:>14.0}",
            "in_process_get reconnect_on_retry"
        );
    }
    // A request retried once (503, then 200, no wait), and what of it is the `AttemptInfo`
    // its retry carries: inserting one into a request without extensions.
    let flip = Arc::new(AtomicU64::new(0));
    let retried = RetryLayer::new()
        .no_budget()
        .backoff(Backoff::constant(Duration::ZERO))
        .layer(service_fn(move |_req: Request<ReplayBody<Full<Bytes>>>| {
            let mut response = ok();
            if flip.fetch_add(1, Ordering::Relaxed) % 2 == 0 {
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            }
            ready(Ok::<_, Infallible>(response))
        }));
    let (count, bytes) = per_request(&rt, 10_000, || send(retried.clone(), get()));
    println!(
        "{:<44} {count:>12.1} {bytes:>14.0}",
        "in_process_get retried once"
    );
    let (count, bytes) = per_request(&rt, 10_000, || async {
        let mut extensions = http::Extensions::new();
        extensions.insert(retryable_http::telemetry::AttemptInfo::FIRST);
        std::hint::black_box(&extensions);
    });
    println!(
        "{:<44} {count:>12.1} {bytes:>14.0}",
        "of which the AttemptInfo extension"
    );
    let before = LIVE.load(Ordering::SeqCst);
    rt.block_on(async {
        for n in 0..1000 {
            let request = Request::get(format!("http://host-{n}.bench.test/"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            send(per_destination.clone(), request).await;
        }
    });
    let kept = LIVE.load(Ordering::SeqCst).saturating_sub(before) as f64 / 1000.0;
    println!(
        "{:<44} {:>12} {kept:>14.0}",
        "kept per destination (1000 hosts)", ""
    );

    // Loopback: GET through hyper-util's client to a hyper server.
    let addr = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async {
                            let _ = req.into_body().collect().await;
                            Ok::<_, Infallible>(ok())
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    });
    let url = format!("http://{addr}/");
    let bare: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let layer = RetryLayer::new()
        .layer(Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Full<Bytes>>>());
    let get = || Request::get(&url).body(Full::new(Bytes::new())).unwrap();
    // The server runs in this process too: these counts include its allocations.
    let rows = [
        (
            "loopback_get bare (client + server)",
            per_request(&rt, 2_000, || send(bare.clone(), get())),
        ),
        (
            "loopback_get retry_layer (client + server)",
            per_request(&rt, 2_000, || send(layer.clone(), get())),
        ),
    ];
    for (name, (count, bytes)) in rows {
        println!("{name:<44} {count:>12.1} {bytes:>14.0}");
    }

    // Replaying a 1 MiB `Full<Bytes>`: sent once without the layer, twice with it.
    let mib = Bytes::from(vec![7u8; 1024 * 1024]);
    let reads = service_fn(|req: Request<Full<Bytes>>| async move {
        std::hint::black_box(req.into_body().collect().await.unwrap().to_bytes());
        Ok::<_, Infallible>(ok())
    });
    let calls = Arc::new(AtomicU64::new(0));
    let c = calls.clone();
    let flaky = service_fn(move |req: Request<ReplayBody<Full<Bytes>>>| {
        let fail = c.fetch_add(1, Ordering::Relaxed) % 2 == 0;
        async move {
            std::hint::black_box(req.into_body().collect().await.unwrap().to_bytes());
            let mut response = ok();
            if fail {
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            }
            Ok::<_, Infallible>(response)
        }
    });
    let layer = RetryLayer::new()
        .backoff(Backoff::constant(Duration::ZERO))
        .no_budget()
        .layer(flaky);
    let put = || {
        Request::put("http://bench.test/")
            .body(Full::new(mib.clone()))
            .unwrap()
    };
    let (bare_count, bare_bytes) = per_request(&rt, 1_000, || send(reads, put()));
    let (layer_count, layer_bytes) = per_request(&rt, 1_000, || send(layer.clone(), put()));
    println!(
        "{:<44} {bare_count:>12.1} {bare_bytes:>14.0}",
        "put_1mib sent once, bare"
    );
    println!(
        "{:<44} {layer_count:>12.1} {layer_bytes:>14.0}",
        "put_1mib sent twice, retry_layer"
    );
    let extra = layer_bytes - bare_bytes;
    println!(
        "replaying 1 MiB allocates {extra:.0} bytes more than sending it once (target < 16384)"
    );
    if extra >= 16_384.0 {
        failures.push(format!("1 MiB replay allocated {extra:.0} extra bytes"));
    }

    // Streaming 256 MiB of unknown length: the layer keeps up to the 1 MiB cap, then lets go.
    let total = 256 * 1024 * 1024;
    let sink_bare = service_fn(|req: Request<Stream>| async move {
        let mut body = req.into_body();
        while let Some(frame) = body.frame().await {
            std::hint::black_box(frame.unwrap());
        }
        Ok::<_, Infallible>(ok())
    });
    let sink = service_fn(|req: Request<ReplayBody<Stream>>| async move {
        let mut body = req.into_body();
        while let Some(frame) = body.frame().await {
            std::hint::black_box(frame.unwrap());
        }
        Ok::<_, Infallible>(ok())
    });
    let layer = RetryLayer::new().layer(sink);
    let stream = || {
        Request::put("http://bench.test/")
            .body(Stream { left: total })
            .unwrap()
    };
    let bare_peak = peak_above_start(&rt, send(sink_bare, stream()));
    let layer_peak = peak_above_start(&rt, send(layer, stream()));
    let bound = bare_peak + 1024 * 1024 + 4 * CHUNK;
    println!(
        "streaming 256 MiB: peak heap above start: bare {bare_peak} B, retry_layer {layer_peak} B (target <= {bound})"
    );
    if layer_peak > bound {
        failures.push(format!("streaming peak {layer_peak} > {bound}"));
    }

    // Uploading 256 MiB over loopback: the bare client once, the layer twice — the first
    // attempt is answered 503 halfway, the retry streams a reopened source.
    let reopened = upload_reopened(&rt, total);
    println!(
        "uploading 256 MiB over loopback: peak heap above start: bare {} B, retry_layer {} B \
         with a 503 halfway and a reopened retry (target <= {}); {} attempts, server hash {}",
        reopened.bare_peak,
        reopened.layer_peak,
        reopened.bound,
        reopened.attempts,
        reopened.verdict,
    );
    if reopened.layer_peak > reopened.bound {
        failures.push(format!(
            "reopened upload peak {} > {}",
            reopened.layer_peak, reopened.bound
        ));
    }
    if reopened.attempts != 2 || reopened.verdict != "matches" {
        failures.push(format!(
            "reopened upload: {} attempts, hash {}",
            reopened.attempts, reopened.verdict
        ));
    }

    if !failures.is_empty() {
        eprintln!("targets missed: {failures:?}");
        std::process::exit(1);
    }
}

/// A reproducible source of `left` bytes in 64 KiB chunks of unknown length: what a file
/// opened again yields again.
struct Source {
    left: usize,
    offset: u64,
}

impl Source {
    fn new(total: usize) -> Self {
        Source {
            left: total,
            offset: 0,
        }
    }
}

/// The byte at `offset` of every `Source`.
fn byte_at(offset: u64) -> u8 {
    (offset.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8
}

impl Body for Source {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(CHUNK);
        let start = self.offset;
        let chunk: Vec<u8> = (start..start + n as u64).map(byte_at).collect();
        self.left -= n;
        self.offset += n as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::new()
    }
}

/// FNV-1a, 64 bits: enough to tell whether two byte streams are the same.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

struct Reopened {
    bare_peak: usize,
    layer_peak: usize,
    bound: usize,
    attempts: u32,
    verdict: &'static str,
}

/// Uploads `total` bytes to a loopback server, bare and through the layer. The server
/// answers the layer's first attempt 503 after half the bytes and closes the connection; it
/// hashes every upload it reads whole.
fn upload_reopened(rt: &tokio::runtime::Runtime, total: usize) -> Reopened {
    let mut expected = Fnv::new();
    let mut offset = 0u64;
    while offset < total as u64 {
        let n = (total as u64 - offset).min(CHUNK as u64);
        let chunk: Vec<u8> = (offset..offset + n).map(byte_at).collect();
        expected.update(&chunk);
        offset += n;
    }
    let hashes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = hashes.clone();
    let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let addr = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (seen, failed) = (seen.clone(), failed.clone());
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let (seen, failed) = (seen.clone(), failed.clone());
                            async move {
                                let halfway = req.uri().path() == "/flaky"
                                    && !failed.swap(true, Ordering::SeqCst);
                                let mut body = req.into_body();
                                let (mut hash, mut read) = (Fnv::new(), 0usize);
                                while let Some(frame) = body.frame().await {
                                    if let Some(data) = frame.unwrap().data_ref() {
                                        hash.update(data);
                                        read += data.len();
                                    }
                                    if halfway && read >= total / 2 {
                                        let mut response = ok();
                                        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                                        response.headers_mut().insert(
                                            http::header::CONNECTION,
                                            "close".parse().unwrap(),
                                        );
                                        return Ok::<_, Infallible>(response);
                                    }
                                }
                                seen.lock().unwrap().push(hash.0);
                                Ok(ok())
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    });

    let bare: Client<HttpConnector, Source> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::put(format!("http://{addr}/sink"))
        .body(Source::new(total))
        .unwrap();
    let bare_peak = peak_above_start(rt, send(bare, request));
    // Let the bare run's connection close on both ends, so that what it frees does not hide
    // what the next run allocates.
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(200)).await });

    let layer = RetryLayer::new()
        .backoff(Backoff::constant(Duration::ZERO))
        .layer(Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Source>>());
    let mut request = Request::put(format!("http://{addr}/flaky"))
        .body(Source::new(total))
        .unwrap();
    request
        .extensions_mut()
        .insert(retryable_http::body::Reopen::new(move || {
            ready(Ok::<_, Infallible>(Source::new(total)))
        }));
    let attempts = Arc::new(AtomicU64::new(0));
    let counted = attempts.clone();
    let layer_peak = peak_above_start(rt, async move {
        let response = layer.oneshot(request).await.unwrap();
        let n = retryable_http::Attempts::of(&response).attempts();
        counted.store(u64::from(n), Ordering::SeqCst);
        assert_eq!(response.status(), StatusCode::OK, "after {n} attempt(s)");
        std::hint::black_box(response.into_body().collect().await.unwrap());
    });
    let hashes = hashes.lock().unwrap().clone();
    let verdict = if hashes.len() == 2 && hashes.iter().all(|&h| h == expected.0) {
        "matches"
    } else {
        "differs"
    };
    Reopened {
        bare_peak,
        layer_peak,
        bound: bare_peak + 1024 * 1024 + 4 * CHUNK,
        attempts: attempts.load(Ordering::SeqCst) as u32,
        verdict,
    }
}
