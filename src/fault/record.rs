//! The record of what a fault layer saw.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode, Uri, request};

use crate::redact::{Headers, Redacted};

/// One request a [`FaultLayer`](super::FaultLayer)'s service saw.
///
/// Its `Debug` output shows the URI without userinfo or query, and masks the values of
/// sensitive headers; the fields themselves hold everything.
#[derive(Clone)]
#[non_exhaustive]
pub struct Seen {
    /// When it arrived, from the layer's creation (on tokio's clock, so paused-clock tests
    /// read exact times).
    pub at: Duration,
    /// The method.
    pub method: Method,
    /// The URI, as the service received it.
    pub uri: Uri,
    /// The headers (an attempt-number header, an `Idempotency-Key`, ...).
    pub headers: HeaderMap,
    /// The rule that fired: its name, or its position (`"0"` for the first rule).
    pub rule: Option<Arc<str>>,
    /// The status sent back, once known; `None` while in flight, or when a transport
    /// failure was injected.
    pub status: Option<StatusCode>,
}

impl fmt::Debug for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Seen")
            .field("at", &self.at)
            .field("method", &self.method)
            .field("uri", &Redacted(&self.uri))
            .field("headers", &Headers(&self.headers))
            .field("rule", &self.rule)
            .field("status", &self.status)
            .finish()
    }
}

/// The record of a fault layer: every request its services saw, in order.
///
/// # Clone
///
/// Clones share the record.
#[derive(Clone, Debug, Default)]
pub struct FaultLog {
    entries: Arc<Mutex<Vec<Seen>>>,
}

impl FaultLog {
    /// Everything seen so far.
    pub fn entries(&self) -> Vec<Seen> {
        self.lock().clone()
    }

    /// How many requests were seen.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no request was seen.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// How many requests a rule fired on.
    pub fn fired(&self) -> usize {
        self.lock().iter().filter(|s| s.rule.is_some()).count()
    }

    /// The arrival times.
    pub fn times(&self) -> Vec<Duration> {
        self.lock().iter().map(|s| s.at).collect()
    }

    pub(super) fn push(
        &self,
        at: Duration,
        head: &request::Parts,
        rule: Option<Arc<str>>,
    ) -> usize {
        let mut entries = self.lock();
        entries.push(Seen {
            at,
            method: head.method.clone(),
            uri: head.uri.clone(),
            headers: head.headers.clone(),
            rule,
            status: None,
        });
        entries.len() - 1
    }

    pub(super) fn set_status(&self, entry: usize, status: Option<StatusCode>) {
        if let Some(seen) = self.lock().get_mut(entry) {
            seen.status = status;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Seen>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
