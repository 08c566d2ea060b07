//! `examples/fault_proxy.rs`, the mitmproxy of this crate: the seed experiment through it,
//! its other modes and its JSON log. Real sockets on loopback, real time.
#![cfg(all(feature = "fault", feature = "proxy"))]

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
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        let url = format!("http://{}/your-api-endpoint", upstream.addr);
        for (entry, status, fault) in [(&lines[0], 502, true), (&lines[1], 200, false)] {
            assert!(entry["time"].as_f64().unwrap() > 1.7e9, "{entry}");
            assert_eq!(entry["method"], "POST", "{entry}");
            assert_eq!(entry["url"], url.as_str(), "{entry}");
            assert_eq!(entry["status"], status, "{entry}");
            assert_eq!(entry["fault"], fault, "{entry}");
            assert_eq!(entry["refused_stream"], false, "{entry}");
            assert_eq!(entry["body_len"], 5, "{entry}");
            assert_eq!(entry["idempotency_key"], "k\"1", "{entry}");
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

/// Runs the seed client with the seed's settings and short waits; its exit status and
/// stdout.
async fn seed_client(args: &[&str]) -> (std::process::ExitStatus, String) {
    let output = Command::new(programs::example("seed_client"))
        .args(["--wait-min", "10", "--wait-max", "50"])
        .args(args)
        .output()
        .await
        .unwrap();
    (output.status, String::from_utf8(output.stdout).unwrap())
}

#[tokio::test]
async fn https_goes_through_the_fault_proxy_in_a_connect_tunnel() {
    within(async {
        let (_proxy, proxy) = fault_proxy(SEED).await;
        let (upstream, seen, ca) = servers::https_recording().await;
        let url = format!("https://localhost:{}/fine", upstream.addr.port());
        let (status, stdout) = seed_client(&[
            "--proxy",
            &format!("http://{proxy}"),
            "--cacert",
            ca.pem_file.to_str().unwrap(),
            &url,
        ])
        .await;
        assert!(status.success(), "{stdout}");
        assert!(stdout.ends_with("final status: 200\n"), "{stdout}");
        assert!(stdout.contains("attempts: 1"), "{stdout}");
        assert_eq!(seen.lock().unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_connect_the_rule_matches_fails_the_tunnel_and_is_retried_even_for_a_post() {
    within(async {
        // The CONNECT's host:port is what the rule sees: "localhost:PORT".
        let (program, proxy) = fault_proxy(&["--match", "localhost", "--first", "2"]).await;
        let (upstream, seen, ca) = servers::https_recording().await;
        let url = format!("https://localhost:{}/orders", upstream.addr.port());
        let (status, stdout) = seed_client(&[
            "--proxy",
            &format!("http://{proxy}"),
            "--cacert",
            ca.pem_file.to_str().unwrap(),
            "-X",
            "POST",
            "-d",
            "order=1",
            &url,
        ])
        .await;
        assert!(status.success(), "{stdout}");
        // Two tunnels refused: never sent, so the POST is retried, and sent once.
        assert!(stdout.contains("attempts: 3"), "{stdout}");
        assert!(stdout.ends_with("final status: 200\n"), "{stdout}");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].body, "order=1");
        let output = program.output.lock().unwrap().clone();
        let faults = output
            .iter()
            .filter(|l| l.contains("CONNECT") && l.contains("-> 502 fault"));
        assert_eq!(faults.count(), 2, "{output:?}");
    })
    .await;
}

#[tokio::test]
async fn with_mitm_the_seed_experiment_runs_over_https() {
    within(async {
        let dir = std::env::temp_dir().join(format!("fault-proxy-mitm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("fault-proxy-ca.pem");
        let (_proxy, proxy) = fault_proxy(&[
            "--match",
            "your-api-endpoint",
            "--mitm",
            ca.to_str().unwrap(),
            "--ssl-insecure",
        ])
        .await;
        let (upstream, seen, _upstream_ca) = servers::https_recording().await;
        let url = format!(
            "https://localhost:{}/your-api-endpoint",
            upstream.addr.port()
        );
        let proxy_url = format!("http://{proxy}");

        // Trusting the proxy's CA: the 502 replaces every answer, as over HTTP.
        let (status, stdout) = seed_client(&[
            "--proxy",
            &proxy_url,
            "--cacert",
            ca.to_str().unwrap(),
            &url,
        ])
        .await;
        assert!(status.success(), "{stdout}");
        assert_eq!(stdout.matches("-> 502 Bad Gateway").count(), 4, "{stdout}");
        assert!(stdout.ends_with("final status: 502\n"), "{stdout}");
        assert_eq!(seen.lock().unwrap().len(), 4);

        // Without it: a certificate error, after one attempt, that says what to do.
        let (status, stdout) = seed_client(&["--proxy", &proxy_url, &url]).await;
        assert!(!status.success(), "{stdout}");
        assert!(stdout.contains("giving up after 1 attempt(s)"), "{stdout}");
        assert!(stdout.contains("invalid peer certificate"), "{stdout}");
        assert!(stdout.contains("--cacert"), "{stdout}");
        assert_eq!(seen.lock().unwrap().len(), 4);
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

#[tokio::test]
async fn over_http2_a_refused_stream_is_retried_even_for_a_post() {
    within(async {
        let dir = std::env::temp_dir().join(format!("fault-proxy-h2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("requests.jsonl");
        let (program, proxy) = fault_proxy(&[
            "--http2",
            "--refuse-stream",
            "--match",
            "your-api-endpoint",
            "--first",
            "2",
            "--log",
            log.to_str().unwrap(),
        ])
        .await;
        let (upstream, seen) = servers::recording().await;
        let (status, stdout) = seed_client(&[
            "--proxy",
            &format!("http://{proxy}"),
            "--http2",
            "-X",
            "POST",
            "-d",
            "order=2",
            &upstream.url("/your-api-endpoint"),
        ])
        .await;
        let output = program.output.lock().unwrap().clone();
        assert!(status.success(), "{stdout}");
        assert!(stdout.contains("attempts: 3"), "{stdout}");
        assert!(
            stdout.ends_with("final status: 200\n"),
            "{stdout} {output:?}"
        );
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen.len(),
            1,
            "the refused streams never reached the upstream"
        );
        assert_eq!(seen[0].body, "order=2");
        let text = std::fs::read_to_string(&log).unwrap();
        let refused: Vec<bool> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["refused_stream"] == true
            })
            .collect();
        assert_eq!(refused, [true, true, false], "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

#[tokio::test]
async fn bad_flags_are_refused_with_a_clear_message() {
    within(async {
        for (args, expected) in [
            (&["--refuse-stream"][..], "--http2"),
            (&["--status", "1000"][..], "--status"),
            (
                &["--first", "2", "--probability", "0.5"][..],
                "cannot be used with",
            ),
        ] {
            let output = Command::new(programs::example("fault_proxy"))
                .args(args)
                .output()
                .await
                .unwrap();
            assert_eq!(output.status.code(), Some(2), "{args:?}");
            let stderr = String::from_utf8(output.stderr).unwrap();
            assert!(stderr.contains(expected), "{args:?}: {stderr}");
        }
        let output = Command::new(programs::example("fault_proxy"))
            .arg("--help")
            .output()
            .await
            .unwrap();
        let help = String::from_utf8(output.stdout).unwrap();
        for flag in ["--match", "--refuse-stream", "--mitm", "[default: 502]"] {
            assert!(help.contains(flag), "{flag} missing from --help: {help}");
        }
    })
    .await;
}

#[tokio::test]
async fn the_seed_client_names_a_proxy_that_is_not_listening_or_refuses_the_tunnel() {
    within(async {
        let (_upstream, _seen, ca) = servers::https_recording().await;
        let url = "https://localhost:9/your-api-endpoint";
        // Nothing listens where the proxy should be: never sent, so retried, then named.
        let refused = servers::refused().await;
        let (status, stdout) = seed_client(&[
            "--proxy",
            &format!("http://{refused}"),
            "--max-retries",
            "1",
            url,
        ])
        .await;
        assert_eq!(status.code(), Some(1), "{stdout}");
        assert!(stdout.contains("giving up after 2 attempt(s)"), "{stdout}");
        assert!(
            stdout.contains(&format!("could not reach the proxy http://{refused}")),
            "{stdout}"
        );
        assert!(stdout.contains("hint: is the proxy running?"), "{stdout}");

        // A proxy that answers every CONNECT with an error: the tunnel is refused.
        let (_proxy, proxy) = fault_proxy(&["--match", "localhost"]).await;
        let (status, stdout) = seed_client(&[
            "--proxy",
            &format!("http://{proxy}"),
            "--cacert",
            ca.pem_file.to_str().unwrap(),
            "--max-retries",
            "1",
            url,
        ])
        .await;
        assert_eq!(status.code(), Some(1), "{stdout}");
        assert!(stdout.contains("giving up after 2 attempt(s)"), "{stdout}");
        assert!(
            stdout.contains(&format!(
                "the proxy http://{proxy} did not open a tunnel to localhost:9"
            )),
            "{stdout}"
        );
        assert!(stdout.contains("refused the CONNECT tunnel"), "{stdout}");
    })
    .await;
}
