//! The fleet simulation, small: 200 clients, each with the real layer, against a modelled
//! server whose capacity drops to 30 % for 10 s, on tokio's paused clock and a seeded
//! generator, so that every run is the same. `benches/fleet.rs` runs 1000 clients; the
//! model is described in `support/fleet.rs`.

#[path = "support/fleet.rs"]
mod fleet;

use std::time::Duration;

use fleet::{Params, Report, Variant, run_paused};

const DEGRADED: usize = Report::DEGRADED;

/// Twice the attempt timeout: the goal for getting back after the trigger.
fn goal(params: &Params) -> Duration {
    2 * params.attempt_timeout
}

#[test]
fn a_run_repeats_exactly() {
    let params = Params::small();
    let first = run_paused(Variant::Defaults, &params);
    let second = run_paused(Variant::Defaults, &params);
    assert_eq!(first.sent, second.sent);
    assert_eq!(first.succeeded, second.succeeded);
    assert_eq!(first.attempts, second.attempts);
    assert_eq!(first.wasted, second.wasted);
}

#[test]
fn without_retries_the_fleet_gets_back_once_the_capacity_does() {
    let params = Params::small();
    let report = run_paused(Variant::NoRetries, &params);
    assert!(report.recovery(DEGRADED).unwrap() <= goal(&params));
    assert_eq!(report.amplification(DEGRADED), 1.0);
    // Before the trigger, every request succeeds.
    let before = &report.goodput(DEGRADED)[..8];
    assert!(before.iter().all(|&g| g > 0.95), "{before:?}");
}

#[test]
fn with_the_defaults_the_fleet_gets_back_within_twice_the_attempt_timeout() {
    let params = Params::small();
    let report = run_paused(Variant::Defaults, &params);
    let recovery = report.recovery(DEGRADED).expect("recovers");
    assert!(recovery <= goal(&params), "{recovery:?}");
    let during = report.amplification_during(DEGRADED);
    assert!(
        during <= 1.25,
        "{during} attempts per request during the trigger"
    );
}

#[test]
fn the_budget_without_its_throttle_holds_the_fleet_down() {
    // Each client's reserve of 10 retries a second is more than its 4 requests a second.
    let report = run_paused(Variant::Unthrottled, &Params::small());
    assert_eq!(report.recovery(DEGRADED), None);
    assert!(report.amplification_during(DEGRADED) > 2.0);
}

#[test]
fn a_tight_retry_loop_without_a_budget_stays_collapsed() {
    let params = Params::small();
    let report = run_paused(Variant::TightLoop, &params);
    assert_eq!(report.recovery(DEGRADED), None);
    // Metastable: the capacity came back 15 s ago, and the last 5 s are still lost.
    let goodput = report.goodput(DEGRADED);
    let last = &goodput[goodput.len() - 10..];
    assert!(last.iter().all(|&g| g < 0.5), "{last:?}");
    // Most of the server's work is for clients that have gone.
    assert!(report.wasted_share(DEGRADED) > 0.5);
}

#[test]
fn go_retryablehttp_s_defaults_stay_collapsed() {
    let report = run_paused(Variant::GoRetryablehttp, &Params::small());
    assert_eq!(report.recovery(DEGRADED), None);
    assert!(report.amplification(DEGRADED) > 3.0);
}

#[test]
fn a_degraded_backend_leaves_the_other_s_goodput_alone() {
    let params = Params::small();
    let report = run_paused(Variant::TwoBackends, &params);
    assert!(report.recovery(DEGRADED).unwrap() <= goal(&params));
    let healthy = report.goodput(1 - DEGRADED);
    assert!(healthy.iter().all(|&g| g > 0.9), "{healthy:?}");
    assert_eq!(report.amplification_during(1 - DEGRADED), 1.0);
}

#[cfg(feature = "grpc")]
#[test]
fn grpc_s_throttling_gets_the_fleet_back_too() {
    let params = Params::small();
    let report = run_paused(Variant::Grpc, &params);
    assert!(report.recovery(DEGRADED).unwrap() <= goal(&params));
    assert!(report.amplification_during(DEGRADED) <= 1.25);
}
