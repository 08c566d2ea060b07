//! `examples/fault_proxy.rs`, the mitmproxy of this crate: the seed experiment through it,
//! its other modes and its JSON log. Real sockets on loopback, real time.
#![cfg(feature = "fault")]

mod support;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use support::programs::{self, Program};
use support::{seed, servers, within};
use tokio::process::Command;
use tower::ServiceExt;

/// Starts the fault proxy with `args` on a port the OS picks.
async fn fault_proxy(args: &[&str]) -> (Program, String) {
    let mut command = Command::new(programs::example("fault_proxy"));
    command.args(["--listen", "127.0.0.1:0"]).args(args);
    let program = programs::start(command, "listening on").await;
    let address = programs::address_in(&program.ready);
    (program, address)
}

const SEED: &[&str] = &["--match", "your-api-endpoint"];

#[tokio::test]
async fn a_get_through_the_fault_proxy_makes_four_attempts_and_ends_with_502() {
    within(async {
        let (_proxy, proxy) = fault_proxy(SEED).await;
        let (upstream, seen) = servers::recording().await;
        seed::get_makes_four_attempts_and_ends_with_502(&proxy, &upstream.addr.to_string(), &seen)
            .await;
    })
    .await;
}

#[tokio::test]
async fn a_plain_post_through_the_fault_proxy_is_sent_once() {
    within(async {
        let (_proxy, proxy) = fault_proxy(SEED).await;
        let (upstream, seen) = servers::recording().await;
        seed::plain_post_is_sent_once(&proxy, &upstream.addr.to_string(), &seen).await;
    })
    .await;
}

#[tokio::test]
async fn a_post_with_idempotency_key_through_the_fault_proxy_is_retried_unchanged() {
    within(async {
        let (_proxy, proxy) = fault_proxy(SEED).await;
        let (upstream, seen) = servers::recording().await;
        seed::post_with_key_is_retried_with_the_same_key_and_body(
            &proxy,
            &upstream.addr.to_string(),
            &seen,
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn with_first_2_the_third_attempt_succeeds() {
    within(async {
        let (_proxy, proxy) = fault_proxy(&["--match", "your-api-endpoint", "--first", "2"]).await;
        let (upstream, seen) = servers::recording().await;
        seed::third_attempt_succeeds(&proxy, &upstream.addr.to_string(), &seen).await;
    })
    .await;
}

#[tokio::test]
async fn before_answers_without_forwarding_and_reverse_mode_rewrites_the_target() {
    within(async {
        let (upstream, seen) = servers::recording().await;
        let (_proxy, proxy) = fault_proxy(&[
            "--upstream",
            &format!("http://{}", upstream.addr),
            "--match",
            "/flaky",
            "--before",
            "--status",
            "503",
            "--header",
            "Retry-After: 0",
            "--body",
            "busy",
        ])
        .await;
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Full<Bytes>>();
        let get = |path: &str| {
            Request::get(format!("http://{proxy}{path}"))
                .body(Full::new(Bytes::new()))
                .unwrap()
        };
        let response = client.request(get("/flaky")).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "0");
        assert_eq!(
            response.into_body().collect().await.unwrap().to_bytes(),
            "busy"
        );
        assert!(seen.lock().unwrap().is_empty(), "--before must not forward");

        let response = client.request(get("/fine?x=1")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].uri, "/fine?x=1");
        assert_eq!(seen[0].headers["host"], upstream.addr.to_string().as_str());
    })
    .await;
}

#[tokio::test]
async fn the_log_has_one_json_object_per_request_and_stdout_one_line() {
    within(async {
        let dir = std::env::temp_dir().join(format!("fault-proxy-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("requests.jsonl");
        let (proxy_program, proxy) = fault_proxy(&[
            "--match",
            "your-api-endpoint",
            "--first",
            "1",
            "--log",
            log.to_str().unwrap(),
        ])
        .await;
        let (upstream, _seen) = servers::recording().await;
        let request = Request::post(format!("http://{}/your-api-endpoint", upstream.addr))
            .header("idempotency-key", "k\"1")
            .header("x-retry-attempt", "1")
            .body(Full::new(Bytes::from_static(b"12345")))
            .unwrap();
        let response = seed::client(&proxy).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);

        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let url = format!("\"url\":\"http://{}/your-api-endpoint\"", upstream.addr);
        for (line, status, fault) in [(lines[0], 502, true), (lines[1], 200, false)] {
            assert!(
                line.starts_with("{\"time\":") && line.ends_with('}'),
                "{line}"
            );
            assert!(line.contains("\"method\":\"POST\""), "{line}");
            assert!(line.contains(&url), "{line}");
            assert!(
                line.contains(&format!("\"status\":{status},\"fault\":{fault}")),
                "{line}"
            );
            assert!(line.contains("\"body_len\":5"), "{line}");
            assert!(line.contains(r#""idempotency_key":"k\"1""#), "{line}");
        }
        let output = proxy_program.output.lock().unwrap().clone();
        assert_eq!(output.len(), 2, "{output:?}");
        assert!(output[0].contains("-> 502 fault"), "{output:?}");
        let _ = std::fs::remove_dir_all(dir);
    })
    .await;
}

#[tokio::test]
async fn the_seed_client_example_through_the_fault_proxy() {
    within(async {
        let (_proxy, proxy) = fault_proxy(SEED).await;
        let (upstream, seen) = servers::recording().await;
        let proxy_url = format!("http://{proxy}");
        let run = |args: Vec<String>| {
            let proxy_url = proxy_url.clone();
            async move {
                let output = Command::new(programs::example("seed_client"))
                    .args([
                        "--proxy",
                        &proxy_url,
                        "--wait-min",
                        "10",
                        "--wait-max",
                        "50",
                    ])
                    .args(args)
                    .output()
                    .await
                    .unwrap();
                assert!(output.status.success(), "{output:?}");
                String::from_utf8(output.stdout).unwrap()
            }
        };
        let stdout = run(vec![upstream.url("/your-api-endpoint")]).await;
        assert!(stdout.ends_with("final status: 502\n"), "{stdout}");
        assert!(stdout.contains("attempts: 4"), "{stdout}");
        assert_eq!(seen.lock().unwrap().len(), 4);

        // A plain POST goes once.
        seen.lock().unwrap().clear();
        let stdout = run(vec![
            "-X".into(),
            "POST".into(),
            "-d".into(),
            "x=1".into(),
            upstream.url("/your-api-endpoint"),
        ])
        .await;
        assert!(stdout.contains("attempts: 1"), "{stdout}");
        assert_eq!(seen.lock().unwrap().len(), 1);

        // Nothing listening: the client says why and exits with an error.
        let refused = servers::refused().await;
        let output = Command::new(programs::example("seed_client"))
            .args(["--max-retries", "1", "--wait-min", "10", "--wait-max", "10"])
            .arg(format!("http://{refused}/"))
            .output()
            .await
            .unwrap();
        assert!(!output.status.success());
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(stdout.contains("giving up after 2 attempt(s)"), "{stdout}");
    })
    .await;
}
