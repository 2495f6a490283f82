//! The retriever-score features every ranker reads: each retriever's score of each example,
//! standardised over training, within the user's list and by rank; and the pooling of several
//! training windows into one example list.

use rayon::prelude::*;
use tandem_models::{Query, Retriever, TrainSet};

use super::lists_by_user;
use crate::features::ItemFeatures;
use crate::mining::Example;
use crate::ranker::Candidates;

/// Each retriever's score of each example (`examples.len() x retrievers.len()`), one query per
/// user.
pub(crate) fn example_scores(examples: &[Example], train: &TrainSet, retrievers: &[&dyn Retriever]) -> Vec<f32> {
    let r = retrievers.len();
    let users: Vec<(u32, Vec<usize>)> = lists_by_user(examples).into_iter().collect();
    let parts: Vec<Vec<(usize, usize, f32)>> = users
        .par_iter()
        .map(|(u, ks)| {
            let q = if (*u as usize) < train.n_users() {
                Query::from_row(&train.user_items, *u)
            } else {
                Query { trained: Some(*u), items: &[], weights: &[] }
            };
            let items: Vec<u32> = ks.iter().map(|&k| examples[k].item).collect();
            let mut out = Vec::with_capacity(ks.len() * r);
            let mut s = vec![0f32; ks.len()];
            for (ri, model) in retrievers.iter().enumerate() {
                model.score_items(&q, &items, &mut s);
                out.extend(ks.iter().zip(&s).map(|(&k, &v)| (k, ri, v)));
            }
            out
        })
        .collect();
    let mut raw = vec![0f32; examples.len() * r];
    for (k, ri, v) in parts.into_iter().flatten() {
        raw[k * r + ri] = v;
    }
    raw
}

/// One training window as a ranker learns from it: its labelled candidates, the training rows
/// before it (the users' histories), the item features of those rows, and the retrievers
/// fitted on them (their scores are features).
#[derive(Clone, Copy)]
pub struct RankerWindow<'a> {
    /// Labelled candidates (user = the user's index in `train`).
    pub examples: &'a [Example],
    /// The rows the retrievers saw.
    pub train: &'a TrainSet,
    /// Item features of `train`.
    pub features: &'a ItemFeatures,
    /// The retrievers fitted on `train`, in pipeline order.
    pub retrievers: &'a [&'a dyn Retriever],
}

/// Every window's examples in one list, each user of window `w` renumbered to
/// `offsets[w] + user` so lists and histories stay apart, with their score features.
pub(crate) struct Pooled {
    pub(crate) examples: Vec<Example>,
    /// The window of each example.
    pub(crate) window: Vec<usize>,
    /// The first pooled user index of each window, then the number of pooled users.
    pub(crate) offsets: Vec<usize>,
    /// Raw retriever scores (`examples x n_scores`) and their standardisation.
    pub(crate) raw: Vec<f32>,
    pub(crate) stats: Vec<ScoreStats>,
    /// Within-list features (`examples x n_scores x 2`).
    pub(crate) list: Vec<f32>,
    pub(crate) n_scores: usize,
}

