//! [`FaultBody`]: the response body of a fault service.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::error::BoxError;

pin_project! {
    /// The response body of a [`Fault`] service: the upstream's, or the fault's own.
    pub struct FaultBody<R> {
        #[pin]
        kind: Kind<R>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<R> {
        Inner { #[pin] body: R },
        Injected { body: Option<Bytes> },
    }
}

impl<R> FaultBody<R> {
    pub(super) fn inner(body: R) -> Self {
        FaultBody {
            kind: Kind::Inner { body },
        }
    }

    pub(super) fn injected(body: Bytes) -> Self {
        FaultBody {
            kind: Kind::Injected {
                body: Some(body).filter(|b| !b.is_empty()),
            },
        }
    }

    /// Whether a fault made this body (rather than the upstream).
    pub fn is_injected(&self) -> bool {
        matches!(self.kind, Kind::Injected { .. })
    }
}

impl<R> Body for FaultBody<R>
where
    R: Body<Data = Bytes>,
    R::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx).map_err(Into::into),
            KindProj::Injected { body } => Poll::Ready(body.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Injected { body } => body.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Injected { body } => {
                SizeHint::with_exact(body.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

impl<R> fmt::Debug for FaultBody<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultBody")
            .field("injected", &self.is_injected())
            .finish_non_exhaustive()
    }
}
