//! [`RetryLayer`]: the builder of the configuration, and the tower layer that applies it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, request};
use tower_layer::Layer;

use crate::backoff::Backoff;
use crate::body::Memory;
use crate::budget::{Budget, Budgets};
use crate::config::Config;
use crate::error::{BoxError, UnexpectedStatus};
use crate::hedge::Hedge;
use crate::policy::{Action, Attempt, Policy, policy_fn};
use crate::retry_after::ServerWaits;
use crate::service::Retry;

/// A tower [`Layer`] that retries failed HTTP requests.
///
/// [`RetryLayer::new`] gives the documented defaults; every setter consumes and returns the
/// layer. Values that can be invalid (a backoff schedule, a budget, ...) are checked by their
/// own constructors, so a `RetryLayer` is always valid.
///
/// ```
/// use std::time::Duration;
/// use retryable_http::{RetryLayer, backoff::Backoff};
///
/// let layer = RetryLayer::new()
///     .max_retries(3) // 1 attempt + up to 3 retries
///     .backoff(Backoff::exponential(Duration::from_secs(1), Duration::from_secs(5))?);
/// # Ok::<(), retryable_http::error::ConfigError>(())
/// ```
///
/// # Clone
///
/// Cloning is cheap: the configuration is shared through an [`Arc`], and every service the
/// layer (or a clone of it) makes shares it.
#[derive(Clone)]
pub struct RetryLayer {
    config: Arc<Config>,
}

impl RetryLayer {
    /// Retries after the first attempt: 4, so 5 attempts in all, as go-retryablehttp's
    /// `RetryMax`.
    pub const DEFAULT_MAX_RETRIES: u32 = crate::config::DEFAULT_MAX_RETRIES;

    /// How much of a response that will be retried is read before it is dropped: 4 KiB, as
    /// go-retryablehttp's `respReadLimit`. Reading a short error body to its end lets
    /// HTTP/1.1 reuse the connection; a longer one is not worth the bandwidth.
    pub const DEFAULT_DRAIN_LIMIT: usize = crate::config::DEFAULT_DRAIN_LIMIT;

    /// How long draining a response that will be retried may take: 1 s.
    pub const DEFAULT_DRAIN_TIMEOUT: Duration = crate::config::DEFAULT_DRAIN_TIMEOUT;

    /// A layer with the defaults:
    ///
    /// | setting | default |
    /// |---|---|
    /// | [`max_retries`](Self::max_retries) | [`DEFAULT_MAX_RETRIES`](Self::DEFAULT_MAX_RETRIES) (4) |
    /// | [`backoff`](Self::backoff) | exponential, 1 s to 30 s, [bounded jitter](crate::backoff::Jitter::Bounded) |
    /// | [`server_waits`](Self::server_waits) | `Retry-After` and the rate-limit headers on any retried response, up to 60 s ([`ServerWaits::new`]) |
    /// | [`policy`](Self::policy) | [`StandardPolicy`](crate::policy::StandardPolicy), and requests that never reached the server retried whatever it says |
    /// | [`replay_limit`](Self::replay_limit) | [`DEFAULT_REPLAY_LIMIT`](crate::body::DEFAULT_REPLAY_LIMIT) (1 MiB) |
    /// | [`drain_limit`](Self::drain_limit), [`drain_timeout`](Self::drain_timeout) | [`DEFAULT_DRAIN_LIMIT`](Self::DEFAULT_DRAIN_LIMIT) (4 KiB), [`DEFAULT_DRAIN_TIMEOUT`](Self::DEFAULT_DRAIN_TIMEOUT) (1 s) |
    /// | [`budget_per_destination`](Self::budget_per_destination) | per scheme, host and port: 20 % of its last 10 s of requests, plus 10 retries/s, while fewer than about one request in five fails ([`Budget::default`]) |
    /// | [`replay_limit_total`](Self::replay_limit_total) | none |
    /// | [`attempt_timeout`](Self::attempt_timeout) | none |
    /// | [`deadline`](Self::deadline) | none |
    /// | [`attempt_header`](Self::attempt_header) | none |
    pub fn new() -> Self {
        RetryLayer {
            config: Arc::new(Config::default()),
        }
    }

