//! Which transport errors are safe to retry.
//!
//! [`classify`] walks an error's `source()` chain and reads the public predicates of the
//! errors it knows (hyper's, hyper-util's and h2's client errors, [`std::io::Error`] kinds,
//! tokio's timeouts). It never matches on message text. [`is_unprocessed`] tells whether a
//! request provably never reached the server, which makes it safe to retry whatever its
//! method; the layer retries those even under a custom policy.
//!
//! # HTTP/2
//!
//! HTTP/2 says when a request was not processed (RFC 9113 §8.7), and h2 reports it in its
//! errors' [`reason`](h2::Error::reason), [`is_reset`](h2::Error::is_reset),
//! [`is_go_away`](h2::Error::is_go_away) and [`is_remote`](h2::Error::is_remote):
//!
//! | h2 error | class | why (RFC 9113) |
//! |---|---|---|
//! | `RST_STREAM(REFUSED_STREAM)` from the server | [never sent](ErrorClass::NeverSent) | §8.7: "the stream is being closed prior to any processing having occurred. Any request that was sent on the reset stream can be safely retried." |
//! | `GOAWAY` from the server, reported to a stream | [never sent](ErrorClass::NeverSent), whatever its code but the two below | §6.8: streams "with identifiers higher than the last stream identifier … were not processed"; h2 reports the `GOAWAY` only to streams above `last_stream_id` or opened after it |
//! | `GOAWAY(NO_ERROR)` from the server | never sent, and retried [at once](is_graceful_shutdown) | §6.8: a graceful shutdown; the next attempt goes to a new connection without waiting for the backoff |
//! | `GOAWAY(ENHANCE_YOUR_CALM)` | never sent, retried after the backoff | §7: the server sees excessive load |
//! | `HTTP_1_1_REQUIRED`, `INADEQUATE_SECURITY`, by reset or `GOAWAY` | [permanent](ErrorClass::Permanent) | §7, §9.2: the connection itself does not suit the server; retrying on another like it cannot help |
//! | `RST_STREAM` from the server with `NO_ERROR`, `PROTOCOL_ERROR`, `INTERNAL_ERROR`, `FLOW_CONTROL_ERROR`, `STREAM_CLOSED`, `FRAME_SIZE_ERROR`, `CANCEL`, `COMPRESSION_ERROR`, `CONNECT_ERROR`, `ENHANCE_YOUR_CALM`, `SETTINGS_TIMEOUT` or an unknown code | [maybe processed](ErrorClass::MaybeProcessed) | §8.7: only `REFUSED_STREAM` and `GOAWAY` guarantee that nothing was processed; a stream reset for any other reason may have been |
//! | a reset or `GOAWAY` the client itself sent (its h2 library found the server's frames broken) | maybe processed | the request may have been processed before the connection broke |
//! | a stream at or below the `GOAWAY`'s `last_stream_id` that dies afterwards | maybe processed | h2 reports a broken pipe ([`io::ErrorKind::BrokenPipe`]) to such streams: the server may have processed them |
//! | an I/O error | by its [`io::ErrorKind`] | |
//!
//! A bare reason, as a service returns it with `h2::Error::from(Reason::REFUSED_STREAM)` to
//! make hyper's server reset the stream, is read like a reset from the peer: a fault layer
//! or a proxy in the client's stack saying the upstream refused the stream.
//!
//! ```
//! use std::io;
//! use retryable_http::classify::{ErrorClass, classify};
//!
//! let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
//! assert_eq!(classify(&refused), ErrorClass::NeverSent);
//! let reset = io::Error::from(io::ErrorKind::ConnectionReset);
//! assert_eq!(classify(&reset), ErrorClass::MaybeProcessed);
//! let bad_uri = "http://exa mple.com/".parse::<http::Uri>().unwrap_err();
//! assert_eq!(classify(&bad_uri), ErrorClass::Permanent);
//! ```

use std::error::Error as StdError;
use std::io;

/// What an error says about whether the server saw the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The request never left the client: the connection was refused or could not be made,
    /// the name did not resolve, or a pooled connection closed before the request was
    /// written. Safe to retry for every method.
    NeverSent,
    /// The request may have reached the server and been processed: the connection was reset
    /// or closed after the request was written, the response was malformed, the attempt
    /// timed out. Safe to retry only for idempotent requests. Errors this crate does not
    /// recognise are in this class too.
    MaybeProcessed,
    /// Retrying cannot help: a TLS or certificate error, an invalid URI, scheme or header, a
    /// request the client refused, the caller's own body failing.
    Permanent,
}

