//! The gradient-boosted tree ranker: histogram GBDT with a LambdaRank objective (NDCG- or
//! MAP-weighted pairwise gradients within each user's candidate list) or binary log loss, over
//! the features every top H&M solution ranked with ([`columns`]): each retriever's score,
//! z-score and rank in the list, the item's recent sales and age, the customer's activity,
//! days since the customer bought the item or anything in its group.
//!
//! The engine is `hessboost` (pure Rust, XGBoost's algorithms and model format); README's
//! "Dependencies" says why it and not a binding of LightGBM. Training windows: with two or
//! more, the latest is the validation set — trees are added while its MAP@K (or NDCG@K)
//! improves — and with `refit` the ranker is then trained again on every window with the
//! number of trees found. The fitted ranker keeps the feature columns of the rows it will
//! rank for ([`Ranker::attach`]), so a pipeline refitted on every row ranks by today's sales.

mod columns;
mod lambdarank;

use std::num::NonZeroUsize;
use std::ops::ControlFlow;

use hessboost::config::{GrowPolicy, TrainingParams, TreeMethod};
use hessboost::data::{BinnedMatrix, DMatrix};
use hessboost::metric::{Cutoff, EvalMetric};
use hessboost::model::{BoostedModel, ImportanceType, Iterations, ModelFormat};
use hessboost::objective::{LambdaRank, Objective};
use hessboost::training::{Trainer, TrainingData};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tandem_data::Progress;
use tandem_models::artifact::{Artifact, Tensor, TensorData, TensorReader, Tensors};
use tandem_models::{within, Factors, ModelError, Query, Retriever, TrainSet};

use crate::features::ItemFeatures;
use crate::parts::{example_scores, lists_by_user, RankerWindow};
use crate::ranker::{Candidates, Ranker};
use columns::{Context, Layout};
use lambdarank::NdcgLambdaRank;

/// What the trees minimise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GbdtObjective {
    /// LambdaRank with NDCG-weighted pairs (LightGBM's `lambdarank`, XGBoost's `rank:ndcg`).
    #[default]
    Lambdarank,
    /// LambdaRank with MAP-weighted pairs (XGBoost's `rank:map`).
    LambdarankMap,
    /// Binary log loss on each candidate alone.
    Binary,
}

/// The validation metric early stopping watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GbdtMetric {
    /// MAP@K.
    #[default]
    Map,
    /// NDCG@K.
    Ndcg,
}

/// GBDT ranker hyper-parameters (LightGBM's names where they exist).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GbdtParams {
    /// `lambdarank` (default), `lambdarank_map` or `binary`.
    pub objective: GbdtObjective,
    /// Boosting rounds at most (default 300).
    pub trees: usize,
    /// Shrinkage per tree (default 0.1).
    pub learning_rate: f64,
    /// Leaves per tree, grown best-first (default 31).
    pub leaves: usize,
    /// Depth limit (default 0: none, the leaves bound the tree).
    pub max_depth: usize,
    /// Least summed hessian in a leaf (default 0.001; LightGBM's `min_sum_hessian_in_leaf`, the
    /// engine's bound on how little data a leaf may hold).
    pub min_child_weight: f64,
    /// Share of the features each tree may split on (default 1).
    pub feature_fraction: f64,
    /// Share of the rows each tree sees (default 1).
    pub bagging_fraction: f64,
    /// L2 penalty on leaf values (default 1).
    pub lambda_l2: f64,
    /// Histogram bins per feature (default 255).
    pub max_bin: usize,
    /// Pairs per document in LambdaRank (default 32).
    pub pairs_per_sample: usize,
    /// Stop when the validation metric has not improved for this many trees (default 20; 0:
    /// no early stopping). With two windows or more the latest validates and the others
    /// train; with one, every tree of `trees` is grown on it.
    pub early_stopping_rounds: usize,
    /// `map` (default) or `ndcg`, at `metric_k`.
    pub metric: GbdtMetric,
    /// Cutoff of the validation metric (default 12).
    pub metric_k: usize,
    /// With a validation window, train again on every window, that one included, with the
    /// trees found (default true; false keeps the model trained without it).
    pub refit: bool,
    /// Seed of the row and feature sampling (default 42).
    pub seed: u64,
    /// Models trained with seeds `seed`, `seed + 1`, … whose margins are averaged (default 1).
    /// They differ only where rows or features are sampled (`bagging_fraction`,
    /// `feature_fraction` below 1): averaging them cancels part of the sampling noise.
    pub bags: usize,
}

