//! Ranker diagnostics on held-out data: AUROC of the ranker's scores for held-out positives
//! against hard negatives (the other candidates), uniform random negatives and explicit
//! negatives (low ratings, where known); feature sensitivity (one column group shuffled across
//! all rows, the AUROC drop reported); and a cold-item evaluation (a share of items removed
//! from training, then ranked for the users who went on to them with the item IDs unknown to
//! the ranker, against popularity).

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;
use tandem_data::read::ItemInfo;
use tandem_data::sample::{user_rng, NegativeSampler};
use tandem_data::{Interactions, Progress};
use tandem_models::{held_out_positions, Query, Result, TrainSet};

use crate::ranker::Candidates;
use crate::two_stage::{TwoStage, TwoStageSpec};

/// Area under the ROC curve: the probability that a positive outscores a negative (ties count
/// half). `None` when either side is empty.
pub fn auroc(positives: &[f32], negatives: &[f32]) -> Option<f64> {
    if positives.is_empty() || negatives.is_empty() {
        return None;
    }
    // Rank-sum (Mann-Whitney) over the pooled scores, ties given their mean rank.
    let mut all: Vec<(f32, bool)> =
        positives.iter().map(|&s| (s, true)).chain(negatives.iter().map(|&s| (s, false))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += mean_rank * all[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    let (p, n) = (positives.len() as f64, negatives.len() as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// What [`diagnose`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostics {
    /// Held-out items that were candidates (the positives).
    pub positives: usize,
    /// AUROC against the other candidates.
    pub auroc_hard: Option<f64>,
    /// AUROC against uniform random items the user never had (one per positive).
    pub auroc_random: Option<f64>,
    /// AUROC against the user's explicit negatives (none given: `None`).
    pub auroc_explicit: Option<f64>,
    /// Per feature group: AUROC against hard negatives with that group shuffled across all
    /// rows, and the drop from the unshuffled AUROC.
    pub sensitivity: Vec<Sensitivity>,
}

/// One feature group's importance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sensitivity {
    /// The group.
    pub feature: String,
    /// AUROC (hard negatives) with the group shuffled.
    pub auroc: f64,
    /// Unshuffled minus shuffled AUROC: how much the ranker leans on it.
    pub drop: f64,
}

/// Diagnoses `pipeline`'s ranker on held-out `truth` (per user of `users`, fitted on `train`);
/// `explicit` lists (user, item) pairs the users rated low.
pub fn diagnose(
    pipeline: &TwoStage,
    train: &TrainSet,
    users: &[u32],
    truth: &[Vec<u32>],
    explicit: &[(u32, u32)],
    seed: u64,
) -> Diagnostics {
    let ranker = pipeline.ranker();
    let sampler = NegativeSampler::new(&train.user_items);
    struct User {
        rows: Vec<f32>,
        labels: Vec<bool>,
        scores: Vec<f32>,
        random: Vec<f32>,
        explicit: Vec<f32>,
    }
    let per_user: Vec<User> = users
        .par_iter()
        .zip(truth)
        .map(|(&u, wanted)| {
            let q = query(train, u);
            let (items, scores) = pipeline.candidates(&q);
            let recent = pipeline.recent_items(&q);
            let c = Candidates { query: &q, recent: &recent, items: &items, retriever_scores: &scores };
            let mut s = vec![0f32; items.len()];
            ranker.score(&c, &mut s);
            let labels: Vec<bool> = items.iter().map(|i| wanted.binary_search(i).is_ok()).collect();
            let rows = ranker.features().map_or_else(Vec::new, |f| f.feature_rows(&c));
            // Random negatives: as many as the user's positives among the candidates.
            let mut rng = user_rng(seed, 1, u);
            let n_pos = labels.iter().filter(|&&l| l).count();
            let mut random_items = Vec::new();
            while random_items.len() < n_pos {
                match sampler.uniform(u, &mut rng) {
                    Some(i) if wanted.binary_search(&i).is_err() => random_items.push(i),
                    Some(_) => continue,
                    None => break,
                }
            }
            let random = score_items(pipeline, &q, &random_items);
            let bad: Vec<u32> = explicit.iter().filter(|p| p.0 == u).map(|p| p.1).collect();
            let explicit = if n_pos > 0 { score_items(pipeline, &q, &bad) } else { Vec::new() };
            User { rows, labels, scores: s, random, explicit }
        })
        .collect();
    let (mut pos, mut hard, mut random, mut expl) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for u in &per_user {
        for (&s, &l) in u.scores.iter().zip(&u.labels) {
            if l {
                pos.push(s)
            } else {
                hard.push(s)
            }
        }
        random.extend(&u.random);
        expl.extend(&u.explicit);
    }
    let base = auroc(&pos, &hard);
    let mut sensitivity = Vec::new();
    if let (Some(f), Some(base)) = (ranker.features(), base) {
        let w = f.width();
        let rows: Vec<f32> = per_user.iter().flat_map(|u| u.rows.iter().copied()).collect();
        let labels: Vec<bool> = per_user.iter().flat_map(|u| u.labels.iter().copied()).collect();
        let n = labels.len();
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for (name, cols) in f.feature_groups() {
            order.shuffle(&mut rng);
            let mut shuffled = rows.clone();
            for (to, &from) in order.iter().enumerate() {
                shuffled[to * w + cols.start..to * w + cols.end]
                    .copy_from_slice(&rows[from * w + cols.start..from * w + cols.end]);
            }
            let s = f.score_rows(&shuffled);
            let (mut p, mut h) = (Vec::new(), Vec::new());
            for (&v, &l) in s.iter().zip(&labels) {
                if l {
                    p.push(v)
                } else {
                    h.push(v)
                }
            }
            let a = auroc(&p, &h).unwrap_or(0.5);
            sensitivity.push(Sensitivity { feature: name, auroc: a, drop: base - a });
        }
    }
    Diagnostics {
        positives: pos.len(),
        auroc_hard: base,
        auroc_random: auroc(&pos, &random),
        auroc_explicit: auroc(&pos, &expl),
        sensitivity,
    }
}

fn query(train: &TrainSet, u: u32) -> Query<'_> {
    if (u as usize) < train.n_users() {
        Query::from_row(&train.user_items, u)
    } else {
        Query { trained: None, items: &[], weights: &[] }
    }
}

/// The ranker's scores of arbitrary items (with every retriever's score of them).
fn score_items(pipeline: &TwoStage, q: &Query<'_>, items: &[u32]) -> Vec<f32> {
    if items.is_empty() {
        return Vec::new();
    }
    let scores: Vec<Vec<f32>> = pipeline
        .retrievers()
        .iter()
        .map(|r| {
            let mut s = vec![0f32; items.len()];
            r.score_items(q, items, &mut s);
            s
        })
        .collect();
    let mut out = vec![0f32; items.len()];
    let recent = pipeline.recent_items(q);
    pipeline.ranker().score(&Candidates { query: q, recent: &recent, items, retriever_scores: &scores }, &mut out);
    out
}

/// What [`cold_items`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColdItems {
    /// Items made cold (removed from training).
    pub items: usize,
    /// Test users with at least one cold held-out item.
    pub users: usize,
    /// HR@10 of the ranker ranking all cold items (their IDs unknown to it: never in training).
    pub ranker_hr10: f64,
    /// HR@10 of popularity on the same training data: cold items all have none, so this is
    /// a random order (seeded).
    pub popularity_hr10: f64,
    /// HR@10 of popularity counted on the full training data — what the ranker never saw.
    pub full_popularity_hr10: f64,
}

