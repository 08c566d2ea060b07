//! gRPC calls retried by gRFC A6, end to end: a tonic 0.14 client over a real tonic server
//! on loopback, the layer between them. Each test is a case of gRPC C-core's retry suite.
//! Real sockets: the tests check counts, statuses and what the server saw; times are
//! checked from below only (a wait never ends early), or in the record.
#![cfg(feature = "grpc")]

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::HeaderName;
use retryable_http::grpc::{self, Code, GrpcLayer, ServiceConfig};
use retryable_http::record::{Ended, WaitReason};
use retryable_http::{Attempts, RetryLayer};
use support::grpc::{COLLECT, Echo, Raw, SAY, STREAM, unary, unavailable};
use support::h2::{Conn, H2Server, Stream};
use support::within;
use tonic::client::Grpc;
use tonic::transport::Channel;
use tonic::{Request, Status};
use tower::Layer;

const COUNT: HeaderName = HeaderName::from_static("x-attempts");

/// `echo.Echo` retried on UNAVAILABLE: `attempts` attempts, 10 ms then doubling.
fn config(attempts: u32) -> ServiceConfig {
    config_with(attempts, "")
}

/// The same, with more JSON in the config's root (after a comma).
fn config_with(attempts: u32, more: &str) -> ServiceConfig {
    ServiceConfig::from_json(&format!(
        r#"{{
          "methodConfig": [{{
            "name": [{{"service": "echo.Echo"}}],
            "retryPolicy": {{
              "maxAttempts": {attempts},
              "initialBackoff": "0.01s",
              "maxBackoff": "0.1s",
              "backoffMultiplier": 2,
              "retryableStatusCodes": ["UNAVAILABLE"]
            }}
          }}]
          {more}
        }}"#
    ))
    .unwrap()
}

type Client = Grpc<grpc::GrpcRetry<Channel>>;

async fn client(server: &support::grpc::Listening, layer: GrpcLayer) -> Client {
    Grpc::new(
        layer
            .attempt_count_header(COUNT)
            .layer(server.channel().await),
    )
}

fn say(message: &'static str) -> Request<Bytes> {
    Request::new(Bytes::from_static(message.as_bytes()))
}

/// One unary call of `Say` with `request`, through `layer` to a server that answers as
/// `echo` says.
async fn call(
    echo: &Echo,
    layer: GrpcLayer,
    request: Request<Bytes>,
) -> Result<tonic::Response<Bytes>, Status> {
    let server = echo.listen().await;
    let mut client = client(&server, layer).await;
    within(unary(&mut client, SAY, request)).await
}