impl Default for GbdtParams {
    fn default() -> Self {
        GbdtParams {
            objective: GbdtObjective::Lambdarank,
            trees: 300,
            learning_rate: 0.1,
            leaves: 31,
            max_depth: 0,
            min_child_weight: 1e-3,
            feature_fraction: 1.0,
            bagging_fraction: 1.0,
            lambda_l2: 1.0,
            max_bin: 255,
            pairs_per_sample: 32,
            early_stopping_rounds: 20,
            metric: GbdtMetric::Map,
            metric_k: 12,
            refit: true,
            seed: 42,
            bags: 1,
        }
    }
}

/// One window's (or several windows') feature rows, grouped by user.
struct Block {
    rows: Vec<f32>,
    labels: Vec<f32>,
    /// List sizes.
    groups: Vec<usize>,
    /// Where each group's rows start (one more than there are groups).
    starts: Vec<usize>,
    /// Groups per window, in window order.
    window_groups: Vec<usize>,
}

impl Block {
    /// Whether group `g` holds a positive.
    fn has_positive(&self, g: usize) -> bool {
        self.labels[self.starts[g]..self.starts[g + 1]].iter().any(|&l| l > 0.0)
    }

    /// The row indices of `groups`, in order.
    fn rows_of_groups(&self, groups: &[usize]) -> Vec<usize> {
        groups.iter().flat_map(|&g| self.starts[g]..self.starts[g + 1]).collect()
    }

    /// A copy of `groups` (what the export writes).
    fn select(&self, groups: &[usize], width: usize) -> Block {
        let rows = self.rows_of_groups(groups);
        let sizes: Vec<usize> = groups.iter().map(|&g| self.groups[g]).collect();
        Block {
            rows: rows.iter().flat_map(|&r| self.rows[r * width..(r + 1) * width].iter().copied()).collect(),
            labels: rows.iter().map(|&r| self.labels[r]).collect(),
            starts: starts_of(&sizes),
            window_groups: vec![sizes.len()],
            groups: sizes,
        }
    }

    /// The rows of the windows' examples, one group per user (windows in order, users
    /// ascending in each), written in place into one buffer (at H&M size the rows are a
    /// gigabyte: no second copy); with `positives_only`, users none of whose candidates is a
    /// positive are left out (they give LambdaRank no pair and the metric nothing to rank).
    fn of(windows: &[RankerWindow<'_>], layout: Layout, positives_only: bool) -> Block {
        let (width, r) = (layout.width(), layout.retrievers);
        type Lists = Vec<(u32, Vec<usize>)>;
        let lists: Vec<Lists> = windows
            .iter()
            .map(|w| {
                let mut users: Lists = lists_by_user(w.examples).into_iter().collect();
                users.sort_unstable_by_key(|x| x.0);
                if positives_only {
                    users.retain(|(_, ks)| ks.iter().any(|&k| w.examples[k].label > 0.0));
                }
                users
            })
            .collect();
        let groups: Vec<usize> = lists.iter().flat_map(|l| l.iter().map(|(_, ks)| ks.len())).collect();
        let n: usize = groups.iter().sum();
        let (mut rows, mut labels) = (vec![0f32; n * width], vec![0f32; n]);
        let (mut rest_rows, mut rest_labels) = (&mut rows[..], &mut labels[..]);
        // One window at a time: its context (at H&M size a few hundred MB) is dropped before
        // the next one's is built.
        for (w, users) in windows.iter().zip(&lists) {
            let ctx = Context::new(w.train, w.features, item_vectors(w.retrievers));
            let raw = example_scores(w.examples, w.train, &w.retrievers[..r]);
            let mut slots: Vec<(&mut [f32], &mut [f32])> = Vec::with_capacity(users.len());
            for (_, ks) in users {
                let g = ks.len();
                let (row_slot, more_rows) = std::mem::take(&mut rest_rows).split_at_mut(g * width);
                let (label_slot, more_labels) = std::mem::take(&mut rest_labels).split_at_mut(g);
                slots.push((row_slot, label_slot));
                (rest_rows, rest_labels) = (more_rows, more_labels);
            }
            slots.into_par_iter().zip(users.par_iter()).for_each(|((row_slot, label_slot), (u, ks))| {
                let items: Vec<u32> = ks.iter().map(|&k| w.examples[k].item).collect();
                let scores: Vec<Vec<f32>> = (0..r).map(|ri| ks.iter().map(|&k| raw[k * r + ri]).collect()).collect();
                let refs: Vec<&[f32]> = scores.iter().map(|s| &s[..]).collect();
                let mut out = Vec::with_capacity(ks.len() * width);
                ctx.push_rows(&user_query(w.train, *u), &items, &refs, &mut out);
                row_slot.copy_from_slice(&out);
                label_slot.iter_mut().zip(ks).for_each(|(l, &k)| *l = w.examples[k].label);
            });
        }
        let starts = starts_of(&groups);
        let window_groups = lists.iter().map(|l| l.len()).collect();
        Block { rows, labels, groups, starts, window_groups }
    }

    fn matrix(self, width: usize) -> tandem_models::Result<DMatrix> {
        let n = self.labels.len();
        DMatrix::from_dense_vec(self.rows, n, width)
            .and_then(|m| m.with_labels(&self.labels))
            .and_then(|m| m.with_group_sizes(&self.groups))
            .map_err(engine)
    }
}

/// Where each of `groups`' rows start, and the end.
fn starts_of(groups: &[usize]) -> Vec<usize> {
    std::iter::once(0)
        .chain(groups.iter().scan(0, |at, &n| {
            *at += n;
            Some(*at)
        }))
        .collect()
}

/// The item vectors of the first retriever that has them (the similarity features).
fn item_vectors<'a>(retrievers: &[&'a dyn Retriever]) -> Option<&'a Factors> {
    retrievers.iter().find_map(|r| r.embeddings()).map(|e| e.items)
}

