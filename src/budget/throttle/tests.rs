use super::*;

#[test]
fn retries_stop_once_more_than_half_the_tokens_are_gone() {
    let throttle = Throttle::new(10, 0.1).unwrap();
    assert!(throttle.allows());
    // 10 tokens, threshold 5: failures leave 9, 8, 7, 6 (allowed), then 5 (not).
    for left in [9, 8, 7, 6] {
        assert!(throttle.record_failure());
        assert_eq!(throttle.milli_tokens(), left * 1000);
    }
    assert!(!throttle.record_failure());
    assert!(!throttle.allows());
    // Ten successes give one token back: 6, above the threshold again.
    for _ in 0..10 {
        throttle.record_success();
    }
    assert_eq!(throttle.milli_tokens(), 6000);
    assert!(throttle.allows());
}

#[test]
fn the_bucket_stays_between_empty_and_full() {
    let throttle = Throttle::new(3, 2.5).unwrap();
    throttle.record_success();
    assert_eq!(throttle.milli_tokens(), 3000, "never above the capacity");
    // Threshold 1500: one failure leaves 2000 (allowed), the next 1000 (not), then 0.
    let allowed: Vec<bool> = (0..5).map(|_| throttle.record_failure()).collect();
    assert_eq!(allowed, [true, false, false, false, false]);
    assert_eq!(throttle.milli_tokens(), 0, "never below empty");
    throttle.record_success();
    assert_eq!(throttle.milli_tokens(), 2500);
}

#[test]
fn a_failure_rate_over_about_one_in_eleven_stops_retries() {
    // A6's example: max 10 tokens, ratio 0.1. A failure costs what ten successes give, so
    // the bucket holds while failures stay under 1 in 11 (9.1 %): one in every twelve calls
    // holds it up, one in every ten drains it below the threshold.
    let holds = Throttle::new(10, 0.1).unwrap();
    let drains = Throttle::new(10, 0.1).unwrap();
    for call in 0..1200 {
        if call % 12 == 0 {
            holds.record_failure();
        } else {
            holds.record_success();
        }
        if call % 10 == 0 {
            drains.record_failure();
        } else {
            drains.record_success();
        }
    }
    assert!(holds.allows());
    assert!(!drains.allows());
}

#[test]
fn only_three_decimals_of_the_ratio_count() {
    let throttle = Throttle::new(10, 0.1239).unwrap();
    throttle.record_failure();
    throttle.record_success();
    assert_eq!(throttle.milli_tokens(), 9000 + 123);
}

#[test]
fn bad_settings_are_refused_naming_the_field() {
    for (max, ratio) in [(0, 0.1), (1001, 0.1)] {
        let error = Throttle::new(max, ratio).unwrap_err().to_string();
        assert!(error.contains("retryThrottling.maxTokens"), "{error}");
    }
    for ratio in [0.0, 0.0009, -1.0, f64::NAN, f64::INFINITY] {
        let error = Throttle::new(10, ratio).unwrap_err().to_string();
        assert!(error.contains("retryThrottling.tokenRatio"), "{error}");
    }
}

#[test]
fn a_throttle_shows_its_counts() {
    let throttle = Throttle::new(10, 0.25).unwrap();
    throttle.record_failure();
    assert_eq!(
        format!("{throttle:?}"),
        "Throttle { milli_tokens: 9000, max_milli_tokens: 10000, milli_token_ratio: 250 }"
    );
}
