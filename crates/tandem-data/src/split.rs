//! Deterministic, seeded train / valid / test splits (SPEC §3).
//!
//! Every split keeps users with too few interactions wholly in train and reports how many.
//! Per-user orders sort by (time, raw item id compared numerically when numeric), so a basket
//! bought at one instant is cut in item-id order. Identical rows (same user, item and time)
//! never straddle a cut: per-user splits count them as one row and move them together.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::idmap::cmp_raw_ids;
use crate::{IdMap, Interactions};

const DAY: i64 = 86_400;

fn one() -> usize {
    1
}
fn seed42() -> u64 {
    42
}
fn tenth() -> f64 {
    0.1
}

/// How to split a log.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SplitSpec {
    /// Per user, sorted by time: the last `test` rows -> test, the `valid` before them -> valid.
    /// Users with fewer than `test + valid + min_train` rows stay wholly in train.
    LastN {
        /// Rows per user for test (>= 1).
        test: usize,
        /// Rows per user for validation (default 0).
        #[serde(default)]
        valid: usize,
        /// Rows a user must keep in train to be split (default 1).
        #[serde(default = "one")]
        min_train: usize,
    },
    /// Leave-one-out: last-N with one test and one validation row per user.
    LeaveOneOut,
    /// Per user, a random `floor(test * n)` rows -> test and `floor(valid * n)` -> valid.
    Ratio {
        /// Fraction of each user's rows for test, in (0, 1).
        test: f64,
        /// Fraction for validation, in [0, 1) (default 0).
        #[serde(default)]
        valid: f64,
        /// Random seed (default 42).
        #[serde(default = "seed42")]
        seed: u64,
    },
    /// Per user, a random `test` rows -> test and `valid` rows -> valid; users with fewer than
    /// `test + valid + min_train` rows stay in train.
    Fixed {
        /// Rows per user for test (>= 1).
        test: usize,
        /// Rows per user for validation (default 0).
        #[serde(default)]
        valid: usize,
        /// Rows a user must keep in train to be split (default 1).
        #[serde(default = "one")]
        min_train: usize,
        /// Random seed (default 42).
        #[serde(default = "seed42")]
        seed: u64,
    },
    /// A global cut by calendar day (UTC): the last `days` days -> test, the `valid_days` before -> valid.
    TimeWindow {
        /// Days in the test window (>= 1).
        days: u32,
        /// Days in the validation window (default 0).
        #[serde(default)]
        valid_days: u32,
    },
    /// Global time order: the last `test` fraction of rows -> test, the `valid` before -> valid
    /// (80/10/10 by default).
    GlobalFraction {
        /// Fraction of rows for validation (default 0.1).
        #[serde(default = "tenth")]
        valid: f64,
        /// Fraction of rows for test (default 0.1).
        #[serde(default = "tenth")]
        test: f64,
    },
}

/// The three parts of a split and what splitting did.
#[derive(Debug, Clone, Default)]
pub struct Split {
    /// Training rows.
    pub train: Interactions,
    /// Validation rows (possibly empty).
    pub valid: Interactions,
    /// Test rows.
    pub test: Interactions,
    /// Counts.
    pub report: SplitReport,
}

/// Counts that describe a split.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SplitReport {
    /// The split, in words.
    pub method: String,
    /// Rows in train.
    pub train_rows: usize,
    /// Rows in valid.
    pub valid_rows: usize,
    /// Rows in test.
    pub test_rows: usize,
    /// Users with at least one test row.
    pub test_users: usize,
    /// Users left wholly in train because they had too few rows (per-user splits only).
    pub users_kept_in_train: usize,
}

impl std::fmt::Display for SplitReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: train {} rows, valid {} rows, test {} rows ({} users); {} users had too few interactions and stay in train",
            self.method, self.train_rows, self.valid_rows, self.test_rows, self.test_users, self.users_kept_in_train
        )
    }
}

fn invalid(what: &str, message: String) -> DataError {
    DataError::InvalidParameter { what: format!("split.{what}"), message }
}

