//! Softmax retrievers: a user vector against every item (`softmax`), and two tree-structured
//! approximations whose training cost per example grows sub-linearly with the catalogue, the
//! two-level hierarchical softmax (`hsoftmax`) and TDM (`tdm`).
//!
//! All three learn a user ID embedding `u` (`factors` wide) and score an output row `r` (one
//! wider: its last column is a bias) as `[u, 1] . r`:
//!
//! - `softmax`: a row per item, cross-entropy over all `n` items: O(n) per example.
//! - `hsoftmax`: the items fall into about sqrt(n) clusters (the nodes of one level of an
//!   [`ItemTree`]), a row per cluster and per item; log p(i | u) = log p(cluster(i) | u) +
//!   log p(i | cluster(i), u), each a softmax: O(sqrt n) per example. Retrieval scores every item
//!   by that exact log-probability.
//! - `tdm`: a row per node of a binary tree over the items; every level is a binary
//!   classification of the positive item's ancestor against `negatives` nodes sampled from the
//!   same level: O(log n) per example. Retrieval is a beam search from the root, keeping the
//!   `beam` best nodes of each level; leaves outside the beam score -inf.
//!
//! Trees start from balanced 2-means over ALS item factors (or at random) and are re-learned
//! `relearn` times: balanced 2-means over the learned item rows builds a new tree, node rows
//! restart as the mean of their items', and training continues on it. The model keeps the tree it
//! was trained on, and retrieval walks that same tree.

use std::ops::Bound::{Excluded, Included};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_data::{NoProgress, Progress};
use tandem_models::artifact::{Artifact, Tensor, TensorData, TensorReader, Tensors};
use tandem_models::fit::{self, EpochTrainer, Epochs};
use tandem_models::optim::{Optimizer, OptimizerKind};
use tandem_models::{within, AlsParams, Factors, ModelError, Query, Result, Retriever, TrainSet};

use crate::dense::{gemm, Adam, Param};
use crate::embedding::{Embedding, RowGrads};
use crate::tree::ItemTree;
use crate::Validate;
use tandem_models::kind::{saved_params, Dim, Fit, ModelParams};

/// Which output layer a [`SoftmaxModel`] has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Structure {
    /// Softmax over every item.
    Full,
    /// Two-level hierarchical softmax.
    Hierarchical,
    /// Tree-based deep model (binary tree, per-level classifiers, beam search).
    Tdm,
}

impl Structure {
    /// The structure of kind `kind` (`softmax`, `hsoftmax`, `tdm`; anything else is the full
    /// softmax).
    pub fn of(kind: &str) -> Structure {
        match kind {
            "hsoftmax" => Structure::Hierarchical,
            "tdm" => Structure::Tdm,
            _ => Structure::Full,
        }
    }

    /// The model kind.
    pub fn kind(self) -> &'static str {
        match self {
            Structure::Full => "softmax",
            Structure::Hierarchical => "hsoftmax",
            Structure::Tdm => "tdm",
        }
    }
}

/// Where a tree starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TreeInit {
    /// Balanced 2-means over the item factors of a quick ALS fit.
    Als,
    /// A random order.
    Random,
}

/// Parameters of `softmax`, `hsoftmax` and `tdm` (the tree settings apply to the last two).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoftmaxParams {
    /// Embedding width (default 64).
    pub factors: usize,
    /// Epochs over all training pairs, per tree (default 10).
    pub epochs: usize,
    /// Pairs per batch (default 256).
    pub batch_size: usize,
    /// Adam learning rate (default 0.005).
    pub learning_rate: f32,
    /// L2 weight decay on every row (default 0).
    pub weight_decay: f32,
    /// Standard deviation of the initial rows (default 0.05).
    pub init_std: f32,
    /// tdm: nodes sampled per level as negatives (default 16).
    pub negatives: usize,
    /// tdm: nodes kept per level by the beam search (default 200).
    pub beam: usize,
    /// hsoftmax, tdm: the initial tree (default `als`).
    pub tree_init: TreeInit,
    /// hsoftmax, tdm: tree re-learning rounds after the first training (default 1).
    pub relearn: usize,
    /// With validation: stop a round after this many epochs without improvement; 0 never stops
    /// (default 3).
    pub patience: usize,
    /// Seed (default 42).
    pub seed: u64,
}

