//! What the layer costs when nothing fails, and what one replay costs, side by side with the
//! bare client and with peers, in the same run.
//!
//! ```text
//! cargo bench --bench overhead            # full run
//! cargo bench --bench overhead -- --quick # the same groups, faster
//! ```
//!
//! | group | what one iteration is |
//! |---|---|
//! | `loopback_get` | a GET from hyper-util's client to a hyper server on 127.0.0.1 (HTTP/1.1 keep-alive, 2-byte body), body read |
//! | `loopback_post_64k` | a POST of a 64 KiB `Full<Bytes>` body, read by the server |
//! | `loopback_get_concurrent` | 32 GETs in flight at once |
//! | `in_process_get` | a GET through an in-memory `service_fn`: the pure per-request cost, and what each default-on part of it costs (`retry_layer_no_budget`: the budget off; `retry_layer_no_retries`: `max_retries(0)`, nothing kept for a replay) |
//! | `layer_parts` | what the layer does on every request, alone: inserting the `Attempts` extension into a response, copying a GET's head for the attempt |
//! | `retry_once_get`, `retry_once_post_64k` | an in-memory service that fails once then succeeds, zero backoff: the cost of one replay (`bare` is one successful call) |
//! | `reqwest_get` | for context: reqwest against reqwest + reqwest-retry, same server |
//!
//! Functions: `bare` (the same client without the layer), `retry_layer`, and the peers
//! `tower_retry` (tower's retry with a policy that clones a `Full<Bytes>` request) and
//! `reqwest_retry`.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

#[path = "support/mod.rs"]
mod support;

use support::{
    bare_client, batch, current_thread, exchange, layer, replay_client, request, reqwest_clients,
    server, tower_retry, warm_up,
};

use std::convert::Infallible;
use std::future::ready;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use retryable_http::backoff::Backoff;
use retryable_http::body::ReplayBody;
use tokio::runtime::Runtime;
use tower::{Layer, Service, service_fn};

const KIB_64: usize = 64 * 1024;

fn loopback(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, url: &str, body: Bytes) {
    let bare = bare_client();
    let retry = layer().layer(replay_client());
    let peer = tower_retry(bare_client());
    warm_up(rt, &bare, url, &body);
    warm_up(rt, &retry, url, &body);
    warm_up(rt, &peer, url, &body);
    group.bench_function("bare", |b| {
        b.to_async(rt)
            .iter(|| exchange(bare.clone(), request(url, &body)))
    });
    let retry = layer().layer(replay_client());
    group.bench_function("retry_layer", |b| {
        b.to_async(rt)
            .iter(|| exchange(retry.clone(), request(url, &body)))
    });
    let peer = tower_retry(bare_client());
    group.bench_function("tower_retry", |b| {
        b.to_async(rt)
            .iter(|| exchange(peer.clone(), request(url, &body)))
    });
}

