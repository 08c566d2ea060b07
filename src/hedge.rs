//! [`Hedge`]: when to start another attempt while the earlier ones are still slow.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::request;

use crate::error::ConfigError;

/// The most attempts a hedged request may have in flight: 5, as gRPC allows.
pub const MAX_ATTEMPTS: u32 = 5;

/// Hedging, opt in: when no response has come within a delay, the next attempt starts while
/// the earlier ones go on, and the first acceptable answer wins. Give it to
/// [`RetryLayer::hedge`](crate::RetryLayer::hedge).
///
/// Hedging trades a little extra load for a shorter tail: a request that a slow server,
/// a lost packet or a garbage-collection pause holds up is answered by its hedge instead. It
/// is what gRPC's hedging policy, Envoy's `hedge_on_per_try_timeout` and tower's `hedge`
/// do. Here it also keeps to the retry budget, returns the first *acceptable* outcome rather
/// than the first one, and needs no `Clone` on the body.
///
/// ```
/// use std::time::Duration;
/// use retryable_http::{hedge::Hedge, RetryLayer};
///
/// // A second attempt when the first has not answered within 10 ms; a third at 20 ms.
/// let layer = RetryLayer::new().hedge(
///     Hedge::after(Duration::from_millis(10)).max_attempts(3)?,
/// );
/// # Ok::<(), retryable_http::error::ConfigError>(())
/// ```
///
/// # What happens
///
/// - The first attempt starts at once. Each time the delay passes with no response, the
///   next attempt starts; the earlier ones are not cancelled.
/// - An attempt whose outcome the policy would retry (a 503, a refused connection) starts
///   the next attempt at once — or after the wait the server asked for, if it asked with
///   `Retry-After` or a rate-limit header.
/// - The first outcome the policy does not retry — a success, or a failure that retrying
///   cannot help — wins: it goes to the caller, and every other attempt is dropped at once,
///   which cancels it. When no attempt is left and none may start, the last outcome goes to
///   the caller.
/// - A request has at most [`max_attempts`](Hedge::max_attempts) attempts (2 by default), and
///   never more than the layer's [`max_retries`](crate::RetryLayer::max_retries) allow.
/// - Every attempt after the first is paid from the retry [budget](crate::budget): a hedge
///   the budget refuses is not started.
/// - No attempt starts past the [deadline](crate::RetryLayer::deadline), or once the caller
///   dropped the future: nothing is spawned, every attempt lives in the future.
///
/// # Hooks
///
/// [`on_attempt`](crate::RetryLayer::on_attempt) runs for every attempt and
/// [`on_response`](crate::RetryLayer::on_response) for every response, in the order they
/// come; [`prepare_retry`](crate::RetryLayer::prepare_retry) runs before an attempt that
/// follows an outcome the policy retries, not before one the delay started, and changes the
/// head of the attempts still to come only.
///
/// # Which requests
///
/// Only requests the policy treats as idempotent
/// ([`Policy::treats_as_idempotent`](crate::policy::Policy::treats_as_idempotent): by default
/// an idempotent method, or an `Idempotency-Key`) are hedged; [`Hedge::only_when`] decides
/// instead. Other requests are retried as usual.
///
/// Two attempts cannot read one stream at once: a hedge starts only once the request body
/// is empty or wholly kept for replay. A body still streaming holds the hedge back until it
/// ends; a body larger than the [replay cap](crate::RetryLayer::replay_limit) is never
/// hedged.
///
/// # Record
///
/// The response's [`Attempts`](crate::Attempts) lists every attempt in the order it started:
/// [`is_hedge`](crate::record::Entry::is_hedge) for those started while another was in flight,
/// [`Ended::Abandoned`](crate::record::Ended::Abandoned) for those dropped when another won.
#[derive(Clone)]
pub struct Hedge {
    delay: Delay,
    max_attempts: u32,
    on_attempt_timeout: bool,
    admit: Option<Admit>,
}

type Admit = Arc<dyn Fn(&request::Parts) -> bool + Send + Sync>;

#[derive(Clone)]
enum Delay {
    Fixed(Duration),
    Computed(Arc<dyn Fn(u32) -> Duration + Send + Sync>),
}

impl Hedge {
    /// Starts the next attempt when none has answered within `delay` of the last one
    /// starting.
    ///
    /// A delay near the 95th percentile of the upstream's latency hedges about one request
    /// in twenty.
    pub fn after(delay: Duration) -> Self {
        Hedge::with_delay(Delay::Fixed(delay))
    }

    /// Starts attempt `n` (2 for the first hedge) `delay(n)` after attempt `n − 1` started,
    /// when none has answered by then.
    pub fn after_fn<F>(delay: F) -> Self
    where
        F: Fn(u32) -> Duration + Send + Sync + 'static,
    {
        Hedge::with_delay(Delay::Computed(Arc::new(delay)))
    }

    fn with_delay(delay: Delay) -> Self {
        Hedge {
            delay,
            max_attempts: 2,
            on_attempt_timeout: false,
            admit: None,
        }
    }

    /// At most `n` attempts per request, the first included: 2 by default.
    ///
    /// # Errors
    ///
    /// When `n` is below 2 (there would be no hedge) or above [`MAX_ATTEMPTS`].
    pub fn max_attempts(mut self, n: u32) -> Result<Self, ConfigError> {
        if !(2..=MAX_ATTEMPTS).contains(&n) {
            return Err(ConfigError::new(format!(
                "a hedged request makes 2 to {MAX_ATTEMPTS} attempts, not {n}"
            )));
        }
        self.max_attempts = n;
        Ok(self)
    }

    /// When an attempt reaches the layer's
    /// [`attempt_timeout`](crate::RetryLayer::attempt_timeout), starts the next attempt but
    /// keeps waiting for the slow one too, as Envoy's `hedge_on_per_try_timeout`. Without it,
    /// the slow attempt is cut off and the next one starts.
    pub fn on_attempt_timeout(mut self) -> Self {
        self.on_attempt_timeout = true;
        self
    }

    /// Hedges the requests for which `admit` returns `true`, in place of those the policy
    /// treats as idempotent.
    pub fn only_when<F>(mut self, admit: F) -> Self
    where
        F: Fn(&request::Parts) -> bool + Send + Sync + 'static,
    {
        self.admit = Some(Arc::new(admit));
        self
    }

    /// The delay before attempt `n`, from the start of attempt `n − 1`.
    pub(crate) fn delay(&self, n: u32) -> Duration {
        match &self.delay {
            Delay::Fixed(delay) => *delay,
            Delay::Computed(delay) => delay(n),
        }
    }

    pub(crate) fn max(&self) -> u32 {
        self.max_attempts
    }

    pub(crate) fn hedges_on_attempt_timeout(&self) -> bool {
        self.on_attempt_timeout
    }

    /// Whether `request` is hedged, given whether the policy treats it as idempotent.
    pub(crate) fn admits(
        &self,
        request: &request::Parts,
        idempotent: impl FnOnce() -> bool,
    ) -> bool {
        match &self.admit {
            Some(admit) => admit(request),
            None => idempotent(),
        }
    }
}

impl fmt::Debug for Hedge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Hedge");
        match &self.delay {
            Delay::Fixed(delay) => d.field("after", delay),
            Delay::Computed(_) => d.field("after", &"fn"),
        };
        d.field("max_attempts", &self.max_attempts)
            .field("on_attempt_timeout", &self.on_attempt_timeout)
            .field("only_when", &self.admit.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests;
