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
//! # Ok::<(), retryable_http::error::ConfigError>(())
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
mod tests;
