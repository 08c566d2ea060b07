//! How long to wait before each retry.
//!
//! A [`Backoff`] computes a [`Duration`]; it is not a future. The retry future sleeps on the
//! tokio timer for that long. Waits a server asks for (`Retry-After` and friends) take the
//! place of the computed wait where the layer's
//! [`ServerWaits`](crate::retry_after::ServerWaits) let them.
//!
//! ```
//! use std::time::Duration;
//! use retryable_http::backoff::{Backoff, Jitter};
//!
//! let secs = Duration::from_secs;
//! // go-retryablehttp's numbers, without jitter: 1 s, 2 s, 4 s, 8 s, then the cap.
//! let backoff = Backoff::exponential(secs(1), secs(10))?.jitter(Jitter::None);
//! let delays: Vec<_> = backoff.delays().take(5).collect();
//! assert_eq!(delays, [secs(1), secs(2), secs(4), secs(8), secs(10)]);
//!
//! // The default jitter never goes below the minimum nor above the cap.
//! let backoff = Backoff::exponential(secs(1), secs(30))?;
//! for (retry, delay) in backoff.delays().take(100).enumerate() {
//!     assert!(delay >= secs(1) && delay <= secs(30), "retry {retry}: {delay:?}");
//! }
//! # Ok::<(), retryable_http::ConfigError>(())
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::response::Parts;

use crate::error::ConfigError;
use crate::redact::ResponseHead;
use crate::rng::Rng;

/// The default backoff: exponential from 1 s, doubling, capped at 30 s, with
/// [`Jitter::Bounded`].
///
/// 1 s and 30 s are go-retryablehttp's `RetryWaitMin` and `RetryWaitMax`; the jitter keeps
/// clients that failed together from retrying in lock-step.
pub const DEFAULT_MIN: Duration = Duration::from_secs(1);

/// The cap of the default backoff, see [`DEFAULT_MIN`].
pub const DEFAULT_MAX: Duration = Duration::from_secs(30);

/// A backoff schedule: the wait before retry 1, 2, 3, ...
///
/// Every constructor that can be given an invalid pair of values checks it and returns a
/// [`ConfigError`], so a bad schedule is found where it is written, never mid-request. All
/// arithmetic saturates: no retry number, however large, overflows.
///
/// # Clone
///
/// Cloning is cheap: a custom schedule is shared through an [`Arc`].
#[derive(Clone)]
pub struct Backoff {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Exponential {
        min: Duration,
        max: Duration,
        jitter: Jitter,
    },
    Constant(Duration),
    LinearJitter {
        min: Duration,
        max: Duration,
    },
    Custom(Arc<dyn Fn(&BackoffInput<'_>) -> Duration + Send + Sync>),
}

/// How an exponential backoff spreads its waits.
///
/// With `d(n) = min × 2ⁿ⁻¹` capped at `max` for retry `n` (1, 2, 4, 8 s from 1 s):
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Jitter {
    /// Exactly `d(n)`: go-retryablehttp's `DefaultBackoff`.
    None,
    /// Uniform in `[max(min, d(n+1)/2), d(n+1)]`: the doubling schedule with each wait spread
    /// over the upper half of the next step, so it never goes below `min` nor above `max`,
    /// and is spread even at the cap. The default.
    #[default]
    Bounded,
    /// Uniform in `[0, d(n)]`: AWS's "full jitter". It can go below `min`.
    Full,
    /// `d(n)/2` plus uniform in `[0, d(n)/2]`: AWS's "equal jitter". It can go below `min`.
    Equal,
    /// Uniform in `[min, 3 × previous wait]`, capped at `max`: AWS's "decorrelated jitter".
    Decorrelated,
}

/// What a custom backoff sees: see [`Backoff::custom`].
///
/// Its `Debug` output masks the values of sensitive response headers.
pub struct BackoffInput<'a> {
    retry: u32,
    previous: Duration,
    response: Option<&'a Parts>,
}

impl<'a> BackoffInput<'a> {
    /// The input for retry number `retry` (1 for the first retry), after a wait of
    /// `previous` (zero before the first retry) and a `response` head, if the last attempt
    /// got one.
    pub fn new(retry: u32, previous: Duration, response: Option<&'a Parts>) -> Self {
        BackoffInput {
            retry,
            previous,
            response,
        }
    }

    /// The retry about to be made: 1 for the first retry (the second attempt).
    pub fn retry(&self) -> u32 {
        self.retry
    }

    /// The wait before the previous retry; zero before the first one.
    pub fn previous(&self) -> Duration {
        self.previous
    }

    /// The head of the response that is being retried, if the last attempt got one.
    pub fn response(&self) -> Option<&'a Parts> {
        self.response
    }
}