impl SplitSpec {
    /// Checks the parameters' ranges.
    pub fn check(&self) -> Result<()> {
        let frac = |name: &str, v: f64, lo_open: bool| {
            let ok = v.is_finite() && v < 1.0 && if lo_open { v > 0.0 } else { v >= 0.0 };
            if ok {
                Ok(())
            } else {
                Err(invalid(name, format!("{v} is outside {}0, 1)", if lo_open { "(" } else { "[" })))
            }
        };
        match *self {
            SplitSpec::LastN { test: 0, .. } | SplitSpec::Fixed { test: 0, .. } => {
                Err(invalid("test", "must be at least 1".into()))
            }
            SplitSpec::Ratio { test, valid, .. } => {
                frac("test", test, true)?;
                frac("valid", valid, false)?;
                if test + valid >= 1.0 {
                    return Err(invalid("valid", format!("test + valid = {} must be below 1", test + valid)));
                }
                Ok(())
            }
            SplitSpec::TimeWindow { days: 0, .. } => Err(invalid("days", "must be at least 1".into())),
            SplitSpec::GlobalFraction { valid, test } => {
                frac("test", test, true)?;
                frac("valid", valid, false)?;
                if test + valid >= 1.0 {
                    return Err(invalid("valid", format!("test + valid = {} must be below 1", test + valid)));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Whether the held-out rows are later in time than the training rows (per user or
    /// globally), not a random draw: where recency weighting can pay.
    pub fn follows_time(&self) -> bool {
        !matches!(self, SplitSpec::Ratio { .. } | SplitSpec::Fixed { .. })
    }

    /// A one-line description.
    pub fn describe(&self) -> String {
        match self {
            SplitSpec::LastN { test, valid, min_train } => {
                format!("temporal last-N (test {test}, valid {valid}, min train {min_train})")
            }
            SplitSpec::LeaveOneOut => "leave-one-out (test 1, valid 1)".into(),
            SplitSpec::Ratio { test, valid, seed } => {
                format!("random ratio (test {test}, valid {valid}, seed {seed})")
            }
            SplitSpec::Fixed { test, valid, min_train, seed } => {
                format!("random fixed count (test {test}, valid {valid}, min train {min_train}, seed {seed})")
            }
            SplitSpec::TimeWindow { days, valid_days } => {
                format!("time window (last {days} days test, {valid_days} days before valid)")
            }
            SplitSpec::GlobalFraction { valid, test } => {
                format!("global time fraction (valid {valid}, test {test})")
            }
        }
    }

    /// Splits `log`; `items` gives raw ids for the documented tie-break.
    pub fn split(&self, log: &Interactions, n_users: usize, items: &IdMap) -> Result<Split> {
        self.check()?;
        let mut split = match *self {
            SplitSpec::LastN { test, valid, min_train } => per_user(log, n_users, |rows, _| {
                sort_by_time(log, items, rows);
                (rows.len() >= test + valid + min_train).then_some((test, valid))
            }),
            SplitSpec::LeaveOneOut => per_user(log, n_users, |rows, _| {
                sort_by_time(log, items, rows);
                (rows.len() >= 3).then_some((1, 1))
            }),
            SplitSpec::Ratio { test, valid, seed } => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                per_user(log, n_users, |rows, _| {
                    rows.shuffle(&mut rng);
                    let n = rows.len() as f64;
                    let (t, v) = ((test * n).floor() as usize, (valid * n).floor() as usize);
                    (t >= 1 && rows.len() > t + v).then_some((t, v))
                })
            }
            SplitSpec::Fixed { test, valid, min_train, seed } => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                per_user(log, n_users, |rows, _| {
                    if rows.len() < test + valid + min_train {
                        return None;
                    }
                    rows.shuffle(&mut rng);
                    Some((test, valid))
                })
            }
            SplitSpec::TimeWindow { days, valid_days } => {
                let last_day = log.max_time().unwrap_or(0).div_euclid(DAY);
                let test_from = last_day - days as i64 + 1;
                let valid_from = test_from - valid_days as i64;
                let mut parts = [Vec::new(), Vec::new(), Vec::new()];
                for (i, &t) in log.time.iter().enumerate() {
                    let d = t.div_euclid(DAY);
                    parts[if d >= test_from {
                        2
                    } else if d >= valid_from {
                        1
                    } else {
                        0
                    }]
                    .push(i);
                }
                assemble(log, &parts, 0)
            }
            SplitSpec::GlobalFraction { valid, test } => {
                let mut rows: Vec<usize> = (0..log.len()).collect();
                rows.sort_by(|&a, &b| {
                    log.time[a]
                        .cmp(&log.time[b])
                        .then(log.user[a].cmp(&log.user[b]))
                        .then(log.item[a].cmp(&log.item[b]))
                });
                let n = rows.len();
                let n_test = (test * n as f64).round() as usize;
                let n_valid = (valid * n as f64).round() as usize;
                // Identical rows are adjacent here; a cut inside a run of them moves past it.
                let same = |a: usize, b: usize| {
                    log.time[a] == log.time[b] && log.user[a] == log.user[b] && log.item[a] == log.item[b]
                };
                let settle = |mut cut: usize| {
                    while cut > 0 && cut < n && same(rows[cut - 1], rows[cut]) {
                        cut += 1;
                    }
                    cut
                };
                let n_train = settle(n - n_test - n_valid);
                let n_valid = settle((n - n_test).max(n_train)) - n_train;
                let parts = [
                    rows[..n_train].to_vec(),
                    rows[n_train..n_train + n_valid].to_vec(),
                    rows[n_train + n_valid..].to_vec(),
                ];
                assemble(log, &parts, 0)
            }
        };
        split.report.method = self.describe();
        Ok(split)
    }
}

fn sort_by_time(log: &Interactions, items: &IdMap, rows: &mut [usize]) {
    rows.sort_by(|&a, &b| {
        log.time[a].cmp(&log.time[b]).then_with(|| cmp_raw_ids(items.raw(log.item[a]), items.raw(log.item[b])))
    });
}

/// Runs `choose` on each user's rows (in user order, so seeded shuffles are reproducible).
/// `choose` may reorder the rows and returns how many of the last ones go to (test, valid),
/// or `None` to keep the user wholly in train.
///
/// Identical rows (same item at the same time) never straddle a cut: `choose` sees one of
/// them (so they count once) and the others follow it into its part.
fn per_user(
    log: &Interactions,
    n_users: usize,
    mut choose: impl FnMut(&mut Vec<usize>, u32) -> Option<(usize, usize)>,
) -> Split {
    let mut parts = [Vec::new(), Vec::new(), Vec::new()];
    let mut kept = 0;
    let mut copies: Vec<(usize, usize)> = Vec::new();
    for (u, mut rows) in log.rows_by_user(n_users).into_iter().enumerate() {
        if rows.is_empty() {
            continue;
        }
        copies.clear();
        collapse_copies(log, &mut rows, &mut copies);
        let first = [parts[0].len(), parts[1].len(), parts[2].len()];
        match choose(&mut rows, u as u32) {
            None => {
                kept += 1;
                parts[0].extend_from_slice(&rows);
            }
            Some((t, v)) => {
                let n = rows.len();
                parts[2].extend_from_slice(&rows[n - t..]);
                parts[1].extend_from_slice(&rows[n - t - v..n - t]);
                parts[0].extend_from_slice(&rows[..n - t - v]);
            }
        }
        for &(kept_row, copy) in &copies {
            let part = (0..3).find(|&p| parts[p][first[p]..].contains(&kept_row)).expect("every row has a part");
            parts[part].push(copy);
        }
    }
    assemble(log, &parts, kept)
}

/// Removes from `rows` every row identical (item, time) to an earlier one, recording each as
/// (the earlier row, the copy); the rest keep their order.
fn collapse_copies(log: &Interactions, rows: &mut Vec<usize>, copies: &mut Vec<(usize, usize)>) {
    let mut by_key = rows.clone();
    by_key.sort_unstable_by_key(|&r| (log.item[r], log.time[r], r));
    for w in by_key.windows(2) {
        if log.item[w[0]] == log.item[w[1]] && log.time[w[0]] == log.time[w[1]] {
            let first = copies.iter().rev().find(|c| c.1 == w[0]).map_or(w[0], |c| c.0);
            copies.push((first, w[1]));
        }
    }
    if !copies.is_empty() {
        let mut dropped: Vec<usize> = copies.iter().map(|c| c.1).collect();
        dropped.sort_unstable();
        rows.retain(|r| dropped.binary_search(r).is_err());
    }
}

fn assemble(log: &Interactions, parts: &[Vec<usize>; 3], kept: usize) -> Split {
    let [train, valid, test] = parts.clone().map(|mut rows| {
        rows.sort_unstable();
        log.select(&rows)
    });
    let report = SplitReport {
        method: String::new(),
        train_rows: train.len(),
        valid_rows: valid.len(),
        test_rows: test.len(),
        test_users: test.count_users(),
        users_kept_in_train: kept,
    };
    Split { train, valid, test, report }
}

#[cfg(test)]
mod tests;
