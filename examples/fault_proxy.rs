//! An HTTP proxy that injects faults: the seed's mitmproxy experiment, with no Python.
//!
//! ```text
//! cargo run --features fault --example fault_proxy -- --match your-api-endpoint
//! ```
//!
//! As a forward proxy (the default) it serves clients that send absolute-form requests
//! (`GET http://host/path`), the way go-retryablehttp or `examples/seed_client.rs` talk to
//! mitmproxy. With `--upstream URL` it is a reverse proxy in front of one server.
//!
//! Each request that matches the rule gets the fault: by default the request is forwarded
//! and the upstream's answer replaced by `502 Bad Gateway Simulation` (`--after`, what the
//! seed's addon does), or answered without forwarding (`--before`). One line per request
//! goes to stdout, and with `--log FILE` one JSON object per request goes to FILE.
//!
//! ```text
//! fault_proxy [--listen ADDR] [--upstream URL] [--match SUBSTR] [--status CODE]
//!             [--body TEXT] [--header 'Name: value']... [--first N]
//!             [--probability P [--seed S]] [--delay-ms MS] [--after | --before]
//!             [--attempt-header NAME] [--log FILE]
//! ```

use std::convert::Infallible;
use std::fs::File;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use retryable_http::fault::{Action, Answer, FaultLayer, Injected, Match, Rule, Trigger};
use tokio::net::TcpListener;
use tower::{Layer, Service, ServiceExt, service_fn};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The largest request body the proxy buffers (it reads each body to log its length).
const MAX_BODY: usize = 64 * 1024 * 1024;

const USAGE: &str = "usage: fault_proxy [--listen ADDR] [--upstream URL] [--match SUBSTR] \
[--status CODE] [--body TEXT] [--header 'Name: value']... [--first N] \
[--probability P [--seed S]] [--delay-ms MS] [--after | --before] \
[--attempt-header NAME] [--log FILE]";

struct Options {
    listen: SocketAddr,
    upstream: Option<Uri>,
    rule: Rule,
    attempt_header: HeaderName,
    log: Option<File>,
}

#[tokio::main]
async fn main() {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("fault_proxy: {message}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(error) = run(options).await {
        eprintln!("fault_proxy: {error}");
        std::process::exit(1);
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut listen: SocketAddr = "127.0.0.1:8888".parse().expect("a valid address");
    let mut upstream = None;
    let mut matches = None;
    let mut status = 502;
    let mut body = "Bad Gateway Simulation".to_owned();
    let mut headers = Vec::new();
    let mut first = None;
    let mut probability = None;
    let mut seed = 0;
    let mut delay = Duration::ZERO;
    let mut before = false;
    let mut attempt_header = HeaderName::from_static("x-retry-attempt");
    let mut log = None;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--upstream" => {
                let uri: Uri = value()?.parse().map_err(|e| format!("--upstream: {e}"))?;
                if uri.scheme_str() != Some("http") || uri.authority().is_none() {
                    return Err("--upstream must be an http:// URL with a host".into());
                }
                upstream = Some(uri);
            }
            "--match" => matches = Some(value()?),
            "--status" => {
                status = value()?.parse().map_err(|e| format!("--status: {e}"))?;
                StatusCode::from_u16(status).map_err(|e| format!("--status: {e}"))?;
            }
            "--body" => body = value()?,
            "--header" => {
                let line = value()?;
                let (name, v) = line
                    .split_once(':')
                    .ok_or_else(|| format!("--header {line:?}: expected 'Name: value'"))?;
                HeaderName::try_from(name.trim()).map_err(|e| format!("--header: {e}"))?;
                HeaderValue::try_from(v.trim()).map_err(|e| format!("--header: {e}"))?;
                headers.push((name.trim().to_owned(), v.trim().to_owned()));
            }
            "--first" => first = Some(value()?.parse().map_err(|e| format!("--first: {e}"))?),
            "--probability" => {
                probability = Some(
                    value()?
                        .parse()
                        .map_err(|e| format!("--probability: {e}"))?,
                )
            }
            "--seed" => seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--delay-ms" => {
                let ms = value()?.parse().map_err(|e| format!("--delay-ms: {e}"))?;
                delay = Duration::from_millis(ms);
            }
            "--after" => before = false,
            "--before" => before = true,
            "--attempt-header" => {
                attempt_header =
                    HeaderName::try_from(value()?).map_err(|e| format!("--attempt-header: {e}"))?;
            }
            "--log" => {
                let path = value()?;
                log = Some(File::create(&path).map_err(|e| format!("--log {path}: {e}"))?);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let mut answer = Answer::new(status).body(body);
    for (name, value) in &headers {
        answer = answer.header(name, value);
    }
    let action = if before {
        Action::Respond(answer)
    } else {
        Action::Replace(answer)
    };
    let mut rule = Rule::new(action).delay(delay).named("fault");
    if let Some(text) = matches {
        rule = rule.matching(Match::url_contains(text));
    }
    rule = match (first, probability) {
        (Some(_), Some(_)) => return Err("--first and --probability do not go together".into()),
        (Some(n), None) => rule.trigger(Trigger::First(n)),
        (None, Some(p)) => {
            rule.trigger(Trigger::probability(p, seed).map_err(|e| format!("--probability: {e}"))?)
        }
        (None, None) => rule,
    };
    Ok(Options {
        listen,
        upstream,
        rule,
        attempt_header,
        log,
    })
}

