//! The history model (the H&M "pure" baseline): an item's score comes from its cosine
//! similarity to the user's last `history` items, weighted by their recency, plus a learned
//! per-item bias and a small per-item network over those similarity features.
//!
//! For candidate item `i` and history items `h_0` (most recent) .. `h_{k-1}`, with learned item
//! embeddings `e`, cosines `c_ij = cos(e_i, e_hj)` and learned recency weights `a_j`:
//!
//! ```text
//! phi_i = [max_j a_j c_ij, mean_j c_ij, 1 if i is in the history else 0]
//! score_i = b_i + (g + v_i) . phi_i
//! ```
//!
//! `g` is shared, `b_i` and `v_i` are the item's own. Training examples are every position of
//! each user's time-ordered training rows (the item there, with the items before it as history).
//! `loss: bce` is binary log loss over *all* items plus a soft dice term; `loss: sampled_softmax`
//! is a softmax over the target plus random items up to `candidates`. Validation (the pipeline's)
//! always ranks all items.

use std::ops::Bound::{Excluded, Included};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tandem_data::Progress;
use tandem_models::artifact::{Artifact, Tensor, TensorData, TensorReader, Tensors};
use tandem_models::fit::{self, EpochTrainer, Epochs};
use tandem_models::optim::{Optimizer, OptimizerKind};
use tandem_models::{dot, within, Factors, ModelError, Query, Result, Retriever, TrainSet};

use crate::dense::{bce_with_logit, gemm, softmax_row, Adam, Param};
use crate::embedding::{Embedding, RowGrads};
use crate::Validate;
use tandem_models::kind::{saved_params, Dim, Fit, ModelParams};

/// Similarity features per candidate.
const FEATURES: usize = 3;
/// Padding of stored histories.
const NONE: u32 = u32::MAX;
/// Examples of a batch one task computes (the batch's tasks run in parallel).
const EXAMPLES_PER_TASK: usize = 16;

/// How the history model is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryLoss {
    /// Binary log loss over every item (the positive weighted as all negatives together), plus
    /// `dice` times a soft dice loss.
    Bce,
    /// Softmax over the target and random items, `candidates` in all.
    SampledSoftmax,
}

/// History-model parameters.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryParams {
    /// Item embedding width (default 64).
    pub factors: usize,
    /// History length: the user's last items scored against (default 16).
    pub history: usize,
    /// `bce` (all items + dice) or `sampled_softmax` (default `bce`).
    pub loss: HistoryLoss,
    /// bce: weight of the dice term (default 1).
    pub dice: f32,
    /// sampled_softmax: candidates per example, the target included (default 300).
    pub candidates: usize,
    /// Epochs (default 10).
    pub epochs: usize,
    /// Examples per batch (default 64).
    pub batch_size: usize,
    /// Adam learning rate (default 0.005).
    pub learning_rate: f32,
    /// Standard deviation of the initial embeddings (default 0.1).
    pub init_std: f32,
    /// With validation: stop after this many epochs without improvement; 0 never stops (default 3).
    pub patience: usize,
    /// Seed (default 42).
    pub seed: u64,
}

impl Default for HistoryParams {
    fn default() -> Self {
        HistoryParams {
            factors: 64,
            history: 16,
            loss: HistoryLoss::Bce,
            dice: 1.0,
            candidates: 300,
            epochs: 10,
            batch_size: 64,
            learning_rate: 0.005,
            init_std: 0.1,
            patience: 3,
            seed: 42,
        }
    }
}

impl HistoryParams {
    fn width(&self) -> usize {
        self.factors + 1 + FEATURES
    }

    /// Fits the model.
    pub fn fit(&self, train: &TrainSet, progress: &dyn Progress) -> Result<HistoryModel> {
        self.fit_with(train, progress, None)
    }

