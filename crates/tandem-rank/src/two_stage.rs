//! Two-stage pipelines: one or more retrievers -> the union of their top N -> a ranker -> the
//! final order. A fitted pipeline is itself a [`Retriever`] (candidates get the ranker's score,
//! every other item `-inf`), so evaluation, reports and serving treat it like any model, and it
//! keeps per-stage timings for the report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tandem_data::Progress;
use tandem_data::Side;
use tandem_models::artifact::{Artifact, Loader, TensorReader, Tensors};
use tandem_models::index::{IndexKind, ItemIndex};
use tandem_models::kind::{Fit, ModelParams};
use tandem_models::within;
use tandem_models::{ModelError, Query, Result, Retriever, TrainSet};

use crate::din::{Din, DinParams};
use crate::features::ItemFeatures;
use crate::gbdt::{Gbdt, GbdtParams};
use crate::late_fusion::{LateFusion, LateFusionParams};
use crate::mining::{mine, Example, MiningSpec, Source};
use crate::parts::RankerWindow;
use crate::ranker::{Candidates, Ranker};
use crate::registry::Spec;

/// A ranker's parameters, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RankerSpec {
    /// The late-fusion MLP ranker (nanoRecSys).
    LateFusion(LateFusionParams),
    /// DIN: the candidate attends over the user's latest items (H&M).
    Din(DinParams),
    /// Gradient-boosted trees (LambdaRank or binary) over count, recency and source features.
    Gbdt(GbdtParams),
}

impl RankerSpec {
    /// The parameters a ranker search varies, with their ranges (`tandem tune` on a pipeline
    /// searches them on the tuned retrievers' candidates).
    pub fn space(&self) -> Vec<tandem_models::kind::Dim> {
        use tandem_models::kind::Dim;
        match self {
            RankerSpec::Gbdt(_) => vec![
                Dim::float("learning_rate", 0.02, 0.3, true),
                Dim::int("leaves", 7, 127, true),
                Dim::float("min_child_weight", 1e-3, 10.0, true),
                Dim::float("feature_fraction", 0.5, 1.0, false),
                Dim::float("bagging_fraction", 0.5, 1.0, false),
                Dim::float("lambda_l2", 1e-3, 100.0, true),
            ],
            RankerSpec::LateFusion(_) => vec![
                Dim::float("learning_rate", 1e-4, 1e-2, true),
                Dim::float("dropout", 0.0, 0.5, false),
                Dim::float("id_dropout", 0.0, 0.5, false),
                Dim::int("epochs", 1, 10, false),
                Dim::float("weight_decay", 1e-6, 1e-2, true),
            ],
            RankerSpec::Din(_) => vec![
                Dim::float("learning_rate", 1e-4, 1e-2, true),
                Dim::float("dropout", 0.0, 0.5, false),
                Dim::int("epochs", 1, 8, false),
            ],
        }
    }
}

impl Default for RankerSpec {
    fn default() -> Self {
        RankerSpec::LateFusion(LateFusionParams::default())
    }
}

fn default_candidates() -> usize {
    100
}

fn default_window() -> usize {
    5
}

fn default_windows() -> usize {
    1
}

/// Where the ranker's training examples come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RankerTraining {
    /// A time window (the H&M recipe): the retrievers are fitted on each user's training rows
    /// but the last `window`; their candidates for that user are labelled by whether the user
    /// went on to those items; the ranker learns from them (with the vectors of those fits), and
    /// the retrievers are refitted on all of train for inference.
    #[default]
    Window,
    /// nanoRecSys: every training positive against negatives mined (see `mining`) from the
    /// retrievers fitted on all of train.
    Train,
}

/// A two-stage pipeline as configs write it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TwoStageSpec {
    /// The retrievers whose top `candidates` are pooled. The first also mines the ranker's hard
    /// negatives; the first with user and item vectors (ALS, MF, two-tower) lends them to it.
    pub retrievers: Vec<Spec>,
    /// Candidates taken from each retriever (default 100).
    #[serde(default = "default_candidates")]
    pub candidates: usize,
    /// Leave the user's known items out of the candidates (retail, where repeat purchases
    /// count, sets false). Unset, it follows `evaluation.exclude_seen` in `tandem run`, and is
    /// true elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_seen: Option<bool>,
    /// Where the ranker's examples come from (default `window`).
    #[serde(default)]
    pub training: RankerTraining,
    /// Rows per user held out as labels in `window` training (default 5).
    #[serde(default = "default_window")]
    pub window: usize,
    /// Successive windows the ranker learns from in `window` training (default 1): window 2
    /// holds out the `window` rows (or days) before window 1 from the rows window 1 left, and
    /// so on; each gets its own retriever fits. More windows, more examples, more fits.
    #[serde(default = "default_windows")]
    pub windows: usize,
    /// Hold out the last `window_days` days of training (a global time cut, as a time-window
    /// test split does) instead of each user's last `window` rows.
    #[serde(default)]
    pub window_days: Option<u32>,
    /// Hold out a random `window_share` of each user's rows (seeded per window; a ratio test
    /// split's rule) instead of the user's last `window` rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_share: Option<f64>,
    /// How examples are mined in `train` training (its weights apply to both).
    #[serde(default)]
    pub mining: MiningSpec,
    /// The ranker (default: late fusion).
    #[serde(default)]
    pub ranker: RankerSpec,
}

