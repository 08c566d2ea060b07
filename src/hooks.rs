//! The hooks a layer runs: see the crate documentation's "Hooks" section.

use std::fmt;
use std::sync::Arc;

use http::request;

use crate::error::BoxError;
use crate::policy::Attempt;

pub(crate) type OnAttempt = Arc<dyn Fn(&Attempt<'_>) + Send + Sync>;
pub(crate) type OnResponse = Arc<dyn Fn(&Attempt<'_>) + Send + Sync>;
pub(crate) type PrepareRetry =
    Arc<dyn Fn(&mut request::Parts, &Attempt<'_>) -> Result<(), BoxError> + Send + Sync>;
pub(crate) type WhenExhausted = Arc<dyn Fn(&Attempt<'_>) -> Result<(), BoxError> + Send + Sync>;

/// The hooks of a layer; all off by default.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) on_attempt: Option<OnAttempt>,
    pub(crate) on_response: Option<OnResponse>,
    pub(crate) prepare_retry: Option<PrepareRetry>,
    pub(crate) when_exhausted: Option<WhenExhausted>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("on_attempt", &self.on_attempt.is_some())
            .field("on_response", &self.on_response.is_some())
            .field("prepare_retry", &self.prepare_retry.is_some())
            .field("when_exhausted", &self.when_exhausted.is_some())
            .finish()
    }
}
