//! What the tests and the loom models of the budgets per destination share.

use std::time::Duration;

use http::request;
use tokio::time::Instant;

use super::{Budget, Budgets};

/// The head of a GET of `uri`.
pub(super) fn to(uri: &str) -> request::Parts {
    http::Request::get(uri).body(()).unwrap().into_parts().0
}

/// A budget of 2 retries per destination: no deposits count, 1 retry/s for 2 s.
pub(super) fn two_each() -> Budget {
    Budget::new(Duration::from_secs(2), 1, 0.0).unwrap()
}

/// Withdraws `head`'s retries at `now` until its budget refuses; how many it paid.
pub(super) fn drain(budgets: &Budgets, head: &request::Parts, now: Instant) -> u32 {
    let mut paid = 0;
    while budgets.withdraw(head, now) {
        paid += 1;
    }
    paid
}
