//! The two-tower retriever (nanoRecSys): per side an ID embedding, an MLP (ReLU, dropout) and an
//! L2 norm; trained with InfoNCE at a temperature over in-batch negatives, off-diagonal cells of
//! the same user or the same item masked, and a logQ correction from Laplace-smoothed training
//! popularity (training only). AdamW with linear warm-up on the dense layers, lazy Adam on the
//! embedding rows. With `layers: []` it is the pure-embedding variant (embedding -> L2 norm).
//! With `history: L > 0` the user tower's input is the user's ID embedding plus the mean of
//! its last L items' history embeddings (a table of their own), as YouTube's candidate
//! generator and nanoRecSys's sequential tower feed recent items to the user side: each
//! training pair sees only the items before it, the exported user vector the last L of train.
//! The towers of a batch run in parallel (rayon::join), one per core.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ops::Bound::{Excluded, Included};
use tandem_data::Progress;
use tandem_models::artifact::{Artifact, Tensor, TensorReader, Tensors};
use tandem_models::fit::{self, EpochTrainer, Epochs};
use tandem_models::optim::{Optimizer, OptimizerKind};
use tandem_models::panels::{DotScorer, ItemPanels};
use tandem_models::{within, Factors, ModelError, Query, Result, Retriever, TrainSet};

use crate::dense::{gemm, softmax_row, Adam, Mlp};
use crate::embedding::{Embedding, RowGrads};
use crate::Validate;
use tandem_models::kind::{saved_params, Dim, Fit, ModelParams};

/// A training pair: (user, item, the item's position in the user's time-ordered sequence; read
/// only with history).
type Pair = (u32, u32, u32);

/// Two-tower hyper-parameters (defaults: nanoRecSys's).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwoTowerParams {
    /// ID embedding width (default 256).
    pub embedding: usize,
    /// MLP widths from the embedding to the output (default [256, 256, 192, 128]); `[]` is the
    /// pure-embedding variant.
    pub layers: Vec<usize>,
    /// Dropout on every MLP layer's input while training (default 0.1).
    pub dropout: f32,
    /// InfoNCE temperature (default 0.1).
    pub temperature: f32,
    /// Subtract log q(item) (Laplace-smoothed training popularity) from training logits (default true).
    pub logq: bool,
    /// Epochs over all training pairs (default 20).
    pub epochs: usize,
    /// Pairs per batch, i.e. in-batch negatives + 1 (default 1024).
    pub batch_size: usize,
    /// Peak learning rate (default 0.001).
    pub learning_rate: f32,
    /// AdamW weight decay of the dense layers (default 0.01).
    pub weight_decay: f32,
    /// Linear warm-up steps of the learning rate (default 100).
    pub warmup_steps: usize,
    /// Standard deviation of the initial embeddings (default 0.1).
    pub init_std: f32,
    /// With validation: stop after this many epochs without improvement; 0 never stops (default 3).
    pub patience: usize,
    /// Recent items whose mean history embedding joins the user's ID embedding; 0 = ID only
    /// (default 0).
    pub history: usize,
    /// Seed (default 42).
    pub seed: u64,
}

impl Default for TwoTowerParams {
    fn default() -> Self {
        TwoTowerParams {
            embedding: 256,
            layers: vec![256, 256, 192, 128],
            dropout: 0.1,
            temperature: 0.1,
            logq: true,
            epochs: 20,
            batch_size: 1024,
            learning_rate: 0.001,
            weight_decay: 0.01,
            warmup_steps: 100,
            init_std: 0.1,
            patience: 3,
            history: 0,
            seed: 42,
        }
    }
}

impl TwoTowerParams {
    fn out_dim(&self) -> usize {
        self.layers.last().copied().unwrap_or(self.embedding)
    }

    /// Fits the model.
    pub fn fit(&self, train: &TrainSet, progress: &dyn Progress) -> Result<TwoTower> {
        self.fit_with(train, progress, None)
    }