/// Removes a random `fraction` of the catalogue from `train`, fits `spec` on the rest, and ranks
/// the removed items for each test user who went on to one of them (`users` / `truth`):
/// the ranker against popularity, by HR@10.
#[allow(clippy::too_many_arguments)]
pub fn cold_items(
    spec: &TwoStageSpec,
    train: &TrainSet,
    items: &[ItemInfo],
    users: &[u32],
    truth: &[Vec<u32>],
    fraction: f64,
    seed: u64,
    progress: &dyn Progress,
) -> Result<ColdItems> {
    let n = train.n_items();
    let mut counts = vec![0u32; n];
    for &i in train.user_items.indices() {
        counts[i as usize] += 1;
    }
    let mut catalogue: Vec<u32> = (0..n as u32).filter(|&i| counts[i as usize] > 0).collect();
    catalogue.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let take = ((catalogue.len() as f64 * fraction).round() as usize).clamp(1, catalogue.len().max(1));
    let mut cold: Vec<u32> = catalogue.into_iter().take(take).collect();
    cold.sort_unstable();
    let is_cold = |i: u32| cold.binary_search(&i).is_ok();
    let mut warm = Interactions::new();
    for r in train.log.iter().filter(|r| !is_cold(r.item)) {
        warm.push(r);
    }
    let warm = TrainSet::new(warm, train.n_users(), n);
    let pipeline = spec.fit(&warm, tandem_data::Side::items(items), progress)?;
    let hits = |ranked: &[u32], wanted: &[u32]| ranked.iter().take(10).any(|i| wanted.binary_search(i).is_ok());
    // Ties in a random order: item indices follow first appearance in the files, which
    // correlates with popularity, so an index order would leak it.
    let mut shuffled = cold.clone();
    shuffled.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 1));
    let by_count = |c: &[u32]| {
        let mut r = shuffled.clone();
        r.sort_by(|a, b| c[*b as usize].cmp(&c[*a as usize]));
        r
    };
    let popular = by_count(&vec![0u32; n]);
    let full_popular = by_count(&counts);
    let (mut n_users, mut ranker, mut pop, mut full) = (0usize, 0usize, 0usize, 0usize);
    for (&u, wanted) in users.iter().zip(truth) {
        let wanted: Vec<u32> = wanted.iter().copied().filter(|&i| is_cold(i)).collect();
        if wanted.is_empty() {
            continue;
        }
        // Items the user had before (in the full training data) are not candidates.
        let seen =
            |i: &u32| (u as usize) < train.n_users() && train.user_items.row(u as usize).0.binary_search(i).is_ok();
        let fresh = |r: &[u32]| r.iter().copied().filter(|i| !seen(i)).collect::<Vec<u32>>();
        let q = query(&warm, u);
        let candidates = fresh(&cold);
        let s = score_items(&pipeline, &q, &candidates);
        // Ties never count for a held-out item (evaluation's rule).
        let first = held_out_positions(candidates.iter().copied().zip(s.iter().copied()), &wanted);
        n_users += 1;
        ranker += usize::from(first.first().is_some_and(|&p| p <= 10));
        pop += usize::from(hits(&fresh(&popular), &wanted));
        full += usize::from(hits(&fresh(&full_popular), &wanted));
    }
    let rate = |h: usize| h as f64 / n_users.max(1) as f64;
    Ok(ColdItems {
        items: cold.len(),
        users: n_users,
        ranker_hr10: rate(ranker),
        popularity_hr10: rate(pop),
        full_popularity_hr10: rate(full),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_by_hand() {
        assert_eq!(auroc(&[3.0], &[1.0, 2.0]), Some(1.0));
        assert_eq!(auroc(&[0.0], &[1.0, 2.0]), Some(0.0));
        // Positives 2 and 4 against 1, 3, 5: pairs won 1 + 2 = 3 of 6.
        assert_eq!(auroc(&[2.0, 4.0], &[1.0, 3.0, 5.0]), Some(0.5));
        // A tie counts half: 1 win + 0.5 of 2 pairs.
        assert_eq!(auroc(&[2.0], &[2.0, 1.0]), Some(0.75));
        assert_eq!(auroc(&[], &[1.0]), None);
    }
}