/// The query of user `u` of `train` (a user beyond its rows has no history).
fn user_query(train: &TrainSet, u: u32) -> Query<'_> {
    if (u as usize) < train.n_users() {
        Query::from_row(&train.user_items, u)
    } else {
        Query { trained: None, items: &[], weights: &[] }
    }
}

fn engine(e: hessboost::error::HessboostError) -> ModelError {
    ModelError::invalid("gbdt", e.to_string(), "parameters the tree engine accepts")
}

impl GbdtParams {
    /// Checks the parameters' ranges.
    pub fn check(&self) -> tandem_models::Result<()> {
        within("trees", self.trees, 1..=100_000)?;
        within("learning_rate", self.learning_rate, 1e-6..=1.0)?;
        within("leaves", self.leaves, 2..=131_072)?;
        within("max_depth", self.max_depth, 0..=64)?;
        within("min_child_weight", self.min_child_weight, 0.0..=1e9)?;
        within("feature_fraction", self.feature_fraction, 1e-6..=1.0)?;
        within("bagging_fraction", self.bagging_fraction, 1e-6..=1.0)?;
        within("lambda_l2", self.lambda_l2, 0.0..=1e9)?;
        within("max_bin", self.max_bin, 2..=65_535)?;
        within("pairs_per_sample", self.pairs_per_sample, 1..=10_000)?;
        within("early_stopping_rounds", self.early_stopping_rounds, 0..=100_000)?;
        within("metric_k", self.metric_k, 1..=10_000)?;
        within("bags", self.bags, 1..=100)?;
        Ok(())
    }

    /// The validation metric's name (`map@12`).
    fn metric_name(&self) -> String {
        let name = match self.metric {
            GbdtMetric::Map => "map",
            GbdtMetric::Ndcg => "ndcg",
        };
        format!("{name}@{}", self.metric_k)
    }