    /// Makes at most `n` retries: `n + 1` attempts in all. `0` makes exactly one attempt
    /// (and keeps nothing of the request body).
    ///
    /// The default budget's throttle stops retries to a destination after about five
    /// failed attempts in a row: more than 4 retries need a budget without one
    /// ([`Budget::new`]) or [`no_budget`](Self::no_budget).
    pub fn max_retries(mut self, n: u32) -> Self {
        self.config_mut().max_retries = n;
        self
    }

    /// Sets the wait before each retry: a [`Backoff`], or an
    /// [`Exponential`](crate::backoff::Exponential) one.
    pub fn backoff(mut self, backoff: impl Into<Backoff>) -> Self {
        self.config_mut().backoff = backoff.into();
        self
    }

    /// Sets which waits a server may ask for (`Retry-After`, `RateLimit-Reset`,
    /// `X-RateLimit-Reset`), on which responses, and the longest one honoured; a response
    /// asking for longer goes to the caller at once.
    pub fn server_waits(mut self, waits: ServerWaits) -> Self {
        self.config_mut().server_waits = waits;
        self
    }

    /// Sets the policy that decides which outcomes are retried.
    ///
    /// Whatever it says, a request that provably never reached the server (connection
    /// refused, HTTP/2 stream refused or above a `GOAWAY`'s last stream, canceled before it
    /// was written: [`classify::is_unprocessed`](crate::classify::is_unprocessed)) is retried
    /// too, within the retry count and the budget: a policy written for statuses keeps the
    /// one retry that is always safe. [`policy_only`](Self::policy_only) turns that off.
    pub fn policy<P>(mut self, policy: P) -> Self
    where
        P: Policy + 'static,
    {
        self.config_mut().policy = Arc::new(policy);
        self
    }

    /// Retries the outcomes for which `predicate` returns `true` (after the backoff), instead
    /// of the [`StandardPolicy`](crate::policy::StandardPolicy) — and, like every policy, the requests that provably never
    /// reached the server, unless [`policy_only`](Self::policy_only) is set.
    ///
    /// ```
    /// use http::StatusCode;
    /// use retryable_http::RetryLayer;
    ///
    /// let layer = RetryLayer::new().retry_if(|attempt| {
    ///     attempt.status() == Some(StatusCode::SERVICE_UNAVAILABLE)
    /// });
    /// ```
    pub fn retry_if<F>(self, predicate: F) -> Self
    where
        F: Fn(&Attempt<'_>) -> bool + Send + Sync + 'static,
    {
        self.policy(policy_fn(move |attempt| {
            if predicate(attempt) {
                Action::Retry
            } else {
                Action::Stop
            }
        }))
    }

    /// Leaves every decision to the policy: a request that provably never reached the server
    /// is retried only when the policy says so.
    ///
    /// ```
    /// use retryable_http::RetryLayer;
    ///
    /// // Only 503s, and nothing else, not even a refused connection.
    /// let layer = RetryLayer::new()
    ///     .retry_if(|attempt| attempt.status() == Some(http::StatusCode::SERVICE_UNAVAILABLE))
    ///     .policy_only();
    /// ```
    pub fn policy_only(mut self) -> Self {
        self.config_mut().retry_unprocessed = false;
        self
    }

    /// Sets how many bytes of each request body are kept for replay. A body that outgrows
    /// it is still sent in full, once; it is retried only if the request carries a
    /// [`Reopen`](crate::body::Reopen). The count is of bytes actually read, never of a
    /// `size_hint` alone.
    pub fn replay_limit(mut self, bytes: usize) -> Self {
        self.config_mut().replay_limit = bytes;
        self
    }

    /// Sets how many bytes of a response that will be retried are read before it is
    /// dropped. `0` drops it unread (and so closes an HTTP/1.1 connection).
    pub fn drain_limit(mut self, bytes: usize) -> Self {
        self.config_mut().drain_limit = bytes;
        self
    }

    /// Sets how long draining a response that will be retried may take, and how long the
    /// next attempt waits for the earlier attempts' request bodies to be handed back.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.config_mut().drain_timeout = timeout;
        self
    }

