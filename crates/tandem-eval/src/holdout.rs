//! Validation data carved from a training part the way its test part was cut, so that tuning
//! chooses settings without ever reading the test part (SPEC §10: "never tune on test data").
//! The carving is the splitter's own ([`SplitSpec`]), applied to the training rows:
//!
//! - `last:N` — per user, rows in time order (ties by raw item id), the last `N` held out;
//!   users with `N` rows or fewer stay wholly in training (the temporal and leave-one-out
//!   splits' rule).
//! - `share:S` — per user, `floor(S × rows)` random rows held out (the ratio split's rule).
//! - `days:D` — the last `D` calendar days of the training rows (a time-window split's rule).

use std::str::FromStr;

use tandem_data::{IdMap, Interactions, SplitSpec};

/// How validation rows are taken from the training rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Holdout {
    /// Each user's last `n` rows in time (users with `n` rows or fewer: none).
    Last(usize),
    /// A random `floor(share × rows)` of each user's rows.
    Share(f64),
    /// The last `d` days.
    Days(u32),
}

impl FromStr for Holdout {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let usage = || {
            format!(
                "`{s}`: a holdout is last:N (each user's last N rows), share:S (a random share of each user's rows, 0 < S < 1) or days:D (the last D days)"
            )
        };
        let (how, value) = s.split_once(':').ok_or_else(usage)?;
        match how {
            "last" => value.parse::<usize>().ok().filter(|&n| n >= 1).map(Holdout::Last).ok_or_else(usage),
            "share" => value.parse::<f64>().ok().filter(|&v| v > 0.0 && v < 1.0).map(Holdout::Share).ok_or_else(usage),
            "days" => value.parse::<u32>().ok().filter(|&d| d >= 1).map(Holdout::Days).ok_or_else(usage),
            _ => Err(usage()),
        }
    }
}

impl std::fmt::Display for Holdout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holdout::Last(n) => write!(f, "last:{n}"),
            Holdout::Share(s) => write!(f, "share:{s}"),
            Holdout::Days(d) => write!(f, "days:{d}"),
        }
    }
}

impl Holdout {
    /// The holdout that cuts training rows as `split` cut the test part (`None`: a split that
    /// has no per-row counterpart — fixed random counts, a global fraction).
    pub fn mirroring(split: &SplitSpec) -> Option<Holdout> {
        match *split {
            SplitSpec::LastN { test, .. } => Some(Holdout::Last(test)),
            SplitSpec::LeaveOneOut => Some(Holdout::Last(1)),
            SplitSpec::Ratio { test, .. } => Some(Holdout::Share(test)),
            SplitSpec::TimeWindow { days, .. } => Some(Holdout::Days(days)),
            SplitSpec::Fixed { .. } | SplitSpec::GlobalFraction { .. } => None,
        }
    }

    /// Whether it holds out what users do next (their last rows or days), not a random share:
    /// only then can recency weighting be judged on it.
    pub fn follows_time(&self) -> bool {
        self.spec(0).follows_time()
    }

    /// The split that carves it (`seed`: a share's draw).
    pub fn spec(&self, seed: u64) -> SplitSpec {
        match *self {
            Holdout::Last(n) => SplitSpec::LastN { test: n, valid: 0, min_train: 1 },
            Holdout::Share(share) => SplitSpec::Ratio { test: share, valid: 0.0, seed },
            Holdout::Days(days) => SplitSpec::TimeWindow { days, valid_days: 0 },
        }
    }
}

/// Splits `train` into (rows to fit on, validation rows) by `holdout`.
pub fn carve(
    train: &Interactions,
    n_users: usize,
    items: &IdMap,
    holdout: Holdout,
    seed: u64,
) -> Result<(Interactions, Interactions), String> {
    let split = holdout.spec(seed).split(train, n_users, items).map_err(|e| e.to_string())?;
    Ok((split.train, split.test))
}

