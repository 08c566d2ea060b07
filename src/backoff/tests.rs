use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn exp(jitter: Jitter) -> Backoff {
    Backoff::exponential(secs(1), secs(30))
        .unwrap()
        .jitter(jitter)
        .into()
}

#[test]
fn without_jitter_doubles_from_min_up_to_the_cap() {
    let delays: Vec<_> = exp(Jitter::None).delays().take(7).collect();
    assert_eq!(
        delays,
        [
            secs(1),
            secs(2),
            secs(4),
            secs(8),
            secs(16),
            secs(30),
            secs(30)
        ]
    );
}

#[test]
fn bounded_jitter_spreads_each_step_inside_min_and_cap() {
    let backoff = exp(Jitter::Bounded);
    let mut rng = Rng::from_seed(3);
    let bounds = [(1, 2), (2, 4), (4, 8), (8, 16), (15, 30), (15, 30)];
    for (i, (lo, hi)) in bounds.into_iter().enumerate() {
        let (mut seen_lo, mut seen_hi) = (Duration::MAX, Duration::ZERO);
        for _ in 0..2000 {
            let d = backoff.compute(i as u32 + 1, Duration::ZERO, None, &mut rng);
            assert!(d >= secs(lo) && d <= secs(hi), "retry {}: {d:?}", i + 1);
            seen_lo = seen_lo.min(d);
            seen_hi = seen_hi.max(d);
        }
        // The draws cover the range, not one point of it.
        let span = secs(hi) - secs(lo);
        assert!(seen_hi - seen_lo > span * 9 / 10, "retry {}", i + 1);
    }
}

#[test]
fn aws_jitters_stay_in_their_ranges() {
    let mut rng = Rng::from_seed(9);
    for retry in 1..40 {
        let d = doubled(secs(1), retry).min(secs(30));
        let full = exp(Jitter::Full).compute(retry, Duration::ZERO, None, &mut rng);
        assert!(full <= d);
        let equal = exp(Jitter::Equal).compute(retry, Duration::ZERO, None, &mut rng);
        assert!(equal >= d / 2 && equal <= d);
    }
    let backoff = exp(Jitter::Decorrelated);
    let mut previous = Duration::ZERO;
    for retry in 1..200 {
        let d = backoff.compute(retry, previous, None, &mut rng);
        assert!(d >= secs(1) && d <= secs(30));
        assert!(d <= previous.max(secs(1)) * 3);
        previous = d;
    }
}

#[test]
fn no_overflow_at_any_retry_number() {
    let extreme = Backoff::exponential(Duration::from_nanos(1), Duration::MAX).unwrap();
    let mut rng = Rng::from_seed(1);
    for jitter in [
        Jitter::None,
        Jitter::Bounded,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ] {
        for retry in [1, 2, 31, 32, 33, 63, 64, 65, 1000, u32::MAX - 1, u32::MAX] {
            for b in [exp(jitter), extreme.jitter(jitter).into()] {
                let _ = b.compute(retry, Duration::MAX, None, &mut rng);
            }
            let d = exp(jitter).compute(retry, Duration::ZERO, None, &mut rng);
            assert!(d <= secs(30), "{jitter:?} retry {retry}: {d:?}");
        }
    }
    assert_eq!(
        exp(Jitter::None).compute(64, Duration::ZERO, None, &mut rng),
        secs(30)
    );
    assert_eq!(
        exp(Jitter::None).compute(1000, Duration::ZERO, None, &mut rng),
        secs(30)
    );
    let linear = Backoff::linear_jitter(secs(1), Duration::MAX).unwrap();
    let _ = linear.compute(u32::MAX, Duration::ZERO, None, &mut rng);
}

