//! Instructions per request, for comparing the layer's cost across versions: counts under
//! callgrind are exact and repeatable where timings on a shared machine are not.
//!
//! ```text
//! cargo bench --bench instructions --no-run
//! BIN=$(ls -t target/release/deps/instructions-* | grep -v '\.d$' | head -1)
//! count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null $BIN $1 $2 2>&1 | grep -o 'Collected : [0-9]*' | grep -o '[0-9]*$'; }
//! for v in bare tower layer shared_budget no_budget no_retries hedged \
//!     bare_warn layer_warn bare_info layer_info bare_otel layer_otel; do
//!   echo "$v $(( ($(count 11000 $v) - $(count 1000 $v)) / 10000 )) instructions per request"
//! done
//! for v in h1_bare h1_layer h1_tower h2_bare h2_layer h2_tower h1_bare_32 h1_layer_32 h2_bare_32 h2_layer_32; do
//!   echo "$v $(( ($(count 11200 $v) - $(count 1600 $v)) / 9600 )) instructions per request"
//! done
//! ```
//!
//! The gRPC runs (`grpc_bare`, `grpc_layer`) send unary calls through a tonic `Channel` to a
//! tonic server, bare or through `GrpcLayer`; they need the `grpc` feature (`cargo bench
//! --bench instructions --features grpc --no-run`), and are counted as the loopback runs
//! are.
//!
//! Each in-memory run sends N GETs through an in-memory `service_fn`: `bare`, `tower`
//! (tower's retry with a policy that clones the request), `layer` (the defaults: a budget
//! per destination), `shared_budget` (one budget for every request), `no_budget`,
//! `no_retries` (`max_retries(0)`), `hedged` (`Hedge::after(10 ms)`, answered at once).
//!
//! With `_warn`, `_info` or `_otel` after an in-memory run's name (`layer_info`,
//! `bare_info`), a subscriber is installed for the run: tracing-subscriber's registry that
//! wants `WARN` (the layer's spans and events are off), `INFO` (the attempt spans are made and
//! kept until they end), or `INFO` with `tracing-opentelemetry` making an OpenTelemetry span
//! of each (sampled, then dropped: no exporter).
//!
//! The loopback runs (`h1_*`, `h2_*`) send N GETs one after another through hyper-util's
//! client to a hyper server on 127.0.0.1, over HTTP/1.1 keep-alive or HTTP/2 with prior
//! knowledge: `bare`, `layer` (the defaults) and `tower`; with `_32` (`h1_layer_32`), in
//! batches of 32 in flight at once, as `benches/paired.rs` sends them. The server is a child
//! process that callgrind does not follow, so the count is the client's alone: what a user of
//! the client pays on the thread that sends.
//!
//! The difference between the long and the short run, divided by the requests between
//! them, leaves out the start-up. Run without an argument it does nothing, so `cargo bench`
//! passes over it.

#![allow(missing_docs)]

#[path = "support/mod.rs"]
mod support;

use std::convert::Infallible;
use std::future::ready;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use retryable_http::{RetryLayer, body::ReplayBody, hedge::Hedge};
use support::{
    bare_client, bare_h2_client, batch, exchange, replay_client, replay_h2_client, request,
    tower_retry,
};
use tower::{Layer, service_fn};

const URL: &str = "http://bench.test/";

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let (Some(n), Some(variant)) = (args.next(), args.next()) else {
        return;
    };
    if n == "serve" {
        return serve(&variant);
    }
    let n: usize = n.parse().expect("a number of requests");
    if let Some((version, client)) = variant
        .split_once('_')
        .filter(|(v, _)| ["h1", "h2", "grpc"].contains(v))
    {
        return loopback(n, version, client);
    }
    // The spans' cost: a subscriber that wants nothing of the layer's, one that keeps its
    // spans (tracing-subscriber's registry at INFO), and one that makes OpenTelemetry spans
    // of them.
    let subscribers = [
        ("_warn", Subscriber::Warn),
        ("_info", Subscriber::Info),
        ("_otel", Subscriber::Otel),
    ];
    let mut variant = variant;
    for (suffix, which) in subscribers {
        if let Some(base) = variant.strip_suffix(suffix) {
            variant = base.to_owned();
            subscribe(which);
        }
    }
    let rt = support::current_thread();
    let ok = || Response::new(Full::new(Bytes::from_static(b"ok")));
    let bare = service_fn(move |_req: Request<Full<Bytes>>| ready(Ok::<_, Infallible>(ok())));
    let inner =
        service_fn(move |_req: Request<ReplayBody<Full<Bytes>>>| ready(Ok::<_, Infallible>(ok())));
    let empty = Bytes::new();
    rt.block_on(async {
        match variant.as_str() {
            "bare" => {
                for _ in 0..n {
                    exchange(bare, request(URL, &empty)).await;
                }
            }
            "tower" => {
                let peer = tower_retry(bare);
                for _ in 0..n {
                    exchange(peer.clone(), request(URL, &empty)).await;
                }
            }
            layer => {
                let layer = match layer {
                    "no_budget" => RetryLayer::new().no_budget(),
                    "shared_budget" => {
                        RetryLayer::new().budget(retryable_http::budget::Budget::default())
                    }
                    "no_retries" => RetryLayer::new().max_retries(0),
                    "hedged" => RetryLayer::new().hedge(Hedge::after(Duration::from_millis(10))),
                    _ => RetryLayer::new(),
                };
                let retry = layer.layer(inner);
                for _ in 0..n {
                    exchange(retry.clone(), request(URL, &empty)).await;
                }
            }
        }
    });
}

