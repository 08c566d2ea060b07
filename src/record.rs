//! The record of what happened to a request: [`Attempts`], an [`Entry`] for each attempt.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use http::StatusCode;

use crate::classify::ErrorClass;

/// What happened to a request: how many attempts it took, how each ended, how long the layer
/// waited before each retry and why, and the hedges it started. [`Attempts::of`] gives it
/// for every response the layer returns, and [`Error::record`](crate::Error::record) for
/// every error.
///
/// # Where it is kept
///
/// A request that took more than one attempt carries its record as a response extension. A
/// request that succeeded at once carries none: its record is fully known from the response
/// (one attempt, ended with the response's status), and [`Attempts::of`] makes it when
/// asked. So a request that succeeds at once allocates nothing for its record, where
/// inserting an extension into a response that has none costs three allocations.
///
/// With retry layers nested, a layer that made one attempt leaves the record of the layer
/// inside it, which counts every request that was sent; a layer that retried replaces it
/// with its own.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
///
/// use bytes::Bytes;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Full;
/// use retryable_http::{Attempts, record::Ended, body::ReplayBody, RetryLayer, record::WaitReason};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), retryable_http::error::BoxError> {
/// // Busy once, with `Retry-After: 7`, then fine.
/// let calls = Arc::new(AtomicU32::new(0));
/// let flaky = service_fn(move |_req: Request<ReplayBody<Full<Bytes>>>| {
///     let busy = calls.fetch_add(1, Ordering::SeqCst) == 0;
///     async move {
///         let mut response = Response::new(Full::new(Bytes::new()));
///         if busy {
///             *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
///             response.headers_mut().insert("retry-after", "7".parse()?);
///         }
///         Ok::<_, retryable_http::error::BoxError>(response)
///     }
/// });
/// let request = Request::get("http://example.com/").body(Full::new(Bytes::new()))?;
/// let response = RetryLayer::new().layer(flaky).oneshot(request).await?;
///
/// let record = Attempts::of(&response);
/// assert_eq!(record.attempts(), 2);
/// assert_eq!(record.get(0).unwrap().ended(), Ended::Status(StatusCode::SERVICE_UNAVAILABLE));
/// assert_eq!(record.get(1).unwrap().waited(), Some((Duration::from_secs(7), WaitReason::RetryAfter)));
/// assert_eq!(record.waited(), Duration::from_secs(7));
/// # Ok(())
/// # }
/// ```
///
/// A record keeps its first entry inline: only the attempts after it allocate.
#[derive(Clone, PartialEq, Eq)]
pub struct Attempts {
    /// How the first attempt ended: it had no wait before it, and is no hedge.
    first: Ended,
    /// The address the first attempt reached, when the client reports it.
    first_remote: Option<SocketAddr>,
    /// The attempts after it; empty, and so not allocated, for a request that succeeded at
    /// once.
    more: Vec<Entry>,
}

/// One attempt in a request's [`Attempts`]: how it ended, the wait before it, and whether
/// it was a hedge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    ended: Ended,
    waited: Option<(Duration, WaitReason)>,
    hedge: bool,
    remote: Option<SocketAddr>,
}

/// How an attempt ended, as the record keeps it: its end, and the address it reached when
/// the client reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ending {
    pub(crate) ended: Ended,
    pub(crate) remote: Option<SocketAddr>,
}

impl From<Ended> for Ending {
    fn from(ended: Ended) -> Self {
        Ending {
            ended,
            remote: None,
        }
    }
}

impl Ending {
    /// How an attempt that answered with `status`, `headers` and `extensions` ended.
    #[inline]
    pub(crate) fn answered(
        status: StatusCode,
        headers: &http::HeaderMap,
        extensions: &http::Extensions,
    ) -> Self {
        Ending {
            ended: Ended::of(status, headers),
            remote: remote_of(extensions),
        }
    }
}