impl Backoff {
    /// Exponential backoff from `min`, doubling, capped at `max`, with [`Jitter::Bounded`];
    /// [`Exponential::jitter`] picks another jitter.
    ///
    /// # Errors
    ///
    /// When `min` is zero (the wait would never grow: use [`Backoff::constant`] for immediate
    /// retries) or greater than `max`.
    pub fn exponential(min: Duration, max: Duration) -> Result<Exponential, ConfigError> {
        if min.is_zero() {
            return Err(ConfigError::new(
                "exponential backoff needs a non-zero minimum (use Backoff::constant(Duration::ZERO) for immediate retries)",
            ));
        }
        check_order(min, max)?;
        Ok(Exponential {
            min,
            max,
            jitter: Jitter::default(),
        })
    }

    /// The same wait before every retry. `Duration::ZERO` retries at once.
    pub fn constant(delay: Duration) -> Self {
        Backoff::new(Kind::Constant(delay))
    }

    /// go-retryablehttp's `LinearJitterBackoff`: before retry `n`, `n × (min + u)` with `u`
    /// uniform in `[0, max − min)`. As in Go, `max` bounds the jitter, not the wait. Go's
    /// `LinearJitterBackoff` ignores `Retry-After`: pair it with
    /// [`ServerWaits::never`](crate::retry_after::ServerWaits::never) for the same.
    ///
    /// # Errors
    ///
    /// When `min` is greater than `max`.
    pub fn linear_jitter(min: Duration, max: Duration) -> Result<Self, ConfigError> {
        check_order(min, max)?;
        Ok(Backoff::new(Kind::LinearJitter { min, max }))
    }

    /// go-retryablehttp's `DefaultBackoff` schedule, exactly: `min × 2ⁿ⁻¹` capped at `max`,
    /// without jitter. Go also honours `Retry-After` on a 429 or 503, uncapped by `max`:
    /// pair it with [`ServerWaits::go`](crate::retry_after::ServerWaits::go) for the same.
    ///
    /// # Errors
    ///
    /// When `min` is greater than `max`.
    pub fn go_default(min: Duration, max: Duration) -> Result<Self, ConfigError> {
        check_order(min, max)?;
        Ok(Backoff::new(Kind::Exponential {
            min,
            max,
            jitter: Jitter::None,
        }))
    }

    /// A schedule computed by `f`, which sees the retry number, the previous wait and the
    /// response head. Server-requested waits still come first where the layer's
    /// [`ServerWaits`](crate::retry_after::ServerWaits) honour them.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retryable_http::backoff::Backoff;
    ///
    /// // 100 ms, 200 ms, 300 ms, ...
    /// let backoff = Backoff::custom(|input| Duration::from_millis(100) * input.retry());
    /// assert_eq!(backoff.delays().nth(2), Some(Duration::from_millis(300)));
    /// ```
    pub fn custom<F>(f: F) -> Self
    where
        F: Fn(&BackoffInput<'_>) -> Duration + Send + Sync + 'static,
    {
        Backoff::new(Kind::Custom(Arc::new(f)))
    }

    /// The computed waits before retry 1, 2, 3, ..., as they would be drawn for one request
    /// that gets no server-requested waits. The iterator never ends.
    pub fn delays(&self) -> Delays {
        Delays {
            backoff: self.clone(),
            retry: 0,
            previous: Duration::ZERO,
            rng: Rng::new(),
        }
    }

    fn new(kind: Kind) -> Self {
        Backoff { kind }
    }

    /// The wait before retry `retry` (1-based), computed, with no server delay.
    pub(crate) fn compute(
        &self,
        retry: u32,
        previous: Duration,
        response: Option<&Parts>,
        rng: &mut Rng,
    ) -> Duration {
        let retry = retry.max(1);
        match &self.kind {
            Kind::Constant(delay) => *delay,
            Kind::Exponential { min, max, jitter } => {
                let (min, max) = (*min, *max);
                let d = |n: u32| doubled(min, n).min(max);
                match jitter {
                    Jitter::None => d(retry),
                    Jitter::Bounded => {
                        let hi = d(retry.saturating_add(1));
                        uniform((hi / 2).max(min), hi, rng)
                    }
                    Jitter::Full => uniform(Duration::ZERO, d(retry), rng),
                    Jitter::Equal => {
                        let t = d(retry);
                        uniform(t / 2, t, rng)
                    }
                    Jitter::Decorrelated => {
                        let hi = previous.max(min).saturating_mul(3);
                        uniform(min, hi, rng).min(max)
                    }
                }
            }
            Kind::LinearJitter { min, max } => {
                let base = uniform_half_open(*min, *max, rng);
                base.saturating_mul(retry)
            }
            Kind::Custom(f) => f(&BackoffInput::new(retry, previous, response)),
        }
    }
}

impl Default for Backoff {
    /// Exponential from [`DEFAULT_MIN`] to [`DEFAULT_MAX`] with [`Jitter::Bounded`].
    fn default() -> Self {
        Backoff::new(Kind::Exponential {
            min: DEFAULT_MIN,
            max: DEFAULT_MAX,
            jitter: Jitter::Bounded,
        })
    }
}

impl fmt::Debug for Backoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Backoff");
        match &self.kind {
            Kind::Exponential { min, max, jitter } => d
                .field("kind", &"exponential")
                .field("min", min)
                .field("max", max)
                .field("jitter", jitter),
            Kind::Constant(delay) => d.field("kind", &"constant").field("delay", delay),
            Kind::LinearJitter { min, max } => d
                .field("kind", &"linear_jitter")
                .field("min", min)
                .field("max", max),
            Kind::Custom(_) => d.field("kind", &"custom"),
        };
        d.finish()
    }
}

