//! [`Trigger`]: when a rule fires among the requests it matches.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::ConfigError;
use crate::rng::splitmix64;

/// When a rule fires among the requests it matches: every time (the default), the first
/// `n` times, every `n`-th time, with a seeded probability, or during a window of time.
///
/// ```
/// use std::time::Duration;
/// use retryable_http::fault::Trigger;
///
/// let first_two = Trigger::first(2);
/// let every_third = Trigger::every_nth(3)?;
/// let one_in_ten = Trigger::probability(0.1, 42)?;
/// let for_a_minute = Trigger::window(Duration::from_secs(10), Duration::from_secs(70))?;
/// # Ok::<(), retryable_http::error::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Trigger {
    kind: Kind,
}

#[derive(Clone, Debug, Default)]
enum Kind {
    #[default]
    Always,
    First(u64),
    EveryNth(u64),
    Probability(Chance),
    Window {
        from: Duration,
        until: Duration,
    },
}

/// A probability and its seeded generator, shared by clones of the rule: see
/// [`Trigger::probability`].
#[derive(Clone)]
pub struct Chance {
    p: f64,
    /// A SplitMix64 state.
    state: Arc<Mutex<u64>>,
}

impl Chance {
    /// The probability, from 0 to 1.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// Draws: `true` with probability `p`.
    fn draw(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // 53 random bits fill an f64 mantissa exactly: a number in [0, 1).
        let x = (splitmix64(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
        x < self.p
    }
}

impl fmt::Debug for Chance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chance")
            .field("p", &self.p)
            .finish_non_exhaustive()
    }
}

impl Trigger {
    /// Fires every time: the default.
    pub fn always() -> Self {
        Trigger::default()
    }

    /// Fires the first `n` times, then never.
    pub fn first(n: u64) -> Self {
        Trigger {
            kind: Kind::First(n),
        }
    }

    /// Fires every `n`-th time: the `n`-th, the `2n`-th, ...
    ///
    /// # Errors
    ///
    /// When `n` is zero.
    pub fn every_nth(n: u64) -> Result<Self, ConfigError> {
        if n == 0 {
            return Err(ConfigError::new("a fault cannot fire every 0th time"));
        }
        Ok(Trigger {
            kind: Kind::EveryNth(n),
        })
    }

    /// Fires with probability `p`, drawn from a generator seeded with `seed`: the same seed
    /// gives the same faults for the same sequence of requests.
    ///
    /// # Errors
    ///
    /// When `p` is not a number from 0 to 1.
    pub fn probability(p: f64, seed: u64) -> Result<Self, ConfigError> {
        if !(0.0..=1.0).contains(&p) {
            return Err(ConfigError::new(format!(
                "fault probability must be from 0 to 1, not {p}"
            )));
        }
        Ok(Trigger {
            kind: Kind::Probability(Chance {
                p,
                state: Arc::new(Mutex::new(seed)),
            }),
        })
    }

    /// Fires from `from` until `until` (not included) after the layer was made.
    ///
    /// # Errors
    ///
    /// When `until` is not after `from`: the window would be empty.
    pub fn window(from: Duration, until: Duration) -> Result<Self, ConfigError> {
        if until <= from {
            return Err(ConfigError::new(format!(
                "a fault window must end after it starts, not from {from:?} until {until:?}"
            )));
        }
        Ok(Trigger {
            kind: Kind::Window { from, until },
        })
    }

    /// `n` is how many matching requests came before this one.
    pub(super) fn fires(&self, n: u64, elapsed: Duration) -> bool {
        match &self.kind {
            Kind::Always => true,
            Kind::First(first) => n < *first,
            Kind::EveryNth(every) => (n + 1) % every == 0,
            Kind::Probability(chance) => chance.draw(),
            Kind::Window { from, until } => elapsed >= *from && elapsed < *until,
        }
    }
}
