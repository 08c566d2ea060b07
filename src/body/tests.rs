use std::convert::Infallible;
use std::task::Waker;

use http_body_util::StreamBody;

use super::*;

/// Polls `body` for `n` frames (all of them when `n` is `None`), and returns their data.
fn read<B: Body<Data = Bytes> + Unpin>(body: &mut B, n: Option<usize>) -> Vec<u8>
where
    B::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    let mut got = Vec::new();
    for _ in 0..n.unwrap_or(usize::MAX) {
        match Pin::new(&mut *body).poll_frame(&mut cx) {
            Poll::Ready(Some(frame)) => {
                if let Some(data) = frame.unwrap().data_ref() {
                    got.extend_from_slice(data);
                }
            }
            _ => break,
        }
    }
    got
}

/// The body of an attempt alongside others, which must be ready.
fn concurrent<B>(replay: &Replay<B>) -> ReplayBody<B> {
    let mut cx = Context::from_waker(Waker::noop());
    match replay.poll_concurrent_body(&mut cx) {
        Poll::Ready(Some(body)) => body,
        _ => panic!("the body can be had alongside the others"),
    }
}

#[test]
fn a_hedge_s_copy_of_an_empty_chunk_does_not_claim_to_have_ended_before_it() {
    let chunks = [Ok::<_, Infallible>(Frame::data(Bytes::new()))];
    let original = StreamBody::new(futures_util::stream::iter(chunks));
    let (mut first, replay) = ReplayBody::new(original, Some(0), None);
    let mut cx = Context::from_waker(Waker::noop());
    read(&mut first, None);
    let mut copy = concurrent(&replay);
    assert!(!copy.is_end_stream());
    let frame = Pin::new(&mut copy).poll_frame(&mut cx);
    assert!(
        matches!(frame, Poll::Ready(Some(Ok(f))) if f.data_ref().is_some_and(|d| d.is_empty()))
    );
    assert!(copy.is_end_stream());
}

#[test]
fn each_kind_of_body_says_what_it_is() {
    let full = || http_body_util::Full::new(Bytes::from_static(b"data"));
    let (empty, _) = ReplayBody::new(http_body_util::Full::new(Bytes::new()), Some(10), None);
    assert!(empty.is_replayable());
    assert_eq!(format!("{empty:?}"), "ReplayBody { empty: true, .. }");
    let (mut first, replay) = ReplayBody::new(full(), Some(10), None);
    assert!(first.is_replayable());
    assert_eq!(
        format!("{first:?}"),
        "ReplayBody { first: true, replayable: true, yielded: 0, .. }"
    );
    assert_eq!(format!("{replay:?}"), "Replay { replayable: true, .. }");
    read(&mut first, None);
    let copy = concurrent(&replay);
    assert!(copy.is_replayable());
    assert_eq!(
        format!("{copy:?}"),
        "ReplayBody { snapshot: true, remaining: 4, .. }"
    );
    let fresh = ReplayBody::fresh(full());
    assert!(!fresh.is_replayable(), "a reopened body is sent as it is");
    assert_eq!(format!("{fresh:?}"), "ReplayBody { reopened: true, .. }");
    assert_eq!(
        ReplayError::InUse.to_string(),
        "request body is still in use by an earlier attempt"
    );
    assert_eq!(
        ReplayError::NotReplayable.to_string(),
        "request body cannot be replayed"
    );
}

#[test]
fn a_body_polled_again_after_its_trailers_stays_ended() {
    let mut trailers = http::HeaderMap::new();
    trailers.insert("checksum", http::HeaderValue::from_static("abc"));
    let frames = [
        Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"data"))),
        Ok(Frame::trailers(trailers)),
    ];
    let original = StreamBody::new(futures_util::stream::iter(frames));
    let (mut first, replay) = ReplayBody::new(original, Some(10), None);
    let mut cx = Context::from_waker(Waker::noop());
    let mut frames = 0;
    while let Poll::Ready(Some(frame)) = Pin::new(&mut first).poll_frame(&mut cx) {
        assert!(frame.is_ok());
        frames += 1;
    }
    assert_eq!(frames, 2);
    drop(first);
    let mut again = replay.body();
    let mut kinds = Vec::new();
    for _ in 0..4 {
        kinds.push(match Pin::new(&mut again).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) if frame.is_data() => "data",
            Poll::Ready(Some(Ok(_))) => "trailers",
            Poll::Ready(None) => "end",
            _ => "other",
        });
    }
    assert_eq!(kinds, ["data", "trailers", "end", "end"]);
}

#[test]
fn a_replayed_body_says_it_has_ended_with_its_last_chunk() {
    // hyper ends an HTTP/2 stream with the last DATA frame only when the body says so.
    let chunks = [b"ab".as_slice(), b"cd".as_slice()]
        .map(|c| Ok::<_, Infallible>(Frame::data(Bytes::from_static(c))));
    let original = StreamBody::new(futures_util::stream::iter(chunks));
    let (mut first, replay) = ReplayBody::new(original, Some(10), None);
    read(&mut first, None);
    drop(first);
    let mut again = replay.body();
    assert!(!again.is_end_stream());
    assert_eq!(read(&mut again, Some(1)), b"ab");
    assert!(!again.is_end_stream());
    assert_eq!(read(&mut again, Some(1)), b"cd");
    assert!(again.is_end_stream(), "the last chunk was yielded");
    drop(again);
    // A hedge's copy counts its length down as it goes.
    let mut copy = concurrent(&replay);
    assert_eq!(copy.size_hint().exact(), Some(4));
    assert_eq!(read(&mut copy, Some(1)), b"ab");
    assert_eq!(copy.size_hint().exact(), Some(2));
    assert!(!copy.is_end_stream());
    assert_eq!(read(&mut copy, Some(1)), b"cd");
    assert_eq!(copy.size_hint().exact(), Some(0));
    assert!(copy.is_end_stream());
}

