//! A retry budget: retries may add only so much to the load a client sends.
//!
//! Every first attempt deposits `ratio` of a retry into the budget; every retry withdraws one
//! whole retry, and is refused when the balance cannot pay for it. Deposits and withdrawals
//! count for a sliding `window`; on top of them a reserve of `min_per_sec × window` retries
//! lets a client that sends few requests still retry them. First attempts are never refused.
//!
//! The default — retries may add 20 % to the requests of the last 10 s, plus 10 retries per
//! second — is Finagle's, the design tower's retry budget and reqwest's follow. Against an
//! upstream that fails every request, a client then sends at most about 1.2 times its own
//! request rate, instead of 5 times with 4 retries.
//!
//! ```
//! use std::time::Duration;
//! use retryable_http::{RetryLayer, budget::Budget};
//!
//! // 10 % over the last minute, plus 1 retry per second.
//! let budget = Budget::new(Duration::from_secs(60), 1, 0.1)?;
//! // Two layers that share it: together they stay within the budget.
//! let orders = RetryLayer::new().budget(budget.clone());
//! let payments = RetryLayer::new().budget(budget);
//! # Ok::<(), retryable_http::ConfigError>(())
//! ```
//!
//! # Arithmetic
//!
//! Amounts are integers in millionths of a retry, so a ratio is exact to a millionth: with
//! ratio 0.2, five requests pay for exactly one retry, not for 0.999… of one (tower #857).
//! Withdrawals are a compare-and-swap on one atomic balance, so concurrent retries never
//! overdraw it; the budget takes no lock.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::ConfigError;

/// One retry, in the budget's units.
const RETRY: i64 = 1_000_000;

/// The window is kept in this many buckets: deposits and withdrawals expire a bucket at a
/// time, a tenth of the window after they would in a continuous window at the latest.
const BUCKETS: u64 = 10;

/// The default window: 10 s.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);
/// The default reserve: 10 retries per second.
pub const DEFAULT_MIN_PER_SEC: u32 = 10;
/// The default ratio: retries may add 20 % to the requests.
pub const DEFAULT_RATIO: f64 = 0.2;

/// A retry budget, shared by everything that holds a clone of it.
///
/// # Clone
///
/// Clones share the same balance: pass clones to several layers to give them one budget.
#[derive(Clone)]
pub struct Budget {
    inner: Arc<Inner>,
}

struct Inner {
    /// What can be withdrawn now: the reserve, plus deposits, minus withdrawals, of the live
    /// buckets. The one source of truth for withdrawals.
    balance: AtomicI64,
    /// The net amount each bucket holds, so it can be taken off the balance when it expires.
    buckets: [AtomicI64; BUCKETS as usize],
    /// The bucket number (time since `start` / `bucket`) the balance is up to date with.
    epoch: AtomicU64,
    start: Instant,
    /// The length of a bucket, in nanoseconds (at least 1: the window is at least 10 ns).
    bucket_nanos: u64,
    deposit: i64,
    reserve: i64,
    window: Duration,
    min_per_sec: u32,
    ratio: f64,
}

impl Budget {
    /// A budget where retries may add `ratio` (from 0 to 10) to the first attempts of the
    /// last `window`, plus `min_per_sec` retries per second.
    ///
    /// # Errors
    ///
    /// When `ratio` is not a number from 0 to 10, or `window` is zero, shorter than 10 ns or
    /// longer than a year.
    pub fn new(window: Duration, min_per_sec: u32, ratio: f64) -> Result<Self, ConfigError> {
        if !(0.0..=10.0).contains(&ratio) {
            return Err(ConfigError::new(format!(
                "budget ratio must be from 0 to 10, not {ratio}"
            )));
        }
        const YEAR: Duration = Duration::from_secs(365 * 24 * 60 * 60);
        if window < Duration::from_nanos(BUCKETS) || window > YEAR {
            return Err(ConfigError::new(format!(
                "budget window must be from 10 ns to a year, not {window:?}"
            )));
        }
        // A ratio of at most 10 is at most 10⁷ units. The reserve is kept below 2⁶² units
        // (4.6 × 10¹² retries) so that deposits on top of it cannot overflow the balance.
        let deposit = (ratio * RETRY as f64).round() as i64;
        let reserve_units = u128::from(min_per_sec) * window.as_nanos() * RETRY as u128
            / Duration::from_secs(1).as_nanos();
        let reserve = i64::try_from(reserve_units)
            .ok()
            .filter(|&r| r < 1 << 62)
            .ok_or_else(|| {
                ConfigError::new("budget reserve (min_per_sec × window) is too large")
            })?;
        Ok(Budget {
            inner: Arc::new(Inner {
                balance: AtomicI64::new(reserve),
                buckets: Default::default(),
                epoch: AtomicU64::new(0),
                start: Instant::now(),
                bucket_nanos: (window / BUCKETS as u32).as_nanos() as u64,
                deposit,
                reserve,
                window,
                min_per_sec,
                ratio,
            }),
        })
    }