/// The attempt count the layer wrote into a failed call's status.
fn attempts_in(status: &Status) -> u32 {
    status
        .metadata()
        .get("x-attempts")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_call_that_fails_twice_with_unavailable_succeeds_on_the_third_attempt() {
    let echo = Echo::failing_first(2, unavailable);
    let response = call(&echo, GrpcLayer::new(config(4)), say("hi"))
        .await
        .unwrap();
    assert_eq!(response.get_ref(), "hi");
    assert_eq!(echo.calls(), 3);
    // The record, in the response's extensions, has each attempt's gRPC status.
    let record = response.extensions().get::<Attempts>().unwrap();
    let ended: Vec<_> = record.iter().map(|a| a.ended()).collect();
    let failed = Ended::Grpc(Code::Unavailable);
    assert_eq!(ended, [failed, failed, Ended::Status(http::StatusCode::OK)]);
    assert_eq!(response.metadata().get("x-attempts").unwrap(), "3");
    // Each retry says how many came before it; the first says nothing.
    let previous: Vec<_> = echo
        .seen()
        .iter()
        .map(|s| s.get("grpc-previous-rpc-attempts"))
        .collect();
    assert_eq!(previous, [None, Some("1".into()), Some("2".into())]);
}

#[tokio::test]
async fn a_status_the_policy_does_not_retry_is_returned_at_once() {
    let echo = Echo::failing_first(1, || Status::invalid_argument("no"));
    let status = call(&echo, GrpcLayer::new(config(4)), say("hi"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(status.message(), "no");
    assert_eq!(echo.calls(), 1);
    assert_eq!(attempts_in(&status), 1);
}

#[tokio::test]
async fn attempts_are_capped_at_five_whatever_max_attempts_says() {
    let echo = Echo::new(|_| Some(unavailable()));
    let status = call(&echo, GrpcLayer::new(config(7)), say("hi"))
        .await
        .unwrap_err();
    // The last attempt's Trailers-Only status, as the server sent it.
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(status.message(), "busy");
    assert_eq!(echo.calls(), 5);
    assert_eq!(attempts_in(&status), 5);
}

#[tokio::test]
async fn a_call_is_retried_after_exactly_the_pushback_and_the_backoff_starts_over() {
    let pushback = || {
        let mut status = unavailable();
        status
            .metadata_mut()
            .insert("grpc-retry-pushback-ms", "300".parse().unwrap());
        status
    };
    let echo = Echo::new(move |n| match n {
        0 => Some(pushback()),
        1 => Some(unavailable()),
        _ => None,
    });
    let response = call(&echo, GrpcLayer::new(config(4)), say("hi"))
        .await
        .unwrap();
    let record = response.extensions().get::<Attempts>().unwrap();
    let pushed = Duration::from_millis(300);
    assert_eq!(
        record.get(1).unwrap().waited(),
        Some((pushed, WaitReason::Pushback))
    );
    // After the pushback, the backoff starts from its first step: 10 ms ± 20 %.
    let (wait, why) = record.get(2).unwrap().waited().unwrap();
    assert_eq!(why, WaitReason::Backoff);
    assert!(wait <= Duration::from_millis(12), "{wait:?}");
    let seen = echo.seen();
    assert!(seen[1].at - seen[0].at >= pushed);
}

#[tokio::test]
async fn a_negative_pushback_stops_the_retries() {
    let echo = Echo::new(|_| {
        let mut status = unavailable();
        status
            .metadata_mut()
            .insert("grpc-retry-pushback-ms", "-1".parse().unwrap());
        Some(status)
    });
    let status = call(&echo, GrpcLayer::new(config(4)), say("hi"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(echo.calls(), 1);
}

/// Sends `calls` calls one after the other to a server that fails the calls `fails` picks
/// (by the server's count, retries included), with throttling at 10 tokens and a ratio of
/// 0.1; returns how many failed.
async fn throttled(calls: usize, fails: fn(usize) -> bool) -> usize {
    let echo = Echo::new(move |n| fails(n).then(unavailable));
    let server = echo.listen().await;
    let throttling = r#", "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}"#;
    let mut client = client(&server, GrpcLayer::new(config_with(5, throttling))).await;
    let mut failed = 0;
    for _ in 0..calls {
        if within(unary(&mut client, SAY, say("hi"))).await.is_err() {
            failed += 1;
        }
    }
    failed
}

#[tokio::test]
async fn retries_stop_while_more_than_about_one_call_in_eleven_fails() {
    // One in five: each failure costs a token, four successes give 0.4 back. The bucket
    // drains to half, and then failures go to the caller.
    assert!(throttled(100, |n| n % 5 == 0).await > 0);
    // One in twenty: 1.9 tokens back for each one spent, and every failure is retried.
    assert_eq!(throttled(100, |n| n % 20 == 0).await, 0);
}

#[tokio::test]
async fn throttling_counts_the_failures_of_each_call() {
    // Every call fails. The first spends 10 → 5 tokens in 5 attempts and is throttled at
    // the fifth; each later one is throttled at its first failure.
    let echo = Echo::new(|_| Some(unavailable()));
    let server = echo.listen().await;
    let throttling = r#", "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}"#;
    let mut client = client(&server, GrpcLayer::new(config_with(5, throttling))).await;
    let mut attempts = Vec::new();
    for _ in 0..3 {
        let status = within(unary(&mut client, SAY, say("hi")))
            .await
            .unwrap_err();
        attempts.push(attempts_in(&status));
    }
    assert_eq!(attempts, [5, 1, 1]);
    assert_eq!(echo.calls(), 7);
}

#[tokio::test]
async fn a_call_dropped_during_its_wait_sends_nothing_more() {
    let echo = Echo::new(|_| {
        let mut status = unavailable();
        status
            .metadata_mut()
            .insert("grpc-retry-pushback-ms", "5000".parse().unwrap());
        Some(status)
    });
    let server = echo.listen().await;
    let mut client = client(&server, GrpcLayer::new(config(4))).await;
    let call = tokio::spawn(async move { unary(&mut client, SAY, say("hi")).await });
    within(async {
        while echo.calls() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(echo.calls(), 1);
}

/// A client-streaming call of `messages`.
async fn collect(client: &mut Client, messages: Vec<Bytes>) -> Result<Bytes, Status> {
    within(async {
        client.ready().await?;
        let stream = tokio_stream::iter(messages);
        let path = http::uri::PathAndQuery::from_static(COLLECT);
        let response = client
            .client_streaming(Request::new(stream), path, Raw)
            .await?;
        Ok(response.into_inner())
    })
    .await
}

#[tokio::test]
async fn a_client_stream_is_replayed_whole() {
    let echo = Echo::failing_first(1, unavailable);
    let server = echo.listen().await;
    let mut client = client(&server, GrpcLayer::new(config(4))).await;
    let messages: Vec<Bytes> = (0..20u8).map(|i| Bytes::from(vec![i; 1000])).collect();
    let joined = collect(&mut client, messages.clone()).await.unwrap();
    assert_eq!(joined, messages.concat());
    let seen = echo.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].messages, messages);
    assert_eq!(seen[1].messages, messages);
}

#[tokio::test]
async fn a_client_stream_over_the_replay_limit_is_sent_once_and_not_retried() {
    let echo = Echo::failing_first(1, unavailable);
    let server = echo.listen().await;
    let layer = RetryLayer::new().replay_limit(4096).grpc(config(4));
    let mut client = client(&server, GrpcLayer::from_layer(layer)).await;
    let messages: Vec<Bytes> = (0..20u8).map(|i| Bytes::from(vec![i; 1000])).collect();
    let status = collect(&mut client, messages.clone()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    let seen = echo.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].messages, messages, "sent whole, once");
}

#[tokio::test]
async fn a_status_after_the_response_headers_is_not_retried() {
    let echo = Echo::failing_first(1, unavailable);
    let server = echo.listen().await;
    let mut client = client(&server, GrpcLayer::new(config(4))).await;
    let outcome = within(async {
        client.ready().await?;
        let path = http::uri::PathAndQuery::from_static(STREAM);
        let mut stream = client
            .server_streaming(say("hi"), path, Raw)
            .await?
            .into_inner();
        let first = stream.message().await?;
        let end = stream.message().await;
        Ok::<_, Status>((first, end))
    })
    .await;
    let (first, end) = outcome.unwrap();
    assert_eq!(first.as_deref(), Some(&b"hi"[..]));
    assert_eq!(end.unwrap_err().code(), tonic::Code::Unavailable);
    assert_eq!(echo.calls(), 1, "committed once the headers came");
}

#[tokio::test]
async fn one_deadline_bounds_every_attempt_and_ends_as_deadline_exceeded() {
    let echo = Echo::new(|_| Some(unavailable()));
    let server = echo.listen().await;
    let config = ServiceConfig::from_json(
        r#"{"methodConfig": [{
          "name": [{}],
          "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.15s", "maxBackoff": "0.15s",
                          "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}
        }]}"#,
    )
    .unwrap();
    let mut client = client(&server, GrpcLayer::new(config)).await;
    let mut request = say("hi");
    request.set_timeout(Duration::from_millis(400));
    let status = within(unary(&mut client, SAY, request)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    let record = grpc::attempts(&status).unwrap();
    assert_eq!(record.attempts(), echo.calls() as u32);
    // Each attempt was told the time left, which shrinks.
    let sent: Vec<Duration> = echo
        .seen()
        .iter()
        .map(|s| {
            let value = s.get("grpc-timeout").unwrap().parse().unwrap();
            grpc::parse_timeout(&value).unwrap()
        })
        .collect();
    assert!(sent.len() >= 2, "{sent:?}");
    assert!(sent[0] <= Duration::from_millis(400));
    assert!(sent.windows(2).all(|w| w[1] < w[0]), "{sent:?}");
}

#[tokio::test]
async fn a_wait_past_the_deadline_ends_the_call_at_once_as_deadline_exceeded() {
    let echo = Echo::new(|_| Some(unavailable()));
    let server = echo.listen().await;
    let config = ServiceConfig::from_json(
        r#"{"methodConfig": [{
          "name": [{"service": "echo.Echo", "method": "Say"}],
          "timeout": "0.5s",
          "retryPolicy": {"maxAttempts": 5, "initialBackoff": "10s", "maxBackoff": "10s",
                          "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}
        }]}"#,
    )
    .unwrap();
    let mut client = client(&server, GrpcLayer::new(config)).await;
    let status = within(unary(&mut client, SAY, say("hi")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    assert_eq!(echo.calls(), 1);
    // The method's timeout went out as the call's grpc-timeout.
    let sent = echo.seen()[0].get("grpc-timeout").unwrap();
    assert_eq!(sent, "500000u");
    let record = grpc::attempts(&status).unwrap();
    assert_eq!(
        record.get(0).unwrap().ended(),
        Ended::Grpc(Code::Unavailable)
    );
}

#[tokio::test]
async fn only_the_methods_the_config_names_are_retried() {
    let config = ServiceConfig::from_json(
        r#"{"methodConfig": [{
          "name": [{"service": "echo.Echo", "method": "Say"}],
          "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s", "maxBackoff": "0.01s",
                          "backoffMultiplier": 2, "retryableStatusCodes": ["unavailable"]}
        }]}"#,
    )
    .unwrap();
    let echo = Echo::new(|_| Some(unavailable()));
    let server = echo.listen().await;
    let mut client = client(&server, GrpcLayer::new(config)).await;
    let said = within(unary(&mut client, SAY, say("hi"))).await;
    assert_eq!(attempts_in(&said.unwrap_err()), 3);
    let collected = collect(&mut client, vec![Bytes::from_static(b"hi")]).await;
    assert_eq!(attempts_in(&collected.unwrap_err()), 1);
    assert_eq!(echo.calls(), 4);
}

