use super::*;
use crate::Interaction;
use rand::Rng;

/// A random log: 50 users with 0..40 rows each over 30 items, times within 60 days.
fn log() -> (Interactions, IdMap, usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut items = IdMap::new();
    for i in 0..30 {
        items.get_or_insert(&i.to_string());
    }
    let mut log = Interactions::new();
    for u in 0..50u32 {
        for _ in 0..rng.random_range(0..40) {
            log.push(Interaction {
                user: u,
                item: rng.random_range(0..30),
                time: 1_600_000_000 + rng.random_range(0..60 * DAY),
                weight: 1.0,
            });
        }
    }
    (log, items, 50)
}

fn rows_of(x: &Interactions) -> Vec<(u32, u32, i64)> {
    let mut v: Vec<_> = x.iter().map(|r| (r.user, r.item, r.time)).collect();
    v.sort_unstable();
    v
}

fn assert_partition(log: &Interactions, s: &Split) {
    let mut all = rows_of(&s.train);
    all.extend(rows_of(&s.valid));
    all.extend(rows_of(&s.test));
    all.sort_unstable();
    assert_eq!(all, rows_of(log), "train + valid + test must be exactly the log");
    assert_eq!(s.report.train_rows + s.report.valid_rows + s.report.test_rows, log.len());
}

fn per_user_counts(x: &Interactions, n: usize) -> Vec<usize> {
    x.rows_by_user(n).iter().map(Vec::len).collect()
}

#[test]
fn last_n_holds_out_the_latest_rows_and_keeps_small_users_in_train() {
    let (log, items, n) = log();
    let s = SplitSpec::LastN { test: 5, valid: 2, min_train: 1 }.split(&log, n, &items).unwrap();
    assert_partition(&log, &s);
    let total = per_user_counts(&log, n);
    let test = per_user_counts(&s.test, n);
    let valid = per_user_counts(&s.valid, n);
    let mut kept = 0;
    for u in 0..n {
        if total[u] >= 8 {
            assert_eq!((test[u], valid[u]), (5, 2), "user {u}");
        } else {
            assert_eq!((test[u], valid[u]), (0, 0), "user {u}");
            kept += (total[u] > 0) as usize;
        }
    }
    assert_eq!(s.report.users_kept_in_train, kept);
    assert!(kept > 0, "the fixture must exercise small users");
    // No leakage: per user, train <= valid <= test in time.
    let by = |x: &Interactions| x.rows_by_user(n);
    let (tr, va, te) = (by(&s.train), by(&s.valid), by(&s.test));
    for u in 0..n {
        let max_t = |rows: &[usize], x: &Interactions| rows.iter().map(|&r| x.time[r]).max();
        let min_t = |rows: &[usize], x: &Interactions| rows.iter().map(|&r| x.time[r]).min();
        if let (Some(a), Some(b)) = (max_t(&tr[u], &s.train), min_t(&va[u], &s.valid)) {
            assert!(a <= b);
        }
        if let (Some(a), Some(b)) = (max_t(&va[u], &s.valid), min_t(&te[u], &s.test)) {
            assert!(a <= b);
        }
    }
}

#[test]
fn last_n_breaks_time_ties_by_numeric_item_id() {
    let mut items = IdMap::new();
    let (i10, i9) = (items.get_or_insert("10"), items.get_or_insert("9"));
    let mut log = Interactions::new();
    for item in [i10, i9] {
        log.push(Interaction { user: 0, item, time: 5, weight: 1.0 });
    }
    log.push(Interaction { user: 0, item: items.get_or_insert("1"), time: 1, weight: 1.0 });
    let s = SplitSpec::LastN { test: 1, valid: 0, min_train: 1 }.split(&log, 1, &items).unwrap();
    assert_eq!(items.raw(s.test.item[0]), "10", "9 < 10 numerically, so 10 is last");
}

#[test]
fn leave_one_out_holds_one_each() {
    let (log, items, n) = log();
    let s = SplitSpec::LeaveOneOut.split(&log, n, &items).unwrap();
    assert_partition(&log, &s);
    assert!(per_user_counts(&s.test, n).iter().all(|&c| c <= 1));
    assert_eq!(s.test.len(), s.valid.len());
}

#[test]
fn ratio_is_seeded_and_takes_the_floor() {
    let (log, items, n) = log();
    let spec = SplitSpec::Ratio { test: 0.1, valid: 0.0, seed: 42 };
    let a = spec.split(&log, n, &items).unwrap();
    let b = spec.split(&log, n, &items).unwrap();
    assert_eq!(rows_of(&a.test), rows_of(&b.test), "same seed, same split");
    let c = SplitSpec::Ratio { test: 0.1, valid: 0.0, seed: 43 }.split(&log, n, &items).unwrap();
    assert_ne!(rows_of(&a.test), rows_of(&c.test), "another seed, another split");
    assert_partition(&log, &a);
    let total = per_user_counts(&log, n);
    let test = per_user_counts(&a.test, n);
    for u in 0..n {
        assert_eq!(test[u], total[u] / 10, "user {u}: floor(0.1 n)");
    }
    assert_eq!(a.report.users_kept_in_train, total.iter().filter(|&&t| t > 0 && t < 10).count());
}

