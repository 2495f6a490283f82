//! From a split's parts to what evaluating on them needs, by the rules of SPEC §6: the test
//! users and their protocol, the validation users and theirs (under the same rules), and each
//! user's history at test time (train + valid). `tandem run` and `evaluate-split` both build
//! their evaluation here.

use tandem_data::{Csr, Interactions};

use crate::negatives::{sample_negatives, NegativeSampling};
use crate::protocol::{Protocol, TestSet};
use crate::report::ProtocolInfo;

/// Where each test user's candidates come from.
#[derive(Debug, Clone, Copy)]
pub enum Candidates<'a> {
    /// Every item with training interactions; with `exclude_seen`, minus the user's known items.
    Full {
        /// Leave each user's known items (train + valid) out of their ranking.
        exclude_seen: bool,
    },
    /// The held-out items among `n` negatives drawn per user (validation with `seed + 1`).
    Drawn {
        /// Negatives per user.
        n: usize,
        /// Uniform or popularity-proportional.
        sampling: NegativeSampling,
        /// Seed of the test draw.
        seed: u64,
    },
    /// The held-out items among negatives given per user (a split directory's files), for the
    /// test part and, when given, the validation part.
    Given {
        /// (user, negatives) for the test users.
        test: &'a [(u32, Vec<u32>)],
        /// The same for the validation users; without it validation ranks fully.
        valid: Option<&'a [(u32, Vec<u32>)]>,
    },
}

/// A split's parts as evaluation sees them.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'a> {
    /// The rows models are fitted on (train, or train + valid when refitting on both).
    pub fit: &'a Interactions,
    /// The training part as split (without valid).
    pub train: &'a Interactions,
    /// The validation part (possibly empty).
    pub valid: &'a Interactions,
    /// The test part.
    pub test: &'a Interactions,
    /// Users (indices below it).
    pub n_users: usize,
    /// Items (indices below it).
    pub n_items: usize,
}

/// Everything evaluation needs from a split.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Each user's known items at test time: train + valid.
    pub history: Csr,
    /// The test users and their held-out items.
    pub test: TestSet,
    /// How the test users are ranked.
    pub protocol: Protocol,
    /// The validation users and their held-out items (empty without a valid part).
    pub valid: TestSet,
    /// How the validation users are ranked.
    pub valid_protocol: Protocol,
    /// The protocol in words, for the report.
    pub info: ProtocolInfo,
    /// Given negatives that were the user's own items, dropped.
    pub dropped: usize,
}

/// What can make a split unusable for evaluation.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A user with held-out items has no given negatives.
    #[error("{part} user index {user} has no line in {part}_negatives.tsv")]
    MissingNegatives {
        /// `test` or `valid`.
        part: &'static str,
        /// The user's dense index.
        user: u32,
    },
}

/// The user x item matrix of every row of `parts`.
pub fn known_matrix(parts: &[&Interactions], n_users: usize, n_items: usize) -> Csr {
    let mut all = Interactions::new();
    for p in parts {
        all.extend(p);
    }
    Csr::user_items(&all, n_users, n_items)
}

/// Items with at least one interaction in `m` (user x item).
pub fn items_with_interactions(m: &Csr) -> Vec<bool> {
    let mut seen = vec![false; m.n_cols()];
    for &i in m.indices() {
        seen[i as usize] = true;
    }
    seen
}

/// Builds the evaluation of `parts` with `candidates`; `split` names the split and `ks` are the
/// cut-offs, for the report.
pub fn setup(parts: &Parts<'_>, candidates: Candidates<'_>, split: String, ks: &[usize]) -> Result<Setup, SetupError> {
    let (n_users, n_items) = (parts.n_users, parts.n_items);
    // The catalogue: items with training rows (their counts also weigh popularity negatives).
    let counts = parts.fit.item_counts(n_items);
    let catalogue: Vec<bool> = counts.iter().map(|&c| c > 0).collect();
    let history = known_matrix(&[parts.train, parts.valid], n_users, n_items);
    // Negatives avoid every item the user has in any part, test and validation alike.
    let everything = || known_matrix(&[parts.train, parts.valid, parts.test], n_users, n_items);
    let (test, valid) = (TestSet::from_log(parts.test), TestSet::from_log(parts.valid));
    let n_catalogue = catalogue.iter().filter(|&&c| c).count();
    let mut info = ProtocolInfo {
        split,
        ranking: "sampled".into(),
        exclude_seen: false,
        candidates: String::new(),
        sampling: None,
        ks: ks.to_vec(),
        test_users: test.len(),
    };
    let mut dropped = 0;
    let (protocol, valid_protocol) = match candidates {
        Candidates::Full { exclude_seen } => {
            info.ranking = "full".into();
            info.exclude_seen = exclude_seen;
            info.candidates = format!(
                "all {n_catalogue} items with training interactions{}",
                if exclude_seen {
                    ", minus each user's known items (train + valid)"
                } else {
                    "; known items not excluded"
                }
            );
            let p = Protocol::Full { catalogue, exclude_seen };
            (p.clone(), p)
        }
        Candidates::Drawn { n, sampling, seed } => {
            let everything = everything();
            let draw = |set: &TestSet, seed| sample_negatives(set, &everything, &counts, n, sampling, seed);
            info.candidates = format!("held-out items among {n} negatives per user");
            info.sampling = Some(
                format!(
                    "{sampling:?} over items with training interactions (by interaction count for popularity), \
                     none the user has in any part, seed {seed}"
                )
                .to_lowercase(),
            );
            (
                Protocol::Sampled { negatives: draw(&test, seed) },
                Protocol::Sampled { negatives: draw(&valid, seed + 1) },
            )
        }
        Candidates::Given { test: given, valid: given_valid } => {
            let everything = everything();
            let negatives = aligned(&test, given, &everything, "test", &mut dropped)?;
            let per_user = given.first().map_or(0, |n| n.1.len());
            let note = if dropped > 0 { format!("; {dropped} known to their user dropped") } else { String::new() };
            info.candidates = format!("held-out items among the given negatives ({per_user} per user{note})");
            info.sampling = Some("given: test_negatives.tsv".into());
            let valid_protocol = match given_valid {
                Some(v) => Protocol::Sampled { negatives: aligned(&valid, v, &everything, "valid", &mut dropped)? },
                None => Protocol::Full { catalogue, exclude_seen: true },
            };
            (Protocol::Sampled { negatives }, valid_protocol)
        }
    };
    Ok(Setup { history, test, protocol, valid, valid_protocol, info, dropped })
}