impl Default for TwoStageSpec {
    /// Every key's default, no retrievers yet (a pipeline needs one or more).
    fn default() -> Self {
        TwoStageSpec {
            retrievers: Vec::new(),
            candidates: default_candidates(),
            exclude_seen: None,
            training: RankerTraining::default(),
            window: default_window(),
            windows: default_windows(),
            window_days: None,
            window_share: None,
            mining: MiningSpec::default(),
            ranker: RankerSpec::default(),
        }
    }
}

impl ModelParams for TwoStageSpec {
    /// Checks the parameters' ranges, the retrievers' and the ranker's included (their
    /// errors name `retrievers.K.key` and `ranker.key`).
    fn check(&self) -> Result<()> {
        for (k, r) in self.retrievers.iter().enumerate() {
            r.check().map_err(|e| e.at(&format!("retrievers.{k}")))?;
        }
        match &self.ranker {
            RankerSpec::LateFusion(p) => p.check(),
            RankerSpec::Din(p) => p.check(),
            RankerSpec::Gbdt(p) => p.check(),
        }
        .map_err(|e| e.at("ranker"))?;
        if self.retrievers.is_empty() {
            return Err(ModelError::invalid("retrievers", Vec::<String>::new(), "one or more retriever specs"));
        }
        self.window_days.map_or(Ok(()), |d| within("window_days", d, 1..=3650))?;
        self.window_share.map_or(Ok(()), |s| within("window_share", s, 1e-6..=0.9))?;
        if let (Some(days), Some(share)) = (self.window_days, self.window_share) {
            return Err(ModelError::invalid(
                "window_share",
                share,
                format!("unset while window_days ({days}) is set: a window holds out one or the other"),
            ));
        }
        within("window", self.window, 1..=10_000)?;
        within("windows", self.windows, 1..=20)?;
        within("candidates", self.candidates, 1..=100_000)?;
        Ok(self.mining.check()?)
    }

    fn fit(&self, fit: &mut Fit<'_>) -> Result<Box<dyn Retriever>> {
        Ok(Box::new(TwoStageSpec::fit(self, fit.train, fit.side, fit.progress)?))
    }

    fn load(_: &str, params: serde_json::Value, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        Ok(Box::new(TwoStage::from_artifact(params, tensors, &crate::registry::load)?))
    }
}

impl TwoStageSpec {
    fn fit_retrievers(
        &self,
        train: &TrainSet,
        side: Side<'_>,
        progress: &dyn Progress,
    ) -> Result<Vec<Box<dyn Retriever>>> {
        self.retrievers.iter().map(|s| s.fit(train, side, progress)).collect()
    }

    /// Fits the retrievers and the ranker on `train` (see [`RankerTraining`]). `side` holds
    /// the item and user metadata by index (may be empty).
    pub fn fit(&self, train: &TrainSet, side: Side<'_>, progress: &dyn Progress) -> Result<TwoStage> {
        let prepared = self.prepare(train, side, progress)?;
        let ranker = prepared.fit_ranker(&self.ranker, progress)?;
        Ok(prepared.into_pipeline(ranker))
    }

    /// Everything of a fit but the ranker: the retrievers fitted on `train` and the ranker's
    /// labelled examples (each window with its own retriever fits). A ranker search fits many
    /// rankers on one of these ([`Prepared::fit_ranker`]).
    pub fn prepare<'t>(&self, train: &'t TrainSet, side: Side<'_>, progress: &dyn Progress) -> Result<Prepared<'t>> {
        self.check()?;
        let items = side.items;
        let retrievers = self.fit_retrievers(train, side, progress)?;
        let windows = match self.training {
            RankerTraining::Train => {
                let examples = mine(retrievers[0].as_ref(), train, &[], &self.mining)?;
                vec![PreparedWindow { before: None, features: ItemFeatures::new(items, train), early: None, examples }]
            }
            RankerTraining::Window => {
                // Each window: the rows before it, its labels, retrievers fitted on those rows,
                // their labelled candidates.
                let mut fitted: Vec<PreparedWindow> = Vec::new();
                for _ in 0..self.windows {
                    let rows = fitted.last().and_then(|f| f.before.as_ref()).unwrap_or(train);
                    let (before, labels) = match (self.window_days, self.window_share) {
                        (Some(days), _) => hold_out_days(rows, days),
                        (None, Some(share)) => hold_out_share(rows, share, fitted.len() as u64),
                        (None, None) => hold_out_last(rows, self.window),
                    };
                    if labels.nnz() == 0 {
                        break;
                    }
                    let early = self.fit_retrievers(&before, side, progress)?;
                    let staged = TwoStage::new(self.clone(), early, Box::new(NoRanker), latest_items(&before));
                    let examples = staged.labelled_candidates(&before, &labels, progress);
                    let features = ItemFeatures::new(items, &before);
                    fitted.push(PreparedWindow { before: Some(before), features, early: Some(staged), examples });
                }
                if !fitted.iter().any(|f| f.examples.iter().any(|e| e.label > 0.0)) {
                    return Err(ModelError::EmptyTrainingData { model: "two_stage (no held-out item is a candidate)" });
                }
                fitted
            }
        };
        let features = ItemFeatures::new(items, train);
        Ok(Prepared { spec: self.clone(), train, retrievers, features, windows, recent: latest_items(train) })
    }

