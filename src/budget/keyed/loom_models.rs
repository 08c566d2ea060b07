//! Model checks of the budgets per destination: a destination's budget made, found and
//! forgotten while other threads pay from it. Run with `--cfg retryable_http_loom`.

use std::time::Duration;

use super::testing::{drain, to, two_each};
use super::*;

/// Budgets per origin of 2 retries each (no deposits count, 1 retry/s for 2 s), keeping
/// at most `limit` destinations; and the instant `n` seconds on.
fn budgets(limit: usize) -> (Budgets, impl Fn(u64) -> Instant + Copy + Send + 'static) {
    let keyed = Keyed::new(two_each(), None, PerKey::with_limit(limit));
    let start = Instant::now();
    (Budgets::Keyed(Arc::new(keyed)), move |n| {
        start + Duration::from_secs(n)
    })
}

#[test]
fn loom_a_destination_made_by_two_threads_at_once_has_one_budget() {
    loom::model(|| {
        let (budgets, at) = budgets(4);
        let other = budgets.clone();
        let t = loom::thread::spawn(move || drain(&other, &to("http://a.example/"), at(3)));
        let mine = drain(&budgets, &to("http://a.example/"), at(3));
        let theirs = t.join().unwrap();
        assert_eq!(mine + theirs, 2);
        assert_eq!(drain(&budgets, &to("http://a.example/"), at(3)), 0);
    });
}

#[test]
fn loom_a_destination_forgotten_while_a_thread_pays_from_it_is_not_paid_twice() {
    loom::model(|| {
        let (budgets, at) = budgets(1);
        let Budgets::Keyed(keyed) = budgets else {
            unreachable!()
        };
        // The overflow budget pays nothing here: what `a` gets is from budgets of its own.
        let mut keyed = Arc::into_inner(keyed).unwrap();
        keyed.overflow = Budget::new(Duration::from_secs(2), 0, 0.0).unwrap();
        let budgets = Budgets::Keyed(Arc::new(keyed));
        // One thread spends `a`'s retries and remembers its budget; six seconds on it pays
        // them again. Meanwhile another thread needs room for `b`, three seconds on, and
        // sends to `a` too, six seconds on, when `b` is idle: were the first thread's
        // budget forgotten to make room for `b`, `a` would be made anew and have two.
        let (spent, told) = loom::sync::mpsc::channel();
        let other = budgets.clone();
        let t = loom::thread::spawn(move || {
            let a = to("http://a.example/");
            assert_eq!(drain(&other, &a, at(0)), 2);
            spent.send(()).unwrap();
            drain(&other, &a, at(6))
        });
        told.recv().unwrap();
        drain(&budgets, &to("http://b.example/"), at(3));
        let mine = drain(&budgets, &to("http://a.example/"), at(6));
        let theirs = t.join().unwrap();
        // Six seconds on, `a` has one budget of its own, shared by both threads.
        assert_eq!(mine + theirs, 2);
    });
}

#[test]
fn loom_two_new_destinations_racing_for_one_place_each_pay_once() {
    loom::model(|| {
        let (budgets, at) = budgets(1);
        let Budgets::Keyed(keyed) = &budgets else {
            unreachable!()
        };
        // The one place is held by `a`, idle three seconds on.
        keyed.look_up(&to("http://a.example/"), at(0), |_, _| ());
        let other = budgets.clone();
        let t = loom::thread::spawn(move || {
            let c = to("http://c.example/");
            drain(&other, &c, at(3)) + drain(&other, &c, at(3))
        });
        let b = to("http://b.example/");
        let for_b = drain(&budgets, &b, at(3)) + drain(&budgets, &b, at(3));
        let for_c = t.join().unwrap();
        // One takes `a`'s place, the other pays from the overflow budget.
        assert_eq!((for_b, for_c), (2, 2));
    });
}