/// The given negatives of each user of `set`, in its order, without the items the user is
/// known to have (`known`); every user must have a line.
fn aligned(
    set: &TestSet,
    given: &[(u32, Vec<u32>)],
    known: &Csr,
    part: &'static str,
    dropped: &mut usize,
) -> Result<Vec<Vec<u32>>, SetupError> {
    let by_user: std::collections::HashMap<u32, &Vec<u32>> = given.iter().map(|(u, n)| (*u, n)).collect();
    set.users
        .iter()
        .map(|&u| {
            let negs = by_user.get(&u).ok_or(SetupError::MissingNegatives { part, user: u })?;
            let mine = if (u as usize) < known.n_rows() { known.row(u as usize).0 } else { &[] };
            let kept: Vec<u32> = negs.iter().copied().filter(|i| mine.binary_search(i).is_err()).collect();
            *dropped += negs.len() - kept.len();
            Ok(kept)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_data::Interaction;

    fn log(rows: &[(u32, u32)]) -> Interactions {
        let mut l = Interactions::new();
        for &(user, item) in rows {
            l.push(Interaction { user, item, time: 0, weight: 1.0 });
        }
        l
    }

    #[test]
    fn history_is_train_plus_valid_and_given_negatives_lose_known_items() {
        let (train, valid, test) = (log(&[(0, 0), (1, 1)]), log(&[(0, 2)]), log(&[(0, 3), (1, 4)]));
        let parts = Parts { fit: &train, train: &train, valid: &valid, test: &test, n_users: 2, n_items: 6 };
        let s = setup(&parts, Candidates::Full { exclude_seen: true }, "s".into(), &[10]).unwrap();
        assert_eq!(s.history.row(0).0, &[0, 2]);
        assert!(s.info.candidates.contains("train + valid"), "{}", s.info.candidates);
        // User 0's given negatives hold its valid item 2: dropped and counted.
        let given = [(0, vec![2, 5]), (1, vec![5])];
        let s = setup(&parts, Candidates::Given { test: &given, valid: None }, "s".into(), &[10]).unwrap();
        let Protocol::Sampled { negatives } = &s.protocol else { panic!("sampled") };
        assert_eq!(negatives, &vec![vec![5], vec![5]]);
        assert_eq!(s.dropped, 1);
        assert!(s.info.candidates.contains("1 known to their user dropped"));
        let e = setup(&parts, Candidates::Given { test: &given[..1], valid: None }, "s".into(), &[10]).unwrap_err();
        assert!(e.to_string().contains("test user index 1 has no line in test_negatives.tsv"), "{e}");
    }

    #[test]
    fn drawn_negatives_avoid_test_items_for_validation_too() {
        let (train, valid, test) = (log(&[(0, 0), (0, 1)]), log(&[(0, 2)]), log(&[(0, 3)]));
        let everything = log(&[(1, 0), (1, 1), (1, 2), (1, 3), (1, 4), (1, 5)]);
        let mut fit = train.clone();
        fit.extend(&everything);
        let parts = Parts { fit: &fit, train: &train, valid: &valid, test: &test, n_users: 2, n_items: 6 };
        let c = Candidates::Drawn { n: 10, sampling: NegativeSampling::Uniform, seed: 1 };
        let s = setup(&parts, c, "s".into(), &[10]).unwrap();
        let (Protocol::Sampled { negatives: t }, Protocol::Sampled { negatives: v }) = (&s.protocol, &s.valid_protocol)
        else {
            panic!("sampled")
        };
        let (mut t, mut v) = (t[0].clone(), v[0].clone());
        t.sort_unstable();
        v.sort_unstable();
        assert_eq!((t, v), (vec![4, 5], vec![4, 5]), "neither holds train, valid or test items");
    }
}