    /// The tree engine's parameters these map to, training on `threads` threads (0: the
    /// global pool).
    pub fn engine_params(&self, threads: usize) -> tandem_models::Result<TrainingParams> {
        let cutoff = Cutoff::top(self.metric_k).map_err(engine)?;
        let metric = match self.metric {
            GbdtMetric::Map => EvalMetric::Map(cutoff),
            GbdtMetric::Ndcg => EvalMetric::Ndcg(cutoff),
        };
        let mut p = TrainingParams::default();
        p.objective = match self.objective {
            GbdtObjective::Lambdarank => {
                Objective::custom(NdcgLambdaRank { top_k: self.pairs_per_sample, metric: metric.clone() })
            }
            GbdtObjective::LambdarankMap => Objective::RankMap(LambdaRank::new(self.pairs_per_sample).map_err(engine)?),
            GbdtObjective::Binary => Objective::BinaryLogistic(Default::default()),
        };
        p.eval_metric = vec![metric];
        p.nthread = NonZeroUsize::new(threads);
        p.seed = self.seed;
        p.eta = self.learning_rate;
        p.tree_method = TreeMethod::Hist;
        p.grow_policy = GrowPolicy::LossGuide;
        p.max_leaves = NonZeroUsize::new(self.leaves);
        p.max_depth = NonZeroUsize::new(self.max_depth);
        p.min_child_weight = self.min_child_weight;
        p.colsample_bytree = self.feature_fraction;
        p.subsample = self.bagging_fraction;
        p.lambda = self.lambda_l2;
        p.max_bin = self.max_bin;
        Ok(p)
    }

    /// Fits the ranker on `windows` (the latest first); see the module doc for how windows
    /// validate. Every window must have as many retrievers as the first.
    pub fn fit(&self, windows: &[RankerWindow<'_>], progress: &dyn Progress) -> tandem_models::Result<Gbdt> {
        self.check()?;
        let Some(latest) = windows.first() else {
            return Err(ModelError::EmptyTrainingData { model: "gbdt" });
        };
        let layout = Layout { retrievers: latest.retrievers.len() };
        let kinds: Vec<String> = latest.retrievers.iter().map(|r| r.kind().to_string()).collect();
        let names = layout.names(&kinds);
        let ranking = self.objective != GbdtObjective::Binary;
        let params = self.engine_params(rayon::current_num_threads())?;
        let export = std::env::var_os(EXPORT_VAR).map(std::path::PathBuf::from);
        let rows_of = |windows: &[RankerWindow<'_>]| {
            let step = progress.step("gbdt: feature rows", windows.len() as u64);
            let block = Block::of(windows, layout, ranking);
            step.inc(windows.len() as u64);
            block
        };
        let mut validation = None;
        let seeded = |b: usize| {
            let mut p = params.clone();
            p.seed = self.seed.wrapping_add(b as u64);
            p
        };
        let (models, trees) = if windows.len() >= 2 {
            // One feature pass over every window (at H&M size the features of a window take a
            // minute and its context hundreds of MB): the latest window's lists validate, the
            // others train, as views of the one matrix, which the refit then trains on whole.
            let all = rows_of(windows);
            let first = all.window_groups[0];
            // Lists with no positive would score as perfect (ranking objectives left them out).
            let valid_groups: Vec<usize> = (0..first).filter(|&g| all.has_positive(g)).collect();
            let train_groups: Vec<usize> = (first..all.groups.len()).collect();
            let train_has_positive = train_groups.iter().any(|&g| all.has_positive(g));
            if !train_has_positive || valid_groups.is_empty() {
                return Err(ModelError::EmptyTrainingData { model: "gbdt (a window without positive examples)" });
            }
            let (valid_rows, train_rows) = (all.rows_of_groups(&valid_groups), all.rows_of_groups(&train_groups));
            let mut valid_values = None;
            if let Some(dir) = &export {
                let valid = all.select(&valid_groups, layout.width());
                export_block(dir, "train", &all.select(&train_groups, layout.width()), &names)?;
                export_block(dir, "valid", &valid, &names)?;
                valid_values = Some(valid.rows);
            }
            let dall = all.matrix(layout.width())?;
            // `Own` cuts: each view bins as a copy of its rows would.
            let dtrain = dall.select_rows(&train_rows).map_err(engine)?;
            let dvalid = dall.select_rows(&valid_rows).map_err(engine)?;
            let mut found = Vec::with_capacity(self.bags);
            let (mut scores, mut seconds) = (Vec::new(), 0.0);
            for b in 0..self.bags {
                let started = std::time::Instant::now();
                let (model, score) = self.boost(&seeded(b), (&dtrain).into(), Some(&dvalid), self.trees, progress)?;
                seconds += started.elapsed().as_secs_f64();
                scores.extend(score);
                found.push(model);
            }
            if let (Some(dir), Some(rows)) = (&export, valid_values) {
                export_predictions(dir, &mean_margins(&found, &rows)?, seconds)?;
            }
            let best: Vec<usize> = found.iter().map(|m| m.best_iteration().map_or(self.trees, |b| b + 1)).collect();
            if !scores.is_empty() {
                // One bag: its metric; several: their mean (each bag's own early stop).
                validation = Some((self.metric_name(), scores.iter().sum::<f64>() / scores.len() as f64));
            }
            if self.refit {
                drop((dtrain, dvalid));
                // Every window again, the validation one included, with the trees found.
                let binned = binned(dall, self.max_bin)?;
                let refit: tandem_models::Result<Vec<BoostedModel>> = best
                    .iter()
                    .enumerate()
                    .map(|(b, &t)| Ok(self.boost(&seeded(b), (&binned).into(), None, t, progress)?.0))
                    .collect();
                (refit?, best)
            } else {
                (found, best)
            }
        } else {
            let all = rows_of(windows);
            if !all.labels.iter().any(|&l| l > 0.0) {
                return Err(ModelError::EmptyTrainingData { model: "gbdt (no positive example)" });
            }
            let all = binned(all.matrix(layout.width())?, self.max_bin)?;
            let fitted: tandem_models::Result<Vec<BoostedModel>> = (0..self.bags)
                .map(|b| Ok(self.boost(&seeded(b), (&all).into(), None, self.trees, progress)?.0))
                .collect();
            (fitted?, vec![self.trees; self.bags])
        };
        let gains = gains(&models, names.len());
        Ok(Gbdt {
            params: self.clone(),
            layout,
            names,
            models,
            trees,
            gains,
            validation,
            context: Context::new(latest.train, latest.features, item_vectors(latest.retrievers)),
        })
    }

    /// Trains `rounds` trees (fewer with early stopping on `dvalid`); with `dvalid`, also its
    /// best metric value.
    fn boost(
        &self,
        params: &TrainingParams,
        dtrain: TrainingData<'_>,
        dvalid: Option<&DMatrix>,
        rounds: usize,
        progress: &dyn Progress,
    ) -> tandem_models::Result<(BoostedModel, Option<f64>)> {
        let label = if dvalid.is_some() { "gbdt: trees (early stopping)" } else { "gbdt: trees" };
        let step = progress.step(label, rounds as u64);
        let mut trainer = Trainer::new(params, dtrain, rounds).on_round(|_: hessboost::training::RoundEval<'_>| {
            step.inc(1);
            ControlFlow::Continue(())
        });
        if let (Some(dvalid), Some(patience)) = (dvalid, NonZeroUsize::new(self.early_stopping_rounds)) {
            trainer = trainer.eval(dvalid, "valid").early_stopping_rounds(patience);
        }
        let result = trainer.train().map_err(engine)?;
        let best = result.best_score.or_else(|| result.history.last().and_then(|r| r.values().last().copied()));
        Ok((result.model, best))
    }
}

