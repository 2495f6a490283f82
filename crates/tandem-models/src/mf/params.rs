//! MF hyper-parameters.

use std::ops::Bound::{Excluded, Unbounded};

use serde::{Deserialize, Serialize};

use super::Mf;
use crate::artifact::{TensorReader, Tensors};
use crate::error::{within, ModelError, Result};
use crate::kind::{saved_params, Dim, Fit, ModelParams};
use crate::optim::OptimizerKind;
use crate::retriever::Retriever;

/// The training loss.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Bayesian personalised ranking, `-log σ(s_pos - s_neg - margin)` (the default).
    #[default]
    Bpr,
    /// Binary cross-entropy on positives (label 1) and negatives (label 0), logs clamped at -100.
    Bce,
}

/// How negatives are chosen (SPEC §4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NegativeMode {
    /// `negatives` uniform draws per positive, resampled every epoch (the default).
    #[default]
    Uniform,
    /// Static: drawn once before training; `negatives` per user for BCE, per positive for BPR.
    Fixed,
    /// Static 1:1: one negative per positive, drawn once.
    Even,
    /// Dynamic hard negatives every epoch: `hard_candidates` random candidates scored by the
    /// current model, the `hard_keep` best kept, plus `hard_random` random others.
    Hard,
}

/// Parameters of [`super::Mf`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MfParams {
    /// Latent factors (default 64, 1..=1024).
    pub factors: usize,
    /// `bpr` (default) or `bce`.
    pub loss: Loss,
    /// BPR margin m in `-log σ(s_pos - s_neg - m)`; 0 is plain BPR (default 0).
    pub margin: f32,
    /// `uniform` (default), `fixed`, `even` or `hard`.
    pub negative_mode: NegativeMode,
    /// Negatives per positive (`uniform`, and `fixed` with BPR) or per user (`fixed` with BCE);
    /// default 4, >= 1.
    pub negatives: usize,
    /// `hard`: random candidates scored per positive (N, default 10).
    pub hard_candidates: usize,
    /// `hard`: best-scored candidates kept (M, default 3, <= N).
    pub hard_keep: usize,
    /// `hard`: extra random negatives excluding the candidates (K, default 3).
    pub hard_random: usize,
    /// `adagrad` (default), `adam` or `sgd`.
    pub optimizer: OptimizerKind,
    /// Learning rate (default 0.1, > 0).
    pub learning_rate: f32,
    /// L2 weight decay on every touched row (default 0.01, >= 0).
    pub weight_decay: f32,
    /// Epochs (default 40, >= 1).
    pub epochs: usize,
    /// With one block (Hogwild): examples a worker takes at a time; each example's update is
    /// applied at once. Default 1024, >= 1.
    pub batch_size: usize,
    /// Standard deviation of the initial factors, N(0, std) (default 0.01); biases start at 0.
    pub init_std: f32,
    /// Learn the global, user and item biases (default true).
    pub biases: bool,
    /// Worker threads: 0 = rayon's pool; 1 = one thread (default 0).
    pub threads: usize,
    /// Blocks per side for parallel training: every epoch users and items are dealt at random
    /// into this many blocks each, and threads train examples of disjoint user and item blocks
    /// at once, so no two threads share a row and the result is the same on any number of
    /// threads (DSGD). A BPR negative then comes from its positive's item block. 1 = no blocks:
    /// threads share every row (Hogwild, results vary from run to run). 0 (default) = 1 on one
    /// thread, twice the threads otherwise. At most one block per 64 users and per 64 items.
    pub blocks: usize,
    /// Random seed (default 42).
    pub seed: u64,
    /// With validation: stop after this many epochs without improvement and keep the best
    /// epoch's weights (default 3; 0 never stops early but still keeps the best).
    pub patience: usize,
    /// BPR only: weigh each positive's pairs by `0.5^(age / half_life)`, age = how many of the
    /// user's rows came after it (as ALS's `recency_half_life`), so the factors follow what
    /// users did last; for test sets of each user's next items. 0 = off (default).
    pub recency_half_life: f32,
}

// Defaults chosen on a validation split of ml-100k temporal train (bench/tune.sh), never test.
impl Default for MfParams {
    fn default() -> Self {
        MfParams {
            factors: 64,
            loss: Default::default(),
            margin: Default::default(),
            negative_mode: Default::default(),
            negatives: 4,
            hard_candidates: 10,
            hard_keep: 3,
            hard_random: 3,
            optimizer: Default::default(),
            learning_rate: 0.1,
            weight_decay: 0.01,
            epochs: 40,
            batch_size: 1024,
            init_std: 0.01,
            biases: true,
            threads: Default::default(),
            blocks: 0,
            seed: 42,
            patience: 3,
            recency_half_life: 0.0,
        }
    }
}

impl ModelParams for MfParams {
    /// Checks the parameters' ranges.
    fn check(&self) -> Result<()> {
        within("factors", self.factors, 1..=1024)?;
        within("learning_rate", self.learning_rate, (Excluded(0.0), Unbounded))?;
        within("weight_decay", self.weight_decay, 0.0..)?;
        within("margin", self.margin, ..)?;
        within("init_std", self.init_std, 0.0..)?;
        within("epochs", self.epochs, 1..)?;
        within("batch_size", self.batch_size, 1..)?;
        within("blocks", self.blocks, 0..=1024)?;
        within("negatives", self.negatives, 1..=1000)?;
        within("recency_half_life", self.recency_half_life, 0.0..)?;
        if self.recency_half_life > 0.0 && self.loss != Loss::Bpr {
            return Err(ModelError::invalid(
                "recency_half_life",
                self.recency_half_life,
                "0 with loss bce (recency weighs BPR pairs)",
            ));
        }
        if self.negative_mode == NegativeMode::Hard {
            within("hard_candidates", self.hard_candidates, 1..=1000)?;
            within("hard_keep", self.hard_keep, 0..=self.hard_candidates)?;
            within("hard_random", self.hard_random, usize::from(self.hard_keep == 0)..=1000)?;
        }
        Ok(())
    }

    fn fit(&self, fit: &mut Fit<'_>) -> Result<Box<dyn Retriever>> {
        Ok(Box::new(match fit.validate.as_deref_mut() {
            Some(v) => self.fit_with(fit.train, fit.progress, &mut |r, m| v(r, m))?,
            None => MfParams::fit(self, fit.train, fit.progress)?,
        }))
    }

    fn load(kind: &str, params: serde_json::Value, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        let t = TensorReader::new(tensors, "mf");
        let (users, items) = (t.matrix("user_factors")?, t.matrix("item_factors")?);
        let (user_bias, item_bias) = (t.f32("user_bias")?.1, t.f32("item_bias")?.1);
        let global = t.f32("global_bias")?.1.first().copied().unwrap_or(0.0);
        if user_bias.len() != users.rows() || item_bias.len() != items.rows() || users.dim() != items.dim() {
            return Err(ModelError::Artifact { path: "mf model".into(), message: "tensor shapes disagree".into() });
        }
        Ok(Box::new(Mf::from_parts(saved_params(kind, params)?, users, items, user_bias, item_bias, global)))
    }

    fn space() -> Vec<Dim> {
        vec![
            Dim::int("factors", 16, 256, true),
            Dim::float("learning_rate", 0.001, 0.3, true),
            Dim::float("weight_decay", 1e-6, 0.1, true),
            Dim::int("epochs", 5, 100, true),
            Dim::choice("negative_mode", &["uniform", "hard"]),
            Dim::float("recency_half_life", 0.0, 30.0, false).next_items(),
        ]
    }
}
