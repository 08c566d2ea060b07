//! The seed's Go program, in Rust: a retrying GET through an HTTP proxy.
//!
//! ```text
//! cargo run --features fault --example seed_client -- --proxy http://127.0.0.1:8888 http://127.0.0.1:9000/your-api-endpoint
//! ```
//!
//! Like the Go program it makes at most 3 retries, with exponential waits from 1 s to 5 s
//! and no jitter (1 s, 2 s, 4 s), and prints the final status. It uses the standard policy:
//! a plain POST that gets a 502 is sent once, since the upstream may already have done the
//! work — the seed's own mitmproxy addon lets it.
//!
//! Run as written against the seed's addon, the Go program makes 4 attempts and exits with
//! `giving up after 4 attempt(s)`: `RetryMax = 3` counts retries, and go-retryablehttp's
//! default turns exhausted retries into an error. This client returns the last response, as
//! go-retryablehttp's `PassthroughErrorHandler` would: the post's `final status: 502`.
//!
//! ```text
//! seed_client [--proxy URL] [--max-retries N] [--wait-min MS] [--wait-max MS]
//!             [-X METHOD] [-d DATA] [-H 'Name: value']... URL
//! ```
//!
//! It exits with 0 when a response came back, whatever its status, and with 1 and the error
//! otherwise.

#[path = "support/timeline.rs"]
mod timeline;

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;
use retryable_http::backoff::Backoff;
use retryable_http::fault::HttpProxy;
use retryable_http::{Attempts, ReplayBody, RetryLayer};
use timeline::Timeline;
use tower::{Layer, ServiceExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: seed_client [--proxy URL] [--max-retries N] [--wait-min MS] \
[--wait-max MS] [-X METHOD] [-d DATA] [-H 'Name: value']... URL";

struct Options {
    proxy: Option<Uri>,
    max_retries: u32,
    wait_min: Duration,
    wait_max: Duration,
    request: Request<Full<Bytes>>,
}

#[tokio::main]
async fn main() {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("seed_client: {message}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(error) = run(options).await {
        println!("error: {error}");
        std::process::exit(1);
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut proxy = None;
    let mut max_retries = 3;
    let mut wait_min = Duration::from_secs(1);
    let mut wait_max = Duration::from_secs(5);
    let mut method = Method::GET;
    let mut data = None;
    let mut headers = Vec::new();
    let mut url = None;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--proxy" => {
                proxy = Some(
                    value()?
                        .parse::<Uri>()
                        .map_err(|e| format!("--proxy: {e}"))?,
                )
            }
            "--max-retries" => {
                max_retries = value()?
                    .parse()
                    .map_err(|e| format!("--max-retries: {e}"))?
            }
            "--wait-min" => wait_min = millis(&value()?, "--wait-min")?,
            "--wait-max" => wait_max = millis(&value()?, "--wait-max")?,
            "-X" => method = value()?.parse().map_err(|e| format!("-X: {e}"))?,
            "-d" => data = Some(value()?),
            "-H" => {
                let line = value()?;
                let (name, v) = line
                    .split_once(':')
                    .ok_or_else(|| format!("-H {line:?}: expected 'Name: value'"))?;
                let name = HeaderName::try_from(name.trim()).map_err(|e| format!("-H: {e}"))?;
                let v = HeaderValue::try_from(v.trim()).map_err(|e| format!("-H: {e}"))?;
                headers.push((name, v));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other if other.starts_with('-') => return Err(format!("unknown argument {other:?}")),
            other if url.is_none() => url = Some(other.to_owned()),
            other => return Err(format!("one URL only, not also {other:?}")),
        }
    }
    let url = url.ok_or("a URL is needed")?;
    let mut request = Request::builder().method(method).uri(&url);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let body = Full::new(data.map(Bytes::from).unwrap_or_default());
    let request = request.body(body).map_err(|e| format!("{url}: {e}"))?;
    Ok(Options {
        proxy,
        max_retries,
        wait_min,
        wait_max,
        request,
    })
}

fn millis(value: &str, flag: &str) -> Result<Duration, String> {
    value
        .parse()
        .map(Duration::from_millis)
        .map_err(|e| format!("{flag}: {e}"))
}

async fn run(options: Options) -> Result<(), BoxError> {
    match options.proxy.clone() {
        Some(proxy) => {
            let connector = HttpProxy::new(HttpConnector::new(), proxy)?;
            send(
                Client::builder(TokioExecutor::new()).build(connector),
                options,
            )
            .await
        }
        None => send(Client::builder(TokioExecutor::new()).build_http(), options).await,
    }
}

async fn send<C>(
    client: Client<C, ReplayBody<Full<Bytes>>>,
    options: Options,
) -> Result<(), BoxError>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let timeline = Timeline::install()?;
    // go-retryablehttp's DefaultBackoff: exactly 1 s, 2 s, 4 s, ...; Retry-After on 429/503.
    let backoff = Backoff::go_default(options.wait_min, options.wait_max)?;
    let client = RetryLayer::new()
        .max_retries(options.max_retries)
        .backoff(backoff)
        .layer(client);
    let request = options.request;
    println!("{} {}", request.method(), request.uri());
    timeline.restart();
    let response = client.oneshot(request).await?;
    let attempts = response
        .extensions()
        .get::<Attempts>()
        .map_or(1, |a| a.get());
    println!("attempts: {attempts}");
    println!("final status: {}", response.status().as_u16());
    Ok(())
}