/// Property: for any minimum, maximum, retry number and previous wait, every schedule
/// stays inside its documented bounds and nothing overflows.
#[test]
fn bounds_hold_for_any_input() {
    let mut rng = Rng::from_seed(0x5eed);
    let any_duration = |rng: &mut Rng| match rng.next_u64() % 4 {
        0 => Duration::from_nanos(rng.next_u64() % 1000 + 1),
        1 => Duration::from_millis(rng.next_u64() % 100_000 + 1),
        2 => Duration::from_secs(rng.next_u64() % (1 << 40) + 1),
        _ => Duration::new(rng.next_u64(), (rng.next_u64() % 1_000_000_000) as u32),
    };
    for _ in 0..20_000 {
        let (a, b) = (any_duration(&mut rng), any_duration(&mut rng));
        let (min, max) = (a.min(b), a.max(b));
        let retry = match rng.next_u64() % 3 {
            0 => (rng.next_u64() % 70) as u32,
            1 => rng.next_u64() as u32,
            _ => u32::MAX - (rng.next_u64() % 3) as u32,
        };
        let previous = any_duration(&mut rng);
        let exp = Backoff::exponential(min, max).unwrap();
        for jitter in [Jitter::None, Jitter::Bounded, Jitter::Decorrelated] {
            let d = Backoff::from(exp.jitter(jitter)).compute(retry, previous, None, &mut rng);
            assert!(
                d >= min && d <= max,
                "{jitter:?} {min:?} {max:?} {retry}: {d:?}"
            );
        }
        for jitter in [Jitter::Full, Jitter::Equal] {
            let d = Backoff::from(exp.jitter(jitter)).compute(retry, previous, None, &mut rng);
            assert!(d <= max, "{jitter:?} {min:?} {max:?} {retry}: {d:?}");
        }
        let go = Backoff::go_default(min, max).unwrap();
        let d = go.compute(retry, previous, None, &mut rng);
        assert!(d >= min.min(max) && d <= max);
        let linear = Backoff::linear_jitter(min, max).unwrap();
        let d = linear.compute(retry, previous, None, &mut rng);
        assert!(
            d >= min.saturating_mul(retry.max(1)),
            "linear {min:?} {retry}"
        );
    }
}

#[test]
fn linear_jitter_matches_go() {
    // Go: (min + rand.Float64() * (max - min)) * attemptNum, not capped by max.
    let backoff = Backoff::linear_jitter(secs(1), secs(3)).unwrap();
    let mut rng = Rng::from_seed(5);
    for retry in 1..10u32 {
        let d = backoff.compute(retry, Duration::ZERO, None, &mut rng);
        assert!(
            d >= secs(1) * retry && d < secs(3) * retry,
            "{retry}: {d:?}"
        );
    }
    // max == min: exactly min × n.
    let flat = Backoff::linear_jitter(secs(2), secs(2)).unwrap();
    assert_eq!(flat.compute(3, Duration::ZERO, None, &mut rng), secs(6));
}

#[test]
fn go_default_is_exact() {
    let backoff = Backoff::go_default(secs(1), secs(5)).unwrap();
    let delays: Vec<_> = backoff.delays().take(5).collect();
    assert_eq!(delays, [secs(1), secs(2), secs(4), secs(5), secs(5)]);
}

