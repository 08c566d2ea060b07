//! [`Source`]: where each attempt's request body comes from — the bytes kept for replay, or
//! the request's [`Reopen`] — and the body being made again.

use std::task::{Context, Poll, ready};

use sync_wrapper::SyncWrapper;

use super::{Reopen, Reopening, Replay, ReplayBody};
use crate::error::BoxError;

/// Whether a later attempt can have the request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyState {
    /// Empty, or kept in memory so far.
    Replayable,
    /// Not kept, but the request carries a way to make it again.
    Reopenable,
    /// Neither: it outgrew the replay cap or failed.
    Spent,
}

/// Why no later attempt can have the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// It outgrew the cap, or failed, while an attempt sent it, and cannot be made again.
    NotReplayable,
    /// An earlier attempt did not hand it back in time, and it cannot be made again.
    InUse,
}

/// The request's body, for every attempt after the first: replayed from the kept bytes
/// while they cover it, then made again by the request's [`Reopen`], if it has one.
pub(crate) struct Source<B> {
    replay: Replay<B>,
    /// Boxed: only a request that carries a `Reopen` pays for more than one pointer.
    reopen: Option<Box<Again<B>>>,
}

/// How to make the body again, and the body being made.
struct Again<B> {
    reopen: Reopen<B>,
    /// From the first retry that needed it on, every attempt makes its body again.
    active: bool,
    /// The body being made, while it is.
    making: Option<SyncWrapper<Reopening<B>>>,
    /// The body made, until the next attempt takes it.
    made: Option<B>,
}

impl<B> Source<B> {
    /// The source of a request whose first attempt's body shares `replay`, and which can
    /// make its body again with `reopen`, if given.
    #[inline(always)]
    pub(crate) fn new(replay: Replay<B>, reopen: Option<Reopen<B>>) -> Self {
        let reopen = reopen.map(|reopen| {
            Box::new(Again {
                reopen,
                active: false,
                making: None,
                made: None,
            })
        });
        Source { replay, reopen }
    }

    /// Whether a later attempt can have the body, as far as is known now.
    pub(crate) fn state(&self) -> BodyState {
        if !self.active() && self.replay.is_replayable() {
            BodyState::Replayable
        } else if self.reopen.is_some() {
            BodyState::Reopenable
        } else {
            BodyState::Spent
        }
    }

    /// Whether several attempts can each have the body at once: it is kept in memory, and
    /// never made again.
    pub(crate) fn is_concurrent(&self) -> bool {
        self.reopen.is_none() && self.replay.is_replayable()
    }

    /// Whether every attempt from the next on makes its body again.
    fn active(&self) -> bool {
        self.reopen.as_ref().is_some_and(|a| a.active)
    }

    /// Whether the next attempt's body is made again rather than replayed.
    fn reopens(&self) -> bool {
        self.active() || (self.reopen.is_some() && !self.replay.is_replayable())
    }

    /// Ready once the earlier attempts' bodies are out of the way of the next one. Also
    /// woken when the body stops being replayable.
    pub(crate) fn poll_released(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.reopens() {
            // A body made again shares nothing with the earlier ones.
            return Poll::Ready(());
        }
        self.replay.poll_released(cx)
    }

    /// Settles where the next attempt's body comes from, once the earlier bodies were
    /// handed back (`released`) or the wait for them ended: the kept bytes, or the
    /// request's `Reopen` from now on.
    pub(crate) fn settle(&mut self, released: bool) -> Result<(), Unavailable> {
        let reopening = self.reopens();
        let replayable = released && self.replay.is_replayable();
        if !reopening && !replayable && self.reopen.is_none() {
            return Err(if released {
                Unavailable::NotReplayable
            } else {
                Unavailable::InUse
            });
        }
        if reopening || !replayable {
            // The kept bytes cannot cover the retry: from now on every attempt makes the
            // body again, and nothing more is kept.
            if let Some(again) = self.reopen.as_mut() {
                again.active = true;
            }
            self.replay.finish();
        }
        Ok(())
    }

    /// Starts making the body again, if the next attempt needs that. Returns whether it
    /// did.
    pub(crate) fn start_reopening(&mut self) -> bool {
        match self.reopen.as_mut() {
            Some(again) if again.active => {
                again.making = Some(SyncWrapper::new(again.reopen.open()));
                true
            }
            _ => false,
        }
    }

    /// Polls the body being made again; ready once it is made, or with the factory's
    /// error.
    pub(crate) fn poll_reopened(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        let again = self.reopen.as_mut().expect("the body is being made again");
        let making = again.making.as_mut().expect("the body is being made again");
        let made = ready!(making.get_mut().as_mut().poll(cx));
        again.making = None;
        Poll::Ready(made.map(|body| again.made = Some(body)))
    }

    /// The body of the next attempt: the one made again, or a replay of the kept bytes.
    /// `last` when no attempt follows it, so that it keeps nothing.
    ///
    /// Call it only once [`poll_released`](Self::poll_released) is ready, and
    /// [`poll_reopened`](Self::poll_reopened) too when the body is made again.
    pub(crate) fn next_body(&mut self, last: bool) -> ReplayBody<B> {
        if let Some(made) = self.reopen.as_mut().and_then(|a| a.made.take()) {
            return ReplayBody::fresh(made);
        }
        if last {
            self.replay.last_attempt();
        }
        self.replay.body()
    }

    /// The body of an attempt that runs alongside others (a hedge): see
    /// [`Replay::poll_concurrent_body`].
    pub(crate) fn poll_concurrent_body(&self, cx: &mut Context<'_>) -> Poll<Option<ReplayBody<B>>> {
        self.replay.poll_concurrent_body(cx)
    }

    /// No attempt will follow: frees what was kept, as soon as no body needs it.
    pub(crate) fn finish(&mut self) {
        self.replay.finish();
    }
}

impl<B> Drop for Source<B> {
    #[inline]
    fn drop(&mut self) {
        // NOTE: most requests have no `Reopen`: taking the box here keeps the drop of a
        // source without one to a single test, inline.
        if let Some(again) = self.reopen.take() {
            drop(again);
        }
    }
}

#[cfg(test)]
mod tests;