    /// Fits, calling `validate` (when given) after every epoch: the best epoch is kept and
    /// training stops after `patience` epochs without improvement.
    pub fn fit_with(
        &self,
        train: &TrainSet,
        progress: &dyn Progress,
        validate: Option<&mut Validate<'_>>,
    ) -> Result<TwoTower> {
        self.check()?;
        let m = &train.user_items;
        if m.nnz() == 0 {
            return Err(ModelError::EmptyTrainingData { model: "two_tower" });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut user = Tower::new(self, train.n_users(), &mut rng);
        let item = Tower::new(self, train.n_items(), &mut rng);
        let sequences = if self.history > 0 {
            // Zeros: an item never seen before a target (one that is always last) adds nothing.
            user.history = Some(Embedding::from_factors(&Factors::zeros(train.n_items(), self.embedding)));
            train.sequences()
        } else {
            Vec::new()
        };
        // log q(i) from Laplace-smoothed training popularity.
        let mut counts = vec![1f64; train.n_items()];
        for &i in m.indices() {
            counts[i as usize] += 1.0;
        }
        let total: f64 = counts.iter().sum();
        let logq: Vec<f32> = counts.iter().map(|c| (c / total).ln() as f32).collect();
        let pairs: Vec<Pair> = if self.history > 0 {
            let at = |(u, s): (usize, &Vec<u32>)| {
                s.iter().enumerate().map(move |(p, &i)| (u as u32, i, p as u32)).collect::<Vec<_>>()
            };
            sequences.iter().enumerate().flat_map(at).collect()
        } else {
            (0..m.n_rows() as u32).flat_map(|u| m.row(u as usize).0.iter().map(move |&i| (u, i, 0))).collect()
        };
        let hint = "lower learning_rate or raise temperature";
        let plan = Epochs {
            patience: self.patience,
            hint,
            min_batch: 2,
            ..Epochs::new("two_tower", self.epochs, self.batch_size, self.seed)
        };
        let mut run = Run { p: self, user, item, pairs, sequences, logq, rng, steps: 0 };
        Ok(fit::train_retriever(&plan, &mut run, progress, validate)?.model)
    }
}

/// One two-tower fit as the training driver sees it: every (user, item) pair once per epoch.
struct Run<'a> {
    p: &'a TwoTowerParams,
    user: Tower,
    item: Tower,
    pairs: Vec<Pair>,
    /// Each user's training items in time order (with `history`).
    sequences: Vec<Vec<u32>>,
    logq: Vec<f32>,
    rng: ChaCha8Rng,
    /// Steps taken, for the warm-up.
    steps: usize,
}

impl EpochTrainer for Run<'_> {
    type Unit = Pair;
    type Model = TwoTower;

    fn units(&mut self, _epoch: usize) -> Vec<Pair> {
        self.pairs.clone()
    }

    fn step(&mut self, batch: &[Pair]) -> (f64, f64) {
        self.steps += 1;
        let lr_scale = (self.steps as f32 / self.p.warmup_steps.max(1) as f32).min(1.0);
        let mut seeds = [self.rng.random::<u64>(), self.rng.random::<u64>()];
        // Each pair sees only the items before it.
        let before = |&(u, _, p): &Pair| -> &[u32] {
            match self.sequences.get(u as usize) {
                Some(s) => &s[(p as usize).saturating_sub(self.p.history)..p as usize],
                None => &[],
            }
        };
        let histories: Vec<&[u32]> = batch.iter().map(before).collect();
        let (user, item) = (&mut self.user, &mut self.item);
        let loss = train_step(self.p, user, item, (batch, &histories), &self.logq, lr_scale, &mut seeds);
        (loss * batch.len() as f64, batch.len() as f64)
    }

    fn snapshot(&self) -> TwoTower {
        let last: Vec<&[u32]> = self.sequences.iter().map(|s| &s[s.len().saturating_sub(self.p.history)..]).collect();
        TwoTower::from_towers(self.p, &self.user, &self.item, &last)
    }
}

/// One side: ID embedding (plus, on the user side, pooled history embeddings), optional MLP,
/// L2 norm.
struct Tower {
    emb: Embedding,
    /// History item embeddings, pooled into the input (user side with `history > 0`).
    history: Option<Embedding>,
    history_grads: RowGrads,
    /// The batch's history rows.
    batch_history: Vec<Vec<u32>>,
    mlp: Option<Mlp>,
    grads: RowGrads,
    /// The batch's normalised outputs and the norms before normalising.
    out: Vec<f32>,
    norms: Vec<f32>,
    ids: Vec<u32>,
}

