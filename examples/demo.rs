//! A flaky upstream and a retrying client, with every attempt on the timeline.
//!
//! ```text
//! cargo run --example demo
//! ```
//!
//! The demo starts an HTTP server on a loopback port the OS picks, for HTTP/1.1 and for
//! HTTP/2 with prior knowledge. It fails on purpose: 502, 502, then 503 with
//! `Retry-After: 1`, then 200 for the GET; a dropped connection for the second GET; a 502
//! for the POSTs; over HTTP/2, a POST whose stream it refuses (`RST_STREAM` with
//! `REFUSED_STREAM`: the server says it did not process it); a GET it stalls for 2 s the first
//! time, which a hedge answers; a 3 MiB download whose connection it drops 1 MiB into the
//! first two responses, which the layer resumes with `Range` and `If-Range`. A hyper-util
//! client wrapped in `RetryLayer` sends seven requests, and prints, for each, what the layer
//! recorded: every attempt, how it ended, how long the layer waited before it and why (the
//! `Attempts` record every response and error carries), and for the download, the byte
//! range each response carried (its `Resumes` log).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use retryable_http::backoff::{Backoff, Jitter};
use retryable_http::budget::Budget;
use retryable_http::resume::{Resume, Resumes};
use retryable_http::{Attempts, RetryLayer, hedge::Hedge, record::Ended};
use tokio::net::TcpListener;
use tower::{Layer, ServiceExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The upstream's bodies: whole, or streamed.
type Reply = Response<UnsyncBoxBody<Bytes, BoxError>>;

/// The download: 3 MiB, cut 1 MiB into each of the first two responses.
const FILE: usize = 3 << 20;
const CUT: usize = 1 << 20;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let upstream = start_upstream().await?;
    println!("retryable-http demo");
    println!("a flaky upstream listens on http://{upstream}\n");

    // Waits of 200 ms, 400 ms, 800 ms ... without jitter, so the timeline is easy to read.
    let backoff = Backoff::exponential(Duration::from_millis(200), Duration::from_secs(2))?
        .jitter(Jitter::None);
    let layer = RetryLayer::new().max_retries(4).backoff(backoff);
    let http1 = layer.layer(Client::builder(TokioExecutor::new()).build_http());
    let http2 = layer.layer(
        Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http(),
    );
    // The same, hedging: a second attempt when the first has not answered within 100 ms.
    let hedged = layer
        .clone()
        .hedge(Hedge::after(Duration::from_millis(100)))
        .layer(Client::builder(TokioExecutor::new()).build_http());

    let started = Instant::now();
    let mut summary = Vec::new();
    let scenarios = [
        (
            "flaky GET: 502, 502, 503 with Retry-After: 1, then 200",
            Request::get(format!("http://{upstream}/flaky")).body(Full::new(Bytes::new()))?,
        ),
        (
            "dropped GET: the connection drops once, then 200",
            Request::get(format!("http://{upstream}/dropped")).body(Full::new(Bytes::new()))?,
        ),
        (
            "plain POST: 502, not retried (the upstream may have done the work)",
            Request::post(format!("http://{upstream}/orders"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(r#"{"item":"book","qty":1}"#)))?,
        ),
        (
            "POST with Idempotency-Key: 502, then 201",
            Request::post(format!("http://{upstream}/orders"))
                .header("content-type", "application/json")
                .header("idempotency-key", "order-7f3a")
                .body(Full::new(Bytes::from(r#"{"item":"book","qty":1}"#)))?,
        ),
        (
            "HTTP/2 POST: stream refused, retried safely (never processed), then 201",
            Request::post(format!("http://{upstream}/h2/orders"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(r#"{"item":"pen","qty":2}"#)))?,
        ),
        (
            "hedged GET: the first attempt stalls, a hedge after 100 ms answers",
            Request::get(format!("http://{upstream}/slow")).body(Full::new(Bytes::new()))?,
        ),
    ];
    for (title, request) in scenarios {
        println!("{title}");
        let over_http2 = request.uri().path().starts_with("/h2/");
        println!(
            "  {} {}{}",
            request.method(),
            request.uri(),
            if over_http2 { " (HTTP/2)" } else { "" }
        );
        let start = Instant::now();
        let client = match request.uri().path() {
            "/slow" => &hedged,
            _ if over_http2 => &http2,
            _ => &http1,
        };
        let response = client.clone().oneshot(request).await?;
        let elapsed = start.elapsed();
        let status = response.status();
        let record = Attempts::of(&response);
        let attempts = record.attempts();
        print_record(&record);
        let body = response.into_body().collect().await?.to_bytes();
        println!(
            "  => {status} after {attempts} attempt(s) in {:.2} s, body {:?}\n",
            elapsed.as_secs_f64(),
            String::from_utf8_lossy(&body),
        );
        summary.push((title, status, attempts));
    }

    // A download whose connection drops twice, resumed where it broke.
    let title = "download: 3 MiB, the connection dropped 1 MiB into two responses, resumed";
    println!("{title}");
    // A budget of its own: the requests above failed often enough on this host that its
    // default budget's throttle would refuse the resumes.
    let resuming = layer
        .clone()
        .budget(Budget::default())
        .resume_downloads(Resume::new())
        .layer(Client::builder(TokioExecutor::new()).build_http());
    let request =
        Request::get(format!("http://{upstream}/download")).body(Full::new(Bytes::new()))?;
    println!("  {} {}", request.method(), request.uri());
    let start = Instant::now();
    let response = resuming.oneshot(request).await?;
    let status = response.status();
    let first = Attempts::of(&response).into_owned();
    let log = Resumes::of(&response).ok_or("the download is resumable")?;
    let body = response.into_body().collect().await?.to_bytes();
    let resumes = log.list();
    let mut from = 0;
    print_record(&first);
    for (i, resumed) in resumes.iter().enumerate() {
        println!(
            "    bytes {from}-{} arrived, then: {}",
            resumed.offset() - 1,
            resumed.cause()
        );
        println!(
            "    resume {} from byte {}, after {:?} (backoff):",
            i + 1,
            resumed.offset(),
            resumed.waited()
        );
        print_record(resumed.record());
        from = resumed.offset();
    }
    println!("    bytes {from}-{} arrived", body.len().saturating_sub(1));
    let attempts = first.attempts() + resumes.iter().map(|r| r.record().attempts()).sum::<u32>();
    let intact = body.len() == FILE && body.iter().enumerate().all(|(i, b)| *b == byte(i));
    println!(
        "  => {status} after {attempts} attempt(s) in {:.2} s, {} bytes, {}\n",
        start.elapsed().as_secs_f64(),
        body.len(),
        if intact {
            "every byte once, in order"
        } else {
            "CORRUPT"
        },
    );
    summary.push((title, status, attempts));

    println!("summary");
    for (title, status, attempts) in &summary {
        let name = title.split(':').next().unwrap_or(title);
        println!("  {name:<26} {status} after {attempts} attempt(s)");
    }
    println!(
        "  {} requests, {} attempts, {:.2} s",
        summary.len(),
        summary.iter().map(|s| s.2).sum::<u32>(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One line per attempt: how it ended, and the wait before it.
fn print_record(record: &Attempts) {
    for (i, attempt) in record.iter().enumerate() {
        let ended = match attempt.ended() {
            Ended::Status(status) => status.to_string(),
            Ended::Error(class) => format!("error ({class})"),
            Ended::Abandoned => "abandoned".to_owned(),
            other => format!("{other:?}"),
        };
        let waited = match attempt.waited() {
            Some((wait, why)) => format!("after {wait:?} ({why})"),
            None => String::new(),
        };
        let line = format!("    attempt {} -> {ended:<26} {waited}", i + 1);
        println!("{}", line.trim_end());
    }
}

/// Starts the flaky upstream and returns its address.
async fn start_upstream() -> Result<std::net::SocketAddr, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let hits = hits.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| answer(req, hits.clone()));
                // The same port for both: HTTP/1.1, or HTTP/2 with prior knowledge.
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// The upstream's script: what the n-th request to each path gets.
async fn answer(
    req: Request<Incoming>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
) -> Result<Reply, BoxError> {
    let path = req.uri().path().to_owned();
    let n = {
        let mut hits = hits.lock().unwrap();
        let n = hits.entry(path.clone()).or_default();
        *n += 1;
        *n
    };
    if path == "/download" {
        return Ok(download(&req, n));
    }
    // The upstream reads the whole request, as a real one would, before answering.
    let _ = req.into_body().collect().await;
    let reply = |status: StatusCode, body: &'static str| {
        let body = Full::new(Bytes::from_static(body.as_bytes())).map_err(|e| match e {});
        let mut response = Response::new(body.boxed_unsync());
        *response.status_mut() = status;
        response
    };
    Ok(match (path.as_str(), n) {
        ("/flaky", 1 | 2) => reply(StatusCode::BAD_GATEWAY, "Bad Gateway Simulation"),
        ("/flaky", 3) => {
            let mut r = reply(StatusCode::SERVICE_UNAVAILABLE, "busy");
            r.headers_mut().insert("retry-after", "1".parse()?);
            r
        }
        ("/flaky", _) => reply(StatusCode::OK, "hello from the flaky upstream"),
        // An error from the service makes hyper close the connection without an answer.
        ("/dropped", 1) => return Err("dropping the connection".into()),
        ("/dropped", _) => reply(StatusCode::OK, "back again"),
        ("/orders", 1 | 2) => reply(StatusCode::BAD_GATEWAY, "Bad Gateway Simulation"),
        ("/orders", _) => reply(StatusCode::CREATED, "order created"),
        // hyper resets the stream with the reason of the h2 error its service returns.
        ("/h2/orders", 1) => return Err(h2::Error::from(h2::Reason::REFUSED_STREAM).into()),
        ("/h2/orders", _) => reply(StatusCode::CREATED, "order created over HTTP/2"),
        ("/slow", 1) => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            reply(StatusCode::OK, "late")
        }
        ("/slow", _) => reply(StatusCode::OK, "answered by the hedge"),
        _ => reply(StatusCode::NOT_FOUND, "no such path"),
    })
}

/// Byte `i` of the download.
fn byte(i: usize) -> u8 {
    (i * 7 % 251) as u8
}

/// The download's `n`-th response: the file, or the rest of it from `Range: bytes=N-` while
/// `If-Range` names its tag; the first two are cut 1 MiB in, which makes hyper drop the
/// connection.
fn download(req: &Request<Incoming>, n: usize) -> Reply {
    let from = req
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
        .filter(|_| {
            req.headers()
                .get("if-range")
                .is_some_and(|v| v == "\"demo-1\"")
        });
    let start: usize = from.unwrap_or(0);
    let end = if n <= 2 {
        (start + CUT).min(FILE)
    } else {
        FILE
    };
    let chunks = (start..end).step_by(64 << 10).map(move |at| {
        let chunk: Vec<u8> = (at..(at + (64 << 10)).min(end)).map(byte).collect();
        Ok::<_, BoxError>(http_body::Frame::data(Bytes::from(chunk)))
    });
    let cut = (end < FILE).then(|| Err::<http_body::Frame<Bytes>, BoxError>("cut".into()));
    let body = StreamBody::new(futures_util::stream::iter(chunks.chain(cut)));
    let response = Response::builder()
        .header("etag", "\"demo-1\"")
        .header("content-length", FILE - start);
    let response = match from {
        Some(from) => response
            .status(StatusCode::PARTIAL_CONTENT)
            .header("content-range", format!("bytes {from}-{}/{FILE}", FILE - 1)),
        None => response,
    };
    response
        .body(body.boxed_unsync())
        .expect("a valid response")
}
