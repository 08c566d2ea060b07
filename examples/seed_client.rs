//! The seed's Go program, in Rust: a retrying request through an HTTP proxy, over HTTP or
//! HTTPS.
//!
//! ```text
//! cargo run --features fault,proxy --example seed_client -- --proxy http://127.0.0.1:8888 http://127.0.0.1:9000/your-api-endpoint
//! cargo run --features fault,proxy --example seed_client -- --proxy http://127.0.0.1:8888 \
//!     --cacert ~/.mitmproxy/mitmproxy-ca-cert.pem https://localhost:9443/your-api-endpoint
//! ```
//!
//! Like the Go program it makes at most 3 retries, with exponential waits from 1 s to 5 s
//! and no jitter (1 s, 2 s, 4 s), and prints the final status. It uses the standard policy:
//! a plain POST that gets a 502 is sent once, since the upstream may already have done the
//! work — the seed's own mitmproxy addon lets it.
//!
//! `https://` goes through a `CONNECT` tunnel and TLS (rustls), so mitmproxy can intercept
//! it when its CA is trusted (`--cacert`), as the post's installed certificate does; the
//! post's `InsecureSkipVerify` is `--insecure`. Without `--proxy`, the proxy comes from
//! `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`, as in Go's default transport.
//!
//! Run as written against the seed's addon, the Go program makes 4 attempts and exits with
//! `giving up after 4 attempt(s)`: `RetryMax = 3` counts retries, and go-retryablehttp's
//! default turns exhausted retries into an error. This client returns the last response, as
//! go-retryablehttp's `PassthroughErrorHandler` would: the post's `final status: 502`.
//!
//! It exits with 0 when a response came back, whatever its status, with 1 and the error
//! otherwise, and with 2 for bad arguments. `--help` lists every flag.

#[path = "support/timeline.rs"]
mod timeline;
#[path = "support/tls.rs"]
mod tls;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use retryable_http::backoff::Backoff;
use retryable_http::proxy::{HttpProxy, ProxyError};
use retryable_http::retry_after::ServerWaits;
use retryable_http::{Attempts, RetryLayer};
use timeline::Timeline;
use tower::{Layer, ServiceExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A retrying HTTP client with the seed's settings: at most 3 retries, waits of 1 s, 2 s,
/// 4 s (up to 5 s), no jitter. Prints every attempt, then the final status.
#[derive(Debug, Parser)]
#[command(name = "seed_client", version)]
struct Options {
    /// The URL to request (http:// or https://).
    url: Uri,

    /// The HTTP proxy to go through, e.g. http://127.0.0.1:8888 (mitmproxy, fault_proxy).
    /// Without it, HTTPS_PROXY, HTTP_PROXY and NO_PROXY say, as in Go; with none of them
    /// set, requests go straight to the server.
    #[arg(long, value_name = "URL", value_parser = proxy_url)]
    proxy: Option<Uri>,

    /// Trust only the CA certificates in this PEM file for https:// (mitmproxy's is
    /// ~/.mitmproxy/mitmproxy-ca-cert.pem). Without it, the Mozilla roots are trusted.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    cacert: Option<PathBuf>,

    /// Do not check the server's certificate at all (Go's InsecureSkipVerify): anyone on
    /// the path can then read and change the traffic.
    #[arg(long)]
    insecure: bool,

    /// Speak HTTP/2 with prior knowledge (h2c) to http:// servers and proxies. Over https://
    /// HTTP/2 is offered to the server anyway.
    #[arg(long)]
    http2: bool,

    /// Retries after the first attempt (go-retryablehttp's RetryMax).
    #[arg(long, value_name = "N", default_value_t = 3)]
    max_retries: u32,

    /// The first wait, in milliseconds (RetryWaitMin).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    wait_min: u64,

    /// The longest wait, in milliseconds (RetryWaitMax).
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    wait_max: u64,

    /// The request method.
    #[arg(
        short = 'X',
        long = "request",
        value_name = "METHOD",
        default_value = "GET"
    )]
    method: Method,

    /// The request body.
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    data: Option<String>,

    /// A request header, as 'Name: value'; repeat it for more.
    #[arg(short = 'H', long = "header", value_name = "HEADER", value_parser = header)]
    headers: Vec<(HeaderName, HeaderValue)>,
}

