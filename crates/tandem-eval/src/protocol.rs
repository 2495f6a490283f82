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

/// Test users ranked at once in full ranking (one [`Retriever::recommend_batch`] call).
const BATCH: usize = 256;

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

/// The held-out items' positions up to `list.len() - 1`, from a user's best `list.len()`
/// eligible items (`list` shorter than asked for holds every eligible item): exact where they
/// can be told from the list, `None` where they cannot.
///
/// Every item scoring above the last listed score is in the list, so a held-out item scoring
/// above it has its exact position among the listed items alone; one scoring below it, or
/// equal to it but unlisted, comes after every listed item but itself, past `len - 1`. A
/// listed held-out item tied with the last score may tie with unlisted items too, which rank
/// ahead of it: only scoring every item tells, so the caller does.
fn positions_from_top(list: &[Scored], asked: usize, truth: &[u32]) -> Option<Vec<usize>> {
    let listed = list.iter().map(|s| (s.item, s.score));
    if list.len() < asked {
        return Some(held_out_positions(listed, truth));
    }
    let last = list.last()?.score;
    let held = |s: &&Scored| truth.binary_search(&s.item).is_ok();
    if list.iter().filter(held).any(|s| s.score == last) {
        return None;
    }
    Some(held_out_positions(listed, truth))
}

/// Full ranking for one user by scoring every item: the ranking kept and the held-out items'
/// positions among the `eligible` items.
fn full(
    model: &dyn Retriever,
    q: &Query<'_>,
    truth: &[u32],
    keep: usize,
    eligible: &dyn Fn(u32) -> bool,
) -> (Vec<Scored>, Vec<usize>) {
    let mut scores = vec![0f32; model.n_items()];
    model.score(q, &mut scores);
    let cands = scores.iter().enumerate().map(|(i, &s)| (i as u32, s)).filter(|&(i, _)| eligible(i));
    (tandem_models::top_k(&scores, keep, eligible), held_out_positions(cands, truth))
}

