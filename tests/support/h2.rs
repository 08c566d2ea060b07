//! HTTP/2 servers built from the `h2` crate, which can refuse streams and send `GOAWAY`
//! frames at chosen moments: over in-memory pipes (virtual time) and on loopback.

use std::future::{Ready, ready};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use h2::Reason;
use h2::server::SendResponse;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower::Service;

use super::duplex::Pipe;

/// What the server does with a connection as soon as it is up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conn {
    /// Serves its streams.
    Serve,
    /// Sends `GOAWAY(last_stream_id = 0, reason)` as soon as the client's first `HEADERS`
    /// frame arrives, without processing it (raw frames: h2's server would count the stream
    /// as processed), then closes when the client does.
    GoAway(Reason),
    /// Sends `GOAWAY(last_stream_id = 0, reason)` right after the handshake, before the
    /// client's request can be sent, then closes.
    GoAwayAtOnce(Reason),
    /// Accepts the first stream without answering it, sends `GOAWAY(last_stream_id = that
    /// stream, NO_ERROR)`, and closes the connection.
    GoAwayAfterFirst,
    /// Answers the client's first `HEADERS` frame with a `DATA` frame on stream 0, which
    /// the client must treat as a connection error: it sends `GOAWAY(PROTOCOL_ERROR)`
    /// itself.
    BreakProtocol,
}

impl Conn {
    /// The raw frame that answers the client's first `HEADERS`, for the plans that never
    /// hand the connection to h2's server.
    fn raw_answer(self) -> Option<Vec<u8>> {
        match self {
            Conn::GoAway(reason) => {
                let mut goaway = 0u32.to_be_bytes().to_vec();
                goaway.extend(u32::from(reason).to_be_bytes());
                Some(frame(GOAWAY, 0, 0, &goaway))
            }
            Conn::BreakProtocol => Some(frame(DATA, 0, 0, b"not on stream 0")),
            Conn::Serve | Conn::GoAwayAtOnce(_) | Conn::GoAwayAfterFirst => None,
        }
    }
}

/// What the server does with one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Reads the whole request body, then answers with this status.
    Answer(u16),
    /// Answers with this status at once, without reading the request body.
    AnswerEarly(u16),
    /// Resets the stream with this reason, without reading it.
    Reset(Reason),
    /// Reads the whole request body, then answers as a gRPC server: with this status in
    /// a Trailers-Only response, or, for 0, a message (`h2`) and an OK status in trailers.
    Grpc(u16),
}

/// What the server saw of one stream.
#[derive(Clone, Debug)]
pub struct Seen {
    pub connection: usize,
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    /// The request body, when it was read.
    pub body: Option<Bytes>,
    pub at: Duration,
}

type ConnPlan = Arc<dyn Fn(usize) -> Conn + Send + Sync>;
type StreamPlan = Arc<dyn Fn(usize) -> Stream + Send + Sync>;

/// An HTTP/2 server: `conns(n)` says what to do with connection `n`, `streams(n)` with the
/// `n`-th stream it accepts (both from 0).
#[derive(Clone)]
pub struct H2Server {
    conns: ConnPlan,
    streams: StreamPlan,
    connections: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// When each connection arrived.
    arrivals: Arc<Mutex<Vec<Duration>>>,
    created: Instant,
}