impl Tower {
    fn new(p: &TwoTowerParams, rows: usize, rng: &mut ChaCha8Rng) -> Self {
        let emb = Embedding::normal(rows, p.embedding, p.init_std, rng);
        let mlp = (!p.layers.is_empty()).then(|| {
            let mut m = Mlp::new(&p.layers, p.dropout, rng);
            m.relu_last = false;
            m
        });
        Tower {
            emb,
            history: None,
            history_grads: RowGrads::new(p.embedding),
            batch_history: Vec::new(),
            mlp,
            grads: RowGrads::new(p.embedding),
            out: Vec::new(),
            norms: Vec::new(),
            ids: Vec::new(),
        }
    }

    /// The input rows of `ids` with their histories (ignored without a history table).
    fn inputs(&self, ids: &[u32], histories: &[&[u32]]) -> Vec<f32> {
        let e = self.emb.dim();
        let mut x = Vec::with_capacity(ids.len() * e);
        for &r in ids {
            self.emb.gather(r, &mut x);
        }
        if let Some(h) = &self.history {
            let mut row = vec![0f32; e];
            for (k, items) in histories.iter().enumerate() {
                let w = 1.0 / items.len().max(1) as f32;
                for &i in items.iter() {
                    h.read(i as usize, &mut row);
                    tandem_models::axpy(w, &row, &mut x[k * e..(k + 1) * e]);
                }
            }
        }
        x
    }

    /// Forward for the batch's ids and histories (dropout from `seed`); keeps what backward needs.
    fn forward(&mut self, ids: impl Iterator<Item = u32>, histories: &[&[u32]], seed: u64) {
        self.ids.clear();
        self.ids.extend(ids);
        let x = self.inputs(&self.ids, histories);
        if self.history.is_some() {
            self.batch_history.clear();
            self.batch_history.extend(histories.iter().map(|h| h.to_vec()));
        }
        let rows = self.ids.len();
        let h = match &mut self.mlp {
            Some(m) => m.forward(&x, rows, Some(&mut ChaCha8Rng::seed_from_u64(seed))).to_vec(),
            None => x,
        };
        let d = h.len() / rows.max(1);
        self.norms.clear();
        self.out.clear();
        for row in h.chunks_exact(d) {
            let n = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            self.norms.push(n);
            self.out.extend(row.iter().map(|v| v / n));
        }
    }

    /// Backward from the gradient of the normalised outputs; updates every parameter.
    fn backward(&mut self, dy: &[f32], dense: &Adam, sparse: &Optimizer, lr_scale: f32) {
        let d = self.out.len() / self.ids.len().max(1);
        // Through y = h / |h|: dh = (dy - y (y . dy)) / |h|.
        let mut dh = Vec::with_capacity(dy.len());
        for ((y, g), n) in self.out.chunks_exact(d).zip(dy.chunks_exact(d)).zip(&self.norms) {
            let yg: f32 = y.iter().zip(g).map(|(a, b)| a * b).sum();
            dh.extend(y.iter().zip(g).map(|(yv, gv)| (gv - yv * yg) / n));
        }
        let dx = match &mut self.mlp {
            Some(m) => {
                let dx = m.backward(&dh);
                m.step(dense, lr_scale);
                dx
            }
            None => dh,
        };
        let e = self.emb.dim();
        for (k, &r) in self.ids.iter().enumerate() {
            self.grads.add(r, &dx[k * e..(k + 1) * e], 1.0);
        }
        let opt = Optimizer { lr: sparse.lr * lr_scale, ..*sparse };
        self.emb.apply(&mut self.grads, &opt);
        if let Some(h) = &self.history {
            for (k, items) in self.batch_history.iter().enumerate() {
                let w = 1.0 / items.len().max(1) as f32;
                for &i in items {
                    self.history_grads.add(i, &dx[k * e..(k + 1) * e], w);
                }
            }
            h.apply(&mut self.history_grads, &opt);
        }
    }

    /// Normalised outputs of every row (with `histories[row]` on a side with history), without
    /// dropout.
    fn all_vectors(&self, rows: usize, histories: &[&[u32]]) -> Factors {
        let mut out = Vec::new();
        for start in (0..rows).step_by(4096) {
            let n = (rows - start).min(4096);
            let ids: Vec<u32> = (start as u32..(start + n) as u32).collect();
            let x = self.inputs(&ids, histories.get(start..start + n).unwrap_or(&[]));
            let h = match &self.mlp {
                Some(m) => m.infer(&x, n),
                None => x,
            };
            let d = h.len() / n.max(1);
            for row in h.chunks_exact(d) {
                let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                out.extend(row.iter().map(|v| v / norm));
            }
        }
        let d = out.len().checked_div(rows).unwrap_or(0);
        Factors::from_vec(rows, d, out)
    }
}

