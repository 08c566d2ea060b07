//! The seed experiment against the real mitmproxy: `mitmdump` with the seed's addon
//! (`tests/fixtures/simulate_502.py`) between this crate's client and a loopback upstream.
//!
//! `.ci/run` installs mitmproxy 11.0.2 and sets `MITMDUMP`. Without it these tests say they
//! were skipped; in CI (`CI=true`) a missing mitmdump fails them.
#![cfg(feature = "fault")]

mod support;

use std::path::Path;

use support::programs::{self, Program};
use support::{seed, servers, within};
use tokio::process::Command;

/// Starts mitmdump with `addon` on a loopback port the OS picks; `None` when it is missing.
async fn mitmdump(addon: &str) -> Option<(Program, String)> {
    let mitmdump = programs::mitmdump()?;
    let addon = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(addon);
    let mut command = Command::new(mitmdump);
    command
        .args([
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            "0",
            "--set",
            "termlog_verbosity=info",
        ])
        .arg("-s")
        .arg(addon);
    let program = programs::start(command, "proxy listening at").await;
    let address = programs::address_in(&program.ready);
    Some((program, address))
}

#[tokio::test]
async fn a_get_through_mitmproxy_makes_four_attempts_and_ends_with_502() {
    within(async {
        let Some((_mitm, proxy)) = mitmdump("simulate_502.py").await else {
            return;
        };
        let (upstream, seen) = servers::recording().await;
        seed::get_makes_four_attempts_and_ends_with_502(&proxy, &upstream.addr.to_string(), &seen)
            .await;
    })
    .await;
}

#[tokio::test]
async fn a_plain_post_through_mitmproxy_is_sent_once() {
    within(async {
        let Some((_mitm, proxy)) = mitmdump("simulate_502.py").await else {
            return;
        };
        let (upstream, seen) = servers::recording().await;
        seed::plain_post_is_sent_once(&proxy, &upstream.addr.to_string(), &seen).await;
    })
    .await;
}

#[tokio::test]
async fn a_post_with_idempotency_key_through_mitmproxy_is_retried_unchanged() {
    within(async {
        let Some((_mitm, proxy)) = mitmdump("simulate_502.py").await else {
            return;
        };
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
async fn through_mitmproxy_failing_the_first_two_requests_the_third_attempt_succeeds() {
    within(async {
        let Some((_mitm, proxy)) = mitmdump("simulate_502_first2.py").await else {
            return;
        };
        let (upstream, seen) = servers::recording().await;
        seed::third_attempt_succeeds(&proxy, &upstream.addr.to_string(), &seen).await;
    })
    .await;
}

#[tokio::test]
async fn the_seed_client_example_through_mitmproxy_prints_the_final_status() {
    within(async {
        let Some((_mitm, proxy)) = mitmdump("simulate_502.py").await else {
            return;
        };
        let (upstream, seen) = servers::recording().await;
        let output = Command::new(programs::example("seed_client"))
            .args([
                "--proxy",
                &format!("http://{proxy}"),
                "--wait-min",
                "10",
                "--wait-max",
                "50",
            ])
            .arg(upstream.url("/your-api-endpoint"))
            .output()
            .await
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        let lines: Vec<_> = stdout.lines().collect();
        assert_eq!(lines.last(), Some(&"final status: 502"), "{stdout}");
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.contains("-> 502 Bad Gateway"))
                .count(),
            4,
            "{stdout}"
        );
        assert_eq!(seen.lock().unwrap().len(), 4);
    })
    .await;
}