impl Default for SoftmaxParams {
    fn default() -> Self {
        SoftmaxParams {
            factors: 64,
            epochs: 10,
            batch_size: 256,
            learning_rate: 0.005,
            weight_decay: 0.0,
            init_std: 0.05,
            negatives: 16,
            beam: 200,
            tree_init: TreeInit::Als,
            relearn: 1,
            patience: 3,
            seed: 42,
        }
    }
}

impl SoftmaxParams {
    /// Fits a model of `structure`.
    pub fn fit(&self, structure: Structure, train: &TrainSet, progress: &dyn Progress) -> Result<SoftmaxModel> {
        self.fit_with(structure, train, progress, None)
    }

    /// Fits, calling `validate` (when given) after every epoch: the best epoch is kept and
    /// training stops after `patience` epochs without improvement.
    pub fn fit_with(
        &self,
        structure: Structure,
        train: &TrainSet,
        progress: &dyn Progress,
        validate: Option<&mut Validate<'_>>,
    ) -> Result<SoftmaxModel> {
        self.check()?;
        let m = &train.user_items;
        if m.nnz() == 0 {
            return Err(ModelError::EmptyTrainingData { model: structure.kind() });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let trainer = Trainer::new(self, structure, train, &mut rng)?;
        let pairs: Vec<(u32, u32)> =
            (0..m.n_rows() as u32).flat_map(|u| m.row(u as usize).0.iter().map(move |&i| (u, i))).collect();
        let mut run = Run { trainer, pairs, rng };
        // Tree models re-learn their tree between rounds; the best validated epoch of any round wins.
        let rounds = if structure == Structure::Full { 1 } else { 1 + self.relearn };
        let mut overall: Option<(f64, SoftmaxModel)> = None;
        let mut validate = validate;
        for round in 0..rounds {
            if round > 0 {
                run.trainer.relearn(self.seed.wrapping_add(round as u64));
            }
            let label = match rounds {
                1 => String::new(),
                _ => format!("{} tree {}/{rounds}", structure.kind(), round + 1),
            };
            let plan = Epochs {
                label,
                patience: self.patience,
                first_epoch: round * self.epochs,
                ..Epochs::new(structure.kind(), self.epochs, self.batch_size, self.seed)
            };
            let trained = fit::train_retriever(&plan, &mut run, progress, validate.as_deref_mut())?;
            if let Some(score) = trained.best {
                if overall.as_ref().is_none_or(|(s, _)| score > *s) {
                    overall = Some((score, trained.model));
                }
            }
        }
        Ok(overall.map(|(_, model)| model).unwrap_or_else(|| run.trainer.model()))
    }
}

/// One softmax-family fit as the training driver sees it: every (user, item) pair once per
/// epoch.
struct Run<'p> {
    trainer: Trainer<'p>,
    pairs: Vec<(u32, u32)>,
    rng: ChaCha8Rng,
}

impl EpochTrainer for Run<'_> {
    type Unit = (u32, u32);
    type Model = SoftmaxModel;

    fn units(&mut self, _epoch: usize) -> Vec<(u32, u32)> {
        self.pairs.clone()
    }

    fn step(&mut self, batch: &[(u32, u32)]) -> (f64, f64) {
        (self.trainer.step(batch, &mut self.rng) * batch.len() as f64, batch.len() as f64)
    }

    fn snapshot(&self) -> SoftmaxModel {
        self.trainer.model()
    }
}

/// Rows of `rows x (dim + 1)`: N(0, std) weights and a zero bias column.
fn init_rows(rows: usize, dim: usize, std: f32, rng: &mut ChaCha8Rng) -> Factors {
    let mut f = Factors::normal(rows, dim + 1, std, rng);
    for r in 0..rows {
        f.row_mut(r)[dim] = 0.0;
    }
    f
}

