use super::*;

const SECOND: Duration = Duration::from_secs(1);

impl Budget {
    fn deposit(&self) {
        self.deposit_at(Instant::now());
    }

    fn withdraw(&self) -> bool {
        self.withdraw_at(Instant::now())
    }
}

fn withdraw_all(budget: &Budget) -> u32 {
    withdraw_all_at(budget, Instant::now())
}

#[test]
fn a_budget_idle_for_a_whole_tag_period_does_not_pay_old_deposits_again() {
    // Buckets of 1 ns: tags repeat every `Slot::ALIAS` buckets.
    for idle in [
        10,
        Slot::ALIAS - 5,
        Slot::ALIAS,
        Slot::ALIAS + 3,
        7 * Slot::ALIAS,
    ] {
        let budget = Budget::new(Duration::from_nanos(10), 0, 1.0).unwrap();
        let at = |n: u64| budget.inner.start + Duration::from_nanos(n);
        budget.deposit_at(at(0));
        budget.deposit_at(at(0));
        assert!(!budget.withdraw_at(at(idle)), "idle {idle}");
        // Nothing old is left to pay later either, and new deposits pay again.
        assert_eq!(
            budget.inner.balance.load(Ordering::Acquire),
            0,
            "idle {idle}"
        );
        budget.deposit_at(at(idle + 1));
        assert!(budget.withdraw_at(at(idle + 2)), "idle {idle}");
    }
    // Within the window, the same deposits pay.
    let budget = Budget::new(Duration::from_nanos(10), 0, 1.0).unwrap();
    budget.deposit_at(budget.inner.start);
    assert!(budget.withdraw_at(budget.inner.start + Duration::from_nanos(9)));
}

#[test]
fn a_budget_says_what_it_was_given() {
    let budget = Budget::new(Duration::from_secs(7), 3, 0.25).unwrap();
    assert_eq!(
        (budget.window(), budget.min_per_sec(), budget.ratio()),
        (Duration::from_secs(7), 3, 0.25)
    );
}

#[test]
fn deposits_a_tag_period_and_a_few_buckets_old_do_not_pay() {
    // Found by the budget property: after a jump of 2¹⁶ + 3 buckets, the first bucket's
    // tag looked six buckets old, so its deposits counted again.
    let budget = Budget::new(Duration::from_nanos(10), 0, 0.1).unwrap();
    let at = |n: u64| budget.inner.start + Duration::from_nanos(n);
    for _ in 0..8 {
        budget.deposit_at(at(0));
    }
    for _ in 0..4 {
        budget.deposit_at(at(65_539));
    }
    assert!(
        !budget.withdraw_at(at(65_539)),
        "0.4 of a retry was deposited"
    );
    budget.deposit_at(at(65_539));
    budget.deposit_at(at(65_540));
    // Withdrawals are exact again from one window after the jump on.
    for _ in 0..10 {
        budget.deposit_at(at(65_550));
    }
    assert!(budget.withdraw_at(at(65_550)));
    assert!(!budget.withdraw_at(at(65_550)));
}

#[test]
fn deposits_that_look_live_after_a_jump_just_short_of_a_tag_period_do_not_pay() {
    // The window moves from bucket 9 to bucket 2¹⁶ + 3: a jump of 2¹⁶ − 6 buckets, less
    // than a tag period, after which bucket 0's tag looks three buckets old.
    let budget = Budget::new(Duration::from_nanos(10), 0, 0.5).unwrap();
    let at = |n: u64| budget.inner.start + Duration::from_nanos(n);
    budget.deposit_at(at(0));
    assert!(!budget.withdraw_at(at(9)), "half a retry was deposited");
    budget.deposit_at(at(Slot::ALIAS + 3));
    assert!(
        !budget.withdraw_at(at(Slot::ALIAS + 3)),
        "only the last half retry is in the window"
    );
    budget.deposit_at(at(Slot::ALIAS + 3));
    assert_eq!(
        withdraw_all_at(&budget, at(Slot::ALIAS + 3)),
        1,
        "two halves pay one"
    );
}

