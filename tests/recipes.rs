//! The recipes of README "Observability", run: reqwest under the layer, a tower-http client
//! stack, and the axum proxy's spans; and the demo's download, resumed. Each example talks
//! to its own loopback upstream; the tests check what they print.

mod support;

use support::{programs, within};

async fn run(name: &str) -> String {
    let output = within(tokio::process::Command::new(programs::example(name)).output())
        .await
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{name}: {stdout}");
    stdout
}

#[tokio::test]
async fn reqwest_sends_a_streamed_upload_again_after_a_503_and_reads_its_own_response() {
    let stdout = run("reqwest").await;
    assert_eq!(stdout.matches("attempt 1: ").count(), 1, "{stdout}");
    assert_eq!(stdout.matches("attempt 2: ").count(), 1, "{stdout}");
    // All 16 chunks of 64 KiB, each byte its chunk's number: 65536 × (0 + … + 15).
    assert!(
        stdout.contains("200 OK after 2 attempts: received 1048576 bytes, sum 7864320"),
        "{stdout}"
    );
}

/// The lines the subscriber printed when an `attempt` span closed, without the spans
/// inside them.
fn attempt_closes(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| l.contains("attempt{") && l.ends_with("}: close"))
        .filter(|l| !l.contains("}:request{"))
        .collect()
}

#[tokio::test]
async fn tower_http_s_trace_layer_under_the_retry_layer_makes_a_span_per_attempt() {
    let stdout = run("tower_http").await;
    let attempts = attempt_closes(&stdout);
    assert_eq!(attempts.len(), 3, "{stdout}");
    for (line, (decision, n)) in attempts
        .iter()
        .zip([("retry", 1), ("retry", 2), ("return", 3)])
    {
        assert!(
            line.contains("fetch_report:attempt{"),
            "under the caller's span: {line}"
        );
        assert!(
            line.contains(&format!("retryable_http.attempt={n}")),
            "{line}"
        );
        assert!(line.contains(&format!("decision=\"{decision}\"")), "{line}");
    }
    assert!(!attempts[0].contains("resend_count"), "{}", attempts[0]);
    assert!(attempts[1].contains("resend_count=1 "), "{}", attempts[1]);
    assert!(attempts[1].contains("error.type=503"), "{}", attempts[1]);
    assert!(
        attempts[2].contains("http.response.status_code=200"),
        "{}",
        attempts[2]
    );
    // tower-http's own span, once per attempt, inside the attempt's.
    let inner = stdout
        .lines()
        .filter(|l| l.contains("}:request{") && l.ends_with("}: close"))
        .count();
    assert_eq!(inner, 3, "{stdout}");
    assert!(
        stdout.contains("request timed out"),
        "the first attempt: {stdout}"
    );
    // The header set below the retry layer came from the attempt.
    assert!(
        stdout.contains("200 OK after 3 attempts: sent as attempt 3"),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_axum_proxy_shows_each_upstream_attempt_inside_the_request_it_serves() {
    let stdout = run("axum_proxy").await;
    let attempts = attempt_closes(&stdout);
    let under = |path: &str| {
        attempts
            .iter()
            .filter(|l| l.contains("proxy{method=") && l.contains(path))
            .count()
    };
    assert_eq!(attempts.len(), 5, "{stdout}");
    assert_eq!(under("path=\"/files/report.csv\""), 2, "{stdout}");
    assert_eq!(
        under("path=\"/orders\""),
        1,
        "a POST is not sent twice: {stdout}"
    );
    assert_eq!(under("path=\"/payments\""), 2, "{stdout}");
    assert!(
        stdout.contains("200 OK after 2 upstream attempt(s): stored 18 bytes"),
        "{stdout}"
    );
}

/// The demo reads hyper's HTTP/2 errors to retry its refused stream: it needs the `hyper`
/// feature, as the README's command has by default.
#[cfg(feature = "hyper")]
#[tokio::test]
async fn the_demo_resumes_its_download_and_delivers_every_byte_once() {
    let stdout = run("demo").await;
    let download = stdout
        .split("download: ")
        .nth(1)
        .expect("the download scenario");
    assert!(download.contains("resume 2 from byte"), "{stdout}");
    assert!(
        download.contains("3145728 bytes, every byte once, in order"),
        "{stdout}"
    );
    assert!(stdout.contains("7 requests"), "{stdout}");
}