/// The level of `tree` used as hsoftmax's clusters: the one minimising clusters + cluster size,
/// i.e. about sqrt(n) of each.
fn cluster_level(tree: &ItemTree) -> usize {
    (0..=tree.depth()).min_by_key(|&l| tree.width(l) + (1 << (tree.depth() - l))).unwrap_or(0)
}

/// Training state.
struct Trainer<'p> {
    p: &'p SoftmaxParams,
    structure: Structure,
    tree: Option<ItemTree>,
    users: Embedding,
    user_grads: RowGrads,
    /// Full: every item's row; hsoftmax: the clusters' rows. Updated densely.
    dense: Option<Param>,
    /// hsoftmax: the items' rows by leaf position; tdm: every node's row. Updated per row.
    sparse: Option<Embedding>,
    sparse_grads: RowGrads,
}

impl<'p> Trainer<'p> {
    fn new(p: &'p SoftmaxParams, structure: Structure, train: &TrainSet, rng: &mut ChaCha8Rng) -> Result<Self> {
        let (d, n) = (p.factors, train.n_items());
        let tree = match (structure, p.tree_init) {
            (Structure::Full, _) => None,
            (_, TreeInit::Random) => Some(ItemTree::random(n, p.seed)),
            (_, TreeInit::Als) => {
                let als = AlsParams { factors: d.min(64), iterations: 5, seed: p.seed, ..Default::default() };
                Some(ItemTree::balanced(als.fit(train, &NoProgress)?.item_factors(), p.seed))
            }
        };
        let (dense_rows, sparse_rows) = match (structure, &tree) {
            (Structure::Hierarchical, Some(t)) => (t.width(cluster_level(t)), n),
            (Structure::Tdm, Some(t)) => (0, t.n_nodes()),
            _ => (n, 0),
        };
        let users = Embedding::normal(train.n_users(), d, p.init_std, rng);
        let dense = (dense_rows > 0).then(|| Param::new(init_rows(dense_rows, d, p.init_std, rng).as_slice().to_vec()));
        let sparse = (sparse_rows > 0).then(|| Embedding::from_factors(&init_rows(sparse_rows, d, p.init_std, rng)));
        Ok(Trainer {
            p,
            structure,
            tree,
            users,
            user_grads: RowGrads::new(d),
            dense,
            sparse,
            sparse_grads: RowGrads::new(d + 1),
        })
    }