impl ErrorClass {
    /// A short, stable name for the class, as spans and metrics carry it: `never_sent`,
    /// `maybe_processed`, `permanent`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ErrorClass::NeverSent => "never_sent",
            ErrorClass::MaybeProcessed => "maybe_processed",
            ErrorClass::Permanent => "permanent",
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrorClass::NeverSent => "never sent",
            ErrorClass::MaybeProcessed => "maybe processed",
            ErrorClass::Permanent => "permanent",
        })
    }
}

/// Whether `error` proves the request never reached the server: it is in the
/// [`NeverSent`](ErrorClass::NeverSent) class.
///
/// Such a request is safe to retry whatever its method: the connection was refused, the
/// HTTP/2 stream was refused or fell above a `GOAWAY`'s last stream, the request was
/// canceled before it was written. The [`RetryLayer`](crate::RetryLayer) retries these even
/// when a custom policy says stop, unless told
/// [`policy_only`](crate::RetryLayer::policy_only).
///
/// ```
/// use std::io;
/// use retryable_http::classify::is_unprocessed;
///
/// assert!(is_unprocessed(&io::Error::from(io::ErrorKind::ConnectionRefused)));
/// assert!(!is_unprocessed(&io::Error::from(io::ErrorKind::ConnectionReset)));
/// ```
pub fn is_unprocessed(error: &(dyn StdError + 'static)) -> bool {
    classify(error) == ErrorClass::NeverSent
}

/// Whether `error` is an HTTP/2 server's graceful shutdown: a `GOAWAY` with `NO_ERROR`
/// reported to a stream it did not process.
///
/// The server is going away in good order (a restart, nginx's `keepalive_requests`): the
/// layer retries such a request on a new connection at once, without the backoff. The retry
/// still counts as an attempt and is paid from the budget.
pub fn is_graceful_shutdown(error: &(dyn StdError + 'static)) -> bool {
    #[cfg(feature = "hyper")]
    {
        chain(error)
            .filter_map(|e| e.downcast_ref::<h2::Error>())
            .any(|e| e.is_go_away() && e.is_remote() && e.reason() == Some(h2::Reason::NO_ERROR))
    }
    #[cfg(not(feature = "hyper"))]
    {
        let _ = error;
        false
    }
}

/// Classifies an error by walking its `source()` chain from the outside in.
///
/// The first error in the chain that says something decisive wins; an error with nothing
/// recognisable in its chain is [`ErrorClass::MaybeProcessed`].
///
/// With the `hyper` feature (on by default), hyper's and hyper-util's client errors are
/// read through their predicates. A hyper-util connect error is
/// [`NeverSent`](ErrorClass::NeverSent) when its cause chain holds an [`io::Error`] (the
/// network failed), and [`Permanent`](ErrorClass::Permanent) when that error is of kind
/// `InvalidData` or `InvalidInput` (how TLS stacks such as tokio-rustls report handshake and
/// certificate failures) or when there is no `io::Error` at all (the connector refused the
/// URL itself: an unsupported scheme, a missing host). A hyper error that
/// [`is_canceled`](https://docs.rs/hyper/1/hyper/struct.Error.html#method.is_canceled) never
/// left the client; one that `is_user` is the caller's own mistake.
pub fn classify(error: &(dyn StdError + 'static)) -> ErrorClass {
    chain(error)
        .find_map(decisive)
        .unwrap_or(ErrorClass::MaybeProcessed)
}

/// The class this one error decides on its own, if any.
fn decisive(error: &(dyn StdError + 'static)) -> Option<ErrorClass> {
    // NOTE: the layer's own timeouts (`AttemptTimedOut`, `DeadlineExceeded`) have no source
    // and say nothing decisive: they end the walk in the default class, `MaybeProcessed`.
    if error.is::<tokio::time::error::Elapsed>() {
        return Some(ErrorClass::MaybeProcessed);
    }
    if error.is::<http::Error>()
        || error.is::<http::uri::InvalidUri>()
        || error.is::<http::uri::InvalidUriParts>()
        || error.is::<http::header::InvalidHeaderName>()
        || error.is::<http::header::InvalidHeaderValue>()
        || error.is::<http::method::InvalidMethod>()
    {
        return Some(ErrorClass::Permanent);
    }
    if let Some(io) = error.downcast_ref::<io::Error>() {
        return io_class(io.kind());
    }
    #[cfg(feature = "hyper")]
    if let Some(h2) = error.downcast_ref::<h2::Error>() {
        return h2_class(h2);
    }
    #[cfg(feature = "hyper")]
    if let Some(class) = hyper_class(error) {
        return Some(class);
    }
    None
}

/// Whether `error`, which ended a response body, is the transport breaking under it — a
/// reset, a truncated message, an HTTP/2 stream reset, a timeout — after which the rest of
/// the body can be asked for again; not a body that is wrong, nor an error of the caller's
/// own layers.
pub(crate) fn breaks_body(error: &(dyn StdError + 'static)) -> bool {
    // The transport's errors are those this module classifies as anything but permanent.
    let transport = |class: Option<ErrorClass>| class.is_some_and(|c| c != ErrorClass::Permanent);
    chain(error).any(|e| {
        if e.is::<tokio::time::error::Elapsed>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return transport(io_class(io.kind()));
        }
        #[cfg(feature = "hyper")]
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            return transport(h2_class(h2));
        }
        #[cfg(feature = "hyper")]
        if let Some(hyper) = e.downcast_ref::<hyper::Error>() {
            return hyper.is_incomplete_message() || hyper.is_timeout() || hyper.is_closed();
        }
        false
    })
}

/// `error` and its sources, from the outside in, looking inside `io::Error`s too.
pub(crate) fn chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&e| source(e))
}

/// The next error in the chain.
fn source<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    // NOTE: `io::Error::source` skips the error it wraps and returns that error's source;
    // `get_ref` returns the wrapped error itself.
    if let Some(io) = error.downcast_ref::<io::Error>() {
        if let Some(inner) = io.get_ref() {
            return Some(inner);
        }
    }
    error.source()
}

