use std::time::Duration;

use super::testing::{drain, to, two_each};
use super::*;

#[test]
fn each_origin_pays_from_its_own_budget() {
    let budgets = Budgets::per_origin(two_each());
    let now = Instant::now();
    assert_eq!(drain(&budgets, &to("http://a.example/x"), now), 2);
    // The same origin, another path, the host in capitals: spent too.
    assert_eq!(drain(&budgets, &to("http://A.EXAMPLE/y"), now), 0);
    // Another host, port or scheme: a budget of its own.
    assert_eq!(drain(&budgets, &to("http://b.example/x"), now), 2);
    assert_eq!(drain(&budgets, &to("http://a.example:8080/x"), now), 2);
    assert_eq!(drain(&budgets, &to("https://a.example/x"), now), 2);
}

#[test]
fn one_budget_is_shared_by_every_destination() {
    let budgets = Budgets::Shared(two_each());
    let now = Instant::now();
    assert_eq!(drain(&budgets, &to("http://a.example/x"), now), 2);
    assert_eq!(drain(&budgets, &to("http://b.example/x"), now), 0);
}

#[test]
fn a_key_function_names_the_budget() {
    let key: KeyFn = Arc::new(|head: &request::Parts| {
        let tenant = head.headers.get("x-tenant")?;
        Some(tenant.to_str().ok()?.to_owned())
    });
    let budgets = Budgets::keyed(two_each(), Some(key));
    let now = Instant::now();
    let tenant = |name: &str, host: &str| {
        let mut head = to(host);
        head.headers.insert("x-tenant", name.parse().unwrap());
        head
    };
    assert_eq!(drain(&budgets, &tenant("t1", "http://a.example/"), now), 2);
    // Tenant 1 on another host: the same budget, spent.
    assert_eq!(drain(&budgets, &tenant("t1", "http://b.example/"), now), 0);
    assert_eq!(drain(&budgets, &tenant("t2", "http://a.example/"), now), 2);
    // No tenant: one budget for all such requests.
    assert_eq!(drain(&budgets, &to("http://a.example/"), now), 2);
    assert_eq!(drain(&budgets, &to("http://c.example/"), now), 0);
}

#[test]
fn past_the_limit_idle_destinations_are_forgotten_and_busy_ones_share_the_overflow() {
    let keyed = Keyed::new(two_each(), None, PerKey::with_limit(2));
    let budgets = Budgets::Keyed(Arc::new(keyed));
    let start = Instant::now();
    let host = |n: u32| to(&format!("http://h{n}.example/"));
    assert_eq!(drain(&budgets, &host(0), start), 2);
    assert_eq!(drain(&budgets, &host(1), start), 2);
    // Full of destinations in use: a third pays from the overflow budget, and so does a
    // fourth, which finds it spent.
    assert_eq!(drain(&budgets, &host(2), start), 2);
    assert_eq!(drain(&budgets, &host(3), start), 0);
    // A window later, the first two are idle: forgotten, and the new destinations get
    // budgets of their own.
    let later = start + Duration::from_secs(3);
    assert_eq!(drain(&budgets, &host(4), later), 2);
    assert_eq!(drain(&budgets, &host(5), later), 2);
    let Budgets::Keyed(keyed) = &budgets else {
        unreachable!()
    };
    assert_eq!(keyed.accounts.len(), 2);
}

#[test]
fn a_budget_per_destination_shows_its_settings() {
    let shown = format!("{:?}", Budgets::per_origin(two_each()));
    assert!(
        shown.starts_with("PerDestination { each: Budget { window: 2s"),
        "{shown}"
    );
    assert!(
        shown.ends_with("key: \"origin\", destinations: 0 }"),
        "{shown}"
    );
}

