//! Resumed downloads over real sockets: a hyper server whose `FaultLayer` cuts every
//! response body, over HTTP/1.1 (the connection drops mid-body) and HTTP/2 (the stream is
//! reset). The checks are on counts and bytes; the time limits are generous.
#![cfg(all(feature = "fault", feature = "hyper"))]

mod support;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use retryable_http::RetryLayer;
use retryable_http::backoff::Backoff;
use retryable_http::body::ReplayBody;
use retryable_http::fault::{Effect, FaultLayer, FaultLog, Rule};
use retryable_http::resume::{Resume, Resumes};
use support::files::{Break, Files, content};
use support::within;
use tokio::net::TcpListener;
use tower::{Layer, ServiceExt};

const KIB: usize = 1024;

/// Serves `files` behind a fault layer that cuts every body `every` bytes in (`reset` for
/// HTTP/2's stream reset), over HTTP/2 when `h2`.
async fn serve(files: Files, every: u64, h2: bool) -> (std::net::SocketAddr, FaultLog) {
    let effect = if h2 {
        Effect::ResetBody(every)
    } else {
        Effect::CutBody(every)
    };
    let faults = FaultLayer::new().rule(Rule::new(effect));
    let log = faults.log();
    let service = faults.layer(files);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let io = TokioIo::new(stream);
                let _ = if h2 {
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(io, service)
                        .await
                } else {
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await
                };
            });
        }
    });
    (addr, log)
}

async fn download(addr: std::net::SocketAddr, h2: bool) -> (Bytes, Vec<u64>) {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(h2)
        .build_http::<ReplayBody<Empty<Bytes>>>();
    let client = RetryLayer::new()
        .no_budget()
        .max_retries(40)
        .backoff(Backoff::constant(Duration::from_millis(5)))
        .resume_downloads(Resume::new())
        .layer(client);
    let request = Request::get(format!("http://{addr}/big.bin"))
        .body(Empty::new())
        .unwrap();
    let response = within(client.oneshot(request)).await.unwrap();
    assert_eq!(response.status(), 200);
    let log = Resumes::of(&response).unwrap();
    let mut body = response.into_body();
    let mut all = BytesMut::new();
    within(async {
        while let Some(frame) = body.frame().await {
            let frame = frame.expect("every break is resumed");
            if let Ok(data) = frame.into_data() {
                all.extend_from_slice(&data);
            }
        }
    })
    .await;
    let offsets = log.list().iter().map(|r| r.offset()).collect();
    (all.freeze(), offsets)
}

#[tokio::test]
async fn over_http1_a_connection_dropped_every_256_kib_is_resumed_to_the_last_byte() {
    resumed_to_the_last_byte(false).await;
}

#[tokio::test]
async fn over_http2_a_stream_reset_every_256_kib_is_resumed_to_the_last_byte() {
    resumed_to_the_last_byte(true).await;
}

/// Downloads 2 MiB cut every 256 KiB, over HTTP/2 when `h2`: every byte arrives, in order.
async fn resumed_to_the_last_byte(h2: bool) {
    let file = content(2048 * KIB);
    let files = Files::new(file.clone(), Break::Never);
    let (addr, log) = serve(files, 256 * KIB as u64, h2).await;
    let (bytes, offsets) = download(addr, h2).await;
    assert_eq!(bytes.len(), file.len());
    assert!(bytes == file, "the bytes are the file's");
    // Each break at the cut, unless the server lost some of what it had buffered when the
    // connection dropped or the stream was reset: then the resume starts where the bytes
    // stopped.
    assert_resumed(&offsets, log.len());
}

/// Every request after the first resumed the body, each from further on, and there were at
/// least the seven breaks a 2 MiB file cut every 256 KiB has.
fn assert_resumed(offsets: &[u64], requests: usize) {
    assert!(offsets.len() >= 7, "{offsets:?}");
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    assert!(
        offsets.iter().all(|o| *o < 2048 * KIB as u64),
        "{offsets:?}"
    );
    assert_eq!(requests, offsets.len() + 1);
}