impl Pooled {
    /// Pools `windows`, scoring with their retrievers when `scores` (all windows must have
    /// as many retrievers as the first).
    pub(crate) fn new(windows: &[RankerWindow<'_>], scores: bool) -> Pooled {
        let n_scores = if scores { windows.first().map_or(0, |w| w.retrievers.len()) } else { 0 };
        let (mut examples, mut window, mut offsets) = (Vec::new(), Vec::new(), Vec::new());
        let (mut raw, mut list) = (Vec::new(), Vec::new());
        let mut offset = 0usize;
        for (w, win) in windows.iter().enumerate() {
            offsets.push(offset);
            let n_users = win.train.n_users().max(win.examples.iter().map(|e| e.user as usize + 1).max().unwrap_or(0));
            if n_scores > 0 {
                let r = example_scores(win.examples, win.train, &win.retrievers[..n_scores]);
                list.extend(list_features_by_user(win.examples, &r, n_scores));
                raw.extend(r);
            }
            examples.extend(win.examples.iter().map(|e| Example { user: (offset + e.user as usize) as u32, ..*e }));
            window.extend(std::iter::repeat_n(w, win.examples.len()));
            offset += n_users;
        }
        offsets.push(offset);
        let stats = standardisation(&raw, n_scores);
        Pooled { examples, window, offsets, raw, stats, list, n_scores }
    }

    /// The score features of example `k`.
    pub(crate) fn score_features(&self, k: usize, out: &mut [f32]) {
        let n = self.n_scores;
        for r in 0..n {
            let f = &mut out[SCORE_FEATURES * r..SCORE_FEATURES * (r + 1)];
            f[0] = self.stats[r].apply(self.raw[k * n + r]);
            f[1..].copy_from_slice(&self.list[(k * n + r) * 2..(k * n + r) * 2 + 2]);
        }
    }

    /// Each pooled user as (window, user index in the window), in pooled order.
    pub(crate) fn users(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.offsets.windows(2).enumerate().flat_map(|(w, o)| (0..o[1] - o[0]).map(move |u| (w, u)))
    }
}

/// Features per retriever score: its standardisation over all training scores, its
/// standardisation within the user's list, and 1 / log2(2 + its rank in the user's list) —
/// the last two do not depend on how a user's scores are scaled, which differs between users
/// and between the fit that trained the ranker and the one it ranks for.
pub(crate) const SCORE_FEATURES: usize = 3;

/// Within-list z-score and rank feature of each score of one user's list.
pub(crate) fn list_features(scores: &[f32]) -> Vec<[f32; 2]> {
    let finite: Vec<f64> = scores.iter().filter(|s| s.is_finite()).map(|&s| s as f64).collect();
    let mean = finite.iter().sum::<f64>() / finite.len().max(1) as f64;
    let std = (finite.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / finite.len().max(1) as f64).sqrt();
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut out = vec![[0f32; 2]; scores.len()];
    for (rank, &k) in order.iter().enumerate() {
        let s = scores[k];
        let z = if s.is_finite() && std > 1e-12 { ((s as f64 - mean) / std).clamp(-10.0, 10.0) as f32 } else { 0.0 };
        let r = if s.is_finite() { 1.0 / (2.0 + rank as f32).log2() } else { 0.0 };
        out[k] = [z, r];
    }
    out
}

/// [`list_features`] of every example (`examples x retrievers x 2`), a user's examples
/// forming its list.
fn list_features_by_user(examples: &[Example], raw: &[f32], r: usize) -> Vec<f32> {
    let mut out = vec![0f32; examples.len() * r * 2];
    if r == 0 {
        return out;
    }
    for ks in lists_by_user(examples).values() {
        for ri in 0..r {
            let scores: Vec<f32> = ks.iter().map(|&k| raw[k * r + ri]).collect();
            for (&k, f) in ks.iter().zip(list_features(&scores)) {
                out[(k * r + ri) * 2..(k * r + ri) * 2 + 2].copy_from_slice(&f);
            }
        }
    }
    out
}

/// Mean and standard deviation of one retriever's finite scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ScoreStats {
    pub(crate) mean: f32,
    pub(crate) std: f32,
}

impl ScoreStats {
    /// The standardised score (0 for a missing, non-finite one).
    pub(crate) fn apply(&self, s: f32) -> f32 {
        if s.is_finite() {
            ((s - self.mean) / self.std).clamp(-10.0, 10.0)
        } else {
            0.0
        }
    }
}

fn standardisation(raw: &[f32], r: usize) -> Vec<ScoreStats> {
    (0..r)
        .map(|ri| {
            let v: Vec<f64> = raw.iter().skip(ri).step_by(r).filter(|s| s.is_finite()).map(|&s| s as f64).collect();
            let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
            let var = v.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / v.len().max(1) as f64;
            ScoreStats { mean: mean as f32, std: var.sqrt().max(1e-6) as f32 }
        })
        .collect()
}

/// Each candidate's retriever-score features (`SCORE_FEATURES` per retriever): standardised
/// with the training `stats`, within the list, by rank.
pub(crate) fn score_features(stats: &[ScoreStats], c: &Candidates<'_>) -> Vec<Vec<f32>> {
    let n = stats.len();
    let missing = vec![f32::NAN; c.items.len()];
    let scores: Vec<&[f32]> = (0..n).map(|r| c.retriever_scores.get(r).map_or(&missing[..], |s| &s[..])).collect();
    let list: Vec<Vec<[f32; 2]>> = scores.iter().map(|s| list_features(s)).collect();
    (0..c.items.len())
        .map(|k| {
            let mut z = vec![0f32; SCORE_FEATURES * n];
            for r in 0..n {
                let f = &mut z[SCORE_FEATURES * r..SCORE_FEATURES * (r + 1)];
                f[0] = stats[r].apply(scores[r].get(k).copied().unwrap_or(f32::NAN));
                f[1..].copy_from_slice(&list[r][k]);
            }
            z
        })
        .collect()
}
