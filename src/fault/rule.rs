//! Rules: which requests a fault hits, what it does, and when it fires.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Method, StatusCode, request};

use crate::error::ConfigError;
use crate::redact::Value;
use crate::rng::Rng;

/// A fault: which requests it [matches](Match), what it [does](Action), and [when](Trigger)
/// it fires among the requests it matches.
///
/// ```
/// use std::time::Duration;
/// use retryable_http::fault::{Action, Answer, Match, Rule, Trigger};
///
/// // The seed experiment: the upstream does the work, the client gets a 502.
/// let seed = Rule::new(Action::Replace(
///     Answer::new(502).body("Bad Gateway Simulation").header("content-type", "text/plain"),
/// ))
/// .matching(Match::url_contains("your-api-endpoint"));
///
/// // Rate limiting on the first two POSTs.
/// let throttle = Rule::new(Action::Respond(Answer::new(429).header("retry-after", "1")))
///     .matching(Match::method(http::Method::POST))
///     .trigger(Trigger::First(2));
///
/// // A slow upstream, one request in ten, reproducibly.
/// let slow = Rule::new(Action::Forward)
///     .delay(Duration::from_millis(800))
///     .trigger(Trigger::probability(0.1, 42)?);
/// # Ok::<(), retryable_http::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Rule {
    /// Set by the layer to the rule's position when the rule has no name of its own.
    pub(super) name: Option<Arc<str>>,
    matches: Vec<Match>,
    pub(super) action: Action,
    pub(super) delay: Duration,
    trigger: Trigger,
    /// Requests matched so far.
    matched: Arc<AtomicU64>,
}

