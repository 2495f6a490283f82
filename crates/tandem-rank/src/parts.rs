//! What the rankers share: the retriever-score features (standardised over training, within
//! the user's list, and by rank), and the tensors of their heads and item features.

use std::collections::HashMap;

use rayon::prelude::*;
use tandem_models::artifact::{Tensor, TensorReader, Tensors};
use tandem_models::{Query, Retriever, TrainSet};
use tandem_neural::dense::Linear;
use tandem_neural::norm::{BatchNorm, NormMlp};

use tandem_models::ModelError;
use tandem_neural::dense::bce_with_logit;

use crate::features::ItemFeatures;
use crate::mining::Example;
use crate::ranker::Candidates;

/// Each retriever's score of each example (`examples.len() x retrievers.len()`), one query per
/// user.
pub(crate) fn example_scores(examples: &[Example], train: &TrainSet, retrievers: &[&dyn Retriever]) -> Vec<f32> {
    let r = retrievers.len();
    let mut by_user: HashMap<u32, Vec<usize>> = HashMap::new();
    for (k, e) in examples.iter().enumerate() {
        by_user.entry(e.user).or_default().push(k);
    }
    let users: Vec<(u32, Vec<usize>)> = by_user.into_iter().collect();
    let parts: Vec<Vec<(usize, usize, f32)>> = users
        .par_iter()
        .map(|(u, ks)| {
            let q = if (*u as usize) < train.n_users() {
                Query::from_row(&train.user_items, *u)
            } else {
                Query { user: Some(*u), items: &[], weights: &[] }
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

/// Features per retriever score: its standardisation over all training scores, its
/// standardisation within the user's list, and 1 / log2(2 + its rank in the user's list) —
/// the last two do not depend on how a user's scores are scaled, which differs between users
/// and between the fit that trained the ranker and the one it ranks for.
pub(crate) const SCORE_FEATURES: usize = 3;

/// Within-list z-score and rank feature of each score of one user's list.
fn list_features(scores: &[f32]) -> Vec<[f32; 2]> {
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
pub(crate) fn list_features_by_user(examples: &[Example], raw: &[f32], r: usize) -> Vec<f32> {
    let mut out = vec![0f32; examples.len() * r * 2];
    if r == 0 {
        return out;
    }
    let mut by_user: HashMap<u32, Vec<usize>> = HashMap::new();
    for (k, e) in examples.iter().enumerate() {
        by_user.entry(e.user).or_default().push(k);
    }
    for ks in by_user.values() {
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

pub(crate) fn standardisation(raw: &[f32], r: usize) -> Vec<ScoreStats> {
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

/// Lists of u32 as two tensors: `NAME.offsets` and `NAME.items`.
pub(crate) fn put_lists(t: &mut Tensors, name: &str, lists: &[Vec<u32>]) {
    let mut offsets = vec![0u32];
    for l in lists {
        offsets.push(offsets.last().copied().unwrap_or(0) + l.len() as u32);
    }
    t.insert(format!("{name}.offsets"), Tensor::u32(offsets));
    t.insert(format!("{name}.items"), Tensor::u32(lists.concat()));
}

/// Reads what [`put_lists`] wrote.
pub(crate) fn read_lists(r: &TensorReader<'_>, name: &str) -> tandem_models::Result<Vec<Vec<u32>>> {
    let offsets = r.u32(&format!("{name}.offsets"))?;
    let flat = r.u32(&format!("{name}.items"))?;
    let bad = || tandem_models::ModelError::Artifact { path: name.to_string(), message: "offsets out of range".into() };
    offsets.windows(2).map(|w| flat.get(w[0] as usize..w[1] as usize).map(<[u32]>::to_vec).ok_or_else(bad)).collect()
}

/// A ranker head's tensors (`head.L.*`, `head.out.*`).
pub(crate) fn put_head(t: &mut Tensors, head: &NormMlp) {
    for (l, (linear, bn)) in head.hidden.iter().enumerate() {
        let p = |s: &str| format!("head.{l}.{s}");
        t.insert(p("w"), Tensor::matrix(linear.n_in, linear.n_out, linear.w.value.clone()));
        t.insert(p("b"), Tensor::f32(linear.b.value.clone()));
        t.insert(p("gamma"), Tensor::f32(bn.gamma.value.clone()));
        t.insert(p("beta"), Tensor::f32(bn.beta.value.clone()));
        t.insert(p("mean"), Tensor::f32(bn.running_mean.clone()));
        t.insert(p("var"), Tensor::f32(bn.running_var.clone()));
    }
    t.insert("head.out.w".into(), Tensor::f32(head.out.w.value.clone()));
    t.insert("head.out.b".into(), Tensor::f32(head.out.b.value.clone()));
}

/// Reads what [`put_head`] wrote, for hidden widths `hidden`.
pub(crate) fn read_head(r: &TensorReader<'_>, hidden: &[usize], dropout: f32) -> tandem_models::Result<NormMlp> {
    let vec = |name: &str| r.f32(name).map(|(_, v)| v);
    let mut layers = Vec::new();
    let mut n_in = r.matrix("head.0.w")?.rows();
    for (l, &w) in hidden.iter().enumerate() {
        let p = |s: &str| format!("head.{l}.{s}");
        let linear = Linear::from_parts(n_in, w, vec(&p("w"))?, vec(&p("b"))?);
        let bn = BatchNorm::from_parts(vec(&p("gamma"))?, vec(&p("beta"))?, vec(&p("mean"))?, vec(&p("var"))?);
        layers.push((linear, bn));
        n_in = w;
    }
    let out = Linear::from_parts(n_in, 1, vec("head.out.w")?, vec("head.out.b")?);
    Ok(NormMlp::from_parts(layers, out, dropout))
}

/// Item features and score statistics as tensors.
pub(crate) fn put_features(t: &mut Tensors, f: &ItemFeatures, stats: &[ScoreStats]) {
    t.insert("score_stats".into(), Tensor::f32(stats.iter().flat_map(|s| [s.mean, s.std]).collect()));
    t.insert("year_bucket".into(), Tensor::u32(f.year_bucket.clone()));
    t.insert("year_bounds".into(), Tensor::f32(f.year_bounds.iter().map(|&y| y as f32).collect()));
    t.insert("log_pop".into(), Tensor::f32(f.log_pop.clone()));
    t.insert("log_pop_zero".into(), Tensor::f32(vec![f.log_pop_zero]));
    t.insert("counts".into(), Tensor::u32(f.counts.clone()));
    put_lists(t, "genres", &f.genres);
}

/// Reads what [`put_features`] wrote.
pub(crate) fn read_features(r: &TensorReader<'_>) -> tandem_models::Result<(ItemFeatures, Vec<ScoreStats>)> {
    let vec = |name: &str| r.f32(name).map(|(_, v)| v);
    let stats = vec("score_stats")?.chunks_exact(2).map(|p| ScoreStats { mean: p[0], std: p[1] }).collect();
    let features = ItemFeatures {
        year_bucket: r.u32("year_bucket")?,
        year_bounds: vec("year_bounds")?.iter().map(|&y| y as i32).collect(),
        genres: read_lists(r, "genres")?,
        genre_names: Vec::new(),
        log_pop: vec("log_pop")?,
        log_pop_zero: vec("log_pop_zero")?.first().copied().unwrap_or(0.0),
        counts: r.u32("counts")?,
    };
    Ok((features, stats))
}

/// The error of a ranker parameter outside its allowed values.
pub(crate) fn invalid(name: &'static str, value: impl std::fmt::Debug, allowed: &'static str) -> ModelError {
    ModelError::InvalidParameter { name, value: format!("{value:?}"), allowed }
}

/// The bounds both rankers put on their head and schedule.
pub(crate) fn check_head(
    hidden: &[usize],
    dropout: f32,
    epochs: usize,
    batch_size: usize,
    learning_rate: f32,
) -> tandem_models::Result<()> {
    if hidden.is_empty() || hidden.iter().any(|&w| w == 0 || w > 8192) {
        return Err(invalid("hidden", hidden, "one or more widths in 1..=8192"));
    }
    if !(0.0..1.0).contains(&dropout) {
        return Err(invalid("dropout", dropout, "0 <= dropout < 1"));
    }
    if !(1..=10_000).contains(&epochs) {
        return Err(invalid("epochs", epochs, "1..=10000"));
    }
    if !(2..=65_536).contains(&batch_size) {
        return Err(invalid("batch_size", batch_size, "2..=65536 (batch norm needs two rows)"));
    }
    if !(learning_rate > 0.0 && learning_rate <= 10.0) {
        return Err(invalid("learning_rate", learning_rate, "0 < learning_rate <= 10"));
    }
    Ok(())
}

/// The weighted BCE of a batch (`logits[j]` for `examples[batch[j]]`): summed weighted loss,
/// total weight, and the logits' gradient of the weighted mean.
pub(crate) fn weighted_bce(examples: &[Example], batch: &[usize], logits: &[f32]) -> (f64, f64, Vec<f32>) {
    let total: f32 = batch.iter().map(|&k| examples[k].weight).sum::<f32>().max(1e-12);
    let mut loss = 0.0;
    let grads = batch
        .iter()
        .zip(logits)
        .map(|(&k, &s)| {
            let e = &examples[k];
            let (l, g) = bce_with_logit(s, e.label);
            loss += (l * e.weight) as f64;
            g * e.weight / total
        })
        .collect();
    (loss, total as f64, grads)
}
