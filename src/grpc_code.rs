//! [`Code`]: gRPC's status codes, and the one in a head's `grpc-status`.

use std::fmt;
use std::str::FromStr;

use http::{HeaderMap, HeaderName};

/// A gRPC status code, as `grpc-status` carries it and a service config names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Code {
    /// `0`: not an error.
    Ok,
    /// `1`: the caller cancelled the call.
    Cancelled,
    /// `2`: an error with no better code; also what a malformed `grpc-status` means.
    Unknown,
    /// `3`: the request is invalid, whatever the state of the server.
    InvalidArgument,
    /// `4`: the deadline passed before the call completed.
    DeadlineExceeded,
    /// `5`: the entity asked for does not exist.
    NotFound,
    /// `6`: the entity to create exists already.
    AlreadyExists,
    /// `7`: the caller may not do this.
    PermissionDenied,
    /// `8`: a quota or a resource ran out.
    ResourceExhausted,
    /// `9`: the system is not in the state the call needs.
    FailedPrecondition,
    /// `10`: the call was aborted, typically by a concurrency conflict.
    Aborted,
    /// `11`: the call went past a valid range.
    OutOfRange,
    /// `12`: the server does not implement the method.
    Unimplemented,
    /// `13`: an invariant of the server broke.
    Internal,
    /// `14`: the service is unavailable now; the code a retry is for.
    Unavailable,
    /// `15`: data was lost or corrupted.
    DataLoss,
    /// `16`: the caller did not authenticate.
    Unauthenticated,
}

const CODES: [(Code, &str); 17] = [
    (Code::Ok, "OK"),
    (Code::Cancelled, "CANCELLED"),
    (Code::Unknown, "UNKNOWN"),
    (Code::InvalidArgument, "INVALID_ARGUMENT"),
    (Code::DeadlineExceeded, "DEADLINE_EXCEEDED"),
    (Code::NotFound, "NOT_FOUND"),
    (Code::AlreadyExists, "ALREADY_EXISTS"),
    (Code::PermissionDenied, "PERMISSION_DENIED"),
    (Code::ResourceExhausted, "RESOURCE_EXHAUSTED"),
    (Code::FailedPrecondition, "FAILED_PRECONDITION"),
    (Code::Aborted, "ABORTED"),
    (Code::OutOfRange, "OUT_OF_RANGE"),
    (Code::Unimplemented, "UNIMPLEMENTED"),
    (Code::Internal, "INTERNAL"),
    (Code::Unavailable, "UNAVAILABLE"),
    (Code::DataLoss, "DATA_LOSS"),
    (Code::Unauthenticated, "UNAUTHENTICATED"),
];

impl Code {
    /// The code numbered `n`, if there is one.
    pub fn from_i32(n: i32) -> Option<Code> {
        usize::try_from(n)
            .ok()
            .and_then(|i| CODES.get(i))
            .map(|&(code, _)| code)
    }

    /// The code's number.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The code's name, as a service config writes it: `"UNAVAILABLE"`.
    pub fn as_str(self) -> &'static str {
        CODES[self as usize].1
    }

    /// The code a `grpc-status` value gives. A value that is not one of the 17 codes is
    /// [`Unknown`](Code::Unknown), as tonic and grpc-go read it.
    pub fn from_header(value: &[u8]) -> Code {
        std::str::from_utf8(value)
            .ok()
            // The canonical decimal form only: no sign, no space, no leading zero.
            .filter(|s| matches!(s.as_bytes(), [b'0'..=b'9'] | [b'1'..=b'9', b'0'..=b'9']))
            .and_then(|s| s.parse().ok())
            .and_then(Code::from_i32)
            .unwrap_or(Code::Unknown)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no gRPC status code: the error of [`Code::from_str`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownCode(String);

impl fmt::Display for UnknownCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no gRPC status code is named {:?}", self.0)
    }
}

impl std::error::Error for UnknownCode {}

impl FromStr for Code {
    type Err = UnknownCode;

    /// Reads a code by name, in any case (`"UNAVAILABLE"`, `"unavailable"`), as grpc-go and
    /// C-core read a service config's status codes.
    fn from_str(name: &str) -> Result<Code, UnknownCode> {
        CODES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|&(code, _)| code)
            .ok_or_else(|| UnknownCode(name.to_owned()))
    }
}

#[cfg(test)]
mod tests;

/// `grpc-status`, as a name looked up without parsing it.
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// The status in `grpc-status`, when the headers carry one.
#[inline]
pub(crate) fn status_in_headers(headers: &HeaderMap) -> Option<Code> {
    let status = headers.get(GRPC_STATUS)?;
    Some(Code::from_header(status.as_bytes()))
}
