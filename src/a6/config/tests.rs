use super::*;

fn error(json: &str) -> String {
    ServiceConfig::from_json(json).unwrap_err().to_string()
}

fn retry_json(policy: &str) -> String {
    format!(r#"{{"methodConfig": [{{"name": [{{}}], "retryPolicy": {policy}}}]}}"#)
}

/// A retry policy for UNAVAILABLE, in milliseconds.
fn unavailable(max_attempts: u32, initial: u64, max: u64, multiplier: f64) -> RetryPolicy {
    let ms = Duration::from_millis;
    RetryPolicy::new(
        max_attempts,
        ms(initial),
        ms(max),
        multiplier,
        [Code::Unavailable],
    )
    .unwrap()
}

const RETRY: &str = r#"{"maxAttempts": 3, "initialBackoff": "0.1s", "maxBackoff": "1s",
    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE", 8]}"#;

#[test]
fn a_method_gets_the_most_specific_config_that_names_it() {
    let config = ServiceConfig::from_json(&format!(
        r#"{{"methodConfig": [
            {{"name": [{{}}], "timeout": "9s"}},
            {{"name": [{{"service": "echo.Echo"}}], "timeout": "2s"}},
            {{"name": [{{"service": "echo.Echo", "method": "Slow"}},
                       {{"service": "other.Svc", "method": "Call"}}],
              "timeout": "30s", "retryPolicy": {RETRY}}}
        ]}}"#
    ))
    .unwrap();
    let timeout = |path| config.method(path).and_then(MethodConfig::timeout);
    assert_eq!(timeout("/echo.Echo/Slow"), Some(Duration::from_secs(30)));
    assert_eq!(timeout("/other.Svc/Call"), Some(Duration::from_secs(30)));
    assert_eq!(timeout("/echo.Echo/Fast"), Some(Duration::from_secs(2)));
    assert_eq!(timeout("/other.Svc/Other"), Some(Duration::from_secs(9)));
    assert!(config.method("no-slash").is_none());
    assert!(config.method("/only-a-service").is_none());
    let retry = config
        .method("/echo.Echo/Slow")
        .unwrap()
        .retry_policy()
        .unwrap();
    assert_eq!(retry.max_attempts(), 3);
    assert!(retry.is_retryable(Code::Unavailable));
    assert!(retry.is_retryable(Code::ResourceExhausted));
    assert!(!retry.is_retryable(Code::Internal));
    assert!(
        config
            .method("/echo.Echo/Fast")
            .unwrap()
            .retry_policy()
            .is_none()
    );
}

#[test]
fn without_a_default_an_unnamed_method_has_no_config() {
    let config = ServiceConfig::from_json(
        r#"{"methodConfig": [{"name": [{"service": "echo.Echo"}], "timeout": "1s"}]}"#,
    )
    .unwrap();
    assert!(config.method("/other.Svc/Call").is_none());
    assert!(
        ServiceConfig::from_json("{}")
            .unwrap()
            .method("/a/b")
            .is_none()
    );
}

#[test]
fn max_attempts_above_five_count_as_five() {
    let policy = RETRY.replace("\"maxAttempts\": 3", "\"maxAttempts\": 9");
    let config = ServiceConfig::from_json(&retry_json(&policy)).unwrap();
    let retry = config.method("/a/b").unwrap().retry_policy().unwrap();
    assert_eq!(retry.max_attempts(), 5);
}

#[test]
fn the_backoff_grows_by_the_multiplier_up_to_the_cap() {
    let retry = unavailable(5, 100, 700, 2.0);
    let waits: Vec<_> = (1..=5).map(|n| retry.backoff(n).as_millis()).collect();
    assert_eq!(waits, [100, 200, 400, 700, 700]);
    // Any multiplier above 0: below 1 the waits shrink.
    let shrinking = unavailable(3, 1000, 5000, 0.5);
    assert_eq!(shrinking.backoff(3), Duration::from_millis(250));
    // A huge multiplier ends at the cap, not in an overflow.
    let huge = unavailable(5, 1000, 5000, 1e300);
    assert_eq!(huge.backoff(5), Duration::from_secs(5));
}

#[test]
fn field_names_match_in_any_case_as_grpc_go_reads_them() {
    // The retry example of grpc-go's repository.
    let config = ServiceConfig::from_json(
        r#"{"methodConfig": [{
            "name": [{"service": "grpc.examples.echo.Echo"}],
            "waitForReady": true,
            "retryPolicy": {
                "MaxAttempts": 4,
                "InitialBackoff": ".01s",
                "MaxBackoff": ".01s",
                "BackoffMultiplier": 1.0,
                "RetryableStatusCodes": [ "UNAVAILABLE" ]
            }
        }]}"#,
    )
    .unwrap();
    let method = config.method("/grpc.examples.echo.Echo/UnaryEcho").unwrap();
    let retry = method.retry_policy().unwrap();
    assert_eq!(retry.max_attempts(), 4);
    assert_eq!(retry.backoff(3), Duration::from_millis(10));
}