/// `model` as XGBoost JSON. Trees grown from our list-wise gradients are `rank:ndcg` trees (the
/// same gradients, test `trains_the_model_the_engines_rank_ndcg_trains`): they are exported
/// under that name, which XGBoost knows.
pub(crate) fn export_xgboost(model: &BoostedModel) -> tandem_models::Result<Vec<u8>> {
    if model.objective().name() != lambdarank::NAME {
        return model.encode(ModelFormat::XgboostJson).map_err(engine);
    }
    let native = model.encode(ModelFormat::Json).map_err(engine)?;
    let bad = |message: String| ModelError::Artifact { path: "gbdt ranker".into(), message };
    let mut value: serde_json::Value = serde_json::from_slice(&native).map_err(|e| bad(e.to_string()))?;
    value["objective"] = "rank:ndcg".into();
    let relabelled = BoostedModel::decode(value.to_string(), ModelFormat::Json).map_err(engine)?;
    relabelled.encode(ModelFormat::XgboostJson).map_err(engine)
}

/// When set, a directory where a fit with a validation window writes its matrices
/// (`train.*`, `valid.*`), the validation predictions and the training seconds: what
/// `bench/gbdt_vs_lightgbm.sh` trains LightGBM on.
pub const EXPORT_VAR: &str = "TANDEM_GBDT_EXPORT";

