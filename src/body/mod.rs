//! A request body that can be sent again without `Clone`.
//!
//! [`ReplayBody`] wraps the caller's body. The first attempt streams it unchanged while the
//! chunks it yields are kept (refcounted [`Bytes`], never copied) up to a byte cap. A later
//! attempt replays the kept chunks and then goes on with whatever the original body has not
//! yielded yet, so a server that answered before the upload ended still gets the whole body
//! on the retry.
//!
//! A body that outgrows the cap is still sent in full once: the chunks kept so far are freed
//! and the request cannot be replayed from memory. It can still be retried when the request
//! carries a [`Reopen`]: the layer then makes the body again for each later attempt, and
//! keeps nothing. A truncated body is never sent: a replay that cannot start from the first
//! byte fails with an error instead.
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
//! # async fn main() -> Result<(), retryable_http::error::BoxError> {
//! // The inner service sees a `ReplayBody` and reads it like any other body.
//! let client = service_fn(|req: Request<retryable_http::body::ReplayBody<Full<Bytes>>>| async move {
//!     let body = req.into_body().collect().await?.to_bytes();
//!     Ok::<_, retryable_http::error::BoxError>(http::Response::new(Full::new(body)))
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
//!
//! # One body at a time
//!
//! The bodies of one request's attempts share one replay state: the kept chunks and the
//! rest of the original body. A body takes the state on its first poll and hands it back
//! when it ends or is dropped. The retry future starts the next attempt only once every
//! earlier body has ended or been dropped (bounded by the drain timeout), and an ended body
//! never takes the state again. So when an attempt's body is made, it is the only body of
//! the request that can ever take the state: an inner service that reads an abandoned
//! attempt's body late, after that attempt's response came back, delays the next attempt
//! instead of breaking it.

mod kept;
mod reopen;
mod source;

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use crate::error::BoxError;
use crate::sync::{Arc, AtomicBool, Mutex, MutexGuard, Ordering};
use kept::Kept;
pub(crate) use kept::Memory;
pub use reopen::Reopen;
pub(crate) use reopen::Reopening;
pub(crate) use source::{BodyState, Source, Unavailable};

/// The default cap on the bytes kept for replay: 1 MiB per request.
///
/// Large enough for the JSON and form bodies that are worth retrying, small enough that a
/// thousand concurrent requests cannot hold more than a gigabyte between them. Envoy and
/// linkerd use caps of the same order. Larger uploads are retried by making them again: see
/// [`Reopen`].
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
    kind: Kind<B>,
}

// NOTE: every variant is at most two words and a flag, so that a request moves no more than
// it would with the original body: what only a retry or a hedge makes is boxed.
enum Kind<B> {
    /// Empty from the start: every attempt's body is empty too, nothing is shared.
    Empty,
    /// Made again by the request's [`Reopen`]: streamed as it is, nothing kept.
    Fresh(Box<B>),
    /// Shares the replay state with the request's other bodies.
    Shared(Sharing<B>),
    /// A copy of a body that was kept whole: read alongside the other attempts' bodies.
    Snapshot(Box<Snapshot>),
}

/// A hedge's body: references to the chunks of a body kept whole, and its trailers.
struct Snapshot {
    chunks: std::vec::IntoIter<Bytes>,
    trailers: Option<HeaderMap>,
}

/// One attempt's body over the request's shared replay state.
struct Sharing<B> {
    shared: Arc<Shared<B>>,
    /// The replay state, while this body holds it: from its first poll (from the start, for
    /// the first attempt's body) to its end.
    state: Option<Box<State<B>>>,
    /// Whether this is the first attempt's body, the only one allowed to start from a state
    /// that cannot be replayed.
    first: bool,
    /// The body ended (or failed): it has handed the state back and never takes it again.
    ended: bool,
}