#[test]
fn durations_are_read_as_proto3_json_writes_them() {
    for (text, expected) in [
        ("\"1s\"", Duration::from_secs(1)),
        ("\"0.5s\"", Duration::from_millis(500)),
        ("\".25s\"", Duration::from_millis(250)),
        ("\"3.000000001s\"", Duration::new(3, 1)),
        ("\"0s\"", Duration::ZERO),
    ] {
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(duration(&value, "x").unwrap(), expected, "{text}");
    }
    for text in [
        "\"1\"",
        "\"s\"",
        "\".s\"",
        "\"-1s\"",
        "\"+1s\"",
        "\"1.+5s\"",
        "\"1.0000000001s\"",
        "\"1ms\"",
        "1",
        "\" 1s\"",
    ] {
        let value: Value = serde_json::from_str(text).unwrap();
        assert!(duration(&value, "x").is_err(), "{text}");
    }
}

#[test]
fn hedging_and_throttling_are_read() {
    let config = ServiceConfig::from_json(
        r#"{"methodConfig": [{"name": [{"service": "s"}], "hedgingPolicy": {
                "maxAttempts": 3, "hedgingDelay": "0.05s",
                "nonFatalStatusCodes": ["UNAVAILABLE", "aborted"]}}],
            "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}}"#,
    )
    .unwrap();
    let hedging = config.method("/s/m").unwrap().hedging_policy().unwrap();
    assert_eq!(hedging.max_attempts(), 3);
    assert_eq!(hedging.delay(), Duration::from_millis(50));
    assert!(hedging.is_non_fatal(Code::Unavailable));
    assert!(hedging.is_non_fatal(Code::Aborted));
    assert!(!hedging.is_non_fatal(Code::Internal));
    assert!(config.method("/s/m").unwrap().retry_policy().is_none());
    let throttling = config.throttling().unwrap();
    assert_eq!(throttling, Throttling::new(10, 0.1).unwrap());
    assert_eq!(throttling.throttle().milli_tokens(), 10_000);
}

