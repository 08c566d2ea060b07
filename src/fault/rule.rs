//! Rules: which requests a fault hits, what it does, and when it fires.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::request;

use super::effect::Effect;
use super::matcher::Match;
use super::trigger::Trigger;

/// A fault: which requests it [matches](Match), what it [does](Effect), and [when](Trigger)
/// it fires among the requests it matches.
///
/// ```
/// use std::time::Duration;
/// use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
/// use http::{Method, StatusCode};
/// use retryable_http::fault::{Effect, Answer, Match, Rule, Trigger};
///
/// // The seed experiment: the upstream does the work, the client gets a 502.
/// let seed = Rule::new(Effect::Replace(
///     Answer::new(StatusCode::BAD_GATEWAY)
///         .body("Bad Gateway Simulation")
///         .header(CONTENT_TYPE, HeaderValue::from_static("text/plain")),
/// ))
/// .matching(Match::url_contains("your-api-endpoint"));
///
/// // Rate limiting on the first two POSTs.
/// let throttle = Rule::new(Effect::Respond(
///     Answer::new(StatusCode::TOO_MANY_REQUESTS).header(RETRY_AFTER, HeaderValue::from_static("1")),
/// ))
/// .matching(Match::method(Method::POST))
/// .trigger(Trigger::first(2));
///
/// // A slow upstream, one request in ten, reproducibly.
/// let slow = Rule::new(Effect::Forward)
///     .delay(Duration::from_millis(800))
///     .trigger(Trigger::probability(0.1, 42)?);
/// # Ok::<(), retryable_http::error::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Rule {
    /// Set by the layer to the rule's position when the rule has no name of its own.
    pub(super) name: Option<Arc<str>>,
    matches: Vec<Match>,
    pub(super) effect: Effect,
    pub(super) delay: Duration,
    trigger: Trigger,
    /// Requests matched so far.
    matched: Arc<AtomicU64>,
}

impl Rule {
    /// A rule that does `effect` to every request, every time.
    pub fn new(effect: Effect) -> Self {
        Rule {
            name: None,
            matches: Vec::new(),
            effect,
            delay: Duration::ZERO,
            trigger: Trigger::always(),
            matched: Arc::default(),
        }
    }

    /// Only requests that also match `m` (all conditions must hold).
    pub fn matching(mut self, m: Match) -> Self {
        self.matches.push(m);
        self
    }

    /// Fires only as `trigger` says, among the requests the rule matches.
    pub fn trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = trigger;
        self
    }

    /// Waits this long before acting.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// A name for the record; by default the rule is named by its position.
    pub fn named(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Whether the rule fires for `request`, counting it if it matches. `elapsed` is the
    /// time since the layer was made.
    pub(super) fn fires(&self, request: &request::Parts, elapsed: Duration) -> bool {
        if !self.matches.iter().all(|m| m.test(request)) {
            return false;
        }
        let n = self.matched.fetch_add(1, Ordering::Relaxed);
        self.trigger.fires(n, elapsed)
    }
}