impl Rule {
    /// A rule that does `action` to every request, every time.
    pub fn new(action: Action) -> Self {
        Rule {
            name: None,
            matches: Vec::new(),
            action,
            delay: Duration::ZERO,
            trigger: Trigger::Always,
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

/// A condition on a request.
#[derive(Clone)]
#[non_exhaustive]
pub enum Match {
    /// The method is this one.
    Method(Method),
    /// The whole URI, as sent, contains this text.
    UrlContains(String),
    /// The path contains this text.
    PathContains(String),
    /// The whole URI matches this regular expression.
    UrlRegex(regex_lite::Regex),
    /// The header is present, with this value if one is given.
    Header(HeaderName, Option<HeaderValue>),
    /// The predicate says yes.
    Predicate(Arc<dyn Fn(&request::Parts) -> bool + Send + Sync>),
}

impl Match {
    /// The method is `method`.
    pub fn method(method: Method) -> Self {
        Match::Method(method)
    }

    /// The URI contains `text`: the seed's `"your-api-endpoint" in flow.request.url`.
    pub fn url_contains(text: impl Into<String>) -> Self {
        Match::UrlContains(text.into())
    }

    /// The path contains `text`.
    pub fn path_contains(text: impl Into<String>) -> Self {
        Match::PathContains(text.into())
    }

    /// The URI matches the regular expression `pattern`.
    ///
    /// # Errors
    ///
    /// When `pattern` is not a valid regular expression.
    pub fn url_regex(pattern: &str) -> Result<Self, ConfigError> {
        regex_lite::Regex::new(pattern)
            .map(Match::UrlRegex)
            .map_err(|e| ConfigError::new(format!("invalid URL pattern {pattern:?}: {e}")))
    }

    /// The header `name` is present, with `value` if one is given.
    pub fn header(name: HeaderName, value: Option<HeaderValue>) -> Self {
        Match::Header(name, value)
    }

    /// `predicate` says yes.
    pub fn predicate<F>(predicate: F) -> Self
    where
        F: Fn(&request::Parts) -> bool + Send + Sync + 'static,
    {
        Match::Predicate(Arc::new(predicate))
    }

    fn test(&self, request: &request::Parts) -> bool {
        match self {
            Match::Method(m) => request.method == *m,
            Match::UrlContains(text) => uri_text(request).contains(text.as_str()),
            Match::PathContains(text) => request.uri.path().contains(text.as_str()),
            Match::UrlRegex(re) => re.is_match(&uri_text(request)),
            Match::Header(name, value) => match (request.headers.get(name), value) {
                (Some(_), None) => true,
                (Some(actual), Some(expected)) => actual == expected,
                (None, _) => false,
            },
            Match::Predicate(f) => f(request),
        }
    }
}

/// The URI as text; for an origin-form URI on a server, with the `Host` header in front,
/// so that a rule written against full URLs works on both sides of a connection.
fn uri_text(request: &request::Parts) -> String {
    if request.uri.authority().is_some() {
        return request.uri.to_string();
    }
    match request
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
    {
        Some(host) => format!("http://{host}{}", request.uri),
        None => request.uri.to_string(),
    }
}

impl fmt::Debug for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Match::Method(m) => f.debug_tuple("Method").field(m).finish(),
            Match::UrlContains(t) => f.debug_tuple("UrlContains").field(t).finish(),
            Match::PathContains(t) => f.debug_tuple("PathContains").field(t).finish(),
            Match::UrlRegex(r) => f.debug_tuple("UrlRegex").field(&r.as_str()).finish(),
            Match::Header(n, v) => f
                .debug_tuple("Header")
                .field(n)
                .field(&v.as_ref().map(|v| Value(n, v)))
                .finish(),
            Match::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

/// What a fault does.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Action {
    /// Answer without forwarding: the upstream never sees the request.
    Respond(Answer),
    /// Forward, then replace the upstream's answer: the upstream did the work, the client
    /// gets the fault. The seed's mitmproxy `response` hook.
    Replace(Answer),
    /// Fail like a transport: an [`io::Error`] of this kind, without forwarding. Kinds
    /// classify as a client would see them: `ConnectionRefused` never reached the server,
    /// `ConnectionReset` may have.
    Fail(io::ErrorKind),
    /// Refuse the request like an HTTP/2 server that resets its stream with
    /// `REFUSED_STREAM`, without forwarding: the error is an `h2::Error` with that reason,
    /// which [classifies](crate::classify) as never sent. Served by hyper's HTTP/2 server
    /// (as `examples/fault_proxy.rs --http2 --refuse-stream` does), it makes hyper send
    /// `RST_STREAM(REFUSED_STREAM)` to the client.
    RefuseStream,
    /// Forward unchanged (with the rule's [delay](Rule::delay), a slow upstream).
    Forward,
}

/// A response a fault sends.
#[derive(Clone, Debug)]
pub struct Answer {
    pub(super) status: StatusCode,
    pub(super) headers: Vec<(HeaderName, HeaderValue)>,
    pub(super) body: Bytes,
}

impl Answer {
    /// An empty response with `status`.
    ///
    /// # Panics
    ///
    /// When `status` is not from 100 to 999; use [`Answer::with_status`] with a
    /// [`StatusCode`] to rule that out.
    pub fn new(status: u16) -> Self {
        Answer::with_status(StatusCode::from_u16(status).expect("a status from 100 to 999"))
    }

    /// An empty response with `status`.
    pub fn with_status(status: StatusCode) -> Self {
        Answer {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Adds a header.
    ///
    /// # Panics
    ///
    /// When `name` or `value` is not a valid header name or value.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::try_from(name).expect("a valid header name");
        let value = HeaderValue::try_from(value).expect("a valid header value");
        self.headers.push((name, value));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }
}

/// When a rule fires among the requests it matches.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Trigger {
    /// Every time.
    #[default]
    Always,
    /// The first `n` times, then never.
    First(u64),
    /// Every `n`-th time: the `n`-th, the `2n`-th, ...
    EveryNth(u64),
    /// With a probability, drawn from a seeded generator: made by [`Trigger::probability`].
    Probability(Chance),
    /// From `from` until `until` after the layer was made.
    Window {
        /// The start of the window.
        from: Duration,
        /// The end of the window (not included).
        until: Duration,
    },
}

/// A probability and its seeded generator, shared by clones of the rule: see
/// [`Trigger::probability`].
#[derive(Clone)]
pub struct Chance {
    p: f64,
    rng: Arc<Mutex<Rng>>,
}

impl Chance {
    /// The probability, from 0 to 1.
    pub fn p(&self) -> f64 {
        self.p
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
        Ok(Trigger::Probability(Chance {
            p,
            rng: Arc::new(Mutex::new(Rng::from_seed(seed))),
        }))
    }

    /// Fires every `n`-th time.
    ///
    /// # Errors
    ///
    /// When `n` is zero.
    pub fn every_nth(n: u64) -> Result<Self, ConfigError> {
        if n == 0 {
            return Err(ConfigError::new("a fault cannot fire every 0th time"));
        }
        Ok(Trigger::EveryNth(n))
    }

    /// `n` is how many matching requests came before this one.
    fn fires(&self, n: u64, elapsed: Duration) -> bool {
        match self {
            Trigger::Always => true,
            Trigger::First(first) => n < *first,
            Trigger::EveryNth(every) => *every != 0 && (n + 1) % every == 0,
            Trigger::Probability(chance) => {
                let mut rng = chance.rng.lock().unwrap_or_else(|e| e.into_inner());
                rng.next_f64() < chance.p
            }
            Trigger::Window { from, until } => elapsed >= *from && elapsed < *until,
        }
    }
}
