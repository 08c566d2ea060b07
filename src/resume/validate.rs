//! What makes a resumed response the rest of the first one: the first response's
//! validators and length, the `Range` and `If-Range` of the request that resumes it, and
//! the checks of the `206` that answers.

use std::fmt;

use http::header::{
    ACCEPT_RANGES, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED,
    RANGE,
};
use http::{HeaderMap, HeaderValue, StatusCode, response};

/// What the first response said of the representation it carries: enough to ask for the
/// rest of it, and to tell whether an answer is the rest of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Representation {
    /// The validator sent in `If-Range`: a strong `ETag`, or `Last-Modified` where there is
    /// no strong `ETag`; `None` only when resuming without one was allowed.
    validator: Option<HeaderValue>,
    /// The strong `ETag`, which a `206` must repeat if it carries one.
    etag: Option<HeaderValue>,
    /// The length of the whole body, when the first response said it.
    length: Option<u64>,
    /// The `Content-Encoding`, which a `206` must repeat: ranges count the bytes on the wire.
    encoding: Option<HeaderValue>,
}

/// Why a response cannot be resumed at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NotResumable {
    /// Only a `200` to a request without a `Range` of its own is resumed.
    Status,
    /// The server said `Accept-Ranges: none`.
    NoRanges,
    /// Neither a strong `ETag` nor `Last-Modified`, and resuming without one is not allowed.
    NoValidator,
}

impl Representation {
    /// The representation of the first response `head`; `unvalidated` when it may be
    /// resumed without a validator.
    pub(crate) fn of(head: &response::Parts, unvalidated: bool) -> Result<Self, NotResumable> {
        if head.status != StatusCode::OK {
            return Err(NotResumable::Status);
        }
        let headers = &head.headers;
        if headers
            .get(ACCEPT_RANGES)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"none"))
        {
            return Err(NotResumable::NoRanges);
        }
        // A weak tag may not go in `If-Range` (RFC 9110 §13.1.5).
        let etag = headers.get(ETAG).filter(|v| is_strong(v)).cloned();
        let validator = etag.clone().or_else(|| headers.get(LAST_MODIFIED).cloned());
        if validator.is_none() && !unvalidated {
            return Err(NotResumable::NoValidator);
        }
        Ok(Representation {
            validator,
            etag,
            length: number(headers.get(CONTENT_LENGTH)),
            encoding: headers.get(CONTENT_ENCODING).cloned(),
        })
    }

    /// The length of the whole body, when known.
    pub(crate) fn length(&self) -> Option<u64> {
        self.length
    }

    /// Sets the `Range` that asks for the body from byte `offset` on, and the `If-Range`
    /// that makes the server send all of it instead if it changed.
    pub(crate) fn ask_from(&self, offset: u64, headers: &mut HeaderMap) {
        headers.insert(RANGE, HeaderValue::from(RangeFrom(offset)));
        match &self.validator {
            Some(validator) => headers.insert(IF_RANGE, validator.clone()),
            None => headers.remove(IF_RANGE),
        };
    }

    /// Checks that `head` answers the request for the body from byte `offset` on with the
    /// rest of this representation.
    pub(crate) fn check(&self, offset: u64, head: &response::Parts) -> Result<(), Rejected> {
        if head.status != StatusCode::PARTIAL_CONTENT {
            return Err(Rejected::NotPartial(head.status));
        }
        let headers = &head.headers;
        if let (Some(first), Some(now)) = (&self.etag, headers.get(ETAG)) {
            if first != now {
                return Err(Rejected::ValidatorChanged);
            }
        }
        if headers.get(CONTENT_ENCODING) != self.encoding.as_ref() {
            return Err(Rejected::EncodingChanged);
        }
        let range = headers
            .get(CONTENT_RANGE)
            .ok_or(Rejected::BadContentRange)
            .and_then(|v| ContentRange::parse(v.as_bytes()).ok_or(Rejected::BadContentRange))?;
        if range.first != offset {
            return Err(Rejected::WrongStart {
                expected: offset,
                got: range.first,
            });
        }
        match (self.length, range.complete) {
            (Some(expected), Some(got)) if expected != got => {
                Err(Rejected::LengthChanged { expected, got })
            }
            // The length was known and the answer does not say it.
            (Some(_), None) => Err(Rejected::BadContentRange),
            _ if range.complete.is_some_and(|len| range.last >= len) => {
                Err(Rejected::BadContentRange)
            }
            _ => Ok(()),
        }
    }
}