#[derive(Clone, Copy)]
enum Subscriber {
    Warn,
    Info,
    Otel,
}

/// Installs a subscriber for the whole run.
fn subscribe(which: Subscriber) {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::layer::SubscriberExt;
    let registry = tracing_subscriber::registry();
    let result = match which {
        Subscriber::Warn => {
            tracing::subscriber::set_global_default(registry.with(LevelFilter::WARN))
        }
        Subscriber::Info => {
            tracing::subscriber::set_global_default(registry.with(LevelFilter::INFO))
        }
        Subscriber::Otel => {
            use opentelemetry::trace::TracerProvider;
            // Spans are made and sampled, then dropped: no exporter.
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
            let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
            std::mem::forget(provider);
            tracing::subscriber::set_global_default(registry.with(LevelFilter::INFO).with(otel))
        }
    };
    result.expect("one subscriber per run");
}

/// Sends `n` GETs through hyper-util's client, over `version` (`h1` or `h2`), to a server
/// in a child process.
fn loopback(n: usize, version: &str, client: &str) {
    use std::io::BufRead;
    let exe = std::env::current_exe().expect("the path of this program");
    let mut server = std::process::Command::new(exe)
        .args(["serve", version])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("the server's address");
    let url = format!("http://{}/", line.trim());
    let h2 = version == "h2";
    // `layer_32`: the requests go in batches of 32 in flight at once, as in the paired
    // benchmark's concurrent groups.
    let (client, batched) = match client.strip_suffix("_32") {
        Some(client) => (client, true),
        None => (client, false),
    };
    let rt = support::current_thread();
    if version == "grpc" {
        grpc(&rt, &line, n, client);
    } else {
        loopback_http(&rt, &url, h2, n, client, batched);
    }
    drop(server.stdin.take());
    let _ = server.wait();
}

/// Sends `n` GETs through hyper-util's client to `url`: `bare`, `tower` or `layer`.
fn loopback_http(
    rt: &tokio::runtime::Runtime,
    url: &str,
    h2: bool,
    n: usize,
    client: &str,
    batched: bool,
) {
    rt.block_on(async {
        match client {
            "bare" => {
                let bare = if h2 { bare_h2_client() } else { bare_client() };
                send_all(bare, url, n, batched).await;
            }
            "tower" => {
                let peer = tower_retry(if h2 { bare_h2_client() } else { bare_client() });
                send_all(peer, url, n, batched).await;
            }
            "layer" => {
                let client = if h2 {
                    replay_h2_client()
                } else {
                    replay_client()
                };
                send_all(RetryLayer::new().layer(client), url, n, batched).await;
            }
            other => panic!("no loopback variant {other}"),
        }
    });
}

/// Sends `n` GETs through `service`, one after another or in batches of 32 in flight.
async fn send_all<S, B>(service: S, url: &str, n: usize, batched: bool)
where
    S: tower::Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: std::fmt::Debug,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: std::fmt::Debug,
{
    if batched {
        for _ in 0..n / 32 {
            batch(service.clone(), url).await;
        }
    } else {
        for _ in 0..n {
            exchange(service.clone(), request(url, &Bytes::new())).await;
        }
    }
}

/// Sends `n` unary calls through a tonic channel to the server at `addr`: `bare`, or
/// through `GrpcLayer` (`layer`) with a config that retries the method.
#[cfg(feature = "grpc")]
fn grpc(rt: &tokio::runtime::Runtime, addr: &str, n: usize, client: &str) {
    use retryable_http::grpc::{GrpcLayer, ServiceConfig};
    use tonic::client::Grpc;
    let addr = addr.trim().parse().expect("the server's address");
    let channel = rt.block_on(support::grpc_channel(addr));
    let config = ServiceConfig::from_json(
        r#"{"methodConfig": [{"name": [{"service": "echo.Echo"}],
            "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.1s", "maxBackoff": "1s",
              "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}],
          "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}}"#,
    )
    .expect("a valid config");
    rt.block_on(async {
        match client {
            "bare" => {
                let bare = Grpc::new(channel);
                for _ in 0..n {
                    support::grpc_call(bare.clone()).await;
                }
            }
            "layer" => {
                let retry = Grpc::new(GrpcLayer::new(config).layer(channel));
                for _ in 0..n {
                    support::grpc_call(retry.clone()).await;
                }
            }
            other => panic!("no gRPC variant {other}"),
        }
    });
}

#[cfg(not(feature = "grpc"))]
fn grpc(_: &tokio::runtime::Runtime, _: &str, _: usize, _: &str) {
    panic!("the gRPC variants need the grpc feature");
}

/// The server of the loopback runs: prints its address, and serves until its standard
/// input closes.
fn serve(version: &str) {
    let addr = match version {
        "h2" => support::server_h2(),
        #[cfg(feature = "grpc")]
        "grpc" => support::grpc_server(),
        _ => support::server(),
    };
    println!("{addr}");
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
}
