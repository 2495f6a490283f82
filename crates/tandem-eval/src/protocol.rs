//! Evaluation protocols: full ranking (every catalogue item, optionally excluding the user's
//! training items) and sampled ranking (held-out items among given or drawn negatives).

use rayon::prelude::*;
use serde::Serialize;
use tandem_data::{Csr, Interactions, Progress};
use tandem_models::{rank_order, Query, Retriever, Scored};

use crate::metric::{user_metrics, Metric, MetricSums};

/// Held-out items per user: `users[k]`'s distinct held-out items are `truth[k]` (sorted).
#[derive(Debug, Clone, Default)]
pub struct TestSet {
    /// Test users, ascending.
    pub users: Vec<u32>,
    /// Each user's held-out items, sorted, distinct.
    pub truth: Vec<Vec<u32>>,
}

impl TestSet {
    /// Groups a held-out log by user.
    pub fn from_log(log: &Interactions) -> TestSet {
        let mut pairs: Vec<(u32, u32)> = log.user.iter().copied().zip(log.item.iter().copied()).collect();
        pairs.sort_unstable();
        pairs.dedup();
        let mut t = TestSet::default();
        for (u, i) in pairs {
            if t.users.last() != Some(&u) {
                t.users.push(u);
                t.truth.push(Vec::new());
            }
            t.truth.last_mut().expect("pushed").push(i);
        }
        t
    }

    /// Number of users with held-out items.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when no user has held-out items.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// How candidates are ranked.
#[derive(Debug, Clone)]
pub enum Protocol {
    /// Rank every item where `catalogue[i]` is true; with `exclude_seen`, the user's training
    /// items are removed first.
    Full {
        /// Items eligible for ranking.
        catalogue: Vec<bool>,
        /// Remove each user's training items from their ranking.
        exclude_seen: bool,
    },
    /// Rank each user's held-out items among their negatives (`negatives[k]` for
    /// `test.users[k]`); nothing is excluded.
    Sampled {
        /// Negatives per test user, aligned with the test set.
        negatives: Vec<Vec<u32>>,
    },
}

/// What evaluating one model produced.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// `NAME@K` -> mean over users with held-out items.
    pub metrics: indexmap::IndexMap<String, f64>,
    /// Users averaged over.
    pub users: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Ranked list kept per test user (best first): the top `keep` in full ranking, every
    /// candidate in sampled ranking.
    #[serde(skip)]
    pub predictions: Vec<(u32, Vec<Scored>)>,
}