    fn fit_ranker(&self, windows: &[RankerWindow<'_>], progress: &dyn Progress) -> Result<Box<dyn Ranker>> {
        Ok(match &self.ranker {
            RankerSpec::LateFusion(p) => Box::new(p.fit(windows, progress)?),
            RankerSpec::Din(p) => Box::new(p.fit(windows, progress)?),
            RankerSpec::Gbdt(p) => Box::new(p.fit(windows, progress)?),
        })
    }
}

/// One window of a [`Prepared`] pipeline: the rows before it (none: the examples were mined
/// from all of train), their item features, the retrievers fitted on them and the labelled
/// candidates.
struct PreparedWindow {
    before: Option<TrainSet>,
    features: ItemFeatures,
    early: Option<TwoStage>,
    examples: Vec<Example>,
}

/// A pipeline fitted up to its ranker (see [`TwoStageSpec::prepare`]).
pub struct Prepared<'t> {
    spec: TwoStageSpec,
    train: &'t TrainSet,
    retrievers: Vec<Box<dyn Retriever>>,
    features: ItemFeatures,
    windows: Vec<PreparedWindow>,
    /// Each training user's latest items (what the fitted pipeline keeps).
    recent: Vec<Vec<u32>>,
}

impl Prepared<'_> {
    /// A ranker of `spec` fitted on the prepared examples, attached to all of train.
    pub fn fit_ranker(&self, spec: &RankerSpec, progress: &dyn Progress) -> Result<Box<dyn Ranker>> {
        let pipeline = TwoStageSpec { ranker: spec.clone(), ..self.spec.clone() };
        pipeline.check()?;
        let full: Vec<&dyn Retriever> = self.retrievers.iter().map(|r| r.as_ref()).collect();
        let refs: Vec<Vec<&dyn Retriever>> = self
            .windows
            .iter()
            .map(|w| {
                w.early.as_ref().map_or_else(|| full.clone(), |e| e.retrievers.iter().map(|r| r.as_ref()).collect())
            })
            .collect();
        let windows: Vec<RankerWindow<'_>> = self
            .windows
            .iter()
            .zip(&refs)
            .map(|(w, refs)| RankerWindow {
                examples: &w.examples,
                train: w.before.as_ref().unwrap_or(self.train),
                features: &w.features,
                retrievers: refs,
            })
            .collect();
        let mut ranker = pipeline.fit_ranker(&windows, progress)?;
        ranker.attach(self.train, &self.features, &full);
        Ok(ranker)
    }

    /// Runs `f` on the pipeline with `ranker` (its ranker spec `spec`), the retrievers lent to
    /// it and taken back after: how a search scores one ranker after another.
    pub fn with_ranker<R>(&mut self, spec: &RankerSpec, ranker: Box<dyn Ranker>, f: impl FnOnce(&TwoStage) -> R) -> R {
        let pipeline = TwoStageSpec { ranker: spec.clone(), ..self.spec.clone() };
        let (retrievers, recent) = (std::mem::take(&mut self.retrievers), std::mem::take(&mut self.recent));
        let staged = TwoStage::new(pipeline, retrievers, ranker, recent);
        let out = f(&staged);
        (self.retrievers, self.recent) = (staged.retrievers, staged.recent);
        out
    }

    /// The fitted pipeline with `ranker`.
    pub fn into_pipeline(self, ranker: Box<dyn Ranker>) -> TwoStage {
        TwoStage::new(self.spec, self.retrievers, ranker, self.recent)
    }
}

/// Splits each user's rows by time: all but the last `window` stay, the last `window` (of users
/// with more rows than that) become labels (users x items).
fn hold_out_last(train: &TrainSet, window: usize) -> (TrainSet, tandem_data::Csr) {
    let log = &train.log;
    let mut held = vec![false; log.len()];
    for mut rows in log.rows_by_user(train.n_users()) {
        rows.sort_by_key(|&i| (log.get(i).time, i));
        // Users with no more than `window` rows keep them all (as the test split does).
        if rows.len() > window {
            rows[rows.len() - window..].iter().for_each(|&i| held[i] = true);
        }
    }
    hold_out(train, |i| held[i])
}

/// Splits each user's rows at random: floor(`share` x rows) of them (seeded by `seed`) become
/// labels, as a ratio test split holds out.
fn hold_out_share(train: &TrainSet, share: f64, seed: u64) -> (TrainSet, tandem_data::Csr) {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let log = &train.log;
    let mut held = vec![false; log.len()];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5ea1_0000 + seed);
    for mut rows in log.rows_by_user(train.n_users()) {
        rows.sort_unstable();
        let n = (share * rows.len() as f64).floor() as usize;
        rows.shuffle(&mut rng);
        rows[..n].iter().for_each(|&i| held[i] = true);
    }
    hold_out(train, |i| held[i])
}