/// A tonic client through the layer to a raw HTTP/2 server on loopback.
async fn h2_client(server: &support::h2::Listening, attempts: u32) -> Client {
    let channel = tonic::transport::Endpoint::from_shared(server.url(""))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Grpc::new(
        GrpcLayer::new(config(attempts))
            .attempt_count_header(COUNT)
            .layer(channel),
    )
}

#[tokio::test]
async fn a_refused_stream_is_retried_transparently_and_not_counted() {
    // Refused, then UNAVAILABLE, then OK: three attempts under maxAttempts 2, because the
    // first never reached the application.
    let server = H2Server::new(
        |_| Conn::Serve,
        |n| match n {
            0 => Stream::Reset(h2::Reason::REFUSED_STREAM),
            1 => Stream::Grpc(14),
            _ => Stream::Grpc(0),
        },
    );
    let listening = server.listen().await;
    let mut client = h2_client(&listening, 2).await;
    let response = within(unary(&mut client, SAY, say("hi"))).await.unwrap();
    assert_eq!(response.get_ref(), "h2");
    let record = response.extensions().get::<Attempts>().unwrap();
    let waits: Vec<_> = record.iter().map(|a| a.waited().map(|w| w.1)).collect();
    assert_eq!(
        waits,
        [
            None,
            Some(WaitReason::Transparent),
            Some(WaitReason::Backoff)
        ]
    );
    // The transparent retry is not a retry to the server either.
    let previous: Vec<_> = server
        .seen()
        .iter()
        .map(|s| s.headers.get("grpc-previous-rpc-attempts").cloned())
        .collect();
    assert_eq!(previous, [None, None, Some("1".parse().unwrap())]);
}

