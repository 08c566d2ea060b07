//! A tonic server without protoc: messages are raw bytes (a `Bytes` codec), each method a
//! plain function, and every call is answered as a script says and recorded.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataMap;
use tonic::server::NamedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status, Streaming};
use tower::Service;

/// Messages as raw bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Raw;

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// The unary method: answers with the message it got.
pub const SAY: &str = "/echo.Echo/Say";
/// The client-streaming method: reads every message, answers with them joined.
pub const COLLECT: &str = "/echo.Echo/Collect";
/// The server-streaming method: sends the message it got, then ends with the script's
/// status: after its Response-Headers, so in trailers.
pub const STREAM: &str = "/echo.Echo/Stream";

/// What the server saw of one call.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub metadata: MetadataMap,
    pub messages: Vec<Bytes>,
    /// When the call arrived, from the server's start.
    pub at: Duration,
}

impl Seen {
    /// A metadata value, as text.
    pub fn get(&self, key: &str) -> Option<String> {
        let value = self.metadata.get(key)?;
        Some(value.to_str().unwrap().to_owned())
    }
}

type Script = Arc<dyn Fn(usize) -> Option<Status> + Send + Sync>;

/// The `echo.Echo` service: call `n` (from 0, over every method) fails with `script(n)`,
/// or succeeds when that is `None`.
#[derive(Clone)]
pub struct Echo {
    script: Script,
    /// How long call `n` takes before it answers.
    delays: Arc<dyn Fn(usize) -> Duration + Send + Sync>,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Whether calls are kept in `seen`, or only counted.
    keep: bool,
    calls: Arc<std::sync::atomic::AtomicUsize>,
    started: Instant,
}

impl Echo {
    pub fn new(script: impl Fn(usize) -> Option<Status> + Send + Sync + 'static) -> Self {
        Echo {
            script: Arc::new(script),
            delays: Arc::new(|_| Duration::ZERO),
            seen: Arc::default(),
            keep: true,
            calls: Arc::default(),
            started: Instant::now(),
        }
    }

    /// Fails the first `n` calls with `status`, then succeeds.
    pub fn failing_first(n: usize, status: fn() -> Status) -> Self {
        Echo::new(move |i| (i < n).then(status))
    }

    /// Makes call `n` answer only after `delays(n)`.
    pub fn delaying(mut self, delays: impl Fn(usize) -> Duration + Send + Sync + 'static) -> Self {
        self.delays = Arc::new(delays);
        self
    }

    /// Keeps no record of the calls but their count: for a server that takes many.
    pub fn forgetful(mut self) -> Self {
        self.keep = false;
        self
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Records a call; returns what the script says of it, and how long it takes.
    fn record(
        &self,
        path: &str,
        metadata: &MetadataMap,
        messages: Vec<Bytes>,
    ) -> (Option<Status>, Duration) {
        let mut seen = self.seen.lock().unwrap();
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.keep {
            seen.push(Seen {
                path: path.to_owned(),
                metadata: metadata.clone(),
                messages,
                at: self.started.elapsed(),
            });
        }
        drop(seen);
        ((self.script)(n), (self.delays)(n))
    }

    /// Serves on a loopback port until the handle is dropped.
    pub async fn listen(&self) -> Listening {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Small frames go out at once, as from a server tuned for latency.
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|stream| {
            if let Ok(stream) = &stream {
                let _ = stream.set_nodelay(true);
            }
            stream
        });
        let server = tonic::transport::Server::builder()
            .add_service(self.clone())
            .serve_with_incoming(incoming);
        let task = tokio::spawn(async move {
            let _ = server.await;
        });
        Listening { addr, task }
    }
}

/// A server on a loopback port; it stops when dropped.
pub struct Listening {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Listening {
    /// A channel to the server, connected.
    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl NamedService for Echo {
    const NAME: &'static str = "echo.Echo";
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Service<http::Request<Body>> for Echo {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let echo = self.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(Raw);
            let path = request.uri().path().to_owned();
            let response = match path.as_str() {
                SAY => {
                    let handler = tower::service_fn(move |call: Request<Bytes>| {
                        let message = call.get_ref().clone();
                        let (failed, delay) =
                            echo.record(SAY, call.metadata(), vec![message.clone()]);
                        async move {
                            if !delay.is_zero() {
                                tokio::time::sleep(delay).await;
                            }
                            match failed {
                                Some(status) => Err(status),
                                None => Ok(Response::new(message)),
                            }
                        }
                    });
                    grpc.unary(handler, request).await
                }
                COLLECT => {
                    let handler = tower::service_fn(move |call: Request<Streaming<Bytes>>| {
                        let echo = echo.clone();
                        async move {
                            let metadata = call.metadata().clone();
                            let mut stream = call.into_inner();
                            let mut messages = Vec::new();
                            while let Some(message) = stream.next().await {
                                messages.push(message?);
                            }
                            let joined = messages.concat();
                            let (failed, delay) = echo.record(COLLECT, &metadata, messages);
                            if !delay.is_zero() {
                                tokio::time::sleep(delay).await;
                            }
                            match failed {
                                Some(status) => Err(status),
                                None => Ok(Response::new(Bytes::from(joined))),
                            }
                        }
                    });
                    grpc.client_streaming(handler, request).await
                }
                STREAM => {
                    let handler = tower::service_fn(move |call: Request<Bytes>| {
                        let message = call.get_ref().clone();
                        let (failed, _) =
                            echo.record(STREAM, call.metadata(), vec![message.clone()]);
                        let mut items = vec![Ok(message)];
                        items.extend(failed.map(Err));
                        async move { Ok(Response::new(tokio_stream::iter(items))) }
                    });
                    grpc.server_streaming(handler, request).await
                }
                _ => Status::unimplemented(path).into_http(),
            };
            Ok(response)
        })
    }
}

/// A unary call of `path` with `message`, through `client`.
pub async fn unary<T>(
    client: &mut tonic::client::Grpc<T>,
    path: &'static str,
    request: Request<Bytes>,
) -> Result<Response<Bytes>, Status>
where
    T: tonic::client::GrpcService<Body>,
    T::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T::ResponseBody: http_body::Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    client
        .ready()
        .await
        .map_err(|e| Status::from_error(e.into()))?;
    client
        .unary(request, PathAndQuery::from_static(path), Raw)
        .await
}

/// `UNAVAILABLE`, as a server under load answers.
pub fn unavailable() -> Status {
    Status::unavailable("busy")
}