/// The address of the server a response came from, as the client reports it: hyper-util's
/// `HttpInfo`, with the `hyper` feature.
#[cfg_attr(not(feature = "hyper"), allow(unused_variables))]
#[inline]
pub(crate) fn remote_of(extensions: &http::Extensions) -> Option<SocketAddr> {
    #[cfg(feature = "hyper")]
    return extensions
        .get::<hyper_util::client::legacy::connect::HttpInfo>()
        .map(|info| info.remote_addr());
    #[cfg(not(feature = "hyper"))]
    None
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ended {
    /// With a response of this status.
    Status(StatusCode),
    /// With an error of this class.
    Error(ErrorClass),
    /// With a gRPC response whose head carries this status (`grpc-status`): a
    /// Trailers-Only response. An attempt whose status follows in trailers, or an HTTP
    /// error without `grpc-status`, is recorded by its HTTP status.
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    Grpc(crate::grpc_code::Code),
    /// It was dropped before it ended: a hedge that lost, or an attempt in flight when the
    /// deadline passed.
    Abandoned,
}

impl Ended {
    /// How an attempt that answered with this head ended: its status, or with the `grpc`
    /// feature, the gRPC status of a gRPC response whose head carries one.
    #[cfg_attr(not(feature = "grpc"), allow(unused_variables))]
    #[inline]
    pub(crate) fn of(status: StatusCode, headers: &http::HeaderMap) -> Ended {
        #[cfg(feature = "grpc")]
        if let Some(code) = crate::grpc_code::status_in_headers(headers) {
            return Ended::Grpc(code);
        }
        Ended::Status(status)
    }
}

/// Why a wait before a retry lasted as long as it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitReason {
    /// The backoff schedule.
    Backoff,
    /// The server's `Retry-After`.
    RetryAfter,
    /// The server's `RateLimit-Reset` or `X-RateLimit-Reset`.
    RateLimitReset,
    /// The policy's own [`RetryAfter`](crate::policy::Action::RetryAfter).
    Policy,
    /// An HTTP/2 server closing in good order: the next attempt went to a new connection at
    /// once.
    GracefulShutdown,
    /// Hedging: the hedging delay or an attempt timeout passed with no response, or an
    /// earlier attempt failed and the next started at once.
    Hedge,
    /// A gRPC server's `grpc-retry-pushback-ms`.
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    Pushback,
    /// A gRPC call's transparent retry: the attempt before never reached the server's
    /// application, and this one went out at once, uncounted.
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    Transparent,
}

impl WaitReason {
    /// Whether this is a gRPC call's transparent retry.
    pub(crate) fn is_transparent(self) -> bool {
        #[cfg(feature = "grpc")]
        return self == WaitReason::Transparent;
        #[cfg(not(feature = "grpc"))]
        false
    }

    /// A short, stable name for the reason, as spans and metrics carry it: `backoff`,
    /// `retry_after`, `rate_limit_reset`, `policy`, `graceful_shutdown`, `hedge`, `pushback`,
    /// `transparent`.
    pub fn name(&self) -> &'static str {
        match self {
            WaitReason::Backoff => "backoff",
            WaitReason::RetryAfter => "retry_after",
            WaitReason::RateLimitReset => "rate_limit_reset",
            WaitReason::Policy => "policy",
            WaitReason::GracefulShutdown => "graceful_shutdown",
            WaitReason::Hedge => "hedge",
            #[cfg(feature = "grpc")]
            WaitReason::Pushback => "pushback",
            #[cfg(feature = "grpc")]
            WaitReason::Transparent => "transparent",
        }
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WaitReason::Backoff => "backoff",
            WaitReason::RetryAfter => "Retry-After",
            WaitReason::RateLimitReset => "rate-limit reset",
            WaitReason::Policy => "policy",
            WaitReason::GracefulShutdown => "graceful shutdown",
            WaitReason::Hedge => "hedge",
            #[cfg(feature = "grpc")]
            WaitReason::Pushback => "grpc-retry-pushback-ms",
            #[cfg(feature = "grpc")]
            WaitReason::Transparent => "transparent",
        })
    }
}

impl Entry {
    /// How the attempt ended.
    pub fn ended(&self) -> Ended {
        self.ended
    }

    /// The wait before this attempt and why it lasted as long as it did; `None` for the
    /// first attempt.
    pub fn waited(&self) -> Option<(Duration, WaitReason)> {
        self.waited
    }

    /// Whether the attempt was a hedge, started while an earlier one was still in flight.
    pub fn is_hedge(&self) -> bool {
        self.hedge
    }

    /// The address of the server the attempt reached, when it was answered and the client
    /// reports where from: hyper-util's client does (its `HttpInfo`, with the `hyper`
    /// feature). Behind a load balancer, the attempts of one request may reach different
    /// servers.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }
}

