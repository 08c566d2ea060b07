//! Interop with a real HTTP/2 server: nginx serving h2c with a low `keepalive_requests`.
//! nginx ends every connection with a graceful `GOAWAY` after that many requests; the
//! streams above its last stream id were never processed, and every `POST` on them must be
//! retried and succeed.
//!
//! `.ci/run` installs Debian's nginx-light where it can; without nginx the test says it was
//! skipped. The layer reads the `GOAWAY` with its `hyper` feature.
#![cfg(feature = "hyper")]

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use retryable_http::{RetryLayer, backoff::Backoff};
use support::programs;
use tokio::process::{Child, Command};
use tower::{Layer, ServiceExt};

/// A running nginx, in a directory of its own; killed and removed when dropped.
struct Nginx {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts nginx answering `200 ok` to everything over h2c (HTTP/2 with prior knowledge)
/// on a loopback port, closing each connection after `keepalive_requests` requests.
async fn nginx(keepalive_requests: u32) -> Option<Nginx> {
    let nginx = programs::nginx()?;
    let dir = std::env::temp_dir().join(format!(
        "retryable-http-nginx-{}-{keepalive_requests}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    // NOTE: nginx takes a port, not a listener: the OS picks a free one, which is released
    // just before nginx binds it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = dir.display();
    let config = format!(
        "daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests {keepalive_requests};
    server {{
        listen 127.0.0.1:{port} http2;
        location / {{ return 200 \"ok\\n\"; }}
    }}
}}
"
    );
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, config).unwrap();
    let child = Command::new(nginx)
        .arg("-p")
        .arg(&dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&conf)
        .kill_on_drop(true)
        .spawn()
        .expect("nginx starts");
    let running = Nginx { child, dir, port };
    // Ready when it accepts connections.
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(running);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(running.dir.join("error.log")).unwrap_or_default();
    panic!("nginx did not start listening on port {port}: {log}");
}

fn error_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_post_succeeds_across_nginx_connection_rollovers() {
    support::within(async {
        let Some(nginx) = nginx(100).await else {
            return;
        };
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .http2_only(true)
                .build_http();
        let client = RetryLayer::new()
            .backoff(Backoff::constant(Duration::from_millis(5)))
            .layer(client);
        let url = format!("http://127.0.0.1:{}/orders", nginx.port);
        let (workers, each) = (32, 50);
        let retried = Arc::new(AtomicUsize::new(0));
        let extra = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for worker in 0..workers {
            let (client, url) = (client.clone(), url.clone());
            let (retried, extra) = (retried.clone(), extra.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..each {
                    let request = Request::post(&url)
                        .body(Full::new(Bytes::from(format!("order {worker}-{i}"))))
                        .unwrap();
                    let response = client.clone().oneshot(request).await.unwrap_or_else(|e| {
                        panic!("POST {worker}-{i} failed: {e}");
                    });
                    assert_eq!(response.status(), StatusCode::OK);
                    let attempts = support::attempts(&response);
                    if attempts > 1 {
                        retried.fetch_add(1, Ordering::Relaxed);
                        extra.fetch_add(attempts as usize - 1, Ordering::Relaxed);
                    }
                    assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "ok\n");
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let (retried, extra) = (retried.load(Ordering::Relaxed), extra.load(Ordering::Relaxed));
        eprintln!(
            "nginx h2c, keepalive_requests 100: {} POSTs all succeeded; {retried} needed a retry ({extra} retries in all)",
            workers * each
        );
        // The rollovers did hit requests in flight, and the layer made up for them.
        assert!(retried > 0, "no request was retried: {}", error_log(&nginx.dir));
    })
    .await;
}
