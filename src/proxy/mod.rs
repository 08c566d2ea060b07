//! Talking to a proxy: a connector for hyper-util's client that goes through an HTTP proxy,
//! as the seed's Go program goes through mitmproxy, and as a test goes through
//! `examples/fault_proxy.rs`.
//!
//! [`HttpProxy`] wraps a connector (hyper-util's `HttpConnector`, or any other) and picks
//! the way to each origin: straight there, to the proxy in absolute form, or through a
//! `CONNECT` tunnel. Each connection is a [`Proxied`] that says which; a connection the
//! proxy could not give fails with a [`ProxyError`] inside an [`io::Error`](std::io::Error)
//! whose kind [classifies](crate::classify) it: a tunnel the proxy refused never reached
//! the origin.
//!
//! ```
//! use hyper_util::client::legacy::{Client, connect::HttpConnector};
//! use hyper_util::rt::TokioExecutor;
//! use retryable_http::RetryLayer;
//! use retryable_http::proxy::HttpProxy;
//! use tower::ServiceBuilder;
//!
//! // Every request through mitmproxy, retried.
//! let connector = HttpProxy::new(HttpConnector::new(), "http://127.0.0.1:8080".parse()?)?;
//! let client = Client::builder(TokioExecutor::new()).build(connector);
//! let client = ServiceBuilder::new().layer(RetryLayer::new()).service(client);
//! # let _: &retryable_http::Retry<Client<_, retryable_http::body::ReplayBody<http_body_util::Full<bytes::Bytes>>>> = &client;
//! # Ok::<(), retryable_http::error::BoxError>(())
//! ```

mod connector;
mod error;
mod stream;

pub use connector::{Connecting, HttpProxy};
pub use error::ProxyError;
pub use stream::Proxied;
