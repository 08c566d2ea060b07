//! The seed experiment against the real mitmproxy: `mitmdump` with the seed's addon
//! (`tests/fixtures/simulate_502.py`) between this crate's client and a loopback upstream.
//!
//! `.ci/run` installs mitmproxy 11.0.2 and sets `MITMDUMP`. Without it these tests say they
//! were skipped; in CI (`CI=true`) a missing mitmdump fails them.
#![cfg(all(feature = "fault", feature = "proxy"))]

mod support;

use std::path::{Path, PathBuf};

use support::programs::{self, Program};
use support::{seed, servers, within};
use tokio::process::Command;

/// Starts mitmdump with `addon` on a loopback port the OS picks; `None` when it is missing.
async fn mitmdump(addon: &str) -> Option<(Program, String)> {
    mitmdump_with(addon, &[]).await
}

/// [`mitmdump`], with more arguments.
async fn mitmdump_with(addon: &str, more: &[&str]) -> Option<(Program, String)> {
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
        .arg(addon)
        .args(more);
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

/// The HTTPS experiment's setting: mitmdump with the seed's addon, its own configuration
/// directory (so it makes a fresh CA, in `mitmproxy-ca-cert.pem` there) and
/// `--ssl-insecure`, in front of an HTTPS upstream with a test certificate. The directory is
/// removed with it.
struct Https {
    _mitm: Program,
    _upstream: servers::Server,
    _upstream_ca: servers::TestCa,
    confdir: PathBuf,
    /// `http://host:port` of the proxy.
    proxy: String,
    /// The seed's URL on the upstream.
    url: String,
    seen: servers::Record,
}

impl Https {
    /// `None` when mitmdump is missing.
    async fn start(name: &str) -> Option<Https> {
        let confdir =
            std::env::temp_dir().join(format!("mitmproxy-conf-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&confdir).unwrap();
        let confdir_option = format!("confdir={}", confdir.display());
        let (mitm, proxy) = mitmdump_with(
            "simulate_502.py",
            &["--set", &confdir_option, "--ssl-insecure"],
        )
        .await?;
        assert!(
            confdir.join("mitmproxy-ca-cert.pem").exists(),
            "mitmdump made no CA in {}",
            confdir.display()
        );
        let (upstream, seen, upstream_ca) = servers::https_recording().await;
        let url = format!(
            "https://localhost:{}/your-api-endpoint",
            upstream.addr.port()
        );
        Some(Https {
            _mitm: mitm,
            _upstream: upstream,
            _upstream_ca: upstream_ca,
            proxy: format!("http://{proxy}"),
            url,
            seen,
            confdir,
        })
    }

    /// mitmproxy's CA certificate.
    fn ca(&self) -> String {
        self.confdir
            .join("mitmproxy-ca-cert.pem")
            .to_str()
            .unwrap()
            .to_owned()
    }

    fn seen(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Drop for Https {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.confdir);
    }
}

/// Runs the seed client; its exit status, stdout and stderr.
async fn seed_client(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let output = Command::new(programs::example("seed_client"))
        .args(args)
        .output()
        .await
        .unwrap();
    (
        output.status,
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test]
async fn over_https_through_mitmproxy_trusting_its_ca_the_seed_client_makes_four_attempts() {
    within(async {
        let Some(https) = Https::start("ca").await else {
            return;
        };
        // The seed's settings as they are: waits of 1 s, 2 s and 4 s.
        let (status, stdout, _) =
            seed_client(&["--proxy", &https.proxy, "--cacert", &https.ca(), &https.url]).await;
        assert!(status.success(), "{stdout}");
        assert_eq!(stdout.matches("-> 502 Bad Gateway").count(), 4, "{stdout}");
        for wait in [
            "retry in 1s (backoff",
            "retry in 2s (backoff",
            "retry in 4s (backoff",
        ] {
            assert_eq!(stdout.matches(wait).count(), 1, "{wait}: {stdout}");
        }
        assert!(stdout.contains("stop: no retries left"), "{stdout}");
        assert!(stdout.ends_with("final status: 502\n"), "{stdout}");
        // mitmproxy decrypted every attempt and let the upstream answer it first.
        assert_eq!(https.seen(), 4);
    })
    .await;
}

#[tokio::test]
async fn over_https_through_mitmproxy_without_its_ca_the_request_fails_at_once() {
    within(async {
        let Some(https) = Https::start("noca").await else {
            return;
        };
        let (status, stdout, _) = seed_client(&["--proxy", &https.proxy, &https.url]).await;
        assert_eq!(status.code(), Some(1), "{stdout}");
        assert!(stdout.contains("giving up after 1 attempt(s)"), "{stdout}");
        assert!(
            stdout.contains("invalid peer certificate: UnknownIssuer"),
            "{stdout}"
        );
        assert!(stdout.contains("--cacert"), "{stdout}");
        assert_eq!(https.seen(), 0);
    })
    .await;
}

#[tokio::test]
async fn over_https_through_mitmproxy_with_insecure_it_works_and_warns() {
    within(async {
        let Some(https) = Https::start("insecure").await else {
            return;
        };
        let (status, stdout, stderr) = seed_client(&[
            "--proxy",
            &https.proxy,
            "--insecure",
            "--wait-min",
            "10",
            "--wait-max",
            "50",
            &https.url,
        ])
        .await;
        assert!(status.success(), "{stdout}");
        assert!(stdout.ends_with("final status: 502\n"), "{stdout}");
        assert!(stdout.contains("attempts: 4"), "{stdout}");
        assert!(stderr.contains("warning: --insecure"), "{stderr}");
        assert_eq!(https.seen(), 4);
    })
    .await;
}
