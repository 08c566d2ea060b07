//! Fault injection: make an HTTP service fail on purpose, and watch the retries.
//!
//! [`FaultLayer`] is the seed experiment — mitmproxy answering 502 for a matched URL — as a
//! tower layer. It wraps any HTTP service, in a client stack (between [`RetryLayer`] and the
//! real client) or in a server, and applies [`Rule`]s: the first rule that matches a request
//! and whose trigger fires decides what happens to it. Every request is recorded, so a test
//! can assert how many attempts were made, and when.
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use retryable_http::fault::{Effect, Answer, FaultLayer, Match, Rule, Trigger};
//! use retryable_http::{body::ReplayBody, RetryLayer, backoff::Backoff};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), retryable_http::error::BoxError> {
//! // The upstream: always fine.
//! let upstream = service_fn(|_req: Request<ReplayBody<Full<Bytes>>>| async {
//!     Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("ok"))))
//! });
//! // Two 502s for the matched URL, after the upstream did the work.
//! let faults = FaultLayer::new().rule(
//!     Rule::new(Effect::Replace(Answer::new(StatusCode::BAD_GATEWAY).body("Bad Gateway Simulation")))
//!         .matching(Match::url_contains("your-api-endpoint"))
//!         .trigger(Trigger::first(2)),
//! );
//! let log = faults.log();
//! let client = ServiceBuilder::new()
//!     .layer(RetryLayer::new().backoff(Backoff::constant(std::time::Duration::ZERO)))
//!     .layer(faults)
//!     .service(upstream);
//!
//! let request = Request::get("http://example.com/your-api-endpoint").body(Full::new(Bytes::new()))?;
//! let response = client.oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(log.len(), 3);
//! assert_eq!(log.entries()[0].rule.as_deref(), Some("0"));
//! # Ok(())
//! # }
//! ```
//!
//! [`RetryLayer`]: crate::RetryLayer

mod body;
mod effect;
mod future;
mod injected;
mod layer;
mod matcher;
mod record;
mod rule;
mod service;
mod trigger;

pub use body::FaultBody;
pub use effect::{Answer, Effect};
pub use future::FaultFuture;
pub use injected::{Injected, InjectedFault};
pub use layer::FaultLayer;
pub use matcher::Match;
pub use record::{FaultLog, Seen};
pub use rule::Rule;
pub use service::Fault;
pub use trigger::{Chance, Trigger};