    /// Fits, calling `validate` (when given) after every epoch: the best epoch is kept and
    /// training stops after `patience` epochs without improvement.
    pub fn fit_with(
        &self,
        train: &TrainSet,
        progress: &dyn Progress,
        validate: Option<&mut Validate<'_>>,
    ) -> Result<HistoryModel> {
        self.check()?;
        let n = train.n_items();
        let sequences = train.sequences();
        // (user, position): the item at `position` with the items before it as history.
        let examples: Vec<(u32, u32)> =
            sequences.iter().enumerate().flat_map(|(u, s)| (1..s.len() as u32).map(move |p| (u as u32, p))).collect();
        if examples.is_empty() {
            return Err(ModelError::EmptyTrainingData { model: "history" });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let (d, w, l) = (self.factors, self.width(), self.history);
        let mut init = Factors::normal(n, w, self.init_std, &mut rng);
        for r in 0..n {
            init.row_mut(r)[d..].fill(0.0);
        }
        let histories = last_items(&sequences, l);
        let mut run = Run {
            p: self,
            rows: Embedding::from_factors(&init),
            // g starts at (1, 0, 1): the best recency-weighted cosine and repeats count from the start.
            globals: Param::new([1.0, 0.0, 1.0].into_iter().chain((0..l).map(|_| 1.0)).collect()),
            grads: RowGrads::new(w),
            opt: Optimizer { kind: OptimizerKind::Adam, lr: self.learning_rate, weight_decay: 0.0 },
            adam: Adam { lr: self.learning_rate, weight_decay: 0.0, decoupled: false },
            histories,
            sequences,
            examples,
            rng,
            n_items: n,
        };
        let plan =
            Epochs { patience: self.patience, ..Epochs::new("history", self.epochs, self.batch_size, self.seed) };
        Ok(fit::train_retriever(&plan, &mut run, progress, validate)?.model)
    }

    /// Loss of one example; adds `scale` times its gradients to `grads` (rows) and `dglobal`
    /// (the globals').
    #[allow(clippy::too_many_arguments)]
    fn example(
        &self,
        globals: &[f32],
        hist_rows: &Rows,
        cands: &Rows,
        target: u32,
        scale: f32,
        grads: &mut RowGrads,
        dglobal: &mut [f32],
    ) -> f64 {
        let (d, w) = (self.factors, self.width());
        let (candidates, hist) = (&cands.ids[..], &hist_rows.ids[..]);
        let (hn, hnorm) = (&hist_rows.unit, &hist_rows.norms);
        let scores = Features::compute(&cands.unit, hn, d, globals, &cands.raw, w, candidates, hist);
        let (m, k) = (candidates.len(), hist.len());
        // dL/dscore per candidate.
        let mut dscore = scores.score.clone();
        let mut loss = 0.0f64;
        match self.loss {
            HistoryLoss::Bce => {
                // The positive weighs as much as all negatives together: with a plain mean over
                // the catalogue the scores all sink and the ranking stops learning.
                let (mut p_sum, mut py) = (0.0f32, 0.0f32);
                let mut probs = Vec::with_capacity(m);
                let negative_weight = 1.0 / (m as f32 - 1.0).max(1.0);
                for (c, &i) in candidates.iter().enumerate() {
                    let y = if i == target { 1.0 } else { 0.0 };
                    let (l, g) = bce_with_logit(scores.score[c], y);
                    let weight = if i == target { 1.0 } else { negative_weight };
                    loss += (l * weight) as f64;
                    dscore[c] = g * weight;
                    let p = g + y;
                    probs.push(p);
                    p_sum += p;
                    py += p * y;
                }
                // Soft dice 1 - (2 sum p y + 1) / (sum p + sum y + 1), one positive.
                let denom = p_sum + 1.0 + 1.0;
                loss += (self.dice * (1.0 - (2.0 * py + 1.0) / denom)) as f64;
                for (c, &i) in candidates.iter().enumerate() {
                    let y = if i == target { 1.0 } else { 0.0 };
                    let ddice = -(2.0 * y * denom - (2.0 * py + 1.0)) / (denom * denom);
                    dscore[c] += self.dice * ddice * probs[c] * (1.0 - probs[c]);
                }
            }
            HistoryLoss::SampledSoftmax => {
                softmax_row(&mut dscore);
                let t = candidates.iter().position(|&i| i == target).expect("the target is a candidate");
                loss += -(dscore[t].max(1e-30).ln()) as f64;
                dscore[t] -= 1.0;
            }
        }
        // Back through score = b + (g + v) . phi. A candidate's cosines reach its score through
        // the best one (phi_0) and the mean (phi_1) only, so d cos is one entry plus a constant
        // per row: d cn_c = a_c hn_best + b_c sum_j hn_j and d hn_j = sum over the candidates
        // whose best is j of a_c cn_c, plus sum_c b_c cn_c. That is O(m d), where the dense
        // products dC hn and dC^T cn would cost O(m k d) each.
        let g = globals;
        let mut hsum = vec![0f32; d];
        for h in hn.chunks_exact(d) {
            hsum.iter_mut().zip(h).for_each(|(s, x)| *s += x);
        }
        let mut dhn = vec![0f32; k * d];
        let mut mean_part = vec![0f32; d];
        let mut dy = vec![0f32; d];
        let mut row_grad = vec![0f32; w];
        for c in 0..m {
            let ds = dscore[c] * scale;
            let phi = &scores.phi[c * FEATURES..(c + 1) * FEATURES];
            let v = &cands.raw[c * w + d + 1..(c + 1) * w];
            for f in 0..FEATURES {
                dglobal[f] += ds * phi[f];
            }
            row_grad[..d].fill(0.0);
            if k > 0 {
                let j = scores.best[c];
                let dphi1 = ds * (g[0] + v[0]);
                dglobal[FEATURES + j] += dphi1 * scores.cos[c * k + j];
                let (a, b) = (dphi1 * g[FEATURES + j], ds * (g[1] + v[1]) / k as f32);
                let y = &cands.unit[c * d..(c + 1) * d];
                let hj = &hn[j * d..(j + 1) * d];
                for ((o, &h), &s) in dy.iter_mut().zip(hj).zip(&hsum) {
                    *o = a * h + b * s;
                }
                for ((o, mp), &x) in dhn[j * d..(j + 1) * d].iter_mut().zip(mean_part.iter_mut()).zip(y) {
                    *o += a * x;
                    *mp += b * x;
                }
                unit_backward(y, &dy, cands.norms[c], &mut row_grad[..d]);
            }
            row_grad[d] = ds;
            for f in 0..FEATURES {
                row_grad[d + 1 + f] = ds * phi[f];
            }
            grads.add(candidates[c], &row_grad, 1.0);
        }
        if k > 0 {
            row_grad[d..].fill(0.0);
            for (r, &i) in hist.iter().enumerate() {
                let dh = &mut dhn[r * d..(r + 1) * d];
                dh.iter_mut().zip(&mean_part).for_each(|(o, m)| *o += m);
                unit_backward(&hn[r * d..(r + 1) * d], dh, hnorm[r], &mut row_grad[..d]);
                grads.add(i, &row_grad, 1.0);
            }
        }
        loss
    }
}

/// Through `y = x / |x|`: the gradient of `x` given `dy`, with `norm = |x|`.
fn unit_backward(y: &[f32], dy: &[f32], norm: f32, out: &mut [f32]) {
    let (yd, inv) = (dot(y, dy), 1.0 / norm);
    for ((o, &a), &b) in out.iter_mut().zip(dy).zip(y) {
        *o = (a - b * yd) * inv;
    }
}

/// Rows an example reads: their ids, raw rows (`w` wide) and unit-length embeddings.
struct Rows {
    ids: Vec<u32>,
    raw: Vec<f32>,
    unit: Vec<f32>,
    norms: Vec<f32>,
}

impl Rows {
    fn read(table: &Embedding, ids: Vec<u32>, w: usize, d: usize) -> Rows {
        let mut raw = vec![0f32; ids.len() * w];
        for (k, &i) in ids.iter().enumerate() {
            table.read(i as usize, &mut raw[k * w..(k + 1) * w]);
        }
        let (unit, norms) = normalised(&raw, w, d);
        Rows { ids, raw, unit, norms }
    }
}

/// Unit-length copies of the first `d` columns of `rows` (`w` wide) and their norms.
fn normalised(rows: &[f32], w: usize, d: usize) -> (Vec<f32>, Vec<f32>) {
    let mut unit = Vec::with_capacity(rows.len() / w * d);
    let mut norms = Vec::with_capacity(rows.len() / w);
    for row in rows.chunks_exact(w) {
        let n = row[..d].iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        norms.push(n);
        unit.extend(row[..d].iter().map(|v| v / n));
    }
    (unit, norms)
}

/// Cosines, features and scores of candidates against a history.
struct Features {
    /// `m x k` cosines.
    cos: Vec<f32>,
    /// `m x FEATURES`.
    phi: Vec<f32>,
    /// Per candidate, the history position of the best recency-weighted cosine.
    best: Vec<usize>,
    score: Vec<f32>,
}

impl Features {
    #[allow(clippy::too_many_arguments)]
    fn compute(
        cn: &[f32],
        hn: &[f32],
        d: usize,
        globals: &[f32],
        cand_raw: &[f32],
        w: usize,
        candidates: &[u32],
        hist: &[u32],
    ) -> Features {
        let (m, k) = (candidates.len(), hist.len());
        let mut cos = vec![0f32; m * k];
        if k > 0 {
            gemm(m, d, k, 1.0, cn, false, hn, true, 0.0, &mut cos);
        }
        let (g, a) = globals.split_at(FEATURES);
        let mut phi = Vec::with_capacity(m * FEATURES);
        let mut best = Vec::with_capacity(m);
        let mut score = Vec::with_capacity(m);
        for (c, &i) in candidates.iter().enumerate() {
            let row = &cos[c * k..(c + 1) * k];
            let (j, top) =
                row.iter().zip(a).map(|(x, a)| a * x).enumerate().fold((0, f32::NEG_INFINITY), |acc, (j, s)| {
                    if s > acc.1 {
                        (j, s)
                    } else {
                        acc
                    }
                });
            let f = [
                if k > 0 { top } else { 0.0 },
                if k > 0 { row.iter().sum::<f32>() / k as f32 } else { 0.0 },
                if hist.contains(&i) { 1.0 } else { 0.0 },
            ];
            let r = &cand_raw[c * w..(c + 1) * w];
            let (b, v) = (r[d], &r[d + 1..]);
            score.push(b + (0..FEATURES).map(|q| (g[q] + v[q]) * f[q]).sum::<f32>());
            phi.extend(f);
            best.push(j);
        }
        Features { cos, phi, best, score }
    }
}

/// Each user's last `l` items, most recent first, padded with [`NONE`].
fn last_items(sequences: &[Vec<u32>], l: usize) -> Vec<u32> {
    let mut out = Vec::with_capacity(sequences.len() * l);
    for s in sequences {
        let start = out.len();
        out.extend(s.iter().rev().take(l));
        out.resize(start + l, NONE);
    }
    out
}

/// A fitted history model.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryModel {
    params: HistoryParams,
    /// Per item: embedding, bias, per-item feature weights.
    rows: Factors,
    /// Shared feature weights, then recency weights.
    globals: Vec<f32>,
    /// Each training user's last items, most recent first (`n_users x history`, padded).
    histories: Vec<u32>,
    /// Unit-length item embeddings, for scoring.
    unit: Vec<f32>,
}

