//! Evaluation protocols: full ranking (every catalogue item, optionally excluding the user's
//! training items) and sampled ranking (held-out items among given or drawn negatives).

use rayon::prelude::*;
use serde::Serialize;
use tandem_data::{Interactions, Progress};
use tandem_models::{held_out_positions, rank_order, Histories, Query, Retriever, Scored};

use crate::metric::{metrics_at_positions, Metric, MetricSums};

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
    /// Of those, users without training rows, scored as new users.
    pub new_users: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Ranked list kept per test user (best first, in the model's own order: ties by item
    /// index): the top `keep` in full ranking, every candidate in sampled ranking.
    #[serde(skip)]
    pub predictions: Vec<(u32, Vec<Scored>)>,
}

/// Test users scored at once in full ranking.
const BATCH: usize = 32;

/// Ranks `truth` among `negatives` by the model's scores of just those items: every candidate,
/// best first, and the held-out items' positions.
fn sampled(model: &dyn Retriever, q: &Query<'_>, truth: &[u32], negatives: &[u32]) -> (Vec<Scored>, Vec<usize>) {
    let mut cands: Vec<u32> = truth.iter().chain(negatives).copied().collect();
    cands.sort_unstable();
    cands.dedup();
    let mut cand_scores = vec![0f32; cands.len()];
    model.score_items(q, &cands, &mut cand_scores);
    let hits = held_out_positions(cands.iter().copied().zip(cand_scores.iter().copied()), truth);
    let mut ranked: Vec<Scored> =
        cands.into_iter().zip(cand_scores).map(|(item, score)| Scored { item, score }).collect();
    ranked.sort_by(rank_order);
    (ranked, hits)
}