impl Attempts {
    /// The record of the request that produced `response`, a response the layer returned:
    /// the one it carries, or, when it carries none, the record of a request that succeeded
    /// at once — one attempt, ended with the response's status (with the `grpc` feature, a
    /// gRPC response's status when its head carries one).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{Request, Response};
    /// use http_body_util::Full;
    /// use retryable_http::{Attempts, RetryLayer, body::ReplayBody, record::Ended};
    /// use tower::{Layer, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), retryable_http::error::BoxError> {
    /// let ok = service_fn(|_req: Request<ReplayBody<Full<Bytes>>>| async {
    ///     Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
    /// });
    /// let request = Request::get("http://example.com/").body(Full::new(Bytes::new()))?;
    /// let response = RetryLayer::new().layer(ok).oneshot(request).await?;
    ///
    /// let record = Attempts::of(&response);
    /// assert_eq!(record.attempts(), 1);
    /// assert_eq!(record.get(0).unwrap().ended(), Ended::Status(http::StatusCode::OK));
    /// # Ok(())
    /// # }
    /// ```
    pub fn of<B>(response: &http::Response<B>) -> Cow<'_, Attempts> {
        match response.extensions().get::<Attempts>() {
            Some(record) => Cow::Borrowed(record),
            None => Cow::Owned(Attempts::first(Ending::answered(
                response.status(),
                response.headers(),
                response.extensions(),
            ))),
        }
    }

    /// Whether the record says more than its response does: more than one attempt.
    pub(crate) fn is_more_than_first(&self) -> bool {
        !self.more.is_empty()
    }

    /// The record of one attempt that ended with `ended`.
    pub(crate) fn first(ended: impl Into<Ending>) -> Self {
        let ending = ended.into();
        Attempts {
            first: ending.ended,
            first_remote: ending.remote,
            more: Vec::new(),
        }
    }

    /// Adds an attempt, after a wait (or none, for a hedge started at once).
    pub(crate) fn push(
        &mut self,
        ended: impl Into<Ending>,
        waited: Option<(Duration, WaitReason)>,
        hedge: bool,
    ) {
        let ending = ended.into();
        self.more.push(Entry {
            ended: ending.ended,
            waited,
            hedge,
            remote: ending.remote,
        });
    }

    /// Sets how attempt `i`, from 0, ended.
    pub(crate) fn set_ended(&mut self, i: usize, ended: impl Into<Ending>) {
        let ending = ended.into();
        match i {
            0 => (self.first, self.first_remote) = (ending.ended, ending.remote),
            i => {
                let entry = &mut self.more[i - 1];
                (entry.ended, entry.remote) = (ending.ended, ending.remote);
            }
        }
    }

    /// How many attempts were made, the one that produced the response included.
    pub fn attempts(&self) -> u32 {
        1 + self.more.len() as u32
    }

    /// Attempt `i`, from 0.
    pub fn get(&self, i: usize) -> Option<Entry> {
        match i {
            0 => Some(Entry {
                ended: self.first,
                waited: None,
                hedge: false,
                remote: self.first_remote,
            }),
            i => self.more.get(i - 1).copied(),
        }
    }

    /// The attempts, in the order they started.
    pub fn iter(&self) -> impl Iterator<Item = Entry> + '_ {
        (0..self.attempts() as usize).filter_map(|i| self.get(i))
    }

    /// The time spent waiting before retries, in all.
    pub fn waited(&self) -> Duration {
        self.more
            .iter()
            .filter_map(|a| a.waited)
            .fold(Duration::ZERO, |sum, (wait, _)| sum.saturating_add(wait))
    }

    /// How many hedges were started.
    pub fn hedges(&self) -> u32 {
        self.more.iter().filter(|a| a.hedge).count() as u32
    }

    /// How many attempts were abandoned: hedges that lost, attempts cut off.
    pub fn abandoned(&self) -> u32 {
        self.iter().filter(|a| a.ended == Ended::Abandoned).count() as u32
    }
}

/// The record of a request as it is written: each attempt as it starts and ends, with the
/// wait before it.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    /// What happened so far, once anything did.
    record: Option<Attempts>,
    /// The wait before the attempt in flight, and why.
    waited: Option<(Duration, WaitReason)>,
}

impl Recorder {
    /// The attempt in flight ended with `ended`; the next one, if any, follows `waited`.
    pub(crate) fn ended(&mut self, ended: impl Into<Ending>, then: Option<(Duration, WaitReason)>) {
        match &mut self.record {
            None => self.record = Some(Attempts::first(ended)),
            Some(record) => record.push(ended, self.waited.take(), false),
        }
        self.waited = then;
    }

    /// The wait before the attempt in flight, or once it ended and is retried, before the
    /// next one; `None` before the first, and once the request stops.
    pub(crate) fn last_wait(&self) -> Option<(Duration, WaitReason)> {
        self.waited
    }

    /// An attempt started after `waited` (none for the first), a hedge when others are in
    /// flight. It counts as abandoned until it ends.
    pub(crate) fn started(&mut self, waited: Option<(Duration, WaitReason)>, hedge: bool) {
        match &mut self.record {
            None => self.record = Some(Attempts::first(Ended::Abandoned)),
            Some(record) => record.push(Ended::Abandoned, waited, hedge),
        }
    }

    /// Attempt `i`, from 0, which [`started`](Self::started), ended with `ended`.
    pub(crate) fn set_ended(&mut self, i: usize, ended: impl Into<Ending>) {
        if let Some(record) = &mut self.record {
            record.set_ended(i, ended);
        }
    }

    /// The record; `last` is how the last attempt ended, when nothing has recorded it.
    pub(crate) fn take(&mut self, last: impl Into<Ending>) -> Attempts {
        self.record.take().unwrap_or_else(|| Attempts::first(last))
    }
}

impl fmt::Debug for Attempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attempts")
            .field("attempts", &self.iter().collect::<Vec<_>>())
            .field("waited", &self.waited())
            .finish()
    }
}

#[cfg(test)]
mod tests;
