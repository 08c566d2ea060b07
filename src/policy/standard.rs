//! The default policy: the statuses and errors go-retryablehttp retries, made safe for
//! requests that are not idempotent.

use http::{HeaderMap, HeaderName, Method, StatusCode};

use super::{Action, Attempt, Outcome, Policy};
use crate::classify::{ErrorClass, classify};

/// The `Idempotency-Key` request header (IETF httpapi draft): a request carrying it may be
/// sent more than once, whatever its method.
pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The `X-Idempotency-Key` request header, the older spelling of [`IDEMPOTENCY_KEY`] that
/// Go's `net/http` honours too.
pub static X_IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("x-idempotency-key");

/// The default retry policy.
///
/// | outcome | idempotent request | other requests (`POST`, `PATCH`, ...) |
/// |---|---|---|
/// | `429`, `503` | retry | retry: the server refused the request without processing it |
/// | other `5xx` except `501` | retry | stop: the server may have done the work |
/// | `501` and everything below `500` except `429` | stop | stop |
/// | error, [never sent](ErrorClass::NeverSent) | retry | retry |
/// | error, [maybe processed](ErrorClass::MaybeProcessed) | retry | stop |
/// | error, [permanent](ErrorClass::Permanent) | stop | stop |
///
/// The statuses are go-retryablehttp's `DefaultRetryPolicy`. A request is idempotent when
/// its method is (RFC 9110 §9.2.2: `GET`, `HEAD`, `OPTIONS`, `TRACE`, `PUT`, `DELETE`) or
/// when it carries an [`Idempotency-Key`](IDEMPOTENCY_KEY) (or
/// [`X-Idempotency-Key`](X_IDEMPOTENCY_KEY)) header. The rule for the others
/// is the point of the seed experiment: a proxy that lets the upstream process a `POST` and
/// then answers 502 must not make the client send that `POST` again.
///
/// [`retry_all_methods`](StandardPolicy::retry_all_methods) switches to go-retryablehttp's
/// behaviour, which treats every method as idempotent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StandardPolicy {
    all_methods: bool,
}

impl StandardPolicy {
    /// The policy described above.
    pub fn new() -> Self {
        StandardPolicy::default()
    }

    /// Treats every request as idempotent, as go-retryablehttp does: a `POST` that got a 502
    /// or a connection reset is sent again. Only for servers known to deduplicate.
    pub fn retry_all_methods(mut self) -> Self {
        self.all_methods = true;
        self
    }

    /// Whether `status` is one that is retried for idempotent requests: 429, and every 5xx
    /// but 501 Not Implemented.
    pub fn is_retryable_status(status: StatusCode) -> bool {
        status == StatusCode::TOO_MANY_REQUESTS
            || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED)
    }
}

impl Policy for StandardPolicy {
    fn decide(&self, attempt: &Attempt<'_>) -> Action {
        let idempotent = || self.treats_as_idempotent(attempt.request());
        let retry = match attempt.outcome() {
            None => false,
            Some(Outcome::Response(head)) => {
                let status = head.status;
                StandardPolicy::is_retryable_status(status)
                    && (status == StatusCode::TOO_MANY_REQUESTS
                        || status == StatusCode::SERVICE_UNAVAILABLE
                        || idempotent())
            }
            Some(Outcome::Error(error)) => match classify(error) {
                ErrorClass::NeverSent => true,
                ErrorClass::MaybeProcessed => idempotent(),
                _ => false,
            },
        };
        if retry { Action::Retry } else { Action::Stop }
    }

    /// `true`: only 429 and 5xx are ever retried.
    fn stops_on_success(&self) -> bool {
        true
    }

    fn treats_as_idempotent(&self, request: &http::request::Parts) -> bool {
        self.all_methods || is_idempotent(&request.method, &request.headers)
    }
}

/// Whether a request may be sent more than once: its method is idempotent (RFC 9110
/// §9.2.2) or it carries an [`Idempotency-Key`](IDEMPOTENCY_KEY) or
/// [`X-Idempotency-Key`](X_IDEMPOTENCY_KEY) header.
pub fn is_idempotent(method: &Method, headers: &HeaderMap) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    ) || headers.contains_key(&IDEMPOTENCY_KEY)
        || headers.contains_key(&X_IDEMPOTENCY_KEY)
}
