//! gRPC over HTTP/2, as the layer sees it: the building blocks of gRPC's own retry rules
//! ([gRFC A6](https://github.com/grpc/proposal/blob/master/A6-client-retries.md)).
//!
//! A gRPC call is an HTTP/2 `POST` whose outcome is not the HTTP status: a failed call
//! usually answers `200 OK` and says how it failed in `grpc-status`. This module reads that
//! outcome and the metadata A6 retries by:
//!
//! - [`Code`]: the status codes, by number and by the names a service config uses;
//! - [`outcome`]: what a response head says of its call — a status, or a call already
//!   committed to the caller;
//! - [`pushback`]: the server's `grpc-retry-pushback-ms`;
//! - [`parse_timeout`] and [`format_timeout`]: the `grpc-timeout` header;
//! - [`Throttle`]: A6's token bucket, which stops retries while too many calls fail;
//! - [`ServiceConfig`]: the retry, hedging and throttling settings of a gRPC service
//!   config, from its JSON or built in Rust.
//!
//! ```
//! use http::Response;
//! use retryable_http::grpc::{Code, Outcome, outcome};
//!
//! // A Trailers-Only response: the call failed before any message, and says so in its
//! // headers.
//! let (head, ()) = Response::builder()
//!     .header("content-type", "application/grpc")
//!     .header("grpc-status", "14")
//!     .body(())
//!     .unwrap()
//!     .into_parts();
//! assert_eq!(outcome(&head), Outcome::Status(Code::Unavailable));
//! ```

mod adapter;

pub use crate::a6::{
    HedgingPolicy, MAX_ATTEMPTS, MethodConfig, Name, Outcome, Pushback, RetryPolicy, ServiceConfig,
    Throttle, Throttling, format_timeout, outcome, parse_timeout, pushback,
};
pub use crate::grpc_code::{Code, UnknownCode};
pub use adapter::{GrpcFuture, GrpcLayer, GrpcRetry, ToTonic, attempts};