/// Evaluates `model`: each test user is scored from their query in `histories` (trained users
/// by their trained state, users without training rows as new users), ranked under `protocol`
/// with ties never favouring a held-out item, and measured at each K of `ks`. Keeps the top
/// `keep` per user as predictions. Users are processed in parallel.
pub fn evaluate(
    model: &dyn Retriever,
    histories: Histories<'_>,
    test: &TestSet,
    protocol: &Protocol,
    ks: &[usize],
    keep: usize,
    progress: &dyn Progress,
) -> Evaluation {
    let start = std::time::Instant::now();
    let n_items = model.n_items();
    let step = progress.step("evaluating", test.len() as u64);
    // Users in batches: full ranking scores a batch at once (`Retriever::score_batch`).
    let order: Vec<usize> = (0..test.len()).collect();
    let per_user: Vec<(u32, Vec<Scored>, Option<Vec<_>>)> = order
        .par_chunks(BATCH)
        .flat_map_iter(|chunk| {
            let queries: Vec<_> = chunk.iter().map(|&k| histories.query(test.users[k])).collect();
            let (mut scores, mut eligible) = (Vec::new(), Vec::new());
            if let Protocol::Full { catalogue, .. } = protocol {
                scores = vec![0f32; chunk.len() * n_items];
                model.score_batch(&queries, &mut scores);
                eligible = (0..n_items).map(|i| catalogue.get(i).copied().unwrap_or(false)).collect();
            }
            let rows: Vec<_> = chunk
                .iter()
                .zip(&queries)
                .enumerate()
                .map(|(j, (&k, q))| {
                    let truth = &test.truth[k];
                    let (ranked, hits) = match protocol {
                        Protocol::Full { exclude_seen, .. } => {
                            let scores = &scores[j * n_items..(j + 1) * n_items];
                            // The catalogue less this user's seen items, as a mask: two passes
                            // over every item per user must not search the history each time.
                            let seen = q.items.iter().map(|&i| i as usize).filter(|&i| *exclude_seen && i < n_items);
                            let seen: Vec<(usize, bool)> =
                                seen.map(|i| (i, std::mem::replace(&mut eligible[i], false))).collect();
                            let ok = |i: u32| eligible[i as usize];
                            let cands = scores.iter().enumerate().map(|(i, &s)| (i as u32, s)).filter(|&(i, _)| ok(i));
                            let ranked = (tandem_models::top_k(scores, keep, ok), held_out_positions(cands, truth));
                            seen.into_iter().rev().for_each(|(i, was)| eligible[i] = was);
                            ranked
                        }
                        Protocol::Sampled { negatives } => sampled(model, q, truth, &negatives[k]),
                    };
                    step.inc(1);
                    (test.users[k], ranked, metrics_at_positions(&hits, truth.len(), ks))
                })
                .collect();
            rows
        })
        .collect();
    let mut sums = MetricSums::new(ks.len());
    let mut predictions = Vec::with_capacity(per_user.len());
    let mut new_users = 0;
    for (u, ranked, m) in per_user {
        if let Some(m) = m {
            sums.add(&m);
            new_users += histories.is_new(u) as usize;
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
    Evaluation { metrics, users: sums.users(), new_users, seconds: start.elapsed().as_secs_f64(), predictions }
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
        let e = evaluate(&*model, Histories::fitted(&train.user_items), &test, &p, &[1, 2], 10, &NoProgress);
        assert_eq!(e.metrics["HR@1"], 0.0);
        assert_eq!(e.metrics["HR@2"], 1.0);
        assert!((e.metrics["NDCG@2"] - 1.0 / 3f64.log2()).abs() < 1e-12);
        assert_eq!(e.predictions[0].1.iter().map(|s| s.item).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        // Without exclusion item 0 takes p = 1 and the hit moves to p = 3.
        let p = Protocol::Full { catalogue, exclude_seen: false };
        let e = evaluate(&*model, Histories::fitted(&train.user_items), &test, &p, &[2, 3], 10, &NoProgress);
        assert_eq!(e.metrics["HR@2"], 0.0);
        assert!((e.metrics["MRR@3"] - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn sampled_ranking_ranks_targets_among_negatives() {
        let (train, model) = setup();
        let test = test_set(0, &[3]);
        // Negatives 4 and 5 score below item 3; negative 1 above it.
        let p = Protocol::Sampled { negatives: vec![vec![4, 5, 1]] };
        let e = evaluate(&*model, Histories::fitted(&train.user_items), &test, &p, &[1, 2], 10, &NoProgress);
        assert_eq!(e.metrics["HR@1"], 0.0);
        assert_eq!(e.metrics["HR@2"], 1.0);
        assert_eq!(e.predictions[0].1.len(), 4, "every candidate is kept");
    }

    #[test]
    fn unknown_test_users_score_as_empty_histories() {
        let (train, model) = setup();
        let p = Protocol::Full { catalogue: vec![true; 6], exclude_seen: true };
        let e = evaluate(&*model, Histories::fitted(&train.user_items), &test_set(99, &[0]), &p, &[1], 5, &NoProgress);
        assert_eq!(e.metrics["HR@1"], 1.0);
        assert_eq!((e.users, e.new_users), (1, 1));
    }

    /// Scores every item alike, except what a query's `user` field or history asks for: item
    /// `trained` scores 1 for a trained user, item `anonymous` for a user-less query, and each
    /// history item 0.5.
    struct Spy {
        n: usize,
        trained: u32,
        anonymous: u32,
    }

    impl Retriever for Spy {
        fn kind(&self) -> &'static str {
            "spy"
        }
        fn n_items(&self) -> usize {
            self.n
        }
        fn artifact(&self) -> tandem_models::artifact::Artifact {
            tandem_models::artifact::Artifact {
                kind: "spy",
                params: serde_json::json!({}),
                tensors: Default::default(),
            }
        }
        fn score(&self, query: &tandem_models::Query<'_>, out: &mut [f32]) {
            out.fill(0.0);
            for &i in query.items {
                out[i as usize] = 0.5;
            }
            out[if query.trained.is_some() { self.trained } else { self.anonymous } as usize] = 1.0;
        }
    }

    #[test]
    fn a_constant_scorer_never_hits_in_sampled_or_full_ranking() {
        let spy = Spy { n: 200, trained: 0, anonymous: 0 };
        let empty = tandem_data::Csr::from_triplets(1, 200, &[], &[], &[]);
        // Every item but item 0 scores 0: the held-out item 7 ties with all its negatives
        // (100..199), and with every other item in full ranking.
        let test = test_set(0, &[7]);
        let p = Protocol::Sampled { negatives: vec![(100..200).collect()] };
        let e = evaluate(&spy, Histories::fitted(&empty), &test, &p, &[10, 100, 101], 0, &NoProgress);
        assert_eq!(e.metrics["HR@10"], 0.0);
        assert_eq!(e.metrics["HR@100"], 0.0);
        assert_eq!(e.metrics["HR@101"], 1.0, "last of 101 candidates");
        let p = Protocol::Full { catalogue: vec![true; 200], exclude_seen: true };
        let e = evaluate(&spy, Histories::fitted(&empty), &test, &p, &[10, 198], 5, &NoProgress);
        assert_eq!(e.metrics["HR@10"], 0.0);
        assert_eq!(e.metrics["HR@198"], 0.0, "199 items, item 0 scores above: position 199");
        // The kept predictions stay in the model's own order (ties by index).
        let kept: Vec<u32> = e.predictions[0].1.iter().map(|s| s.item).collect();
        assert_eq!(kept, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn users_without_training_rows_are_new_users_scored_from_their_known_history() {
        // User 0 trained (row in `fitted`); user 1 only has a later (valid) row: item 3.
        let fitted = tandem_data::Csr::from_triplets(2, 10, &[0], &[2], &[1.0]);
        let known = tandem_data::Csr::from_triplets(2, 10, &[0, 0, 1], &[2, 4, 3], &[1.0; 3]);
        let h = Histories { fitted: &fitted, known: &known };
        let spy = Spy { n: 10, trained: 8, anonymous: 9 };
        let test = TestSet { users: vec![0, 1], truth: vec![vec![8], vec![9]] };
        let p = Protocol::Full { catalogue: vec![true; 10], exclude_seen: true };
        let e = evaluate(&spy, h, &test, &p, &[1], 3, &NoProgress);
        assert_eq!(e.metrics["HR@1"], 1.0, "user 0 by its trained state, user 1 as a new user");
        assert_eq!((e.users, e.new_users), (2, 1));
        // Known items after training (user 0's item 4, user 1's item 3) are history: excluded
        // from the ranking, and fed to the model (they score 0.5 here).
        let lists: Vec<Vec<u32>> = e.predictions.iter().map(|p| p.1.iter().map(|s| s.item).collect()).collect();
        assert_eq!(lists, vec![vec![8, 0, 1], vec![9, 0, 1]]);
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
