//! Resumed downloads against real servers: nginx serving a 64 MiB static file through
//! `examples/fault_proxy.rs --cut-body`, which drops the connection every 8 MiB of each
//! response; the file replaced between attempts; and Python's `http.server`, which ignores
//! `Range`. The checks are on bytes and hashes; the time limits are generous.
#![cfg(all(feature = "fault", feature = "hyper"))]

mod support;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use retryable_http::RetryLayer;
use retryable_http::backoff::Backoff;
use retryable_http::body::ReplayBody;
use retryable_http::budget::Budget;
use retryable_http::resume::{Reason, Rejected, Resume, ResumeError, Resumes};
use support::nginx::{Nginx, free_port, listening};
use support::programs::{self, Program};
use tokio::process::Command;
use tower::{Layer, ServiceExt};

const MIB: usize = 1024 * 1024;

/// 64 MiB that differ from byte to byte: a xorshift stream from `seed`.
fn file(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// FNV-1a, 64 bits.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

async fn nginx(name: &str, content: &[u8]) -> Option<Nginx> {
    Nginx::start(
        name,
        "",
        |port, dir| {
            format!(
                "listen 127.0.0.1:{port};
        location / {{ root {}/www; }}",
                dir.display()
            )
        },
        |dir| {
            std::fs::create_dir_all(dir.join("www")).unwrap();
            std::fs::write(dir.join("www/big.bin"), content).unwrap();
        },
    )
    .await
}

/// The fault proxy in front of `upstream`, cutting every response body `every` bytes in.
async fn fault_proxy(upstream: u16, every: usize) -> (Program, String) {
    let mut command = Command::new(programs::example("fault_proxy"));
    command.args([
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &format!("http://127.0.0.1:{upstream}"),
        "--cut-body",
        &every.to_string(),
    ]);
    let proxy = programs::start(command, "listening on").await;
    let url = proxy.ready.rsplit(' ').next().unwrap().trim().to_owned();
    (proxy, url)
}

type Downloaded = (
    Vec<u8>,
    Option<Box<dyn std::error::Error + Send + Sync>>,
    Vec<u64>,
);

/// Downloads `url` through the layer, resuming, with `hook` run before each attempt.
async fn download(
    url: &str,
    hook: impl Fn(&retryable_http::policy::Attempt<'_>) + Send + Sync + 'static,
) -> Downloaded {
    let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Empty<Bytes>>>();
    // A budget without a throttle: the default budget's throttle stops retrying a destination
    // whose attempts failed six times lately, and every break here is a failure.
    let budget = Budget::new(Duration::from_secs(10), 10, 0.2).unwrap();
    let client = RetryLayer::new()
        .budget(budget)
        .max_retries(20)
        .backoff(Backoff::constant(Duration::from_millis(10)))
        .on_attempt(hook)
        .resume_downloads(Resume::new())
        .layer(client);
    let request = Request::get(url).body(Empty::new()).unwrap();
    support::within(async {
        let response = client.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let log = Resumes::of(&response).expect("nginx sends an ETag");
        let mut body = response.into_body();
        let mut all = Vec::new();
        let mut error = None;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        all.extend_from_slice(&data);
                    }
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let offsets = log.list().iter().map(|r| r.offset()).collect();
        (all, error, offsets)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_file_cut_every_8_mib_arrives_whole_through_the_fault_proxy() {
    let content = file(64 * MIB, 1);
    let Some(nginx) = nginx("resume-whole", &content).await else {
        return;
    };
    let (_proxy, base) = fault_proxy(nginx.port, 8 * MIB).await;
    let (bytes, error, offsets) = download(&format!("{base}/big.bin"), |_| {}).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(bytes.len(), content.len());
    assert_eq!(fnv(&bytes), fnv(&content), "the hash matches");
    // A break every 8 MiB of each response; the proxy may lose what it had buffered when it
    // dropped the connection, and the resume then starts where the bytes stopped.
    assert!(offsets.len() >= 7, "{offsets:?} {}", nginx.error_log());
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_replaced_between_attempts_ends_the_download_without_mixing() {
    let content = file(64 * MIB, 2);
    let Some(nginx) = nginx("resume-replaced", &content).await else {
        return;
    };
    let (_proxy, base) = fault_proxy(nginx.port, 8 * MIB).await;
    let path = nginx.dir.join("www/big.bin");
    // Before the first request that resumes, a new version: another length, another ETag.
    let replaced = std::sync::Once::new();
    let (bytes, error, _) = download(&format!("{base}/big.bin"), move |attempt| {
        if attempt.headers().contains_key("range") {
            replaced.call_once(|| replace(&path));
        }
    })
    .await;
    assert_ended_by_a_200(&bytes, error, &content);
}

fn replace(path: &Path) {
    std::fs::write(path, file(64 * MIB + 1, 3)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ignores_range_ends_the_download_after_the_bytes_it_had_sent() {
    let Some(python) = programs::python() else {
        return;
    };
    let content = file(24 * MIB, 4);
    let dir = std::env::temp_dir().join(format!("retryable-http-pyserver-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("big.bin"), &content).unwrap();
    let port = free_port();
    let _server = Command::new(python)
        .args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(port.to_string())
        .arg("--directory")
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("python starts");
    assert!(listening(port).await, "http.server did not start");
    let (_proxy, base) = fault_proxy(port, 8 * MIB).await;
    let (bytes, error, _) = download(&format!("{base}/big.bin"), |_| {}).await;
    let _ = std::fs::remove_dir_all(&dir);
    assert_ended_by_a_200(&bytes, error, &content);
}

/// The download ended because a request that resumed it was answered `200`, the whole of
/// some version, and no byte of that answer arrived: what did is a prefix of `content`, no
/// longer than the first cut.
fn assert_ended_by_a_200(
    bytes: &[u8],
    error: Option<Box<dyn std::error::Error + Send + Sync>>,
    content: &[u8],
) {
    let error = error.expect("a 200 to a range is not the rest of the body");
    let error = error.downcast_ref::<ResumeError>().expect("a ResumeError");
    assert!(
        matches!(error.reason(), Reason::Rejected(Rejected::NotPartial(s)) if *s == 200),
        "{error}"
    );
    assert!(
        !bytes.is_empty() && bytes.len() <= 8 * MIB,
        "{}",
        bytes.len()
    );
    assert_eq!(
        bytes,
        &content[..bytes.len()],
        "only the first version's bytes"
    );
}