/// Evaluates `model`: each test user is scored from their query in `histories` (trained users
/// by their trained state, users without training rows as new users), ranked under `protocol`
/// with ties never favouring a held-out item, and measured at each K of `ks`. Keeps the top
/// `keep` per user as predictions. Users are processed in parallel.
///
/// Full ranking asks the model for each user's best `max(ks, keep) + 1` items through
/// [`Retriever::recommend_batch`] (fused top-k, no score rows) and places the held-out items
/// from them; a user whose held-out item ties with the last listed score is ranked again by
/// scoring every item, so the rule on ties holds exactly.
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
    let step = progress.step("evaluating", test.len() as u64);
    let depth = ks.iter().copied().max().unwrap_or(0).max(keep) + 1;
    let order: Vec<usize> = (0..test.len()).collect();
    let per_user: Vec<(u32, Vec<Scored>, Option<Vec<_>>)> = order
        .par_chunks(BATCH)
        .flat_map_iter(|chunk| {
            let queries: Vec<_> = chunk.iter().map(|&k| histories.query(test.users[k])).collect();
            let ranked: Vec<(Vec<Scored>, Vec<usize>)> = match protocol {
                Protocol::Full { catalogue, exclude_seen } => {
                    let eligible = |q: &Query<'_>, i: u32| {
                        catalogue.get(i as usize).copied().unwrap_or(false)
                            && !(*exclude_seen && q.items.binary_search(&i).is_ok())
                    };
                    let lists = model.recommend_batch(&queries, depth, &|j, i| eligible(&queries[j], i));
                    lists
                        .into_iter()
                        .zip(chunk.iter().zip(&queries))
                        .map(|(mut list, (&k, q))| match positions_from_top(&list, depth, &test.truth[k]) {
                            Some(hits) => {
                                list.truncate(keep);
                                (list, hits)
                            }
                            None => full(model, q, &test.truth[k], keep, &|i| eligible(q, i)),
                        })
                        .collect()
                }
                Protocol::Sampled { negatives } => {
                    chunk.iter().zip(&queries).map(|(&k, q)| sampled(model, q, &test.truth[k], &negatives[k])).collect()
                }
            };
            step.inc(chunk.len() as u64);
            chunk
                .iter()
                .zip(ranked)
                .map(|(&k, (list, hits))| {
                    let truth = &test.truth[k];
                    (test.users[k], list, metrics_at_positions(&hits, truth.len(), ks))
                })
                .collect::<Vec<_>>()
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

    /// Scores from a table: row `q.trained` (small integers, so ties abound, and NaN).
    struct Table {
        n: usize,
        rows: Vec<Vec<f32>>,
    }

    impl Retriever for Table {
        fn kind(&self) -> &'static str {
            "table"
        }
        fn n_items(&self) -> usize {
            self.n
        }
        fn artifact(&self) -> tandem_models::artifact::Artifact {
            tandem_models::artifact::Artifact {
                kind: "table",
                params: serde_json::json!({}),
                tensors: Default::default(),
            }
        }
        fn score(&self, query: &tandem_models::Query<'_>, out: &mut [f32]) {
            out.copy_from_slice(&self.rows[query.trained.expect("trained users only") as usize]);
        }
    }

    #[test]
    fn full_ranking_from_top_lists_equals_ranking_every_item_under_ties() {
        let (n_users, n_items) = (60u32, 40usize);
        let mut state = 7u64;
        let mut next = |m: u64| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) % m
        };
        let rows: Vec<Vec<f32>> = (0..n_users)
            .map(|_| (0..n_items).map(|_| if next(20) == 0 { f32::NAN } else { next(4) as f32 }).collect())
            .collect();
        let (mut users, mut items) = (Vec::new(), Vec::new());
        let mut test = TestSet::default();
        for u in 0..n_users {
            // At least one row each: every user is a trained user.
            for _ in 0..1 + next(6) {
                users.push(u);
                items.push(next(n_items as u64) as u32);
            }
            let mut truth: Vec<u32> = (0..1 + next(4)).map(|_| next(n_items as u64) as u32).collect();
            truth.sort_unstable();
            truth.dedup();
            test.users.push(u);
            test.truth.push(truth);
        }
        let seen = tandem_data::Csr::from_triplets(n_users as usize, n_items, &users, &items, &vec![1.0; users.len()]);
        let model = Table { n: n_items, rows };
        let catalogue: Vec<bool> = (0..n_items).map(|i| i % 7 != 3).collect();
        let ks = [1, 3, 5, 10];
        for exclude_seen in [false, true] {
            let p = Protocol::Full { catalogue: catalogue.clone(), exclude_seen };
            let e = evaluate(&model, Histories::fitted(&seen), &test, &p, &ks, 4, &NoProgress);
            // Every item scored, every eligible one ranked.
            let mut sums = MetricSums::new(ks.len());
            for (u, truth) in test.users.iter().zip(&test.truth) {
                let q = Histories::fitted(&seen).query(*u);
                let ok = |i: u32| catalogue[i as usize] && !(exclude_seen && q.items.contains(&i));
                let cands = model.rows[*u as usize].iter().enumerate().map(|(i, &s)| (i as u32, s));
                let hits = held_out_positions(cands.filter(|&(i, _)| ok(i)), truth);
                sums.add(&metrics_at_positions(&hits, truth.len(), &ks).unwrap());
                let kept = &e.predictions.iter().find(|p| p.0 == *u).unwrap().1;
                assert_eq!(kept, &tandem_models::top_k(&model.rows[*u as usize], 4, ok), "user {u}");
            }
            let want = sums.means();
            for metric in Metric::ALL {
                for (ki, &k) in ks.iter().enumerate() {
                    let got = e.metrics[&metric.at(k)];
                    assert_eq!(got, want[ki][metric as usize], "{} exclude_seen={exclude_seen}", metric.at(k));
                }
            }
        }
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