/// Writes `NAME.rows.f32` (row-major little-endian f32, NaN missing), `NAME.labels.f32`,
/// `NAME.groups.u32` (list sizes) and `features.txt`.
fn export_block(dir: &std::path::Path, name: &str, b: &Block, names: &[String]) -> tandem_models::Result<()> {
    let write = |file: String, bytes: Vec<u8>| {
        std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::write(dir.join(&file), bytes))
            .map_err(|e| ModelError::Artifact { path: dir.join(&file).display().to_string(), message: e.to_string() })
    };
    write(format!("{name}.rows.f32"), b.rows.iter().flat_map(|v| v.to_le_bytes()).collect())?;
    write(format!("{name}.labels.f32"), b.labels.iter().flat_map(|v| v.to_le_bytes()).collect())?;
    write(format!("{name}.groups.u32"), b.groups.iter().flat_map(|&v| (v as u32).to_le_bytes()).collect())?;
    write("features.txt".into(), (names.join("\n") + "\n").into_bytes())
}

/// Writes the validation predictions (`valid.pred.f32`) and the training time.
fn export_predictions(dir: &std::path::Path, predicted: &[f32], seconds: f64) -> tandem_models::Result<()> {
    let io = |e: std::io::Error| ModelError::Artifact { path: dir.display().to_string(), message: e.to_string() };
    std::fs::write(dir.join("valid.pred.f32"), predicted.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())
        .map_err(io)?;
    std::fs::write(dir.join("train_seconds.txt"), format!("{seconds}\n")).map_err(io)
}

/// `matrix`'s histogram bins, its values dropped: trees grown from bins are the trees grown
/// from the values (the engine's guarantee), and at H&M size the values are a gigabyte.
fn binned(matrix: DMatrix, max_bin: usize) -> tandem_models::Result<BinnedMatrix> {
    BinnedMatrix::new(&matrix, max_bin).map_err(engine)
}

/// Total split gain per column, summed over the bags.
fn gains(models: &[BoostedModel], width: usize) -> Vec<f64> {
    let mut out = vec![0.0; width];
    for m in models {
        for (k, g) in m.feature_importance(ImportanceType::TotalGain) {
            if let Some(o) = out.get_mut(k) {
                *o += g;
            }
        }
    }
    out
}

/// The bags' mean margin for each of `rows`.
fn mean_margins(models: &[BoostedModel], rows: &[f32]) -> tandem_models::Result<Vec<f32>> {
    let mut sum: Vec<f32> = Vec::new();
    for m in models {
        let p = m.predict_margin_rows(rows, Iterations::Best).map_err(engine)?;
        if sum.is_empty() {
            sum = p.as_slice().to_vec();
        } else {
            sum.iter_mut().zip(p.as_slice()).for_each(|(s, &v)| *s += v);
        }
    }
    let n = models.len().max(1) as f32;
    sum.iter_mut().for_each(|s| *s /= n);
    Ok(sum)
}

/// The tensor holding bag `b`'s model (`model`, then `model.1`, … : a one-bag ranker saves
/// what it saved before bags existed).
pub(crate) fn model_key(b: usize) -> String {
    if b == 0 {
        "model".into()
    } else {
        format!("model.{b}")
    }
}

/// A fitted GBDT ranker.
pub struct Gbdt {
    params: GbdtParams,
    layout: Layout,
    names: Vec<String>,
    /// One model per bag (at least one).
    models: Vec<BoostedModel>,
    /// Trees each bag's model predicts with.
    trees: Vec<usize>,
    /// Total split gain per column.
    gains: Vec<f64>,
    /// The validation window's metric at the trees kept (when a window validated).
    validation: Option<(String, f64)>,
    /// The feature columns of the rows being ranked for.
    context: Context,
}

impl Gbdt {
    /// The parameters.
    pub fn params(&self) -> &GbdtParams {
        &self.params
    }

    /// Trees each bag's model predicts with (after early stopping).
    pub fn trees(&self) -> &[usize] {
        &self.trees
    }

    /// The first bag's model as XGBoost JSON (Python's `xgboost.Booster(model_file=...)` loads
    /// it; its features are [`Gbdt::feature_names`] in order).
    pub fn xgboost_json(&self) -> tandem_models::Result<Vec<u8>> {
        export_xgboost(&self.models[0])
    }

    /// Feature names, in column order.
    pub fn feature_names(&self) -> &[String] {
        &self.names
    }