/// One InfoNCE step on a batch of (user, positive item) pairs; returns the mean loss.
fn train_step(
    p: &TwoTowerParams,
    user: &mut Tower,
    item: &mut Tower,
    (batch, histories): (&[Pair], &[&[u32]]),
    logq: &[f32],
    lr_scale: f32,
    seeds: &mut [u64; 2],
) -> f64 {
    rayon::join(
        || user.forward(batch.iter().map(|b| b.0), histories, seeds[0]),
        || item.forward(batch.iter().map(|b| b.1), &[], seeds[1]),
    );
    let b = batch.len();
    let d = user.out.len() / b;
    let col_bias: Vec<f32> = batch.iter().map(|&(_, i, _)| if p.logq { -logq[i as usize] } else { 0.0 }).collect();
    // Where each user and item sits in the batch: the cells to mask.
    let (mut by_user, mut by_item) = (HashMap::<u32, Vec<usize>>::new(), HashMap::<u32, Vec<usize>>::new());
    for (c, &(u, i, _)) in batch.iter().enumerate() {
        by_user.entry(u).or_default().push(c);
        by_item.entry(i).or_default().push(c);
    }
    let logits =
        Logits { batch, user: &user.out, item: &item.out, d, inv_t: 1.0 / p.temperature, col_bias, by_user, by_item };
    // Two halves of the rows on two threads; item gradients are sums over rows, so each half
    // returns its part.
    let half = b / 2;
    let ((loss_a, mut du, mut dv), (loss_b, du_b, dv_b)) =
        rayon::join(|| logits.rows(0..half), || logits.rows(half..b));
    du.extend_from_slice(&du_b);
    dv.iter_mut().zip(&dv_b).for_each(|(x, y)| *x += y);
    let dense = Adam { lr: p.learning_rate, weight_decay: p.weight_decay, decoupled: true };
    let sparse = Optimizer { kind: OptimizerKind::Adam, lr: p.learning_rate, weight_decay: 0.0 };
    rayon::join(|| user.backward(&du, &dense, &sparse, lr_scale), || item.backward(&dv, &dense, &sparse, lr_scale));
    (loss_a + loss_b) / b as f64
}

/// The InfoNCE logits of a batch and what their softmax needs.
struct Logits<'a> {
    batch: &'a [Pair],
    /// Normalised tower outputs, `b x d` each.
    user: &'a [f32],
    item: &'a [f32],
    d: usize,
    inv_t: f32,
    /// Added to every cell of a column: -log q(item) with the logQ correction, else 0.
    col_bias: Vec<f32>,
    by_user: HashMap<u32, Vec<usize>>,
    by_item: HashMap<u32, Vec<usize>>,
}

impl Logits<'_> {
    /// Loss summed over `rows`, the gradient of those rows' user outputs (`rows x d`) and their
    /// share of the item outputs' gradient (`b x d`), for the batch-mean loss.
    fn rows(&self, rows: std::ops::Range<usize>) -> (f64, Vec<f32>, Vec<f32>) {
        let (b, d, n) = (self.batch.len(), self.d, rows.len());
        let u = &self.user[rows.start * d..rows.end * d];
        let mut s = vec![0f32; n * b];
        gemm(n, d, b, self.inv_t, u, false, self.item, true, 0.0, &mut s);
        let mut loss = 0.0f64;
        // Row-wise softmax over the unmasked cells; s becomes the logit gradient (P - I) / B.
        for (k, row) in s.chunks_exact_mut(b).enumerate() {
            let r = rows.start + k;
            let (ur, ir, _) = self.batch[r];
            row.iter_mut().zip(&self.col_bias).for_each(|(v, c)| *v += c);
            for &c in self.by_user[&ur].iter().chain(&self.by_item[&ir]) {
                if c != r {
                    row[c] = f32::NEG_INFINITY;
                }
            }
            softmax_row(row);
            loss += -(row[r].max(1e-30).ln()) as f64;
            let inv_b = 1.0 / b as f32;
            row.iter_mut().for_each(|v| *v *= inv_b);
            row[r] -= inv_b;
        }
        // dU = G V / t, dV = G^T U / t.
        let (mut du, mut dv) = (vec![0f32; n * d], vec![0f32; b * d]);
        gemm(n, b, d, self.inv_t, &s, false, self.item, false, 0.0, &mut du);
        gemm(b, n, d, self.inv_t, &s, true, u, false, 0.0, &mut dv);
        (loss, du, dv)
    }
}

