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
//!
//! Each of the window's ten buckets is one atomic word holding the bucket's epoch (16 bits
//! of it) and its net amount (48 bits, 1.4 × 10⁸ retries), so that a deposit or withdrawal
//! and the expiry of the bucket it lands in can never cross: an amount is counted once and
//! expires once, whatever the interleaving (model-checked with loom): a thread that records
//! into a bucket and a thread that moves the window past it are each fenced so that at
//! least one of them sees the other, and the amount expires. A bucket that would overflow
//! stops counting deposits, which makes the budget pay less, never more. Only a thread
//! stalled for more than a window between reading the clock and recording is out of the
//! window's account: what it records is not counted.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::ConfigError;
use crate::sync::{Arc, AtomicI64, AtomicU64, Ordering, fence};

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
    /// The net amount each bucket holds, with the bucket number it holds it for, so that it
    /// can be taken off the balance when it expires: see [`Slot`].
    buckets: [AtomicU64; BUCKETS as usize],
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
                buckets: std::array::from_fn(|_| AtomicU64::new(0)),
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
        let published = inner.advance(epoch);
        let taken = inner
            .balance
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |balance| {
                (balance >= RETRY).then_some(balance - RETRY)
            })
            .is_ok();
        if taken && !inner.record(epoch, -RETRY, published) {
            // The bucket cannot hold it: give it back, and refuse.
            inner.balance.fetch_add(RETRY, Ordering::AcqRel);
            return false;
        }
        taken
    }

    /// When the budget's first bucket began.
    #[cfg(all(test, not(retryable_http_loom)))]
    pub(crate) fn started(&self) -> Instant {
        self.inner.start
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
        let published = self.advance(epoch);
        // NOTE: the bucket first, then the balance: a deposit the bucket cannot hold is not
        // paid out, and one that expires in between is taken off before it was added, which
        // only delays a withdrawal.
        if self.record(epoch, amount, published) {
            self.balance.fetch_add(amount, Ordering::AcqRel);
        }
    }

    fn epoch_of(&self, now: Instant) -> u64 {
        // NOTE: u64 nanoseconds last 584 years, beyond any process's life.
        let elapsed = now.saturating_duration_since(self.start).as_nanos() as u64;
        elapsed / self.bucket_nanos
    }

    /// Adds `amount` to bucket `epoch`, `published` being the epoch last seen published.
    /// Returns `false`, recording nothing, when the bucket cannot hold it: `epoch` has left
    /// the window, or the sum would not fit.
    ///
    /// A bucket that still holds an older epoch is taken over, and what it held expires.
    fn record(&self, epoch: u64, amount: i64, published: u64) -> bool {
        if published >= epoch + BUCKETS {
            // A caller that took a whole window to get here: its epoch is over.
            return false;
        }
        let slot = &self.buckets[(epoch % BUCKETS) as usize];
        let tag = Slot::tag_of(epoch);
        let mut current = slot.load(Ordering::Acquire);
        loop {
            let held = Slot::unpack(current);
            let (next, expired) = match Slot::age(tag, held.tag) {
                // The same epoch: add to it.
                Age::Same => match Slot::pack(tag, held.amount.saturating_add(amount)) {
                    Some(next) => (next, 0),
                    None => return false,
                },
                // An older epoch, or an empty bucket: this epoch takes it over, and what it
                // held expires.
                Age::Older => (
                    Slot::pack(tag, amount).expect("one amount fits"),
                    held.amount,
                ),
                Age::Newer if held.amount == 0 => {
                    (Slot::pack(tag, amount).expect("one amount fits"), 0)
                }
                // A newer epoch holds the bucket: `epoch` left the window meanwhile.
                Age::Newer => return false,
            };
            match slot.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    if expired != 0 {
                        self.balance.fetch_sub(expired, Ordering::AcqRel);
                    }
                    break;
                }
                Err(actual) => current = actual,
            }
        }
        // The window moved past `epoch` while it was recorded: what was recorded expires.
        // NOTE: this thread writes the bucket, then reads the epoch; the window's mover
        // writes the epoch, then reads the buckets. Acquire and release let both read what
        // was there before, and the amount would then outlive its epoch. With a sequentially
        // consistent fence between the write and the read on both sides, at least one of
        // them sees the other's write (loom found the interleaving).
        fence(Ordering::SeqCst);
        if self.epoch.load(Ordering::Acquire) >= epoch + BUCKETS {
            self.expire(epoch % BUCKETS, false);
        }
        true
    }

    /// Expires what bucket `index` holds if its epoch has left the window.
    ///
    /// The epoch is read from the bucket's tag against the latest published epoch, which no
    /// recorded epoch can be above. `jumped` says the window moved so far at once that a
    /// tag may not tell an epoch from one [`Slot::ALIAS`] buckets older: then a positive
    /// amount that looks live expires and a negative one stays, which can only make the
    /// budget pay less, and only until the next bucket.
    fn expire(&self, index: u64, jumped: bool) {
        let slot = &self.buckets[index as usize];
        let mut held = slot.load(Ordering::Acquire);
        loop {
            let Slot { tag, amount } = Slot::unpack(held);
            if amount == 0 {
                return;
            }
            let now = Slot::tag_of(self.epoch.load(Ordering::Acquire));
            let live = match Slot::age(now, tag) {
                Age::Same => true,
                Age::Older => u64::from(now.wrapping_sub(tag)) < BUCKETS,
                // Nothing recorded is newer than the published epoch: this was recorded so
                // long ago that its tag wrapped.
                Age::Newer => false,
            };
            if live && !(jumped && amount > 0) {
                return;
            }
            let emptied = Slot::pack(tag, 0).expect("zero fits");
            match slot.compare_exchange_weak(held, emptied, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    self.balance.fetch_sub(amount, Ordering::AcqRel);
                    return;
                }
                Err(actual) => held = actual,
            }
        }
    }

    /// Expires the buckets that left the window before bucket `current`. Returns the
    /// published epoch, `current` or later.
    fn advance(&self, current: u64) -> u64 {
        let mut seen = self.epoch.load(Ordering::Acquire);
        while current > seen {
            match self
                .epoch
                .compare_exchange(seen, current, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    // Pairs with the fence in `record`.
                    fence(Ordering::SeqCst);
                    // This thread moved the window from `seen` to `current`: every bucket
                    // whose epoch is now out of it expires. A bucket written meanwhile is
                    // either newer (and kept) or expired by the compare-and-swap that took
                    // it over.
                    let jumped = current - seen >= Slot::ALIAS - 2 * BUCKETS;
                    for index in 0..BUCKETS {
                        self.expire(index, jumped);
                    }
                    return current;
                }
                Err(actual) => seen = actual,
            }
        }
        seen
    }
}