    /// One step on a batch of (user, item) pairs; returns the mean loss.
    fn step(&mut self, batch: &[(u32, u32)], rng: &mut ChaCha8Rng) -> f64 {
        let (d, b) = (self.p.factors, batch.len());
        let d1 = d + 1;
        let mut u = vec![0f32; b * d1];
        for (k, &(user, _)) in batch.iter().enumerate() {
            self.users.read(user as usize, &mut u[k * d1..k * d1 + d]);
            u[k * d1 + d] = 1.0;
        }
        let mut du = vec![0f32; b * d1];
        let scale = 1.0 / b as f32;
        let adam = Adam { lr: self.p.learning_rate, weight_decay: self.p.weight_decay, decoupled: false };
        let opt = Optimizer { kind: OptimizerKind::Adam, lr: self.p.learning_rate, weight_decay: self.p.weight_decay };
        let mut loss = 0.0;
        match (self.structure, &self.tree) {
            (Structure::Hierarchical, Some(tree)) => {
                let level = cluster_level(tree);
                let targets: Vec<usize> = batch.iter().map(|&(_, i)| tree.ancestor(tree.position(i), level)).collect();
                let dense = self.dense.as_mut().expect("hsoftmax has cluster rows");
                loss += dense_softmax(&u, &targets, dense, &mut du, scale, &adam);
                let leaves = self.sparse.as_ref().expect("hsoftmax has item rows");
                let mut rows = Vec::new();
                let mut logits = Vec::new();
                for (k, &(_, i)) in batch.iter().enumerate() {
                    let pos = tree.position(i);
                    let range = tree.leaves(level, targets[k]);
                    let uk = &u[k * d1..(k + 1) * d1];
                    rows.resize(range.len() * d1, 0.0);
                    logits.clear();
                    for (j, q) in range.clone().enumerate() {
                        leaves.read(q, &mut rows[j * d1..(j + 1) * d1]);
                        logits.push(tandem_models::dot(uk, &rows[j * d1..(j + 1) * d1]));
                    }
                    let target = pos - range.start;
                    loss += softmax_in_place(&mut logits, target);
                    for (j, q) in range.enumerate() {
                        let g = (logits[j] - if j == target { 1.0 } else { 0.0 }) * scale;
                        self.sparse_grads.add(q as u32, uk, g);
                        tandem_models::axpy(g, &rows[j * d1..(j + 1) * d1], &mut du[k * d1..(k + 1) * d1]);
                    }
                }
            }
            (Structure::Tdm, Some(tree)) => {
                let nodes = self.sparse.as_ref().expect("tdm has node rows");
                let mut row = vec![0f32; d1];
                let mut picked = Vec::new();
                for (k, &(_, i)) in batch.iter().enumerate() {
                    let pos = tree.position(i);
                    let uk = &u[k * d1..(k + 1) * d1];
                    for level in 1..=tree.depth() {
                        let (width, positive) = (tree.width(level), tree.ancestor(pos, level));
                        picked.clear();
                        picked.push((positive, 1.0));
                        if width <= self.p.negatives + 1 {
                            picked.extend((0..width).filter(|&j| j != positive).map(|j| (j, 0.0)));
                        } else {
                            while picked.len() <= self.p.negatives {
                                let j = rng.random_range(0..width);
                                if j != positive {
                                    picked.push((j, 0.0));
                                }
                            }
                        }
                        for &(j, y) in &picked {
                            let id = tree.node_id(level, j);
                            nodes.read(id, &mut row);
                            let (l, g) = crate::dense::bce_with_logit(tandem_models::dot(uk, &row), y);
                            loss += l as f64;
                            let g = g * scale;
                            self.sparse_grads.add(id as u32, uk, g);
                            tandem_models::axpy(g, &row, &mut du[k * d1..(k + 1) * d1]);
                        }
                    }
                }
            }
            _ => {
                let targets: Vec<usize> = batch.iter().map(|&(_, i)| i as usize).collect();
                let dense = self.dense.as_mut().expect("softmax has item rows");
                loss += dense_softmax(&u, &targets, dense, &mut du, scale, &adam);
            }
        }
        if let Some(sparse) = &self.sparse {
            sparse.apply(&mut self.sparse_grads, &opt);
        }
        for (k, &(user, _)) in batch.iter().enumerate() {
            self.user_grads.add(user, &du[k * d1..k * d1 + d], 1.0);
        }
        self.users.apply(&mut self.user_grads, &opt);
        loss / b as f64
    }

    /// The items' learned rows (`n x (factors + 1)`), by item.
    fn item_rows(&self) -> Factors {
        self.model().item_rows()
    }

    /// Rebuilds the tree from the learned item rows; node rows restart as their items' mean.
    fn relearn(&mut self, seed: u64) {
        let Some(old) = &self.tree else { return };
        let (d, n) = (self.p.factors, old.n_items());
        let items = self.item_rows();
        let embeddings: Vec<f32> = (0..n).flat_map(|i| items.row(i)[..d].to_vec()).collect();
        let tree = ItemTree::balanced(&Factors::from_vec(n, d, embeddings), seed);
        let leaf_rows: Vec<f32> = (0..n).flat_map(|q| items.row(tree.item(q) as usize).to_vec()).collect();
        let leaves = Factors::from_vec(n, d + 1, leaf_rows);
        match self.structure {
            Structure::Hierarchical => {
                // A cluster's row starts as its items' mean and each item keeps its whole
                // score in cluster row + leaf row.
                let level = cluster_level(&tree);
                let mut leaves = leaves;
                let mut means = Vec::new();
                for c in 0..tree.width(level) {
                    let mean = mean_row(&leaves, tree.leaves(level, c));
                    for pos in tree.leaves(level, c) {
                        tandem_models::axpy(-1.0, &mean, leaves.row_mut(pos));
                    }
                    means.extend(mean);
                }
                self.dense = Some(Param::new(means));
                self.sparse = Some(Embedding::from_factors(&leaves));
            }
            Structure::Tdm => {
                let mut nodes = Factors::zeros(tree.n_nodes(), d + 1);
                for level in (0..=tree.depth()).rev() {
                    for j in 0..tree.width(level) {
                        let mean = mean_row(&leaves, tree.leaves(level, j));
                        nodes.row_mut(tree.node_id(level, j)).copy_from_slice(&mean);
                    }
                }
                self.sparse = Some(Embedding::from_factors(&nodes));
            }
            Structure::Full => {}
        }
        self.tree = Some(tree);
    }

