use std::io;
use std::pin::Pin;
use std::task::Waker;

use http_body::Body;

use super::*;
use crate::body::testing::Chunks;

/// The source of a request over `chunks`, keeping at most `cap` bytes, with a `Reopen`
/// that makes `reopened` when given; and the first attempt's body.
fn source(
    chunks: &[&'static [u8]],
    cap: usize,
    reopened: Option<&'static [&'static [u8]]>,
) -> (Source<Chunks>, ReplayBody<Chunks>) {
    let (first, replay) = ReplayBody::new(Chunks::of(chunks), Some(cap), None);
    let reopen = reopened
        .map(|chunks| Reopen::new(move || async move { Ok::<_, io::Error>(Chunks::of(chunks)) }));
    (Source::new(replay, reopen), first)
}

fn read(mut body: ReplayBody<Chunks>) -> Vec<u8> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut data = Vec::new();
    while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
        if let Ok(chunk) = frame.unwrap().into_data() {
            data.extend_from_slice(&chunk);
        }
    }
    data
}

fn reopened(source: &mut Source<Chunks>) -> Result<(), BoxError> {
    let mut cx = Context::from_waker(Waker::noop());
    match source.poll_reopened(&mut cx) {
        Poll::Ready(made) => made,
        Poll::Pending => panic!("the test factory is always ready"),
    }
}

#[test]
fn a_body_kept_whole_is_replayed_to_the_next_attempt() {
    let (mut source, first) = source(&[b"ab", b"cd"], 16, None);
    assert_eq!(read(first), b"abcd");
    assert_eq!(source.state(), BodyState::Replayable);
    assert!(source.is_concurrent());
    assert!(
        source
            .poll_released(&mut Context::from_waker(Waker::noop()))
            .is_ready()
    );
    assert_eq!(source.settle(true), Ok(()));
    assert!(!source.start_reopening());
    assert_eq!(read(source.next_body(true)), b"abcd");
}

#[test]
fn a_body_over_the_cap_without_a_reopen_cannot_be_had_again() {
    let (mut source, first) = source(&[b"abcd", b"efgh"], 4, None);
    assert_eq!(read(first), b"abcdefgh");
    assert_eq!(source.state(), BodyState::Spent);
    assert!(!source.is_concurrent());
    assert_eq!(source.settle(true), Err(Unavailable::NotReplayable));
}

#[test]
fn a_body_not_handed_back_in_time_without_a_reopen_is_in_use() {
    let (mut source, first) = source(&[b"ab"], 16, None);
    assert!(
        source
            .poll_released(&mut Context::from_waker(Waker::noop()))
            .is_pending()
    );
    assert_eq!(source.settle(false), Err(Unavailable::InUse));
    drop(first);
}

#[test]
fn a_body_over_the_cap_is_made_again_for_every_later_attempt() {
    let (mut source, first) = source(&[b"abcd", b"efgh"], 4, Some(&[b"abcd", b"efgh"]));
    assert_eq!(read(first), b"abcdefgh");
    assert_eq!(source.state(), BodyState::Reopenable);
    // A body made again shares nothing with the earlier ones: nothing to wait for.
    assert!(
        source
            .poll_released(&mut Context::from_waker(Waker::noop()))
            .is_ready()
    );
    for _ in 0..2 {
        assert_eq!(source.settle(true), Ok(()));
        assert!(source.start_reopening());
        reopened(&mut source).unwrap();
        let body = source.next_body(false);
        assert!(!body.is_replayable());
        assert_eq!(read(body), b"abcdefgh");
        assert_eq!(source.state(), BodyState::Reopenable);
    }
}

#[test]
fn a_body_still_in_use_is_made_again_when_it_can_be() {
    let (mut source, first) = source(&[b"ab"], 16, Some(&[b"ab"]));
    assert_eq!(source.settle(false), Ok(()));
    // From now on the body is made again, even once the first attempt lets go of it.
    drop(first);
    assert_eq!(source.state(), BodyState::Reopenable);
    assert!(!source.is_concurrent());
    assert!(source.start_reopening());
    reopened(&mut source).unwrap();
    assert_eq!(read(source.next_body(true)), b"ab");
}

#[test]
fn a_factory_that_fails_passes_its_error_on() {
    let (replay_body, replay) = ReplayBody::new(Chunks::of(&[b"abcd", b"ef"]), Some(2), None);
    let reopen = Reopen::new(|| async { Err::<Chunks, _>(io::Error::other("gone")) });
    let mut source = Source::new(replay, Some(reopen));
    assert_eq!(read(replay_body), b"abcdef");
    assert_eq!(source.settle(true), Ok(()));
    assert!(source.start_reopening());
    assert_eq!(reopened(&mut source).unwrap_err().to_string(), "gone");
}

#[test]
fn an_empty_body_is_always_replayable() {
    let (mut source, first) = source(&[], 0, None);
    assert!(first.is_end_stream());
    assert_eq!(source.state(), BodyState::Replayable);
    assert_eq!(source.settle(true), Ok(()));
    assert!(source.next_body(false).is_end_stream());
}