    /// The rows of `candidates` (`items x width`), as the trees read them.
    fn rows(&self, c: &Candidates<'_>) -> Vec<f32> {
        let missing = vec![f32::NAN; c.items.len()];
        let scores: Vec<&[f32]> =
            (0..self.layout.retrievers).map(|r| c.retriever_scores.get(r).map_or(&missing[..], |s| &s[..])).collect();
        let mut rows = Vec::with_capacity(c.items.len() * self.layout.width());
        self.context.push_rows(c.query, c.items, &scores, &mut rows);
        rows
    }

    /// Rebuilds a saved ranker.
    pub fn from_tensors(params: GbdtParams, tensors: &Tensors) -> tandem_models::Result<Gbdt> {
        params.check()?;
        let r = TensorReader::new(tensors, "gbdt");
        let bad = |message: String| ModelError::Artifact { path: "gbdt ranker".into(), message };
        let meta = r.u32("meta")?;
        let (retrievers, trees) = match &meta[..] {
            [r, trees @ ..] if !trees.is_empty() => {
                (*r as usize, trees.iter().map(|&t| t as usize).collect::<Vec<_>>())
            }
            _ => return Err(bad("meta must hold the retrievers and each bag's trees".into())),
        };
        let layout = Layout { retrievers };
        let mut models = Vec::with_capacity(trees.len());
        for b in 0..trees.len() {
            let bytes = match tensors.get(&model_key(b)) {
                Some(Tensor { data: TensorData::U8(b), .. }) => b,
                _ => return Err(bad(format!("no model bytes for bag {b}"))),
            };
            let model = BoostedModel::decode(bytes, ModelFormat::Binary).map_err(|e| bad(e.to_string()))?;
            if model.n_features() != layout.width() {
                return Err(bad(format!(
                    "{} features in the model, {} in the layout",
                    model.n_features(),
                    layout.width()
                )));
            }
            models.push(model);
        }
        let names = crate::parts::read_names(&r, "names")?;
        let gains: Vec<f64> = r.f32("gains").map(|(_, v)| v)?.iter().map(|&g| g as f64).collect();
        if names.len() != layout.width() || gains.len() != layout.width() {
            return Err(bad("feature names or gains do not match the layout".into()));
        }
        Ok(Gbdt { params, layout, names, models, trees, gains, validation: None, context: Context::read(&r)? })
    }
}

impl Ranker for Gbdt {
    fn kind(&self) -> &'static str {
        "gbdt"
    }

    fn score(&self, candidates: &Candidates<'_>, out: &mut [f32]) {
        if candidates.items.is_empty() {
            return;
        }
        let rows = self.rows(candidates);
        match mean_margins(&self.models, &rows) {
            Ok(p) => out.iter_mut().zip(&p).for_each(|(o, &v)| *o = v),
            // Rows are built to the model's width with finite or NaN values; a failure here
            // is a bug, and the candidates keep their order rather than a panic.
            Err(_) => out.iter_mut().enumerate().for_each(|(k, o)| *o = -(k as f32)),
        }
    }

    fn attach(&mut self, train: &TrainSet, features: &ItemFeatures, retrievers: &[&dyn Retriever]) {
        self.context = Context::new(train, features, item_vectors(retrievers));
    }

    fn validation(&self) -> Option<(String, f64)> {
        self.validation.clone()
    }

    fn importance(&self) -> Option<Vec<(String, f64)>> {
        let mut out: Vec<(String, f64)> = self.names.iter().cloned().zip(self.gains.iter().copied()).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Some(out)
    }

    fn artifact(&self) -> Artifact {
        let mut t = Tensors::new();
        for (b, m) in self.models.iter().enumerate() {
            let bytes = m.encode(ModelFormat::Binary).expect("a trained model encodes");
            t.insert(model_key(b), Tensor { shape: vec![bytes.len()], data: TensorData::U8(bytes) });
        }
        let mut meta = vec![self.layout.retrievers as u32];
        meta.extend(self.trees.iter().map(|&n| n as u32));
        t.insert("meta".into(), Tensor::u32(meta));
        crate::parts::put_names(&mut t, "names", &self.names);
        t.insert("gains".into(), Tensor::f32(self.gains.iter().map(|&g| g as f32).collect()));
        self.context.put(&mut t);
        Artifact { kind: "gbdt", params: serde_json::to_value(&self.params).expect("params serialise"), tensors: t }
    }
}