/// One bucket, packed in a `u64` so that its epoch and its amount change together: the low
/// 16 bits of the epoch it holds, and a signed 48-bit amount (±1.4 × 10⁸ retries).
///
/// A bucket is only ever changed by a compare-and-swap of the whole word: a deposit or a
/// withdrawal adds to its epoch's amount, the first one of a later epoch takes it over and
/// expires what it held, and the thread that moves the window empties those that left it.
/// So no amount is counted twice or lost, whatever the interleaving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    tag: u16,
    amount: i64,
}

/// How a bucket's epoch compares with another's, from their tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Age {
    Same,
    Older,
    Newer,
}

impl Slot {
    const AMOUNT_BITS: u32 = 48;
    /// Epochs whose tags are equal are a multiple of this apart.
    const ALIAS: u64 = 1 << 16;

    fn tag_of(epoch: u64) -> u16 {
        epoch as u16
    }

    /// The bucket word, or `None` when `amount` does not fit in 48 bits.
    fn pack(tag: u16, amount: i64) -> Option<u64> {
        let limit = 1i64 << (Self::AMOUNT_BITS - 1);
        if !(-limit..limit).contains(&amount) {
            return None;
        }
        let low = (amount as u64) & ((1u64 << Self::AMOUNT_BITS) - 1);
        Some(u64::from(tag) << Self::AMOUNT_BITS | low)
    }