/// One history-model fit as the training driver sees it: each (user, position) example is the
/// item at that position with the items before it as history.
struct Run<'a> {
    p: &'a HistoryParams,
    rows: Embedding,
    globals: Param,
    grads: RowGrads,
    opt: Optimizer,
    adam: Adam,
    /// Each user's last items (the scored model's histories).
    histories: Vec<u32>,
    sequences: Vec<Vec<u32>>,
    examples: Vec<(u32, u32)>,
    rng: ChaCha8Rng,
    n_items: usize,
}

impl EpochTrainer for Run<'_> {
    type Unit = (u32, u32);
    type Model = HistoryModel;

    fn units(&mut self, _epoch: usize) -> Vec<(u32, u32)> {
        self.examples.clone()
    }

    fn step(&mut self, batch: &[(u32, u32)]) -> (f64, f64) {
        let (p, n, l) = (self.p, self.n_items, self.p.history);
        let (d, w) = (p.factors, p.width());
        let scale = 1.0 / batch.len() as f32;
        // Drawn in order first, so the random stream does not depend on the threads.
        let examples: Vec<(Vec<u32>, u32, Option<Vec<u32>>)> = batch
            .iter()
            .map(|&(u, pos)| {
                let seq = &self.sequences[u as usize];
                let pos = pos as usize;
                let hist: Vec<u32> = seq[pos.saturating_sub(l)..pos].iter().rev().copied().collect();
                let target = seq[pos];
                let own = match p.loss {
                    HistoryLoss::Bce => None,
                    HistoryLoss::SampledSoftmax => {
                        let mut c = vec![target];
                        while c.len() < p.candidates.min(n) {
                            let i = self.rng.random_range(0..n as u32);
                            if i != target {
                                c.push(i);
                            }
                        }
                        Some(c)
                    }
                };
                (hist, target, own)
            })
            .collect();
        // bce scores every item against every example: the rows are read and normalised once
        // a batch (they change only at its end).
        let rows = &self.rows;
        let every = (p.loss == HistoryLoss::Bce).then(|| Rows::read(rows, (0..n as u32).collect(), w, d));
        let globals = &self.globals.value;
        // Fixed chunks summed in order: the same sums whatever the number of threads.
        let parts: Vec<(RowGrads, Vec<f32>, f64)> = examples
            .par_chunks(EXAMPLES_PER_TASK)
            .map(|chunk| {
                let mut grads = RowGrads::new(w);
                let mut dglobal = vec![0f32; globals.len()];
                let mut loss = 0.0;
                for (hist, target, own) in chunk {
                    let hist = Rows::read(rows, hist.clone(), w, d);
                    let own = own.as_ref().map(|ids| Rows::read(rows, ids.clone(), w, d));
                    let cands = own.as_ref().or(every.as_ref()).expect("bce reads every row");
                    loss += p.example(globals, &hist, cands, *target, scale, &mut grads, &mut dglobal);
                }
                (grads, dglobal, loss)
            })
            .collect();
        let mut loss = 0.0;
        for (grads, dglobal, l) in parts {
            self.grads.merge(&grads);
            self.globals.grad.iter_mut().zip(&dglobal).for_each(|(a, b)| *a += b);
            loss += l;
        }
        self.rows.apply(&mut self.grads, &self.opt);
        self.globals.step(&self.adam, 1.0);
        (loss, batch.len() as f64)
    }

    fn snapshot(&self) -> HistoryModel {
        HistoryModel::assemble(
            self.p.clone(),
            self.rows.to_factors(),
            self.globals.value.clone(),
            self.histories.clone(),
        )
    }
}

