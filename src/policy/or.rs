//! [`Or`]: two policies, asked in turn.

use http::request;

use super::{Action, Attempt, Policy};

/// Two policies, the second asked when the first says [`Action::Stop`]: see [`Policy::or`].
#[derive(Clone, Debug)]
pub struct Or<A, B> {
    pub(super) first: A,
    pub(super) second: B,
}

impl<A: Policy, B: Policy> Policy for Or<A, B> {
    fn decide(&self, attempt: &Attempt<'_>) -> Action {
        match self.first.decide(attempt) {
            Action::Stop => self.second.decide(attempt),
            action => action,
        }
    }

    fn stops_on_success(&self) -> bool {
        self.first.stops_on_success() && self.second.stops_on_success()
    }

    fn treats_as_idempotent(&self, request: &request::Parts) -> bool {
        self.first.treats_as_idempotent(request) || self.second.treats_as_idempotent(request)
    }
}
