//! What the rankers share: the retriever-score features (standardised over training, within
//! the user's list, and by rank), and the tensors of their heads and item features.

use std::collections::HashMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use rayon::prelude::*;
use tandem_models::artifact::{Tensor, TensorReader, Tensors};
use tandem_models::fit::{self, EpochTrainer, Epochs};
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
fn example_scores(examples: &[Example], train: &TrainSet, retrievers: &[&dyn Retriever]) -> Vec<f32> {
    let r = retrievers.len();
    let users: Vec<(u32, Vec<usize>)> = lists_by_user(examples).into_iter().collect();
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
    // Genre ids index per-genre tables; only their number matters after training.
    t.insert("n_genres".into(), Tensor::u32(vec![f.genre_names.len() as u32]));
}

/// Reads what [`put_features`] wrote.
pub(crate) fn read_features(r: &TensorReader<'_>) -> tandem_models::Result<(ItemFeatures, Vec<ScoreStats>)> {
    let vec = |name: &str| r.f32(name).map(|(_, v)| v);
    let stats = vec("score_stats")?.chunks_exact(2).map(|p| ScoreStats { mean: p[0], std: p[1] }).collect();
    let features = ItemFeatures {
        year_bucket: r.u32("year_bucket")?,
        year_bounds: vec("year_bounds")?.iter().map(|&y| y as i32).collect(),
        genres: read_lists(r, "genres")?,
        genre_names: (0..r.u32("n_genres")?.first().copied().unwrap_or(0)).map(|g| format!("genre {g}")).collect(),
        log_pop: vec("log_pop")?,
        log_pop_zero: vec("log_pop_zero")?.first().copied().unwrap_or(0.0),
        counts: r.u32("counts")?,
    };
    Ok((features, stats))
}

/// The error of a ranker parameter outside its allowed values.
pub(crate) fn invalid(name: &'static str, value: impl std::fmt::Debug, allowed: &'static str) -> ModelError {
    ModelError::invalid(name, value, allowed)
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

/// What a ranker's head is trained to minimise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RankLoss {
    /// Pointwise: weighted BCE of every example on its own (nanoRecSys).
    #[default]
    Bce,
    /// Listwise (ListNet): a softmax over each user's examples, the cross-entropy of its
    /// positives (each weighted, averaged per list) — the order within a user's list is what
    /// the metrics read, and this loss cannot be lowered by moving a whole list up or down.
    /// Negatives' weights do not apply.
    Listwise,
}

impl RankLoss {
    /// What the training driver shuffles and packs into batches: example indices grouped
    /// into units (ranges of the returned order) — each example alone (`bce`), or each user's
    /// whole list (`listwise`), so that batches hold whole lists.
    fn units(self, examples: &[Example]) -> (Vec<usize>, Vec<std::ops::Range<usize>>) {
        match self {
            RankLoss::Bce => ((0..examples.len()).collect(), (0..examples.len()).map(|k| k..k + 1).collect()),
            RankLoss::Listwise => {
                let mut lists: Vec<Vec<usize>> = lists_by_user(examples).into_values().collect();
                // HashMap order is arbitrary: a fixed order before the driver's seeded shuffle.
                lists.sort_unstable_by_key(|l| l[0]);
                let (mut order, mut units) = (Vec::with_capacity(examples.len()), Vec::with_capacity(lists.len()));
                for l in lists {
                    units.push(order.len()..order.len() + l.len());
                    order.extend(l);
                }
                (order, units)
            }
        }
    }

    /// The batch's summed loss, its total weight (the loss's denominator), and the logits'
    /// gradient of the mean (`logits[j]` belongs to `examples[batch[j]]`).
    pub(crate) fn batch_loss(self, examples: &[Example], batch: &[usize], logits: &[f32]) -> (f64, f64, Vec<f32>) {
        match self {
            RankLoss::Bce => weighted_bce(examples, batch, logits),
            RankLoss::Listwise => listwise_softmax(examples, batch, logits),
        }
    }
}

/// A ranker's head as the training driver sees it: units of examples (see
/// [`RankLoss::units`]) and the ranker's own batch step.
struct Head<'a, F> {
    order: Vec<usize>,
    units: Vec<std::ops::Range<usize>>,
    batch: Vec<usize>,
    rng: &'a mut rand_chacha::ChaCha8Rng,
    train_batch: F,
}

impl<F> EpochTrainer for Head<'_, F>
where
    F: FnMut(&[usize], &mut rand_chacha::ChaCha8Rng) -> (f64, f64),
{
    type Unit = std::ops::Range<usize>;
    type Model = ();

    fn units(&mut self, _epoch: usize) -> Vec<Self::Unit> {
        self.units.clone()
    }

    fn unit_len(unit: &Self::Unit) -> usize {
        unit.len()
    }

    fn step(&mut self, batch: &[Self::Unit]) -> (f64, f64) {
        self.batch.clear();
        for r in batch {
            self.batch.extend_from_slice(&self.order[r.clone()]);
        }
        (self.train_batch)(&self.batch, self.rng)
    }

    fn snapshot(&self) {}
}

/// Trains a ranker's head for `epochs` epochs of `loss`'s batches over `examples` through the
/// training driver: `train_batch(batch, rng)` takes one step and returns the batch's summed loss
/// and weight. Batches of one example are skipped (batch norm needs two rows).
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_epochs(
    model: &'static str,
    epochs: usize,
    loss: RankLoss,
    batch_size: usize,
    examples: &[Example],
    rng: &mut rand_chacha::ChaCha8Rng,
    progress: &dyn tandem_data::Progress,
    train_batch: impl FnMut(&[usize], &mut rand_chacha::ChaCha8Rng) -> (f64, f64),
) -> tandem_models::Result<()> {
    let (order, units) = loss.units(examples);
    let plan = Epochs { min_batch: 2, ..Epochs::new(model, epochs, batch_size, rng.random()) };
    let mut head = Head { order, units, batch: Vec::new(), rng, train_batch };
    fit::train(&plan, &mut head, progress, None)?;
    Ok(())
}

