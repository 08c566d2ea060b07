use super::*;

#[test]
fn the_longest_wait_honoured_is_sixty_seconds_unless_set() {
    assert_eq!(ServerWaits::new().max_wait(), Duration::from_secs(60));
    let five = ServerWaits::new().max(Duration::from_secs(5));
    assert_eq!(five.max_wait(), Duration::from_secs(5));
    let shown = format!("{five:?}");
    assert!(shown.starts_with("ServerWaits { statuses: "), "{shown}");
    assert!(
        shown.ends_with("rate_limit_headers: true, max: 5s, .. }"),
        "{shown}"
    );
}

// Sun, 06 Nov 1994 08:49:30 GMT, the example date of RFC 9110.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770)
}

fn retry_after(v: &str) -> Option<Duration> {
    parse_retry_after(&HeaderValue::from_str(v).unwrap(), now())
}

fn reset(v: &str) -> Option<Duration> {
    parse_rate_limit_reset(&HeaderValue::from_str(v).unwrap(), now())
}

#[test]
fn delta_seconds() {
    assert_eq!(retry_after("0"), Some(Duration::ZERO));
    assert_eq!(retry_after("7"), Some(Duration::from_secs(7)));
    assert_eq!(retry_after(" 7 "), Some(Duration::from_secs(7)));
    assert_eq!(retry_after("007"), Some(Duration::from_secs(7)));
}

#[test]
fn every_http_date_form() {
    let seven = Some(Duration::from_secs(7));
    assert_eq!(retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), seven);
    assert_eq!(retry_after("Sunday, 06-Nov-94 08:49:37 GMT"), seven);
    assert_eq!(retry_after("Sun Nov  6 08:49:37 1994"), seven);
}

#[test]
fn date_in_the_past_or_now_is_zero() {
    assert_eq!(
        retry_after("Sun, 06 Nov 1994 08:49:30 GMT"),
        Some(Duration::ZERO)
    );
    assert_eq!(
        retry_after("Thu, 01 Jan 1970 00:00:00 GMT"),
        Some(Duration::ZERO)
    );
}

#[test]
fn garbage_is_ignored() {
    for v in [
        "",
        " ",
        "-1",
        "+5",
        "1.5",
        "5s",
        "0x10",
        "soon",
        "Sun, 06 Nov 1994",
        "NaN",
    ] {
        assert_eq!(retry_after(v), None, "{v:?}");
    }
    let non_utf8 = HeaderValue::from_bytes(b"\xff7").unwrap();
    assert_eq!(parse_retry_after(&non_utf8, now()), None);
}

#[test]
fn huge_delta_saturates() {
    assert_eq!(
        retry_after("99999999999999999999999999"),
        Some(Duration::from_secs(u64::MAX))
    );
    // go-retryablehttp #247: a server asked for 484289 hours.
    assert_eq!(
        retry_after("1743440400"),
        Some(Duration::from_secs(1_743_440_400))
    );
}

#[test]
fn rate_limit_reset_delta_and_timestamp() {
    // 2025-06-15, when a reset timestamp is ten digits long.
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    let reset = |v: &'static str| parse_rate_limit_reset(&HeaderValue::from_static(v), now);
    assert_eq!(reset("30"), Some(Duration::from_secs(30)));
    assert_eq!(reset("999999999"), Some(Duration::from_secs(999_999_999)));
    // The threshold itself is a timestamp: 2001, long past.
    assert_eq!(reset("1000000000"), Some(Duration::ZERO));
    assert_eq!(reset("1750000045"), Some(Duration::from_secs(45)));
    assert_eq!(reset("1749999000"), Some(Duration::ZERO));
}

#[test]
fn rate_limit_reset_garbage_is_ignored() {
    for v in ["", "-3", "soon", "1.5"] {
        assert_eq!(reset(v), None, "{v:?}");
    }
}

fn head(status: u16, headers: &[(&'static str, &'static str)]) -> response::Parts {
    let mut response = http::Response::new(());
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(*name, HeaderValue::from_static(value));
    }
    response.into_parts().0
}

#[test]
fn server_waits_honour_the_statuses_and_headers_they_are_set_for() {
    let waits = ServerWaits::new().wall_clock(now);
    let secs = |s| Some(Ok((Duration::from_secs(s), WaitReason::RetryAfter)));
    let reset = |s| Some(Ok((Duration::from_secs(s), WaitReason::RateLimitReset)));
    assert_eq!(
        waits.requested(&head(502, &[("retry-after", "7")])),
        secs(7)
    );
    assert_eq!(
        waits.requested(&head(503, &[("x-ratelimit-reset", "9")])),
        reset(9)
    );
    assert_eq!(waits.requested(&head(503, &[])), None);

    let go = ServerWaits::go().wall_clock(now);
    assert_eq!(go.requested(&head(502, &[("retry-after", "7")])), None);
    assert_eq!(go.requested(&head(429, &[("retry-after", "7")])), secs(7));
    assert_eq!(
        go.requested(&head(503, &[("x-ratelimit-reset", "9")])),
        None
    );

    let never = ServerWaits::never().only_rate_limited();
    assert_eq!(never.requested(&head(429, &[("retry-after", "7")])), None);
}

#[test]
fn a_wait_above_the_cap_is_reported_not_clamped() {
    let waits = ServerWaits::new()
        .max(Duration::from_secs(60))
        .wall_clock(now);
    assert_eq!(
        waits.requested(&head(503, &[("retry-after", "61")])),
        Some(Err(Duration::from_secs(61)))
    );
    assert_eq!(
        waits.requested(&head(503, &[("retry-after", "60")])),
        Some(Ok((Duration::from_secs(60), WaitReason::RetryAfter)))
    );
}

#[test]
fn retry_after_wins_over_rate_limit_headers() {
    let mut headers = HeaderMap::new();
    headers.insert(X_RATELIMIT_RESET.clone(), HeaderValue::from_static("9"));
    let wait = |headers: &HeaderMap| requested_wait(headers, now, true).map(|(w, _)| w);
    assert_eq!(wait(&headers), Some(Duration::from_secs(9)));
    assert_eq!(requested_wait(&headers, now, false), None);
    headers.insert(RATELIMIT_RESET.clone(), HeaderValue::from_static("8"));
    assert_eq!(wait(&headers), Some(Duration::from_secs(8)));
    headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
    assert_eq!(
        requested_wait(&headers, now, true),
        Some((Duration::from_secs(3), WaitReason::RetryAfter))
    );
    // A malformed Retry-After falls through to the next header.
    headers.insert(RETRY_AFTER, HeaderValue::from_static("later"));
    assert_eq!(
        requested_wait(&headers, now, true),
        Some((Duration::from_secs(8), WaitReason::RateLimitReset))
    );
}