    /// The model as it stands.
    fn model(&self) -> SoftmaxModel {
        let d1 = self.p.factors + 1;
        let mut rows = self.dense.as_ref().map(|p| p.value.clone()).unwrap_or_default();
        if let Some(sparse) = &self.sparse {
            rows.extend_from_slice(sparse.to_factors().as_slice());
        }
        let rows = Factors::from_vec(rows.len() / d1, d1, rows);
        SoftmaxModel::from_parts(self.structure, self.p.clone(), self.users.to_factors(), rows, self.tree.clone())
            .expect("a trainer's parts agree")
    }
}

/// The mean of `rows`' rows in `range`.
fn mean_row(rows: &Factors, range: std::ops::Range<usize>) -> Vec<f32> {
    let mut m = vec![0f32; rows.dim()];
    let w = 1.0 / range.len().max(1) as f32;
    for r in range {
        tandem_models::axpy(w, rows.row(r), &mut m);
    }
    m
}

/// Turns `logits` into probabilities; returns -log p(target).
fn softmax_in_place(logits: &mut [f32], target: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut z = 0.0f32;
    for v in logits.iter_mut() {
        *v = (*v - max).exp();
        z += *v;
    }
    for v in logits.iter_mut() {
        *v /= z;
    }
    -(logits[target].max(1e-30).ln() as f64)
}

/// Cross-entropy of the batch `u` (`b x (d + 1)`, last column 1) over every row of `table`
/// (`rows x (d + 1)`); adds `scale *` the gradient to `du`, takes one Adam step on `table`, and
/// returns the summed loss.
fn dense_softmax(u: &[f32], targets: &[usize], table: &mut Param, du: &mut [f32], scale: f32, adam: &Adam) -> f64 {
    let b = targets.len();
    let d1 = u.len() / b;
    let rows = table.value.len() / d1;
    let mut s = vec![0f32; b * rows];
    gemm(b, d1, rows, 1.0, u, false, &table.value, true, 0.0, &mut s);
    let mut loss = 0.0;
    for (row, &t) in s.chunks_exact_mut(rows).zip(targets) {
        loss += softmax_in_place(row, t);
        row[t] -= 1.0;
        for v in row.iter_mut() {
            *v *= scale;
        }
    }
    gemm(b, rows, d1, 1.0, &s, false, &table.value, false, 1.0, du);
    gemm(rows, b, d1, 1.0, &s, true, u, false, 0.0, &mut table.grad);
    table.step(adam, 1.0);
    loss
}

/// A fitted `softmax`, `hsoftmax` or `tdm` model.
#[derive(Debug, Clone, PartialEq)]
pub struct SoftmaxModel {
    structure: Structure,
    params: SoftmaxParams,
    users: Factors,
    /// Output rows (see [`Trainer`] for the layout), `factors + 1` wide.
    rows: Factors,
    tree: Option<ItemTree>,
    /// The query vector of a user with neither an index nor a history.
    mean_user: Vec<f32>,
}

