//! A request body that can be sent again without `Clone`.
//!
//! [`ReplayBody`] wraps the caller's body. The first attempt streams it unchanged while the
//! chunks it yields are kept (refcounted [`Bytes`], never copied) up to a byte cap. A later
//! attempt replays the kept chunks and then goes on with whatever the original body has not
//! yielded yet, so a server that answered before the upload ended still gets the whole body
//! on the retry.
//!
//! A body that outgrows the cap is still sent in full once: the chunks kept so far are freed
//! and the request just cannot be retried. A truncated body is never sent: a replay that
//! cannot start from the first byte fails with an error instead.
//!
//! [`RetryLayer`](crate::RetryLayer) creates these bodies; the inner service sees
//! `http::Request<ReplayBody<B>>`.
//!
//! ```
//! use bytes::Bytes;
//! use http::Request;
//! use http_body_util::{BodyExt, Full};
//! use retryable_http::RetryLayer;
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), retryable_http::BoxError> {
//! // The inner service sees a `ReplayBody` and reads it like any other body.
//! let client = service_fn(|req: Request<retryable_http::ReplayBody<Full<Bytes>>>| async move {
//!     let body = req.into_body().collect().await?.to_bytes();
//!     Ok::<_, retryable_http::BoxError>(http::Response::new(Full::new(body)))
//! });
//! let mut client = ServiceBuilder::new().layer(RetryLayer::new()).service(client);
//! let response = client
//!     .ready()
//!     .await?
//!     .call(Request::post("http://example.com/").body(Full::new(Bytes::from("hello")))?)
//!     .await?;
//! assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "hello");
//! # Ok(())
//! # }
//! ```

mod kept;

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use crate::BoxError;
use kept::Kept;
pub(crate) use kept::Memory;

/// The default cap on the bytes kept for replay: 1 MiB per request.
///
/// Large enough for the JSON and form bodies that are worth retrying, small enough that a
/// thousand concurrent requests cannot hold more than a gigabyte between them. Envoy and
/// linkerd use caps of the same order.
pub const DEFAULT_REPLAY_LIMIT: usize = 1024 * 1024;

/// A request body that can be replayed for a retry.
///
/// See the [module documentation](self) for how it works. Its data type is [`Bytes`]: chunks
/// of any other [`Buf`] type are turned into `Bytes` once, with
/// [`Buf::copy_to_bytes`], which does not copy when the chunk already is `Bytes`.
///
/// `ReplayBody<B>` is [`Send`] when `B` is, always [`Unpin`], and `'static` when `B` is,
/// which are the bounds hyper-util's client puts on request bodies. The original body must
/// be [`Unpin`]; wrap one that is not in [`Box::pin`].
pub struct ReplayBody<B> {
    /// The replay state, held while this body is the one being polled. It is taken from
    /// `shared` on the first poll and handed back when this body is dropped.
    state: Option<State<B>>,
    /// `None` for a body that was empty from the start: there is nothing to keep or share.
    shared: Option<Arc<Shared<B>>>,
    /// How many kept chunks this body has yielded.
    pos: usize,
    /// Data bytes this body has yielded, for `size_hint`.
    yielded: u64,
    /// Whether this body has yielded the trailers (or ended without any).
    trailers_done: bool,
    /// Whether this is the first attempt's body, the only one allowed to start from a state
    /// that cannot be replayed.
    first: bool,
}

/// What all the bodies of one request share.
struct Shared<B> {
    slot: Mutex<Slot<B>>,
    /// The original body's size hint, read before anything was polled.
    hint: SizeHint,
    /// False once the body can no longer be replayed: it outgrew the cap or failed.
    replayable: AtomicBool,
    /// No further attempt will be made: bodies stop keeping chunks, and drop the state
    /// instead of handing it back.
    done: AtomicBool,
    /// Bodies alive. Once `done`, the state is freed when none is left that may still need
    /// it: a future dropped while its inner service holds the request must not break the
    /// body the service is about to send.
    bodies: AtomicUsize,
}

struct Slot<B> {
    /// The state, when no body holds it.
    state: Option<State<B>>,
    /// Woken when a body hands the state back.
    waiter: Option<Waker>,
}

struct State<B> {
    kept: Kept,
    cap: usize,
    /// The original body, until it ends or fails.
    rest: Option<B>,
    /// Boxed: trailers are rare, and a body moves around a lot.
    trailers: Option<Box<HeaderMap>>,
    /// The original body reached its end.
    complete: bool,
    /// The original body yielded an error.
    failed: bool,
}

/// The retry future's handle on a request body: it makes the body of each attempt.
pub(crate) struct Replay<B> {
    /// `None` for an empty body.
    shared: Option<Arc<Shared<B>>>,
    /// `finish` ran.
    finished: bool,
}

impl<B> ReplayBody<B>
where
    B: Body,
{
    /// Wraps `body`, keeping at most `cap` bytes for replay, and returns the body of the
    /// first attempt with the handle that makes the bodies of later attempts.
    ///
    /// With `retries` false nothing is kept: no attempt will follow.
    pub(crate) fn new(
        body: B,
        cap: usize,
        memory: Option<Arc<Memory>>,
        retries: bool,
    ) -> (Self, Replay<B>) {
        let empty = body.is_end_stream();
        if empty {
            // The most common body of all (a GET's) needs no replay state: every attempt's
            // body is empty too.
            drop(body);
            let replay = Replay {
                shared: None,
                finished: true,
            };
            return (replay.body(), replay);
        }
        let hint = body.size_hint();
        // NOTE: an exact (or lower) size hint above the cap means the body would be dropped
        // from the buffer anyway, so it is not buffered at all.
        let keep = retries && hint.lower() <= cap as u64;
        let state = State {
            kept: Kept::new(memory),
            cap,
            rest: Some(body),
            trailers: None,
            complete: false,
            failed: false,
        };
        let shared = Arc::new(Shared {
            slot: Mutex::new(Slot {
                state: Some(state),
                waiter: None,
            }),
            hint,
            replayable: AtomicBool::new(keep),
            done: AtomicBool::new(!retries),
            bodies: AtomicUsize::new(1),
        });
        let body = ReplayBody {
            state: None,
            shared: Some(shared.clone()),
            pos: 0,
            yielded: 0,
            trailers_done: false,
            first: true,
        };
        let replay = Replay {
            shared: Some(shared),
            finished: false,
        };
        (body, replay)
    }
}

impl<B> ReplayBody<B> {
    /// Returns `true` if this body can still be replayed by a later attempt.
    ///
    /// It turns `false` for good once the body outgrew the replay cap or the original body
    /// failed.
    pub fn is_replayable(&self) -> bool {
        self.shared
            .as_ref()
            .is_none_or(|shared| shared.replayable.load(Ordering::Acquire))
    }
}

impl<B> Body for ReplayBody<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let Some(shared) = this.shared.as_deref() else {
            return Poll::Ready(None);
        };
        if this.state.is_none() {
            let state = lock(&shared.slot).state.take();
            match state {
                Some(state) => this.state = Some(state),
                // NOTE: the retry future waits for the previous attempt to hand the state back
                // before it starts the next one, so this only happens when a body is polled
                // out of turn. Failing is the only answer that never sends a partial body.
                None => return Poll::Ready(Some(Err(ReplayError::InUse.into()))),
            }
            let state = this.state.as_ref().expect("state was just set");
            if !this.first && (!shared.replayable.load(Ordering::Acquire) || state.failed) {
                // The kept prefix is gone: replaying the rest alone would truncate the body.
                return Poll::Ready(Some(Err(ReplayError::NotReplayable.into())));
            }
        }
        let state = this.state.as_mut().expect("state is held while polling");
        let keeping = !shared.done.load(Ordering::Relaxed);

        // First the chunks an earlier attempt kept.
        if this.pos < state.kept.len() {
            let chunk = if keeping {
                state.kept.get(this.pos)
            } else {
                // No attempt will follow: hand the chunk over instead of keeping a reference.
                state.kept.take(this.pos)
            };
            this.pos += 1;
            this.yielded += chunk.len() as u64;
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if !keeping && !state.kept.is_empty() {
            state.kept.clear();
            this.pos = 0;
        }

        // Then whatever the original body has not yielded yet.
        if let Some(rest) = state.rest.as_mut() {
            loop {
                let frame = match ready!(Pin::new(&mut *rest).poll_frame(cx)) {
                    Some(Ok(frame)) => frame,
                    Some(Err(error)) => {
                        state.rest = None;
                        state.failed = true;
                        state.kept.clear();
                        shared.replayable.store(false, Ordering::Release);
                        return Poll::Ready(Some(Err(error.into())));
                    }
                    None => {
                        state.rest = None;
                        state.complete = true;
                        break;
                    }
                };
                match frame.into_data() {
                    Ok(mut data) => {
                        let chunk = data.copy_to_bytes(data.remaining());
                        if keeping && shared.replayable.load(Ordering::Acquire) {
                            if state.kept.push(chunk.clone(), state.cap) {
                                this.pos += 1;
                            } else {
                                // Over a cap: this attempt still sends everything, but
                                // nothing more is kept and the request cannot be retried.
                                state.kept.clear();
                                this.pos = 0;
                                shared.replayable.store(false, Ordering::Release);
                            }
                        }
                        this.yielded += chunk.len() as u64;
                        return Poll::Ready(Some(Ok(Frame::data(chunk))));
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            // Trailers end the body.
                            state.rest = None;
                            state.complete = true;
                            this.trailers_done = true;
                            if keeping {
                                state.trailers = Some(Box::new(trailers.clone()));
                            }
                            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                        }
                        // A frame kind this crate does not know: skip it.
                    }
                }
            }
        }

        if !state.complete {
            // The original failed on an earlier attempt: ending here would truncate the body.
            return Poll::Ready(Some(Err(ReplayError::NotReplayable.into())));
        }
        if !this.trailers_done {
            this.trailers_done = true;
            let trailers = if keeping {
                state.trailers.clone()
            } else {
                state.trailers.take()
            };
            if let Some(trailers) = trailers {
                return Poll::Ready(Some(Ok(Frame::trailers(*trailers))));
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        if self.shared.is_none() {
            return true;
        }
        match &self.state {
            Some(state) => {
                state.complete
                    && self.pos >= state.kept.len()
                    && (self.trailers_done || state.trailers.is_none())
            }
            // NOTE: `false` is always a correct answer; the state is not locked to find out.
            None => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        let Some(shared) = &self.shared else {
            return SizeHint::with_exact(0);
        };
        // Every attempt yields the same bytes as the original, so the original's hint less
        // what this body has yielded is the remaining length.
        let original = &shared.hint;
        let mut hint = SizeHint::new();
        hint.set_lower(original.lower().saturating_sub(self.yielded));
        if let Some(upper) = original.upper() {
            hint.set_upper(upper.saturating_sub(self.yielded));
        }
        hint
    }
}

impl<B> Drop for ReplayBody<B> {
    fn drop(&mut self) {
        let Some(shared) = self.shared.as_deref() else {
            return;
        };
        if let Some(state) = self.state.take() {
            if shared.done.load(Ordering::SeqCst) {
                // No attempt will follow: nobody needs it.
                drop(state);
            } else {
                let mut slot = lock(&shared.slot);
                slot.state = Some(state);
                if let Some(waker) = slot.waiter.take() {
                    drop(slot);
                    waker.wake();
                }
            }
        }
        // NOTE: the count drops after the state is back in the slot, and `finish` sets
        // `done` before it reads the count: with both sequentially consistent, whichever of
        // the two comes last sees the other and frees the state.
        let left = shared.bodies.fetch_sub(1, Ordering::SeqCst) - 1;
        if left == 0 && shared.done.load(Ordering::SeqCst) {
            let unneeded = lock(&shared.slot).state.take();
            drop(unneeded);
        }
    }
}

impl<B> fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayBody")
            .field("first", &self.first)
            .field("replayable", &self.is_replayable())
            .field("yielded", &self.yielded)
            .finish_non_exhaustive()
    }
}

