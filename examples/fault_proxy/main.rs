//! An HTTP proxy that injects faults: the seed's mitmproxy experiment, with no Python.
//!
//! ```text
//! cargo run --features fault --example fault_proxy -- --match your-api-endpoint
//! ```
//!
//! As a forward proxy (the default) it serves clients that send absolute-form requests
//! (`GET http://host/path`), the way go-retryablehttp or `examples/seed_client.rs` talk to
//! mitmproxy, and tunnels `CONNECT` requests for `https://`. With `--upstream URL` it is a
//! reverse proxy in front of one server. With `--http2` it speaks HTTP/2 with prior
//! knowledge (h2c) instead of HTTP/1.1.
//!
//! Each request that matches the rule gets the fault: by default the request is forwarded
//! and the upstream's answer replaced by `502 Bad Gateway Simulation` (`--after`, what the
//! seed's addon does); `--before` answers without forwarding; `--refuse-stream` (HTTP/2)
//! resets the request's stream with `REFUSED_STREAM`. A `CONNECT` the rule matches (on its
//! `host:port`) is answered with the fault's status, as mitmproxy answers when it cannot
//! reach the upstream: the client's tunnel fails before anything reached the server. With
//! `--mitm CA_FILE` tunnels are not blind: the proxy terminates TLS with certificates of a
//! CA it makes and writes to CA_FILE, and applies the rule to the requests inside, as
//! mitmproxy does.
//!
//! `--cut-body N` forwards the request and breaks the response body after N bytes: the
//! connection drops mid-body (HTTP/1.1), or the stream is reset (`--http2`). Every response
//! the rule matches is cut N bytes into its own body, so a download resumed through the
//! proxy breaks every N bytes. Response bodies are streamed, never held whole.
//!
//! One line per request goes to stdout, and with `--log FILE` one JSON object per request
//! goes to FILE. `--help` lists every flag with its default.

mod mitm;
#[path = "../support/tls.rs"]
mod tls;

use std::fs::File;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::Parser;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use retryable_http::error::Report;
use retryable_http::fault::{
    Answer, Effect, FaultBody, FaultLayer, Injected, Match, Rule, Trigger,
};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt, service_fn};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The bodies the proxy answers with: streamed from the upstream, or its own.
type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// The largest request body the proxy buffers (it reads each body to log its length).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// An HTTP proxy that injects faults into the requests it matches, to watch a client retry:
/// the seed's mitmproxy experiment.
#[derive(Debug, Parser)]
#[command(name = "fault_proxy", version)]
struct Options {
    /// The address to listen on (port 0: one the OS picks; the first line printed says it).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8888")]
    listen: SocketAddr,

    /// Be a reverse proxy in front of this server (http:// or https://) instead of a
    /// forward proxy.
    #[arg(long, value_name = "URL", value_parser = upstream_url)]
    upstream: Option<Uri>,

    /// Fault only requests whose URL contains this text (a CONNECT's is its host:port).
    /// Without it, every request.
    #[arg(long = "match", value_name = "TEXT")]
    matches: Option<String>,

    /// The status of the fault's answer.
    #[arg(long, value_name = "CODE", default_value_t = 502, value_parser = status)]
    status: u16,

    /// The body of the fault's answer.
    #[arg(long, value_name = "TEXT", default_value = "Bad Gateway Simulation")]
    body: String,

    /// A header of the fault's answer, as 'Name: value'; repeat it for more.
    #[arg(long = "header", value_name = "HEADER", value_parser = answer_header)]
    headers: Vec<(String, String)>,

    /// Fault only the first N matching requests.
    #[arg(long, value_name = "N", conflicts_with = "probability")]
    first: Option<u64>,

    /// Fault each matching request with this probability, from 0 to 1.
    #[arg(long, value_name = "P")]
    probability: Option<f64>,

    /// The seed of --probability's generator: the same seed faults the same requests.
    #[arg(long, value_name = "S", default_value_t = 0, requires = "probability")]
    seed: u64,

    /// Wait this long before acting on a matching request.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    delay_ms: u64,

    /// Forward the request, then replace the upstream's answer (the default, the seed's
    /// addon: the upstream did the work).
    #[arg(long, conflicts_with_all = ["before", "refuse_stream"])]
    after: bool,

    /// Answer without forwarding: the upstream never sees the request.
    #[arg(long, conflicts_with = "refuse_stream")]
    before: bool,

    /// Reset the request's stream with REFUSED_STREAM, without forwarding (HTTP/2 only): the
    /// client knows the request was never processed.
    #[arg(long, requires = "http2")]
    refuse_stream: bool,

    /// Forward the request, then break the response body after N bytes: drop the connection
    /// (HTTP/1.1) or reset the stream (HTTP/2).
    #[arg(long, value_name = "N", conflicts_with_all = ["before", "refuse_stream", "after"])]
    cut_body: Option<u64>,

