use std::time::Duration;

use super::*;

fn to(uri: &str) -> request::Parts {
    http::Request::get(uri).body(()).unwrap().into_parts().0
}

/// A budget of 2 retries per destination: no deposits count, 1 retry/s for 2 s.
fn two_each() -> Budget {
    Budget::new(Duration::from_secs(2), 1, 0.0).unwrap()
}

fn drain(budgets: &Budgets, head: &request::Parts, now: Instant) -> u32 {
    let mut paid = 0;
    while budgets.withdraw(head, now) {
        paid += 1;
    }
    paid
}

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
    let template = two_each();
    let keyed = Keyed {
        overflow: template.fresh(),
        template,
        key: None,
        accounts: PerKey::with_limit(2),
    };
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