/// What all the bodies of one request share.
struct Shared<B> {
    slot: Mutex<Slot<B>>,
    /// The original body's size hint, read before anything was polled.
    hint: SizeHint,
    /// False once the body can no longer be replayed: it outgrew the cap or failed.
    replayable: AtomicBool,
    /// No further attempt will be made: bodies stop keeping chunks. Written under the lock.
    done: AtomicBool,
}

struct Slot<B> {
    /// The state, when no body holds it.
    state: Option<Box<State<B>>>,
    /// Bodies that may still take or hold the state: made and not yet ended or dropped.
    live: usize,
    /// Woken when `live` drops to zero.
    waiter: Option<Waker>,
}

struct State<B> {
    /// Where the body holding the state is: set back to the start when a body takes it.
    at: Cursor,
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

/// How far the body holding the state has got.
#[derive(Default)]
struct Cursor {
    /// How many kept chunks it has yielded.
    pos: usize,
    /// Data bytes it has yielded, for `size_hint`.
    yielded: u64,
    /// Whether it has yielded the trailers (or ended without any).
    trailers_done: bool,
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
    /// With no `cap` nothing is kept: no attempt will follow.
    #[inline]
    pub(crate) fn new(
        body: B,
        cap: Option<usize>,
        memory: Option<&std::sync::Arc<Memory>>,
    ) -> (Self, Replay<B>) {
        if body.is_end_stream() {
            // The most common body of all (a GET's) needs no replay state: every attempt's
            // body is empty too.
            drop(body);
            return ReplayBody::empty();
        }
        ReplayBody::shared(body, cap, memory.cloned())
    }

    /// [`new`](Self::new), for a body that may not be empty.
    fn shared(
        body: B,
        cap: Option<usize>,
        memory: Option<std::sync::Arc<Memory>>,
    ) -> (Self, Replay<B>) {
        let hint = body.size_hint();
        // NOTE: a body whose size hint is over the cap is kept too, up to the cap, as the
        // cap counts bytes read: when the server answers before the upload passes the cap,
        // a retry replays the kept prefix and goes on with the rest of the original body.
        // Keeping a chunk costs a reference count, never a copy.
        // The first attempt's body holds the state from the start: boxed, so that the body
        // stays small, and handed back when it ends.
        let state = Box::new(State {
            at: Cursor::default(),
            kept: Kept::new(memory),
            cap: cap.unwrap_or(0),
            rest: Some(body),
            trailers: None,
            complete: false,
            failed: false,
        });
        let shared = Arc::new(Shared {
            slot: Mutex::new(Slot {
                state: None,
                live: 1,
                waiter: None,
            }),
            hint,
            replayable: AtomicBool::new(cap.is_some()),
            done: AtomicBool::new(cap.is_none()),
        });
        let mut first = Sharing::new(shared.clone(), true);
        first.state = Some(state);
        let body = ReplayBody {
            kind: Kind::Shared(first),
        };
        let replay = Replay {
            shared: Some(shared),
            finished: false,
        };
        (body, replay)
    }
}

impl<B> ReplayBody<B> {
    /// An empty body, with the handle that makes the (empty) bodies of later attempts:
    /// what a request without a body of the caller's starts from.
    pub(crate) fn empty() -> (Self, Replay<B>) {
        let replay = Replay {
            shared: None,
            finished: true,
        };
        (ReplayBody { kind: Kind::Empty }, replay)
    }

    /// A body made again by a [`Reopen`], sent as it is.
    pub(crate) fn fresh(body: B) -> Self {
        ReplayBody {
            kind: Kind::Fresh(Box::new(body)),
        }
    }

