//! Replay bodies: whatever the chunks, size hint, trailers, error, caps and attempts, every
//! attempt sends exactly the original bytes and trailers, or fails, or is abandoned after a
//! prefix of them; and no byte stays held once the request is over.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use proptest::prelude::*;

use crate::body::{Memory, ReplayBody};
use crate::error::BoxError;

#[derive(Clone, Debug)]
enum Step {
    Data(Bytes),
    Trailers(HeaderMap),
    Fail,
}

/// What the original body's `size_hint` says.
#[derive(Clone, Copy, Debug)]
enum Hint {
    True,
    TooSmall,
    TooLarge,
    Unknown,
    LowerOnly,
}

/// The caller's body: its frames, with `Pending` before some of them.
#[derive(Debug)]
struct Source {
    steps: VecDeque<Step>,
    pending: VecDeque<bool>,
    hint: SizeHint,
}

impl Body for Source {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.pending.pop_front() == Some(true) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(self.steps.pop_front().map(|step| match step {
            Step::Data(data) => Ok(Frame::data(data)),
            Step::Trailers(trailers) => Ok(Frame::trailers(trailers)),
            Step::Fail => Err("the caller's body failed".into()),
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.steps.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        self.hint
    }
}

/// The original: its bytes, its trailers, and whether it fails (after its bytes).
#[derive(Clone, Debug)]
struct Original {
    chunks: Vec<Vec<u8>>,
    trailers: bool,
    fails: bool,
    hint: Hint,
    pending: Vec<bool>,
}

impl Original {
    fn data(&self) -> Vec<u8> {
        self.chunks.concat()
    }

    fn trailers(&self) -> Option<HeaderMap> {
        self.trailers.then(|| {
            let mut map = HeaderMap::new();
            map.insert("checksum", HeaderValue::from(self.data().len()));
            map
        })
    }

    fn source(&self) -> Source {
        let mut steps: VecDeque<Step> = self
            .chunks
            .iter()
            .map(|c| Step::Data(Bytes::from(c.clone())))
            .collect();
        if self.fails {
            steps.push_back(Step::Fail);
        } else if let Some(trailers) = self.trailers() {
            steps.push_back(Step::Trailers(trailers));
        }
        let len = self.data().len() as u64;
        let hint = match self.hint {
            Hint::True => SizeHint::with_exact(len),
            Hint::TooSmall => SizeHint::with_exact(len.saturating_sub(1) / 2),
            Hint::TooLarge => SizeHint::with_exact(len * 2 + 1),
            Hint::Unknown => SizeHint::new(),
            Hint::LowerOnly => {
                let mut hint = SizeHint::new();
                hint.set_lower(len / 2);
                hint
            }
        };
        Source {
            steps,
            pending: self.pending.iter().copied().collect(),
            hint,
        }
    }
}

fn original() -> impl Strategy<Value = Original> {
    (
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..8),
        any::<bool>(),
        prop::bool::weighted(0.15),
        prop::sample::select(vec![
            Hint::True,
            Hint::TooSmall,
            Hint::TooLarge,
            Hint::Unknown,
            Hint::LowerOnly,
        ]),
        prop::collection::vec(prop::bool::weighted(0.3), 0..12),
    )
        .prop_map(|(chunks, trailers, fails, hint, pending)| Original {
            chunks,
            trailers,
            fails,
            hint,
            pending,
        })
}

/// How one attempt reads its body: this many polls at most (each `Pending` counts), then
/// it is dropped; and whether a hedge's body is taken and read whole first.
#[derive(Clone, Copy, Debug)]
struct Attempt {
    polls: usize,
    hedge_first: bool,
}

fn attempt() -> impl Strategy<Value = Attempt> {
    (
        prop_oneof![0usize..6, Just(usize::MAX)],
        prop::bool::weighted(0.2),
    )
        .prop_map(|(polls, hedge_first)| Attempt { polls, hedge_first })
}

/// How an attempt's body ended.
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    /// To its end: these bytes, these trailers.
    Whole(Vec<u8>, Option<HeaderMap>),
    /// With an error, after these bytes.
    Failed(Vec<u8>),
    /// Dropped after these bytes.
    Abandoned(Vec<u8>),
}

fn read(body: &mut ReplayBody<Source>, polls: usize) -> Sent {
    let mut cx = Context::from_waker(Waker::noop());
    let (mut data, mut trailers) = (Vec::new(), None);
    for _ in 0..polls {
        let at_end = body.is_end_stream();
        match Pin::new(&mut *body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                assert!(!at_end, "a body that said it ended yielded a frame");
                match frame.into_data() {
                    Ok(chunk) => data.extend_from_slice(&chunk),
                    Err(frame) => trailers = frame.into_trailers().ok(),
                }
            }
            Poll::Ready(Some(Err(_))) => return Sent::Failed(data),
            Poll::Ready(None) => return Sent::Whole(data, trailers),
            Poll::Pending => {}
        }
    }
    Sent::Abandoned(data)
}

/// What every attempt may send: the whole original, or a failure or an abandonment after a
/// prefix of it.
fn check(original: &Original, sent: &Sent) -> Result<(), TestCaseError> {
    let data = original.data();
    match sent {
        Sent::Whole(bytes, trailers) => {
            prop_assert!(!original.fails, "a body ended although the original fails");
            prop_assert_eq!(
                bytes,
                &data,
                "a body ended with other bytes than the original"
            );
            prop_assert_eq!(trailers, &original.trailers());
        }
        Sent::Failed(bytes) | Sent::Abandoned(bytes) => {
            prop_assert!(data.starts_with(bytes), "a body sent bytes out of order");
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn every_attempt_sends_the_original_whole_or_fails(
        original in original(),
        cap in prop_oneof![Just(None), (0usize..2048).prop_map(Some)],
        total in prop_oneof![Just(None), (0usize..4096).prop_map(Some)],
        attempts in prop::collection::vec(attempt(), 1..6),
        last_attempt_marked in any::<bool>(),
    ) {
        let memory = total.map(|limit| Arc::new(Memory::new(limit)));
        let (first, replay) = ReplayBody::new(original.source(), cap, memory.as_ref());
        let mut next = Some(first);
        let mut cx = Context::from_waker(Waker::noop());
        for (i, attempt) in attempts.iter().enumerate() {
            let mut body = match next.take() {
                Some(first) => first,
                None => {
                    // As the retry future: every earlier body is gone, so it is released.
                    prop_assert!(replay.poll_released(&mut cx).is_ready());
                    if attempt.hedge_first {
                        match replay.poll_concurrent_body(&mut cx) {
                            Poll::Ready(Some(mut hedge)) => {
                                check(&original, &read(&mut hedge, usize::MAX))?;
                            }
                            Poll::Ready(None) => prop_assert!(!replay.is_replayable()),
                            Poll::Pending => prop_assert!(false, "no body is live, yet a hedge waits"),
                        }
                    }
                    if last_attempt_marked && i + 1 == attempts.len() {
                        replay.last_attempt();
                    }
                    // Made even when it cannot be replayed: it must fail, never truncate.
                    replay.body()
                }
            };
            let sent = read(&mut body, attempt.polls);
            check(&original, &sent)?;
            if i == 0 && cap.is_none() {
                // Nothing is kept when no attempt can follow.
                prop_assert!(memory.as_ref().is_none_or(|m| m.held() == 0));
            }
            drop(body);
        }
        drop(replay);
        if let Some(memory) = memory {
            prop_assert_eq!(memory.held(), 0, "bytes are still held after the request");
        }
    }
}
