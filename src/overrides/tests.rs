use std::time::Duration;

use super::*;
use crate::policy::StandardPolicy;

#[test]
fn an_override_shows_what_it_sets() {
    assert_eq!(
        format!("{:?}", RetryOverride::never()),
        "RetryOverride { max_retries: Some(0), deadline: None, attempt_timeout: None, policy: false, resume: None }"
    );
    let every = RetryOverride::new()
        .max_retries(2)
        .deadline(Duration::from_secs(3))
        .attempt_timeout(Duration::from_millis(500))
        .policy(StandardPolicy::new());
    assert_eq!(
        format!("{every:?}"),
        "RetryOverride { max_retries: Some(2), deadline: Some(3s), attempt_timeout: Some(500ms), policy: true, resume: None }"
    );
}
