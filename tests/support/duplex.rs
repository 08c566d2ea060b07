//! hyper-util's client over in-memory pipes: real HTTP/1.1 framing and connection pooling,
//! in virtual time. Every "connection" is a `tokio::io::duplex` pair served by hyper.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::DuplexStream;
use tower::Service;

type Reply = Response<UnsyncBoxBody<Bytes, Infallible>>;

type Handler = Arc<
    dyn Fn(usize, Request<Incoming>) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync,
>;

/// A connector whose connections are in-memory pipes to a hyper server.
#[derive(Clone)]
pub struct Pipes {
    handler: Handler,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl Pipes {
    pub fn new<F, Fut, B>(handler: F) -> Self
    where
        F: Fn(usize, Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<B>> + Send + 'static,
        B: http_body::Body<Data = Bytes, Error = Infallible> + Send + 'static,
    {
        let handler = Arc::new(handler);
        Pipes {
            handler: Arc::new(move |n, req| {
                let response = handler(n, req);
                Box::pin(async move { response.await.map(BodyExt::boxed_unsync) })
            }),
            connections: Arc::new(AtomicUsize::new(0)),
            requests: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A hyper-util client (HTTP/1.1, pooled) that connects through these pipes.
    pub fn client<B>(&self) -> Client<Pipes, B>
    where
        B: http_body::Body + Send + 'static + Unpin,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        Client::builder(TokioExecutor::new()).build(self.clone())
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Service<Uri> for Pipes {
    type Response = Pipe;
    type Error = io::Error;
    type Future = Ready<io::Result<Pipe>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        self.connections.fetch_add(1, Ordering::SeqCst);
        let (client, server) = tokio::io::duplex(64 * 1024);
        let handler = self.handler.clone();
        let requests = self.requests.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let n = requests.fetch_add(1, Ordering::SeqCst);
                let response = handler(n, req);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(server), service)
                .await;
        });
        ready(Ok(Pipe(TokioIo::new(client))))
    }
}

/// The client end of a pipe.
pub struct Pipe(pub TokioIo<DuplexStream>);

impl Connection for Pipe {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for Pipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Pipe {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
