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
        // The upstream's body, broken after `left` more bytes.
        Cut {
            #[pin] body: R,
            left: u64,
            // An HTTP/2 reset, after a pause that lets the bytes before it go out.
            reset: Option<Option<Pin<Box<tokio::time::Sleep>>>>,
            // A byte past the cut came from the upstream: the body breaks.
            past: bool,
            broken: bool,
        },
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

    pub(super) fn cut(body: R, after: u64, reset: bool) -> Self {
        FaultBody {
            kind: Kind::Cut {
                body,
                left: after,
                reset: reset.then_some(None),
                past: false,
                broken: false,
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
            KindProj::Cut {
                mut body,
                left,
                reset,
                past,
                broken,
            } => loop {
                if *broken {
                    return Poll::Ready(None);
                }
                if *past {
                    if let Some(pause) = reset {
                        // h2 drops what a reset stream has not sent yet: the bytes before
                        // the cut get a moment to go out first.
                        let pause =
                            pause.get_or_insert_with(|| Box::pin(tokio::time::sleep(RESET_PAUSE)));
                        std::task::ready!(pause.as_mut().poll(cx));
                    }
                    *broken = true;
                    return Poll::Ready(Some(Err(break_error(reset.is_some()))));
                }
                let frame = match std::task::ready!(body.as_mut().poll_frame(cx)) {
                    Some(Ok(frame)) => frame,
                    // A body no longer than the cut ends as it would.
                    other => return Poll::Ready(other.map(|r| r.map_err(Into::into))),
                };
                let mut data = match frame.into_data() {
                    Ok(data) if *left == 0 && !data.is_empty() => {
                        // The byte after the cut never arrives.
                        *past = true;
                        continue;
                    }
                    Ok(data) => data,
                    // Trailers come after the whole body.
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                };
                if data.len() as u64 > *left {
                    data.truncate(*left as usize);
                }
                *left -= data.len() as u64;
                return Poll::Ready(Some(Ok(Frame::data(data))));
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Injected { body } => body.is_none(),
            Kind::Cut { broken, .. } => *broken,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Injected { body } => {
                SizeHint::with_exact(body.as_ref().map_or(0, |b| b.len() as u64))
            }
            // The whole length, still: the client expects all of it, and sees it cut.
            Kind::Cut { body, .. } => body.size_hint(),
        }
    }
}

/// How long an HTTP/2 body that is cut waits before its stream is reset.
const RESET_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// The error a cut body breaks with: a reset connection, or an HTTP/2 stream reset.
fn break_error(reset: bool) -> BoxError {
    if reset {
        return h2::Error::from(h2::Reason::INTERNAL_ERROR).into();
    }
    std::io::Error::new(std::io::ErrorKind::ConnectionReset, super::InjectedFault).into()
}

impl<R> fmt::Debug for FaultBody<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultBody")
            .field("injected", &self.is_injected())
            .finish_non_exhaustive()
    }
}
