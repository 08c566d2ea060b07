use std::io;
use std::time::Duration;

use http::{Method, StatusCode, Uri};

use super::*;

fn uri() -> Uri {
    "http://user:secret@upstream.test/orders?token=x"
        .parse()
        .unwrap()
}

fn reset() -> BoxError {
    io::Error::from(io::ErrorKind::ConnectionReset).into()
}

#[test]
fn an_inner_error_names_its_request_and_is_nothing_else() {
    let error = Error::inner(&Method::POST, &uri(), 2, reset());
    assert_eq!(error.method(), Some(&Method::POST));
    assert_eq!(error.url(), Some("http://upstream.test/orders"));
    assert_eq!(error.attempts(), 2);
    assert!(!error.is_not_ready() && !error.is_reopen());
    assert!(!error.is_deadline() && !error.is_attempt_timeout());
    assert_eq!(error.status(), None);
    assert!(error.record().is_none());
    assert_eq!(
        error.to_string(),
        "POST http://upstream.test/orders giving up after 2 attempt(s)"
    );
}

#[test]
fn each_kind_of_error_says_which_it_is() {
    let not_ready = Error::not_ready(None, 0, reset());
    assert!(not_ready.is_not_ready() && !not_ready.is_reopen());
    assert_eq!((not_ready.method(), not_ready.url()), (None, None));
    assert_eq!(
        not_ready.to_string(),
        "the inner service failed to become ready"
    );

    let reopen = Error::reopen(&Method::PUT, &uri(), 3, reset());
    assert!(reopen.is_reopen() && !reopen.is_not_ready());
    assert_eq!(
        reopen.to_string(),
        "PUT http://upstream.test/orders giving up after 3 attempt(s): the request body could not be reopened"
    );

    let deadline = DeadlineExceeded::new(Duration::from_secs(1));
    let deadline = Error::inner(&Method::GET, &uri(), 1, deadline.into());
    assert!(deadline.is_deadline() && !deadline.is_attempt_timeout());

    let timeout = AttemptTimedOut::new(Duration::from_secs(1));
    let timeout = Error::inner(&Method::GET, &uri(), 1, timeout.into());
    assert!(timeout.is_attempt_timeout() && !timeout.is_deadline());

    let status = UnexpectedStatus::new(StatusCode::BAD_GATEWAY);
    let status = Error::inner(&Method::GET, &uri(), 4, status.into());
    assert_eq!(status.status(), Some(StatusCode::BAD_GATEWAY));
}

#[test]
fn errors_show_what_they_hold_without_secrets() {
    let error = Error::inner(&Method::POST, &uri(), 2, reset());
    let shown = format!("{error:?}");
    assert!(
        shown.starts_with(
            "Error { kind: Inner, method: POST, url: \"http://upstream.test/orders\", attempts: 2, source: "
        ),
        "{shown}"
    );
    assert!(
        !shown.contains("secret") && !shown.contains("token"),
        "{shown}"
    );
    let report = Report::new(&error);
    assert_eq!(format!("{report:?}"), report.to_string());
    assert_eq!(
        report.to_string(),
        "POST http://upstream.test/orders giving up after 2 attempt(s): connection reset"
    );
}

#[test]
fn the_small_errors_keep_what_they_were_made_with() {
    let second = Duration::from_secs(1);
    assert_eq!(AttemptTimedOut::new(second).after(), second);
    assert_eq!(
        AttemptTimedOut::new(second).to_string(),
        "attempt timed out after 1s"
    );
    assert_eq!(DeadlineExceeded::new(second).after(), second);
    assert_eq!(
        DeadlineExceeded::new(second).to_string(),
        "deadline of 1s exceeded"
    );
    let status = UnexpectedStatus::new(StatusCode::BAD_GATEWAY);
    assert_eq!(status.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(status.to_string(), "unexpected HTTP status 502 Bad Gateway");
}