impl HistoryModel {
    fn new(
        params: HistoryParams,
        rows: Factors,
        globals: Vec<f32>,
        histories: Vec<u32>,
        n_users: usize,
    ) -> Result<Self> {
        let bad = |message: String| ModelError::Artifact { path: "history model".into(), message };
        if rows.dim() != params.width() || globals.len() != FEATURES + params.history {
            return Err(bad(format!(
                "tensor widths disagree with factors {} / history {}",
                params.factors, params.history
            )));
        }
        if histories.len() != n_users * params.history
            || histories.iter().any(|&i| i != NONE && i as usize >= rows.rows())
        {
            return Err(bad("user histories are malformed".into()));
        }
        Ok(HistoryModel::assemble(params, rows, globals, histories))
    }

    /// A model of parts known to fit together (as training makes them).
    fn assemble(params: HistoryParams, rows: Factors, globals: Vec<f32>, histories: Vec<u32>) -> Self {
        let (unit, _) = normalised(rows.as_slice(), params.width(), params.factors);
        HistoryModel { params, rows, globals, histories, unit }
    }

    /// Rebuilds a saved model.
    pub fn from_tensors(params: HistoryParams, tensors: &Tensors) -> Result<Self> {
        params.check()?;
        let r = TensorReader::new(tensors, "history");
        let (_, globals) = r.f32("globals")?;
        let histories = r.u32("histories")?;
        let n_users = histories.len() / params.history;
        Self::new(params, r.matrix("rows")?, globals, histories, n_users)
    }
}

