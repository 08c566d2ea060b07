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

#[cfg(feature = "hyper")]
#[test]
fn h2_reasons_a_service_returns_read_like_resets_from_the_peer() {
    use h2::Reason;
    let class = |reason| classify(&Wrapper(Box::new(h2::Error::from(reason))));
    assert_eq!(class(Reason::REFUSED_STREAM), ErrorClass::NeverSent);
    assert!(is_unprocessed(&h2::Error::from(Reason::REFUSED_STREAM)));
    assert_eq!(class(Reason::HTTP_1_1_REQUIRED), ErrorClass::Permanent);
    assert_eq!(class(Reason::INADEQUATE_SECURITY), ErrorClass::Permanent);
    for reason in [
        Reason::NO_ERROR,
        Reason::PROTOCOL_ERROR,
        Reason::INTERNAL_ERROR,
        Reason::FLOW_CONTROL_ERROR,
        Reason::SETTINGS_TIMEOUT,
        Reason::STREAM_CLOSED,
        Reason::FRAME_SIZE_ERROR,
        Reason::CANCEL,
        Reason::COMPRESSION_ERROR,
        Reason::CONNECT_ERROR,
        Reason::ENHANCE_YOUR_CALM,
        Reason::from(0xbad),
    ] {
        assert_eq!(class(reason), ErrorClass::MaybeProcessed, "{reason:?}");
    }
    // Not a GOAWAY from the server: nothing to retry at once.
    assert!(!is_graceful_shutdown(&h2::Error::from(Reason::NO_ERROR)));
}

#[test]
fn every_malformed_part_of_a_request_is_permanent() {
    let mut no_authority = http::uri::Parts::default();
    no_authority.scheme = Some(http::uri::Scheme::HTTP);
    let errors: [Box<dyn StdError + Send + Sync>; 5] = [
        Box::new("http://[::1".parse::<http::Uri>().unwrap_err()),
        Box::new(http::Uri::from_parts(no_authority).unwrap_err()),
        Box::new(http::HeaderName::from_bytes(b"bad name").unwrap_err()),
        Box::new(http::HeaderValue::from_bytes(b"bad\nvalue").unwrap_err()),
        Box::new(http::Method::from_bytes(b"BAD METHOD").unwrap_err()),
    ];
    for error in errors {
        assert_eq!(classify(&*error), ErrorClass::Permanent, "{error:?}");
        // Found anywhere in the chain.
        assert_eq!(classify(&Wrapper(error)), ErrorClass::Permanent);
    }
}

#[test]
fn the_outermost_io_error_decides() {
    // A reset whose cause says the connection was refused: the reset is what happened to
    // this request.
    let reset = io::Error::new(
        io::ErrorKind::ConnectionReset,
        io::Error::from(io::ErrorKind::ConnectionRefused),
    );
    assert_eq!(classify(&reset), ErrorClass::MaybeProcessed);
    let refused = io::Error::new(
        io::ErrorKind::ConnectionRefused,
        io::Error::from(io::ErrorKind::ConnectionReset),
    );
    assert_eq!(classify(&refused), ErrorClass::NeverSent);
}

#[test]
fn each_class_has_a_name_for_logs() {
    let names = [
        ErrorClass::NeverSent,
        ErrorClass::MaybeProcessed,
        ErrorClass::Permanent,
    ]
    .map(|class| class.to_string());
    assert_eq!(names, ["never sent", "maybe processed", "permanent"]);
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