/// What an h2 error says; see the table in the module documentation.
#[cfg(feature = "hyper")]
fn h2_class(error: &h2::Error) -> Option<ErrorClass> {
    use h2::Reason;
    if let Some(io) = error.get_io() {
        return io_class(io.kind());
    }
    // NOTE: errors of the h2 library's own API carry no reason; they say nothing here.
    let reason = error.reason()?;
    if reason == Reason::HTTP_1_1_REQUIRED || reason == Reason::INADEQUATE_SECURITY {
        return Some(ErrorClass::Permanent);
    }
    let local = (error.is_go_away() || error.is_reset()) && !error.is_remote();
    Some(if local {
        ErrorClass::MaybeProcessed
    } else if error.is_go_away() || reason == Reason::REFUSED_STREAM {
        ErrorClass::NeverSent
    } else {
        ErrorClass::MaybeProcessed
    })
}

fn io_class(kind: io::ErrorKind) -> Option<ErrorClass> {
    use io::ErrorKind::*;
    match kind {
        ConnectionRefused | AddrNotAvailable | NotConnected | HostUnreachable
        | NetworkUnreachable => Some(ErrorClass::NeverSent),
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | TimedOut | WriteZero
        | Interrupted => Some(ErrorClass::MaybeProcessed),
        InvalidData | InvalidInput | Unsupported | PermissionDenied => Some(ErrorClass::Permanent),
        _ => None,
    }
}

#[cfg(feature = "hyper")]
fn hyper_class(error: &(dyn StdError + 'static)) -> Option<ErrorClass> {
    if let Some(client) = error.downcast_ref::<hyper_util::client::legacy::Error>() {
        if client.is_connect() {
            // A failed connect never sent the request. Retrying helps only if the cause was
            // the network: an `io::Error` somewhere in the chain, and not one of the kinds
            // TLS stacks (tokio-rustls) use for handshake and certificate failures. A
            // connector that gave up without touching the network (hyper-util's
            // `HttpConnector` on an `ftp://` or host-less URL) reports no `io::Error`.
            let mut io_kinds = client
                .source()
                .into_iter()
                .flat_map(chain)
                .filter_map(|e| e.downcast_ref::<io::Error>().map(io::Error::kind))
                .peekable();
            let network = io_kinds.peek().is_some();
            let tls = io_kinds
                .any(|k| matches!(k, io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput));
            return Some(if network && !tls {
                ErrorClass::NeverSent
            } else {
                ErrorClass::Permanent
            });
        }
        // NOTE: hyper-util's errors without a cause are the requests it refuses before
        // sending (relative URI, unsupported method or version): the caller's mistakes.
        if client.source().is_none() {
            return Some(ErrorClass::Permanent);
        }
        return None;
    }
    if let Some(hyper) = error.downcast_ref::<hyper::Error>() {
        if hyper.is_canceled() {
            // hyper hands back requests it never started writing as "canceled".
            return Some(ErrorClass::NeverSent);
        }
        if hyper.is_user() {
            return Some(ErrorClass::Permanent);
        }
        if hyper
            .source()
            .is_some_and(|cause| chain(cause).any(|e| e.is::<h2::Error>()))
        {
            // The HTTP/2 error it wraps knows better.
            return None;
        }
        return Some(ErrorClass::MaybeProcessed);
    }
    None
}

#[cfg(test)]
mod tests;
