use http::Response;

use super::*;

fn head(status: u16, headers: &[(&'static str, &'static str)]) -> response::Parts {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    response.body(()).unwrap().into_parts().0
}

#[test]
fn a_trailers_only_response_gives_its_status_whatever_the_http_status() {
    for (http, status, code) in [
        (200, "14", Code::Unavailable),
        (200, "0", Code::Ok),
        (503, "8", Code::ResourceExhausted),
        (200, "fourteen", Code::Unknown),
    ] {
        let head = head(http, &[("grpc-status", status)]);
        assert_eq!(outcome(&head), Outcome::Status(code), "{http} {status}");
    }
}

#[test]
fn an_http_error_without_a_status_maps_as_grpc_maps_it() {
    for (http, code) in [
        (400, Code::Internal),
        (401, Code::Unauthenticated),
        (403, Code::PermissionDenied),
        (404, Code::Unimplemented),
        (429, Code::Unavailable),
        (502, Code::Unavailable),
        (503, Code::Unavailable),
        (504, Code::Unavailable),
        (500, Code::Unknown),
        (418, Code::Unknown),
        (204, Code::Unknown),
    ] {
        assert_eq!(outcome(&head(http, &[])), Outcome::Status(code), "{http}");
    }
}

#[test]
fn a_200_without_a_status_has_committed_the_call() {
    assert_eq!(
        outcome(&head(200, &[("content-type", "application/grpc")])),
        Outcome::Committed
    );
}

#[test]
fn pushback_is_a_wait_or_a_refusal() {
    let pushback_of =
        |value: &'static str| pushback(&head(200, &[("grpc-retry-pushback-ms", value)]).headers);
    assert_eq!(pushback(&HeaderMap::new()), Pushback::None);
    assert_eq!(pushback_of("0"), Pushback::After(Duration::ZERO));
    assert_eq!(
        pushback_of("1500"),
        Pushback::After(Duration::from_millis(1500))
    );
    // A sign is allowed, as grpc-go's integer parsing allows it.
    assert_eq!(
        pushback_of("+20"),
        Pushback::After(Duration::from_millis(20))
    );
    assert_eq!(pushback_of("-0"), Pushback::After(Duration::ZERO));
    for refused in [
        "-1",
        "-1500",
        "",
        "1.5",
        "1s",
        " 5",
        "99999999999999999999999",
    ] {
        assert_eq!(pushback_of(refused), Pushback::Refused, "{refused:?}");
    }
}

#[test]
fn a_timeout_is_read_in_every_unit() {
    let parse = |value: &'static str| parse_timeout(&HeaderValue::from_static(value));
    assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
    assert_eq!(parse("2M"), Some(Duration::from_secs(120)));
    assert_eq!(parse("3S"), Some(Duration::from_secs(3)));
    assert_eq!(parse("4m"), Some(Duration::from_millis(4)));
    assert_eq!(parse("5u"), Some(Duration::from_micros(5)));
    assert_eq!(parse("6n"), Some(Duration::from_nanos(6)));
    assert_eq!(parse("0n"), Some(Duration::ZERO));
    assert_eq!(
        parse("99999999H"),
        Some(Duration::from_secs(99_999_999 * 3600))
    );
    for bad in ["", "S", "123456789S", "1s", "1h", "-1S", "1.5S", " 1S", "1"] {
        assert_eq!(parse(bad), None, "{bad:?}");
    }
}

#[test]
fn a_timeout_is_written_in_the_finest_unit_that_fits_rounded_up() {
    let format = |d: Duration| format_timeout(d).to_str().unwrap().to_owned();
    assert_eq!(format(Duration::ZERO), "0n");
    assert_eq!(format(Duration::from_nanos(99_999_999)), "99999999n");
    assert_eq!(format(Duration::from_nanos(100_000_000)), "100000u");
    assert_eq!(format(Duration::from_nanos(100_000_001)), "100001u");
    assert_eq!(format(Duration::from_secs(5)), "5000000u");
    assert_eq!(format(Duration::from_secs(99_999)), "99999000m");
    assert_eq!(format(Duration::from_secs(100_000)), "100000S");
    assert_eq!(format(Duration::from_secs(200_000_000)), "3333334M");
    assert_eq!(format(Duration::MAX), "99999999H");
}

#[test]
fn a_written_timeout_reads_back_as_at_least_what_was_written() {
    for nanos in [
        1u64,
        999,
        1_000,
        123_456_789,
        5_000_000_000,
        86_400_000_000_000,
    ] {
        let timeout = Duration::from_nanos(nanos);
        let read = parse_timeout(&format_timeout(timeout)).unwrap();
        assert!(read >= timeout, "{timeout:?} -> {read:?}");
    }
}
