//! A 1 GiB download over loopback, cut every 64 MiB and resumed, side by side with the same
//! download uncut: throughput, peak heap, and the hash of what arrived.
//!
//! ```text
//! cargo bench --bench resume --features fault
//! ```
//!
//! The server, in this process, is hyper's HTTP/1.1 server over a file of 1 GiB made on the
//! fly in 64 KiB chunks, with an `ETag`, `Content-Length` and `Range` (with `If-Range`).
//! The cut is `FaultLayer`'s `Effect::CutBody` in front of it, what `examples/fault_proxy.rs
//! --cut-body` does: every response is cut 64 MiB into its body, and the connection drops.
//! The client is hyper-util's, bare, through the layer, and through the layer resuming the
//! cut download. Each run hashes what it reads (a word-wise FNV-1a), as a downloader checks
//! what it got; the runs alternate, five rounds in turning order, and the medians are compared.
//!
//! Exits with an error when a target is missed: the cut download completes with the file's
//! hash, peaks within the bare client's heap plus 4 chunks, and runs at 0.9 of the uncut
//! download's throughput or more.

#![allow(missing_docs)]

#[path = "support/counting.rs"]
mod counting;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use retryable_http::RetryLayer;
use retryable_http::backoff::Backoff;
use retryable_http::body::ReplayBody;
use retryable_http::fault::{Effect, FaultLayer, Rule};
use retryable_http::resume::{Resume, Resumes};
use tower::{Layer, ServiceExt, service_fn};

use counting::{LIVE, PEAK};

const SIZE: u64 = 1 << 30;
const CHUNK: usize = 64 * 1024;
const CUT: u64 = 64 << 20;
const ETAG: &str = "\"file-1\"";

/// Byte `i` of the file: each 8-byte word holds its index, mixed.
fn word(index: u64) -> u64 {
    index.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5151_5151
}

/// The file from byte `at` on, in chunks that end on chunk boundaries.
struct File {
    at: u64,
}

impl Body for File {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.at >= SIZE {
            return Poll::Ready(None);
        }
        let end = ((self.at / CHUNK as u64 + 1) * CHUNK as u64).min(SIZE);
        let mut chunk = Vec::with_capacity((end - self.at) as usize);
        for i in self.at..end {
            chunk.push(word(i / 8).to_le_bytes()[(i % 8) as usize]);
        }
        self.at = end;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(SIZE - self.at)
    }
}

/// Answers `GET` with the file, or the rest of it from `Range: bytes=N-` when `If-Range`
/// holds.
fn serve_file<B>(request: Request<B>) -> Response<File> {
    let start = request
        .headers()
        .get("range")
        .and_then(|v| {
            v.to_str()
                .ok()?
                .strip_prefix("bytes=")?
                .strip_suffix('-')?
                .parse()
                .ok()
        })
        .filter(|_| request.headers().get("if-range").is_none_or(|v| v == ETAG));
    let response = Response::builder().header("etag", ETAG);
    let response = match start {
        Some(from) => response
            .status(StatusCode::PARTIAL_CONTENT)
            .header("content-range", format!("bytes {from}-{}/{SIZE}", SIZE - 1))
            .header("content-length", SIZE - from),
        None => response.header("content-length", SIZE),
    };
    response
        .body(File {
            at: start.unwrap_or(0),
        })
        .unwrap()
}

/// A hyper server of the file on a loopback port, each response cut `CUT` bytes in when
/// `cut`.
async fn server(cut: bool) -> std::net::SocketAddr {
    let files = service_fn(|request: Request<hyper::body::Incoming>| async move {
        Ok::<_, Infallible>(serve_file(request))
    });
    let mut faults = FaultLayer::new();
    if cut {
        faults = faults.rule(Rule::new(Effect::CutBody(CUT)));
    }
    let service = faults.layer(files);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// FNV-1a over 8-byte words, whatever the chunks' boundaries.
#[derive(Default)]
struct Hash {
    state: u64,
    carry: [u8; 8],
    held: usize,
    len: u64,
}

impl Hash {
    fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if self.held > 0 {
            let take = (8 - self.held).min(bytes.len());
            self.carry[self.held..self.held + take].copy_from_slice(&bytes[..take]);
            self.held += take;
            bytes = &bytes[take..];
            if self.held < 8 {
                return;
            }
            self.word(u64::from_le_bytes(self.carry));
            self.held = 0;
        }
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.word(u64::from_le_bytes(w.try_into().unwrap()));
        }
        let rest = words.remainder();
        self.carry[..rest.len()].copy_from_slice(rest);
        self.held = rest.len();
    }

    fn word(&mut self, w: u64) {
        self.state = (self.state ^ w).wrapping_mul(0x0000_0100_0000_01b3);
    }

    fn of_file() -> (u64, u64) {
        let mut hash = Hash::default();
        for i in 0..SIZE / 8 {
            hash.word(word(i));
        }
        (hash.state, SIZE)
    }
}