impl SoftmaxModel {
    fn from_parts(
        structure: Structure,
        params: SoftmaxParams,
        users: Factors,
        rows: Factors,
        tree: Option<ItemTree>,
    ) -> Result<Self> {
        let bad = |message: String| ModelError::Artifact { path: format!("{} model", structure.kind()), message };
        let d = params.factors;
        if users.dim() != d || rows.dim() != d + 1 {
            return Err(bad(format!("widths {} / {} disagree with factors {d}", users.dim(), rows.dim())));
        }
        let expected = match (structure, &tree) {
            (Structure::Full, None) => rows.rows(),
            (Structure::Hierarchical, Some(t)) => t.width(cluster_level(t)) + t.n_items(),
            (Structure::Tdm, Some(t)) => t.n_nodes(),
            _ => return Err(bad("tree missing or unexpected".into())),
        };
        if rows.rows() != expected {
            return Err(bad(format!("{} output rows, the tree needs {expected}", rows.rows())));
        }
        let mut mean_user = vec![0f32; d];
        for u in 0..users.rows() {
            tandem_models::axpy(1.0 / users.rows() as f32, users.row(u), &mut mean_user);
        }
        Ok(SoftmaxModel { structure, params, users, rows, tree, mean_user })
    }

    /// Rebuilds a saved model.
    pub fn from_tensors(structure: Structure, params: SoftmaxParams, tensors: &Tensors) -> Result<Self> {
        params.check()?;
        let r = TensorReader::new(tensors, structure.kind());
        let tree = match structure {
            Structure::Full => None,
            _ => Some(ItemTree::from_order(r.u32("tree_order")?)?),
        };
        Self::from_parts(structure, params, r.matrix("users")?, r.matrix("rows")?, tree)
    }

    /// The tree the model was trained on and retrieves with (hsoftmax, tdm).
    pub fn tree(&self) -> Option<&ItemTree> {
        self.tree.as_ref()
    }

    /// Row of item `i`'s output vector.
    fn item_row(&self, i: u32) -> usize {
        match (&self.tree, self.structure) {
            (Some(t), Structure::Hierarchical) => t.width(cluster_level(t)) + t.position(i),
            (Some(t), Structure::Tdm) => t.node_id(t.depth(), t.position(i)),
            _ => i as usize,
        }
    }

    /// Item `i`'s whole output vector: its row, plus its cluster's row for hsoftmax (the score
    /// of the item up to the user's normalisers).
    fn item_vector(&self, i: u32) -> Vec<f32> {
        let mut v = self.rows.row(self.item_row(i)).to_vec();
        if let (Some(t), Structure::Hierarchical) = (&self.tree, self.structure) {
            let cluster = t.ancestor(t.position(i), cluster_level(t));
            tandem_models::axpy(1.0, self.rows.row(cluster), &mut v);
        }
        v
    }

    /// Every item's whole output vector, by item.
    fn item_rows(&self) -> Factors {
        let n = self.n_items();
        Factors::from_vec(n, self.rows.dim(), (0..n as u32).flat_map(|i| self.item_vector(i)).collect())
    }

    /// `[u, 1]` for a query: the user's vector, else the mean of the history's item vectors,
    /// else the mean user.
    fn query_vector(&self, query: &Query<'_>) -> Vec<f32> {
        let d = self.params.factors;
        let mut q = match query.trained.filter(|&u| (u as usize) < self.users.rows()) {
            Some(u) => self.users.row(u as usize).to_vec(),
            None => {
                let known: Vec<u32> = query.items.iter().copied().filter(|&i| (i as usize) < self.n_items()).collect();
                if known.is_empty() {
                    self.mean_user.clone()
                } else {
                    let mut q = vec![0f32; d];
                    for &i in &known {
                        tandem_models::axpy(1.0 / known.len() as f32, &self.item_vector(i)[..d], &mut q);
                    }
                    q
                }
            }
        };
        q.push(1.0);
        q
    }