/// `folds` carvings of `train` by `holdout`, to validate each setting on several held-out sets
/// and average: a share draws each fold anew (seeds `seed`, `seed + 1`, …) from all of
/// `train`; `last` and `days` are rolling origins — fold k is carved from the rows fold k − 1
/// fitted on, so each fold validates on the rows (or days) just before the previous fold's.
pub fn carve_folds(
    train: &Interactions,
    n_users: usize,
    items: &IdMap,
    holdout: Holdout,
    seed: u64,
    folds: usize,
) -> Result<Vec<(Interactions, Interactions)>, String> {
    let mut out: Vec<(Interactions, Interactions)> = Vec::with_capacity(folds);
    for k in 0..folds {
        let fold = match holdout {
            Holdout::Share(_) => carve(train, n_users, items, holdout, seed.wrapping_add(k as u64))?,
            _ => carve(out.last().map_or(train, |f| &f.0), n_users, items, holdout, seed)?,
        };
        out.push(fold);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_data::Interaction;

    fn log(items: &mut IdMap, rows: &[(u32, &str, i64)]) -> Interactions {
        let mut l = Interactions::new();
        for &(user, item, time) in rows {
            l.push(Interaction { user, item: items.get_or_insert(item), time, weight: 1.0 });
        }
        l
    }

    #[test]
    fn last_n_holds_out_each_users_latest_rows_and_keeps_short_users_whole() {
        // User 0: 4 rows (two at time 3: the raw id breaks the tie, "10" after "9"); user 1: 2.
        let mut items = IdMap::new();
        let train = log(&mut items, &[(0, "10", 3), (0, "1", 1), (0, "9", 3), (0, "2", 2), (1, "4", 1), (1, "6", 2)]);
        let (fit, valid) = carve(&train, 2, &items, Holdout::Last(2), 0).unwrap();
        let pairs =
            |l: &Interactions| -> Vec<(u32, String)> { l.iter().map(|r| (r.user, items.raw(r.item).into())).collect() };
        let mut v = pairs(&valid);
        v.sort();
        assert_eq!(v, vec![(0, "10".into()), (0, "9".into())]);
        assert_eq!(fit.len(), 4);
    }

    #[test]
    fn share_holds_out_the_floor_of_each_users_share_seeded() {
        let mut items = IdMap::new();
        let names: Vec<String> = (0..25).map(|k| k.to_string()).collect();
        let rows: Vec<(u32, &str, i64)> = (0..25).map(|k| (k as u32 / 10, names[k].as_str(), k as i64)).collect();
        let train = log(&mut items, &rows);
        let (fit, valid) = carve(&train, 3, &items, Holdout::Share(0.2), 7).unwrap();
        // floor(0.2 × 10) = 2 for users 0 and 1, floor(0.2 × 5) = 1 for user 2.
        let per_user = |u: u32| valid.iter().filter(|r| r.user == u).count();
        assert_eq!((per_user(0), per_user(1), per_user(2)), (2, 2, 1));
        assert_eq!(fit.len() + valid.len(), 25);
        assert_eq!(carve(&train, 3, &items, Holdout::Share(0.2), 7).unwrap().1, valid, "seeded");
    }

    #[test]
    fn folds_roll_back_in_time_or_draw_anew() {
        let mut items = IdMap::new();
        // User 0: four rows at times 1..=4; user 1: one row (kept whole).
        let train = log(&mut items, &[(0, "a", 1), (0, "b", 2), (0, "c", 3), (0, "d", 4), (1, "a", 1)]);
        let folds = carve_folds(&train, 2, &items, Holdout::Last(1), 0, 3).unwrap();
        let held: Vec<Vec<&str>> = folds.iter().map(|f| f.1.iter().map(|r| items.raw(r.item)).collect()).collect();
        assert_eq!(held, vec![vec!["d"], vec!["c"], vec!["b"]]);
        assert_eq!(folds.iter().map(|f| f.0.len()).collect::<Vec<_>>(), vec![4, 3, 2]);
        let names: Vec<String> = (0..20).map(|k| k.to_string()).collect();
        let rows: Vec<(u32, &str, i64)> = (0..20).map(|k| (0, names[k].as_str(), k as i64)).collect();
        let train = log(&mut items, &rows);
        let folds = carve_folds(&train, 1, &items, Holdout::Share(0.25), 5, 2).unwrap();
        assert!(folds.iter().all(|f| f.0.len() == 15 && f.1.len() == 5), "each fold draws from all rows");
        assert_ne!(folds[0].1, folds[1].1, "a fold's own seed");
        assert_eq!(folds[0], carve(&train, 1, &items, Holdout::Share(0.25), 5).unwrap());
    }

    #[test]
    fn holdouts_parse_and_bad_ones_say_what_is_expected() {
        assert_eq!("last:5".parse::<Holdout>(), Ok(Holdout::Last(5)));
        assert_eq!("share:0.1".parse::<Holdout>(), Ok(Holdout::Share(0.1)));
        assert_eq!("days:7".parse::<Holdout>(), Ok(Holdout::Days(7)));
        for bad in ["last:0", "share:1", "share:-0.1", "first:3", "5", "days:0"] {
            let e = bad.parse::<Holdout>().unwrap_err();
            assert!(e.contains(bad) && e.contains("last:N"), "{e}");
        }
    }
}