    /// Records a first attempt at `now`. It is never refused.
    pub(crate) fn deposit_at(&self, now: Instant) {
        self.inner.add(self.inner.deposit, now);
    }

    /// Takes one retry from the budget at `now`. Returns `false`, taking nothing, when the
    /// balance cannot pay for it.
    pub(crate) fn withdraw_at(&self, now: Instant) -> bool {
        let inner = &*self.inner;
        let epoch = inner.epoch_of(now);
        inner.advance(epoch);
        let taken = inner
            .balance
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |balance| {
                (balance >= RETRY).then_some(balance - RETRY)
            })
            .is_ok();
        if taken {
            // The balance paid; the bucket only remembers when to give it back.
            inner.bucket(epoch).fetch_sub(RETRY, Ordering::AcqRel);
        }
        taken
    }

    /// How many retries the budget can pay for now.
    pub fn available(&self) -> u64 {
        self.inner.advance(self.inner.epoch_of(Instant::now()));
        (self.inner.balance.load(Ordering::Acquire).max(0) / RETRY) as u64
    }

    /// The window deposits and withdrawals count for.
    pub fn window(&self) -> Duration {
        self.inner.window
    }

    /// The retries per second always allowed.
    pub fn min_per_sec(&self) -> u32 {
        self.inner.min_per_sec
    }

    /// The share of first attempts retries may add.
    pub fn ratio(&self) -> f64 {
        self.inner.ratio
    }
}

impl Default for Budget {
    /// [`DEFAULT_WINDOW`], [`DEFAULT_MIN_PER_SEC`] and [`DEFAULT_RATIO`].
    fn default() -> Self {
        Budget::new(DEFAULT_WINDOW, DEFAULT_MIN_PER_SEC, DEFAULT_RATIO)
            .expect("the default budget is valid")
    }
}

impl Inner {
    fn add(&self, amount: i64, now: Instant) {
        let epoch = self.epoch_of(now);
        self.advance(epoch);
        self.balance.fetch_add(amount, Ordering::AcqRel);
        self.bucket(epoch).fetch_add(amount, Ordering::AcqRel);
    }

    fn epoch_of(&self, now: Instant) -> u64 {
        // NOTE: u64 nanoseconds last 584 years, beyond any process's life.
        let elapsed = now.saturating_duration_since(self.start).as_nanos() as u64;
        elapsed / self.bucket_nanos
    }

    fn bucket(&self, epoch: u64) -> &AtomicI64 {
        &self.buckets[(epoch % BUCKETS) as usize]
    }

    /// Expires the buckets that left the window before bucket `current`.
    fn advance(&self, current: u64) {
        let mut seen = self.epoch.load(Ordering::Acquire);
        while current > seen {
            match self
                .epoch
                .compare_exchange(seen, current, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    // This thread moved the window from `seen` to `current`: the buckets of
                    // epochs seen+1 ..= current are reused, and what they held has expired.
                    let expired = (current - seen).min(BUCKETS);
                    for epoch in current + 1 - expired..=current {
                        let held =
                            self.buckets[(epoch % BUCKETS) as usize].swap(0, Ordering::AcqRel);
                        self.balance.fetch_sub(held, Ordering::AcqRel);
                    }
                    return;
                }
                Err(actual) => seen = actual,
            }
        }
    }
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("window", &self.inner.window)
            .field("min_per_sec", &self.inner.min_per_sec)
            .field("ratio", &self.inner.ratio)
            .field("reserve", &(self.inner.reserve / RETRY))
            .field("available", &self.available())
            .finish()
    }
}

#[cfg(test)]
mod tests {
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
        let mut n = 0;
        while budget.withdraw() {
            n += 1;
        }
        n
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
}
