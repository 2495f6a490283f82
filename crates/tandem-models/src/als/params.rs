//! ALS hyper-parameters.

use serde::{Deserialize, Serialize};

use super::Als;
use crate::artifact::{TensorReader, Tensors};
use crate::error::{ModelError, Result};
use crate::kind::{saved_params, Dim, Fit, ModelParams};
use crate::retriever::Retriever;

fn factors() -> usize {
    64
}
// Defaults chosen on a validation split of ml-100k temporal train (bench/tune.sh), never test.
fn regularization() -> f32 {
    10.0
}
fn alpha() -> f32 {
    0.0
}
fn iterations() -> usize {
    15
}
fn cg_steps() -> usize {
    3
}
fn seed() -> u64 {
    42
}

/// Parameters of [`super::Als`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlsParams {
    /// Latent factors (default 64, 1..=1024).
    #[serde(default = "factors")]
    pub factors: usize,
    /// L2 regularisation λ (default 10, >= 0).
    #[serde(default = "regularization")]
    pub regularization: f32,
    /// Confidence slope: c = 1 + alpha * weight (default 0, >= 0; `implicit`'s alpha is ours + 1).
    #[serde(default = "alpha")]
    pub alpha: f32,
    /// Alternating iterations (default 15, >= 1).
    #[serde(default = "iterations")]
    pub iterations: usize,
    /// Conjugate-gradient steps per row and half-iteration (default 3, >= 1).
    #[serde(default = "cg_steps")]
    pub cg_steps: usize,
    /// Seed of the initial factors (default 42).
    #[serde(default = "seed")]
    pub seed: u64,
    /// Recency half-life in interactions (default 0 = off): a pair's weight is multiplied by
    /// `0.5^(age / half_life)`, age being how many of the user's training rows came after it, so
    /// with `alpha > 0` recent items carry more confidence. For test sets that are each user's
    /// next items (ml-100k temporal: half-life 3 with alpha 10 and λ 20, chosen on validation).
    #[serde(default)]
    pub recency_half_life: f32,
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams {
            factors: factors(),
            regularization: regularization(),
            alpha: alpha(),
            iterations: iterations(),
            cg_steps: cg_steps(),
            seed: seed(),
            recency_half_life: 0.0,
        }
    }
}

impl ModelParams for AlsParams {
    /// Checks the parameters' ranges.
    fn check(&self) -> Result<()> {
        let bad = |name: &str, value: String, allowed| {
            Err(ModelError::InvalidParameter { name: name.into(), value, allowed })
        };
        if !(1..=1024).contains(&self.factors) {
            return bad("factors", self.factors.to_string(), "between 1 and 1024");
        }
        if !(self.regularization >= 0.0 && self.regularization.is_finite()) {
            return bad("regularization", self.regularization.to_string(), "a finite number >= 0");
        }
        if !(self.alpha >= 0.0 && self.alpha.is_finite()) {
            return bad("alpha", self.alpha.to_string(), "a finite number >= 0");
        }
        if !(self.recency_half_life >= 0.0 && self.recency_half_life.is_finite()) {
            return bad("recency_half_life", self.recency_half_life.to_string(), "a finite number >= 0 (0 = off)");
        }
        if self.iterations == 0 {
            return bad("iterations", "0".into(), "at least 1");
        }
        if self.cg_steps == 0 {
            return bad("cg_steps", "0".into(), "at least 1");
        }
        Ok(())
    }

    fn fit(&self, fit: &mut Fit<'_>) -> Result<Box<dyn Retriever>> {
        Ok(Box::new(AlsParams::fit(self, fit.train, fit.progress)?))
    }

    fn load(kind: &str, params: serde_json::Value, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        let t = TensorReader::new(tensors, "als");
        Ok(Box::new(Als::from_parts(saved_params(kind, params)?, t.matrix("user_factors")?, t.matrix("item_factors")?)))
    }

    fn space() -> Vec<Dim> {
        vec![
            Dim::int("factors", 16, 256, true),
            Dim::float("regularization", 0.01, 100.0, true),
            Dim::float("alpha", 0.0, 40.0, false),
            Dim::int("iterations", 5, 30, false),
        ]
    }
}