/// The training rows where `held(row)` is false, and the held rows as labels (users x items).
fn hold_out(train: &TrainSet, held: impl Fn(usize) -> bool) -> (TrainSet, tandem_data::Csr) {
    let log = &train.log;
    let (mut before, mut after) = (tandem_data::Interactions::new(), tandem_data::Interactions::new());
    for i in 0..log.len() {
        if held(i) {
            after.push(log.get(i));
        } else {
            before.push(log.get(i));
        }
    }
    let labels = tandem_data::Csr::user_items(&after, train.n_users(), train.n_items());
    (TrainSet::new(before, train.n_users(), train.n_items()), labels)
}

/// Splits the rows by time: those in the last `days` days (before the latest row) become labels.
fn hold_out_days(train: &TrainSet, days: u32) -> (TrainSet, tandem_data::Csr) {
    let log = &train.log;
    let cut = log.iter().map(|r| r.time).max().unwrap_or(0) - i64::from(days) * 86_400;
    hold_out(train, |i| log.get(i).time > cut)
}

/// The ranker slot of a pipeline whose ranker is not fitted yet (only its candidates are used).
struct NoRanker;

impl Ranker for NoRanker {
    fn kind(&self) -> &'static str {
        "none"
    }

    fn score(&self, _: &Candidates<'_>, out: &mut [f32]) {
        out.fill(0.0);
    }

    fn artifact(&self) -> Artifact {
        Artifact { kind: "none", params: serde_json::Value::Null, tensors: Tensors::new() }
    }
}

impl TwoStage {
    /// Every candidate of every user with labels, labelled 1 when it is one of the user's
    /// `labels` (a hard negative otherwise); users with no labelled candidate are left out.
    fn labelled_candidates(
        &self,
        train: &TrainSet,
        labels: &tandem_data::Csr,
        progress: &dyn Progress,
    ) -> Vec<Example> {
        let m = &self.spec.mining;
        let users: Vec<u32> = (0..labels.n_rows() as u32).filter(|&u| labels.row_len(u as usize) > 0).collect();
        let step = progress.step("ranker window: candidates of labelled users", users.len() as u64);
        let per_user: Vec<Vec<Example>> = users
            .into_par_iter()
            .map(|u| {
                step.inc(1);
                let q = Query::from_row(&train.user_items, u);
                let (items, _) = self.candidates(&q);
                let wanted = labels.row(u as usize).0;
                let examples: Vec<Example> = items
                    .iter()
                    .map(|&item| {
                        let (label, weight, source) = if wanted.binary_search(&item).is_ok() {
                            (1.0, m.positive_weight, Source::Positive)
                        } else {
                            (0.0, m.hard_weight, Source::Hard)
                        };
                        Example { user: u, item, label, weight, source }
                    })
                    .collect();
                if examples.iter().any(|e| e.label > 0.0) {
                    examples
                } else {
                    Vec::new()
                }
            })
            .collect();
        per_user.into_iter().flatten().collect()
    }
}

/// Latest items kept per user for rankers that read the sequence.
const RECENT: usize = 50;

/// Each user's latest training items, most recent first.
fn latest_items(train: &TrainSet) -> Vec<Vec<u32>> {
    train.sequences().into_iter().map(|s| s.into_iter().rev().take(RECENT).collect()).collect()
}

/// A fitted two-stage pipeline.
pub struct TwoStage {
    spec: TwoStageSpec,
    retrievers: Vec<Box<dyn Retriever>>,
    ranker: Box<dyn Ranker>,
    /// Each training user's latest items, most recent first (at most [`RECENT`]).
    recent: Vec<Vec<u32>>,
    /// Per retriever, a candidate index over its item vectors (see [`TwoStage::use_index`]).
    indexes: Vec<Option<ItemIndex>>,
    retrieval_nanos: AtomicU64,
    ranking_nanos: AtomicU64,
}

impl TwoStage {
    fn new(
        spec: TwoStageSpec,
        retrievers: Vec<Box<dyn Retriever>>,
        ranker: Box<dyn Ranker>,
        recent: Vec<Vec<u32>>,
    ) -> Self {
        let (retrieval_nanos, ranking_nanos) = (AtomicU64::new(0), AtomicU64::new(0));
        let indexes = retrievers.iter().map(|_| None).collect();
        TwoStage { spec, retrievers, ranker, recent, indexes, retrieval_nanos, ranking_nanos }
    }

    /// The latest items of the query's user, most recent first: from training for known users,
    /// else the query's items with the last as the most recent.
    pub fn recent_items(&self, query: &Query<'_>) -> Vec<u32> {
        match query.trained.and_then(|u| self.recent.get(u as usize)) {
            Some(r) => r.clone(),
            None => query.items.iter().rev().take(RECENT).copied().collect(),
        }
    }

    /// The retrievers, in config order.
    pub fn retrievers(&self) -> &[Box<dyn Retriever>] {
        &self.retrievers
    }

    /// The ranker.
    pub fn ranker(&self) -> &dyn Ranker {
        self.ranker.as_ref()
    }