/// A fitted two-tower model: the towers' normalised output for every user and item.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoTower {
    params: TwoTowerParams,
    users: Factors,
    items: Factors,
    panels: ItemPanels,
}

impl TwoTower {
    /// Every user's and item's vector; `last` holds each user's last items for the history input.
    fn from_towers(p: &TwoTowerParams, user: &Tower, item: &Tower, last: &[&[u32]]) -> Self {
        let (nu, ni) = (user.emb.to_factors().rows(), item.emb.to_factors().rows());
        TwoTower::new(p.clone(), user.all_vectors(nu, last), item.all_vectors(ni, &[]))
    }

    fn new(params: TwoTowerParams, users: Factors, items: Factors) -> Self {
        TwoTower { params, panels: ItemPanels::pack(&items), users, items }
    }

    /// User vectors (unit length), for serving.
    pub fn user_vectors(&self) -> &Factors {
        &self.users
    }

    /// Item vectors (unit length), for serving and ANN indexes.
    pub fn item_vectors(&self) -> &Factors {
        &self.items
    }

    /// Rebuilds a saved model from its exported vectors.
    pub fn from_tensors(params: TwoTowerParams, tensors: &Tensors) -> Result<TwoTower> {
        params.check()?;
        let r = TensorReader::new(tensors, "two_tower");
        let (users, items) = (r.matrix("user_vectors")?, r.matrix("item_vectors")?);
        if users.dim() != params.out_dim() || items.dim() != params.out_dim() {
            return Err(ModelError::Artifact {
                path: "two_tower model".into(),
                message: format!("vector widths {} / {} disagree with the parameters", users.dim(), items.dim()),
            });
        }
        Ok(TwoTower::new(params, users, items))
    }
}

impl Retriever for TwoTower {
    fn embeddings(&self) -> Option<tandem_models::Embeddings<'_>> {
        Some(tandem_models::Embeddings { users: &self.users, items: &self.items })
    }

    fn n_items(&self) -> usize {
        self.items.rows()
    }

    tandem_models::kind_and_params!("two_tower");

    fn artifact(&self) -> Artifact {
        let m = |f: &Factors| Tensor::matrix(f.rows(), f.dim(), f.as_slice().to_vec());
        Artifact {
            kind: "two_tower",
            params: self.params(),
            tensors: [("user_vectors".to_string(), m(&self.users)), ("item_vectors".to_string(), m(&self.items))]
                .into(),
        }
    }

    tandem_models::dot_scoring!();
}

impl DotScorer for TwoTower {
    fn panels(&self) -> &ItemPanels {
        &self.panels
    }

    /// Known users use their tower's vector; others the mean of their history's item vectors.
    fn query_vector(&self, query: &Query<'_>) -> Vec<f32> {
        match query.trained.filter(|&u| (u as usize) < self.users.rows()) {
            Some(u) => self.users.row(u as usize).to_vec(),
            None => self.items.mean_of(query.items),
        }
    }
}

impl ModelParams for TwoTowerParams {
    /// Checks the parameters' ranges.
    fn check(&self) -> Result<()> {
        within("embedding", self.embedding, 1..=4096)?;
        if !self.layers.is_empty()
            && (self.layers.len() < 2
                || self.layers[0] != self.embedding
                || self.layers.iter().any(|&w| w == 0 || w > 8192))
        {
            return Err(ModelError::invalid(
                "layers",
                &self.layers,
                "[] or at least two widths in 1..=8192, the first = embedding",
            ));
        }
        within("dropout", self.dropout, 0.0..1.0)?;
        within("temperature", self.temperature, (Excluded(0.0), Included(100.0)))?;
        crate::check_schedule(self.epochs, self.learning_rate)?;
        within("batch_size", self.batch_size, 2..=65_536)?;
        within("weight_decay", self.weight_decay, 0.0..1.0)?;
        within("init_std", self.init_std, (Excluded(0.0), Included(10.0)))?;
        within("history", self.history, 0..=1024)?;
        Ok(())
    }

    fn fit(&self, fit: &mut Fit<'_>) -> Result<Box<dyn Retriever>> {
        Ok(Box::new(self.fit_with(fit.train, fit.progress, fit.validate.as_deref_mut())?))
    }

