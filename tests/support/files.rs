//! An in-memory file server that honours `Range` and `If-Range` and breaks its bodies on
//! purpose: for the resumed downloads, on the paused clock.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use tower::Service;

/// How a body the server sends breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Break {
    /// It does not.
    Never,
    /// With a connection reset, at every multiple of this many bytes of the file.
    ResetEvery(usize),
    /// It stops sending, for good, at every multiple of this many bytes.
    StallEvery(usize),
    /// With an error that is not the transport's, at this byte.
    BadAt(usize),
    /// With a connection reset at this byte of the first response only.
    ResetFirstAt(usize),
}

/// What the server was asked, per request.
#[derive(Clone, Debug)]
pub struct Asked {
    pub headers: HeaderMap,
}

#[derive(Debug)]
struct State {
    /// The file, and its tag; `versions` replace it, one per request, when given.
    content: Bytes,
    etag: Option<String>,
    next: Vec<(Bytes, String)>,
    ranges: bool,
    brk: Break,
    asked: Vec<Asked>,
    chunk: usize,
    /// Responses sent.
    sent: usize,
}

/// The server. Clones share the file and the record.
#[derive(Clone, Debug)]
pub struct Files(Arc<Mutex<State>>);

impl Files {
    /// Serves `content` with the strong tag `"v1"`, honouring ranges, breaking as `brk`
    /// says, in chunks of 16 KiB.
    pub fn new(content: Bytes, brk: Break) -> Self {
        Files(Arc::new(Mutex::new(State {
            content,
            etag: Some("\"v1\"".into()),
            next: Vec::new(),
            ranges: true,
            brk,
            asked: Vec::new(),
            chunk: 16 * 1024,
            sent: 0,
        })))
    }

    /// Without an `ETag` (and without `Last-Modified`).
    pub fn untagged(self) -> Self {
        self.0.lock().unwrap().etag = None;
        self
    }

    /// Ignores `Range`, as Python's `http.server` does: always `200`, whole.
    pub fn ignoring_ranges(self) -> Self {
        self.0.lock().unwrap().ranges = false;
        self
    }

    /// After the first request, the file is `content`, tagged `etag`.
    pub fn then_replaced(self, content: Bytes, etag: &str) -> Self {
        self.0.lock().unwrap().next.push((content, etag.into()));
        self
    }

    /// What each request asked.
    pub fn asked(&self) -> Vec<Asked> {
        self.0.lock().unwrap().asked.clone()
    }
}

impl<B> Service<Request<B>> for Files {
    type Response = Response<Cut>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Cut>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let mut state = self.0.lock().unwrap();
        state.asked.push(Asked {
            headers: request.headers().clone(),
        });
        let (content, etag) = (state.content.clone(), state.etag.clone());
        if !state.next.is_empty() {
            let (next, tag) = state.next.remove(0);
            state.content = next;
            state.etag = Some(tag);
        }
        let len = content.len();
        // `bytes=N-`, when honoured and the validator still holds.
        let start = request
            .headers()
            .get("range")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes="))
            .and_then(|v| v.strip_suffix('-'))
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|_| state.ranges)
            .filter(|_| match request.headers().get("if-range") {
                Some(tag) => Some(tag.to_str().unwrap()) == etag.as_deref(),
                None => true,
            });
        let mut response = Response::builder();
        if let Some(tag) = &etag {
            response = response.header("etag", tag);
        }
        let from = start.unwrap_or(0).min(len);
        let response = match start {
            Some(_) => response
                .status(StatusCode::PARTIAL_CONTENT)
                .header(
                    "content-range",
                    format!("bytes {from}-{}/{len}", len.max(1) - 1),
                )
                .header("content-length", len - from),
            None => response
                .status(StatusCode::OK)
                .header("content-length", len),
        };
        state.sent += 1;
        let brk = match state.brk {
            Break::ResetFirstAt(_) if state.sent > 1 => Break::Never,
            brk => brk,
        };
        let mut body = Cut {
            content,
            at: from,
            brk,
            chunk: state.chunk,
            broke: false,
            limit: None,
        };
        body.limit = body.next_break();
        ready(Ok(response.body(body).unwrap()))
    }
}

/// A body of the file from a byte on, that breaks as told.
#[derive(Debug)]
pub struct Cut {
    content: Bytes,
    at: usize,
    brk: Break,
    chunk: usize,
    broke: bool,
    /// Where this body breaks.
    limit: Option<usize>,
}

impl Cut {
    /// The first byte at which a body from `at` on breaks.
    fn next_break(&self) -> Option<usize> {
        match self.brk {
            Break::Never => None,
            Break::ResetEvery(n) | Break::StallEvery(n) => Some((self.at / n + 1) * n),
            Break::BadAt(n) | Break::ResetFirstAt(n) => (n >= self.at).then_some(n),
        }
    }
}

/// An error of the server's own making, not the transport's.
#[derive(Debug)]
pub struct Corrupt;

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("corrupt")
    }
}

impl std::error::Error for Corrupt {}

impl Body for Cut {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.broke || self.at >= self.content.len() {
            return Poll::Ready(None);
        }
        let end = (self.at + self.chunk).min(self.content.len());
        let end = match self.limit {
            Some(b) if b == self.at => {
                return match self.brk {
                    Break::StallEvery(_) => Poll::Pending,
                    Break::BadAt(_) => {
                        self.broke = true;
                        Poll::Ready(Some(Err(Box::new(Corrupt))))
                    }
                    _ => {
                        self.broke = true;
                        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
                        Poll::Ready(Some(Err(Box::new(reset))))
                    }
                };
            }
            Some(b) => end.min(b),
            None => end,
        };
        let data = self.content.slice(self.at..end);
        self.at = end;
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact((self.content.len() - self.at) as u64)
    }
}

/// `len` bytes that are not all the same: byte `i` is `i * 7 % 251`.
pub fn content(len: usize) -> Bytes {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}
