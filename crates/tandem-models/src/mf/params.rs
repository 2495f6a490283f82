//! MF hyper-parameters.

use serde::{Deserialize, Serialize};

use super::Mf;
use crate::artifact::{TensorReader, Tensors};
use crate::error::{ModelError, Result};
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

fn factors() -> usize {
    64
}
// Defaults chosen on a validation split of ml-100k temporal train (bench/tune.sh), never test.
fn lr() -> f32 {
    0.1
}
fn epochs() -> usize {
    40
}
fn weight_decay() -> f32 {
    0.01
}
fn negatives() -> usize {
    4
}
fn batch() -> usize {
    1024
}
fn seed() -> u64 {
    42
}
fn hard_candidates() -> usize {
    10
}
fn hard_keep() -> usize {
    3
}
fn hard_random() -> usize {
    3
}
fn init_std() -> f32 {
    0.01
}
fn patience() -> usize {
    3
}

/// Parameters of [`super::Mf`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MfParams {
    /// Latent factors (default 64, 1..=1024).
    #[serde(default = "factors")]
    pub factors: usize,
    /// `bpr` (default) or `bce`.
    #[serde(default)]
    pub loss: Loss,
    /// BPR margin m in `-log σ(s_pos - s_neg - m)`; 0 is plain BPR (default 0).
    #[serde(default)]
    pub margin: f32,
    /// `uniform` (default), `fixed`, `even` or `hard`.
    #[serde(default)]
    pub negative_mode: NegativeMode,
    /// Negatives per positive (`uniform`, and `fixed` with BPR) or per user (`fixed` with BCE);
    /// default 4, >= 1.
    #[serde(default = "negatives")]
    pub negatives: usize,
    /// `hard`: random candidates scored per positive (N, default 10).
    #[serde(default = "hard_candidates")]
    pub hard_candidates: usize,
    /// `hard`: best-scored candidates kept (M, default 3, <= N).
    #[serde(default = "hard_keep")]
    pub hard_keep: usize,
    /// `hard`: extra random negatives excluding the candidates (K, default 3).
    #[serde(default = "hard_random")]
    pub hard_random: usize,
    /// `adagrad` (default), `adam` or `sgd`.
    #[serde(default)]
    pub optimizer: OptimizerKind,
    /// Learning rate (default 0.1, > 0).
    #[serde(default = "lr")]
    pub learning_rate: f32,
    /// L2 weight decay on every touched row (default 0.01, >= 0).
    #[serde(default = "weight_decay")]
    pub weight_decay: f32,
    /// Epochs (default 40, >= 1).
    #[serde(default = "epochs")]
    pub epochs: usize,
    /// Examples a worker takes at a time; each example's update is applied at once (Hogwild).
    /// Default 1024, >= 1.
    #[serde(default = "batch")]
    pub batch_size: usize,
    /// Standard deviation of the initial factors, N(0, std) (default 0.01); biases start at 0.
    #[serde(default = "init_std")]
    pub init_std: f32,
    /// Learn the global, user and item biases (default true).
    #[serde(default = "yes")]
    pub biases: bool,
    /// Worker threads: 0 = rayon's pool (Hogwild); 1 = one thread, bit-reproducible (default 0).
    #[serde(default)]
    pub threads: usize,
    /// Random seed (default 42).
    #[serde(default = "seed")]
    pub seed: u64,
    /// With validation: stop after this many epochs without improvement and keep the best
    /// epoch's weights (default 3; 0 never stops early but still keeps the best).
    #[serde(default = "patience")]
    pub patience: usize,
}

fn yes() -> bool {
    true
}

impl Default for MfParams {
    fn default() -> Self {
        serde_json::from_value(serde_json::Value::Object(Default::default())).expect("every field has a default")
    }
}

impl ModelParams for MfParams {
    /// Checks the parameters' ranges.
    fn check(&self) -> Result<()> {
        let bad = |name: &str, value: String, allowed| {
            Err(ModelError::InvalidParameter { name: name.into(), value, allowed })
        };
        if !(1..=1024).contains(&self.factors) {
            return bad("factors", self.factors.to_string(), "between 1 and 1024");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate", self.learning_rate.to_string(), "a finite number above 0");
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad("weight_decay", self.weight_decay.to_string(), "a finite number >= 0");
        }
        if !self.margin.is_finite() {
            return bad("margin", self.margin.to_string(), "a finite number");
        }
        if !(self.init_std >= 0.0 && self.init_std.is_finite()) {
            return bad("init_std", self.init_std.to_string(), "a finite number >= 0");
        }
        if self.epochs == 0 {
            return bad("epochs", "0".into(), "at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "0".into(), "at least 1");
        }
        if self.negatives == 0 || self.negatives > 1000 {
            return bad("negatives", self.negatives.to_string(), "between 1 and 1000");
        }
        if self.negative_mode == NegativeMode::Hard {
            if self.hard_candidates == 0 || self.hard_candidates > 1000 {
                return bad("hard_candidates", self.hard_candidates.to_string(), "between 1 and 1000");
            }
            if self.hard_keep > self.hard_candidates {
                return bad("hard_keep", self.hard_keep.to_string(), "at most hard_candidates");
            }
            if self.hard_keep + self.hard_random == 0 || self.hard_random > 1000 {
                return bad("hard_random", self.hard_random.to_string(), "0..=1000, with hard_keep + hard_random >= 1");
            }
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
        ]
    }
}
