//! `Retry-After`, `RateLimit-Reset` and `X-RateLimit-Reset`: whatever a server sends, the
//! parsers never panic, a wait is never above the cap, and dates agree with `httpdate`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Response, StatusCode};
use proptest::prelude::*;

use crate::retry_after::{ServerWaits, parse_rate_limit_reset, parse_retry_after};

/// The last second `httpdate` represents: 9999-12-31T23:59:59Z.
const LAST: u64 = 253_402_300_799;

/// Seconds around the dates where calendars go wrong: the epoch, leap days, century and
/// millennium turns, the 32-bit end of time, RFC 850's two-digit-year pivot, the last date.
const BOUNDARIES: &[u64] = &[
    0,
    68_169_600,    // 1972-02-29
    946_684_800,   // 2000-01-01
    951_782_400,   // 2000-02-29
    951_868_800,   // 2000-03-01
    2_147_483_647, // 2038-01-19T03:14:07
    3_124_137_600, // 2068-12-31
    3_155_760_000, // 2070-01-01
    4_107_542_400, // 2100-03-01 (2100 is no leap year)
    LAST,
];

/// A time near a boundary or anywhere in `httpdate`'s range.
fn instant() -> impl Strategy<Value = u64> {
    prop_oneof![
        (prop::sample::select(BOUNDARIES), -86_400i64..86_400)
            .prop_map(|(b, d)| b.saturating_add_signed(d).min(LAST)),
        0..=LAST,
    ]
}

/// The parts of an IMF-fixdate as `httpdate` writes it: "Sun, 06 Nov 1994 08:49:37 GMT".
struct Parts {
    weekday: String,
    day: String,
    month: String,
    year: String,
    time: String,
}

fn parts(secs: u64) -> Parts {
    let imf = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs));
    let f: Vec<&str> = imf.split(' ').collect();
    Parts {
        weekday: f[0].trim_end_matches(',').to_owned(),
        day: f[1].to_owned(),
        month: f[2].to_owned(),
        year: f[3].to_owned(),
        time: f[4].to_owned(),
    }
}

fn long_weekday(short: &str) -> &'static str {
    match short {
        "Mon" => "Monday",
        "Tue" => "Tuesday",
        "Wed" => "Wednesday",
        "Thu" => "Thursday",
        "Fri" => "Friday",
        "Sat" => "Saturday",
        _ => "Sunday",
    }
}

/// The three HTTP-date forms of `secs`: IMF-fixdate, RFC 850 (years 1970 to 2069 only, as
/// its two-digit years are read), asctime.
fn forms(secs: u64) -> Vec<String> {
    let p = parts(secs);
    let mut forms = vec![httpdate::fmt_http_date(
        UNIX_EPOCH + Duration::from_secs(secs),
    )];
    let year: u32 = p.year.parse().unwrap();
    if (1970..2070).contains(&year) {
        forms.push(format!(
            "{}, {}-{}-{} {} GMT",
            long_weekday(&p.weekday),
            p.day,
            p.month,
            &p.year[2..],
            p.time
        ));
    }
    let day: u32 = p.day.parse().unwrap();
    forms.push(format!(
        "{} {} {:>2} {} {}",
        p.weekday, p.month, day, p.time, p.year
    ));
    forms
}

/// A header value a server might send: bytes, digits, dates, near-misses.
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40),
        "[ ]{0,2}[0-9]{0,30}[ ]{0,2}".prop_map(String::into_bytes),
        "-?[0-9]{1,6}(\\.[0-9]{1,3})?".prop_map(String::into_bytes),
        instant().prop_map(
            |secs| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs)).into_bytes()
        ),
        (instant(), 0usize..3).prop_map(|(secs, i)| {
            let forms = forms(secs);
            forms[i % forms.len()].clone().into_bytes()
        }),
        "[A-Za-z]{3}, [0-9]{2} [A-Za-z]{3} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
            .prop_map(String::into_bytes),
    ]
}

