//! [`Throttle`]: gRFC A6's retry throttling, one bucket of tokens per server; and the
//! default budget's stop when a destination fails more than it succeeds.

use std::fmt;

use crate::error::ConfigError;
use crate::sync::{AtomicU64, Ordering};

/// A milli-token is the unit the bucket counts in, as C-core does, so that a ratio of three
/// decimals adds up exactly.
const MILLI: u64 = 1_000;

/// gRFC A6's retry throttle: a bucket of tokens that every failed call drains and every
/// successful call refills, and that allows retries and hedges only while it holds more
/// than half its capacity.
///
/// - It starts full, at `max_tokens`.
/// - A call that fails with a retryable status takes one token; [`record_failure`]
///   answers whether a retry is still allowed after it.
/// - A call that succeeds gives `token_ratio` tokens back, up to `max_tokens`.
///
/// With `max_tokens` 10 and `token_ratio` 0.1, retries stop once failures run above about
/// one call in eleven. Counts are kept in thousandths of a token, exactly.
///
/// A [`Budget`](super::Budget) can carry one too ([`Budget::throttle`](super::Budget::throttle),
/// and [`Budget::default`](super::Budget::default)): there every request refills it, and
/// every failed attempt that asks for a retry drains it.
///
/// [`record_failure`]: Throttle::record_failure
pub struct Throttle {
    /// Milli-tokens held: 0 to `max`.
    held: AtomicU64,
    max: u64,
    ratio: u64,
}

impl Throttle {
    /// A full bucket of `max_tokens` (more than 0, at most 1000) that a success refills by
    /// `token_ratio` (more than 0; only three decimals count, as in gRPC's clients).
    pub fn new(max_tokens: u32, token_ratio: f64) -> Result<Self, ConfigError> {
        let (max, ratio) = milli(max_tokens, token_ratio)?;
        Ok(Throttle {
            held: AtomicU64::new(max),
            max,
            ratio,
        })
    }

    /// A full bucket with this one's settings.
    pub(crate) fn fresh(&self) -> Self {
        Throttle {
            held: AtomicU64::new(self.max),
            max: self.max,
            ratio: self.ratio,
        }
    }

    /// A call failed with a retryable status: one token is taken. Returns whether retries
    /// are still allowed: whether more than half the capacity is left.
    pub fn record_failure(&self) -> bool {
        let left = self.update(|held| held.saturating_sub(MILLI));
        left > self.max / 2
    }

    /// A call succeeded: `token_ratio` tokens are given back, up to the capacity.
    pub fn record_success(&self) {
        self.update(|held| (held + self.ratio).min(self.max));
    }

    /// [`record_success`](Self::record_success), with nothing written when the bucket is
    /// full, as it is while all goes well: threads then only read its line of memory.
    pub(crate) fn refill(&self) {
        if self.milli_tokens() < self.max {
            self.record_success();
        }
    }

    /// Whether the bucket holds all its tokens, as a new one does.
    pub(crate) fn is_full(&self) -> bool {
        self.milli_tokens() == self.max
    }

    /// Whether retries and hedges are allowed now, without recording anything.
    pub fn allows(&self) -> bool {
        self.milli_tokens() > self.max / 2
    }

    /// The tokens held now, in thousandths.
    pub fn milli_tokens(&self) -> u64 {
        self.held.load(Ordering::Acquire)
    }

    /// Applies `f` to the tokens held; returns what they became.
    fn update(&self, f: impl Fn(u64) -> u64) -> u64 {
        let before = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| Some(f(held)))
            .unwrap_or_else(|held| held);
        f(before)
    }
}

/// `max_tokens` and `token_ratio` in milli-tokens, checked as gRPC's clients check them.
pub(crate) fn milli(max_tokens: u32, token_ratio: f64) -> Result<(u64, u64), ConfigError> {
    if max_tokens == 0 || max_tokens > 1000 {
        return Err(ConfigError::new(format!(
            "retryThrottling.maxTokens must be more than 0 and at most 1000, not {max_tokens}"
        )));
    }
    // NOTE: truncated to thousandths, as C-core parses the decimal string; a ratio above
    // what the bucket holds is clamped by the bucket anyway.
    let ratio = token_ratio * MILLI as f64;
    // NaN is neither finite nor at least 1.
    if !ratio.is_finite() || ratio < 1.0 {
        return Err(ConfigError::new(format!(
            "retryThrottling.tokenRatio must be at least 0.001, not {token_ratio}"
        )));
    }
    let max = u64::from(max_tokens) * MILLI;
    Ok((max, (ratio as u64).min(max)))
}

impl fmt::Debug for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle")
            .field("milli_tokens", &self.milli_tokens())
            .field("max_milli_tokens", &self.max)
            .field("milli_token_ratio", &self.ratio)
            .finish()
    }
}

#[cfg(all(test, not(retryable_http_loom)))]
mod tests;