#[test]
fn fixed_counts() {
    let (log, items, n) = log();
    let s = SplitSpec::Fixed { test: 3, valid: 1, min_train: 2, seed: 1 }.split(&log, n, &items).unwrap();
    assert_partition(&log, &s);
    let total = per_user_counts(&log, n);
    for (u, &t) in per_user_counts(&s.test, n).iter().enumerate() {
        assert_eq!(t, if total[u] >= 6 { 3 } else { 0 });
    }
}

#[test]
fn time_window_cuts_by_calendar_day() {
    let (log, items, n) = log();
    let s = SplitSpec::TimeWindow { days: 7, valid_days: 7 }.split(&log, n, &items).unwrap();
    assert_partition(&log, &s);
    let last_day = log.max_time().unwrap().div_euclid(DAY);
    assert!(s.test.time.iter().all(|t| t.div_euclid(DAY) > last_day - 7));
    assert!(s.valid.time.iter().all(|t| (last_day - 14 + 1..=last_day - 7).contains(&t.div_euclid(DAY))));
    assert!(s.train.time.iter().all(|t| t.div_euclid(DAY) <= last_day - 14));
    assert!(!s.test.is_empty() && !s.valid.is_empty());
}

#[test]
fn global_fraction_orders_parts_in_time() {
    let (log, items, n) = log();
    let s = SplitSpec::GlobalFraction { valid: 0.1, test: 0.1 }.split(&log, n, &items).unwrap();
    assert_partition(&log, &s);
    let max = |x: &Interactions| x.time.iter().copied().max().unwrap();
    let min = |x: &Interactions| x.time.iter().copied().min().unwrap();
    assert!(max(&s.train) <= min(&s.valid) && max(&s.valid) <= min(&s.test));
    assert_eq!(s.test.len(), (log.len() as f64 * 0.1).round() as usize);
}

#[test]
fn bad_parameters_are_named() {
    let (log, items, n) = log();
    let e = SplitSpec::Ratio { test: 1.5, valid: 0.0, seed: 1 }.split(&log, n, &items).unwrap_err();
    assert!(e.to_string().contains("split.test"), "{e}");
    let e = SplitSpec::LastN { test: 0, valid: 0, min_train: 1 }.split(&log, n, &items).unwrap_err();
    assert!(e.to_string().contains("split.test"), "{e}");
}

/// A user with rows a@1, b@2, c@3, c@3 (the same purchase logged twice) and 2 more users.
fn with_copies() -> (Interactions, IdMap, usize) {
    let mut items = IdMap::new();
    for i in ["a", "b", "c", "d"] {
        items.get_or_insert(i);
    }
    let mut log = Interactions::new();
    for (user, item, time) in [(0, 0, 1), (0, 1, 2), (0, 2, 3), (0, 2, 3), (1, 3, 5), (1, 3, 5), (1, 0, 5), (2, 1, 9)] {
        log.push(Interaction { user, item, time, weight: 1.0 });
    }
    (log, items, 3)
}

fn in_one_part(s: &Split, user: u32, item: u32, time: i64) -> bool {
    let count = |x: &Interactions| x.iter().filter(|r| (r.user, r.item, r.time) == (user, item, time)).count();
    let counts = [count(&s.train), count(&s.valid), count(&s.test)];
    counts.iter().filter(|&&c| c > 0).count() == 1
}

#[test]
fn identical_rows_never_straddle_a_cut() {
    let (log, items, n) = with_copies();
    let s = SplitSpec::LeaveOneOut.split(&log, n, &items).unwrap();
    assert_partition(&log, &s);
    // Both copies of c@3 are the test row; b the valid one; a stays in train.
    assert_eq!(rows_of(&s.test), vec![(0, 2, 3), (0, 2, 3)]);
    assert_eq!(rows_of(&s.valid), vec![(0, 1, 2)]);
    // User 1 has two distinct rows (d@5 twice counts once): too few for leave-one-out.
    assert_eq!(s.report.users_kept_in_train, 2);
    let specs = [
        SplitSpec::LastN { test: 1, valid: 0, min_train: 1 },
        SplitSpec::Ratio { test: 0.5, valid: 0.0, seed: 3 },
        SplitSpec::Fixed { test: 1, valid: 0, min_train: 1, seed: 5 },
        SplitSpec::GlobalFraction { valid: 0.25, test: 0.25 },
        SplitSpec::GlobalFraction { valid: 0.0, test: 0.4 },
    ];
    for spec in specs {
        for seed_shift in 0..8u64 {
            let spec = match spec.clone() {
                SplitSpec::Ratio { test, valid, seed } => SplitSpec::Ratio { test, valid, seed: seed + seed_shift },
                SplitSpec::Fixed { test, valid, min_train, seed } => {
                    SplitSpec::Fixed { test, valid, min_train, seed: seed + seed_shift }
                }
                other => other,
            };
            let s = spec.split(&log, n, &items).unwrap();
            assert_partition(&log, &s);
            assert!(in_one_part(&s, 0, 2, 3) && in_one_part(&s, 1, 3, 5), "{spec:?}");
        }
    }
}

#[test]
fn a_basket_at_one_instant_is_cut_in_item_order() {
    // User 1 bought d and a at time 5 (and d twice): last-1 takes d, the larger raw id.
    let (log, items, n) = with_copies();
    let s = SplitSpec::LastN { test: 1, valid: 0, min_train: 1 }.split(&log, n, &items).unwrap();
    let test: Vec<_> = rows_of(&s.test).into_iter().filter(|r| r.0 == 1).collect();
    assert_eq!(test, vec![(1, 3, 5), (1, 3, 5)]);
}