#[test]
fn an_authority_too_long_to_remember_still_pays_from_its_own_budget() {
    let budgets = Budgets::per_origin(two_each());
    let now = Instant::now();
    let long = format!("http://{}.example/", "a".repeat(Inline::MAX));
    let other = format!("http://{}.example/", "b".repeat(Inline::MAX));
    assert_eq!(drain(&budgets, &to(&long), now), 2);
    assert_eq!(drain(&budgets, &to(&other), now), 2);
    assert_eq!(drain(&budgets, &to(&long), now), 0);
    // Up to the limit, an authority is remembered, and told apart by every byte.
    let longest = "x".repeat(Inline::MAX - 2) + "ab";
    let last = Inline::new(&longest).expect("held");
    assert_eq!(last.as_bytes(), longest.as_bytes());
    assert!(Inline::new(&(longest + "c")).is_none());
}

#[test]
fn two_layers_per_destination_keep_apart_what_a_thread_remembers() {
    let first = Budgets::per_origin(two_each());
    let second = Budgets::per_origin(two_each());
    let now = Instant::now();
    let head = to("http://a.example/");
    assert!(second.withdraw(&to("http://b.example/"), now));
    assert_eq!(drain(&first, &head, now), 2);
    // The thread last found `first`'s budget for this destination: `second` has its own.
    assert_eq!(drain(&second, &head, now), 2);
    assert_eq!(drain(&first, &head, now), 0);
}

/// Budgets that keep one destination, `a`, whose retries this thread spent at the
/// returned time; and a request to `b`.
fn a_spent_of_one_kept() -> (Budgets, Instant, request::Parts, request::Parts) {
    let keyed = Keyed::new(two_each(), None, PerKey::with_limit(1));
    let budgets = Budgets::Keyed(Arc::new(keyed));
    let start = Instant::now();
    let (a, b) = (to("http://a.example/"), to("http://b.example/"));
    assert_eq!(drain(&budgets, &a, start), 2);
    (budgets, start, a, b)
}

#[test]
fn a_destination_remembered_by_a_thread_is_looked_up_again_once_others_come() {
    let (budgets, start, a, b) = a_spent_of_one_kept();
    // A window later `a` is idle, and `b` takes its place.
    let later = start + Duration::from_secs(3);
    assert_eq!(drain(&budgets, &b, later), 2);
    // `a` is no longer kept, and `b` is in use: `a` pays from the overflow budget now,
    // not from the budget the thread remembered for it.
    assert_eq!(drain(&budgets, &a, later), 2);
    assert_eq!(drain(&budgets, &to("http://c.example/"), later), 0);
}

#[test]
fn a_destination_another_thread_remembers_is_not_forgotten() {
    // This thread pays `a`'s retries, and remembers its budget.
    let (budgets, start, a, b) = a_spent_of_one_kept();
    // A window later `a` is idle, but this thread could still pay from its budget: another
    // thread's `b` pays from the overflow budget instead of taking `a`'s place.
    let later = start + Duration::from_secs(3);
    std::thread::scope(|scope| {
        scope.spawn(|| assert_eq!(drain(&budgets, &b, later), 2));
    });
    // A third thread finds `a` still kept, and the overflow budget spent by `b`.
    std::thread::scope(|scope| {
        scope.spawn(|| assert_eq!(drain(&budgets, &to("http://c.example/"), later), 0));
    });
    // `a` still has its one budget, its reserve back after the window.
    assert_eq!(drain(&budgets, &a, later), 2);
    assert_eq!(drain(&budgets, &a, later), 0);
    // `a` is in use, and `b` spent the overflow budget.
    assert_eq!(drain(&budgets, &to("http://c.example/"), later), 0);
}

#[test]
fn destinations_hash_alike_in_any_case_and_apart_otherwise() {
    let origin = |text: &str| {
        let head = to(text);
        Destination::origin(head.uri.scheme(), head.uri.authority().unwrap().clone())
    };
    assert_eq!(
        origin("http://A.Example:80/"),
        origin("http://a.example:80/")
    );
    assert_eq!(
        origin("http://A.Example:80/").hash,
        origin("http://a.example:80/").hash
    );
    let names = [
        "http://a/",
        "http://b/",
        "https://a/",
        "ftp://a/",
        "http://abcdefg/",
        "http://abcdefgh/",
        "http://abcdefghi/",
        "http://abcdefgh.example/",
        "http://abcdefgh.example:1/",
        "http://abcdefgh.example:2/",
    ];
    let hashes: std::collections::HashSet<u64> = names.iter().map(|n| origin(n).hash).collect();
    assert_eq!(hashes.len(), names.len());
    let named = Destination::named("a".into());
    assert_ne!(named.hash, origin("http://a/").hash);
    assert_ne!(named.hash, Destination::named("b".into()).hash);
}