    /// Beam search down `tree`: the `beam` best nodes of each level expand to their children;
    /// the leaves reached get their logit, the others keep -inf.
    fn beam_search(&self, tree: &ItemTree, q: &[f32], out: &mut [f32]) {
        out.fill(f32::NEG_INFINITY);
        let mut frontier = vec![0usize];
        let mut scored: Vec<(f32, usize)> = Vec::new();
        for level in 0..tree.depth() {
            scored.clear();
            for &j in &frontier {
                for c in tree.children(level, j) {
                    scored.push((tandem_models::dot(q, self.rows.row(tree.node_id(level + 1, c))), c));
                }
            }
            if level + 1 == tree.depth() {
                for &(s, pos) in &scored {
                    out[tree.item(pos) as usize] = s;
                }
                return;
            }
            if scored.len() > self.params.beam {
                scored.select_nth_unstable_by(self.params.beam, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                scored.truncate(self.params.beam);
            }
            frontier = scored.iter().map(|&(_, c)| c).collect();
        }
        // A single item: the root is its leaf.
        if let Some(o) = out.first_mut() {
            *o = tandem_models::dot(q, self.rows.row(0));
        }
    }
}

impl Retriever for SoftmaxModel {
    fn kind(&self) -> &'static str {
        self.structure.kind()
    }

    fn n_items(&self) -> usize {
        match &self.tree {
            Some(t) => t.n_items(),
            None => self.rows.rows(),
        }
    }

    tandem_models::kind_and_params!();

    fn artifact(&self) -> Artifact {
        let m = |f: &Factors| Tensor::matrix(f.rows(), f.dim(), f.as_slice().to_vec());
        let mut tensors: Tensors = [("users".to_string(), m(&self.users)), ("rows".to_string(), m(&self.rows))].into();
        if let Some(t) = &self.tree {
            let order = Tensor { shape: vec![t.n_items()], data: TensorData::U32(t.order().to_vec()) };
            tensors.insert("tree_order".into(), order);
        }
        Artifact { kind: self.structure.kind(), params: self.params(), tensors }
    }

    /// softmax: logits; hsoftmax: log p(item | user) under the tree; tdm: beam-search logits.
    fn score(&self, query: &Query<'_>, out: &mut [f32]) {
        let q = self.query_vector(query);
        match (&self.tree, self.structure) {
            (Some(tree), Structure::Hierarchical) => {
                let level = cluster_level(tree);
                let clusters = tree.width(level);
                let mut node: Vec<f32> = (0..clusters).map(|c| tandem_models::dot(&q, self.rows.row(c))).collect();
                log_softmax(&mut node);
                let mut leaf = Vec::new();
                for (c, lp) in node.iter().enumerate() {
                    let range = tree.leaves(level, c);
                    leaf.clear();
                    leaf.extend(range.clone().map(|pos| tandem_models::dot(&q, self.rows.row(clusters + pos))));
                    log_softmax(&mut leaf);
                    for (pos, l) in range.zip(&leaf) {
                        out[tree.item(pos) as usize] = lp + l;
                    }
                }
            }
            (Some(tree), _) => self.beam_search(tree, &q, out),
            (None, _) => self.rows.scores(&q, out),
        }
    }
}

fn log_softmax(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = max + v.iter().map(|x| (x - max).exp()).sum::<f32>().ln();
    for x in v.iter_mut() {
        *x -= lse;
    }
}

impl ModelParams for SoftmaxParams {
    /// Checks the parameters' ranges.
    fn check(&self) -> Result<()> {
        within("factors", self.factors, 1..=1024)?;
        crate::check_schedule(self.epochs, self.learning_rate)?;
        within("batch_size", self.batch_size, 1..=65_536)?;
        within("weight_decay", self.weight_decay, 0.0..1.0)?;
        within("init_std", self.init_std, (Excluded(0.0), Included(10.0)))?;
        within("negatives", self.negatives, 1..=10_000)?;
        within("beam", self.beam, 1..=1_000_000)?;
        within("relearn", self.relearn, 0..=10)?;
        Ok(())
    }

    /// `softmax`, `hsoftmax` or `tdm`.
    fn fit(&self, fit: &mut Fit<'_>) -> Result<Box<dyn Retriever>> {
        Ok(Box::new(self.fit_with(Structure::of(fit.kind), fit.train, fit.progress, fit.validate.as_deref_mut())?))
    }

    fn load(kind: &str, params: serde_json::Value, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        Ok(Box::new(SoftmaxModel::from_tensors(Structure::of(kind), saved_params(kind, params)?, tensors)?))
    }

