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
//! # Ok::<(), retryable_http::error::ConfigError>(())
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

mod keyed;
mod slot;
pub(crate) mod throttle;

pub(crate) use keyed::Budgets;
pub use throttle::Throttle;

use slot::{Age, Slot};

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
/// The default throttle's tokens: 10, of which a failed attempt takes one; retries stop
/// at half.
pub const DEFAULT_MAX_TOKENS: u32 = 10;
/// The default throttle's refill: a fifth of a token per request.
pub const DEFAULT_TOKEN_RATIO: f64 = 0.2;

/// What an attempt after the first is for, as a throttle sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Spend {
    /// A retry after an attempt the server processed, or may have: a failure the throttle
    /// counts.
    Retry,
    /// A retry after an attempt the server provably never processed (a refused connection
    /// or stream, a stream above a `GOAWAY`): no sign of a failing server, and so neither
    /// counted nor refused by the throttle, as gRPC's transparent retries are not. The
    /// balance still pays for it.
    Unprocessed,
    /// A hedge: not a failure; made only while the throttle allows.
    Hedge,
}

/// A retry budget, shared by everything that holds a clone of it.
///
/// A layer keeps one per destination by default, each with [`Budget::default`]'s
/// settings; give it one of yours with
/// [`RetryLayer::budget_per_destination`](crate::RetryLayer::budget_per_destination), or
/// one for every request with [`RetryLayer::budget`](crate::RetryLayer::budget).
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
    /// What stops retries while the destination fails more than the ratio can pay for.
    throttle: Option<Throttle>,
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
        Budget::build(window, min_per_sec, ratio, None)
    }

    /// This budget's settings, with retries also throttled as gRFC A6 throttles a gRPC
    /// channel's: a bucket of `max_tokens` that every failed attempt the policy would
    /// retry drains by one token and every request refills by `token_ratio`, and that
    /// allows retries and hedges only while more than half of it is left. A retry of a
    /// request the server provably never processed (a refused connection or stream, a
    /// stream above a `GOAWAY`) is neither counted nor refused by it. The budget
    /// returned is a new one: its reserve full, nothing deposited.
    ///
    /// The budget bounds what retries add to the load; the throttle stops them while a
    /// destination fails for more than about `token_ratio` of its requests, even when the
    /// budget's reserve could pay. A reserve is per client: across a fleet of a thousand
    /// clients that each send a few requests a second, 10 retries a second each is more
    /// than the requests, and only the throttle keeps a fleet's retries from holding an
    /// overloaded server down (`benches/fleet.rs`). [`Budget::default`] has one.
    ///
    /// # Errors
    ///
    /// When `max_tokens` is 0 or above 1000, or `token_ratio` is below 0.001 (A6's
    /// bounds).
    ///
    /// ```
    /// use std::time::Duration;
    /// use retryable_http::budget::Budget;
    ///
    /// // 20 % and 10 retries a second, while fewer than about one request in five fails.
    /// let budget = Budget::new(Duration::from_secs(10), 10, 0.2)?.throttle(10, 0.2)?;
    /// # Ok::<(), retryable_http::error::ConfigError>(())
    /// ```
    pub fn throttle(self, max_tokens: u32, token_ratio: f64) -> Result<Self, ConfigError> {
        let throttle =
            Throttle::new(max_tokens, token_ratio).map_err(|e| e.of("budget throttle"))?;
        let inner = &*self.inner;
        Budget::build(inner.window, inner.min_per_sec, inner.ratio, Some(throttle))
    }

    fn build(
        window: Duration,
        min_per_sec: u32,
        ratio: f64,
        throttle: Option<Throttle>,
    ) -> Result<Self, ConfigError> {
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
                throttle,
            }),
        })
    }

    /// Records a first attempt at `now`. It is never refused.
    pub(crate) fn deposit_at(&self, now: Instant) {
        self.inner.add(self.inner.deposit, now);
        if let Some(throttle) = &self.inner.throttle {
            throttle.refill();
        }
    }

    /// Takes one retry at `now` for an attempt that failed: the throttle, if any, counts
    /// the failure first, and refuses once too many failed. Returns `false`, taking
    /// nothing from the balance, when either refuses.
    pub(crate) fn retry_at(&self, now: Instant) -> bool {
        let failed_too_often =
            (self.inner.throttle.as_ref()).is_some_and(|throttle| !throttle.record_failure());
        !failed_too_often && self.withdraw_at(now)
    }

    /// Takes one hedge at `now`: the throttle, if any, must allow it, and is not drained.
    pub(crate) fn hedge_at(&self, now: Instant) -> bool {
        let throttled = (self.inner.throttle.as_ref()).is_some_and(|t| !t.allows());
        !throttled && self.withdraw_at(now)
    }

    /// Takes one attempt after the first at `now`, for `spend`.
    pub(crate) fn spend_at(&self, now: Instant, spend: Spend) -> bool {
        match spend {
            Spend::Retry => self.retry_at(now),
            Spend::Hedge => self.hedge_at(now),
            Spend::Unprocessed => self.withdraw_at(now),
        }
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

    /// A budget with these settings of its own: its reserve full, nothing deposited.
    pub(crate) fn fresh(&self) -> Budget {
        let inner = &*self.inner;
        let throttle = inner.throttle.as_ref().map(Throttle::fresh);
        Budget::build(inner.window, inner.min_per_sec, inner.ratio, throttle)
            .expect("the settings were checked when this budget was made")
    }

    /// Whether this budget differs at `now` from a fresh one: something deposited or
    /// withdrawn still counts, or its throttle remembers failures. A budget idle for a
    /// whole window with a full throttle holds its reserve and nothing else, as a fresh one
    /// does.
    pub(crate) fn is_active(&self, now: Instant) -> bool {
        let inner = &*self.inner;
        inner.epoch_of(now) < inner.epoch.load(Ordering::Acquire) + BUCKETS
            || (inner.throttle.as_ref()).is_some_and(|throttle| !throttle.is_full())
    }

    /// Whether anything but the one holder asking can reach this budget: a thread that
    /// remembers it, or a request paying from it. Only a holder with the map of budgets
    /// locked for writing may trust a `false`: no one else then gets a new reference.
    pub(crate) fn is_held_elsewhere(&self) -> bool {
        let held = Arc::strong_count(&self.inner) > 1;
        if !held {
            // Whatever the last other holder did before it let go happens before what the
            // asker does next.
            fence(Ordering::Acquire);
        }
        held
    }

    /// Gives back, at `now`, one retry [`withdraw_at`](Self::withdraw_at) took: the retry
    /// was not made after all.
    pub(crate) fn refund_at(&self, now: Instant) {
        self.inner.add(RETRY, now);
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
    /// [`DEFAULT_WINDOW`], [`DEFAULT_MIN_PER_SEC`] and [`DEFAULT_RATIO`], throttled with
    /// [`DEFAULT_MAX_TOKENS`] and [`DEFAULT_TOKEN_RATIO`]: 20 % of the last 10 s of
    /// requests and 10 retries a second, while fewer than about one request in five
    /// fails.
    fn default() -> Self {
        let throttle = Throttle::new(DEFAULT_MAX_TOKENS, DEFAULT_TOKEN_RATIO)
            .expect("the default throttle is valid");
        Budget::build(
            DEFAULT_WINDOW,
            DEFAULT_MIN_PER_SEC,
            DEFAULT_RATIO,
            Some(throttle),
        )
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

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("window", &self.inner.window)
            .field("min_per_sec", &self.inner.min_per_sec)
            .field("ratio", &self.inner.ratio)
            .field("reserve", &(self.inner.reserve / RETRY))
            .field("available", &self.available())
            .field("throttle", &self.inner.throttle)
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
mod tests;

/// Model checks of the balance and the buckets' expiry under concurrent deposits and
/// withdrawals: `RUSTFLAGS="--cfg retryable_http_loom" cargo test --release --lib loom`.
#[cfg(all(test, retryable_http_loom))]
mod loom_models;