fn proxy_url(value: &str) -> Result<Uri, String> {
    let uri: Uri = value.parse().map_err(|e| format!("{e}"))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err("a proxy is an http:// URL with a host".into());
    }
    Ok(uri)
}

fn header(value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = value.split_once(':').ok_or("expected 'Name: value'")?;
    let name = HeaderName::try_from(name.trim()).map_err(|e| e.to_string())?;
    let value = HeaderValue::try_from(value.trim()).map_err(|e| e.to_string())?;
    Ok((name, value))
}

#[tokio::main]
async fn main() {
    let options = Options::parse();
    if let Err(error) = run(options).await {
        println!("error: {}", retryable_http::error::Report::new(&*error));
        if let Some(hint) = hint(&*error) {
            println!("hint: {hint}");
        }
        std::process::exit(1);
    }
}

async fn run(options: Options) -> Result<(), BoxError> {
    let trust = match (&options.cacert, options.insecure) {
        (Some(file), _) => tls::Trust::CaFile(file.clone()),
        (None, true) => {
            eprintln!(
                "warning: --insecure: the server's certificate is not checked; anyone on the \
                 path can read and change this traffic"
            );
            tls::Trust::Insecure
        }
        (None, false) => tls::Trust::Roots,
    };
    let mut http = HttpConnector::new();
    // https:// requests that go straight to the server reach it through TLS on top of this.
    http.enforce_http(false);
    let proxy = match &options.proxy {
        Some(proxy) => HttpProxy::new(http, proxy.clone())?,
        None => HttpProxy::from_env(http),
    };
    let through = proxy.proxy_for(&options.url);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls::client_config(&trust)?)
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(proxy);
    let client = Client::builder(TokioExecutor::new())
        .http2_only(options.http2)
        .build(connector);

    let timeline = Timeline::install()?;
    // go-retryablehttp's DefaultBackoff: exactly 1 s, 2 s, 4 s, ...; Retry-After on 429/503.
    let backoff = Backoff::go_default(
        Duration::from_millis(options.wait_min),
        Duration::from_millis(options.wait_max),
    )?;
    let client = RetryLayer::new()
        .max_retries(options.max_retries)
        .backoff(backoff)
        .server_waits(ServerWaits::go())
        .layer(client);
    let mut request = Request::builder().method(options.method).uri(options.url);
    for (name, value) in options.headers {
        request = request.header(name, value);
    }
    let request = request.body(Full::new(options.data.map(Bytes::from).unwrap_or_default()))?;
    match through {
        Some(proxy) => println!(
            "{} {} through http://{}",
            request.method(),
            request.uri(),
            proxy.authority().map_or("?", |a| a.as_str())
        ),
        None => println!("{} {}", request.method(), request.uri()),
    }
    timeline.restart();
    let response = client.oneshot(request).await?;
    let attempts = Attempts::of(&response).attempts();
    println!("attempts: {attempts}");
    println!("final status: {}", response.status().as_u16());
    Ok(())
}

/// What to do about the errors a user of the seed's experiment meets.
fn hint(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(tls) = tls::certificate_error(error) {
        return Some(format!(
            "the server's certificate is not trusted ({tls}); behind mitmproxy, trust its CA \
             with --cacert ~/.mitmproxy/mitmproxy-ca-cert.pem (or skip the check with \
             --insecure). Not retried: another attempt would meet the same certificate"
        ));
    }
    let proxy = std::iter::successors(Some(error), |e| match e.downcast_ref::<std::io::Error>() {
        Some(io) => io
            .get_ref()
            .map(|e| e as &(dyn std::error::Error + 'static)),
        None => e.source(),
    })
    .find_map(|e| e.downcast_ref::<ProxyError>())?;
    Some(if proxy.is_unreachable() {
        format!(
            "is the proxy running? nothing answered at {}",
            proxy.proxy()
        )
    } else if proxy.is_tunnel_refused() {
        format!(
            "the proxy {} refused the CONNECT tunnel (it may not reach the server, or want \
             credentials)",
            proxy.proxy()
        )
    } else {
        proxy.to_string()
    })
}