/// A waker that records whether it was woken.
#[derive(Default)]
struct Flag(std::sync::atomic::AtomicBool);

impl std::task::Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn the_last_chunk_hands_the_state_back_and_wakes_the_retry() {
    let (mut first, replay, memory) = accounted(&[b"abcd"]);
    let flag = Arc::new(Flag::default());
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(replay.poll_released(&mut cx).is_pending());
    // A reader that stops at the last chunk, without asking for the end or dropping the
    // body, does not hold up the retry.
    assert_eq!(read(&mut first, Some(1)), b"abcd");
    assert!(flag.0.load(Ordering::SeqCst), "the retry was woken");
    assert!(replay.poll_released(&mut cx).is_ready());
    assert_eq!(memory.held(), 4);
    // The last attempt's body frees what was kept as soon as it ends, here unread, while
    // the replay handle lives on.
    replay.last_attempt();
    drop(replay.body());
    assert_eq!(memory.held(), 0);
    drop(first);
}

#[test]
fn a_third_attempt_gets_what_the_first_kept_and_the_second_read() {
    let (mut first, replay) = ReplayBody::new(Chunks::of(&[b"ab", b"cd", b"ef"]), Some(10), None);
    assert_eq!(read(&mut first, Some(1)), b"ab");
    assert_eq!(first.size_hint().exact(), Some(4));
    drop(first);
    let mut second = replay.body();
    // The kept chunk, then the rest of the original.
    assert_eq!(second.size_hint().exact(), Some(6));
    assert_eq!(read(&mut second, Some(1)), b"ab");
    assert_eq!(second.size_hint().exact(), Some(4));
    assert_eq!(read(&mut second, None), b"cdef");
    drop(second);
    let mut third = replay.body();
    assert_eq!(read(&mut third, None), b"abcdef");
}

#[test]
fn the_last_attempt_keeps_nothing_of_what_it_reads() {
    let (mut first, replay, memory) = accounted(&[b"ab", b"cd", b"ef"]);
    assert_eq!(read(&mut first, Some(1)), b"ab");
    drop(first);
    assert_eq!(memory.held(), 2);
    replay.last_attempt();
    let mut last = replay.body();
    assert_eq!(read(&mut last, Some(2)), b"abcd");
    assert_eq!(
        memory.held(),
        0,
        "nothing is kept for an attempt that will not come"
    );
    assert_eq!(read(&mut last, None), b"ef");
}

#[test]
fn a_hedge_waits_while_another_body_may_stream_and_gets_nothing_once_the_body_is_freed() {
    let (first, replay) = ReplayBody::new(Chunks::of(&[b"ab", b"cd"]), Some(10), None);
    let flag = Arc::new(Flag::default());
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    // The first attempt's body has not been polled yet, but it may be at any time.
    assert!(replay.poll_concurrent_body(&mut cx).is_pending());
    drop(first);
    assert!(flag.0.load(Ordering::SeqCst), "the hedge was woken");
    // No body is live: the hedge takes the body over and streams it.
    let mut hedge = concurrent(&replay);
    assert_eq!(read(&mut hedge, None), b"abcd");
    drop(hedge);

    // Once no attempt follows, the state is freed when the last body ends: nothing is left
    // to hedge with.
    let (mut first, replay) = ReplayBody::new(Chunks::of(&[b"ab"]), Some(10), None);
    replay.last_attempt();
    assert_eq!(read(&mut first, None), b"ab");
    assert!(matches!(
        replay.poll_concurrent_body(&mut cx),
        Poll::Ready(None)
    ));
}

#[test]
fn dropping_the_replay_frees_what_was_kept_while_an_ended_body_lives_on() {
    // A future dropped while the inner service still holds the attempt's ended body.
    let (mut first, replay, memory) = accounted(&[b"ab", b"cd"]);
    assert_eq!(read(&mut first, None), b"abcd");
    assert_eq!(memory.held(), 4);
    drop(replay);
    assert_eq!(memory.held(), 0);
    drop(first);
}

#[test]
fn a_body_still_streaming_after_its_request_is_over_stops_holding_what_it_kept() {
    let (mut first, replay, memory) = accounted(&[b"ab", b"cd", b"ef"]);
    assert_eq!(read(&mut first, Some(1)), b"ab");
    assert_eq!(memory.held(), 2);
    // The future is gone; the inner service still streams the body.
    drop(replay);
    assert_eq!(read(&mut first, Some(1)), b"cd");
    assert_eq!(
        memory.held(),
        0,
        "nothing is kept for an attempt that will not come"
    );
    assert_eq!(read(&mut first, None), b"ef");
}

#[test]
fn a_reopened_body_passes_its_error_on() {
    let frames = [
        Ok(Frame::data(Bytes::from_static(b"a"))),
        Err(std::io::Error::other("disk gone")),
    ];
    let original = StreamBody::new(futures_util::stream::iter(frames));
    let mut fresh = ReplayBody::fresh(original);
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(
        Pin::new(&mut fresh).poll_frame(&mut cx),
        Poll::Ready(Some(Ok(_)))
    ));
    let Poll::Ready(Some(Err(error))) = Pin::new(&mut fresh).poll_frame(&mut cx) else {
        panic!("the error comes through");
    };
    assert_eq!(error.to_string(), "disk gone");
}