#[test]
fn a_budget_shows_its_settings_and_what_it_can_pay() {
    let budget = Budget::new(Duration::from_secs(10), 3, 0.25).unwrap();
    assert_eq!(
        format!("{budget:?}"),
        "Budget { window: 10s, min_per_sec: 3, ratio: 0.25, reserve: 30, available: 30, \
         throttle: None }"
    );
    let shown = format!("{:?}", budget.throttle(10, 0.2).unwrap());
    assert!(
        shown.ends_with("throttle: Some(Throttle { milli_tokens: 10000, max_milli_tokens: 10000, milli_token_ratio: 200 }) }"),
        "{shown}"
    );
}

#[test]
fn the_default_budget_stops_retries_while_most_attempts_fail_though_its_reserve_could_pay() {
    let budget = Budget::default();
    let now = Instant::now();
    // A hedge while all is well: the throttle allows it, and is not drained.
    assert!(budget.hedge_at(now));
    // 10 tokens: four failures are retried, the fifth leaves 5, no more than half.
    for _ in 0..4 {
        assert!(budget.retry_at(now));
    }
    assert!(!budget.retry_at(now));
    assert_eq!(
        budget.available(),
        95,
        "the reserve still holds 100 − 4 − the hedge"
    );
    // A hedge is not a failure, and is not made either; a retry of a request the server
    // never processed is neither counted nor refused by the throttle.
    assert!(!budget.hedge_at(now));
    assert!(budget.spend_at(now, Spend::Unprocessed));
    // A request gives back a fifth of a token: after six, 6.2 tokens, and a failure leaves
    // 5.2, more than half: one more retry.
    for _ in 0..6 {
        budget.deposit_at(now);
    }
    assert!(budget.retry_at(now));
    assert!(!budget.retry_at(now));
}

#[test]
fn a_throttled_budget_keeps_its_throttle_when_made_anew() {
    let budget = Budget::new(Duration::from_secs(10), 10, 0.2)
        .unwrap()
        .throttle(2, 0.5)
        .unwrap();
    let fresh = budget.fresh();
    let now = Instant::now();
    // 2 tokens: the first failure leaves 1, no more than half.
    assert!(!fresh.retry_at(now));
    // An unthrottled budget pays from its reserve whatever fails.
    let plain = Budget::new(Duration::from_secs(10), 10, 0.2).unwrap();
    assert_eq!((0..10).filter(|_| plain.retry_at(now)).count(), 10);
}

#[test]
fn a_throttle_out_of_bounds_is_refused_when_the_budget_is_made() {
    let budget = || Budget::new(Duration::from_secs(10), 10, 0.2).unwrap();
    for (max, ratio) in [(0, 0.1), (1001, 0.1), (10, 0.0), (10, f64::NAN)] {
        let error = budget().throttle(max, ratio).unwrap_err().to_string();
        let wanted = "invalid retry configuration: budget throttle: retryThrottling.";
        assert!(error.starts_with(wanted), "{error}");
    }
}

#[test]
fn a_full_bucket_stops_counting_deposits_instead_of_overflowing() {
    let budget = Budget::new(Duration::from_secs(10), 0, 10.0).unwrap();
    let now = budget.inner.start;
    let full = (1 << 47) - 5 * RETRY;
    budget.inner.buckets[0].store(Slot::pack(0, full).unwrap(), Ordering::Release);
    budget.inner.balance.store(full, Ordering::Release);
    // A deposit of ten retries does not fit: it is not counted.
    budget.deposit_at(now);
    assert_eq!(budget.inner.balance.load(Ordering::Acquire), full);
    assert!(budget.withdraw_at(now));
}