    /// Returns `true` if a later attempt can replay this body from the bytes kept in
    /// memory.
    ///
    /// It turns `false` for good once the body outgrew the replay cap or the original body
    /// failed. A body made by a [`Reopen`] is not kept: it is `false` too, and a later
    /// attempt makes the body again.
    pub fn is_replayable(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Fresh(_) => false,
            Kind::Shared(sharing) => sharing.shared.replayable.load(Ordering::Acquire),
            Kind::Snapshot(_) => true,
        }
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
        match &mut self.get_mut().kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Fresh(body) => {
                let frame = ready!(Pin::new(&mut **body).poll_frame(cx));
                Poll::Ready(frame.map(|frame| match frame {
                    Ok(frame) => {
                        Ok(frame.map_data(|mut data| data.copy_to_bytes(data.remaining())))
                    }
                    Err(error) => Err(error.into()),
                }))
            }
            Kind::Shared(sharing) => sharing.poll_frame(cx),
            Kind::Snapshot(copy) => Poll::Ready(copy.next_frame().map(Ok)),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Fresh(body) => body.is_end_stream(),
            Kind::Shared(sharing) => sharing.is_end_stream(),
            Kind::Snapshot(copy) => copy.chunks.len() == 0 && copy.trailers.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Fresh(body) => body.size_hint(),
            Kind::Shared(sharing) => sharing.size_hint(),
            Kind::Snapshot(copy) => SizeHint::with_exact(copy.remaining()),
        }
    }
}

impl Snapshot {
    fn next_frame(&mut self) -> Option<Frame<Bytes>> {
        match self.chunks.next() {
            Some(chunk) => Some(Frame::data(chunk)),
            None => self.trailers.take().map(Frame::trailers),
        }
    }

    /// Data bytes not yielded yet.
    fn remaining(&self) -> u64 {
        self.chunks.as_slice().iter().map(|c| c.len() as u64).sum()
    }
}

impl<B> Sharing<B> {
    fn new(shared: Arc<Shared<B>>, first: bool) -> Self {
        Sharing {
            shared,
            state: None,
            first,
            ended: false,
        }
    }

    /// Whether everything has been yielded (`false` when that is not known without
    /// locking).
    fn at_end(&self) -> bool {
        match &self.state {
            Some(state) => {
                state.complete
                    && state.at.pos >= state.kept.len()
                    && (state.at.trailers_done || state.trailers.is_none())
            }
            None => self.ended,
        }
    }

    /// Data bytes this body has yielded: it yields only while it holds the state.
    fn yielded(&self) -> u64 {
        self.state.as_ref().map_or(0, |state| state.at.yielded)
    }

    fn is_end_stream(&self) -> bool {
        // A body ends itself (`end`) as soon as it yields its last frame, so no lock is
        // needed to know.
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        if self.ended {
            return SizeHint::with_exact(0);
        }
        // Every attempt yields the same bytes as the original, so the original's hint less
        // what this body has yielded is the remaining length.
        let yielded = self.yielded();
        let original = &self.shared.hint;
        let mut hint = SizeHint::new();
        hint.set_lower(original.lower().saturating_sub(yielded));
        if let Some(upper) = original.upper() {
            hint.set_upper(upper.saturating_sub(yielded));
        }
        hint
    }

    /// Ends this body: hands the state back, or frees it when no attempt can follow and no
    /// other body may need it, and wakes the retry future once no body is live.
    fn end(&mut self) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let returned = self.state.take();
        let mut slot = lock(&self.shared.slot);
        if returned.is_some() {
            slot.state = returned;
        }
        slot.live -= 1;
        let (unneeded, waiter) = if slot.live == 0 {
            let unneeded = if self.shared.done.load(Ordering::Acquire) {
                slot.state.take()
            } else {
                None
            };
            (unneeded, slot.waiter.take())
        } else {
            (None, None)
        };
        drop(slot);
        drop(unneeded);
        if let Some(waker) = waiter {
            waker.wake();
        }
    }
}

impl<B> Shared<B> {
    /// The body is over the cap, or failed: no later attempt can replay it. A retry future
    /// waiting for the body to be handed back may now reopen it instead, so it is woken.
    fn not_replayable(&self) {
        self.replayable.store(false, Ordering::Release);
        let waiter = lock(&self.slot).waiter.take();
        if let Some(waker) = waiter {
            waker.wake();
        }
    }
}