impl<B> Replay<B> {
    /// Makes the body of a later attempt.
    pub(crate) fn body(&self) -> ReplayBody<B> {
        if let Some(shared) = &self.shared {
            shared.bodies.fetch_add(1, Ordering::SeqCst);
        }
        ReplayBody {
            state: None,
            shared: self.shared.clone(),
            pos: 0,
            yielded: 0,
            trailers_done: false,
            first: false,
        }
    }

    /// Whether a later attempt can replay the body, as far as is known now.
    pub(crate) fn is_replayable(&self) -> bool {
        self.shared
            .as_ref()
            .is_none_or(|shared| shared.replayable.load(Ordering::Acquire))
    }

    /// Ready once no attempt's body holds the state any more, so the next attempt can
    /// start from the first byte.
    pub(crate) fn poll_released(&self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(shared) = &self.shared else {
            return Poll::Ready(());
        };
        let mut slot = lock(&shared.slot);
        if slot.state.is_some() {
            slot.waiter = None;
            Poll::Ready(())
        } else {
            slot.waiter = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// The next attempt is the last: its body hands kept chunks over instead of keeping
    /// them, and frees the state when it is dropped.
    pub(crate) fn last_attempt(&self) {
        if let Some(shared) = &self.shared {
            shared.done.store(true, Ordering::SeqCst);
        }
    }

    /// No attempt will follow: stop keeping chunks, and free the state now unless a body the
    /// inner service still holds may need it (it is then freed with that body).
    pub(crate) fn finish(&mut self) {
        let Some(shared) = &self.shared else {
            return;
        };
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        shared.done.store(true, Ordering::SeqCst);
        if shared.bodies.load(Ordering::SeqCst) == 0 {
            let unneeded = lock(&shared.slot).state.take();
            drop(unneeded);
        }
    }
}

impl<B> Drop for Replay<B> {
    fn drop(&mut self) {
        self.finish();
    }
}

impl<B> fmt::Debug for Replay<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replay")
            .field("replayable", &self.is_replayable())
            .finish_non_exhaustive()
    }
}

fn lock<B>(slot: &Mutex<Slot<B>>) -> MutexGuard<'_, Slot<B>> {
    // NOTE: the critical sections only move an `Option` around and cannot panic, so a
    // poisoned lock still holds consistent data.
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Why a replayed body failed instead of sending a truncated request.
#[derive(Debug)]
enum ReplayError {
    /// Another attempt's body still holds the replay state.
    InUse,
    /// The kept prefix is gone (the body outgrew the cap or failed).
    NotReplayable,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::InUse => f.write_str("request body is still in use by an earlier attempt"),
            ReplayError::NotReplayable => f.write_str("request body cannot be replayed"),
        }
    }
}

impl std::error::Error for ReplayError {}
