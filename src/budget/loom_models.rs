use super::*;

/// A budget of one retry per deposit and no reserve, with buckets of 1 s, and the
/// instant `n` buckets after its start.
fn budget() -> (Budget, impl Fn(u64) -> Instant + Copy + Send + 'static) {
    let budget = Budget::new(Duration::from_secs(10), 0, 1.0).unwrap();
    let start = budget.inner.start;
    (budget, move |n| start + Duration::from_secs(n))
}

#[test]
fn loom_two_withdrawals_as_the_window_moves_pay_once() {
    loom::model(|| {
        let (budget, at) = budget();
        budget.deposit_at(at(0));
        let other = budget.clone();
        let t = loom::thread::spawn(move || other.withdraw_at(at(1)) as u32);
        let mine = budget.withdraw_at(at(1)) as u32;
        let theirs = t.join().unwrap();
        // Later in the same window nothing is left.
        let later = budget.withdraw_at(at(5)) as u32;
        assert_eq!(mine + theirs + later, 1);
    });
}

#[test]
fn loom_a_deposit_as_the_window_moves_pays_once_and_expires() {
    loom::model(|| {
        let (budget, at) = budget();
        let other = budget.clone();
        let t = loom::thread::spawn(move || other.deposit_at(at(3)));
        let mine = budget.withdraw_at(at(3)) as u32;
        t.join().unwrap();
        let granted = mine + withdraw_all_at(&budget, at(4));
        assert_eq!(granted, 1);
        // Ten buckets later the deposit has expired.
        assert!(!budget.withdraw_at(at(14)));
    });
}

#[test]
fn loom_withdrawals_across_bucket_boundaries_never_overdraw() {
    loom::model(|| {
        let (budget, at) = budget();
        budget.deposit_at(at(0));
        budget.deposit_at(at(0));
        let threads: Vec<_> = (1..=2)
            .map(|n| {
                let budget = budget.clone();
                loom::thread::spawn(move || budget.withdraw_at(at(n)) as u32)
            })
            .collect();
        let mine = budget.withdraw_at(at(0)) as u32;
        let theirs: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let granted = mine + theirs + withdraw_all_at(&budget, at(5));
        assert_eq!(granted, 2);
    });
}

#[test]
fn loom_an_old_deposit_expires_while_a_new_one_arrives() {
    loom::model(|| {
        let (budget, at) = budget();
        // Expires when bucket 10 begins.
        budget.deposit_at(at(0));
        let other = budget.clone();
        let t = loom::thread::spawn(move || other.deposit_at(at(12)));
        let mine = budget.withdraw_at(at(12)) as u32;
        t.join().unwrap();
        let granted = mine + withdraw_all_at(&budget, at(13));
        assert_eq!(granted, 1);
    });
}

#[test]
fn loom_a_deposit_that_takes_a_bucket_over_expires_what_it_held() {
    loom::model(|| {
        let (budget, at) = budget();
        // Bucket 0's deposit expires when bucket 10 begins; bucket 10 uses the same
        // word, and its deposit may take it over before the window's mover empties it.
        budget.deposit_at(at(0));
        let other = budget.clone();
        let t = loom::thread::spawn(move || other.withdraw_at(at(10)) as u32);
        budget.deposit_at(at(10));
        let theirs = t.join().unwrap();
        let granted = theirs + withdraw_all_at(&budget, at(11));
        assert_eq!(granted, 1);
    });
}

/// A deposit at bucket `old` on another thread and one at bucket `new` on this one, in
/// any interleaving; returns the budget after both.
fn racing_deposits(old: u64, new: u64) -> (Budget, impl Fn(u64) -> Instant) {
    let (budget, at) = budget();
    let other = budget.clone();
    let t = loom::thread::spawn(move || other.deposit_at(at(old)));
    budget.deposit_at(at(new));
    t.join().unwrap();
    (budget, at)
}

#[test]
fn loom_a_deposit_for_a_bucket_that_moved_on_is_not_counted() {
    loom::model(|| {
        // Bucket 2's deposit may arrive after bucket 12's took the word over.
        let (budget, at) = racing_deposits(2, 12);
        assert_eq!(withdraw_all_at(&budget, at(12)), 1);
        // Bucket 12's deposit and withdrawal expire together: nothing is left to pay.
        assert!(!budget.withdraw_at(at(22)));
    });
}

#[test]
fn loom_a_deposit_recorded_after_its_bucket_left_the_window_expires_at_once() {
    loom::model(|| {
        // The window may move to bucket 13 between bucket 2's deposit reading the clock
        // and recording: what it records must not stay in the balance.
        let (budget, at) = racing_deposits(2, 13);
        assert_eq!(withdraw_all_at(&budget, at(13)), 1);
    });
}