proptest! {
    #[test]
    fn no_value_makes_a_parser_panic_or_a_wait_exceed_the_cap(
        retry_after in value(),
        reset in value(),
        x_reset in value(),
        present in 0u8..8,
        status in prop::sample::select(vec![200u16, 302, 429, 500, 502, 503]),
        max in 0u64..200_000,
        now in instant(),
        go in any::<bool>(),
    ) {
        let now = UNIX_EPOCH + Duration::from_secs(now);
        let max = Duration::from_secs(max);
        let base = if go { ServerWaits::go() } else { ServerWaits::new() };
        let waits = base.max(max).wall_clock(move || now);
        let mut response = Response::builder().status(StatusCode::from_u16(status).unwrap());
        for (bit, name, bytes) in [
            (1, "retry-after", &retry_after),
            (2, "ratelimit-reset", &reset),
            (4, "x-ratelimit-reset", &x_reset),
        ] {
            if let (true, Ok(value)) = (present & bit != 0, HeaderValue::from_bytes(bytes)) {
                // The parsers alone, on every value that can be a header.
                let _ = parse_retry_after(&value, now);
                let _ = parse_rate_limit_reset(&value, now);
                response = response.header(name, value);
            }
        }
        let head = response.body(()).unwrap().into_parts().0;
        match waits.requested(&head) {
            None => {}
            Some(Ok((wait, _))) => prop_assert!(wait <= max, "{wait:?} > {max:?}"),
            Some(Err(asked)) => prop_assert!(asked > max, "{asked:?} <= {max:?}"),
        }
    }

    #[test]
    fn every_date_form_agrees_with_httpdate(at in instant(), now in instant(), form in 0usize..3) {
        let forms = forms(at);
        let text = &forms[form % forms.len()];
        let expected = UNIX_EPOCH + Duration::from_secs(at);
        prop_assert_eq!(httpdate::parse_http_date(text).ok(), Some(expected), "{}", text);
        let now = UNIX_EPOCH + Duration::from_secs(now);
        let wait = parse_retry_after(&HeaderValue::from_str(text).unwrap(), now);
        let want = expected.duration_since(now).unwrap_or(Duration::ZERO);
        prop_assert_eq!(wait, Some(want), "{}", text);
    }

    #[test]
    fn delta_seconds_are_read_exactly_or_saturate(digits in "[0-9]{1,40}", now in instant()) {
        let now = UNIX_EPOCH + Duration::from_secs(now);
        let value = HeaderValue::from_str(&digits).unwrap();
        let exact = digits.parse::<u64>().ok();
        let want = Duration::from_secs(exact.unwrap_or(u64::MAX));
        prop_assert_eq!(parse_retry_after(&value, now), Some(want));
        match exact {
            Some(secs) if secs < 1_000_000_000 => {
                prop_assert_eq!(parse_rate_limit_reset(&value, now), Some(Duration::from_secs(secs)));
            }
            // A Unix timestamp: the wait until it, or nothing past SystemTime's range.
            _ => {
                if let Some(wait) = parse_rate_limit_reset(&value, now) {
                    let at = UNIX_EPOCH + Duration::from_secs(exact.unwrap_or(u64::MAX));
                    prop_assert_eq!(wait, at.duration_since(now).unwrap_or(Duration::ZERO));
                }
            }
        }
    }
}

#[test]
fn the_boundaries_are_the_dates_they_say() {
    let expect = [
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "Tue, 29 Feb 1972 00:00:00 GMT",
        "Sat, 01 Jan 2000 00:00:00 GMT",
        "Tue, 29 Feb 2000 00:00:00 GMT",
        "Wed, 01 Mar 2000 00:00:00 GMT",
        "Tue, 19 Jan 2038 03:14:07 GMT",
        "Mon, 31 Dec 2068 00:00:00 GMT",
        "Wed, 01 Jan 2070 00:00:00 GMT",
        "Mon, 01 Mar 2100 00:00:00 GMT",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ];
    for (secs, text) in BOUNDARIES.iter().zip(expect) {
        let at: SystemTime = UNIX_EPOCH + Duration::from_secs(*secs);
        assert_eq!(httpdate::fmt_http_date(at), text);
    }
}
