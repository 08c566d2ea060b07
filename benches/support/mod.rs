//! What the benchmarks share: the server, the clients, tower's retry as a peer.

// Each benchmark uses a part of this.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use retryable_http::{RetryLayer, body::ReplayBody};
use tokio::runtime::Runtime;
use tower::{Service, ServiceExt};

/// tower's retry, with the policy a user writes for it: clone the request (the body must be
/// `Clone`), retry 5xx and errors, at most 4 times, without waiting.
#[derive(Clone)]
pub(crate) struct CloneAndRetry {
    left: usize,
}

impl<B: Clone, R, E> tower::retry::Policy<Request<B>, Response<R>, E> for CloneAndRetry {
    type Future = Ready<()>;

    fn retry(
        &mut self,
        _req: &mut Request<B>,
        result: &mut Result<Response<R>, E>,
    ) -> Option<Self::Future> {
        let failed = match result {
            Ok(response) => response.status().is_server_error(),
            Err(_) => true,
        };
        (failed && self.left > 0).then(|| {
            self.left -= 1;
            ready(())
        })
    }

    fn clone_request(&mut self, req: &Request<B>) -> Option<Request<B>> {
        let mut clone = Request::new(req.body().clone());
        *clone.method_mut() = req.method().clone();
        *clone.uri_mut() = req.uri().clone();
        *clone.version_mut() = req.version();
        *clone.headers_mut() = req.headers().clone();
        *clone.extensions_mut() = req.extensions().clone();
        Some(clone)
    }
}

pub(crate) fn tower_retry<S>(service: S) -> tower::retry::Retry<CloneAndRetry, S> {
    tower::retry::Retry::new(CloneAndRetry { left: 4 }, service)
}

/// The layer as a user configures it: defaults, budget on.
pub(crate) fn layer() -> RetryLayer {
    RetryLayer::new()
}

pub(crate) fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A hyper HTTP/1.1 server on 127.0.0.1 that reads each request body and answers "ok". It
/// runs on a thread and runtime of its own, so that the client side measured is alone on
/// its runtime.
pub(crate) fn server() -> SocketAddr {
    serve(false, None)
}

/// [`server`], speaking HTTP/2 with prior knowledge.
pub(crate) fn server_h2() -> SocketAddr {
    serve(true, None)
}

/// How long a server takes over each request, asked once per request as it arrives.
pub(crate) type Latency = std::sync::Arc<dyn Fn() -> std::time::Duration + Send + Sync>;

/// [`server`], answering each request once its body is read and `latency` has passed.
pub(crate) fn server_with_latency(latency: Latency) -> SocketAddr {
    serve(false, Some(latency))
}

fn serve(http2: bool, latency: Option<Latency>) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        current_thread().block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let accept = async move {
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    let _ = stream.set_nodelay(true);
                    let latency = latency.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(
                            move |req: Request<hyper::body::Incoming>| {
                                let wait = latency.as_ref().map(|latency| latency());
                                async move {
                                    let _ = req.into_body().collect().await;
                                    if let Some(wait) = wait {
                                        tokio::time::sleep(wait).await;
                                    }
                                    Ok::<_, Infallible>(Response::new(Full::new(
                                        Bytes::from_static(b"ok"),
                                    )))
                                }
                            },
                        );
                        let io = TokioIo::new(stream);
                        let _ = if http2 {
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
            };
            accept.await;
        });
    });
    rx.recv().unwrap()
}

/// The tonic server of the gRPC runs: `echo.Echo` over HTTP/2 on 127.0.0.1, every call
/// answered, none recorded; on a thread and runtime of its own.
#[cfg(feature = "grpc")]
pub(crate) fn grpc_server() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        current_thread().block_on(async move {
            let server = echo::Echo::new(|_| None).forgetful().listen().await;
            tx.send(server.addr).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

/// A tonic channel to `addr`, connected, with the bare client's TCP settings.
#[cfg(feature = "grpc")]
pub(crate) async fn grpc_channel(addr: SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .tcp_nodelay(true)
        .connect()
        .await
        .unwrap()
}

/// One unary call of `echo.Echo/Say` through `client`, answered with its message.
#[cfg(feature = "grpc")]
pub(crate) async fn grpc_call<T>(mut client: tonic::client::Grpc<T>)
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T::ResponseBody: http_body::Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let request = tonic::Request::new(Bytes::from_static(b"ok"));
    let response = echo::unary(&mut client, echo::SAY, request).await.unwrap();
    assert_eq!(response.get_ref().len(), 2);
}

/// The tonic test server and its raw-bytes codec.
#[cfg(feature = "grpc")]
#[path = "../../tests/support/grpc.rs"]
pub(crate) mod echo;

pub(crate) fn connector() -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector
}

pub(crate) fn bare_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(connector())
}

pub(crate) fn replay_client() -> Client<HttpConnector, ReplayBody<Full<Bytes>>> {
    Client::builder(TokioExecutor::new()).build(connector())
}

/// [`bare_client`], speaking HTTP/2 with prior knowledge: every request multiplexed on one
/// connection.
pub(crate) fn bare_h2_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(connector())
}

/// [`replay_client`], speaking HTTP/2 with prior knowledge.
pub(crate) fn replay_h2_client() -> Client<HttpConnector, ReplayBody<Full<Bytes>>> {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(connector())
}

pub(crate) fn request(url: &str, body: &Bytes) -> Request<Full<Bytes>> {
    let builder = if body.is_empty() {
        Request::get(url)
    } else {
        Request::post(url)
    };
    builder.body(Full::new(body.clone())).unwrap()
}

/// Sends one request and reads the whole response.
pub(crate) async fn exchange<S, B>(service: S, request: Request<Full<Bytes>>)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: Body,
    B::Error: std::fmt::Debug,
{
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    std::hint::black_box(response.into_body().collect().await.unwrap());
}

/// Sends `n` requests through each client first, so that no function is measured on a
/// colder process than the others (connections made, allocator and caches warm).
pub(crate) fn warm_up<S>(rt: &Runtime, service: &S, url: &str, body: &Bytes)
where
    S: Service<Request<Full<Bytes>>> + Clone,
    S::Response: IntoBody,
    S::Error: std::fmt::Debug,
{
    rt.block_on(async {
        for _ in 0..2000 {
            let response = service.clone().oneshot(request(url, body)).await.unwrap();
            response.drain().await;
        }
    });
}

/// The response types the benchmarks read to their end.
pub(crate) trait IntoBody {
    async fn drain(self);
}

impl<B: Body> IntoBody for Response<B>
where
    B::Error: std::fmt::Debug,
{
    async fn drain(self) {
        std::hint::black_box(self.into_body().collect().await.unwrap());
    }
}

/// 32 requests in flight at once through `service`, each read to its end.
pub(crate) async fn batch<S, B>(service: S, url: &str)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: std::fmt::Debug,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::fmt::Debug,
{
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..32 {
        set.spawn(exchange(service.clone(), request(url, &Bytes::new())));
    }
    while let Some(done) = set.join_next().await {
        done.unwrap();
    }
}

/// reqwest, and reqwest with reqwest-retry (exponential backoff, 4 retries), for context.
pub(crate) fn reqwest_clients() -> (reqwest::Client, reqwest_middleware::ClientWithMiddleware) {
    let policy = reqwest_retry::policies::ExponentialBackoff::builder().build_with_max_retries(4);
    let retrying = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(reqwest_retry::RetryTransientMiddleware::new_with_policy(
            policy,
        ))
        .build();
    (reqwest::Client::new(), retrying)
}
