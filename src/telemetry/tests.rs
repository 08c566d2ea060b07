use std::io;
use std::time::Duration;

use http::{Method, StatusCode, Uri};

use super::fields::{Ending, ErrorType, error_type, method_name, port_of};
use crate::decide::Decision;
use crate::error::{AttemptTimedOut, BoxError};
use crate::policy::{Outcome, StopReason};
use crate::record::WaitReason;

/// An error that wraps another, as clients' errors wrap the I/O error under them.
#[derive(Debug)]
struct Wrapped(io::Error);

impl std::fmt::Display for Wrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("client error")
    }
}

impl std::error::Error for Wrapped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn a_method_http_does_not_define_is_other_with_its_own_name_beside() {
    assert_eq!(method_name(&Method::GET), ("GET", None));
    assert_eq!(method_name(&Method::PATCH), ("PATCH", None));
    for method in [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::CONNECT,
        Method::OPTIONS,
        Method::TRACE,
        Method::PATCH,
    ] {
        assert_eq!(method_name(&method), (method.as_str(), None));
    }
    let purge = Method::from_bytes(b"PURGE").unwrap();
    assert_eq!(method_name(&purge), ("_OTHER", Some("PURGE")));
}

#[test]
fn the_port_is_the_uri_s_own_or_its_scheme_s() {
    let port = |uri: &str| port_of(&uri.parse::<Uri>().unwrap());
    assert_eq!(port("http://a.test/"), Some(80));
    assert_eq!(port("https://a.test/"), Some(443));
    assert_eq!(port("https://a.test:8443/"), Some(8443));
    assert_eq!(port("/relative"), None);
}

#[test]
fn an_error_type_names_the_timeout_or_the_io_kind_under_it_or_the_class() {
    let timed_out = AttemptTimedOut::new(Duration::from_secs(1));
    assert_eq!(error_type(&timed_out), "timeout");
    let refused = Wrapped(io::Error::from(io::ErrorKind::ConnectionRefused));
    assert_eq!(error_type(&refused), "connection_refused");
    let named = [
        (io::ErrorKind::ConnectionReset, "connection_reset"),
        (io::ErrorKind::ConnectionAborted, "connection_aborted"),
        (io::ErrorKind::NotConnected, "not_connected"),
        (io::ErrorKind::BrokenPipe, "broken_pipe"),
        (io::ErrorKind::TimedOut, "timeout"),
        (io::ErrorKind::UnexpectedEof, "unexpected_eof"),
        (io::ErrorKind::AddrNotAvailable, "address_not_available"),
    ];
    for (kind, name) in named {
        assert_eq!(error_type(&io::Error::from(kind)), name, "{kind:?}");
    }
    // A kind without a name of its own: what the layer makes of it.
    let odd = io::Error::other("odd");
    assert_eq!(error_type(&odd), "maybe_processed");
    let denied = io::Error::from(io::ErrorKind::PermissionDenied);
    assert_eq!(error_type(&denied), "permanent");
    let bad_uri = "http://exa mple.test/".parse::<Uri>().unwrap_err();
    assert_eq!(error_type(&bad_uri), "permanent");
}

#[test]
fn an_ending_has_an_error_type_for_4xx_5xx_and_errors_only() {
    let head = |status: u16| {
        let (parts, ()) = http::Response::builder()
            .status(StatusCode::from_u16(status).unwrap())
            .body(())
            .unwrap()
            .into_parts();
        parts
    };
    let ok = head(200);
    let ending = Ending::of(Outcome::Response(&ok));
    assert_eq!((ending.status, ending.error_type), (Some(200), None));
    let moved = head(301);
    assert_eq!(Ending::of(Outcome::Response(&moved)).error_type, None);
    let missing = head(404);
    let ending = Ending::of(Outcome::Response(&missing));
    assert_eq!(ending.error_type, Some(ErrorType::Status(404)));
    assert_eq!(ending.error_type.unwrap().to_string(), "404");
    let error: BoxError = Box::new(io::Error::from(io::ErrorKind::BrokenPipe));
    let ending = Ending::of(Outcome::Error(&*error));
    assert_eq!(ending.status, None);
    assert_eq!(ending.error_type, Some(ErrorType::Name("broken_pipe")));
}

#[cfg(feature = "grpc")]
#[test]
fn a_grpc_status_in_the_head_is_the_error_type_and_ok_is_none() {
    let head = |status: &str| {
        let (parts, ()) = http::Response::builder()
            .header("content-type", "application/grpc")
            .header("grpc-status", status)
            .body(())
            .unwrap()
            .into_parts();
        parts
    };
    let unavailable = head("14");
    let ending = Ending::of(Outcome::Response(&unavailable));
    assert_eq!(ending.error_type, Some(ErrorType::Name("UNAVAILABLE")));
    assert_eq!(ending.status, Some(200));
    let ok = head("0");
    assert_eq!(Ending::of(Outcome::Response(&ok)).error_type, None);
}

#[test]
fn decisions_and_reasons_have_short_stable_names() {
    let retry = Decision::Retry {
        wait: Duration::ZERO,
        why: WaitReason::Backoff,
    };
    assert_eq!(retry.name(), "retry");
    assert_eq!(Decision::Stop(StopReason::Policy).name(), "return");
    assert_eq!(Decision::Stop(StopReason::Exhausted).name(), "exhausted");
    assert_eq!(Decision::Stop(StopReason::Budget).name(), "budget");
    let long = StopReason::ServerWaitTooLong(Duration::from_secs(3600));
    assert_eq!(Decision::Stop(long).name(), "server_wait_too_long");
    assert_eq!(WaitReason::RetryAfter.name(), "retry_after");
    assert_eq!(WaitReason::RateLimitReset.name(), "rate_limit_reset");
}

#[test]
fn an_attempt_info_absent_from_the_extensions_is_the_first() {
    let extensions = http::Extensions::new();
    let first = super::AttemptInfo::in_extensions(&extensions);
    assert_eq!(first, super::AttemptInfo::FIRST);
    assert_eq!((first.number(), first.resend_count()), (1, 0));
    let third =
        super::AttemptInfo::retry(3, Some((Duration::from_secs(1), WaitReason::Hedge))).hedge(true);
    let mut extensions = http::Extensions::new();
    extensions.insert(third);
    let seen = super::AttemptInfo::in_extensions(&extensions);
    assert_eq!((seen.number(), seen.resend_count()), (3, 2));
    assert!(seen.is_hedge() && !seen.is_transparent());
}