/// Each user's example indices.
fn lists_by_user(examples: &[Example]) -> HashMap<u32, Vec<usize>> {
    let mut by_user: HashMap<u32, Vec<usize>> = HashMap::new();
    for (k, e) in examples.iter().enumerate() {
        by_user.entry(e.user).or_default().push(k);
    }
    by_user
}

/// [`RankLoss::Listwise`] over the runs of one user in `batch` (lists are contiguous): per list
/// with positives P, `-(1/|P|) sum_p w_p log softmax(logits)_p`; the total weight is the number
/// of such lists.
fn listwise_softmax(examples: &[Example], batch: &[usize], logits: &[f32]) -> (f64, f64, Vec<f32>) {
    let mut grads = vec![0f32; batch.len()];
    let (mut loss, mut lists) = (0.0f64, 0usize);
    let mut start = 0;
    while start < batch.len() {
        let user = examples[batch[start]].user;
        let end = start + batch[start..].iter().take_while(|&&k| examples[k].user == user).count();
        let run = start..end;
        let n_pos = run.clone().filter(|&j| examples[batch[j]].label > 0.0).count();
        if n_pos > 0 {
            lists += 1;
            let max = run.clone().map(|j| logits[j]).fold(f32::NEG_INFINITY, f32::max);
            let z: f64 = run.clone().map(|j| ((logits[j] - max) as f64).exp()).sum();
            let mut w_sum = 0.0f64;
            for j in run.clone() {
                let e = &examples[batch[j]];
                if e.label > 0.0 {
                    let w = e.weight as f64 / n_pos as f64;
                    w_sum += w;
                    loss -= w * ((logits[j] - max) as f64 - z.ln());
                    grads[j] -= w as f32;
                }
            }
            for j in run {
                grads[j] += (w_sum * ((logits[j] - max) as f64).exp() / z) as f32;
            }
        }
        start = end;
    }
    let total = lists.max(1) as f32;
    grads.iter_mut().for_each(|g| *g /= total);
    (loss, lists as f64, grads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mining::Source;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn ex(user: u32, label: f32, weight: f32) -> Example {
        Example { user, item: 0, label, weight, source: if label > 0.0 { Source::Positive } else { Source::Hard } }
    }

    /// Two lists: user 0 with logits [0, ln 3] (positive: the second), user 1 with no positive
    /// (ignored). softmax = [1/4, 3/4]: loss = -ln(3/4), gradient = softmax - target.
    #[test]
    fn listwise_matches_a_hand_computed_case() {
        let examples = [ex(0, 0.0, 1.0), ex(0, 1.0, 1.0), ex(1, 0.0, 1.0), ex(1, 0.0, 1.0)];
        let (loss, weight, g) = RankLoss::Listwise.batch_loss(&examples, &[0, 1, 2, 3], &[0.0, 3f32.ln(), 5.0, 1.0]);
        assert!((loss - -(0.75f64).ln()).abs() < 1e-6, "{loss}");
        assert_eq!(weight, 1.0, "one list with a positive");
        let want = [0.25, -0.25, 0.0, 0.0];
        assert!(g.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{g:?}");
        // Two positives of weights 1 and 3 in one list of three equal logits: each p = 1/3;
        // loss = -(1/2)(1 + 3) ln(1/3); d/dlogit = 2 * 1/3 - w/2 for positives, 2/3 for the negative.
        let examples = [ex(0, 1.0, 1.0), ex(0, 1.0, 3.0), ex(0, 0.0, 1.0)];
        let (loss, _, g) = RankLoss::Listwise.batch_loss(&examples, &[0, 1, 2], &[0.0; 3]);
        assert!((loss - 2.0 * 3f64.ln()).abs() < 1e-6, "{loss}");
        let want = [2.0 / 3.0 - 0.5, 2.0 / 3.0 - 1.5, 2.0 / 3.0];
        assert!(g.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{g:?}");
    }

    #[test]
    fn listwise_batches_keep_lists_whole_and_cover_every_example() {
        let examples: Vec<Example> = (0..50).map(|k| ex(k % 7, (k % 5 == 0) as u8 as f32, 1.0)).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut batches: Vec<Vec<usize>> = Vec::new();
        let record = |b: &[usize], _: &mut ChaCha8Rng| {
            batches.push(b.to_vec());
            (0.0, 1.0)
        };
        train_epochs("t", 1, RankLoss::Listwise, 10, &examples, &mut rng, &tandem_data::NoProgress, record).unwrap();
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
        for b in &batches {
            assert!(b.len() >= 10 || b == batches.last().unwrap(), "lists packed up to the batch size");
            // A user's examples are contiguous and all in one batch.
            let users: Vec<u32> = b.iter().map(|&k| examples[k].user).collect();
            let mut runs = users.clone();
            runs.dedup();
            let mut distinct = runs.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(runs.len(), distinct.len(), "{users:?}");
            for u in distinct {
                assert_eq!(users.iter().filter(|&&x| x == u).count(), examples.iter().filter(|e| e.user == u).count());
            }
        }
        let mut bce = 0;
        let count = |_: &[usize], _: &mut ChaCha8Rng| {
            bce += 1;
            (0.0, 1.0)
        };
        train_epochs("t", 1, RankLoss::Bce, 10, &examples, &mut rng, &tandem_data::NoProgress, count).unwrap();
        assert_eq!(bce, 5);
    }
}
