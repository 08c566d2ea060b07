use std::time::Duration;

use http::StatusCode;

use super::*;

const BUSY: Ended = Ended::Status(StatusCode::SERVICE_UNAVAILABLE);
const OK: Ended = Ended::Status(StatusCode::OK);

#[test]
fn a_recorder_that_saw_nothing_gives_the_last_attempt_alone() {
    let mut recorder = Recorder::default();
    assert_eq!(recorder.take(OK), Attempts::first(OK));
}

#[test]
fn each_retry_is_recorded_after_the_wait_before_it() {
    let mut recorder = Recorder::default();
    let wait = (Duration::from_secs(2), WaitReason::RetryAfter);
    recorder.ended(BUSY, Some(wait));
    recorder.ended(OK, None);
    let record = recorder.take(Ended::Abandoned);
    assert_eq!(record.attempts(), 2);
    assert_eq!(record.get(0).map(|a| a.ended()), Some(BUSY));
    assert_eq!(
        record.get(1).map(|a| (a.ended(), a.waited())),
        Some((OK, Some(wait)))
    );
    // Taken: what is left is the last attempt alone.
    assert_eq!(recorder.take(OK).attempts(), 1);
}

#[test]
fn hedges_start_abandoned_and_end_in_place() {
    let mut recorder = Recorder::default();
    let hedge = (Duration::from_millis(10), WaitReason::Hedge);
    recorder.started(None, false);
    recorder.started(Some(hedge), true);
    recorder.set_ended(1, OK);
    let record = recorder.take(BUSY);
    assert_eq!(record.get(0).map(|a| a.ended()), Some(Ended::Abandoned));
    assert_eq!(
        record.get(1).map(|a| (a.ended(), a.is_hedge())),
        Some((OK, true))
    );
    assert_eq!(record.hedges(), 1);
    assert_eq!(record.abandoned(), 1);
}

#[test]
fn an_end_with_nothing_started_is_not_recorded() {
    let mut recorder = Recorder::default();
    recorder.set_ended(0, OK);
    assert_eq!(recorder.take(BUSY), Attempts::first(BUSY));
}

#[test]
fn each_wait_reason_has_its_name() {
    let names: Vec<_> = [
        WaitReason::Backoff,
        WaitReason::RetryAfter,
        WaitReason::RateLimitReset,
        WaitReason::Policy,
        WaitReason::GracefulShutdown,
        WaitReason::Hedge,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        names,
        [
            "backoff",
            "Retry-After",
            "rate-limit reset",
            "policy",
            "graceful shutdown",
            "hedge"
        ]
    );
}

#[test]
fn a_record_shows_each_attempt_and_the_time_waited() {
    let mut recorder = Recorder::default();
    recorder.ended(BUSY, Some((Duration::from_secs(1), WaitReason::Backoff)));
    let server = "127.0.0.1:8080".parse().unwrap();
    recorder.ended(
        Ending {
            ended: OK,
            remote: Some(server),
        },
        None,
    );
    assert_eq!(
        format!("{:?}", recorder.take(OK)),
        "Attempts { attempts: [Entry { ended: Status(503), waited: None, hedge: false, remote: None }, \
         Entry { ended: Status(200), waited: Some((1s, Backoff)), hedge: false, \
         remote: Some(127.0.0.1:8080) }], waited: 1s }"
    );
}
