//! The loopback ratios, measured interleaved: each round times a block of requests through
//! every variant, in a rotating order, so that drift on a shared machine (frequency,
//! neighbours, scheduling) hits every variant alike. criterion's groups in
//! `benches/overhead.rs` measure one function after another; on a 2-core VM their loopback
//! numbers move by more than the few percent being compared.
//!
//! ```text
//! cargo bench --bench paired
//! ```
//!
//! `grpc_unary`, a tonic unary call through `GrpcLayer` against the bare `Channel`, needs
//! the `grpc` feature: `cargo bench --bench paired --features grpc`.
//!
//! Prints, per group, each variant's median time per request over the 200 rounds, and the
//! median and 10th–90th percentile of the per-round ratio to `bare`. A run takes about a
//! minute. A name after `--` runs only the groups whose name holds it (`-- grpc`).

#![allow(missing_docs)]

#[path = "support/mod.rs"]
mod support;

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use bytes::Bytes;
use support::{
    bare_client, bare_h2_client, batch, exchange, layer, replay_client, replay_h2_client, request,
    reqwest_clients, server, server_h2, tower_retry,
};
use tokio::runtime::Runtime;
use tower::Layer;

type SendFn = Box<dyn Fn() -> Pin<Box<dyn Future<Output = ()>>>>;

const ROUNDS: usize = 200;
const BLOCK: usize = 400;

fn measure(rt: &Runtime, group: &str, variants: Vec<(&str, SendFn)>, block: usize) {
    // `cargo bench --bench paired -- grpc`: only the groups whose name holds `grpc`.
    let only = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    if only.is_some_and(|only| !group.contains(&only)) {
        return;
    }
    // Warm-up: connections made, caches and allocator warm, for every variant.
    rt.block_on(async {
        for _ in 0..1000 {
            for (_, send) in &variants {
                send().await;
            }
        }
    });
    let n = variants.len();
    let mut times = vec![Vec::with_capacity(ROUNDS); n];
    for round in 0..ROUNDS {
        for k in 0..n {
            let i = (round + k) % n;
            let send = &variants[i].1;
            let elapsed = rt.block_on(async {
                let start = Instant::now();
                for _ in 0..block {
                    send().await;
                }
                start.elapsed()
            });
            times[i].push(elapsed / block as u32);
        }
    }
    println!("{group}");
    let bare = &times[0];
    for (i, (name, _)) in variants.iter().enumerate() {
        let mut own = times[i].clone();
        own.sort();
        let median = own[ROUNDS / 2];
        let mut ratios: Vec<f64> = times[i]
            .iter()
            .zip(bare)
            .map(|(t, b)| t.as_secs_f64() / b.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "  {name:<14} {:>9.2} µs   ratio to bare {:.3} [{:.3} – {:.3}]",
            median.as_secs_f64() * 1e6,
            ratios[ROUNDS / 2],
            ratios[ROUNDS / 10],
            ratios[ROUNDS * 9 / 10],
        );
    }
}

fn boxed<F, Fut>(f: F) -> SendFn
where
    F: Fn() -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    Box::new(move || Box::pin(f()))
}

fn main() {
    let rt = support::current_thread();
    let addr = server();
    let url: &'static str = Box::leak(format!("http://{addr}/").into_boxed_str());

    for (group, body) in [
        ("loopback_get", Bytes::new()),
        ("loopback_post_64k", Bytes::from(vec![b'x'; 64 * 1024])),
    ] {
        let (bare, retry, peer) = (
            bare_client(),
            layer().layer(replay_client()),
            tower_retry(bare_client()),
        );
        let (b1, b2, b3) = (body.clone(), body.clone(), body.clone());
        let variants: Vec<(&str, SendFn)> = vec![
            (
                "bare",
                boxed(move || exchange(bare.clone(), request(url, &b1))),
            ),
            (
                "retry_layer",
                boxed(move || exchange(retry.clone(), request(url, &b2))),
            ),
            (
                "tower_retry",
                boxed(move || exchange(peer.clone(), request(url, &b3))),
            ),
        ];
        measure(&rt, group, variants, BLOCK);
    }

    // 32 requests in flight: a block is 20 batches.
    let (bare, retry) = (bare_client(), layer().layer(replay_client()));
    let variants: Vec<(&str, SendFn)> = vec![
        ("bare", boxed(move || batch(bare.clone(), url))),
        ("retry_layer", boxed(move || batch(retry.clone(), url))),
    ];
    measure(
        &rt,
        "loopback_get_concurrent (per batch of 32)",
        variants,
        20,
    );

    // 32 requests in flight, multiplexed on one HTTP/2 connection.
    let url_h2: &'static str = Box::leak(format!("http://{}/", server_h2()).into_boxed_str());
    let (bare, retry) = (bare_h2_client(), layer().layer(replay_h2_client()));
    let variants: Vec<(&str, SendFn)> = vec![
        ("bare", boxed(move || batch(bare.clone(), url_h2))),
        ("retry_layer", boxed(move || batch(retry.clone(), url_h2))),
    ];
    measure(
        &rt,
        "loopback_h2_concurrent (per batch of 32)",
        variants,
        20,
    );

    // A tonic unary call over loopback: the bare `Channel`, and through `GrpcLayer` with a
    // service config that retries the method.
    #[cfg(feature = "grpc")]
    {
        use retryable_http::grpc::{GrpcLayer, ServiceConfig};
        use tonic::client::Grpc;
        let addr = support::grpc_server();
        let channel = rt.block_on(support::grpc_channel(addr));
        let config = ServiceConfig::from_json(
            r#"{"methodConfig": [{"name": [{"service": "echo.Echo"}],
                "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.1s",
                  "maxBackoff": "1s", "backoffMultiplier": 2,
                  "retryableStatusCodes": ["UNAVAILABLE"]}}],
              "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}}"#,
        )
        .unwrap();
        let bare = Grpc::new(channel.clone());
        let retry = Grpc::new(GrpcLayer::new(config).layer(channel));
        let variants: Vec<(&str, SendFn)> = vec![
            ("bare", boxed(move || support::grpc_call(bare.clone()))),
            (
                "retry_layer",
                boxed(move || support::grpc_call(retry.clone())),
            ),
        ];
        measure(&rt, "grpc_unary", variants, BLOCK);
    }

    // For context: reqwest, bare and with reqwest-retry, against the same server.
    let (bare, retrying) = reqwest_clients();
    let variants: Vec<(&str, SendFn)> = vec![
        (
            "reqwest",
            boxed(move || {
                let bare = bare.clone();
                async move {
                    bare.get(url).send().await.unwrap().bytes().await.unwrap();
                }
            }),
        ),
        (
            "reqwest_retry",
            boxed(move || {
                let retrying = retrying.clone();
                async move {
                    retrying
                        .get(url)
                        .send()
                        .await
                        .unwrap()
                        .bytes()
                        .await
                        .unwrap();
                }
            }),
        ),
    ];
    measure(&rt, "reqwest_get", variants, BLOCK);
}
