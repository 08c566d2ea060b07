use http::{HeaderMap, StatusCode, response};

use super::{ContentRange, NotResumable, Rejected, Representation};

fn head(status: u16, headers: &[(&str, &str)]) -> response::Parts {
    let mut builder = http::Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

fn first() -> Representation {
    let head = head(200, &[("etag", "\"v1\""), ("content-length", "1000")]);
    Representation::of(&head, false).unwrap()
}

#[test]
fn content_ranges_are_parsed_strictly() {
    let parse = |s: &str| ContentRange::parse(s.as_bytes());
    assert_eq!(
        parse("bytes 100-999/1000"),
        Some(ContentRange {
            first: 100,
            last: 999,
            complete: Some(1000)
        })
    );
    assert_eq!(parse("bytes 0-0/*").unwrap().complete, None);
    assert_eq!(parse("BYTES 5-9/10").unwrap().first, 5);
    for bad in [
        "bytes */1000",
        "bytes 10-5/100",
        "bytes -5-9/10",
        "bytes 5-9/",
        "items 5-9/10",
        "bytes 5-9",
        "bytes +5-9/10",
        "bytes 5-99999999999999999999/*",
        "",
    ] {
        assert_eq!(parse(bad), None, "{bad:?}");
    }
}

#[test]
fn only_a_200_with_a_strong_validator_is_resumed_unless_told_otherwise() {
    let ok = |headers: &[(&str, &str)]| Representation::of(&head(200, headers), false);
    assert!(ok(&[("etag", "\"a\"")]).is_ok());
    assert!(ok(&[("last-modified", "Sun, 06 Dec 2026 00:00:00 GMT")]).is_ok());
    assert_eq!(
        ok(&[("etag", "W/\"weak\"")]).unwrap_err(),
        NotResumable::NoValidator
    );
    assert_eq!(ok(&[]).unwrap_err(), NotResumable::NoValidator);
    assert!(Representation::of(&head(200, &[]), true).is_ok());
    assert_eq!(
        ok(&[("etag", "\"a\""), ("accept-ranges", "none")]).unwrap_err(),
        NotResumable::NoRanges
    );
    let partial = head(206, &[("etag", "\"a\"")]);
    assert_eq!(
        Representation::of(&partial, false).unwrap_err(),
        NotResumable::Status
    );
}

#[test]
fn the_resuming_request_asks_from_the_offset_if_the_validator_still_holds() {
    let mut headers = HeaderMap::new();
    first().ask_from(400, &mut headers);
    assert_eq!(headers["range"], "bytes=400-");
    assert_eq!(headers["if-range"], "\"v1\"");
    // A weak ETag gives way to Last-Modified.
    let dated = head(
        200,
        &[
            ("etag", "W/\"weak\""),
            ("last-modified", "Sun, 06 Dec 2026 00:00:00 GMT"),
        ],
    );
    let mut headers = HeaderMap::new();
    Representation::of(&dated, false)
        .unwrap()
        .ask_from(7, &mut headers);
    assert_eq!(headers["if-range"], "Sun, 06 Dec 2026 00:00:00 GMT");
    // Without a validator, no If-Range, not even one the caller sent.
    let mut headers = HeaderMap::new();
    headers.insert("if-range", "\"stale\"".parse().unwrap());
    Representation::of(&head(200, &[]), true)
        .unwrap()
        .ask_from(7, &mut headers);
    assert!(headers.get("if-range").is_none());
}

#[test]
fn the_rest_of_the_body_is_taken_and_every_other_answer_rejected() {
    let rep = first();
    let partial = |headers: &[(&str, &str)]| head(206, headers);
    let good = partial(&[("etag", "\"v1\""), ("content-range", "bytes 400-999/1000")]);
    assert_eq!(rep.check(400, &good), Ok(()));
    // No ETag on the 206: If-Range already vouched for it.
    let untagged = partial(&[("content-range", "bytes 400-999/1000")]);
    assert_eq!(rep.check(400, &untagged), Ok(()));

    let cases: [(response::Parts, Rejected); 8] = [
        (
            head(200, &[("etag", "\"v2\"")]),
            Rejected::NotPartial(StatusCode::OK),
        ),
        (
            head(416, &[("content-range", "bytes */1000")]),
            Rejected::NotPartial(StatusCode::RANGE_NOT_SATISFIABLE),
        ),
        (
            partial(&[("etag", "\"v2\""), ("content-range", "bytes 400-999/1000")]),
            Rejected::ValidatorChanged,
        ),
        (
            partial(&[("content-range", "bytes 0-999/1000")]),
            Rejected::WrongStart {
                expected: 400,
                got: 0,
            },
        ),
        (
            partial(&[("content-range", "bytes 400-1199/1200")]),
            Rejected::LengthChanged {
                expected: 1000,
                got: 1200,
            },
        ),
        (
            partial(&[("content-range", "bytes 400-999/*")]),
            Rejected::BadContentRange,
        ),
        (partial(&[]), Rejected::BadContentRange),
        (
            partial(&[
                ("content-range", "bytes 400-999/1000"),
                ("content-encoding", "gzip"),
            ]),
            Rejected::EncodingChanged,
        ),
    ];
    for (answer, rejected) in cases {
        assert_eq!(rep.check(400, &answer), Err(rejected), "{answer:?}");
    }
    // A range that ends past the length it states.
    let unknown = Representation::of(&head(200, &[("etag", "\"v1\"")]), false).unwrap();
    let past = partial(&[("content-range", "bytes 400-1000/1000")]);
    assert_eq!(unknown.check(400, &past), Err(Rejected::BadContentRange));
    let open = partial(&[("content-range", "bytes 400-999/*")]);
    assert_eq!(unknown.check(400, &open), Ok(()));
}
