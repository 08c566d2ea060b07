//! A gRPC call as the layer retries it.
//!
//! [`Rules`] is what a layer set up with [`RetryLayer::grpc`](crate::RetryLayer::grpc)
//! shares: the service config, and one [`Throttle`] per server. [`Call`] is one call's
//! state: its method's retry policy, its server's throttle, and the retries it made. What
//! follows each attempt is decided in `decide/grpc.rs`.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, request};

use super::{HedgingPolicy, Outcome as Status, RetryPolicy, ServiceConfig, Throttle};
use crate::authority::{PerAuthority, authority_of};
use crate::grpc_code::Code;

/// `grpc-previous-rpc-attempts`: the retries before this attempt, on every attempt but the
/// first.
pub(crate) const PREVIOUS_ATTEMPTS: HeaderName =
    HeaderName::from_static("grpc-previous-rpc-attempts");

/// `grpc-timeout`: the time the call has left.
pub(crate) const TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// What every gRPC call through one layer shares.
pub(crate) struct Rules {
    config: ServiceConfig,
    /// One throttle per server, when the config throttles retries.
    throttles: Option<PerAuthority<Throttle>>,
}

impl Rules {
    pub(crate) fn new(config: ServiceConfig) -> Self {
        let throttles = config.throttling().map(|_| PerAuthority::new());
        Rules { config, throttles }
    }

    /// The call `head` starts, if it is a gRPC call (`content-type: application/grpc`,
    /// or `application/grpc+proto` and the like); `max_retries` caps the retries its
    /// method's policy allows.
    pub(crate) fn call(&self, head: &request::Parts, max_retries: u32) -> Option<Call> {
        if !is_grpc(head) {
            return None;
        }
        let method = self.config.method(head.uri.path());
        let policies = method.filter(|_| max_retries > 0);
        let retry = policies.and_then(|m| m.retry_policy()).cloned();
        let hedging = policies.and_then(|m| m.hedging_policy()).cloned();
        let max_attempts = match (&retry, &hedging) {
            (Some(retry), _) => retry.max_attempts(),
            (_, Some(hedging)) => hedging.max_attempts(),
            (None, None) => 1,
        };
        let max_counted = (max_attempts - 1).min(max_retries);
        let throttle = match (&self.throttles, self.config.throttling()) {
            (Some(throttles), Some(throttling)) if max_counted > 0 => {
                Some(throttles.get(authority_of(head).as_ref(), || throttling.throttle()))
            }
            _ => None,
        };
        let sent = head.headers.get(TIMEOUT).and_then(super::parse_timeout);
        let timeout = match (sent, method.and_then(|m| m.timeout())) {
            (Some(sent), Some(method)) => Some(sent.min(method)),
            (sent, method) => sent.or(method),
        };
        Some(Call {
            retry,
            hedging,
            max_counted,
            throttle,
            timeout,
            sent,
            retries: 0,
            since_pushback: 0,
            transparent: false,
        })
    }
}

impl Rules {
    /// The same rules with throttles of their own, all full.
    pub(crate) fn fresh(&self) -> Self {
        Rules::new(self.config.clone())
    }
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grpc")
            .field("config", &self.config)
            .field("throttles", &self.throttles)
            .finish()
    }
}

/// Whether `head` is a gRPC request.
fn is_grpc(head: &request::Parts) -> bool {
    head.headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|value| {
            let value = value.as_bytes();
            value.starts_with(b"application/grpc")
                && matches!(value.get(16), None | Some(b'+' | b';'))
        })
}

/// One gRPC call's retry state.
#[derive(Debug)]
pub(crate) struct Call {
    /// The method's retry policy; `None` when it has none, and the call is retried only
    /// transparently.
    pub(crate) retry: Option<RetryPolicy>,
    /// The method's hedging policy, if it has one instead.
    pub(crate) hedging: Option<HedgingPolicy>,
    /// The retries the policy allows: `maxAttempts − 1`, or fewer if the request says so.
    pub(crate) max_counted: u32,
    /// The server's throttle, when the config throttles retries and the method has a retry
    /// or hedging policy (a method without one neither spends nor refills it, as in C-core).
    pub(crate) throttle: Option<Arc<Throttle>>,
    /// How long the call may take: the shorter of its `grpc-timeout` and its method's
    /// `timeout`.
    pub(crate) timeout: Option<Duration>,
    /// The `grpc-timeout` the caller sent.
    pub(crate) sent: Option<Duration>,
    /// The retries made, transparent ones not counted.
    pub(crate) retries: u32,
    /// The retries since the last pushback, which restarts the backoff.
    pub(crate) since_pushback: u32,
    /// Whether the call was retried transparently: once per call, as C-core does.
    pub(crate) transparent: bool,
}

impl Call {
    /// How long the call may take, by its own `grpc-timeout` and its method's `timeout`.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The most attempts after the first the call may make: the counted retries, and one
    /// transparent retry.
    pub(crate) fn max_retries(&self) -> u32 {
        self.max_counted + 1
    }

    /// The `grpc-timeout` the caller sent.
    pub(crate) fn sent(&self) -> Option<Duration> {
        self.sent
    }

    /// The hedging policy, when the call is hedged.
    pub(crate) fn hedging(&self) -> Option<&HedgingPolicy> {
        self.hedging.as_ref()
    }

    /// Whether the server's throttle allows another attempt now: always, when the config
    /// does not throttle.
    pub(crate) fn allows_another(&self) -> bool {
        self.throttle.as_ref().is_none_or(|t| t.allows())
    }

    /// Sets the metadata of attempt `number`: `grpc-previous-rpc-attempts` after a retry
    /// or a hedge, and `grpc-timeout` to the time `left`, if given.
    pub(crate) fn stamp(&self, head: &mut request::Parts, number: u32, left: Option<Duration>) {
        // A hedge follows every attempt before it; a retry, the counted ones.
        let previous = match self.hedging {
            Some(_) => number - 1,
            None => self.retries,
        };
        if previous > 0 {
            head.headers
                .insert(PREVIOUS_ATTEMPTS, HeaderValue::from(previous));
        }
        if let Some(left) = left {
            head.headers.insert(TIMEOUT, super::format_timeout(left));
        }
    }

    /// Whether `head` ends the call whatever else is known: OK, or committed by its
    /// Response-Headers. It is then a success for the throttle. [`decide`](Self::decide)
    /// would say so too; this says it at less cost.
    #[inline]
    pub(crate) fn accepts_at_once(&self, head: &http::response::Parts) -> bool {
        let done = match super::outcome(head) {
            Status::Committed | Status::Status(Code::Ok) => true,
            Status::Status(_) => false,
        };
        if let (true, Some(throttle)) = (done, &self.throttle) {
            throttle.record_success();
        }
        done
    }
}