    /// Serve HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1 (no CONNECT then).
    #[arg(long, conflicts_with = "mitm")]
    http2: bool,

    /// Terminate the TLS of CONNECT tunnels with certificates of a CA made at start and
    /// written, in PEM, to this file (give it to the client, e.g. seed_client --cacert),
    /// and apply the rule to the requests inside.
    #[arg(long, value_name = "CA_FILE")]
    mitm: Option<PathBuf>,

    /// Do not check the certificates of https:// upstreams (mitmproxy's --ssl-insecure).
    #[arg(long)]
    ssl_insecure: bool,

    /// The request header whose value the log shows as the attempt number.
    #[arg(long, value_name = "NAME", default_value = "x-retry-attempt")]
    attempt_header: HeaderName,

    /// Append one JSON object per request to this file.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
}

fn upstream_url(value: &str) -> Result<Uri, String> {
    let uri: Uri = value.parse().map_err(|e| format!("{e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
        return Err("an http:// or https:// URL with a host".into());
    }
    Ok(uri)
}

fn status(value: &str) -> Result<u16, String> {
    let code: u16 = value.parse().map_err(|e| format!("{e}"))?;
    StatusCode::from_u16(code).map_err(|e| e.to_string())?;
    Ok(code)
}

fn answer_header(value: &str) -> Result<(String, String), String> {
    let (name, value) = value.split_once(':').ok_or("expected 'Name: value'")?;
    let (name, value) = (name.trim(), value.trim());
    HeaderName::try_from(name).map_err(|e| e.to_string())?;
    HeaderValue::try_from(value).map_err(|e| e.to_string())?;
    Ok((name.to_owned(), value.to_owned()))
}

impl Options {
    /// The fault rule the flags describe.
    fn rule(&self) -> Result<Rule, BoxError> {
        let status = StatusCode::from_u16(self.status)?;
        let mut answer = Answer::new(status).body(self.body.clone());
        for (name, value) in &self.headers {
            answer = answer.header(HeaderName::try_from(name)?, HeaderValue::try_from(value)?);
        }
        let action = if self.refuse_stream {
            Effect::RefuseStream
        } else if let Some(n) = self.cut_body {
            if self.http2 {
                Effect::ResetBody(n)
            } else {
                Effect::CutBody(n)
            }
        } else if self.before {
            Effect::Respond(answer)
        } else {
            Effect::Replace(answer)
        };
        let mut rule = Rule::new(action)
            .delay(Duration::from_millis(self.delay_ms))
            .named("fault");
        if let Some(text) = &self.matches {
            rule = rule.matching(Match::url_contains(text.clone()));
        }
        if let Some(n) = self.first {
            rule = rule.trigger(Trigger::first(n));
        }
        if let Some(p) = self.probability {
            rule = rule.trigger(Trigger::probability(p, self.seed)?);
        }
        Ok(rule)
    }
}

#[tokio::main]
async fn main() {
    let options = Options::parse();
    if let Err(error) = run(options).await {
        eprintln!("fault_proxy: {}", Report::new(&*error));
        std::process::exit(1);
    }
}

/// The faults, in front of the upstream client.
type Faulty = BoxCloneSyncService<Request<Full<Bytes>>, Response<ProxyBody>, BoxError>;

/// What every connection shares.
struct Proxy {
    service: Faulty,
    upstream: Option<Uri>,
    attempt_header: HeaderName,
    log: Mutex<Option<File>>,
    mitm: Option<mitm::Authority>,
}

async fn run(options: Options) -> Result<(), BoxError> {
    let rule = options.rule()?;
    let log = match &options.log {
        Some(path) => Some(
            File::options()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("--log {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let mitm = match &options.mitm {
        Some(path) => Some(mitm::Authority::create(path)?),
        None => None,
    };
    let listener = TcpListener::bind(options.listen).await?;
    // The first line says where the proxy listens (tests read it when they ask for port 0).
    println!("fault_proxy listening on http://{}", listener.local_addr()?);
    if let Some(upstream) = &options.upstream {
        println!("reverse proxy for {upstream}");
    }
    if let Some(path) = &options.mitm {
        println!("terminating TLS with the CA in {}", path.display());
    }
    io::stdout().flush()?;

    let trust = if options.ssl_insecure {
        tls::Trust::Insecure
    } else {
        tls::Trust::Roots
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls::client_config(&trust)?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let forward = service_fn(move |request: Request<Full<Bytes>>| {
        let client = client.clone();
        async move {
            if request.method() == Method::CONNECT {
                // The tunnel is opened by the proxy itself, once the rule let it through.
                return Ok(Response::new(empty()));
            }
            let response = client.request(request).await?;
            Ok::<_, BoxError>(response.map(|body| body.map_err(BoxError::from).boxed_unsync()))
        }
    });
    let faults = FaultLayer::new().rule(rule).layer(forward);
    // The fault's answers and the upstream's, streamed.
    let service = BoxCloneSyncService::new(faults.map_response(
        |response: Response<FaultBody<ProxyBody>>| response.map(BodyExt::boxed_unsync),
    ));
    let proxy = Arc::new(Proxy {
        service,
        upstream: options.upstream,
        attempt_header: options.attempt_header,
        log: Mutex::new(log),
        mitm,
    });

    loop {
        let (stream, _) = listener.accept().await?;
        let proxy = proxy.clone();
        let http2 = options.http2;
        tokio::spawn(async move {
            let handler = hyper::service::service_fn(move |request| {
                let proxy = proxy.clone();
                async move { proxy.handle(request).await }
            });
            let io = TokioIo::new(stream);
            let _ = if http2 {
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(io, handler)
                    .await
            } else {
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, handler)
                    .with_upgrades()
                    .await
            };
        });
    }
}

impl Proxy {
    /// Handles one request the proxy was sent.
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Result<Response<ProxyBody>, h2::Error> {
        if request.method() == Method::CONNECT {
            return Ok(self.connect(request).await);
        }
        self.forward(request, None).await
    }

    /// Answers a `CONNECT`: with the fault when the rule fires on it, else by opening the
    /// tunnel.
    async fn connect(self: Arc<Self>, mut request: Request<Incoming>) -> Response<ProxyBody> {
        let Some(authority) = request.uri().authority().cloned() else {
            return reply(
                StatusCode::BAD_REQUEST,
                "fault_proxy: CONNECT needs host:port",
            );
        };
        let upgrade = hyper::upgrade::on(&mut request);
        let mut probe = Request::new(Full::new(Bytes::new()));
        *probe.method_mut() = Method::CONNECT;
        *probe.uri_mut() = Uri::from(authority.clone());
        *probe.headers_mut() = request.headers().clone();
        let url = authority.to_string();
        let outcome = self.service.clone().oneshot(probe).await;
        let response = match outcome {
            Ok(response) if response.extensions().get::<Injected>().is_some() => {
                // Refused by the fault: the client's tunnel fails, nothing reached the server.
                self.write_log(&request, &url, Some(response.status()), true, 0);
                return response;
            }
            Ok(_) => None,
            Err(error) => Some(reply(
                StatusCode::BAD_GATEWAY,
                &format!("fault_proxy: {}", Report::new(&*error)),
            )),
        };
        if let Some(response) = response {
            self.write_log(&request, &url, Some(response.status()), false, 0);
            return response;
        }
        if self.mitm.is_some() {
            let proxy = self.clone();
            let host = authority.host().to_owned();
            tokio::spawn(async move {
                if let Err(error) = proxy.intercept(upgrade, authority, &host).await {
                    eprintln!("fault_proxy: TLS for {host}: {}", Report::new(&*error));
                }
            });
        } else {
            // A blind tunnel: reach the server first, so that a client whose server cannot be
            // reached gets a failed CONNECT.
            let server = match TcpStream::connect(authority.as_str()).await {
                Ok(server) => server,
                Err(error) => {
                    let response = reply(
                        StatusCode::BAD_GATEWAY,
                        &format!("fault_proxy: cannot reach {authority}: {error}"),
                    );
                    self.write_log(&request, &url, Some(response.status()), false, 0);
                    return response;
                }
            };
            tokio::spawn(async move {
                if let Ok(upgraded) = upgrade.await {
                    let mut client = TokioIo::new(upgraded);
                    let mut server = server;
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
        self.write_log(&request, &url, Some(StatusCode::OK), false, 0);
        Response::new(empty())
    }

    /// Terminates the TLS of a tunnel to `authority` and serves the requests inside.
    async fn intercept(
        self: Arc<Self>,
        upgrade: hyper::upgrade::OnUpgrade,
        authority: http::uri::Authority,
        host: &str,
    ) -> Result<(), BoxError> {
        let mitm = self.mitm.as_ref().expect("only with --mitm");
        let acceptor = tokio_rustls::TlsAcceptor::from(mitm.server_config(host)?);
        let upgraded = upgrade.await?;
        let tls = acceptor.accept(TokioIo::new(upgraded)).await?;
        let proxy = self.clone();
        let handler = hyper::service::service_fn(move |request| {
            let (proxy, authority) = (proxy.clone(), authority.clone());
            async move { proxy.forward(request, Some(authority)).await }
        });
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(tls), handler)
            .await?;
        Ok(())
    }

    /// Rewrites a request for the upstream, applies the fault, logs it. `inside` is the
    /// `host:port` of the TLS tunnel it came through, when the proxy terminates TLS.
    async fn forward(
        &self,
        request: Request<Incoming>,
        inside: Option<http::uri::Authority>,
    ) -> Result<Response<ProxyBody>, h2::Error> {
        let (mut head, body) = request.into_parts();
        let path = head.uri.path_and_query().map_or("/", |p| p.as_str());
        let target = match (&self.upstream, inside) {
            (Some(base), _) => {
                let authority = base.authority().expect("checked at start").clone();
                head.headers.insert(
                    header::HOST,
                    HeaderValue::from_str(authority.as_str()).expect("an authority is a header"),
                );
                let scheme = base.scheme_str().unwrap_or("http");
                format!("{scheme}://{authority}{path}").parse::<Uri>().ok()
            }
            (None, Some(authority)) => format!("https://{authority}{path}").parse().ok(),
            (None, None) if head.uri.scheme().is_some() && head.uri.authority().is_some() => {
                Some(head.uri.clone())
            }
            (None, None) => None,
        };
        let Some(target) = target else {
            return Ok(reply(
                StatusCode::BAD_REQUEST,
                "fault_proxy: not a proxy request (use --upstream for a reverse proxy)",
            ));
        };
        head.uri = target.clone();
        // Whatever the client spoke, the upstream gets HTTP/1.1.
        head.version = http::Version::HTTP_11;
        for hop in [
            "proxy-connection",
            "proxy-authorization",
            "connection",
            "keep-alive",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
        ] {
            head.headers.remove(hop);
        }
        let url = target.to_string();
        let body = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                return Ok(reply(
                    StatusCode::BAD_REQUEST,
                    &format!("fault_proxy: request body: {error}"),
                ));
            }
        };
        let len = body.len();
        let logged = Request::from_parts(head.clone(), ());
        match self
            .service
            .clone()
            .oneshot(Request::from_parts(head, Full::new(body)))
            .await
        {
            Ok(response) => {
                let fault = response.extensions().get::<Injected>().is_some();
                self.write_log(&logged, &url, Some(response.status()), fault, len);
                Ok(response)
            }
            Err(error) if is_refused_stream(&*error) => {
                // hyper resets the stream with the reason of the h2 error it is given.
                self.write_log(&logged, &url, None, true, len);
                Err(h2::Error::from(h2::Reason::REFUSED_STREAM))
            }
            Err(error) => {
                let response = reply(
                    StatusCode::BAD_GATEWAY,
                    &format!("fault_proxy: upstream error: {}", Report::new(&*error)),
                );
                self.write_log(&logged, &url, Some(response.status()), false, len);
                Ok(response)
            }
        }
    }

    /// One human-readable line to stdout, and one JSON line to the log file. A `status` of
    /// `None` is a refused stream.
    fn write_log<B>(
        &self,
        request: &Request<B>,
        url: &str,
        status: Option<StatusCode>,
        fault: bool,
        body_len: usize,
    ) {
        let header = |name: &HeaderName| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let attempt = header(&self.attempt_header);
        let key = header(&HeaderName::from_static("idempotency-key"));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let secs = now.as_secs();
        let outcome =
            status.map_or_else(|| "refused stream".to_owned(), |s| s.as_u16().to_string());
        println!(
            "{:02}:{:02}:{:02}.{:03} {} {url} -> {outcome}{} ({body_len} B sent{}{})",
            secs / 3600 % 24,
            secs / 60 % 60,
            secs % 60,
            now.subsec_millis(),
            request.method(),
            if fault { " fault" } else { "" },
            attempt
                .as_deref()
                .map_or(String::new(), |a| format!(", attempt {a}")),
            key.as_deref()
                .map_or(String::new(), |k| format!(", Idempotency-Key {k}")),
        );
        let _ = io::stdout().flush();
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = log.as_mut() {
            let entry = json!({
                "time": now.as_secs_f64(),
                "method": request.method().as_str(),
                "url": url,
                "status": status.map(|s| s.as_u16()),
                "refused_stream": status.is_none(),
                "fault": fault,
                "body_len": body_len,
                "idempotency_key": key,
                "attempt": attempt,
            });
            let _ = writeln!(file, "{entry}").and_then(|()| file.flush());
        }
    }
}

/// Whether `error` is the fault's refused stream.
fn is_refused_stream(error: &(dyn std::error::Error + 'static)) -> bool {
    error
        .downcast_ref::<h2::Error>()
        .is_some_and(|e| e.reason() == Some(h2::Reason::REFUSED_STREAM))
}

fn reply(status: StatusCode, text: &str) -> Response<ProxyBody> {
    let body = Full::new(Bytes::from(text.to_owned()));
    let mut response = Response::new(body.map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = status;
    response
}

fn empty() -> ProxyBody {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed_unsync()
}