/// Why an answer to a resuming request was not taken as the rest of the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejected {
    /// Not `206 Partial Content`: a `200` means the server ignored the range or the
    /// resource changed since the first response.
    NotPartial(StatusCode),
    /// The `206` carries another `ETag` than the first response.
    ValidatorChanged,
    /// The `206` carries another `Content-Encoding` than the first response.
    EncodingChanged,
    /// The `206` has no `Content-Range`, or one that is not `bytes first-last/length`.
    BadContentRange,
    /// The `206` starts at another byte than the first one missing.
    WrongStart {
        /// The first byte missing.
        expected: u64,
        /// The first byte the answer carries.
        got: u64,
    },
    /// The `206` says the whole body has another length than the first response said.
    LengthChanged {
        /// The first response's length.
        expected: u64,
        /// The length the answer says.
        got: u64,
    },
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejected::NotPartial(status) => write!(f, "the server answered {status}, not 206"),
            Rejected::ValidatorChanged => f.write_str("the resource changed: another ETag"),
            Rejected::EncodingChanged => f.write_str("another Content-Encoding"),
            Rejected::BadContentRange => f.write_str("a missing or malformed Content-Range"),
            Rejected::WrongStart { expected, got } => {
                write!(f, "the range starts at byte {got}, not {expected}")
            }
            Rejected::LengthChanged { expected, got } => {
                write!(f, "the resource is {got} bytes long now, not {expected}")
            }
        }
    }
}

/// `bytes=N-`.
struct RangeFrom(u64);

impl From<RangeFrom> for HeaderValue {
    fn from(range: RangeFrom) -> HeaderValue {
        let text = format!("bytes={}-", range.0);
        HeaderValue::from_str(&text).expect("digits are a valid header value")
    }
}

/// A `Content-Range` of a `206`: `bytes first-last/complete`, `complete` being `*` when
/// unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ContentRange {
    pub(crate) first: u64,
    pub(crate) last: u64,
    pub(crate) complete: Option<u64>,
}

impl ContentRange {
    /// Parses `bytes first-last/complete` (RFC 9110 §14.4); `None` for anything else,
    /// an unsatisfied range (`bytes */length`) included.
    pub(crate) fn parse(value: &[u8]) -> Option<ContentRange> {
        let text = std::str::from_utf8(value).ok()?.trim();
        let (unit, rest) = text.split_once(' ')?;
        if !unit.eq_ignore_ascii_case("bytes") {
            return None;
        }
        let (range, complete) = rest.trim_start().split_once('/')?;
        let (first, last) = range.split_once('-')?;
        let (first, last) = (digits(first)?, digits(last)?);
        let complete = match complete {
            "*" => None,
            length => Some(digits(length)?),
        };
        (first <= last).then_some(ContentRange {
            first,
            last,
            complete,
        })
    }
}

/// A number of only ASCII digits (no sign, no spaces).
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A header's value as a number, when it is one.
fn number(value: Option<&HeaderValue>) -> Option<u64> {
    digits(value?.to_str().ok()?.trim())
}

/// Whether an entity tag is strong: `"…"`, not `W/"…"`.
fn is_strong(tag: &HeaderValue) -> bool {
    let bytes = tag.as_bytes();
    bytes.len() >= 2 && bytes[0] == b'"' && bytes[bytes.len() - 1] == b'"'
}

#[cfg(test)]
mod tests;
