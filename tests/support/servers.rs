//! Real-socket servers on 127.0.0.1 with ports the OS picks: a hyper server that counts
//! connections, and raw TCP servers that misbehave.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Counters a server keeps.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl Counts {
    /// TCP connections accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Request heads received.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// A running server; it stops when dropped.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    pub counts: Counts,
    task: JoinHandle<()>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A hyper HTTP/1.1 server (keep-alive on) answering with `handler`. The request number
/// (from 0) is passed along.
pub async fn http<F, Fut>(handler: F) -> Server
where
    F: Fn(usize, Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    serve(handler, Wire::Http1).await
}

/// A hyper HTTP/2 server (prior knowledge) answering with `handler`. The request number
/// (from 0) is passed along.
pub async fn http2<F, Fut>(handler: F) -> Server
where
    F: Fn(usize, Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    serve(handler, Wire::Http2).await
}

/// How a server speaks on its connections.
#[derive(Clone)]
enum Wire {
    Http1,
    Http2,
    /// HTTP/1.1 over TLS.
    Tls(tokio_rustls::TlsAcceptor),
}

/// A hyper server on a loopback port the OS picks, answering with `handler`.
async fn serve<F, Fut>(handler: F, wire: Wire) -> Server
where
    F: Fn(usize, Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = Counts::default();
    let c = counts.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            c.connections.fetch_add(1, Ordering::SeqCst);
            let (c, handler, wire) = (c.clone(), handler.clone(), wire.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let n = c.requests.fetch_add(1, Ordering::SeqCst);
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(n, req).await) }
                });
                let _ = match wire {
                    Wire::Http1 => {
                        hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                    }
                    Wire::Http2 => {
                        hyper::server::conn::http2::Builder::new(
                            hyper_util::rt::TokioExecutor::new(),
                        )
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                    }
                    Wire::Tls(acceptor) => {
                        let Ok(tls) = acceptor.accept(stream).await else {
                            return;
                        };
                        hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), service)
                            .await
                    }
                };
            });
        }
    });
    Server { addr, counts, task }
}

/// What a raw TCP fault server does once it has read a request head (and its
/// `content-length` body).
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Resets the connection (RST).
    Reset,
    /// Closes the connection (FIN) without answering.
    Close,
    /// Never answers, keeping the connection open.
    Stall,
}

/// A raw TCP server that misbehaves with `fault` on every connection.
pub async fn fault(fault: Fault) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = Counts::default();
    let c = counts.clone();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            c.connections.fetch_add(1, Ordering::SeqCst);
            if read_request(&mut stream).await {
                c.requests.fetch_add(1, Ordering::SeqCst);
            }
            match fault {
                Fault::Reset => {
                    stream.set_zero_linger().unwrap();
                    drop(stream);
                }
                Fault::Close => {
                    let _ = stream.shutdown().await;
                    drop(stream);
                }
                Fault::Stall => held.push(stream),
            }
        }
    });
    Server { addr, counts, task }
}

/// An address on which nothing listens: connecting to it is refused.
pub async fn refused() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// Reads one request head and its `content-length` body. Returns whether a whole head
/// arrived.
async fn read_request(stream: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    true
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What a [`recording`] server saw of one request.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: http::Method,
    pub uri: http::Uri,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// A server that reads every request whole, records it, and answers `200 ok`.
pub async fn recording() -> (Server, Record) {
    let (handler, seen) = recorder();
    (http(move |n, req| handler(n, req)).await, seen)
}

/// What a [`recording`] server answered with, shareable.
type Reply = std::pin::Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>;

/// The requests a [`recording`] server saw.
pub type Record = Arc<std::sync::Mutex<Vec<Received>>>;

/// A request handler of a [`recording`] server.
type Handler = Arc<dyn Fn(usize, Request<Incoming>) -> Reply + Send + Sync>;

/// A handler that records every request and answers `200 ok`, and its record.
fn recorder() -> (Handler, Record) {
    use http_body_util::BodyExt;
    let seen = Record::default();
    let record = seen.clone();
    let handler = Arc::new(move |_, req: Request<Incoming>| -> Reply {
        let record = record.clone();
        Box::pin(async move {
            let (head, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            record.lock().unwrap().push(Received {
                method: head.method,
                uri: head.uri,
                headers: head.headers,
                body,
            });
            Response::new(Full::new(Bytes::from_static(b"ok")))
        })
    });
    (handler, seen)
}

/// An HTTPS server on loopback that records every request (as [`recording`]), with a
/// certificate for `localhost` and `127.0.0.1` signed by a CA made for it. Its third part is
/// the CA certificate in a PEM file, for a client's `--cacert`.
pub async fn https_recording() -> (Server, Record, TestCa) {
    let ca = TestCa::new();
    let (handler, seen) = recorder();
    let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config());
    let server = serve(move |n, req| handler(n, req), Wire::Tls(acceptor)).await;
    (server, seen, ca)
}

/// A CA made for a test, and a certificate it signed for `localhost` and `127.0.0.1`.
pub struct TestCa {
    /// The CA certificate, in a PEM file that is removed with this value.
    pub pem_file: std::path::PathBuf,
    leaf: rustls::pki_types::CertificateDer<'static>,
    key: Vec<u8>,
}

impl TestCa {
    fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        static N: AtomicUsize = AtomicUsize::new(0);
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(DnType::CommonName, "retryable-http test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let leaf =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = leaf.signed_by(&key, &issuer).unwrap();
        let pem_file = std::env::temp_dir().join(format!(
            "retryable-http-test-ca-{}-{}.pem",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::write(&pem_file, ca_cert.pem()).unwrap();
        TestCa {
            pem_file,
            leaf: leaf.der().clone(),
            key: key.serialize_der(),
        }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(self.key.clone().into());
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![self.leaf.clone()], key)
        .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pem_file);
    }
}