impl Retriever for HistoryModel {
    fn n_items(&self) -> usize {
        self.rows.rows()
    }

    tandem_models::kind_and_params!("history");

    fn artifact(&self) -> Artifact {
        let hist = Tensor { shape: vec![self.histories.len()], data: TensorData::U32(self.histories.clone()) };
        Artifact {
            kind: "history",
            params: self.params(),
            tensors: [
                ("rows".to_string(), Tensor::matrix(self.rows.rows(), self.rows.dim(), self.rows.as_slice().to_vec())),
                ("globals".to_string(), Tensor::f32(self.globals.clone())),
                ("histories".to_string(), hist),
            ]
            .into(),
        }
    }

    /// A known user is scored from their last training items; anyone else from the query's
    /// items taken in the order given, the last as the most recent.
    fn score(&self, query: &Query<'_>, out: &mut [f32]) {
        let (l, d) = (self.params.history, self.params.factors);
        let n = self.n_items();
        let hist: Vec<u32> = match query.trained.filter(|&u| ((u as usize) + 1) * l <= self.histories.len()) {
            Some(u) => self.histories[u as usize * l..(u as usize + 1) * l]
                .iter()
                .copied()
                .take_while(|&i| i != NONE)
                .collect(),
            None => query.items.iter().rev().copied().filter(|&i| (i as usize) < n).take(l).collect(),
        };
        let hn: Vec<f32> =
            hist.iter().flat_map(|&i| self.unit[i as usize * d..(i as usize + 1) * d].to_vec()).collect();
        let candidates: Vec<u32> = (0..n as u32).collect();
        let f = Features::compute(
            &self.unit,
            &hn,
            d,
            &self.globals,
            self.rows.as_slice(),
            self.params.width(),
            &candidates,
            &hist,
        );
        out.copy_from_slice(&f.score);
    }
}

