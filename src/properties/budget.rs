//! The budget against a model: over any window, it never grants more than the reserve plus
//! `ratio` × the window's deposits, and it grants exactly that, but for one window after the
//! clock jumps almost a whole tag period at once, when it may grant less.

use std::time::Duration;

use proptest::prelude::*;

use crate::budget::Budget;

/// One retry, in the budget's units.
const RETRY: i64 = 1_000_000;
/// Buckets per window.
const BUCKETS: u64 = 10;
/// A jump of the window this long or longer makes the budget pay less, on purpose.
const LONG_JUMP: u64 = 65_536 - 2 * BUCKETS;

#[derive(Clone, Copy, Debug)]
enum Op {
    Deposit,
    Withdraw,
}

/// How far the clock moves before an operation, in buckets: mostly not at all or a little,
/// sometimes across the window, rarely very far.
fn step() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => Just(0u64),
        6 => 1u64..4,
        2 => 4u64..25,
        1 => prop::sample::select(vec![LONG_JUMP - 5, LONG_JUMP, 65_536 + 3, 5 * 65_536, 32_760, 32_768]),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![Just(Op::Deposit), Just(Op::Withdraw)]
}

proptest! {
    #[test]
    fn the_budget_never_grants_more_than_its_window_allows(
        ratio in prop::sample::select(vec![0.0, 0.1, 0.2, 0.5, 1.0, 3.7]),
        min_per_sec in 0u32..3,
        ops in prop::collection::vec((step(), op()), 1..200),
    ) {
        // A bucket is 1 s.
        let window = Duration::from_secs(BUCKETS);
        let budget = Budget::new(window, min_per_sec, ratio).unwrap();
        let start = budget.started();
        let reserve = i64::from(min_per_sec) * BUCKETS as i64 * RETRY;
        let deposit = (ratio * RETRY as f64).round() as i64;
        // The model: what each epoch holds.
        let mut events: Vec<(u64, i64)> = Vec::new();
        let mut epoch = 0u64;
        // After a long jump, old withdrawals may stay for one more window.
        let mut exact_from = 0u64;
        for (step, op) in ops {
            epoch += step;
            if step >= LONG_JUMP {
                exact_from = epoch + BUCKETS;
            }
            let exact = epoch >= exact_from;
            let at = start + Duration::from_secs(epoch);
            let live: i64 = events
                .iter()
                .filter(|(e, _)| e + BUCKETS > epoch)
                .map(|(_, amount)| amount)
                .sum();
            match op {
                Op::Deposit => {
                    budget.deposit_at(at);
                    events.push((epoch, deposit));
                }
                Op::Withdraw => {
                    let allowed = reserve + live >= RETRY;
                    let granted = budget.withdraw_at(at);
                    prop_assert!(!granted || allowed, "granted beyond the window at epoch {}", epoch);
                    if exact {
                        prop_assert_eq!(granted, allowed, "epoch {}", epoch);
                    }
                    if granted {
                        events.push((epoch, -RETRY));
                    }
                }
            }
        }
    }
}
