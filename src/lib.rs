//! Retries for HTTP clients, as a tower [`Layer`](tower_layer::Layer).
//!
//! [`RetryLayer`] wraps any `Service<http::Request<B>>` client — hyper-util's client, a
//! tower stack, an axum proxy's upstream — and gives it the resilience of hashicorp's
//! go-retryablehttp, done the tower way:
//!
//! - **Bodies are replayed without `Clone`.** The first attempt streams the caller's body
//!   unchanged while its chunks are kept (refcounted, never copied) up to a cap; a retry
//!   replays them and goes on with the rest. A truncated body is never sent. See
//!   [`ReplayBody`](body::ReplayBody).
//! - **Safe by default.** 429 and 5xx (but 501) are retried; a request that may have been
//!   processed (a `POST` that got a 502, a connection reset after the request was written)
//!   is retried only when it is idempotent. See [`StandardPolicy`](policy::StandardPolicy).
//! - **Backoff on the tokio timer**, exponential with jitter by default, and `Retry-After`
//!   honoured — up to a cap, so a hostile server cannot make the client sleep for hours.
//! - **Bounded.** A response that will be retried is drained (4 KiB, 1 s) so the
//!   connection is reused; nothing is buffered without a bound.
//! - **Transparent when retries run out**: the last response comes back as `Ok` with its
//!   body unread and an [`Attempts`] record of every attempt and wait; the last transport
//!   error comes back as an [`Error`] naming the request and the attempts.
//! - **Hedging, opt in**: a second attempt for an idempotent request that is slow to answer,
//!   paid from the retry budget; the first acceptable answer wins. See [`Hedge`](hedge::Hedge).
//! - **Per request**: a [`RetryOverride`] in a request's extensions gives it its own
//!   retries, deadline, attempt timeout or policy.
//!
//! # Example
//!
//! A flaky service that fails twice with 503, then answers 200. The fake client here is a
//! `tower::service_fn`; a real one is `hyper_util::client::legacy::Client`.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::time::Duration;
//!
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use retryable_http::{Attempts, body::ReplayBody, RetryLayer, backoff::Backoff};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let calls = Arc::new(AtomicU32::new(0));
//! let counter = calls.clone();
//! let flaky = service_fn(move |_req: Request<ReplayBody<Full<Bytes>>>| {
//!     let n = counter.fetch_add(1, Ordering::SeqCst);
//!     async move {
//!         let status = if n < 2 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
//!         let mut response = Response::new(Full::new(Bytes::from("hi")));
//!         *response.status_mut() = status;
//!         Ok::<_, std::convert::Infallible>(response)
//!     }
//! });
//!
//! let client = ServiceBuilder::new()
//!     .layer(
//!         RetryLayer::new()
//!             .max_retries(3) // 1 attempt + up to 3 retries
//!             .backoff(Backoff::constant(Duration::from_millis(10))),
//!     )
//!     .service(flaky);
//!
//! let request = Request::post("http://example.com/orders")
//!     .header("idempotency-key", "order-42")
//!     .body(Full::new(Bytes::from(r#"{"item":1}"#)))?;
//! let response = client.oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(Attempts::of(&response).attempts(), 3);
//! # Ok(())
//! # }
//! ```
//!
//! With hyper-util's client, the body type is inferred from the requests:
//!
//! ```no_run
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use retryable_http::RetryLayer;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let client = Client::builder(TokioExecutor::new()).build_http();
//! let client = ServiceBuilder::new().layer(RetryLayer::new()).service(client);
//! let request = http::Request::get("http://127.0.0.1:8080/").body(Full::new(Bytes::new()))?;
//! let response = client.oneshot(request).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Coming from go-retryablehttp
//!
//! Every field of go-retryablehttp's `Client`, and where it went:
//!
//! | go-retryablehttp | retryable-http |
//! |---|---|
//! | `RetryMax` | [`RetryLayer::max_retries`] — the same meaning: retries, not attempts (`RetryMax = 3` makes 4 attempts) |
//! | `RetryWaitMin`, `RetryWaitMax` | the arguments of [`Backoff::exponential`](backoff::Backoff::exponential) or [`Backoff::go_default`](backoff::Backoff::go_default) |
//! | `CheckRetry` | [`RetryLayer::policy`], [`RetryLayer::retry_if`], [`policy_fn`](policy::policy_fn) |
//! | `DefaultRetryPolicy` | [`StandardPolicy::new().retry_all_methods()`](policy::StandardPolicy::retry_all_methods) (the default [`StandardPolicy`](policy::StandardPolicy) does not resend a `POST` that may have been processed) |
//! | `ErrorPropagatedRetryPolicy` | [`RetryLayer::fail_when_exhausted`]: `... giving up after 3 attempt(s): unexpected HTTP status 500 Internal Server Error` |
//! | `Backoff` | [`RetryLayer::backoff`] |
//! | `DefaultBackoff` | [`Backoff::go_default`](backoff::Backoff::go_default) — exactly 1, 2, 4, 8 s — with [`ServerWaits::go`](retry_after::ServerWaits::go): `Retry-After` on 429 and 503 |
//! | `LinearJitterBackoff` | [`Backoff::linear_jitter`](backoff::Backoff::linear_jitter) with [`ServerWaits::never`](retry_after::ServerWaits::never) |
//! | `RateLimitLinearJitterBackoff` | [`Backoff::linear_jitter`](backoff::Backoff::linear_jitter) with [`ServerWaits::go`](retry_after::ServerWaits::go) |
//! | a custom `Backoff` func | [`Backoff::custom`](backoff::Backoff::custom) |
//! | `RequestLogHook` | [`RetryLayer::on_attempt`] |
//! | `ResponseLogHook` | [`RetryLayer::on_response`] |
//! | `PrepareRetry` | [`RetryLayer::prepare_retry`] |
//! | `ErrorHandler` | [`RetryLayer::when_exhausted`] |
//! | `PassthroughErrorHandler` | the default: the last response comes back as `Ok` |
//! | no `ErrorHandler` (Go's default) | [`RetryLayer::fail_when_exhausted`] |
//! | `Logger` | [`tracing`](https://docs.rs/tracing) events, target `retryable_http`: `retrying` and `not retrying` at debug, each attempt at trace, in a `retry` span with the method and the redacted URL; and a span per attempt with OpenTelemetry's HTTP fields (see [`telemetry`]) |
//! | `HTTPClient` | the inner service: any `tower::Service<http::Request<ReplayBody<B>>>` |
//! | `Request.SetResponseHandler` | a [`Policy`](policy::Policy) that judges the response head |
//! | `StandardClient`, `RoundTripper` | not needed: the layer is a `Service` |
//!
//! And what go-retryablehttp users asked for and get here: a `POST` that got a 502 is not
//! sent twice (#169); a server asking for 484 289 hours is not obeyed (#247); a deadline
//! covers the waits too (#272); URLs in errors and logs lose their userinfo and query
//! (#154, #206); `Retry-After` dates in all three HTTP formats; a retry budget; bodies
//! replayed without buffering them up front.
//!
//! # Choosing defaults
//!
//! The defaults suit a service calling another over a network: up to 5 attempts over about
//! 15 s, spread by jitter, within a budget per destination that keeps retries to about a
//! fifth of each host's load and stops them while most of its attempts fail.
//! Change them when the situation differs:
//!
//! - **Someone is waiting.** Bound the whole request with [`RetryLayer::deadline`] (what the
//!   caller can wait) and each attempt with [`RetryLayer::attempt_timeout`] (what a healthy
//!   upstream needs). No wait is started that would end after the deadline.
//! - **Requests differ.** One client serves many kinds of request: put a
//!   [`RetryOverride`] in a request's extensions to give it its own retries, deadline,
//!   attempt timeout or policy (`RetryOverride::never()` for a health check).
//! - **Batch work.** More retries and a longer cap (`Backoff::exponential(1 s, 5 min)`) ride out
//!   longer outages; give the job its own [`Budget::new`](budget::Budget::new), whose
//!   retries no throttle stops after a few failures in a row.
//! - **Writes.** Send an `Idempotency-Key` with `POST` and `PATCH` when the server supports
//!   one: they are then retried like `GET`. Without one, only failures that prove the server
//!   did nothing (refused connection, 429, 503) are retried.
//! - **Large uploads.** The replay cap (1 MiB) bounds memory per request; raise it with
//!   [`RetryLayer::replay_limit`] for larger bodies worth retrying, and cap the total with
//!   [`RetryLayer::replay_limit_total`]. A body over the cap is still sent, just once — or
//!   retried without buffering when the request carries a [`Reopen`](body::Reopen) that makes
//!   it again (a file opened anew).
//! - **Many clients fail together.** Keep the jitter; the default never leaves
//!   `[min, max]`; [`Jitter::None`](backoff::Jitter::None) is for reproducing
//!   go-retryablehttp exactly. Keep the default budget's throttle: across a thousand clients
//!   that each send a few requests a second, a budget's reserve alone let retries hold an
//!   overloaded server down, where the throttle let it recover at once
//!   (`benches/fleet.rs`).
//! - **A tail to cut.** When a small share of requests is slow for reasons a second try
//!   avoids (a slow replica, a lost packet, a pause), [`Hedge`](hedge::Hedge) cuts the tail: set the delay
//!   near the upstream's 95th-percentile latency, so that about one request in twenty is
//!   hedged, and keep the budget on. Do not hedge writes without an idempotency key (they
//!   are not hedged unless [`Hedge::only_when`](hedge::Hedge::only_when) says so), requests that are slow because the
//!   work is slow (a hedge doubles it), large uploads (they are sent twice, and a body over
//!   the replay cap is never hedged), or an upstream that is overloaded: hedges add load
//!   where it hurts, and only the budget stops them. Per-attempt timeouts with
//!   [`Hedge::on_attempt_timeout`](hedge::Hedge::on_attempt_timeout) suit an upstream whose slow answers still come.
//! - **Rate-limited APIs.** `Retry-After`, `RateLimit-Reset` and `X-RateLimit-Reset` are
//!   honoured; raise [`ServerWaits::max`](retry_after::ServerWaits::max) if the API
//!   legitimately asks for more than 60 s, and the response comes back to you when it asks
//!   for more than that.
//!
//! # Modules
//!
//! - [`policy`]: which outcomes are retried, and how to write your own rules.
//! - [`backoff`]: how long to wait, with the go-retryablehttp schedules among others.
//! - [`retry_after`]: waits a server asks for: `Retry-After` and rate-limit headers, and
//!   which of them the layer honours.
//! - [`classify`]: which transport errors may have reached the server.
//! - [`body`]: the replayable request body.
//! - [`budget`]: the retry budget that keeps retries from multiplying an outage.
//! - [`hedge`]: when to start another attempt while the earlier ones are slow.
//! - [`record`]: what happened to a request, attempt by attempt.
//! - [`telemetry`]: what tracing, metrics and inner layers see of each attempt.
//! - [`resume`]: response bodies resumed with `Range` where the connection broke.
//! - [`error`]: the error a request ends with, and the small errors it may carry.
//! - [`future`]: the response future's state machine.
//! - `grpc` (feature `grpc`): gRPC calls retried by gRPC's rules, and tonic channels.
//!
//! # Hooks
//!
//! Code of yours at each step of a request, go-retryablehttp's hooks:
//!
//! | go-retryablehttp | here | when |
//! |---|---|---|
//! | `RequestLogHook` | [`RetryLayer::on_attempt`] | before every attempt, the first included |
//! | `ResponseLogHook` | [`RetryLayer::on_response`] | on every response head |
//! | `PrepareRetry` | [`RetryLayer::prepare_retry`] | before every retry (never before the first attempt), with `&mut` access to the request head |
//! | `ErrorHandler` | [`RetryLayer::when_exhausted`], [`RetryLayer::fail_when_exhausted`] | when the layer gives up on a response it wanted to retry |
//!
//! Every hook sees the attempt as a [`policy::Attempt`], as policies do: the method, the URL
//! (safe to log as [`url`](policy::Attempt::url)), the head, the attempt's number, its
//! outcome once there is one, and — when retries run out — why. Hooks are synchronous and
//! run inside the request's future: keep them short. A hook that needs fresh data (a token)
//! reads it from a cache that something else keeps fresh.
//!
//! ```
//! use std::sync::{Arc, RwLock};
//! use http::header::{AUTHORIZATION, HeaderValue};
//! use retryable_http::RetryLayer;
//!
//! let token = Arc::new(RwLock::new(HeaderValue::from_static("Bearer first")));
//! let current = token.clone();
//! let layer = RetryLayer::new()
//!     .on_attempt(|attempt| {
//!         tracing::info!(attempt = attempt.attempts(), url = %attempt.url(), "sending");
//!     })
//!     // A 401 is not retried by the standard policy, but a 503 is: make sure the retry
//!     // carries the newest token.
//!     .prepare_retry(move |head, _last| {
//!         head.headers.insert(AUTHORIZATION, current.read().unwrap().clone());
//!         Ok(())
//!     })
//!     // go-retryablehttp's default: an error once retries run out.
//!     .fail_when_exhausted();
//! ```
//!
//! # Runtime
//!
//! Waits run on the tokio timer: the layer needs a tokio runtime with the time driver
//! enabled whenever it waits or times an attempt, as hyper-util's client does anyway.
//!
//! # Cargo features
//!
//! - `hyper` (default): reads hyper's, hyper-util's and h2's client errors to classify
//!   transport failures (h2 is compiled for that; hyper's HTTP/2 uses the same crate).
//!   Without it, only [`std::io::Error`] kinds and this crate's own errors are recognised.
//! - `fault`: fault injection ([`fault::FaultLayer`]).
//! - `proxy`: a connector for hyper-util's client that talks through an HTTP proxy such as
//!   mitmproxy or `examples/fault_proxy.rs` ([`proxy::HttpProxy`]).
//! - `grpc`: gRPC's own retry rules (gRFC A6) for gRPC calls, from a service config
//!   ([`RetryLayer::grpc`]), and [`grpc::GrpcLayer`], which wraps a tonic channel in one
//!   line. It brings `serde_json` and `tonic` (without its transport).
//! - `opentelemetry`: retry metrics through the OpenTelemetry metrics API
//!   ([`RetryLayer::metrics`]). It brings the `opentelemetry` API crate, without its
//!   defaults.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

pub mod backoff;
pub mod body;
pub mod budget;
pub mod classify;
pub mod error;
#[cfg(feature = "fault")]
#[cfg_attr(docsrs, doc(cfg(feature = "fault")))]
pub mod fault;
pub mod future;
#[cfg(feature = "grpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
pub mod grpc;
pub mod hedge;
pub mod policy;
#[cfg(feature = "proxy")]
#[cfg_attr(docsrs, doc(cfg(feature = "proxy")))]
pub mod proxy;
pub mod record;
pub mod resume;
pub mod retry_after;
pub mod telemetry;

#[cfg(feature = "grpc")]
mod a6;
mod authority;
mod config;
mod decide;
#[cfg(feature = "grpc")]
mod grpc_code;
mod hooks;
mod layer;
mod overrides;
#[cfg(all(test, not(retryable_http_loom)))]
mod properties;
mod redact;
mod rng;
mod service;
mod sync;

pub use error::Error;
pub use layer::RetryLayer;
pub use overrides::RetryOverride;
pub use record::Attempts;
pub use service::Retry;
