//! Instructions per request, for comparing the layer's cost across versions: counts under
//! callgrind are exact and repeatable where timings on a shared machine are not.
//!
//! ```text
//! cargo bench --bench instructions --no-run
//! BIN=$(ls -t target/release/deps/instructions-* | grep -v '\.d$' | head -1)
//! for v in bare tower layer no_budget no_retries; do
//!   a=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null $BIN 1000 $v 2>&1 | grep -o 'Collected : [0-9]*' | grep -o '[0-9]*$')
//!   b=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null $BIN 11000 $v 2>&1 | grep -o 'Collected : [0-9]*' | grep -o '[0-9]*$')
//!   echo "$v $(( (b - a) / 10000 )) instructions per request"
//! done
//! ```
//!
//! Each run sends N GETs through an in-memory `service_fn`: `bare`, `tower` (tower's retry
//! with a policy that clones the request), `layer` (the defaults), `no_budget`,
//! `no_retries` (`max_retries(0)`). The
//! difference between 11 000 and 1 000 requests, divided by 10 000, leaves out the start-up.
//! Run without an argument it does nothing, so `cargo bench` passes over it.

#![allow(missing_docs)]

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use retryable_http::{ReplayBody, RetryLayer};
use std::convert::Infallible;
use std::future::ready;
use tower::{Layer, ServiceExt, service_fn};

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let (Some(n), Some(variant)) = (args.next(), args.next()) else {
        return;
    };
    let n: usize = n.parse().expect("a number of requests");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ok = || Response::new(Full::new(Bytes::from_static(b"ok")));
    rt.block_on(async {
        match variant.as_str() {
            "bare" => {
                let svc =
                    service_fn(move |_req: Request<Full<Bytes>>| ready(Ok::<_, Infallible>(ok())));
                for _ in 0..n {
                    let r = svc
                        .oneshot(
                            Request::get("http://bench.test/")
                                .body(Full::new(Bytes::new()))
                                .unwrap(),
                        )
                        .await
                        .unwrap();
                    std::hint::black_box(r.into_body().collect().await.unwrap());
                }
            }
            "tower" => {
                #[derive(Clone)]
                struct P(usize);
                impl<R, E> tower::retry::Policy<Request<Full<Bytes>>, Response<R>, E> for P {
                    type Future = std::future::Ready<()>;
                    fn retry(
                        &mut self,
                        _req: &mut Request<Full<Bytes>>,
                        result: &mut Result<Response<R>, E>,
                    ) -> Option<Self::Future> {
                        let failed = match result {
                            Ok(r) => r.status().is_server_error(),
                            Err(_) => true,
                        };
                        (failed && self.0 > 0).then(|| {
                            self.0 -= 1;
                            ready(())
                        })
                    }
                    fn clone_request(
                        &mut self,
                        req: &Request<Full<Bytes>>,
                    ) -> Option<Request<Full<Bytes>>> {
                        let mut c = Request::new(req.body().clone());
                        *c.method_mut() = req.method().clone();
                        *c.uri_mut() = req.uri().clone();
                        *c.version_mut() = req.version();
                        *c.headers_mut() = req.headers().clone();
                        *c.extensions_mut() = req.extensions().clone();
                        Some(c)
                    }
                }
                let svc = tower::retry::Retry::new(
                    P(4),
                    service_fn(move |_req: Request<Full<Bytes>>| ready(Ok::<_, Infallible>(ok()))),
                );
                for _ in 0..n {
                    let r = svc
                        .clone()
                        .oneshot(
                            Request::get("http://bench.test/")
                                .body(Full::new(Bytes::new()))
                                .unwrap(),
                        )
                        .await
                        .unwrap();
                    std::hint::black_box(r.into_body().collect().await.unwrap());
                }
            }
            _ => {
                let layer = match variant.as_str() {
                    "no_budget" => RetryLayer::new().no_budget(),
                    "no_retries" => RetryLayer::new().max_retries(0),
                    _ => RetryLayer::new(),
                };
                let svc = layer.layer(service_fn(move |_req: Request<ReplayBody<Full<Bytes>>>| {
                    ready(Ok::<_, Infallible>(ok()))
                }));
                for _ in 0..n {
                    let r = svc
                        .clone()
                        .oneshot(
                            Request::get("http://bench.test/")
                                .body(Full::new(Bytes::new()))
                                .unwrap(),
                        )
                        .await
                        .unwrap();
                    std::hint::black_box(r.into_body().collect().await.unwrap());
                }
            }
        }
    });
}
