use std::task::Waker;

use super::*;

const ORIGINAL: &[u8] = b"hello, world";

/// Reads at most `frames` frames of `body`, then drops it. Returns what was read, and
/// whether the body reached its end without an error.
fn read(mut body: ReplayBody<Chunks>, frames: usize) -> (Vec<u8>, bool) {
    let mut cx = Context::from_waker(Waker::noop());
    let mut data = Vec::new();
    for _ in 0..frames {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                data.extend_from_slice(&frame.into_data().unwrap());
            }
            Poll::Ready(Some(Err(error))) => panic!("a body failed: {error}"),
            Poll::Ready(None) => return (data, true),
            Poll::Pending => unreachable!("the test body is always ready"),
        }
    }
    (data, false)
}

/// Waits, as the retry future does, until every earlier body is out of the way.
fn released(replay: &Replay<Chunks>) {
    let mut cx = Context::from_waker(Waker::noop());
    while replay.poll_released(&mut cx).is_pending() {
        loom::thread::yield_now();
    }
}

fn check((data, ended): (Vec<u8>, bool)) {
    if ended {
        assert_eq!(data, ORIGINAL, "a body that ended sent everything");
    } else {
        assert!(
            ORIGINAL.starts_with(&data),
            "a body sends a prefix, in order"
        );
    }
}

/// A request's first body, its replay handle, and the memory account they share.
fn request() -> (ReplayBody<Chunks>, Replay<Chunks>, std::sync::Arc<Memory>) {
    accounted(&[b"hello", b", ", b"world"])
}

/// Ends the request: nothing it kept may still be held.
fn nothing_leaked(replay: Replay<Chunks>, memory: &Memory) {
    drop(replay);
    assert_eq!(memory.held(), 0, "nothing is leaked");
}

#[test]
fn loom_a_late_reader_on_another_thread_never_breaks_the_next_attempt() {
    // The first attempt's body is read (partly, or to its end) by the inner service's
    // task after the attempt's answer; the future makes the second body once released.
    for frames in [0, 1, 4] {
        loom::model(move || {
            let (first, replay, memory) = request();
            let late = loom::thread::spawn(move || read(first, frames));
            released(&replay);
            let second = replay.body();
            check(read(second, 8));
            check(late.join().unwrap());
            nothing_leaked(replay, &memory);
        });
    }
}

#[test]
fn loom_three_attempts_hand_the_body_on_in_any_order() {
    loom::model(|| {
        let (first, replay, memory) = request();
        let one = loom::thread::spawn(move || read(first, 2));
        released(&replay);
        let second = replay.body();
        let two = loom::thread::spawn(move || read(second, 1));
        released(&replay);
        replay.last_attempt();
        let third = replay.body();
        check(read(third, 8));
        check(one.join().unwrap());
        check(two.join().unwrap());
        nothing_leaked(replay, &memory);
    });
}

#[test]
fn loom_a_hedge_copies_the_body_only_once_it_is_whole() {
    loom::model(|| {
        let (first, replay, memory) = request();
        let one = loom::thread::spawn(move || read(first, 8));
        let mut cx = Context::from_waker(Waker::noop());
        let hedge = loop {
            match replay.poll_concurrent_body(&mut cx) {
                Poll::Ready(body) => break body.expect("the body is replayable"),
                Poll::Pending => loom::thread::yield_now(),
            }
        };
        check(read(hedge, 8));
        check(one.join().unwrap());
        nothing_leaked(replay, &memory);
    });
}