    /// The union of every retriever's top candidates for `query`, ascending, and each
    /// retriever's score of each of them. A retriever's candidates are its `recommend` list
    /// (its fast path: fused products, a popularity list, sparse sources) less what it scores
    /// -inf (sources that propose fewer items than asked).
    pub fn candidates(&self, query: &Query<'_>) -> (Vec<u32>, Vec<Vec<f32>>) {
        // An anonymous history comes in time order, not sorted.
        let mut seen = query.items.to_vec();
        seen.sort_unstable();
        let exclude = self.spec.exclude_seen.unwrap_or(true);
        let keep = |i: u32| !(exclude && seen.binary_search(&i).is_ok());
        let mut pool = Vec::new();
        for (r, index) in self.retrievers.iter().zip(&self.indexes) {
            let vectors = r.embeddings().zip(query.trained).filter(|(e, u)| (*u as usize) < e.users.rows());
            let top = match (index, vectors) {
                (Some(index), Some((e, u))) => index.top_k(e.users.row(u as usize), self.spec.candidates, &keep),
                _ => r.recommend(query, self.spec.candidates, &keep),
            };
            pool.extend(top.into_iter().filter(|s| s.score > f32::NEG_INFINITY).map(|s| s.item));
        }
        pool.sort_unstable();
        pool.dedup();
        let per_candidate = self
            .retrievers
            .iter()
            .map(|r| {
                let mut out = vec![0f32; pool.len()];
                r.score_items(query, &pool, &mut out);
                out
            })
            .collect();
        (pool, per_candidate)
    }
}

impl tandem_models::SparseScorer for TwoStage {
    /// The ranker's score of each candidate of `query`.
    fn proposed(&self, query: &Query<'_>) -> Vec<tandem_models::Scored> {
        self.ranked_timed(query).0
    }
}

impl TwoStage {
    /// Rebuilds a saved pipeline; `load` rebuilds its retrievers from their own artifacts.
    pub fn from_artifact(params: serde_json::Value, tensors: &Tensors, load: &Loader) -> Result<TwoStage> {
        let bad = |message: String| ModelError::Artifact { path: "two_stage model".into(), message };
        let saved: Saved = serde_json::from_value(params).map_err(|e| bad(format!("parameters: {e}")))?;
        let part = |prefix: &str| -> Tensors {
            tensors
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(prefix).map(|rest| (rest.to_string(), v.clone())))
                .collect()
        };
        let mut retrievers = Vec::new();
        for (k, p) in saved.parts.iter().enumerate() {
            retrievers.push(load(&p.kind, p.params.clone(), &part(&format!("retriever.{k}.")))?);
        }
        let ranker: Box<dyn Ranker> = match &saved.spec.ranker {
            RankerSpec::LateFusion(p) => Box::new(LateFusion::from_tensors(p.clone(), &part("ranker."))?),
            RankerSpec::Din(p) => Box::new(Din::from_tensors(p.clone(), &part("ranker."))?),
            RankerSpec::Gbdt(p) => Box::new(Gbdt::from_tensors(p.clone(), &part("ranker."))?),
        };
        if retrievers.len() != saved.spec.retrievers.len() {
            return Err(bad("retriever count disagrees with the spec".into()));
        }
        let recent = crate::parts::read_lists(&TensorReader::new(tensors, "two_stage"), "recent")?;
        Ok(TwoStage::new(saved.spec, retrievers, ranker, recent))
    }
}

/// What a saved pipeline keeps in its parameters: the spec and each retriever's saved kind
/// and parameters (their tensors are prefixed `retriever.K.`, the ranker's `ranker.`).
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    spec: TwoStageSpec,
    parts: Vec<SavedPart>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedPart {
    kind: String,
    params: serde_json::Value,
}

impl TwoStage {
    /// The pipeline `model` is, if it is one: how a server and a report reach its stages.
    pub fn of(model: &dyn Retriever) -> Option<&TwoStage> {
        model.as_any().downcast_ref()
    }

    /// The same, to change (to index its retrievers).
    pub fn of_mut(model: &mut dyn Retriever) -> Option<&mut TwoStage> {
        model.as_any_mut().downcast_mut()
    }

    /// The ranker's score of each candidate of `query`, and the seconds retrieval and ranking
    /// took in this call (also added to [`TwoStage::stage_seconds`]).
    fn ranked_timed(&self, query: &Query<'_>) -> (Vec<tandem_models::Scored>, [(&'static str, f64); 2]) {
        let start = Instant::now();
        let (items, retriever_scores) = self.candidates(query);
        let mid = Instant::now();
        let mut s = vec![0f32; items.len()];
        let recent = self.recent_items(query);
        let c = Candidates { query, recent: &recent, items: &items, retriever_scores: &retriever_scores };
        self.ranker.score(&c, &mut s);
        break_ties(&mut s, &retriever_scores);
        let (retrieval, ranking) = (mid - start, mid.elapsed());
        self.retrieval_nanos.fetch_add(retrieval.as_nanos() as u64, Ordering::Relaxed);
        self.ranking_nanos.fetch_add(ranking.as_nanos() as u64, Ordering::Relaxed);
        let ranked = items.into_iter().zip(s).map(|(item, score)| tandem_models::Scored { item, score }).collect();
        (ranked, [("retrieval", retrieval.as_secs_f64()), ("ranking", ranking.as_secs_f64())])
    }

    /// Scores like `score` and returns the seconds each stage of this call took (`retrieval`,
    /// `ranking`): what a server reports per request.
    pub fn score_timed(&self, query: &Query<'_>, out: &mut [f32]) -> Vec<(&'static str, f64)> {
        let (ranked, seconds) = self.ranked_timed(query);
        out.fill(f32::NEG_INFINITY);
        for s in ranked {
            out[s.item as usize] = s.score;
        }
        seconds.to_vec()
    }

    /// Builds candidate indexes of `kind` over the item vectors of the retrievers that have
    /// them, and retrieves through them from now on.
    pub fn use_index(&mut self, kind: IndexKind, probe_share: f64) {
        self.indexes = self
            .retrievers
            .iter()
            .map(|r| r.embeddings().map(|e| ItemIndex::build(kind, e.items, probe_share)))
            .collect();
    }

    /// Seconds spent so far per stage, summed over threads: what reports show.
    pub fn stage_seconds(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("retrieval", self.retrieval_nanos.load(Ordering::Relaxed) as f64 * 1e-9),
            ("ranking", self.ranking_nanos.load(Ordering::Relaxed) as f64 * 1e-9),
        ]
    }
}

