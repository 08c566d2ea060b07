use super::*;

#[test]
fn an_instant_past_the_clock_s_range_is_thirty_years_on() {
    let now = Instant::now();
    let second = Duration::from_secs(1);
    assert_eq!(after(now, second), now + second);
    let thirty_years = Duration::from_secs(946_080_000);
    assert_eq!(after(now, Duration::MAX), now + thirty_years);
}

#[test]
fn a_layer_shows_every_setting() {
    let shown = format!("{:?}", Config::default());
    for field in [
        "RetryLayer { max_retries: 4",
        "backoff: Backoff",
        "server_waits: ServerWaits",
        "replay_limit: 1048576",
        "drain_limit: 4096",
        "drain_timeout: 1s",
        "attempt_timeout: None",
        "deadline: None",
        "budget: Some(PerDestination { each: Budget",
        "replay_limit_total: None",
        "retry_unprocessed: true",
        "attempt_header: None",
        "hooks: Hooks",
        "hedge: None",
    ] {
        assert!(shown.contains(field), "{field} in {shown}");
    }
}