impl H2Server {
    pub fn new(
        conns: impl Fn(usize) -> Conn + Send + Sync + 'static,
        streams: impl Fn(usize) -> Stream + Send + Sync + 'static,
    ) -> Self {
        H2Server {
            conns: Arc::new(conns),
            streams: Arc::new(streams),
            connections: Arc::default(),
            accepted: Arc::default(),
            seen: Arc::default(),
            arrivals: Arc::default(),
            created: Instant::now(),
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// When each connection arrived, from the server's creation.
    pub fn arrivals(&self) -> Vec<Duration> {
        self.arrivals.lock().unwrap().clone()
    }

    /// A hyper-util client that speaks HTTP/2 with prior knowledge over in-memory pipes to
    /// this server.
    pub fn client<B>(&self) -> Client<H2Pipes, B>
    where
        B: http_body::Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build(H2Pipes(self.clone()))
    }

    /// Serves on a loopback port until the returned handle is dropped.
    pub async fn listen(&self) -> Listening {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = self.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move { server.serve(stream).await });
            }
        });
        Listening { addr, task }
    }

    /// Serves one connection.
    pub async fn serve<T>(&self, io: T)
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let n = self.connections.fetch_add(1, Ordering::SeqCst);
        self.arrivals.lock().unwrap().push(self.created.elapsed());
        let plan = (self.conns)(n);
        if let Some(answer) = plan.raw_answer() {
            let _ = answer_headers(io, answer).await;
            return;
        }
        let Ok(mut conn) = h2::server::handshake(io).await else {
            return;
        };
        match plan {
            Conn::Serve | Conn::GoAway(_) | Conn::BreakProtocol => {}
            Conn::GoAwayAtOnce(reason) => {
                // NOTE: nothing of the client's streams has been read yet, so the GOAWAY's
                // last stream id is 0.
                conn.abrupt_shutdown(reason);
                while conn.accept().await.is_some() {}
                return;
            }
            Conn::GoAwayAfterFirst => {
                let Some(Ok((request, respond))) = conn.accept().await else {
                    return;
                };
                self.record(n, &request, None);
                conn.abrupt_shutdown(Reason::NO_ERROR);
                while conn.accept().await.is_some() {}
                // Only now the stream goes, unanswered, with the connection.
                drop((request, respond));
                return;
            }
        }
        while let Some(Ok((request, respond))) = conn.accept().await {
            let plan = (self.streams)(self.accepted.fetch_add(1, Ordering::SeqCst));
            let server = self.clone();
            tokio::spawn(async move { server.stream(n, request, respond, plan).await });
        }
    }

    async fn stream(
        &self,
        connection: usize,
        request: Request<h2::RecvStream>,
        mut respond: SendResponse<Bytes>,
        plan: Stream,
    ) {
        let status = match plan {
            Stream::Reset(reason) => {
                self.record(connection, &request, None);
                respond.send_reset(reason);
                return;
            }
            Stream::AnswerEarly(status) => {
                self.record(connection, &request, None);
                status
            }
            Stream::Answer(status) | Stream::Grpc(status) => {
                let (head, mut body) = request.into_parts();
                let mut all = Vec::new();
                while let Some(Ok(data)) = body.data().await {
                    let _ = body.flow_control().release_capacity(data.len());
                    all.extend_from_slice(&data);
                }
                let request = Request::from_parts(head, ());
                self.record(connection, &request, Some(Bytes::from(all)));
                if let Stream::Grpc(code) = plan {
                    answer_grpc(respond, code);
                    return;
                }
                status
            }
        };
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        if let Ok(mut send) = respond.send_response(response, false) {
            let _ = send.send_data(Bytes::from_static(b"h2"), true);
        }
    }

    fn record<B>(&self, connection: usize, request: &Request<B>, body: Option<Bytes>) {
        self.seen.lock().unwrap().push(Seen {
            connection,
            method: request.method().clone(),
            uri: request.uri().clone(),
            headers: request.headers().clone(),
            body,
            at: self.created.elapsed(),
        });
    }
}

/// Answers a gRPC call: a Trailers-Only response with `code`, or for 0, the message `h2`
/// and an OK status in trailers.
fn answer_grpc(mut respond: SendResponse<Bytes>, code: u16) {
    let mut response = Response::new(());
    let headers = response.headers_mut();
    headers.insert("content-type", "application/grpc".parse().unwrap());
    if code != 0 {
        headers.insert("grpc-status", code.into());
        let _ = respond.send_response(response, true);
        return;
    }
    let Ok(mut send) = respond.send_response(response, false) else {
        return;
    };
    // Uncompressed, 2 bytes long.
    let _ = send.send_data(Bytes::from_static(b"\0\0\0\0\x02h2"), false);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", 0.into());
    let _ = send.send_trailers(trailers);
}

/// A frame: its 9-byte header, then `payload`.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut frame = len.to_be_bytes()[1..].to_vec();
    frame.extend([kind, flags]);
    frame.extend(stream.to_be_bytes());
    frame.extend(payload);
    frame
}

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;

/// Speaks just enough HTTP/2 to answer the client's first `HEADERS` frame with `answer`
/// (raw bytes), and reads on until the client closes.
async fn answer_headers<T>(mut io: T, answer: Vec<u8>) -> io::Result<()>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    const ACK: u8 = 0x1;
    let mut preface = [0u8; 24];
    io.read_exact(&mut preface).await?;
    io.write_all(&frame(SETTINGS, 0, 0, &[])).await?;
    loop {
        let mut head = [0u8; 9];
        io.read_exact(&mut head).await?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        io.read_exact(&mut payload).await?;
        match head[3] {
            SETTINGS if head[4] & ACK == 0 => io.write_all(&frame(SETTINGS, ACK, 0, &[])).await?,
            HEADERS => {
                io.write_all(&answer).await?;
                io.flush().await?;
                let mut sink = [0u8; 4096];
                while io.read(&mut sink).await? > 0 {}
                return Ok(());
            }
            _ => {}
        }
    }
}

/// A server on a loopback port; it stops accepting when dropped.
pub struct Listening {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Listening {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A connector whose connections are in-memory pipes to an [`H2Server`].
#[derive(Clone)]
pub struct H2Pipes(H2Server);

impl Service<Uri> for H2Pipes {
    type Response = Pipe;
    type Error = io::Error;
    type Future = Ready<io::Result<Pipe>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let (client, server) = tokio::io::duplex(1024 * 1024);
        let h2 = self.0.clone();
        tokio::spawn(async move { h2.serve(server).await });
        ready(Ok(Pipe(TokioIo::new(client))))
    }
}