/// Candidates the ranker scores equal are put in the order of the first retriever that tells
/// them apart (then by item), and their scores nudged down by whole ulps to say so. A ranker
/// with coarse outputs (a GBDT left a quarter of the top-10 slots tied on ml-100k ratio)
/// would otherwise leave ties, which evaluation rightly resolves against the held-out items
/// (SPEC §6). `by[r][k]` is retriever r's score of candidate k.
fn break_ties(scores: &mut [f32], by: &[Vec<f32>]) {
    use std::cmp::Ordering::Equal;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        let retrievers = || by.iter().map(|r| r[b].total_cmp(&r[a])).find(|o| o.is_ne()).unwrap_or(Equal);
        scores[b].total_cmp(&scores[a]).then_with(retrievers).then(a.cmp(&b))
    });
    let mut prev = f32::INFINITY;
    for k in order {
        if scores[k].is_nan() {
            continue;
        }
        if scores[k] >= prev {
            scores[k] = prev.next_down();
        }
        prev = scores[k];
    }
}

impl Retriever for TwoStage {
    fn kind(&self) -> &'static str {
        "two_stage"
    }

    fn n_items(&self) -> usize {
        self.retrievers[0].n_items()
    }

    fn params(&self) -> serde_json::Value {
        let parts =
            self.retrievers.iter().map(|r| SavedPart { kind: r.kind().to_string(), params: r.params() }).collect();
        serde_json::to_value(Saved { spec: self.spec.clone(), parts }).expect("params serialise")
    }

    fn artifact(&self) -> Artifact {
        let mut tensors = Tensors::new();
        let mut parts = Vec::new();
        for (k, r) in self.retrievers.iter().enumerate() {
            let a = r.artifact();
            parts.push(SavedPart { kind: a.kind.to_string(), params: a.params });
            tensors.extend(a.tensors.into_iter().map(|(name, t)| (format!("retriever.{k}.{name}"), t)));
        }
        tensors.extend(self.ranker.artifact().tensors.into_iter().map(|(name, t)| (format!("ranker.{name}"), t)));
        crate::parts::put_lists(&mut tensors, "recent", &self.recent);
        let saved = Saved { spec: self.spec.clone(), parts };
        Artifact { kind: "two_stage", params: serde_json::to_value(&saved).expect("params serialise"), tensors }
    }

    // Candidates get the ranker's score, every other item -inf.
    tandem_models::sparse_scoring!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_data::read::ItemInfo;
    use tandem_data::NoProgress;
    use tandem_models::testing::{checkerboard, conformance_with};

    fn spec() -> TwoStageSpec {
        serde_json::from_value(serde_json::json!({
            "retrievers": [{"kind": "als", "factors": 4, "iterations": 5}, {"kind": "popularity"}],
            "candidates": 6,
            "window": 1,
            "mining": {"top_k": 4},
            "ranker": {"kind": "late_fusion", "hidden": [16, 8], "epochs": 20, "batch_size": 16, "learning_rate": 0.01}
        }))
        .unwrap()
    }

    #[test]
    fn ranker_ties_keep_the_retrievers_order_and_nothing_else_moves() {
        // Candidates 0..5: the ranker ties 1, 2 and 3 at 0.5; retriever 0 ties 2 and 3 as well,
        // retriever 1 prefers 3. Expected order: 0 (0.9), 3, 2, 1, then 4 (0.1).
        let mut s = vec![0.9f32, 0.5, 0.5, 0.5, 0.1];
        let by = vec![vec![0.0, 0.2, 0.7, 0.7, 0.0], vec![0.0, 0.0, 0.1, 0.3, 0.0]];
        break_ties(&mut s, &by);
        assert_eq!(s[0], 0.9);
        assert_eq!(s[3], 0.5, "the first of a tie keeps its score");
        assert!(s[3] > s[2] && s[2] > s[1] && s[1] > s[4], "{s:?}");
        assert!(0.5 - s[1] < 1e-6, "nudged by ulps only: {s:?}");
        assert_eq!(s[4], 0.1);
    }

    #[test]
    fn a_pipeline_is_a_retriever_and_round_trips() {
        let t = checkerboard();
        // Both ways of training the ranker make a working pipeline.
        let m =
            TwoStageSpec { training: RankerTraining::Train, ..spec() }.fit(&t, Side::default(), &NoProgress).unwrap();
        conformance_with(&m, &t, 0.0, &crate::registry::load);
        let din = RankerSpec::Din(DinParams { epochs: 3, batch_size: 16, ..Default::default() });
        let m = TwoStageSpec { ranker: din, ..spec() }.fit(&t, Side::default(), &NoProgress).unwrap();
        conformance_with(&m, &t, 0.0, &crate::registry::load);
        let m = spec().fit(&t, Side::default(), &NoProgress).unwrap();
        conformance_with(&m, &t, 0.0, &crate::registry::load);
        let stages = m.stage_seconds();
        assert_eq!(stages.iter().map(|s| s.0).collect::<Vec<_>>(), ["retrieval", "ranking"]);
        assert!(stages.iter().all(|s| s.1 > 0.0), "timed: {stages:?}");
        // Several windows, each ranker (listwise too).
        let lw = LateFusionParams { loss: crate::RankLoss::Listwise, epochs: 5, batch_size: 16, ..Default::default() };
        let m = TwoStageSpec { windows: 3, ranker: RankerSpec::LateFusion(lw), ..spec() }.fit(
            &t,
            Side::default(),
            &NoProgress,
        );
        conformance_with(&m.unwrap(), &t, 0.0, &crate::registry::load);
        let din = RankerSpec::Din(DinParams { epochs: 2, batch_size: 16, ..Default::default() });
        let m = TwoStageSpec { windows: 2, ranker: din, ..spec() }.fit(&t, Side::default(), &NoProgress).unwrap();
        conformance_with(&m, &t, 0.0, &crate::registry::load);
        // Trees: one window (no validation), three (early stopping on the latest, refit), and
        // three bags of sampled rows and features (each saved, averaged when scoring).
        let lambdarank = crate::GbdtObjective::Lambdarank;
        for (windows, objective, bags) in [(1, lambdarank, 1), (3, crate::GbdtObjective::Binary, 1), (3, lambdarank, 3)]
        {
            let sampled = if bags > 1 { 0.7 } else { 1.0 };
            let gbdt = RankerSpec::Gbdt(GbdtParams {
                trees: 20,
                objective,
                bags,
                feature_fraction: sampled,
                bagging_fraction: sampled,
                ..Default::default()
            });
            let m = TwoStageSpec { windows, ranker: gbdt, ..spec() }.fit(&t, Side::default(), &NoProgress).unwrap();
            conformance_with(&m, &t, 0.0, &crate::registry::load);
            let saved = m.ranker().artifact().tensors;
            assert_eq!((0..bags).filter(|b| saved.contains_key(&crate::gbdt::model_key(*b))).count(), bags);
            let importance = m.ranker().importance().expect("trees rank their features");
            assert!(importance.windows(2).all(|w| w[0].1 >= w[1].1), "largest gain first: {importance:?}");
        }
    }

    /// Item metadata (years, genres) goes through save -> load with both rankers: a loaded
    /// ranker once lost the number of genres and indexed past its tables.
    #[test]
    fn pipelines_with_item_metadata_round_trip() {
        let t = checkerboard();
        let info: Vec<ItemInfo> = (0..t.n_items())
            .map(|i| ItemInfo {
                year: Some(1990 + i as i32),
                genres: vec![["Drama", "Comedy", "Horror"][i % 3].to_string(), "Film".into()],
                ..Default::default()
            })
            .collect();
        for ranker in [
            RankerSpec::LateFusion(LateFusionParams { epochs: 3, batch_size: 16, ..Default::default() }),
            RankerSpec::Din(DinParams { epochs: 2, batch_size: 16, ..Default::default() }),
            RankerSpec::Gbdt(GbdtParams { trees: 10, ..Default::default() }),
        ] {
            let m = TwoStageSpec { ranker, ..spec() }.fit(&t, Side::items(&info), &NoProgress).unwrap();
            conformance_with(&m, &t, 0.0, &crate::registry::load);
        }
    }

    /// Retrieving through an index that scans everything (exact, or IVF over all its lists)
    /// changes nothing; a sparser IVF still gives every user a ranked list.
    #[test]
    fn indexed_retrieval_matches_full_scoring() {
        let t = checkerboard();
        let mut m = spec().fit(&t, Side::default(), &NoProgress).unwrap();
        let scores = |m: &TwoStage| {
            (0..t.n_users() as u32)
                .map(|u| {
                    let mut out = vec![0f32; t.n_items()];
                    m.score(&Query::from_row(&t.user_items, u), &mut out);
                    out
                })
                .collect::<Vec<_>>()
        };
        let full = scores(&m);
        for (kind, share) in [(IndexKind::Exact, 1.0), (IndexKind::Ivf, 1.0)] {
            m.use_index(kind, share);
            assert!(m.indexes[0].is_some() && m.indexes[1].is_none(), "ALS has vectors, popularity none");
            assert_eq!(scores(&m), full, "{kind:?}");
        }
        m.use_index(IndexKind::Ivf, 0.3);
        assert!(scores(&m).iter().all(|s| s.iter().any(|v| v.is_finite())));
    }

    #[test]
    fn only_candidates_are_scored_and_seen_items_stay_out() {
        let t = checkerboard();
        let m = spec().fit(&t, Side::default(), &NoProgress).unwrap();
        let q = Query::from_row(&t.user_items, 0);
        let (items, scores) = m.candidates(&q);
        assert!(items.iter().all(|i| !q.items.contains(i)), "seen items excluded");
        assert_eq!(scores.len(), 2);
        assert!(items.len() <= 6 * 2 && !items.is_empty());
        let mut out = vec![0f32; t.n_items()];
        m.score(&q, &mut out);
        for (i, s) in out.iter().enumerate() {
            assert_eq!(s.is_finite(), items.contains(&(i as u32)), "item {i}");
        }
    }

    #[test]
    fn the_window_holds_out_each_users_last_rows_by_time() {
        let mut log = tandem_data::Interactions::new();
        // User 0: items 3, 1, 2, 0 at times 0..4 (so 2 and 0 are last); user 1: two rows only.
        for (user, item, time) in [(0, 3, 0), (0, 1, 1), (0, 0, 3), (0, 2, 2), (1, 1, 0), (1, 2, 1)] {
            log.push(tandem_data::Interaction { user, item, time, weight: 1.0 });
        }
        let t = TrainSet::new(log, 2, 4);
        let (before, labels) = hold_out_last(&t, 2);
        assert_eq!(labels.row(0).0, &[0, 2]);
        assert_eq!(before.user_items.row(0).0, &[1, 3]);
        assert_eq!(labels.row_len(1), 0, "a user with no more rows than the window keeps them");
        assert_eq!(before.user_items.row(1).0, &[1, 2]);
    }

    #[test]
    fn a_share_window_holds_out_that_share_of_each_users_rows_at_random() {
        let mut log = tandem_data::Interactions::new();
        // User 0: 10 rows, user 1: 3 rows (floor(0.3 x 3) = 0: all kept), user 2: 20 rows.
        for (user, n) in [(0u32, 10u32), (1, 3), (2, 20)] {
            for item in 0..n {
                log.push(tandem_data::Interaction { user, item, time: i64::from(item), weight: 1.0 });
            }
        }
        let t = TrainSet::new(log, 3, 20);
        let (before, labels) = hold_out_share(&t, 0.3, 0);
        assert_eq!((0..3).map(|u| labels.row_len(u)).collect::<Vec<_>>(), [3, 0, 6]);
        assert_eq!((0..3).map(|u| before.user_items.row_len(u)).collect::<Vec<_>>(), [7, 3, 14]);
        let latest: Vec<u32> = (14..20).collect();
        assert_ne!(labels.row(2).0, &latest[..], "random rows, not the latest");
        assert_eq!(hold_out_share(&t, 0.3, 0).1.row(2).0, labels.row(2).0, "seeded");
        let e = TwoStageSpec { window_share: Some(1.5), ..spec() }.fit(&t, Side::default(), &NoProgress);
        assert!(e.err().unwrap().to_string().contains("window_share"));
        let both = TwoStageSpec { window_share: Some(0.1), window_days: Some(7), ..spec() };
        let e = both.fit(&t, Side::default(), &NoProgress).err().unwrap().to_string();
        assert!(e.contains("window_share") && e.contains("window_days"), "{e}");
    }

    #[test]
    fn a_days_window_cuts_at_one_time_for_everyone() {
        let mut log = tandem_data::Interactions::new();
        let day = 86_400;
        for (user, item, time) in [(0, 0, 0), (0, 1, 9 * day), (1, 2, 5 * day), (1, 3, 10 * day)] {
            log.push(tandem_data::Interaction { user, item, time, weight: 1.0 });
        }
        let (before, labels) = hold_out_days(&TrainSet::new(log, 2, 4), 2);
        assert_eq!((labels.row(0).0, labels.row(1).0), (&[1][..], &[3][..]), "rows after day 8");
        assert_eq!((before.user_items.row(0).0, before.user_items.row(1).0), (&[0][..], &[2][..]));
    }

    #[test]
    fn bad_specs_are_named() {
        let t = checkerboard();
        let e = TwoStageSpec { retrievers: vec![], ..spec() }
            .fit(&t, Side::default(), &NoProgress)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("retrievers"), "{e}");
        let e =
            TwoStageSpec { candidates: 0, ..spec() }.fit(&t, Side::default(), &NoProgress).err().unwrap().to_string();
        assert!(e.contains("candidates"), "{e}");
        let e = TwoStageSpec { windows: 0, ..spec() }.fit(&t, Side::default(), &NoProgress).err().unwrap().to_string();
        assert!(e.contains("windows"), "{e}");
        let gbdt = RankerSpec::Gbdt(GbdtParams { learning_rate: 0.0, ..Default::default() });
        let e =
            TwoStageSpec { ranker: gbdt, ..spec() }.fit(&t, Side::default(), &NoProgress).err().unwrap().to_string();
        assert!(e.contains("ranker.learning_rate"), "{e}");
        let e = serde_json::from_value::<TwoStageSpec>(
            serde_json::json!({"retrievers": [], "ranker": {"kind": "catboost"}}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("catboost") && e.contains("late_fusion") && e.contains("gbdt"), "{e}");
    }
}
