//! An inner service whose calls never finish: a server that never answers, in memory.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use retryable_http::{body::ReplayBody, error::BoxError};
use tower::Service;

/// Counts the calls made and the call futures dropped (cut off, or abandoned).
#[derive(Clone, Debug, Default)]
pub struct Hang {
    calls: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

impl Hang {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
}

pub struct HangFuture(Arc<AtomicUsize>);

impl Future for HangFuture {
    type Output = Result<Response<Full<Bytes>>, BoxError>;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Pending
    }
}

impl Drop for HangFuture {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Service<Request<ReplayBody<Full<Bytes>>>> for Hang {
    type Response = Response<Full<Bytes>>;
    type Error = BoxError;
    type Future = HangFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<ReplayBody<Full<Bytes>>>) -> HangFuture {
        self.calls.fetch_add(1, Ordering::SeqCst);
        HangFuture(self.dropped.clone())
    }
}