#[test]
fn invalid_schedules_are_rejected() {
    let err = Backoff::exponential(secs(5), secs(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid retry configuration: backoff minimum (5s) is greater than its maximum (1s)"
    );
    assert!(Backoff::exponential(Duration::ZERO, secs(1)).is_err());
    assert!(Backoff::linear_jitter(secs(2), secs(1)).is_err());
    assert!(Backoff::go_default(secs(2), secs(1)).is_err());
    assert!(Backoff::exponential(secs(1), secs(1)).is_ok());
}

#[test]
fn tiny_and_zero_minimums_double_exactly() {
    // 1 ns doubled 32 times is 4.29 s, under the 100 s cap: not the cap.
    let ns = Duration::from_nanos(1);
    let tiny = Backoff::go_default(ns, secs(100)).unwrap();
    assert_eq!(tiny.delays().nth(32), Some(Duration::from_nanos(1 << 32)));
    assert_eq!(tiny.delays().nth(200), Some(secs(100)));
    // Nothing doubled stays nothing, however many retries.
    let zero = Backoff::go_default(Duration::ZERO, secs(1)).unwrap();
    assert_eq!(zero.delays().nth(200), Some(Duration::ZERO));
}

#[test]
fn uniform_covers_both_ends_and_handles_huge_spans() {
    let mut rng = Rng::from_seed(11);
    assert_eq!(uniform(secs(3), secs(3), &mut rng), secs(3));
    assert_eq!(uniform(secs(3), secs(1), &mut rng), secs(3));
    for _ in 0..1000 {
        let d = uniform(Duration::ZERO, Duration::MAX, &mut rng);
        assert!(d <= Duration::MAX);
        let d = uniform(Duration::from_nanos(5), Duration::from_nanos(6), &mut rng);
        assert!(d == Duration::from_nanos(5) || d == Duration::from_nanos(6));
    }
}

#[test]
fn a_custom_backoff_sees_the_retry_the_previous_wait_and_the_response() {
    let backoff = Backoff::custom(|input| {
        let busy =
            input.response().map(|head| head.status) == Some(http::StatusCode::SERVICE_UNAVAILABLE);
        secs(u64::from(input.retry()))
            + input.previous()
            + if busy { secs(100) } else { Duration::ZERO }
    });
    let (head, ()) = http::Response::builder()
        .status(503)
        .body(())
        .unwrap()
        .into_parts();
    let mut rng = Rng::from_seed(1);
    assert_eq!(
        backoff.compute(3, secs(2), Some(&head), &mut rng),
        secs(105)
    );
    assert_eq!(backoff.compute(1, Duration::ZERO, None, &mut rng), secs(1));
    let input = BackoffInput::new(2, secs(7), Some(&head));
    assert_eq!((input.retry(), input.previous()), (2, secs(7)));
    assert_eq!(input.response().map(|h| h.status.as_u16()), Some(503));
}

#[test]
fn backoffs_say_what_they_are() {
    assert_eq!(
        format!("{:?}", exp(Jitter::None)),
        "Backoff { kind: \"exponential\", min: 1s, max: 30s, jitter: None }"
    );
    assert_eq!(
        format!("{:?}", Backoff::constant(secs(2))),
        "Backoff { kind: \"constant\", delay: 2s }"
    );
    assert_eq!(
        format!("{:?}", Backoff::linear_jitter(secs(1), secs(3)).unwrap()),
        "Backoff { kind: \"linear_jitter\", min: 1s, max: 3s }"
    );
    assert_eq!(
        format!("{:?}", Backoff::custom(|_| Duration::ZERO)),
        "Backoff { kind: \"custom\" }"
    );
    let (head, ()) = http::Response::builder()
        .status(429)
        .header("set-cookie", "session=secret")
        .body(())
        .unwrap()
        .into_parts();
    let shown = format!("{:?}", BackoffInput::new(1, secs(1), Some(&head)));
    assert!(
        shown.starts_with("BackoffInput { retry: 1, previous: 1s, response: Some("),
        "{shown}"
    );
    assert!(
        shown.contains("429") && !shown.contains("secret"),
        "{shown}"
    );
}

#[test]
fn uniform_draws_reach_both_ends_of_a_closed_range() {
    let mut rng = Rng::from_seed(7);
    let one = Duration::from_nanos(1);
    let draws: Vec<_> = (0..64)
        .map(|_| uniform(Duration::ZERO, one, &mut rng))
        .collect();
    assert!(draws.contains(&Duration::ZERO) && draws.contains(&one));
    assert!(draws.iter().all(|d| *d <= one));
    assert_eq!(uniform(secs(3), secs(2), &mut rng), secs(3));
}

#[test]
fn half_open_draws_stay_below_the_top() {
    let mut rng = Rng::from_seed(7);
    let ten = Duration::from_nanos(10);
    let draws: Vec<_> = (0..64)
        .map(|_| uniform_half_open(Duration::ZERO, ten, &mut rng))
        .collect();
    assert!(draws.iter().any(|d| *d > Duration::ZERO));
    assert!(draws.iter().all(|d| *d < ten));
    assert_eq!(uniform_half_open(secs(3), secs(3), &mut rng), secs(3));
}

#[test]
fn scaling_a_span_above_64_bits_uses_its_high_part() {
    let mut rng = Rng::from_seed(7);
    let span = 3u128 << 64;
    let draws: Vec<_> = (0..16).map(|_| scale(span, &mut rng)).collect();
    assert!(draws.iter().all(|n| *n < span));
    assert!(draws.iter().any(|n| *n >= 1u128 << 64));
}