/// Evaluates `model`: each test user is scored from their row of `history` (the training
/// matrix; users beyond it or with an empty row score as empty histories), ranked under
/// `protocol`, and measured at each K of `ks`. Keeps the top `keep` per user as predictions.
/// Users are processed in parallel.
pub fn evaluate(
    model: &dyn Retriever,
    history: &Csr,
    test: &TestSet,
    protocol: &Protocol,
    ks: &[usize],
    keep: usize,
    progress: &dyn Progress,
) -> Evaluation {
    let start = std::time::Instant::now();
    let max_k = ks.iter().copied().max().unwrap_or(0);
    let n_items = model.n_items();
    let step = progress.step("evaluating", test.len() as u64);
    let per_user: Vec<(u32, Vec<Scored>, Option<Vec<_>>)> = (0..test.len())
        .into_par_iter()
        .map_init(
            || vec![0f32; n_items],
            |scores, k| {
                let u = test.users[k];
                let q = if (u as usize) < history.n_rows() {
                    Query::from_row(history, u)
                } else {
                    Query { user: None, items: &[], weights: &[] }
                };
                let ranked = match protocol {
                    Protocol::Full { catalogue, exclude_seen } => {
                        model.score(&q, scores);
                        let seen = q.items;
                        let keep_item = |i: u32| {
                            catalogue.get(i as usize).copied().unwrap_or(false)
                                && !(*exclude_seen && seen.binary_search(&i).is_ok())
                        };
                        tandem_models::top_k(scores, max_k.max(keep), keep_item)
                    }
                    Protocol::Sampled { negatives } => {
                        let mut cands: Vec<u32> = test.truth[k].iter().chain(&negatives[k]).copied().collect();
                        cands.sort_unstable();
                        cands.dedup();
                        let mut cand_scores = vec![0f32; cands.len()];
                        model.score_items(&q, &cands, &mut cand_scores);
                        let mut ranked: Vec<Scored> =
                            cands.into_iter().zip(cand_scores).map(|(item, score)| Scored { item, score }).collect();
                        ranked.sort_by(rank_order);
                        ranked
                    }
                };
                let items: Vec<u32> = ranked.iter().map(|s| s.item).collect();
                let m = user_metrics(&items, &test.truth[k], ks);
                step.inc(1);
                let mut kept = ranked;
                if matches!(protocol, Protocol::Full { .. }) {
                    kept.truncate(keep);
                }
                (u, kept, m)
            },
        )
        .collect();
    let mut sums = MetricSums::new(ks.len());
    let mut predictions = Vec::with_capacity(per_user.len());
    for (u, ranked, m) in per_user {
        if let Some(m) = m {
            sums.add(&m);
        }
        predictions.push((u, ranked));
    }
    let means = sums.means();
    let mut metrics = indexmap::IndexMap::new();
    for metric in Metric::ALL {
        for (ki, &k) in ks.iter().enumerate() {
            metrics.insert(metric.at(k), means[ki][metric as usize]);
        }
    }
    Evaluation { metrics, users: sums.users(), seconds: start.elapsed().as_secs_f64(), predictions }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_data::{Interaction, NoProgress};
    use tandem_models::{PopularityParams, TrainSet};

    /// Items 0..5 with popularity 5,4,3,2,1 (users 10..15 provide it); user 0 bought item 0.
    fn setup() -> (TrainSet, Box<dyn Retriever>) {
        let mut log = Interactions::new();
        log.push(Interaction { user: 0, item: 0, time: 0, weight: 1.0 });
        for i in 0..5u32 {
            for u in 0..(5 - i) {
                log.push(Interaction { user: 10 + u, item: i, time: 0, weight: 1.0 });
            }
        }
        let train = TrainSet::new(log, 16, 6);
        let model = Box::new(PopularityParams::default().fit(&train).unwrap());
        (train, model)
    }

    fn test_set(user: u32, items: &[u32]) -> TestSet {
        TestSet { users: vec![user], truth: vec![items.to_vec()] }
    }

    #[test]
    fn full_ranking_excludes_seen_items_and_respects_the_catalogue() {
        let (train, model) = setup();
        let mut catalogue = vec![true; 6];
        catalogue[5] = false;
        let test = test_set(0, &[2]);
        // Excluding item 0 (seen): ranking 1, 2, 3, 4 -> the hit is at p = 2.
        let p = Protocol::Full { catalogue: catalogue.clone(), exclude_seen: true };
        let e = evaluate(&*model, &train.user_items, &test, &p, &[1, 2], 10, &NoProgress);
        assert_eq!(e.metrics["HR@1"], 0.0);
        assert_eq!(e.metrics["HR@2"], 1.0);
        assert!((e.metrics["NDCG@2"] - 1.0 / 3f64.log2()).abs() < 1e-12);
        assert_eq!(e.predictions[0].1.iter().map(|s| s.item).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        // Without exclusion item 0 takes p = 1 and the hit moves to p = 3.
        let p = Protocol::Full { catalogue, exclude_seen: false };
        let e = evaluate(&*model, &train.user_items, &test, &p, &[2, 3], 10, &NoProgress);
        assert_eq!(e.metrics["HR@2"], 0.0);
        assert!((e.metrics["MRR@3"] - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn sampled_ranking_ranks_targets_among_negatives() {
        let (train, model) = setup();
        let test = test_set(0, &[3]);
        // Negatives 4 and 5 score below item 3; negative 1 above it.
        let p = Protocol::Sampled { negatives: vec![vec![4, 5, 1]] };
        let e = evaluate(&*model, &train.user_items, &test, &p, &[1, 2], 10, &NoProgress);
        assert_eq!(e.metrics["HR@1"], 0.0);
        assert_eq!(e.metrics["HR@2"], 1.0);
        assert_eq!(e.predictions[0].1.len(), 4, "every candidate is kept");
    }

    #[test]
    fn unknown_test_users_score_as_empty_histories() {
        let (train, model) = setup();
        let p = Protocol::Full { catalogue: vec![true; 6], exclude_seen: true };
        let e = evaluate(&*model, &train.user_items, &test_set(99, &[0]), &p, &[1], 5, &NoProgress);
        assert_eq!(e.metrics["HR@1"], 1.0);
        assert_eq!(e.users, 1);
    }

    #[test]
    fn test_sets_group_and_deduplicate() {
        let mut log = Interactions::new();
        for (u, i) in [(2, 5), (1, 3), (2, 5), (2, 1)] {
            log.push(Interaction { user: u, item: i, time: 0, weight: 1.0 });
        }
        let t = TestSet::from_log(&log);
        assert_eq!(t.users, vec![1, 2]);
        assert_eq!(t.truth, vec![vec![3], vec![1, 5]]);
    }
}
