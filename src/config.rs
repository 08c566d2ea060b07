//! The configuration a [`RetryLayer`](crate::RetryLayer) builds, and its services share.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use http::HeaderName;

use crate::backoff::Backoff;
use crate::body::{DEFAULT_REPLAY_LIMIT, Memory};
use crate::budget::{Budget, Budgets, Spend};
use crate::hedge::Hedge;
use crate::hooks::Hooks;
use crate::policy::{Policy, StandardPolicy};
use crate::retry_after::ServerWaits;
use crate::telemetry::Metrics;

/// Retries after the first attempt: 4, so 5 attempts in all, as go-retryablehttp's
/// `RetryMax`.
pub(crate) const DEFAULT_MAX_RETRIES: u32 = 4;

/// How much of a response that will be retried is read before it is dropped: 4 KiB, as
/// go-retryablehttp's `respReadLimit`. Reading a short error body to its end lets HTTP/1.1
/// reuse the connection; a longer one is not worth the bandwidth.
pub(crate) const DEFAULT_DRAIN_LIMIT: usize = 4096;

/// How long draining a response that will be retried may take: 1 s.
pub(crate) const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Everything a layer was told. Set only by the layer's builder; read by the services and
/// their futures, through the methods below where there is more to it than a field.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) max_retries: u32,
    pub(crate) backoff: Backoff,
    pub(crate) server_waits: ServerWaits,
    pub(crate) replay_limit: usize,
    pub(crate) drain_limit: usize,
    pub(crate) drain_timeout: Duration,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) deadline: Option<Duration>,
    pub(crate) budget: Option<Budgets>,
    /// A budget every retry must also be paid from, over the others.
    pub(crate) budget_cap: Option<Budget>,
    pub(crate) memory: Option<Arc<Memory>>,
    pub(crate) policy: Arc<dyn Policy>,
    /// Whether requests that provably never reached the server are retried whatever the
    /// policy says.
    pub(crate) retry_unprocessed: bool,
    pub(crate) attempt_header: Option<HeaderName>,
    pub(crate) hooks: Hooks,
    pub(crate) hedge: Option<Hedge>,
    /// Where the jitter of requests is drawn from, when the user gave a seed.
    pub(crate) jitter_seed: Option<Arc<crate::rng::Seeds>>,
    /// gRPC's retry rules, for the gRPC calls among the requests.
    #[cfg(feature = "grpc")]
    pub(crate) grpc: Option<Arc<crate::a6::Rules>>,
    /// Whether a retry may not reuse the connection of the attempt it follows.
    #[cfg(feature = "hyper")]
    pub(crate) reconnect: bool,
    /// The retry metrics, when the layer was given a meter provider.
    #[cfg(feature = "opentelemetry")]
    pub(crate) metrics: Option<Arc<Metrics>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_retries: DEFAULT_MAX_RETRIES,
            backoff: Backoff::default(),
            server_waits: ServerWaits::default(),
            replay_limit: DEFAULT_REPLAY_LIMIT,
            drain_limit: DEFAULT_DRAIN_LIMIT,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            attempt_timeout: None,
            deadline: None,
            budget: Some(Budgets::per_origin(Budget::default())),
            budget_cap: None,
            memory: None,
            policy: Arc::new(StandardPolicy::new()),
            retry_unprocessed: true,
            attempt_header: None,
            hooks: Hooks::default(),
            hedge: None,
            jitter_seed: None,
            #[cfg(feature = "grpc")]
            grpc: None,
            #[cfg(feature = "hyper")]
            reconnect: false,
            #[cfg(feature = "opentelemetry")]
            metrics: None,
        }
    }
}

impl Config {
    /// Pays for an attempt of the request `head` after its first, for `spend`, from the
    /// budget and the cap over it; `false` when either refuses, and then neither is paid.
    pub(crate) fn pay(&self, head: &http::request::Parts, now: Instant, spend: Spend) -> bool {
        let paid = (self.budget.as_ref()).is_none_or(|budget| budget.spend(head, now, spend));
        let Some(cap) = &self.budget_cap else {
            return paid;
        };
        if !paid {
            return false;
        }
        if cap.spend_at(now, spend) {
            return true;
        }
        // The cap refuses: the retry is not made, and its own budget gets it back.
        if let Some(budget) = &self.budget {
            budget.refund(head, now);
        }
        false
    }

    /// The retry metrics, if the layer records them.
    #[inline]
    pub(crate) fn metrics(&self) -> Option<&Metrics> {
        #[cfg(feature = "opentelemetry")]
        return self.metrics.as_deref();
        #[cfg(not(feature = "opentelemetry"))]
        None
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("RetryLayer");
        f.field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .field("server_waits", &self.server_waits)
            .field("replay_limit", &self.replay_limit)
            .field("drain_limit", &self.drain_limit)
            .field("drain_timeout", &self.drain_timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("deadline", &self.deadline)
            .field("budget", &self.budget)
            .field("budget_cap", &self.budget_cap)
            .field("replay_limit_total", &self.memory)
            .field("retry_unprocessed", &self.retry_unprocessed)
            .field("attempt_header", &self.attempt_header)
            .field("hooks", &self.hooks)
            .field("hedge", &self.hedge)
            .field("jitter_seeded", &self.jitter_seed.is_some());
        #[cfg(feature = "grpc")]
        f.field("grpc", &self.grpc);
        #[cfg(feature = "hyper")]
        f.field("reconnect_on_retry", &self.reconnect);
        #[cfg(feature = "opentelemetry")]
        f.field("metrics", &self.metrics.is_some());
        f.finish_non_exhaustive()
    }
}

/// What every request of one [`Retry`](crate::Retry) shares: the layer's configuration, and
/// the service its retries are made from.
pub(crate) struct Setup<S> {
    pub(crate) config: Arc<Config>,
    /// A clone of the wrapped service, never called itself: each request that is retried
    /// clones it once. Behind a lock only so that the setup is `Sync` for any `Send`
    /// service; it is taken only to clone, on a retry.
    template: Mutex<S>,
}

impl<S> Setup<S> {
    pub(crate) fn new(config: Arc<Config>, template: S) -> Self {
        Setup {
            config,
            template: Mutex::new(template),
        }
    }

    /// A new clone of the wrapped service, for a request's retries.
    pub(crate) fn service(&self) -> S
    where
        S: Clone,
    {
        // NOTE: a clone that panicked leaves the template as it was: the lock's poison
        // says nothing about it.
        let template = self.template.lock().unwrap_or_else(|e| e.into_inner());
        template.clone()
    }
}

/// The instant `delay` after `now`; about 30 years from now when that does not fit.
pub(crate) fn after(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay)
        .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 24 * 60 * 60))
}

#[cfg(test)]
mod tests;