impl<B> Sharing<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let frame = ready!(self.poll_next(cx));
        match &frame {
            Some(Ok(_)) if !self.at_end() => {}
            // The last frame, the end, or an error: the state goes back at once, so that a
            // reader that stops here without dropping the body does not hold up a retry.
            _ => self.end(),
        }
        Poll::Ready(frame)
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let shared = &*self.shared;
        if self.state.is_none() {
            let state = lock(&shared.slot).state.take();
            match state {
                Some(mut state) => {
                    state.at = Cursor::default();
                    self.state = Some(state);
                }
                // NOTE: the retry future makes a body only when no other body of the request
                // is live, so no other body can hold the state now. Failing is the only
                // answer that never sends a partial body, should that ever be broken.
                None => return Poll::Ready(Some(Err(ReplayError::InUse.into()))),
            }
            let state = self.state.as_ref().expect("state was just set");
            if !self.first && (!shared.replayable.load(Ordering::Acquire) || state.failed) {
                // The kept prefix is gone: replaying the rest alone would truncate the body.
                return Poll::Ready(Some(Err(ReplayError::NotReplayable.into())));
            }
        }
        let state = self.state.as_mut().expect("state is held while polling");
        let keeping = !shared.done.load(Ordering::Acquire);

        // First the chunks an earlier attempt kept.
        if state.at.pos < state.kept.len() {
            let chunk = if keeping {
                state.kept.get(state.at.pos)
            } else {
                // No attempt will follow: hand the chunk over instead of keeping a reference.
                state.kept.take(state.at.pos)
            };
            state.at.pos += 1;
            state.at.yielded += chunk.len() as u64;
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if !keeping && !state.kept.is_empty() {
            state.kept.clear();
            state.at.pos = 0;
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
                        shared.not_replayable();
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
                                state.at.pos += 1;
                            } else {
                                // Over a cap: this attempt still sends everything, but
                                // nothing more is kept and the request cannot be replayed.
                                state.kept.clear();
                                state.at.pos = 0;
                                shared.not_replayable();
                            }
                        }
                        if state.rest.as_ref().is_some_and(Body::is_end_stream) {
                            // The original says it is done: no need to poll it once more.
                            state.rest = None;
                            state.complete = true;
                        }
                        state.at.yielded += chunk.len() as u64;
                        return Poll::Ready(Some(Ok(Frame::data(chunk))));
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            // Trailers end the body.
                            state.rest = None;
                            state.complete = true;
                            state.at.trailers_done = true;
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
        if !state.at.trailers_done {
            state.at.trailers_done = true;
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
}

impl<B> Drop for Sharing<B> {
    fn drop(&mut self) {
        self.end();
    }
}

impl<B> fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ReplayBody");
        match &self.kind {
            Kind::Empty => d.field("empty", &true),
            Kind::Fresh(_) => d.field("reopened", &true),
            Kind::Shared(sharing) => d
                .field("first", &sharing.first)
                .field("replayable", &self.is_replayable())
                .field("yielded", &sharing.yielded()),
            Kind::Snapshot(copy) => d
                .field("snapshot", &true)
                .field("remaining", &copy.remaining()),
        };
        d.finish_non_exhaustive()
    }
}

impl<B> Replay<B> {
    /// Makes the body of a later attempt.
    ///
    /// Call it only when [`poll_released`](Self::poll_released) is ready: the new body is
    /// then the only live one.
    pub(crate) fn body(&self) -> ReplayBody<B> {
        let Some(shared) = &self.shared else {
            return ReplayBody { kind: Kind::Empty };
        };
        let mut slot = lock(&shared.slot);
        debug_assert_eq!(slot.live, 0, "an earlier body is still live");
        slot.live += 1;
        drop(slot);
        ReplayBody {
            kind: Kind::Shared(Sharing::new(shared.clone(), false)),
        }
    }

