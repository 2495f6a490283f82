//! Validation data carved from a training part the way its test part was cut, so that tuning
//! chooses settings without ever reading the test part (SPEC §10: "never tune on test data").
//!
//! - `last:N` — per user, rows sorted by (time, item), the last `N` held out; users with `N`
//!   rows or fewer stay wholly in training (the temporal and leave-one-out splits' rule).
//! - `share:S` — per user, `floor(S × rows)` random rows held out (the ratio split's rule),
//!   seeded.

use std::str::FromStr;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tandem_data::Interactions;

/// How validation rows are taken from each user's training rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Holdout {
    /// The user's last `n` rows in time (users with `n` rows or fewer: none).
    Last(usize),
    /// A random `floor(share × rows)` of the user's rows.
    Share(f64),
}

impl FromStr for Holdout {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let usage = || format!("`{s}`: a holdout is last:N (the last N rows per user) or share:S (0 < S < 1)");
        let (how, value) = s.split_once(':').ok_or_else(usage)?;
        match how {
            "last" => value.parse::<usize>().ok().filter(|&n| n >= 1).map(Holdout::Last).ok_or_else(usage),
            "share" => value.parse::<f64>().ok().filter(|&v| v > 0.0 && v < 1.0).map(Holdout::Share).ok_or_else(usage),
            _ => Err(usage()),
        }
    }
}

impl std::fmt::Display for Holdout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holdout::Last(n) => write!(f, "last:{n}"),
            Holdout::Share(s) => write!(f, "share:{s}"),
        }
    }
}

/// Splits `train` into (rows to fit on, validation rows) by `holdout`; `seed` drives `share`.
pub fn carve(train: &Interactions, n_users: usize, holdout: Holdout, seed: u64) -> (Interactions, Interactions) {
    let mut held = vec![false; train.len()];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for mut rows in train.rows_by_user(n_users) {
        match holdout {
            Holdout::Last(n) => {
                if rows.len() <= n {
                    continue;
                }
                rows.sort_by_key(|&r| (train.time[r], train.item[r]));
                rows[rows.len() - n..].iter().for_each(|&r| held[r] = true);
            }
            Holdout::Share(share) => {
                let n = (share * rows.len() as f64).floor() as usize;
                rows.shuffle(&mut rng);
                rows[..n].iter().for_each(|&r| held[r] = true);
            }
        }
    }
    let (fit, valid): (Vec<usize>, Vec<usize>) = (0..train.len()).partition(|&r| !held[r]);
    (train.select(&fit), train.select(&valid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_data::Interaction;

    fn log(rows: &[(u32, u32, i64)]) -> Interactions {
        let mut l = Interactions::new();
        for &(user, item, time) in rows {
            l.push(Interaction { user, item, time, weight: 1.0 });
        }
        l
    }

    #[test]
    fn last_n_holds_out_each_users_latest_rows_and_keeps_short_users_whole() {
        // User 0: 4 rows (two at time 3: the item breaks the tie); user 1: 2 rows.
        let train = log(&[(0, 5, 3), (0, 1, 1), (0, 2, 3), (0, 9, 2), (1, 4, 1), (1, 6, 2)]);
        let (fit, valid) = carve(&train, 2, Holdout::Last(2), 0);
        let pairs = |l: &Interactions| -> Vec<(u32, u32)> { l.iter().map(|r| (r.user, r.item)).collect() };
        assert_eq!(pairs(&valid), vec![(0, 5), (0, 2)]);
        assert_eq!(pairs(&fit), vec![(0, 1), (0, 9), (1, 4), (1, 6)]);
    }

    #[test]
    fn share_holds_out_the_floor_of_each_users_share_seeded() {
        let rows: Vec<(u32, u32, i64)> = (0..25).map(|k| (k / 10, k, k as i64)).collect();
        let train = log(&rows);
        let (fit, valid) = carve(&train, 3, Holdout::Share(0.2), 7);
        // floor(0.2 × 10) = 2 for users 0 and 1, floor(0.2 × 5) = 1 for user 2.
        let per_user = |u: u32| valid.iter().filter(|r| r.user == u).count();
        assert_eq!((per_user(0), per_user(1), per_user(2)), (2, 2, 1));
        assert_eq!(fit.len() + valid.len(), 25);
        assert_eq!(carve(&train, 3, Holdout::Share(0.2), 7).1, valid, "seeded");
    }

    #[test]
    fn holdouts_parse_and_bad_ones_say_what_is_expected() {
        assert_eq!("last:5".parse::<Holdout>(), Ok(Holdout::Last(5)));
        assert_eq!("share:0.1".parse::<Holdout>(), Ok(Holdout::Share(0.1)));
        for bad in ["last:0", "share:1", "share:-0.1", "first:3", "5"] {
            let e = bad.parse::<Holdout>().unwrap_err();
            assert!(e.contains(bad) && e.contains("last:N"), "{e}");
        }
    }
}