#[tokio::test]
async fn a_call_above_a_goaway_is_retried_transparently_on_a_new_connection() {
    let server = H2Server::new(
        |n| {
            if n == 0 {
                Conn::GoAway(h2::Reason::NO_ERROR)
            } else {
                Conn::Serve
            }
        },
        |_| Stream::Grpc(0),
    );
    let listening = server.listen().await;
    // maxAttempts 2 would allow one counted retry; the GOAWAY's takes none of it.
    let mut client = h2_client(&listening, 2).await;
    let response = within(unary(&mut client, SAY, say("hi"))).await.unwrap();
    let record = response.extensions().get::<Attempts>().unwrap();
    assert_eq!(record.attempts(), 2);
    assert_eq!(
        record.get(1).unwrap().waited().unwrap().1,
        WaitReason::Transparent
    );
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn a_refused_connection_is_retried_once_transparently_then_by_the_policy() {
    let refused = support::servers::refused().await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{refused}"))
        .unwrap()
        .connect_lazy();
    let layer = GrpcLayer::new(config(2)).attempt_count_header(COUNT);
    let mut client = Grpc::new(layer.layer(channel));
    let status = within(unary(&mut client, SAY, say("hi")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    let record = grpc::attempts(&status).unwrap();
    let waits: Vec<_> = record.iter().map(|a| a.waited().map(|w| w.1)).collect();
    assert_eq!(
        waits,
        [
            None,
            Some(WaitReason::Transparent),
            Some(WaitReason::Backoff)
        ]
    );
    assert_eq!(attempts_in(&status), 3);
}

/// `echo.Echo` hedged: `attempts` attempts, `delay` apart, UNAVAILABLE non-fatal.
fn hedged(attempts: u32, delay: &str) -> ServiceConfig {
    ServiceConfig::from_json(&format!(
        r#"{{"methodConfig": [{{
          "name": [{{"service": "echo.Echo"}}],
          "hedgingPolicy": {{"maxAttempts": {attempts}, "hedgingDelay": "{delay}",
                            "nonFatalStatusCodes": ["UNAVAILABLE"]}}
        }}]}}"#
    ))
    .unwrap()
}