fn overhead(c: &mut Criterion) {
    // The client side on one thread, the server on another: one core each.
    let rt = current_thread();
    let addr = server();
    let url = format!("http://{addr}/");

    let mut group = c.benchmark_group("loopback_get");
    loopback(&mut group, &rt, &url, Bytes::new());
    group.finish();

    let mut group = c.benchmark_group("loopback_post_64k");
    loopback(&mut group, &rt, &url, Bytes::from(vec![b'x'; KIB_64]));
    group.finish();

    let mut group = c.benchmark_group("loopback_get_concurrent");
    let bare = bare_client();
    let retry = layer().layer(replay_client());
    warm_up(&rt, &bare, &url, &Bytes::new());
    warm_up(&rt, &retry, &url, &Bytes::new());
    group.bench_function("bare", |b| {
        b.to_async(&rt).iter(|| batch(bare.clone(), &url))
    });
    group.bench_function("retry_layer", |b| {
        b.to_async(&rt).iter(|| batch(retry.clone(), &url))
    });
    group.finish();

    // In memory: the layer's own cost per request.
    let local = current_thread();
    let ok = || Response::new(Full::new(Bytes::from_static(b"ok")));
    let mut group = c.benchmark_group("in_process_get");
    let bare = service_fn(move |_req: Request<Full<Bytes>>| ready(Ok::<_, Infallible>(ok())));
    group.bench_function("bare", |b| {
        b.to_async(&local)
            .iter(|| exchange(bare, request("http://bench.test/", &Bytes::new())))
    });
    let retry = layer().layer(service_fn(move |_req: Request<ReplayBody<Full<Bytes>>>| {
        ready(Ok::<_, Infallible>(ok()))
    }));
    group.bench_function("retry_layer", |b| {
        b.to_async(&local)
            .iter(|| exchange(retry.clone(), request("http://bench.test/", &Bytes::new())))
    });
    let peer = tower_retry(bare);
    group.bench_function("tower_retry", |b| {
        b.to_async(&local)
            .iter(|| exchange(peer.clone(), request("http://bench.test/", &Bytes::new())))
    });
    for (name, layer) in [
        ("retry_layer_no_budget", layer().no_budget()),
        ("retry_layer_no_retries", layer().max_retries(0)),
    ] {
        let retry = layer.layer(service_fn(move |_req: Request<ReplayBody<Full<Bytes>>>| {
            ready(Ok::<_, Infallible>(ok()))
        }));
        group.bench_function(name, |b| {
            b.to_async(&local)
                .iter(|| exchange(retry.clone(), request("http://bench.test/", &Bytes::new())))
        });
    }
    group.finish();

    // The parts of the per-request cost that no setting turns off.
    let mut group = c.benchmark_group("layer_parts");
    group.bench_function("response_alone", |b| b.iter(|| std::hint::black_box(ok())));
    // A value of the record's size, inserted the way the layer inserts the record.
    #[allow(dead_code)]
    #[derive(Clone)]
    struct LikeTheRecord([u8; std::mem::size_of::<retryable_http::Attempts>()]);
    group.bench_function("response_with_attempts_extension", |b| {
        b.iter(|| {
            let mut response = ok();
            response.extensions_mut().insert(LikeTheRecord(
                [0; std::mem::size_of::<retryable_http::Attempts>()],
            ));
            std::hint::black_box(response)
        })
    });
    let head = request("http://bench.test/", &Bytes::new()).into_parts().0;
    group.bench_function("get_head_copy", |b| {
        b.iter(|| std::hint::black_box(head.clone()))
    });
    group.finish();

    for (name, body) in [
        ("retry_once_get", Bytes::new()),
        ("retry_once_post_64k", Bytes::from(vec![b'x'; KIB_64])),
    ] {
        let mut group = c.benchmark_group(name);
        // Every other call fails, so each request fails once, then succeeds. The service
        // reads the body, as an upstream would.
        fn flaky<B>()
        -> impl Service<
            Request<B>,
            Response = Response<Full<Bytes>>,
            Error = Infallible,
            Future: Send,
        > + Clone
        where
            B: Body + Send + 'static,
            B::Data: Send,
            B::Error: std::fmt::Debug,
        {
            let calls = Arc::new(AtomicU64::new(0));
            service_fn(move |req: Request<B>| {
                let fail = calls.fetch_add(1, Ordering::Relaxed) % 2 == 0;
                async move {
                    std::hint::black_box(req.into_body().collect().await.unwrap());
                    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
                    if fail {
                        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                    }
                    Ok::<_, Infallible>(response)
                }
            })
        }
        let reads = service_fn(|req: Request<Full<Bytes>>| async move {
            std::hint::black_box(req.into_body().collect().await.unwrap());
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        });
        group.bench_function("bare", |b| {
            b.to_async(&local)
                .iter(|| exchange(reads, request("http://bench.test/", &body)))
        });
        let retry = layer()
            .backoff(Backoff::constant(Duration::ZERO))
            .no_budget()
            .layer(flaky::<ReplayBody<Full<Bytes>>>());
        group.bench_function("retry_layer", |b| {
            b.to_async(&local)
                .iter(|| exchange(retry.clone(), request("http://bench.test/", &body)))
        });
        let peer = tower_retry(flaky::<Full<Bytes>>());
        group.bench_function("tower_retry", |b| {
            b.to_async(&local)
                .iter(|| exchange(peer.clone(), request("http://bench.test/", &body)))
        });
        group.finish();
    }

    // For context: the reqwest ecosystem against the same server.
    let mut group = c.benchmark_group("reqwest_get");
    let (bare, retrying) = reqwest_clients();
    rt.block_on(async {
        for _ in 0..2000 {
            bare.get(&url).send().await.unwrap().bytes().await.unwrap();
            retrying
                .get(&url)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
        }
    });
    group.bench_function("bare", |b| {
        b.to_async(&rt).iter(|| async {
            let response = bare.get(&url).send().await.unwrap();
            std::hint::black_box(response.bytes().await.unwrap());
        })
    });
    let policy = reqwest_retry::policies::ExponentialBackoff::builder().build_with_max_retries(4);
    let retrying = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(reqwest_retry::RetryTransientMiddleware::new_with_policy(
            policy,
        ))
        .build();
    group.bench_function("reqwest_retry", |b| {
        b.to_async(&rt).iter(|| async {
            let response = retrying.get(&url).send().await.unwrap();
            std::hint::black_box(response.bytes().await.unwrap());
        })
    });
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
