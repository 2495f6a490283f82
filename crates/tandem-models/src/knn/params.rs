//! Parameters shared by item-item and user-user neighbourhood models.

use std::ops::Bound::{Excluded, Unbounded};

use serde::{Deserialize, Serialize};

use super::weighting::Weighting;
use super::{ItemKnn, UserKnn};
use crate::artifact::{TensorReader, Tensors};
use crate::error::{within, Result};
use crate::kind::{saved_params, Dim, Fit, ModelParams};
use crate::retriever::Retriever;

/// Parameters of [`super::ItemKnn`] and [`super::UserKnn`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct KnnParams {
    /// `bm25` (default), `cosine`, `tfidf` or `none`.
    pub weighting: Weighting,
    /// Neighbours kept per item (item-item) or used per user (user-user); default 200, >= 1.
    pub neighbours: usize,
    /// BM25 saturation k1 (default 1.2, > 0).
    pub bm25_k1: f32,
    /// BM25 length normalisation b (default 0.5, in [0, 1]).
    pub bm25_b: f32,
    /// Shrinkage: similarities are multiplied by n / (n + shrink), n = co-occurrences (default 0).
    pub shrink: f32,
    /// Item kNN only: score a trained user from their `latest` most recently bought distinct
    /// items, each weighing 1 (the H&M recipe's item-CF from the latest purchases); 0 (default)
    /// scores from the whole history.
    pub latest: usize,
    /// Item kNN only: similarities from the rows of the last `window_days` days of training
    /// alone (unset: all rows) — fresher, and far quicker on long logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_days: Option<u32>,
    /// Item kNN only: recency half-life in rows (default 0 = off): a trained user is scored
    /// from their training history with each row's weight times `0.5^(age / half_life)`, age
    /// being how many of their rows came after it (not with `latest`).
    pub recency_half_life: f32,
}

// Defaults chosen on a validation split of ml-100k temporal train (bench/tune_knn.sh), never on test;
// k1 as implicit's BM25Recommender (its bm25_weight defaults of 100 / 0.8 are meant for ALS).
impl Default for KnnParams {
    fn default() -> Self {
        KnnParams {
            weighting: Weighting::Bm25,
            neighbours: 200,
            bm25_k1: 1.2,
            bm25_b: 0.5,
            shrink: 0.0,
            latest: 0,
            window_days: None,
            recency_half_life: 0.0,
        }
    }
}

impl ModelParams for KnnParams {
    /// Checks the parameters' ranges.
    fn check(&self) -> Result<()> {
        within("neighbours", self.neighbours, 1..)?;
        within("bm25_k1", self.bm25_k1, (Excluded(0.0), Unbounded))?;
        within("bm25_b", self.bm25_b, 0.0..=1.0)?;
        within("shrink", self.shrink, 0.0..)?;
        within("latest", self.latest, 0..=10_000)?;
        within("recency_half_life", self.recency_half_life, 0.0..)?;
        if self.latest > 0 && self.recency_half_life > 0.0 {
            return Err(crate::ModelError::invalid(
                "recency_half_life",
                self.recency_half_life,
                "0 when `latest` is set (one of the two picks what a trained user is scored from)",
            ));
        }
        self.window_days.map_or(Ok(()), |d| within("window_days", d, 1..))
    }

    /// `item_knn` or `user_knn`.
    fn fit(&self, fit: &mut Fit<'_>) -> Result<Box<dyn Retriever>> {
        Ok(match fit.kind {
            "user_knn" if self.window_days.is_some() => {
                return Err(crate::ModelError::invalid(
                    "window_days",
                    self.window_days,
                    "unset for user_knn (an item_knn key)",
                ))
            }
            "user_knn" if self.recency_half_life > 0.0 => {
                return Err(crate::ModelError::invalid(
                    "recency_half_life",
                    self.recency_half_life,
                    "0 for user_knn (an item_knn key)",
                ))
            }
            "user_knn" if self.latest > 0 => {
                return Err(crate::ModelError::invalid(
                    "latest",
                    self.latest,
                    "0 for user_knn (item_knn scores from the latest items)",
                ))
            }
            "user_knn" => Box::new(self.fit_user_knn(fit.train, fit.progress)?),
            _ => Box::new(self.fit_item_knn(fit.train, fit.progress)?),
        })
    }

    fn load(kind: &str, params: serde_json::Value, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        let p = saved_params(kind, params)?;
        Ok(match kind {
            "user_knn" => Box::new(UserKnn::from_matrix(p, TensorReader::new(tensors, "user_knn").csr("user_items")?)),
            _ => {
                let r = TensorReader::new(tensors, "item_knn");
                let (latest, history) = (r.optional_csr("latest")?, r.optional_csr("history")?);
                Box::new(ItemKnn::from_neighbours(p, r.csr("neighbours")?, latest, history))
            }
        })
    }

    fn space() -> Vec<Dim> {
        vec![
            Dim::choice("weighting", &["bm25", "cosine", "tfidf", "none"]),
            Dim::int("neighbours", 10, 1000, true),
            Dim::float("shrink", 0.0, 100.0, false),
            Dim::float("recency_half_life", 0.0, 20.0, false).next_items(),
        ]
    }
}
