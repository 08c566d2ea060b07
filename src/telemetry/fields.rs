//! What the spans and the metrics say of a request and of how an attempt ended, in
//! OpenTelemetry's terms.

use std::error::Error as StdError;
use std::io;

use http::Method;

use crate::classify::{chain, classify};
use crate::error::AttemptTimedOut;
use crate::policy::Outcome;
use crate::record::Ended;

/// What the span and the metrics say of how an attempt ended.
pub(crate) struct Ending {
    /// The response's status, if there was one.
    pub(crate) status: Option<u16>,
    /// The gRPC status a Trailers-Only response carries.
    #[cfg(feature = "grpc")]
    pub(crate) grpc: Option<crate::grpc_code::Code>,
    /// OpenTelemetry's `error.type`, when the attempt failed.
    pub(crate) error_type: Option<ErrorType>,
}

/// OpenTelemetry's `error.type`: a status code, or a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorType {
    /// A 4xx or 5xx status.
    Status(u16),
    /// A gRPC status, or a transport error's low-cardinality name.
    Name(&'static str),
}

impl std::fmt::Display for ErrorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorType::Status(status) => write!(f, "{status}"),
            ErrorType::Name(name) => f.write_str(name),
        }
    }
}

impl Ending {
    pub(crate) fn of(outcome: Outcome<'_>) -> Self {
        match outcome {
            Outcome::Response(head) => {
                // What the record makes of the head: its status, or a gRPC status.
                let ended = Ended::of(head.status, &head.headers);
                let status = head.status.as_u16();
                let error_type = match ended {
                    #[cfg(feature = "grpc")]
                    Ended::Grpc(code) if code != crate::grpc_code::Code::Ok => {
                        Some(ErrorType::Name(code.as_str()))
                    }
                    _ => (status >= 400).then_some(ErrorType::Status(status)),
                };
                Ending {
                    status: Some(status),
                    #[cfg(feature = "grpc")]
                    grpc: match ended {
                        Ended::Grpc(code) => Some(code),
                        _ => None,
                    },
                    error_type,
                }
            }
            Outcome::Error(error) => Ending {
                status: None,
                #[cfg(feature = "grpc")]
                grpc: None,
                error_type: Some(ErrorType::Name(error_type(error))),
            },
        }
    }
}

/// The method as OpenTelemetry names it, and the method itself when that is `_OTHER`.
pub(crate) fn method_name(method: &Method) -> (&'static str, Option<&str>) {
    let known = match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => return ("_OTHER", Some(method.as_str())),
    };
    (known, None)
}

/// The port `uri` goes to: its own, or its scheme's.
pub(crate) fn port_of(uri: &http::Uri) -> Option<u16> {
    uri.port_u16().or(match uri.scheme_str() {
        Some("https") | Some("wss") => Some(443),
        Some("http") | Some("ws") => Some(80),
        _ => None,
    })
}

/// A low-cardinality name of a transport error, for `error.type`: an attempt timeout, the
/// kind of an I/O error in the chain, or what [`classify`] says of it.
pub(crate) fn error_type(error: &(dyn StdError + 'static)) -> &'static str {
    let named = chain(error).find_map(|e| {
        if e.is::<AttemptTimedOut>() || e.is::<tokio::time::error::Elapsed>() {
            return Some("timeout");
        }
        io_kind_name(e.downcast_ref::<io::Error>()?.kind())
    });
    named.unwrap_or_else(|| classify(error).name())
}

fn io_kind_name(kind: io::ErrorKind) -> Option<&'static str> {
    use io::ErrorKind::*;
    Some(match kind {
        ConnectionRefused => "connection_refused",
        ConnectionReset => "connection_reset",
        ConnectionAborted => "connection_aborted",
        NotConnected => "not_connected",
        BrokenPipe => "broken_pipe",
        TimedOut => "timeout",
        UnexpectedEof => "unexpected_eof",
        AddrNotAvailable => "address_not_available",
        _ => return None,
    })
}