    fn load(kind: &str, params: serde_json::Value, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        Ok(Box::new(TwoTower::from_tensors(saved_params(kind, params)?, tensors)?))
    }

    fn space() -> Vec<Dim> {
        vec![
            Dim::float("temperature", 0.02, 0.5, true),
            Dim::float("learning_rate", 1e-4, 1e-2, true),
            Dim::int("epochs", 5, 60, true),
            // The latest items as the user tower's input: on a random 10% holdout of ml-100k ratio
            // most of 40 trials spent on it validated below the defaults.
            Dim::int("history", 0, 16, false).next_items(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_data::NoProgress;
    use tandem_models::testing::{checkerboard, conformance_with, scrambled_checkerboard, SGD_LEARNED};

    fn small(layers: Vec<usize>) -> TwoTowerParams {
        TwoTowerParams {
            embedding: 8,
            layers,
            batch_size: 8,
            epochs: 60,
            learning_rate: 0.01,
            warmup_steps: 5,
            dropout: 0.0,
            ..Default::default()
        }
    }

    #[test]
    fn both_variants_learn_the_checkerboard_and_round_trip() {
        let t = checkerboard();
        for layers in [vec![], vec![8, 16, 8]] {
            let m = small(layers).fit(&t, &NoProgress).unwrap();
            for r in 0..m.items.rows() {
                let n: f32 = m.items.row(r).iter().map(|v| v * v).sum();
                assert!((n - 1.0).abs() < 1e-4, "item vectors are unit length");
            }
            conformance_with(&m, &t, SGD_LEARNED, &<TwoTowerParams as ModelParams>::load);
        }
    }

    /// Users walking a cycle of items: user u meets items s, s+1, .., s+len-1 (mod n) in that
    /// order, from a start and length unrelated to its id.
    fn cycle_walks(n_users: u32, n_items: u32) -> (TrainSet, Vec<u32>) {
        let mut log = tandem_data::Interactions::new();
        let mut next = Vec::new();
        for u in 0..n_users {
            let (start, len) = ((u * 7) % n_items, 3 + (u * 5) % 4);
            for t in 0..len {
                log.push(tandem_data::Interaction {
                    user: u,
                    item: (start + t) % n_items,
                    time: t as i64,
                    weight: 1.0,
                });
            }
            next.push((start + len) % n_items);
        }
        (TrainSet::new(log, n_users as usize, n_items as usize), next)
    }

    #[test]
    fn the_history_input_learns_what_follows_the_last_item() {
        let (t, next) = cycle_walks(120, 12);
        let hits = |p: TwoTowerParams| {
            let m = p.fit(&t, &NoProgress).unwrap();
            let mut s = vec![0f32; t.n_items()];
            let mut hits = 0;
            for (u, &want) in next.iter().enumerate() {
                m.score(&Query { trained: Some(u as u32), items: &[], weights: &[] }, &mut s);
                for &i in t.user_items.row(u).0 {
                    s[i as usize] = f32::NEG_INFINITY;
                }
                let top = (0..s.len()).max_by(|&a, &b| s[a].total_cmp(&s[b])).unwrap();
                hits += usize::from(top as u32 == want);
            }
            hits as f64 / next.len() as f64
        };
        let p = TwoTowerParams { epochs: 40, batch_size: 16, ..small(vec![8, 16, 8]) };
        let (with, without) = (hits(TwoTowerParams { history: 1, ..p.clone() }), hits(p));
        assert!(with >= 0.9, "with the last item as history the next one ranks first: {with}");
        assert!(with > without, "history {with} vs id only {without}");
        let board = scrambled_checkerboard();
        let m = TwoTowerParams { history: 2, ..small(vec![8, 16, 8]) }.fit(&board, &NoProgress).unwrap();
        conformance_with(&m, &board, SGD_LEARNED, &<TwoTowerParams as ModelParams>::load);
    }

    #[test]
    fn bad_parameters_are_named() {
        let t = checkerboard();
        for (p, name) in [
            (TwoTowerParams { layers: vec![4, 8], ..small(vec![]) }, "layers"),
            (TwoTowerParams { temperature: 0.0, ..small(vec![]) }, "temperature"),
            (TwoTowerParams { batch_size: 1, ..small(vec![]) }, "batch_size"),
            (TwoTowerParams { history: 5000, ..small(vec![]) }, "history"),
        ] {
            let e = p.fit(&t, &NoProgress).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
    }
}