    /// Cuts off every attempt that has not produced a response head after `timeout`.
    ///
    /// A cut-off attempt fails with [`AttemptTimedOut`](crate::error::AttemptTimedOut), which the
    /// [`StandardPolicy`](crate::policy::StandardPolicy) treats as "maybe processed": it is retried for idempotent requests
    /// only. hyper's client has no response timeout of its own, so without this a server
    /// that never answers holds the request forever.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.config_mut().attempt_timeout = Some(timeout);
        self
    }

    /// Bounds each request, all its attempts and waits included, to `deadline` from the
    /// moment it is called.
    ///
    /// The layer never starts a wait that would end after the deadline: it returns the last
    /// outcome instead. An attempt still in flight at the deadline is cut off, and the caller
    /// gets an [`Error`](crate::Error) whose cause is
    /// [`DeadlineExceeded`](crate::error::DeadlineExceeded), naming the attempts made.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.config_mut().deadline = Some(deadline);
        self
    }

    /// Hedges the requests the policy treats as idempotent: when no response has come within
    /// the hedge's delay, the next attempt starts while the earlier ones go on, and the
    /// first acceptable outcome wins. See [`Hedge`](crate::hedge::Hedge).
    ///
    /// Off by default: hedging adds load to cut the tail, and only the caller knows whether
    /// the tail is worth it.
    pub fn hedge(mut self, hedge: Hedge) -> Self {
        self.config_mut().hedge = Some(hedge);
        self
    }

    /// Draws the jitter of this layer's requests from `seed`, so that a run repeats exactly:
    /// a simulation, or a test on tokio's paused clock. Requests still draw apart from one
    /// another, in the order they first come to a decision after a failure; clones share
    /// the sequence. Without it, the jitter is seeded from the process's random keys.
    ///
    /// ```
    /// use retryable_http::RetryLayer;
    ///
    /// let layer = RetryLayer::new().jitter_seed(42);
    /// ```
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.config_mut().jitter_seed = Some(Arc::new(crate::rng::Seeds::new(seed)));
        self
    }

    /// Pays every request's retries from one budget, shared by this layer, its clones, the
    /// services they make, and any other layer given a clone of the same [`Budget`],
    /// whatever the request's destination.
    ///
    /// By default a layer keeps a budget per destination instead
    /// ([`budget_per_destination`](Self::budget_per_destination) with [`Budget::default`]).
    /// One budget suits a client of one host, or several layers that must share one
    /// allowance. Either way a retry the budget refuses is not made: the last outcome goes
    /// to the caller.
    ///
    /// ```
    /// use retryable_http::{RetryLayer, budget::Budget};
    ///
    /// // One budget for two clients.
    /// let budget = Budget::default();
    /// let first = RetryLayer::new().budget(budget.clone());
    /// let second = RetryLayer::new().budget(budget);
    /// ```
    pub fn budget(mut self, budget: Budget) -> Self {
        self.config_mut().budget = Some(Budgets::Shared(budget));
        self
    }

    /// Pays each destination's retries from a budget of its own, with `budget`'s settings:
    /// what a layer does by default, with [`Budget::default`].
    ///
    /// A destination is a request's scheme, host and port, as Envoy budgets per cluster,
    /// gRPC throttles per server and AWS's SDKs per retry partition: one host's outage then
    /// spends none of another host's retries, and a healthy host's traffic buys the failing
    /// one none. Against one host that fails everything, retries add at most about 20 % to
    /// that host's load, and [`Budget::default`]'s throttle stops them after a few failed
    /// attempts.
    ///
    /// At most 1024 destinations are kept; past that, those idle for a whole window, with a
    /// full throttle if any, are forgotten (they held only their reserve and a full
    /// throttle, which a new budget starts with), unless a thread still remembers them;
    /// while none can be, new destinations share one more budget. A kept destination holds
    /// about 384 bytes. Each thread remembers the budget
    /// of the last destination it sent to: a request to the same host as the one before
    /// finds its budget without a lock.
    ///
    /// ```
    /// use retryable_http::{RetryLayer, budget::Budget};
    ///
    /// let layer = RetryLayer::new().budget_per_destination(Budget::default());
    /// ```
    pub fn budget_per_destination(mut self, budget: Budget) -> Self {
        self.config_mut().budget = Some(Budgets::per_origin(budget));
        self
    }

    /// Pays retries from a budget per key, with `budget`'s settings: `key` names a
    /// request's key (a tenant, a region), and the requests it names none for share one
    /// budget. Kept as [`budget_per_destination`](Self::budget_per_destination) keeps them.
    ///
    /// ```
    /// use retryable_http::{RetryLayer, budget::Budget};
    ///
    /// // A budget per tenant.
    /// let layer = RetryLayer::new().budget_per(Budget::default(), |head| {
    ///     let tenant = head.headers.get("x-tenant")?;
    ///     Some(tenant.to_str().ok()?.to_owned())
    /// });
    /// ```
    pub fn budget_per<F>(mut self, budget: Budget, key: F) -> Self
    where
        F: Fn(&request::Parts) -> Option<String> + Send + Sync + 'static,
    {
        self.config_mut().budget = Some(Budgets::keyed(budget, Some(Arc::new(key))));
        self
    }

    /// Sends each retry on a new connection: the connection of the attempt it follows is
    /// not reused, by this request or any other. Behind a load balancer that spreads
    /// connections over servers, the retry can then reach another server than the one that
    /// failed, as AWS's SDKs do by default ("reconnect on transient error").
    ///
    /// It works with hyper-util's client (its `capture_connection`, with the `hyper`
    /// feature), and sequential retries; a hedge already goes out on a connection of its
    /// own. Off by default: capturing each attempt's connection costs six allocations
    /// (about 650 bytes) a request, where a request that succeeds at once otherwise
    /// allocates nothing of the layer's, and hyper-util already drops a connection that
    /// failed at the transport;
    /// what this adds is a new connection after a failed *response*, such as a 503 from a
    /// server behind the load balancer.
    #[cfg(feature = "hyper")]
    #[cfg_attr(docsrs, doc(cfg(feature = "hyper")))]
    pub fn reconnect_on_retry(mut self) -> Self {
        self.config_mut().reconnect = true;
        self
    }

    /// Records retry metrics through the OpenTelemetry metrics API, to a meter of
    /// `provider`'s named `retryable-http`:
    ///
    /// | instrument | kind | attributes |
    /// |---|---|---|
    /// | `http.client.request.duration` (s) | histogram, one value per attempt, as OpenTelemetry defines it | `http.request.method`, `server.address`, `server.port`, `url.scheme`, `http.response.status_code`, `error.type` |
    /// | `retryable_http.upstream_rq_retry` | counter: retries made (Envoy's name), hedges apart | `http.request.method`, `server.address`, `retryable_http.reason` (`5xx`, `429`, `never_sent`, a gRPC status…) |
    /// | `retryable_http.upstream_rq_retry_success` | counter: retried requests whose last outcome the policy accepted | `http.request.method`, `server.address` |
    /// | `retryable_http.upstream_rq_retry_limit_exceeded` | counter: requests whose retries ran out | the same |
    /// | `retryable_http.upstream_rq_retry_overflow` | counter: retries the budget or gRPC's throttle refused | the same, and `retryable_http.reason` (`budget`, `throttled`) |
    /// | `retryable_http.call.retries`, `…transparent_retries`, `…hedges` | histograms, per request that took more than one attempt (gRFC A96's, a 0 is not recorded) | `http.request.method`, `server.address` |
    /// | `retryable_http.call.retry_delay` (s) | histogram: the time a retried request spent with no attempt in flight | the same |
    /// | `grpc.client.call.retries`, `…transparent_retries`, `…hedges`, `…retry_delay` | the same, for gRPC calls, with gRFC A96's names | `grpc.method`, `grpc.target` |
    ///
    /// No attribute carries a path or a query: an HTTP request's are the method and the
    /// host. A gRPC call's method is its service's own, as A96 has it.
    #[cfg(feature = "opentelemetry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "opentelemetry")))]
    pub fn metrics<P>(mut self, provider: &P) -> Self
    where
        P: opentelemetry::metrics::MeterProvider + ?Sized,
    {
        let scope = opentelemetry::InstrumentationScope::builder(env!("CARGO_PKG_NAME"))
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let meter = provider.meter_with_scope(scope);
        self.config_mut().metrics = Some(Arc::new(crate::telemetry::Metrics::new(&meter)));
        self
    }

    /// Also pays every retry from `cap`, over the layer's other budget: a retry is made
    /// only when both can pay for it, and every first attempt deposits into both. With
    /// [`budget_per_destination`](Self::budget_per_destination), it bounds what all the
    /// destinations' retries add together, as a budget shared by every layer of a process
    /// would.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retryable_http::{RetryLayer, budget::Budget};
    ///
    /// // 20 % per host, and at most 10 % over all of them, plus 5 retries a second.
    /// let layer = RetryLayer::new()
    ///     .budget_per_destination(Budget::default())
    ///     .budget_cap(Budget::new(Duration::from_secs(10), 5, 0.1)?);
    /// # Ok::<(), retryable_http::error::ConfigError>(())
    /// ```
    pub fn budget_cap(mut self, cap: Budget) -> Self {
        self.config_mut().budget_cap = Some(cap);
        self
    }

    /// Switches the retry budget off: every retry the policy asks for is made.
    pub fn no_budget(mut self) -> Self {
        let config = self.config_mut();
        config.budget = None;
        config.budget_cap = None;
        self
    }

    /// Caps the replay bytes held by all the in-flight requests of this layer (and its
    /// clones and services) together. A request whose body does not fit is still sent, in
    /// full; it just cannot be replayed from memory.
    ///
    /// Each call sets a new, empty account.
    pub fn replay_limit_total(mut self, bytes: usize) -> Self {
        self.config_mut().memory = Some(Arc::new(Memory::new(bytes)));
        self
    }

    /// The replay bytes held now by the in-flight requests of this layer, when
    /// [`replay_limit_total`](Self::replay_limit_total) is set: a gauge for metrics.
    pub fn replay_bytes_held(&self) -> Option<usize> {
        self.config.memory.as_ref().map(|m| m.held())
    }

    /// Sends the attempt number (1, 2, ...) in a request header with this name, like
    /// Envoy's `x-envoy-attempt-count`. Off by default: it changes what the server sees.
    pub fn attempt_header(mut self, name: HeaderName) -> Self {
        self.config_mut().attempt_header = Some(name);
        self
    }

    /// Calls `hook` before every attempt, the first included, with the head about to be
    /// sent and the attempt's number. go-retryablehttp's `RequestLogHook`.
    pub fn on_attempt<F>(mut self, hook: F) -> Self
    where
        F: Fn(&Attempt<'_>) + Send + Sync + 'static,
    {
        self.config_mut().hooks.on_attempt = Some(Arc::new(hook));
        self
    }

    /// Calls `hook` on every response head, before the policy looks at it. The body is not
    /// available: it goes to the caller, or is drained. go-retryablehttp's
    /// `ResponseLogHook`.
    pub fn on_response<F>(mut self, hook: F) -> Self
    where
        F: Fn(&Attempt<'_>) + Send + Sync + 'static,
    {
        self.config_mut().hooks.on_response = Some(Arc::new(hook));
        self
    }

    /// Calls `hook` before every retry — never before the first attempt — with `&mut`
    /// access to the request head every attempt starts from, and the attempt that is being
    /// retried (its outcome, its number; its head as it was). Its changes are seen by that
    /// retry and the ones after it: refresh a token, sign the request again, add a header.
    /// go-retryablehttp's `PrepareRetry`.
    ///
    /// An error from the hook stops the request: the caller gets it as the cause of an
    /// [`Error`](crate::Error).
    pub fn prepare_retry<F>(mut self, hook: F) -> Self
    where
        F: Fn(&mut request::Parts, &Attempt<'_>) -> Result<(), BoxError> + Send + Sync + 'static,
    {
        self.config_mut().hooks.prepare_retry = Some(Arc::new(hook));
        self
    }

    /// Decides what the caller gets when the layer gives up on a response it wanted to
    /// retry (no retries left, budget spent, deadline, ...; see
    /// [`Attempt::stop_reason`]): `Ok(())` returns the response as it is — the default, as
    /// go-retryablehttp's `PassthroughErrorHandler` — and an error fails the request with it
    /// as the cause. go-retryablehttp's `ErrorHandler`.
    ///
    /// Transport errors are errors already; responses the policy does not retry (a 200, a
    /// 404) are never given to this hook.
    pub fn when_exhausted<F>(mut self, hook: F) -> Self
    where
        F: Fn(&Attempt<'_>) -> Result<(), BoxError> + Send + Sync + 'static,
    {
        self.config_mut().hooks.when_exhausted = Some(Arc::new(hook));
        self
    }

    /// Fails a request whose last response the layer gave up on, as go-retryablehttp does
    /// by default: the caller gets an [`Error`](crate::Error) whose cause is
    /// [`UnexpectedStatus`] (`... giving up after 4 attempt(s): unexpected HTTP status 502
    /// Bad Gateway`), and whose [`status`](crate::Error::status) is the last status.
    pub fn fail_when_exhausted(self) -> Self {
        self.when_exhausted(|attempt| match attempt.status() {
            Some(status) => Err(UnexpectedStatus::new(status).into()),
            None => Ok(()),
        })
    }

    /// Retries gRPC calls by gRPC's own rules ([gRFC A6]), as `config` sets them for each
    /// method: the requests whose `content-type` is `application/grpc` (or
    /// `application/grpc+proto`, ...). Other requests keep the layer's HTTP rules.
    ///
    /// For a gRPC call, the service config takes the place of the layer's policy, retry
    /// count, backoff and budget:
    ///
    /// - its status comes from the response head (`grpc-status` of a Trailers-Only
    ///   response, or an HTTP error mapped as gRPC maps it); a call whose Response-Headers
    ///   arrived is committed, and goes to the caller;
    /// - its method's `retryPolicy` says how many attempts (at most 5), after which
    ///   backoff (`min(initial × multiplier^n, max) × U(0.8, 1.2)`), for which statuses;
    /// - the server's `grpc-retry-pushback-ms` sets the wait, and restarts the backoff, or
    ///   stops the retries when negative or malformed; a wait above
    ///   [`ServerWaits::max`] also stops them;
    /// - `retryThrottling` keeps one token bucket per server (authority);
    /// - its `grpc-timeout`, its method's `timeout` and the layer's or request's
    ///   [deadline](Self::deadline), the shortest, bound all its attempts together; each
    ///   retry carries the time left in `grpc-timeout`, and `grpc-previous-rpc-attempts`;
    /// - running out of time is an [`Error`](crate::Error) whose cause is
    ///   [`DeadlineExceeded`](crate::error::DeadlineExceeded), which gRPC clients report
    ///   as `DEADLINE_EXCEEDED`;
    /// - a request the server's application never saw (refused stream, above a `GOAWAY`,
    ///   refused connection) is retried once at once, transparently: not counted, not
    ///   throttled.
    ///
    /// A [`RetryOverride`](crate::RetryOverride)'s deadline and attempt timeout apply to a
    /// gRPC call, and its retry count caps the method's; its policy does not apply. gRPC
    /// calls are not hedged by [`hedge`](Self::hedge).
    ///
    /// ```
    /// use retryable_http::RetryLayer;
    /// use retryable_http::grpc::ServiceConfig;
    ///
    /// let config = ServiceConfig::from_json(r#"{
    ///   "methodConfig": [{
    ///     "name": [{"service": "echo.Echo"}],
    ///     "retryPolicy": {
    ///       "maxAttempts": 3, "initialBackoff": "0.1s", "maxBackoff": "1s",
    ///       "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]
    ///     }
    ///   }],
    ///   "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}
    /// }"#)?;
    /// let layer = RetryLayer::new().grpc(config);
    /// # Ok::<(), retryable_http::error::ConfigError>(())
    /// ```
    ///
    /// [gRFC A6]: https://github.com/grpc/proposal/blob/master/A6-client-retries.md
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    pub fn grpc(mut self, config: crate::a6::ServiceConfig) -> Self {
        self.config_mut().grpc = Some(Arc::new(crate::a6::Rules::new(config)));
        self
    }

    /// This layer with throttles of its own for gRPC calls, all full: one set per wrapped
    /// channel, as each gRPC channel has.
    #[cfg(feature = "grpc")]
    pub(crate) fn with_fresh_throttles(&self) -> Self {
        let mut layer = self.clone();
        if let Some(rules) = &self.config.grpc {
            layer.config_mut().grpc = Some(Arc::new(rules.fresh()));
        }
        layer
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }
}

impl Default for RetryLayer {
    fn default() -> Self {
        RetryLayer::new()
    }
}

impl<S: Clone> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry::with_config(inner, self.config.clone())
    }
}

impl fmt::Debug for RetryLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.config, f)
    }
}

#[cfg(test)]
mod tests;
