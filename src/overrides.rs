//! [`RetryOverride`]: settings for one request, in place of the layer's.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::policy::Policy;

/// Settings for one request that take the place of the layer's: put it in the request's
/// extensions. What it does not set comes from the layer.
///
/// One client serves a whole program, but requests differ: a health check must never be
/// retried, a payment may be retried once, a batch import may wait longer.
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use retryable_http::RetryOverride;
///
/// // Never retried, whatever the layer says.
/// let mut health = http::Request::get("http://api.example/health").body(Full::new(Bytes::new()))?;
/// health.extensions_mut().insert(RetryOverride::never());
///
/// // At most one retry, and done within 2 s.
/// let mut payment = http::Request::post("http://api.example/payments")
///     .header("idempotency-key", "pay-7")
///     .body(Full::new(Bytes::from("{}")))?;
/// payment
///     .extensions_mut()
///     .insert(RetryOverride::new().max_retries(1).deadline(Duration::from_secs(2)));
/// # Ok::<(), http::Error>(())
/// ```
///
/// The layer takes the extension out of the request: the inner service does not see it.
///
/// # Clone
///
/// Cloning is cheap: a policy is shared through an [`Arc`].
#[derive(Clone, Default)]
pub struct RetryOverride {
    pub(crate) max_retries: Option<u32>,
    pub(crate) deadline: Option<Duration>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) policy: Option<Arc<dyn Policy>>,
    pub(crate) resume: Option<bool>,
}

impl RetryOverride {
    /// Overrides nothing yet.
    pub fn new() -> Self {
        RetryOverride::default()
    }

    /// Never retries the request: one attempt, and nothing of its body kept.
    pub fn never() -> Self {
        RetryOverride::new().max_retries(0)
    }

    /// Makes at most `n` retries for this request: `n + 1` attempts in all.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = Some(n);
        self
    }

    /// Bounds this request, all its attempts and waits included, to `deadline` from the
    /// moment it is called, in place of the layer's
    /// [`deadline`](crate::RetryLayer::deadline).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Cuts off each attempt of this request that has no response head after `timeout`, in
    /// place of the layer's [`attempt_timeout`](crate::RetryLayer::attempt_timeout).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// Decides this request's retries with `policy`, in place of the layer's
    /// [`policy`](crate::RetryLayer::policy). Requests that provably never reached the server
    /// are still retried, unless the layer is [`policy_only`](crate::RetryLayer::policy_only).
    pub fn policy<P>(mut self, policy: P) -> Self
    where
        P: Policy + 'static,
    {
        self.policy = Some(Arc::new(policy));
        self
    }

    /// Resumes this request's response body where it broke (`true`), or not (`false`), in
    /// place of what the layer does: see [`resume`](crate::resume). It applies under a
    /// [`ResumeLayer`](crate::resume::ResumeLayer) only.
    pub fn resume(mut self, resume: bool) -> Self {
        self.resume = Some(resume);
        self
    }
}

impl fmt::Debug for RetryOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryOverride")
            .field("max_retries", &self.max_retries)
            .field("deadline", &self.deadline)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("policy", &self.policy.is_some())
            .field("resume", &self.resume)
            .finish()
    }
}

#[cfg(test)]
mod tests;
