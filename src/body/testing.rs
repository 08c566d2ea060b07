//! What the body's unit tests and model checks share: a body of ready chunks, and a
//! request whose replay is counted in a memory account of its own.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::{Memory, Replay, ReplayBody};

/// A body for the tests and the model checks: chunks yielded at once, with an exact size
/// hint.
pub(super) struct Chunks(std::collections::VecDeque<Bytes>);

impl Chunks {
    pub(super) fn of(chunks: &[&'static [u8]]) -> Self {
        Chunks(chunks.iter().map(|c| Bytes::from_static(c)).collect())
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.pop_front().map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.iter().map(|c| c.len() as u64).sum())
    }
}

/// A request over `chunks` whose replay is counted in a memory account of its own: its
/// first body, its replay handle, and the account.
pub(super) fn accounted(
    chunks: &[&'static [u8]],
) -> (ReplayBody<Chunks>, Replay<Chunks>, std::sync::Arc<Memory>) {
    let memory = std::sync::Arc::new(Memory::new(1024));
    let (first, replay) = ReplayBody::new(Chunks::of(chunks), Some(64), Some(&memory));
    (first, replay, memory)
}
