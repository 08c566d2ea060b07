//! No secrets in `Debug`: every public type that can hold a request or response head prints
//! the URL without userinfo or query, and masks the values of sensitive headers.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request};
use http_body_util::Full;
use retryable_http::RetryLayer;
use retryable_http::backoff::Backoff;
use retryable_http::policy::{Action, policy_fn};
use support::upstream::{Reply, Upstream};
use tower::{Layer, ServiceExt};

/// Each kind of secret a request or response can carry.
const SECRETS: [&str; 8] = [
    "hunter2",        // userinfo
    "api_key",        // query
    "s3cret",         // query value
    "tok3n",          // authorization
    "cHJveHk6cGFzcw", // proxy-authorization
    "c00kie",         // cookie
    "m4rked",         // a value marked sensitive
    "s3t-c00kie",     // set-cookie, in a response
];

fn secret_request() -> Request<Full<Bytes>> {
    let mut marked = HeaderValue::from_static("m4rked");
    marked.set_sensitive(true);
    let mut request =
        Request::put("http://admin:hunter2@upstream.test:8080/orders/7?api_key=s3cret")
            .header("authorization", "Bearer tok3n")
            .header("proxy-authorization", "Basic cHJveHk6cGFzcw==")
            .header("cookie", "session=c00kie")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from("{}")))
            .unwrap();
    request.headers_mut().insert("x-signature", marked);
    request
}

/// Every `{:?}` and `{:#?}` printed, with what printed it.
#[derive(Clone, Default)]
struct Printed(Arc<Mutex<Vec<(String, String)>>>);

impl Printed {
    fn add(&self, what: &str, value: &dyn std::fmt::Debug) {
        let mut all = self.0.lock().unwrap();
        all.push((format!("{what} {{:?}}"), format!("{value:?}")));
        all.push((format!("{what} {{:#?}}"), format!("{value:#?}")));
    }

    fn check(&self) {
        let all = self.0.lock().unwrap();
        for (what, text) in all.iter() {
            for secret in SECRETS {
                assert!(!text.contains(secret), "{what} shows {secret:?}: {text}");
            }
        }
    }

    fn names(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(w, _)| w.clone())
            .collect()
    }
}

#[tokio::test(start_paused = true)]
async fn no_public_debug_output_shows_a_secret() {
    let printed = Printed::default();
    let upstream = Upstream::always(Reply::status(503).header("set-cookie", "id=s3t-c00kie"));
    let (p1, p2, p3, p4) = (
        printed.clone(),
        printed.clone(),
        printed.clone(),
        printed.clone(),
    );
    let layer = RetryLayer::new()
        .max_retries(1)
        .policy(policy_fn(move |attempt| {
            p1.add("policy::Attempt", attempt);
            p1.add("policy::Outcome", &attempt.outcome());
            Action::Retry
        }))
        .backoff(Backoff::custom(move |input| {
            p2.add("backoff::BackoffInput", input);
            Duration::from_millis(10)
        }))
        .prepare_retry(move |head, last| {
            p3.add("prepare_retry's Outcome", &last);
            let _ = head;
            Ok(())
        })
        .when_exhausted(move |give_up| {
            p4.add("hooks::GiveUp", give_up);
            Err("gave up".into())
        });
    let client = layer.clone().layer(upstream.clone());
    printed.add("RetryLayer", &layer);
    // (The inner service's own `Debug` is its business: a unit stands in for it.)
    printed.add("Retry", &layer.layer(()));
    let mut call = tokio_test::task::spawn(client.oneshot(secret_request()));
    let _ = call.poll();
    printed.add("future::ResponseFuture", &call);
    let error = call.await.unwrap_err();
    printed.add("Error", &error);
    assert_eq!(upstream.attempts(), 2);

    let names = printed.names();
    for expected in [
        "policy::Attempt",
        "policy::Outcome",
        "backoff::BackoffInput",
        "prepare_retry's Outcome",
        "hooks::GiveUp",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(expected)),
            "{expected} was never printed"
        );
    }
    printed.check();
    // Masked, not dropped: the names are still there.
    let all = printed.0.lock().unwrap().clone();
    let attempt = &all
        .iter()
        .find(|(w, _)| w == "policy::Attempt {:?}")
        .unwrap()
        .1;
    assert!(
        attempt.contains(r#""authorization": <redacted>"#),
        "{attempt}"
    );
    assert!(
        attempt.contains(r#""content-type": "application/json""#),
        "{attempt}"
    );
    assert!(
        attempt.contains("http://upstream.test:8080/orders/7"),
        "{attempt}"
    );
}

#[cfg(all(feature = "fault", feature = "proxy"))]
#[tokio::test(start_paused = true)]
async fn the_fault_side_prints_no_secret_either() {
    use hyper_util::client::legacy::connect::HttpConnector;
    use retryable_http::fault::{Answer, Effect, FaultLayer, Match, Rule};
    use retryable_http::proxy::HttpProxy;

    let printed = Printed::default();
    let faults = FaultLayer::new().rule(
        Rule::new(Effect::Respond(Answer::new(http::StatusCode::BAD_GATEWAY))).matching(
            Match::header(
                http::header::AUTHORIZATION,
                Some(HeaderValue::from_static("Bearer tok3n")),
            ),
        ),
    );
    let log = faults.log();
    printed.add("fault::FaultLayer", &faults);
    let upstream = Upstream::new([]);
    let response = faults
        .layer(upstream)
        .oneshot(secret_request())
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    printed.add("fault::FaultLog", &log);
    printed.add("fault::Seen", &log.entries()[0]);
    let proxy = HttpProxy::new(
        HttpConnector::new(),
        "http://proxyuser:hunter2@127.0.0.1:8888".parse().unwrap(),
    )
    .unwrap();
    printed.add("proxy::HttpProxy", &proxy);
    printed.check();
}