#[test]
fn destinations_with_the_same_hash_are_still_told_apart() {
    let origin = |scheme: Option<Scheme>, authority: &str| Destination {
        hash: 7,
        name: Name::Origin(scheme, authority.parse().unwrap()),
    };
    let http = || Some(Scheme::HTTP);
    assert_eq!(origin(http(), "a.example"), origin(http(), "A.EXAMPLE"));
    assert_ne!(origin(http(), "a.example"), origin(http(), "b.example"));
    assert_ne!(
        origin(http(), "a.example"),
        origin(Some(Scheme::HTTPS), "a.example")
    );
    let named = Destination {
        hash: 7,
        name: Name::Named("a.example".into()),
    };
    assert_ne!(named, origin(http(), "a.example"));
    let mut other = origin(http(), "a.example");
    other.hash = 8;
    assert_ne!(other, origin(http(), "a.example"));
}

#[test]
fn a_destination_s_first_attempts_pay_for_its_own_retries() {
    // No reserve: only deposits pay. Five first attempts make one retry.
    let budgets = Budgets::per_origin(Budget::new(Duration::from_secs(10), 0, 0.2).unwrap());
    let now = Instant::now();
    let (a, b) = (to("http://a.example/"), to("http://b.example/"));
    for _ in 0..5 {
        budgets.deposit(&a, now);
    }
    assert_eq!(drain(&budgets, &b, now), 0);
    assert_eq!(drain(&budgets, &a, now), 1);
}

#[test]
fn the_same_host_over_another_scheme_is_another_destination_right_after() {
    let budgets = Budgets::per_origin(two_each());
    let now = Instant::now();
    assert_eq!(drain(&budgets, &to("http://a.example/"), now), 2);
    assert_eq!(drain(&budgets, &to("https://a.example/"), now), 2);
}

#[test]
fn a_destination_whose_throttle_remembers_failures_is_not_forgotten() {
    let template = two_each().throttle(2, 0.5).unwrap();
    let keyed = Keyed::new(template, None, PerKey::with_limit(1));
    let budgets = Budgets::Keyed(Arc::new(keyed));
    let start = Instant::now();
    let (a, b) = (to("http://a.example/"), to("http://b.example/"));
    // `a` fails: its throttle of 2 tokens is down to 1, no more than half.
    assert!(!budgets.spend(&a, start, Spend::Retry));
    // A window later nothing `a` paid counts, but a new budget would forget its failure:
    // `a` is kept, and `b` pays from the overflow budget.
    let later = start + Duration::from_secs(3);
    assert_eq!(drain(&budgets, &b, later), 2);
    assert_eq!(drain(&budgets, &to("http://c.example/"), later), 0);
    assert!(!budgets.spend(&a, later, Spend::Retry));
}

#[test]
fn a_destination_paying_from_the_overflow_budget_takes_the_first_place_that_frees() {
    let (budgets, start, a, b) = a_spent_of_one_kept();
    let Budgets::Keyed(keyed) = &budgets else {
        unreachable!()
    };
    let kept = |head: &request::Parts| {
        let authority = head.uri.authority().unwrap().clone();
        keyed
            .accounts
            .contains(&Destination::origin(head.uri.scheme(), authority))
    };
    // `a` is in use: `b` pays from the overflow budget, which this thread does not
    // remember.
    assert_eq!(drain(&budgets, &b, start), 2);
    assert!(kept(&a) && !kept(&b));
    // A window later `a` is idle: `b`'s next request takes its place.
    let later = start + Duration::from_secs(3);
    assert_eq!(drain(&budgets, &b, later), 2);
    assert!(kept(&b) && !kept(&a));
}
