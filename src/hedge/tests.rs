use std::time::Duration;

use super::*;

#[test]
fn a_hedge_says_what_it_was_told() {
    let fixed = Hedge::after(Duration::from_millis(10));
    assert_eq!(
        format!("{fixed:?}"),
        "Hedge { after: 10ms, max_attempts: 2, on_attempt_timeout: false, only_when: false }"
    );
    let computed = Hedge::after_fn(|n| Duration::from_millis(u64::from(n)))
        .max_attempts(3)
        .unwrap()
        .on_attempt_timeout()
        .only_when(|_| true);
    assert_eq!(
        format!("{computed:?}"),
        "Hedge { after: \"fn\", max_attempts: 3, on_attempt_timeout: true, only_when: true }"
    );
}

#[test]
fn the_delay_is_asked_for_each_attempt() {
    let hedge = Hedge::after_fn(|n| Duration::from_millis(10 * u64::from(n)));
    assert_eq!(hedge.delay(2), Duration::from_millis(20));
    assert_eq!(hedge.delay(3), Duration::from_millis(30));
    assert_eq!(
        Hedge::after(Duration::from_secs(1)).delay(5),
        Duration::from_secs(1)
    );
}

#[test]
fn attempts_are_bounded_from_two_to_the_most() {
    let hedge = || Hedge::after(Duration::ZERO);
    assert!(hedge().max_attempts(1).is_err());
    assert_eq!(hedge().max_attempts(2).unwrap().max(), 2);
    assert_eq!(
        hedge().max_attempts(MAX_ATTEMPTS).unwrap().max(),
        MAX_ATTEMPTS
    );
    let error = hedge().max_attempts(MAX_ATTEMPTS + 1).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid retry configuration: a hedged request makes 2 to 5 attempts, not 6"
    );
}

#[test]
fn only_when_decides_in_place_of_the_policy() {
    let head = http::Request::post("http://example.com/")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let hedge = Hedge::after(Duration::ZERO);
    assert!(hedge.admits(&head, || true));
    assert!(!hedge.admits(&head, || false));
    let only_posts = hedge.only_when(|head| head.method == http::Method::POST);
    assert!(only_posts.admits(&head, || false));
}