impl fmt::Debug for BackoffInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackoffInput")
            .field("retry", &self.retry)
            .field("previous", &self.previous)
            .field("response", &self.response.map(ResponseHead))
            .finish()
    }
}

/// An exponential backoff: see [`Backoff::exponential`]. It becomes a [`Backoff`] where one
/// is expected ([`RetryLayer::backoff`](crate::RetryLayer::backoff) takes either).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exponential {
    min: Duration,
    max: Duration,
    jitter: Jitter,
}

impl Exponential {
    /// Sets how the waits are spread; [`Jitter::Bounded`] by default.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The computed waits before retry 1, 2, 3, ...: see [`Backoff::delays`].
    pub fn delays(&self) -> Delays {
        Backoff::from(*self).delays()
    }
}

impl From<Exponential> for Backoff {
    fn from(e: Exponential) -> Self {
        Backoff::new(Kind::Exponential {
            min: e.min,
            max: e.max,
            jitter: e.jitter,
        })
    }
}

/// The computed waits of a [`Backoff`], see [`Backoff::delays`].
#[derive(Debug)]
pub struct Delays {
    backoff: Backoff,
    retry: u32,
    previous: Duration,
    rng: Rng,
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.retry = self.retry.saturating_add(1);
        let delay = self
            .backoff
            .compute(self.retry, self.previous, None, &mut self.rng);
        self.previous = delay;
        Some(delay)
    }
}

fn check_order(min: Duration, max: Duration) -> Result<(), ConfigError> {
    if min > max {
        return Err(ConfigError::new(format!(
            "backoff minimum ({min:?}) is greater than its maximum ({max:?})"
        )));
    }
    Ok(())
}

/// `min × 2ⁿ⁻¹`, saturating.
fn doubled(min: Duration, n: u32) -> Duration {
    let shift = n.saturating_sub(1);
    if min.is_zero() {
        return Duration::ZERO;
    }
    if shift >= 127 {
        return Duration::MAX;
    }
    match min.as_nanos().checked_mul(1u128 << shift) {
        Some(product) => nanos(product),
        None => Duration::MAX,
    }
}

/// Uniform in `[lo, hi]` (`lo` when `hi <= lo`).
fn uniform(lo: Duration, hi: Duration, rng: &mut Rng) -> Duration {
    if hi <= lo {
        return lo;
    }
    let span = (hi - lo).as_nanos() + 1;
    lo + nanos(scale(span, rng))
}

/// Uniform in `[lo, hi)` (`lo` when `hi <= lo`), as Go's `rand.Float64() * (max - min)`.
fn uniform_half_open(lo: Duration, hi: Duration, rng: &mut Rng) -> Duration {
    if hi <= lo {
        return lo;
    }
    lo + nanos(scale((hi - lo).as_nanos(), rng))
}

/// A random number in `[0, span)`: the high bits of `span × r / 2⁶⁴`.
fn scale(span: u128, rng: &mut Rng) -> u128 {
    let r = u128::from(rng.next_u64());
    // NOTE: span < 2⁹⁵ (Duration::MAX in nanoseconds), so span × r may not fit in a u128:
    // with span = hi × 2⁶⁴ + lo, each partial product does, and the sum stays exact.
    let (hi, lo) = (span >> 64, span & u128::from(u64::MAX));
    hi * r + ((lo * r) >> 64)
}

/// `n` nanoseconds, saturating at `Duration::MAX`.
fn nanos(n: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    match u64::try_from(n / NANOS_PER_SEC) {
        Ok(secs) => Duration::new(secs, (n % NANOS_PER_SEC) as u32),
        Err(_) => Duration::MAX,
    }
}

#[cfg(test)]
mod tests {
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
}