    fn unpack(word: u64) -> Slot {
        let shift = 64 - Self::AMOUNT_BITS;
        Slot {
            tag: (word >> Self::AMOUNT_BITS) as u16,
            // Sign-extends the low 48 bits.
            amount: ((word << shift) as i64) >> shift,
        }
    }

    /// How the bucket holding `held` compares with epoch tag `tag`. Tags wrap every 65 536
    /// buckets, so this is exact for epochs less than 32 768 buckets apart; the window moves
    /// so that live epochs never are further apart than that, and `advance` deals with a
    /// window that jumped further.
    fn age(tag: u16, held: u16) -> Age {
        match tag.wrapping_sub(held) {
            0 => Age::Same,
            d if d < 1 << 15 => Age::Older,
            _ => Age::Newer,
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

/// Withdraws from `budget` at `now` until it refuses; returns how many it paid.
#[cfg(test)]
fn withdraw_all_at(budget: &Budget, now: Instant) -> u32 {
    let mut paid = 0;
    while budget.withdraw_at(now) {
        paid += 1;
    }
    paid
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
        withdraw_all_at(budget, Instant::now())
    }

    #[test]
    fn a_bucket_word_holds_its_tag_and_a_signed_48_bit_amount() {
        let limit = 1i64 << 47;
        for amount in [0, 1, -1, RETRY, -RETRY, limit - 1, -limit] {
            for tag in [0, 1, 0x7fff, 0xffff] {
                let word = Slot::pack(tag, amount).unwrap();
                assert_eq!(Slot::unpack(word), Slot { tag, amount });
            }
        }
        assert_eq!(Slot::pack(0, limit), None);
        assert_eq!(Slot::pack(0, -limit - 1), None);
        assert_eq!(Slot::age(5, 5), Age::Same);
        assert_eq!(Slot::age(5, 4), Age::Older);
        assert_eq!(Slot::age(2, 0xfffe), Age::Older);
        assert_eq!(Slot::age(4, 5), Age::Newer);
        // Exact for epochs less than 2¹⁵ buckets apart: from there on, newer.
        assert_eq!(Slot::age((1 << 15) - 1, 0), Age::Older);
        assert_eq!(Slot::age(1 << 15, 0), Age::Newer);
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
            "Budget { window: 10s, min_per_sec: 3, ratio: 0.25, reserve: 30, available: 30 }"
        );
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
}

/// Model checks of the balance and the buckets' expiry under concurrent deposits and
/// withdrawals: `RUSTFLAGS="--cfg retryable_http_loom" cargo test --release --lib loom`.
#[cfg(all(test, retryable_http_loom))]
mod loom_models {
    use super::*;

    /// A budget of one retry per deposit and no reserve, with buckets of 1 s, and the
    /// instant `n` buckets after its start.
    fn budget() -> (Budget, impl Fn(u64) -> Instant + Copy + Send + 'static) {
        let budget = Budget::new(Duration::from_secs(10), 0, 1.0).unwrap();
        let start = budget.inner.start;
        (budget, move |n| start + Duration::from_secs(n))
    }

    #[test]
    fn loom_two_withdrawals_as_the_window_moves_pay_once() {
        loom::model(|| {
            let (budget, at) = budget();
            budget.deposit_at(at(0));
            let other = budget.clone();
            let t = loom::thread::spawn(move || other.withdraw_at(at(1)) as u32);
            let mine = budget.withdraw_at(at(1)) as u32;
            let theirs = t.join().unwrap();
            // Later in the same window nothing is left.
            let later = budget.withdraw_at(at(5)) as u32;
            assert_eq!(mine + theirs + later, 1);
        });
    }

    #[test]
    fn loom_a_deposit_as_the_window_moves_pays_once_and_expires() {
        loom::model(|| {
            let (budget, at) = budget();
            let other = budget.clone();
            let t = loom::thread::spawn(move || other.deposit_at(at(3)));
            let mine = budget.withdraw_at(at(3)) as u32;
            t.join().unwrap();
            let granted = mine + withdraw_all_at(&budget, at(4));
            assert_eq!(granted, 1);
            // Ten buckets later the deposit has expired.
            assert!(!budget.withdraw_at(at(14)));
        });
    }

    #[test]
    fn loom_withdrawals_across_bucket_boundaries_never_overdraw() {
        loom::model(|| {
            let (budget, at) = budget();
            budget.deposit_at(at(0));
            budget.deposit_at(at(0));
            let threads: Vec<_> = (1..=2)
                .map(|n| {
                    let budget = budget.clone();
                    loom::thread::spawn(move || budget.withdraw_at(at(n)) as u32)
                })
                .collect();
            let mine = budget.withdraw_at(at(0)) as u32;
            let theirs: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
            let granted = mine + theirs + withdraw_all_at(&budget, at(5));
            assert_eq!(granted, 2);
        });
    }

    #[test]
    fn loom_an_old_deposit_expires_while_a_new_one_arrives() {
        loom::model(|| {
            let (budget, at) = budget();
            // Expires when bucket 10 begins.
            budget.deposit_at(at(0));
            let other = budget.clone();
            let t = loom::thread::spawn(move || other.deposit_at(at(12)));
            let mine = budget.withdraw_at(at(12)) as u32;
            t.join().unwrap();
            let granted = mine + withdraw_all_at(&budget, at(13));
            assert_eq!(granted, 1);
        });
    }

    #[test]
    fn loom_a_deposit_that_takes_a_bucket_over_expires_what_it_held() {
        loom::model(|| {
            let (budget, at) = budget();
            // Bucket 0's deposit expires when bucket 10 begins; bucket 10 uses the same
            // word, and its deposit may take it over before the window's mover empties it.
            budget.deposit_at(at(0));
            let other = budget.clone();
            let t = loom::thread::spawn(move || other.withdraw_at(at(10)) as u32);
            budget.deposit_at(at(10));
            let theirs = t.join().unwrap();
            let granted = theirs + withdraw_all_at(&budget, at(11));
            assert_eq!(granted, 1);
        });
    }

    /// A deposit at bucket `old` on another thread and one at bucket `new` on this one, in
    /// any interleaving; returns the budget after both.
    fn racing_deposits(old: u64, new: u64) -> (Budget, impl Fn(u64) -> Instant) {
        let (budget, at) = budget();
        let other = budget.clone();
        let t = loom::thread::spawn(move || other.deposit_at(at(old)));
        budget.deposit_at(at(new));
        t.join().unwrap();
        (budget, at)
    }

    #[test]
    fn loom_a_deposit_for_a_bucket_that_moved_on_is_not_counted() {
        loom::model(|| {
            // Bucket 2's deposit may arrive after bucket 12's took the word over.
            let (budget, at) = racing_deposits(2, 12);
            assert_eq!(withdraw_all_at(&budget, at(12)), 1);
            // Bucket 12's deposit and withdrawal expire together: nothing is left to pay.
            assert!(!budget.withdraw_at(at(22)));
        });
    }

    #[test]
    fn loom_a_deposit_recorded_after_its_bucket_left_the_window_expires_at_once() {
        loom::model(|| {
            // The window may move to bucket 13 between bucket 2's deposit reading the clock
            // and recording: what it records must not stay in the balance.
            let (budget, at) = racing_deposits(2, 13);
            assert_eq!(withdraw_all_at(&budget, at(13)), 1);
        });
    }
}
