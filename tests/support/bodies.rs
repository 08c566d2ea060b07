//! Request bodies for tests: scripted frames, channels, failures, and tracked bytes.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use retryable_http::error::BoxError;
use tokio::sync::mpsc;

/// A body that yields a fixed list of frames, then ends.
#[derive(Debug, Default)]
pub struct Frames {
    frames: VecDeque<Result<Frame<Bytes>, BoxError>>,
    hint: Option<SizeHint>,
}

impl Frames {
    /// Data chunks, one frame each.
    pub fn chunks<I, T>(chunks: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<Bytes>,
    {
        Frames {
            frames: chunks
                .into_iter()
                .map(|c| Ok(Frame::data(c.into())))
                .collect(),
            hint: None,
        }
    }

    /// No frames at all.
    pub fn empty() -> Self {
        Frames::default()
    }

    /// Ends the body with trailers.
    pub fn trailers(mut self, trailers: HeaderMap) -> Self {
        self.frames.push_back(Ok(Frame::trailers(trailers)));
        self
    }

    /// Ends the body with an error instead.
    pub fn fail(mut self, message: &'static str) -> Self {
        self.frames.push_back(Err(message.into()));
        self
    }

    /// Reports this size hint instead of the exact remaining length.
    pub fn hint(mut self, hint: SizeHint) -> Self {
        self.hint = Some(hint);
        self
    }
}

impl Body for Frames {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.frames.pop_front())
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        if let Some(hint) = &self.hint {
            return *hint;
        }
        let data_only = self
            .frames
            .iter()
            .all(|f| matches!(f, Ok(f) if f.is_data()));
        let len: usize = self
            .frames
            .iter()
            .filter_map(|f| f.as_ref().ok().and_then(|f| f.data_ref()).map(Bytes::len))
            .sum();
        if data_only {
            SizeHint::with_exact(len as u64)
        } else {
            let mut hint = SizeHint::new();
            hint.set_lower(len as u64);
            hint
        }
    }
}

/// A body fed through a channel: the test decides when each frame arrives.
#[derive(Debug)]
pub struct Channel {
    rx: mpsc::UnboundedReceiver<Result<Frame<Bytes>, BoxError>>,
}

/// The sending side of a [`Channel`] body.
#[derive(Clone, Debug)]
pub struct Sender {
    tx: mpsc::UnboundedSender<Result<Frame<Bytes>, BoxError>>,
}

pub fn channel() -> (Sender, Channel) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Sender { tx }, Channel { rx })
}

impl Sender {
    pub fn data(&self, chunk: impl Into<Bytes>) {
        let _ = self.tx.send(Ok(Frame::data(chunk.into())));
    }

    pub fn trailers(&self, trailers: HeaderMap) {
        let _ = self.tx.send(Ok(Frame::trailers(trailers)));
    }

    pub fn fail(&self, message: &'static str) {
        let _ = self.tx.send(Err(message.into()));
    }
}

impl Body for Channel {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx.poll_recv(cx)
    }
}

/// Counts the bytes of [`tracked`] chunks that are still alive.
#[derive(Clone, Debug, Default)]
pub struct Gauge(Arc<AtomicUsize>);

impl Gauge {
    pub fn live(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

struct Tracked {
    data: Vec<u8>,
    gauge: Gauge,
}

impl AsRef<[u8]> for Tracked {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.gauge.0.fetch_sub(self.data.len(), Ordering::SeqCst);
    }
}

/// A chunk of `len` bytes of `fill` whose memory the gauge counts until it is freed.
pub fn tracked(len: usize, fill: u8, gauge: &Gauge) -> Bytes {
    gauge.0.fetch_add(len, Ordering::SeqCst);
    Bytes::from_owner(Tracked {
        data: vec![fill; len],
        gauge: gauge.clone(),
    })
}

/// A body whose one chunk arrives after `delay`: a response whose body is not in the
/// client's buffer yet when its head is.
pub struct Delayed {
    sleep: Pin<Box<tokio::time::Sleep>>,
    data: Option<Bytes>,
    len: u64,
}

impl Delayed {
    pub fn new(delay: std::time::Duration, data: impl Into<Bytes>) -> Self {
        let data = data.into();
        Delayed {
            sleep: Box::pin(tokio::time::sleep(delay)),
            len: data.len() as u64,
            data: Some(data),
        }
    }
}

impl Body for Delayed {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::convert::Infallible>>> {
        std::task::ready!(self.sleep.as_mut().poll(cx));
        Poll::Ready(self.data.take().map(|d| Ok(Frame::data(d))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

/// A body whose first poll waits `delay`: an inner service that reads an attempt's body
/// late, after that attempt's response came back.
pub struct LateStart<B> {
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    body: B,
}

impl<B> LateStart<B> {
    pub fn new(delay: std::time::Duration, body: B) -> Self {
        LateStart {
            sleep: Some(Box::pin(tokio::time::sleep(delay))),
            body,
        }
    }
}

impl<B: Body + Unpin> Body for LateStart<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        if let Some(sleep) = self.sleep.as_mut() {
            std::task::ready!(sleep.as_mut().poll(cx));
            self.sleep = None;
        }
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.sleep.is_none() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
