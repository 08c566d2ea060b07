//! Instructions per request, for comparing the layer's cost across versions: counts under
//! callgrind are exact and repeatable where timings on a shared machine are not.
//!
//! ```text
//! cargo bench --bench instructions --no-run
//! BIN=$(ls -t target/release/deps/instructions-* | grep -v '\.d$' | head -1)
//! for v in bare tower layer no_budget no_retries hedged; do
//!   a=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null $BIN 1000 $v 2>&1 | grep -o 'Collected : [0-9]*' | grep -o '[0-9]*$')
//!   b=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null $BIN 11000 $v 2>&1 | grep -o 'Collected : [0-9]*' | grep -o '[0-9]*$')
//!   echo "$v $(( (b - a) / 10000 )) instructions per request"
//! done
//! ```
//!
//! Each run sends N GETs through an in-memory `service_fn`: `bare`, `tower` (tower's retry
//! with a policy that clones the request), `layer` (the defaults), `no_budget`,
//! `no_retries` (`max_retries(0)`), `hedged` (`Hedge::after(10 ms)`, answered at once). The
//! difference between 11 000 and 1 000 requests, divided by 10 000, leaves out the start-up.
//! Run without an argument it does nothing, so `cargo bench` passes over it.

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
use support::{exchange, request, tower_retry};
use tower::{Layer, service_fn};

const URL: &str = "http://bench.test/";

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let (Some(n), Some(variant)) = (args.next(), args.next()) else {
        return;
    };
    let n: usize = n.parse().expect("a number of requests");
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
