//! [`Effect`]: what a fault does, and [`Answer`]: the response it sends.

use std::io;

use bytes::Bytes;
use http::StatusCode;
use http::header::{HeaderName, HeaderValue};

/// What a fault does.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Effect {
    /// Answer without forwarding: the upstream never sees the request.
    Respond(Answer),
    /// Forward, then replace the upstream's answer: the upstream did the work, the client
    /// gets the fault. The seed's mitmproxy `response` hook.
    Replace(Answer),
    /// Fail like a transport: an [`io::Error`] of this kind, without forwarding. Kinds
    /// classify as a client would see them: `ConnectionRefused` never reached the server,
    /// `ConnectionReset` may have.
    Fail(io::ErrorKind),
    /// Refuse the request like an HTTP/2 server that resets its stream with
    /// `REFUSED_STREAM`, without forwarding: the error is an `h2::Error` with that reason,
    /// which [classifies](crate::classify) as never sent. Served by hyper's HTTP/2 server
    /// (as `examples/fault_proxy.rs --http2 --refuse-stream` does), it makes hyper send
    /// `RST_STREAM(REFUSED_STREAM)` to the client.
    RefuseStream,
    /// Forward unchanged (with the rule's [delay](super::Rule::delay), a slow upstream).
    Forward,
    /// Forward, then break the response body after this many bytes, like a connection that
    /// drops: the body fails with an [`io::Error`] of kind `ConnectionReset`. Served by
    /// hyper's HTTP/1.1 server (as `examples/fault_proxy.rs --cut-body` does), the connection
    /// closes mid-body, and the client sees a truncated message. Every response the rule
    /// applies to is cut this many bytes into its own body: a download resumed through it
    /// breaks every that many bytes.
    CutBody(u64),
    /// [`CutBody`](Effect::CutBody) for HTTP/2: the body fails with an `h2::Error` of reason
    /// `INTERNAL_ERROR`, which makes hyper's HTTP/2 server reset the stream.
    ResetBody(u64),
}

/// A response a fault sends.
#[derive(Clone, Debug)]
pub struct Answer {
    pub(super) status: StatusCode,
    pub(super) headers: Vec<(HeaderName, HeaderValue)>,
    pub(super) body: Bytes,
}

impl Answer {
    /// An empty response with `status`.
    pub fn new(status: StatusCode) -> Self {
        Answer {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }
}