#[tokio::test]
async fn a_slow_call_is_hedged_and_the_first_answer_wins() {
    // The first attempt takes 10 s; the hedge, 100 ms later, answers at once.
    let echo = Echo::new(|_| None).delaying(|n| {
        if n == 0 {
            Duration::from_secs(10)
        } else {
            Duration::ZERO
        }
    });
    let response = call(&echo, GrpcLayer::new(hedged(3, "0.1s")), say("hi"))
        .await
        .unwrap();
    assert_eq!(response.get_ref(), "hi");
    let record = response.extensions().get::<Attempts>().unwrap();
    assert_eq!(
        (record.attempts(), record.hedges(), record.abandoned()),
        (2, 1, 1)
    );
    let seen = echo.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].get("grpc-previous-rpc-attempts").as_deref(),
        Some("1")
    );
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(100));
}

#[tokio::test]
async fn a_non_fatal_status_starts_the_next_hedge_at_once() {
    let echo = Echo::failing_first(1, unavailable);
    let server = echo.listen().await;
    // A 10 s hedging delay: only the non-fatal status can start the second attempt soon.
    let mut client = client(&server, GrpcLayer::new(hedged(3, "10s"))).await;
    let response = within(unary(&mut client, SAY, say("hi"))).await.unwrap();
    let record = response.extensions().get::<Attempts>().unwrap();
    assert_eq!(record.attempts(), 2);
    assert_eq!(
        record.get(0).unwrap().ended(),
        Ended::Grpc(Code::Unavailable)
    );
    assert_eq!(
        record.get(1).unwrap().waited(),
        Some((Duration::ZERO, WaitReason::Hedge))
    );
}

#[tokio::test]
async fn a_fatal_status_ends_a_hedged_call() {
    let echo = Echo::new(|n| (n == 0).then(|| Status::invalid_argument("no")));
    let status = call(&echo, GrpcLayer::new(hedged(3, "10s")), say("hi"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(echo.calls(), 1);
}

#[tokio::test]
async fn every_hedge_failing_ends_with_the_last_status_after_max_attempts() {
    let echo = Echo::new(|_| Some(unavailable()));
    let status = call(&echo, GrpcLayer::new(hedged(3, "0.05s")), say("hi"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(attempts_in(&status), 3);
    assert_eq!(echo.calls(), 3);
}

#[tokio::test]
async fn the_example_prints_each_call_s_attempts() {
    let example = support::programs::example("grpc");
    let output = within(tokio::process::Command::new(example).output())
        .await
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let calls: Vec<&str> = stdout.split("Say(").skip(1).collect();
    assert_eq!(calls.len(), 4, "{stdout}");
    let attempts = |call: &str| call.matches("  attempt ").count();
    assert_eq!(attempts(calls[0]), 3, "{stdout}");
    assert!(calls[0].contains("-> OK"), "{stdout}");
    assert!(
        calls[1].contains("300.000ms (grpc-retry-pushback-ms)"),
        "{stdout}"
    );
    assert!(
        calls[2].contains("-> INVALID_ARGUMENT: no such thing"),
        "{stdout}"
    );
    assert!(calls[3].contains("-> DEADLINE_EXCEEDED"), "{stdout}");
}

#[tokio::test]
async fn each_channel_a_layer_wraps_has_its_own_throttle() {
    let down = Echo::new(|_| Some(unavailable()));
    let flaky = Echo::failing_first(1, unavailable);
    let (down_server, flaky_server) = (down.listen().await, flaky.listen().await);
    let throttling = r#", "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}"#;
    let layer = GrpcLayer::new(config_with(5, throttling)).attempt_count_header(COUNT);
    let mut to_down = Grpc::new(layer.layer(down_server.channel().await));
    let mut to_flaky = Grpc::new(layer.layer(flaky_server.channel().await));
    // The first server's failures drain its channel's bucket: the second call is not
    // retried.
    for expected in [5, 1] {
        let status = within(unary(&mut to_down, SAY, say("hi")))
            .await
            .unwrap_err();
        assert_eq!(attempts_in(&status), expected);
    }
    // The other channel's bucket is full.
    let response = within(unary(&mut to_flaky, SAY, say("hi"))).await.unwrap();
    assert_eq!(response.metadata().get("x-attempts").unwrap(), "2");
}

#[tokio::test]
async fn a_call_s_future_names_itself() {
    use tower::Service;
    let echo = Echo::new(|_| None);
    let server = echo.listen().await;
    let mut service = GrpcLayer::new(config(2)).layer(server.channel().await);
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .unwrap();
    let request = http::Request::post(SAY)
        .body(tonic::body::Body::empty())
        .unwrap();
    let future = service.call(request);
    assert_eq!(format!("{future:?}"), "GrpcFuture { .. }");
}
