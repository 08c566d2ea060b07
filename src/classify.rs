//! Which transport errors are safe to retry.
//!
//! [`classify`] walks an error's `source()` chain and reads the public predicates of the
//! errors it knows (hyper's, hyper-util's client errors, [`std::io::Error`] kinds, tokio's
//! timeouts). It never matches on message text.
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

/// `error` and its sources, from the outside in, looking inside `io::Error`s too.
pub(crate) fn chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&e| source(e))
}

/// The class this one error decides on its own, if any.
fn decisive(error: &(dyn StdError + 'static)) -> Option<ErrorClass> {
    if error.is::<crate::error::AttemptTimedOut>()
        || error.is::<crate::error::DeadlineExceeded>()
        || error.is::<tokio::time::error::Elapsed>()
    {
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
    if let Some(class) = hyper_class(error) {
        return Some(class);
    }
    None
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
        return Some(ErrorClass::MaybeProcessed);
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[derive(Debug)]
    struct Wrapper(Box<dyn StdError + Send + Sync>);

    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("wrapper")
        }
    }

    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&*self.0)
        }
    }

    #[derive(Debug)]
    struct Opaque;

    impl fmt::Display for Opaque {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("connection refused") // a message is never read
        }
    }

    impl StdError for Opaque {}

    #[test]
    fn io_kinds() {
        let class = |k| classify(&io::Error::from(k));
        assert_eq!(
            class(io::ErrorKind::ConnectionRefused),
            ErrorClass::NeverSent
        );
        assert_eq!(
            class(io::ErrorKind::ConnectionReset),
            ErrorClass::MaybeProcessed
        );
        assert_eq!(class(io::ErrorKind::BrokenPipe), ErrorClass::MaybeProcessed);
        assert_eq!(
            class(io::ErrorKind::UnexpectedEof),
            ErrorClass::MaybeProcessed
        );
        assert_eq!(class(io::ErrorKind::InvalidData), ErrorClass::Permanent);
        assert_eq!(class(io::ErrorKind::Other), ErrorClass::MaybeProcessed);
    }

    #[test]
    fn walks_the_chain_through_wrappers_and_io_errors() {
        let deep = Wrapper(Box::new(io::Error::other(Wrapper(Box::new(
            io::Error::from(io::ErrorKind::ConnectionRefused),
        )))));
        assert_eq!(classify(&deep), ErrorClass::NeverSent);
    }

    #[test]
    fn unknown_errors_may_have_been_processed() {
        assert_eq!(classify(&Opaque), ErrorClass::MaybeProcessed);
        assert_eq!(
            classify(&Wrapper(Box::new(Opaque))),
            ErrorClass::MaybeProcessed
        );
    }

    #[test]
    fn invalid_request_parts_are_permanent() {
        let e = http::Request::builder()
            .header("bad header", "x")
            .body(())
            .unwrap_err();
        assert_eq!(classify(&e), ErrorClass::Permanent);
        let e = "no spaces allowed".parse::<http::Uri>().unwrap_err();
        assert_eq!(classify(&Wrapper(Box::new(e))), ErrorClass::Permanent);
    }

    #[test]
    fn timeouts_may_have_been_processed() {
        assert_eq!(
            classify(&crate::error::AttemptTimedOut::new(
                std::time::Duration::from_secs(1)
            )),
            ErrorClass::MaybeProcessed
        );
    }
}