    /// The body of an attempt that runs alongside others (a hedge).
    ///
    /// Ready with a copy of the body once it is empty or kept whole; with a body over the
    /// replay state when no other body can ever take that state; with `None` when the body
    /// cannot be replayed. Pending while another attempt's body still streams it, and woken
    /// when that body ends or the body stops being replayable.
    pub(crate) fn poll_concurrent_body(&self, cx: &mut Context<'_>) -> Poll<Option<ReplayBody<B>>> {
        let Some(shared) = &self.shared else {
            return Poll::Ready(Some(ReplayBody { kind: Kind::Empty }));
        };
        let mut slot = lock(&shared.slot);
        if !shared.replayable.load(Ordering::Acquire) {
            return Poll::Ready(None);
        }
        let kind = match &slot.state {
            Some(state) if state.complete && !state.failed => Kind::Snapshot(Box::new(Snapshot {
                chunks: state.kept.to_vec().into_iter(),
                trailers: state.trailers.as_deref().cloned(),
            })),
            Some(_) if slot.live == 0 => {
                slot.live += 1;
                Kind::Shared(Sharing::new(shared.clone(), false))
            }
            // Freed: no attempt follows.
            None if slot.live == 0 => return Poll::Ready(None),
            _ => {
                slot.waiter = Some(cx.waker().clone());
                return Poll::Pending;
            }
        };
        Poll::Ready(Some(ReplayBody { kind }))
    }

    /// Whether a later attempt can replay the body, as far as is known now.
    pub(crate) fn is_replayable(&self) -> bool {
        self.shared
            .as_ref()
            .is_none_or(|shared| shared.replayable.load(Ordering::Acquire))
    }

    /// Ready once every body made so far has ended or been dropped, so the next attempt
    /// can replay the body from the first byte, and no earlier body can ever take the
    /// state from it. Also woken when the body stops being replayable.
    pub(crate) fn poll_released(&self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(shared) = &self.shared else {
            return Poll::Ready(());
        };
        let mut slot = lock(&shared.slot);
        if slot.live == 0 {
            slot.waiter = None;
            Poll::Ready(())
        } else {
            slot.waiter = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// The next attempt is the last: its body hands kept chunks over instead of keeping
    /// them, and frees the state when it ends.
    pub(crate) fn last_attempt(&self) {
        if let Some(shared) = &self.shared {
            let _slot = lock(&shared.slot);
            shared.done.store(true, Ordering::Release);
        }
    }

    /// No attempt will follow: stop keeping chunks, and free the state now unless a body the
    /// inner service still holds may need it (it is then freed when that body ends).
    #[inline]
    pub(crate) fn finish(&mut self) {
        // An empty body is finished from the start.
        if !self.finished {
            self.finish_shared();
        }
    }

    /// [`finish`](Self::finish), the first time: an empty body is made finished.
    fn finish_shared(&mut self) {
        self.finished = true;
        let Some(shared) = &self.shared else {
            return;
        };
        let mut slot = lock(&shared.slot);
        shared.done.store(true, Ordering::Release);
        let unneeded = if slot.live == 0 {
            slot.state.take()
        } else {
            None
        };
        drop(slot);
        drop(unneeded);
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
    // NOTE: the critical sections only move an `Option` around and count, and cannot panic,
    // so a poisoned lock still holds consistent data.
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

#[cfg(test)]
mod testing;
#[cfg(test)]
use testing::{Chunks, accounted};

// The unit tests use std's `Arc` and wakers; the model build swaps the crate's for loom's.
#[cfg(all(test, not(retryable_http_loom)))]
mod tests;

/// Model checks of the hand-off between the bodies of successive attempts, and the future's
/// release wait: `RUSTFLAGS="--cfg retryable_http_loom" cargo test --release --lib loom`.
#[cfg(all(test, retryable_http_loom))]
mod loom_models;
