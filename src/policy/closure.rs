//! Closures as policies.

use std::fmt;

use super::{Action, Attempt, Policy};

/// Makes a [`Policy`] from a closure.
///
/// ```
/// use http::StatusCode;
/// use retryable_http::policy::{Action, policy_fn};
///
/// // Retry 503 only, whatever the method.
/// let policy = policy_fn(|attempt| match attempt.status() {
///     Some(StatusCode::SERVICE_UNAVAILABLE) => Action::Retry,
///     _ => Action::Stop,
/// });
/// ```
pub fn policy_fn<F>(f: F) -> PolicyFn<F>
where
    F: Fn(&Attempt<'_>) -> Action + Send + Sync,
{
    PolicyFn { f }
}

/// A [`Policy`] made from a closure by [`policy_fn`].
#[derive(Clone, Copy)]
pub struct PolicyFn<F> {
    f: F,
}

impl<F> Policy for PolicyFn<F>
where
    F: Fn(&Attempt<'_>) -> Action + Send + Sync,
{
    fn decide(&self, attempt: &Attempt<'_>) -> Action {
        (self.f)(attempt)
    }
}

impl<F> fmt::Debug for PolicyFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyFn").finish_non_exhaustive()
    }
}