/// One download: its time, the hash and length of what arrived, and how many resumes.
struct Run {
    time: Duration,
    hash: (u64, u64),
    resumes: usize,
}

async fn read<B>(mut body: B) -> Hash
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    let mut hash = Hash::default();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("the download completes").into_data() {
            hash.update(&data);
        }
    }
    hash
}

async fn bare(url: &str) -> Run {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let started = Instant::now();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let hash = read(response.into_body()).await;
    Run {
        time: started.elapsed(),
        hash: (hash.state, hash.len),
        resumes: 0,
    }
}

async fn layer(url: &str) -> Run {
    let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Empty<Bytes>>>();
    let client = RetryLayer::new()
        .no_budget()
        .max_retries(32)
        .backoff(Backoff::constant(Duration::from_millis(1)))
        .resume_downloads(Resume::new())
        .layer(client);
    let started = Instant::now();
    let request = Request::get(url).body(Empty::new()).unwrap();
    let response = client.oneshot(request).await.unwrap();
    let log = Resumes::of(&response).unwrap();
    let hash = read(response.into_body()).await;
    Run {
        time: started.elapsed(),
        hash: (hash.state, hash.len),
        resumes: log.list().len(),
    }
}

/// The peak heap above what was live before, while `f` runs, and its output.
fn peak<T>(rt: &tokio::runtime::Runtime, f: impl std::future::Future<Output = T>) -> (T, usize) {
    let start = LIVE.load(Ordering::SeqCst);
    PEAK.store(start, Ordering::SeqCst);
    let out = rt.block_on(f);
    (out, PEAK.load(Ordering::SeqCst).saturating_sub(start))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    if std::env::args().skip(1).any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (whole, cut) = rt.block_on(async { (server(false).await, server(true).await) });
    let (whole, cut) = (format!("http://{whole}/big"), format!("http://{cut}/big"));
    let expected = Hash::of_file();
    let mut failures = Vec::new();
    let names = [
        "bare, uncut",
        "retry_layer, uncut",
        "retry_layer, cut every 64 MiB",
    ];
    let mut speeds: [Vec<f64>; 3] = Default::default();
    let mut peaks = [0usize; 3];
    let mut resumes = [0usize; 3];
    for round in 0..5 {
        // Each round in another order, so that no variant always goes first.
        for k in 0..3 {
            let i = (round + k) % 3;
            let (run, heap) = match i {
                0 => peak(&rt, bare(&whole)),
                1 => peak(&rt, layer(&whole)),
                _ => peak(&rt, layer(&cut)),
            };
            if run.hash != expected {
                failures.push(format!("{}: the hash does not match", names[i]));
            }
            // At least one resume per cut; one more when the server lost what it had buffered
            // as the connection dropped, and the last piece started short of a cut.
            if i == 2 && run.resumes < (SIZE / CUT - 1) as usize {
                failures.push(format!("{}: {} resumes", names[i], run.resumes));
            }
            resumes[i] = resumes[i].max(run.resumes);
            speeds[i].push(SIZE as f64 / run.time.as_secs_f64() / (1 << 20) as f64);
            peaks[i] = peaks[i].max(heap);
        }
    }
    println!(
        "{:<34} {:>12} {:>14}",
        "1 GiB over loopback", "MiB/s", "peak heap"
    );
    let medians: Vec<f64> = speeds.iter().map(|s| median(s.clone())).collect();
    for i in 0..3 {
        println!("{:<34} {:>12.0} {:>12} B", names[i], medians[i], peaks[i]);
    }
    let ratio = medians[2] / medians[0];
    println!("cut and resumed / bare uncut: {ratio:.3} (target >= 0.9)");
    println!("resumes of the cut download: up to {}", resumes[2]);
    println!(
        "cut and resumed / layer uncut: {:.3}",
        medians[2] / medians[1]
    );
    if ratio < 0.9 {
        failures.push(format!("throughput ratio {ratio:.3} < 0.9"));
    }
    let bound = peaks[0] + 4 * CHUNK;
    println!(
        "peak heap of the cut download: {} B (target <= bare {} B + 4 chunks = {bound} B)",
        peaks[2], peaks[0]
    );
    if peaks[2] > bound {
        failures.push(format!("peak heap {} > {bound}", peaks[2]));
    }
    if !failures.is_empty() {
        eprintln!("missed: {}", failures.join("; "));
        std::process::exit(1);
    }
}