    fn space() -> Vec<Dim> {
        vec![Dim::int("factors", 16, 128, true), Dim::float("learning_rate", 1e-3, 1e-1, true)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_models::testing::{checkerboard, conformance_with, SGD_LEARNED};

    fn small() -> SoftmaxParams {
        SoftmaxParams {
            factors: 8,
            epochs: 40,
            batch_size: 8,
            learning_rate: 0.05,
            init_std: 0.1,
            ..Default::default()
        }
    }

    #[test]
    fn every_structure_learns_the_checkerboard_and_round_trips() {
        let t = checkerboard();
        for s in [Structure::Full, Structure::Hierarchical, Structure::Tdm] {
            for init in [TreeInit::Als, TreeInit::Random] {
                let m = SoftmaxParams { tree_init: init, ..small() }.fit(s, &t, &NoProgress).unwrap();
                conformance_with(&m, &t, SGD_LEARNED, &<SoftmaxParams as ModelParams>::load);
            }
        }
    }

    #[test]
    fn hierarchical_scores_are_log_probabilities() {
        let t = checkerboard();
        let m = small().fit(Structure::Hierarchical, &t, &NoProgress).unwrap();
        let mut out = vec![0f32; t.n_items()];
        m.score(&Query::from_row(&t.user_items, 3), &mut out);
        let total: f32 = out.iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-4, "p(item | user) sums to {total}");
    }

    #[test]
    fn a_narrow_beam_reaches_only_beam_times_two_leaves() {
        let t = checkerboard();
        let m = SoftmaxParams { beam: 2, ..small() }.fit(Structure::Tdm, &t, &NoProgress).unwrap();
        let mut out = vec![0f32; t.n_items()];
        m.score(&Query::from_row(&t.user_items, 0), &mut out);
        let reached = out.iter().filter(|s| s.is_finite()).count();
        assert!((1..=4).contains(&reached), "{reached} leaves reached with beam 2");
    }

    #[test]
    fn dense_softmax_gradient_matches_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (b, d1, rows) = (3, 4, 5);
        let u: Vec<f32> = (0..b * d1).map(|_| rng.random_range(-1.0..1.0)).collect();
        let table: Vec<f32> = (0..rows * d1).map(|_| rng.random_range(-1.0..1.0)).collect();
        let targets = [0, 3, 4];
        let loss_at = |u: &[f32]| {
            let mut p = Param::new(table.clone());
            let mut du = vec![0f32; b * d1];
            dense_softmax(u, &targets, &mut p, &mut du, 1.0, &Adam { lr: 0.0, weight_decay: 0.0, decoupled: false })
        };
        let mut du = vec![0f32; b * d1];
        let mut p = Param::new(table.clone());
        dense_softmax(&u, &targets, &mut p, &mut du, 1.0, &Adam { lr: 0.0, weight_decay: 0.0, decoupled: false });
        for k in 0..u.len() {
            let (mut up, mut dn) = (u.clone(), u.clone());
            up[k] += 1e-2;
            dn[k] -= 1e-2;
            let numeric = (loss_at(&up) - loss_at(&dn)) / 2e-2;
            assert!((numeric - du[k] as f64).abs() < 1e-2, "du[{k}]: {numeric} vs {}", du[k]);
        }
    }

    #[test]
    fn bad_parameters_and_artifacts_are_named() {
        let t = checkerboard();
        let e = SoftmaxParams { beam: 0, ..small() }.fit(Structure::Tdm, &t, &NoProgress).unwrap_err();
        assert!(e.to_string().contains("beam"), "{e}");
        let m = small().fit(Structure::Tdm, &t, &NoProgress).unwrap();
        let mut tensors = m.artifact().tensors;
        tensors.insert("tree_order".into(), Tensor { shape: vec![2], data: TensorData::U32(vec![1, 1]) });
        let e = SoftmaxModel::from_tensors(Structure::Tdm, small(), &tensors).unwrap_err();
        assert!(e.to_string().contains("permutation"), "{e}");
    }
}