#[test]
fn invalid_fields_are_refused_by_name() {
    let cases = [
        ("[]", "service config must be an object"),
        ("not json", "service config is not JSON"),
        (r#"{"methodConfig": {}}"#, "methodConfig must be a list"),
        (
            r#"{"methodConfig": [{"name": [{"method": "M"}]}]}"#,
            "methodConfig[0].name[0].method is set without a service",
        ),
        (
            r#"{"methodConfig": [{"name": [{}]}, {"name": [{}]}]}"#,
            "methodConfig: every method is named by two method configs",
        ),
        (
            r#"{"methodConfig": [{"name": [{"service": "s"}, {"service": "s"}]}]}"#,
            "methodConfig[0].name: /s/* is listed twice",
        ),
        (
            r#"{"methodConfig": [{"name": [{}], "timeout": 5}]}"#,
            "methodConfig[0].timeout must be a duration",
        ),
        (
            &format!(
                r#"{{"methodConfig": [{{"name": [{{}}], "retryPolicy": {RETRY}, "hedgingPolicy": {{"maxAttempts": 2}}}}]}}"#
            ),
            "methodConfig[0]: retryPolicy and hedgingPolicy may not both be set",
        ),
        (
            r#"{"methodConfig": [{"name": [{}], "hedgingPolicy": {"maxAttempts": 1}}]}"#,
            "methodConfig[0].hedgingPolicy.maxAttempts must be at least 2, not 1",
        ),
        (
            r#"{"retryThrottling": {"maxTokens": 0, "tokenRatio": 0.1}}"#,
            "retryThrottling.maxTokens must be more than 0",
        ),
        (
            r#"{"retryThrottling": {"maxTokens": 10}}"#,
            "retryThrottling.tokenRatio is required",
        ),
    ];
    for (json, message) in cases {
        let error = error(json);
        assert!(error.contains(message), "{json}: {error}");
    }
    let retry_cases = [
        (
            "\"maxAttempts\": 3",
            "\"maxAttempts\": 1",
            "retryPolicy.maxAttempts must be at least 2",
        ),
        (
            "\"maxAttempts\": 3",
            "\"maxAttempts\": \"three\"",
            "retryPolicy.maxAttempts must be a whole number",
        ),
        (
            "\"maxAttempts\": 3, ",
            "",
            "retryPolicy.maxAttempts is required",
        ),
        (
            "\"0.1s\"",
            "\"0s\"",
            "retryPolicy.initialBackoff must be more than 0",
        ),
        (
            "\"1s\"",
            "\"0s\"",
            "retryPolicy.maxBackoff must be more than 0",
        ),
        (
            "\"backoffMultiplier\": 2",
            "\"backoffMultiplier\": 0",
            "retryPolicy.backoffMultiplier must be more than 0",
        ),
        (
            "[\"UNAVAILABLE\", 8]",
            "[]",
            "retryPolicy.retryableStatusCodes must name at least one status",
        ),
        (
            "[\"UNAVAILABLE\", 8]",
            "[\"UNAVAILABLE\", \"SLOW\"]",
            "retryPolicy.retryableStatusCodes[1] is no gRPC status code",
        ),
        (
            "[\"UNAVAILABLE\", 8]",
            "[17]",
            "retryPolicy.retryableStatusCodes[0] is no gRPC status code",
        ),
    ];
    for (from, to, message) in retry_cases {
        assert!(RETRY.contains(from), "{from}");
        let error = error(&retry_json(&RETRY.replacen(from, to, 1)));
        assert!(
            error.contains(&format!("methodConfig[0].{message}")),
            "{to}: {error}"
        );
    }
}

#[test]
fn a_config_built_in_rust_matches_the_same_way() {
    let retry = unavailable(4, 100, 1000, 2.0);
    let config = ServiceConfig::new()
        .with_method(
            MethodConfig::new([Name::method("echo.Echo", "Unary")])
                .with_retry(retry.clone())
                .with_timeout(Duration::from_secs(3)),
        )
        .unwrap()
        .with_method(MethodConfig::new([Name::all()]).with_timeout(Duration::from_secs(9)))
        .unwrap()
        .with_throttling(Throttling::new(100, 0.5).unwrap());
    let unary = config.method("/echo.Echo/Unary").unwrap();
    assert_eq!(unary.retry_policy(), Some(&retry));
    assert_eq!(unary.names(), [Name::method("echo.Echo", "Unary")]);
    assert_eq!(
        config.method("/echo.Echo/Other").unwrap().timeout(),
        Some(Duration::from_secs(9))
    );
    let twice = ServiceConfig::new()
        .with_method(MethodConfig::new([Name::all()]))
        .unwrap()
        .with_method(MethodConfig::new([Name::all()]));
    assert!(twice.is_err());
    assert!(
        RetryPolicy::new(
            1,
            Duration::from_secs(1),
            Duration::from_secs(1),
            2.0,
            [Code::Unavailable]
        )
        .is_err()
    );
    assert!(HedgingPolicy::new(1, Duration::ZERO, []).is_err());
    assert_eq!(
        HedgingPolicy::new(7, Duration::ZERO, [])
            .unwrap()
            .max_attempts(),
        5
    );
}

#[test]
fn numbers_may_be_written_as_protobuf_s_json_writes_them() {
    // Whole numbers as `4.0` or `"4"`, ratios as strings; the smallest policy allowed.
    let policy = RETRY
        .replace("\"maxAttempts\": 3", "\"maxAttempts\": \"2\"")
        .replace("\"backoffMultiplier\": 2", "\"backoffMultiplier\": \"1.5\"");
    let config = ServiceConfig::from_json(&retry_json(&policy)).unwrap();
    let retry = config.method("/a/b").unwrap().retry_policy().unwrap();
    assert_eq!(retry.max_attempts(), 2);
    assert_eq!(retry.backoff(2), Duration::from_millis(150));
    let policy = RETRY.replace("\"maxAttempts\": 3", "\"maxAttempts\": 3.0");
    assert!(ServiceConfig::from_json(&retry_json(&policy)).is_ok());
    for not_whole in ["3.5", "-3.0", "-3", "true"] {
        let policy = RETRY.replace(
            "\"maxAttempts\": 3",
            &format!("\"maxAttempts\": {not_whole}"),
        );
        let error = error(&retry_json(&policy));
        assert!(
            error.contains("maxAttempts must be a whole number"),
            "{not_whole}: {error}"
        );
    }
    let throttling = ServiceConfig::from_json(
        r#"{"retryThrottling": {"maxTokens": "10", "tokenRatio": "0.5"}}"#,
    )
    .unwrap()
    .throttling();
    assert_eq!(throttling, Some(Throttling::new(10, 0.5).unwrap()));
}

#[test]
fn an_empty_service_name_is_the_default() {
    let config = ServiceConfig::from_json(
        r#"{"methodConfig": [{"name": [{"service": ""}], "timeout": "1s"}]}"#,
    )
    .unwrap();
    assert_eq!(
        config.method("/any.Svc/Call").unwrap().names(),
        [Name::all()]
    );
}

#[test]
fn names_say_which_methods_they_cover() {
    assert_eq!(Name::method("s", "m").to_string(), "/s/m");
    assert_eq!(Name::service("s").to_string(), "/s/*");
    assert_eq!(Name::all().to_string(), "every method");
    let error = error(
        r#"{"methodConfig": [{"name": [{"service": "s", "method": "m"}]},
                              {"name": [{"service": "s", "method": "m"}]}]}"#,
    );
    assert!(
        error.contains("methodConfig: /s/m is named by two method configs"),
        "{error}"
    );
}

#[test]
fn a_hedging_policy_built_in_rust_is_the_method_s() {
    let hedging = HedgingPolicy::new(3, Duration::from_millis(20), [Code::Unavailable]).unwrap();
    let method = MethodConfig::new([Name::all()]).with_hedging(hedging.clone());
    assert_eq!(method.hedging_policy(), Some(&hedging));
    assert!(method.retry_policy().is_none());
    assert_eq!(method.names(), [Name::all()]);
}