#[tokio::test(start_paused = true)]
async fn the_reserve_alone_pays_min_per_sec_times_window() {
    let budget = Budget::new(10 * SECOND, 10, 0.2).unwrap();
    assert_eq!(budget.available(), 100);
    assert_eq!(withdraw_all(&budget), 100);
    assert!(!budget.withdraw());
}

#[tokio::test(start_paused = true)]
async fn five_requests_pay_for_exactly_one_retry_at_twenty_percent() {
    let budget = Budget::new(10 * SECOND, 0, 0.2).unwrap();
    for _ in 0..4 {
        budget.deposit();
    }
    assert!(!budget.withdraw(), "4 × 0.2 is less than one retry");
    budget.deposit();
    assert!(budget.withdraw(), "5 × 0.2 is exactly one retry");
    assert!(!budget.withdraw());
    for _ in 0..1000 {
        budget.deposit();
    }
    assert_eq!(withdraw_all(&budget), 200);
}

#[tokio::test(start_paused = true)]
async fn awkward_ratios_are_exact_to_a_millionth() {
    for (ratio, deposits, retries) in [(0.1, 30, 3), (0.3, 10, 3), (0.7, 10, 7), (1.0, 7, 7)] {
        let budget = Budget::new(10 * SECOND, 0, ratio).unwrap();
        for _ in 0..deposits {
            budget.deposit();
        }
        assert_eq!(withdraw_all(&budget), retries, "ratio {ratio}");
    }
}

#[tokio::test(start_paused = true)]
async fn deposits_and_withdrawals_expire_with_the_window() {
    let budget = Budget::new(10 * SECOND, 1, 0.5).unwrap();
    // Reserve of 10, plus 10 × 0.5.
    for _ in 0..10 {
        budget.deposit();
    }
    assert_eq!(withdraw_all(&budget), 15);
    tokio::time::sleep(5 * SECOND).await;
    assert_eq!(budget.available(), 0, "still inside the window");
    tokio::time::sleep(5 * SECOND).await;
    // The deposits and the withdrawals have both left the window: the reserve is back.
    assert_eq!(budget.available(), 10);
}

#[tokio::test(start_paused = true)]
async fn a_long_idle_gap_expires_everything() {
    let budget = Budget::new(10 * SECOND, 0, 1.0).unwrap();
    budget.deposit();
    budget.deposit();
    assert!(budget.withdraw());
    tokio::time::sleep(3600 * SECOND).await;
    assert_eq!(budget.available(), 0);
    budget.deposit();
    assert_eq!(budget.available(), 1);
}

#[test]
fn invalid_budgets_are_rejected() {
    for ratio in [-0.1, 10.1, f64::NAN, f64::INFINITY] {
        assert!(Budget::new(10 * SECOND, 10, ratio).is_err(), "{ratio}");
    }
    assert!(Budget::new(Duration::ZERO, 10, 0.2).is_err());
    assert!(Budget::new(Duration::from_secs(400 * 24 * 3600), 10, 0.2).is_err());
    assert_eq!(
        Budget::new(Duration::ZERO, 10, 0.2)
            .unwrap_err()
            .to_string(),
        "invalid retry configuration: budget window must be from 10 ns to a year, not 0ns"
    );
    assert!(Budget::new(10 * SECOND, 10, 0.0).is_ok());
    assert!(Budget::new(10 * SECOND, 10, 10.0).is_ok());
    let year = Duration::from_secs(365 * 24 * 3600);
    assert!(Budget::new(year, 100_000, 10.0).is_ok());
    assert_eq!(
        Budget::new(year, u32::MAX, 10.0).unwrap_err().to_string(),
        "invalid retry configuration: budget reserve (min_per_sec × window) is too large"
    );
}

#[test]
fn concurrent_withdrawals_never_overdraw() {
    let budget = Budget::new(3600 * SECOND, 0, 0.2).unwrap();
    for _ in 0..10_000 {
        budget.deposit();
    }
    let taken = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..1000 {
                    if budget.withdraw() {
                        taken.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(taken.into_inner(), 2000);
}