async fn run(options: Options) -> Result<(), BoxError> {
    let listener = TcpListener::bind(options.listen).await?;
    // The first line says where the proxy listens (tests read it when they ask for port 0).
    println!("fault_proxy listening on http://{}", listener.local_addr()?);
    if let Some(upstream) = &options.upstream {
        println!("reverse proxy for {upstream}");
    }
    io::stdout().flush()?;

    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let forward = service_fn(move |request: Request<Full<Bytes>>| {
        let client = client.clone();
        async move { client.request(request).await }
    });
    let service = FaultLayer::new().rule(options.rule).layer(forward);
    let log = Arc::new(Mutex::new(options.log));
    let upstream = options.upstream;
    let attempt_header = options.attempt_header;

    loop {
        let (stream, _) = listener.accept().await?;
        let service = service.clone();
        let (log, upstream, attempt_header) =
            (log.clone(), upstream.clone(), attempt_header.clone());
        tokio::spawn(async move {
            let handler = hyper::service::service_fn(move |request| {
                let service = service.clone();
                let (log, upstream, attempt_header) =
                    (log.clone(), upstream.clone(), attempt_header.clone());
                async move {
                    Ok::<_, Infallible>(
                        proxy(request, service, upstream, &attempt_header, &log).await,
                    )
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), handler)
                .await;
        });
    }
}

/// Handles one request: rewrites it for the upstream, applies the fault, logs it.
async fn proxy<S, B>(
    request: Request<Incoming>,
    service: S,
    upstream: Option<Uri>,
    attempt_header: &HeaderName,
    log: &Mutex<Option<File>>,
) -> Response<Full<Bytes>>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = BoxError>,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let (mut head, body) = request.into_parts();
    let header = |name: &HeaderName| {
        head.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let attempt = header(attempt_header);
    let key = header(&HeaderName::from_static("idempotency-key"));
    let method = head.method.clone();

    let target = match &upstream {
        Some(base) => {
            let path = head.uri.path_and_query().map_or("/", |p| p.as_str());
            let authority = base.authority().expect("checked at start").clone();
            head.headers.insert(
                header::HOST,
                HeaderValue::from_str(authority.as_str()).expect("an authority is a valid header"),
            );
            format!("http://{authority}{path}").parse::<Uri>().ok()
        }
        None if head.uri.scheme().is_some() && head.uri.authority().is_some() => {
            Some(head.uri.clone())
        }
        None => None,
    };
    let Some(target) = target else {
        return reply(
            StatusCode::BAD_REQUEST,
            "fault_proxy: not a proxy request (use --upstream for a reverse proxy)",
        );
    };
    head.uri = target.clone();
    for hop in [
        "proxy-connection",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        head.headers.remove(hop);
    }

    let body = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return reply(
                StatusCode::BAD_REQUEST,
                &format!("fault_proxy: request body: {error}"),
            );
        }
    };
    let body_len = body.len();
    let outcome = match service
        .oneshot(Request::from_parts(head, Full::new(body)))
        .await
    {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            match body.collect().await {
                Ok(body) => Ok(Response::from_parts(parts, Full::new(body.to_bytes()))),
                Err(error) => Err(format!("upstream body: {error}")),
            }
        }
        Err(error) => Err(error.to_string()),
    };
    let (response, fault) = match outcome {
        Ok(response) => {
            let fault = response.extensions().get::<Injected>().is_some();
            (response, fault)
        }
        Err(error) => (
            reply(
                StatusCode::BAD_GATEWAY,
                &format!("fault_proxy: upstream error: {error}"),
            ),
            false,
        ),
    };
    let entry = Entry {
        method: &method,
        url: &target,
        status: response.status(),
        fault,
        body_len,
        attempt: attempt.as_deref(),
        key: key.as_deref(),
    };
    entry.write(log);
    response
}

fn reply(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text.to_owned())));
    *response.status_mut() = status;
    response
}

/// What the proxy did with one request.
struct Entry<'a> {
    method: &'a http::Method,
    url: &'a Uri,
    status: StatusCode,
    fault: bool,
    body_len: usize,
    attempt: Option<&'a str>,
    key: Option<&'a str>,
}

impl Entry<'_> {
    /// One human-readable line to stdout, and one JSON line to the log file.
    fn write(&self, log: &Mutex<Option<File>>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let secs = now.as_secs();
        println!(
            "{:02}:{:02}:{:02}.{:03} {} {} -> {}{} ({} B sent{}{})",
            secs / 3600 % 24,
            secs / 60 % 60,
            secs % 60,
            now.subsec_millis(),
            self.method,
            self.url,
            self.status.as_u16(),
            if self.fault { " fault" } else { "" },
            self.body_len,
            self.attempt
                .map_or(String::new(), |a| format!(", attempt {a}")),
            self.key
                .map_or(String::new(), |k| format!(", Idempotency-Key {k}")),
        );
        let _ = io::stdout().flush();
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = log.as_mut() {
            let line = format!(
                "{{\"time\":{}.{:03},\"method\":{},\"url\":{},\"status\":{},\"fault\":{},\"body_len\":{},\"idempotency_key\":{},\"attempt\":{}}}\n",
                secs,
                now.subsec_millis(),
                json(Some(self.method.as_str())),
                json(Some(&self.url.to_string())),
                self.status.as_u16(),
                self.fault,
                self.body_len,
                json(self.key),
                json(self.attempt),
            );
            let _ = file.write_all(line.as_bytes()).and_then(|()| file.flush());
        }
    }
}

/// A JSON string, or `null`.
fn json(value: Option<&str>) -> String {
    let Some(value) = value else {
        return "null".to_owned();
    };
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
