//! What a gRPC response's head says of its call, and the metadata retries are driven by:
//! `grpc-status`, `grpc-retry-pushback-ms` and `grpc-timeout`.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, response};

use crate::grpc_code::{Code, status_in_headers};

/// What a response head says of its gRPC call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The call ended with this status, known from the head alone: a Trailers-Only
    /// response (`grpc-status` in the headers), or an HTTP error without one, mapped as
    /// gRPC maps HTTP statuses.
    Status(Code),
    /// The server sent its Response-Headers: messages and the status follow in the body,
    /// and the call is committed to the caller. gRFC A6 retries no call past this point.
    Committed,
}

/// What a gRPC response head says of its call.
///
/// - `grpc-status` in the headers: a Trailers-Only response, and its status, whatever the
///   HTTP status.
/// - Otherwise an HTTP status other than `200`: the status gRPC maps it to (400 →
///   INTERNAL, 401 → UNAUTHENTICATED, 403 → PERMISSION_DENIED, 404 → UNIMPLEMENTED; 429,
///   502, 503 and 504 → UNAVAILABLE; any other → UNKNOWN), as tonic infers it.
/// - Otherwise, a `200` that started the call's response: [`Outcome::Committed`].
pub fn outcome(head: &response::Parts) -> Outcome {
    if let Some(code) = status_in_headers(&head.headers) {
        return Outcome::Status(code);
    }
    match head.status {
        StatusCode::OK => Outcome::Committed,
        status => Outcome::Status(from_http(status)),
    }
}

/// `grpc-retry-pushback-ms`.
const PUSHBACK: HeaderName = HeaderName::from_static("grpc-retry-pushback-ms");

/// The gRPC status of an HTTP error response that carries none.
fn from_http(status: StatusCode) -> Code {
    match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// What the server asked of retries with `grpc-retry-pushback-ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushback {
    /// It asked nothing: the backoff schedule applies.
    None,
    /// Retry after exactly this long; later retries start the backoff over.
    After(Duration),
    /// Do not retry: the value was negative or malformed, which A6 reads as the server
    /// asking the client not to retry.
    Refused,
}

/// The server's pushback in `headers` (the trailers of the attempt, or the headers of a
/// Trailers-Only response).
pub fn pushback(headers: &HeaderMap) -> Pushback {
    let Some(value) = headers.get(PUSHBACK) else {
        return Pushback::None;
    };
    // A decimal integer, sign allowed, as grpc-go parses it.
    match value.to_str().ok().and_then(|s| s.parse::<i64>().ok()) {
        Some(millis) if millis >= 0 => {
            Pushback::After(Duration::from_millis(millis.unsigned_abs()))
        }
        // Negative, malformed or out of range.
        _ => Pushback::Refused,
    }
}

/// The largest value `grpc-timeout` carries: 8 digits.
const MAX_TIMEOUT_VALUE: u64 = 99_999_999;

/// The units of `grpc-timeout`, finest first, with their length in nanoseconds.
const UNITS: [(u8, u64); 6] = [
    (b'n', 1),
    (b'u', 1_000),
    (b'm', 1_000_000),
    (b'S', 1_000_000_000),
    (b'M', 60 * 1_000_000_000),
    (b'H', 3_600 * 1_000_000_000),
];

/// The duration a `grpc-timeout` value gives: 1 to 8 digits and a unit (`H`, `M`, `S`,
/// `m`, `u`, `n`). `None` for a value gRPC would reject.
pub fn parse_timeout(value: &HeaderValue) -> Option<Duration> {
    let (unit, digits) = value.as_bytes().split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let nanos_per = UNITS.iter().find(|(u, _)| u == unit)?.1;
    let count = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(mul_nanos(count, nanos_per))
}

/// `count` units of `nanos_per` nanoseconds, as a duration that does not overflow.
fn mul_nanos(count: u64, nanos_per: u64) -> Duration {
    let total = u128::from(count) * u128::from(nanos_per);
    let secs = total / 1_000_000_000;
    let nanos = (total % 1_000_000_000) as u32;
    Duration::new(u64::try_from(secs).unwrap_or(u64::MAX), nanos)
}

/// `timeout` as a `grpc-timeout` value: in the finest unit whose count fits in 8 digits,
/// rounded up, so that the server never sees less time than is left.
pub fn format_timeout(timeout: Duration) -> HeaderValue {
    let nanos = timeout.as_nanos();
    let (count, unit) = UNITS
        .iter()
        .map(|&(unit, per)| (nanos.div_ceil(u128::from(per)), unit))
        .find(|&(count, _)| count <= u128::from(MAX_TIMEOUT_VALUE))
        // Longer than 99,999,999 hours: the longest value there is.
        .unwrap_or((u128::from(MAX_TIMEOUT_VALUE), b'H'));
    let mut text = count.to_string().into_bytes();
    text.push(unit);
    HeaderValue::from_bytes(&text).expect("digits and a letter make a header value")
}

#[cfg(test)]
mod tests;
