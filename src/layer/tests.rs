use super::*;

#[test]
fn later_setters_keep_what_earlier_ones_set() {
    let shown = format!(
        "{:?}",
        RetryLayer::new()
            .max_retries(2)
            .drain_limit(10)
            .drain_timeout(Duration::from_millis(5))
            .no_budget()
    );
    for field in [
        "max_retries: 2",
        "drain_limit: 10",
        "drain_timeout: 5ms",
        "budget: None",
    ] {
        assert!(shown.contains(field), "{field} in {shown}");
    }
    let hooked = format!(
        "{:?}",
        RetryLayer::new().on_attempt(|_| {}).fail_when_exhausted()
    );
    assert!(
        hooked.contains(
            "hooks: Hooks { on_attempt: true, on_response: false, prepare_retry: false, when_exhausted: true }"
        ),
        "{hooked}"
    );
}