impl ModelParams for HistoryParams {
    /// Checks the parameters' ranges.
    fn check(&self) -> Result<()> {
        within("factors", self.factors, 1..=1024)?;
        within("history", self.history, 1..=256)?;
        within("dice", self.dice, 0.0..=100.0)?;
        within("candidates", self.candidates, 2..=1_000_000)?;
        crate::check_schedule(self.epochs, self.learning_rate)?;
        within("batch_size", self.batch_size, 1..=65_536)?;
        within("init_std", self.init_std, (Excluded(0.0), Included(10.0)))?;
        Ok(())
    }

    fn fit(&self, fit: &mut Fit<'_>) -> Result<Box<dyn Retriever>> {
        Ok(Box::new(self.fit_with(fit.train, fit.progress, fit.validate.as_deref_mut())?))
    }

    fn load(kind: &str, params: serde_json::Value, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        Ok(Box::new(HistoryModel::from_tensors(saved_params(kind, params)?, tensors)?))
    }

    fn space() -> Vec<Dim> {
        vec![
            Dim::int("history", 4, 32, true),
            Dim::float("learning_rate", 1e-3, 2e-2, true),
            Dim::choice("loss", &["bce", "sampled_softmax"]),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_data::NoProgress;
    use tandem_models::testing::{checkerboard, conformance_with, scrambled_checkerboard, SGD_LEARNED};

    fn small(loss: HistoryLoss) -> HistoryParams {
        HistoryParams {
            factors: 8,
            history: 4,
            loss,
            candidates: 6,
            epochs: 60,
            batch_size: 4,
            learning_rate: 0.05,
            ..Default::default()
        }
    }

    #[test]
    fn both_losses_learn_the_checkerboard_and_round_trip() {
        let t = scrambled_checkerboard();
        for loss in [HistoryLoss::Bce, HistoryLoss::SampledSoftmax] {
            let m = small(loss).fit(&t, &NoProgress).unwrap();
            conformance_with(&m, &t, SGD_LEARNED, &<HistoryParams as ModelParams>::load);
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for loss in [HistoryLoss::Bce, HistoryLoss::SampledSoftmax] {
            let p = HistoryParams { factors: 3, history: 3, loss, candidates: 5, ..Default::default() };
            let w = p.width();
            let mut init = Factors::normal(6, w, 0.5, &mut rng);
            for r in 0..6 {
                for c in 3..w {
                    init.row_mut(r)[c] = rng.random_range(-0.5..0.5);
                }
            }
            let globals: Vec<f32> = (0..FEATURES + 3).map(|_| rng.random_range(0.5..1.5)).collect();
            let (hist, cands, target) = ([4u32, 1, 2], [0u32, 1, 3, 4, 5], 3u32);
            let run = |f: &Factors, g: &[f32], grads: &mut RowGrads, dglobal: &mut [f32]| {
                let table = Embedding::from_factors(f);
                let (h, c) = (Rows::read(&table, hist.to_vec(), w, 3), Rows::read(&table, cands.to_vec(), w, 3));
                p.example(g, &h, &c, target, 1.0, grads, dglobal)
            };
            let loss_at = |f: &Factors, g: &[f32]| run(f, g, &mut RowGrads::new(w), &mut vec![0f32; g.len()]);
            let mut grads = RowGrads::new(w);
            let mut dglobal = vec![0f32; globals.len()];
            run(&init, &globals, &mut grads, &mut dglobal);
            let analytic = grads.dense(6);
            for r in [1usize, 3, 4] {
                for c in 0..w {
                    let (mut up, mut dn) = (init.clone(), init.clone());
                    up.row_mut(r)[c] += 1e-3;
                    dn.row_mut(r)[c] -= 1e-3;
                    let numeric = (loss_at(&up, &globals) - loss_at(&dn, &globals)) / 2e-3;
                    let a = analytic[r * w + c] as f64;
                    assert!((numeric - a).abs() < 2e-3 + 2e-2 * a.abs(), "{loss:?} row {r} col {c}: {numeric} vs {a}");
                }
            }
            for q in 0..globals.len() {
                let (mut up, mut dn) = (globals.clone(), globals.clone());
                up[q] += 1e-3;
                dn[q] -= 1e-3;
                let numeric = (loss_at(&init, &up) - loss_at(&init, &dn)) / 2e-3;
                let a = dglobal[q] as f64;
                assert!((numeric - a).abs() < 2e-3 + 2e-2 * a.abs(), "{loss:?} global {q}: {numeric} vs {a}");
            }
        }
    }

    #[test]
    fn anonymous_histories_are_read_most_recent_last() {
        let t = checkerboard();
        let m = small(HistoryLoss::Bce).fit(&t, &NoProgress).unwrap();
        let (mut a, mut b) = (vec![0f32; 10], vec![0f32; 10]);
        m.score(&Query { trained: None, items: &[0, 2, 4, 6, 8], weights: &[1.0; 5] }, &mut a);
        m.score(&Query { trained: None, items: &[9, 0, 2, 4, 6, 8], weights: &[1.0; 6] }, &mut b);
        assert_eq!(a, b, "only the last `history` items count");
        let e = HistoryParams { candidates: 1, ..small(HistoryLoss::SampledSoftmax) }.fit(&t, &NoProgress).unwrap_err();
        assert!(e.to_string().contains("candidates"), "{e}");
    }
}
