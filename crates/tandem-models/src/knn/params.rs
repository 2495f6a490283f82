//! Parameters shared by item-item and user-user neighbourhood models.

use serde::{Deserialize, Serialize};

use super::weighting::Weighting;
use super::{ItemKnn, UserKnn};
use crate::artifact::{TensorReader, Tensors};
use crate::error::{ModelError, Result};
use crate::kind::{saved_params, Dim, Fit, ModelParams};
use crate::retriever::Retriever;

// Defaults chosen on a validation split of ml-100k temporal train (bench/tune_knn.sh), never on test.
fn neighbours() -> usize {
    200
}
// k1 as implicit's BM25Recommender (its bm25_weight defaults of 100 / 0.8 are meant for ALS).
fn k1() -> f32 {
    1.2
}
fn b() -> f32 {
    0.5
}

/// Parameters of [`super::ItemKnn`] and [`super::UserKnn`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KnnParams {
    /// `bm25` (default), `cosine`, `tfidf` or `none`.
    #[serde(default)]
    pub weighting: Weighting,
    /// Neighbours kept per item (item-item) or used per user (user-user); default 200, >= 1.
    #[serde(default = "neighbours")]
    pub neighbours: usize,
    /// BM25 saturation k1 (default 1.2, > 0).
    #[serde(default = "k1")]
    pub bm25_k1: f32,
    /// BM25 length normalisation b (default 0.5, in [0, 1]).
    #[serde(default = "b")]
    pub bm25_b: f32,
    /// Shrinkage: similarities are multiplied by n / (n + shrink), n = co-occurrences (default 0).
    #[serde(default)]
    pub shrink: f32,
}

impl Default for KnnParams {
    fn default() -> Self {
        KnnParams { weighting: Weighting::default(), neighbours: neighbours(), bm25_k1: k1(), bm25_b: b(), shrink: 0.0 }
    }
}

impl ModelParams for KnnParams {
    /// Checks the parameters' ranges.
    fn check(&self) -> Result<()> {
        let bad = |name: &str, value: String, allowed| {
            Err(ModelError::InvalidParameter { name: name.into(), value, allowed })
        };
        if self.neighbours == 0 {
            return bad("neighbours", "0".into(), "at least 1");
        }
        if !(self.bm25_k1 > 0.0 && self.bm25_k1.is_finite()) {
            return bad("bm25_k1", self.bm25_k1.to_string(), "a finite number above 0");
        }
        if !(0.0..=1.0).contains(&self.bm25_b) {
            return bad("bm25_b", self.bm25_b.to_string(), "between 0 and 1");
        }
        if !(self.shrink >= 0.0 && self.shrink.is_finite()) {
            return bad("shrink", self.shrink.to_string(), "a finite number >= 0");
        }
        Ok(())
    }

    /// `item_knn` or `user_knn`.
    fn fit(&self, fit: &mut Fit<'_>) -> Result<Box<dyn Retriever>> {
        Ok(match fit.kind {
            "user_knn" => Box::new(self.fit_user_knn(fit.train, fit.progress)?),
            _ => Box::new(self.fit_item_knn(fit.train, fit.progress)?),
        })
    }

    fn load(kind: &str, params: serde_json::Value, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        let p = saved_params(kind, params)?;
        Ok(match kind {
            "user_knn" => Box::new(UserKnn::from_matrix(p, TensorReader::new(tensors, "user_knn").csr("user_items")?)),
            _ => Box::new(ItemKnn::from_neighbours(p, TensorReader::new(tensors, "item_knn").csr("neighbours")?)),
        })
    }

    fn space() -> Vec<Dim> {
        vec![
            Dim::choice("weighting", &["bm25", "cosine", "tfidf", "none"]),
            Dim::int("neighbours", 10, 1000, true),
            Dim::float("shrink", 0.0, 100.0, false),
        ]
    }
}
