//! A scripted in-memory upstream: it answers each attempt from a script and records what
//! it saw. It works on tokio's paused clock.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use retryable_http::error::BoxError;
use tokio::time::Instant;
use tower::Service;

/// How one attempt is answered.
#[derive(Clone, Debug)]
pub struct Reply {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    error: Option<io::ErrorKind>,
    read: Read,
    delay: Duration,
}

/// How much of the request body is read before answering.
#[derive(Clone, Copy, Debug)]
enum Read {
    /// All of it, like most servers.
    All,
    /// This many bytes; the rest is read afterwards, by a background task, after
    /// `later`: the server answered before the upload ended.
    Prefix { bytes: usize, later: Duration },
    /// Nothing: the body is dropped unread.
    Nothing,
    /// This many bytes; the rest is dropped unread: the server answered and closed the
    /// upload.
    Cut { bytes: usize },
}

impl Reply {
    pub fn status(code: u16) -> Self {
        Reply {
            status: StatusCode::from_u16(code).unwrap(),
            headers: Vec::new(),
            body: Bytes::new(),
            error: None,
            read: Read::All,
            delay: Duration::ZERO,
        }
    }

    pub fn ok() -> Self {
        Reply::status(200).body("ok")
    }

    /// Fails the attempt with an I/O error of this kind.
    pub fn error(kind: io::ErrorKind) -> Self {
        Reply {
            error: Some(kind),
            ..Reply::status(200)
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((
            HeaderName::from_static(name),
            HeaderValue::from_str(value).unwrap(),
        ));
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Answers after reading only `bytes` of the request body; the rest is read `later`.
    pub fn early(mut self, bytes: usize, later: Duration) -> Self {
        self.read = Read::Prefix { bytes, later };
        self
    }

    /// Answers after reading only `bytes` of the request body, and drops the rest unread.
    pub fn cut(mut self, bytes: usize) -> Self {
        self.read = Read::Cut { bytes };
        self
    }

    /// Answers without reading the request body.
    pub fn unread(mut self) -> Self {
        self.read = Read::Nothing;
        self
    }

    /// Answers after this long.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// What the upstream saw of one attempt.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    /// The data chunks read before answering, as they arrived.
    pub chunks: Vec<Bytes>,
    pub trailers: Option<HeaderMap>,
    /// The body error, if reading it failed.
    pub body_error: Option<String>,
    /// Whether the body reached its end before the answer.
    pub complete: bool,
    /// The number of data bytes read before answering.
    pub len: usize,
    /// The body's `is_end_stream()` and exact `size_hint()` when it arrived.
    pub end_stream_at_arrival: bool,
    pub exact_hint: Option<u64>,
    /// When the attempt arrived, from the upstream's creation.
    pub at: Duration,
    /// The attempt, as the layer says in the request's extensions.
    pub attempt: retryable_http::telemetry::AttemptInfo,
}

impl Seen {
    pub fn body(&self) -> Bytes {
        let mut all = BytesMut::new();
        for c in &self.chunks {
            all.extend_from_slice(c);
        }
        all.freeze()
    }
}

#[derive(Debug)]
struct State {
    script: VecDeque<Reply>,
    /// Answer for attempts beyond the script.
    otherwise: Reply,
    seen: Vec<Seen>,
    /// Bodies read after the answer (early replies), completed.
    late_bodies: Vec<Bytes>,
    /// Whether request chunks are kept in `Seen` (tests that count live bytes turn it off).
    keep_chunks: bool,
}

/// The upstream service. Clones share the script and the record.
#[derive(Clone, Debug)]
pub struct Upstream {
    state: Arc<Mutex<State>>,
    created: Instant,
}

impl Upstream {
    /// Answers from `script`, then `200 ok` forever.
    pub fn new(script: impl IntoIterator<Item = Reply>) -> Self {
        Upstream::with_default(script, Reply::ok())
    }

    /// Answers from `script`, then `otherwise` forever.
    pub fn with_default(script: impl IntoIterator<Item = Reply>, otherwise: Reply) -> Self {
        Upstream {
            state: Arc::new(Mutex::new(State {
                script: script.into_iter().collect(),
                otherwise,
                seen: Vec::new(),
                late_bodies: Vec::new(),
                keep_chunks: true,
            })),
            created: Instant::now(),
        }
    }

    /// Every attempt answered the same way.
    pub fn always(reply: Reply) -> Self {
        Upstream::with_default([], reply)
    }

    /// Records body lengths only, dropping the chunks as soon as they are read.
    pub fn forget_chunks(self) -> Self {
        self.state.lock().unwrap().keep_chunks = false;
        self
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn attempts(&self) -> usize {
        self.state.lock().unwrap().seen.len()
    }

    /// The arrival times of the attempts.
    pub fn times(&self) -> Vec<Duration> {
        self.seen().iter().map(|s| s.at).collect()
    }

    pub fn late_bodies(&self) -> Vec<Bytes> {
        self.state.lock().unwrap().late_bodies.clone()
    }
}

impl<B> Service<Request<B>> for Upstream
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Full<Bytes>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let at = self.created.elapsed();
        let (reply, keep_chunks) = {
            let mut state = self.state.lock().unwrap();
            let otherwise = state.otherwise.clone();
            (
                state.script.pop_front().unwrap_or(otherwise),
                state.keep_chunks,
            )
        };
        let state = self.state.clone();
        Box::pin(async move {
            let (head, mut body) = request.into_parts();
            let attempt = retryable_http::telemetry::AttemptInfo::in_extensions(&head.extensions);
            let end_stream_at_arrival = body.is_end_stream();
            let exact_hint = body.size_hint().exact();
            let mut seen = Seen {
                method: head.method,
                uri: head.uri,
                headers: head.headers,
                chunks: Vec::new(),
                trailers: None,
                body_error: None,
                complete: false,
                len: 0,
                end_stream_at_arrival,
                exact_hint,
                at,
                attempt,
            };
            let limit = match reply.read {
                Read::All => usize::MAX,
                Read::Prefix { bytes, .. } | Read::Cut { bytes } => bytes,
                Read::Nothing => 0,
            };
            let mut read = 0;
            while read < limit {
                match body.frame().await {
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => {
                            read += data.len();
                            seen.len += data.len();
                            if keep_chunks {
                                seen.chunks.push(data);
                            }
                        }
                        Err(frame) => seen.trailers = frame.into_trailers().ok(),
                    },
                    Some(Err(e)) => {
                        seen.body_error = Some(e.into().to_string());
                        break;
                    }
                    None => {
                        seen.complete = true;
                        break;
                    }
                }
            }
            let failed = seen.body_error.clone();
            state.lock().unwrap().seen.push(seen);
            if let Read::Prefix { later, .. } = reply.read {
                // The rest of the upload goes on after the answer.
                let state = state.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(later).await;
                    if let Ok(rest) = body.collect().await {
                        state.lock().unwrap().late_bodies.push(rest.to_bytes());
                    }
                });
            } else {
                drop(body);
            }
            if let Some(message) = failed {
                return Err(message.into());
            }
            tokio::time::sleep(reply.delay).await;
            if let Some(kind) = reply.error {
                return Err(io::Error::from(kind).into());
            }
            let mut response = Response::new(Full::new(reply.body));
            *response.status_mut() = reply.status;
            for (name, value) in reply.headers {
                response.headers_mut().append(name, value);
            }
            Ok(response)
        })
    }
}
