//! Backoff arithmetic: every schedule stays in its bounds for every retry number and every
//! previous wait, without overflow, and the schedules without jitter only grow to their cap.

use std::time::Duration;

use proptest::prelude::*;

use crate::backoff::{Backoff, Jitter};
use crate::rng::Rng;

/// A duration from nothing to `Duration::MAX`, most of them ordinary.
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..600_000).prop_map(Duration::from_millis),
        (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        Just(Duration::ZERO),
        Just(Duration::MAX),
    ]
}

fn retry() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..70, any::<u32>(), Just(u32::MAX)]
}

fn jitter() -> impl Strategy<Value = Jitter> {
    prop::sample::select(vec![
        Jitter::None,
        Jitter::Bounded,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ])
}

/// `n × d`, saturating.
fn times(d: Duration, n: u32) -> Duration {
    d.saturating_mul(n)
}

proptest! {
    #[test]
    fn exponential_waits_stay_within_their_bounds(
        a in duration(),
        b in duration(),
        jitter in jitter(),
        retry in retry(),
        previous in duration(),
        seed in any::<u64>(),
    ) {
        // A zero minimum is refused when built.
        let (min, max) = (a.min(b).max(Duration::from_nanos(1)), a.max(b).max(Duration::from_nanos(1)));
        let backoff: Backoff = Backoff::exponential(min, max).unwrap().jitter(jitter).into();
        let wait = backoff.compute(retry, previous, None, &mut Rng::from_seed(seed));
        prop_assert!(wait <= max, "{wait:?} > max {max:?}");
        match jitter {
            // Full and equal jitter may go below the minimum, by design.
            Jitter::Full | Jitter::Equal => {}
            _ => prop_assert!(wait >= min, "{wait:?} < min {min:?}"),
        }
        if jitter == Jitter::None {
            // Exactly min × 2ⁿ⁻¹, capped.
            let shift = retry.max(1) - 1;
            let doubled = if shift >= 127 {
                u128::MAX
            } else {
                min.as_nanos().saturating_mul(1u128 << shift)
            };
            prop_assert_eq!(wait.as_nanos(), doubled.min(max.as_nanos()));
        }
    }

    #[test]
    fn schedules_without_jitter_grow_to_their_cap_and_stay(
        a in duration(),
        b in duration(),
        go in any::<bool>(),
    ) {
        let (min, max) = (a.min(b), a.max(b));
        let min = if go { min } else { min.max(Duration::from_nanos(1)) };
        let max = max.max(min);
        let backoff = if go {
            Backoff::go_default(min, max).unwrap()
        } else {
            Backoff::exponential(min, max).unwrap().jitter(Jitter::None).into()
        };
        let waits: Vec<Duration> = backoff.delays().take(130).collect();
        prop_assert!(waits.windows(2).all(|w| w[0] <= w[1]), "not monotone: {waits:?}");
        prop_assert_eq!(waits[0], min);
        // From nothing nothing grows (go-retryablehttp's schedule allows a zero minimum).
        let cap = if min.is_zero() { Duration::ZERO } else { max };
        prop_assert_eq!(*waits.last().unwrap(), cap);
    }

    #[test]
    fn linear_and_constant_waits_never_overflow(
        a in duration(),
        b in duration(),
        retry in retry(),
        seed in any::<u64>(),
    ) {
        let (min, max) = (a.min(b), a.max(b));
        let linear = Backoff::linear_jitter(min, max).unwrap();
        let wait = linear.compute(retry, Duration::ZERO, None, &mut Rng::from_seed(seed));
        // n × u with u in [min, max) (or min when they are equal), saturating.
        let n = retry.max(1);
        prop_assert!(wait >= times(min, n), "{wait:?} < {n} × {min:?}");
        prop_assert!(wait <= times(max, n), "{wait:?} > {n} × {max:?}");
        let constant = Backoff::constant(a);
        prop_assert_eq!(constant.compute(retry, b, None, &mut Rng::from_seed(seed)), a);
    }
}
