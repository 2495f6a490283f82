//! Model specifications as they appear in configs: a `kind` tag plus that model's parameters.

use serde::{Deserialize, Serialize};
use tandem_data::Progress;

use crate::als::AlsParams;
use crate::ease::EaseParams;
use crate::error::Result;
use crate::knn::KnnParams;
use crate::mf::{EpochReport, MfParams};
use crate::popularity::PopularityParams;
use crate::retriever::{Retriever, TrainSet};

/// Any retriever's parameters, tagged by `kind`. Fitting gives a boxed [`Retriever`]; nothing
/// downstream needs to know which model it runs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSpec {
    /// Popularity (global, recent window, time-decayed).
    Popularity(PopularityParams),
    /// Item-item collaborative filtering.
    ItemKnn(KnnParams),
    /// User-user collaborative filtering.
    UserKnn(KnnParams),
    /// Implicit ALS with a conjugate-gradient solver.
    Als(AlsParams),
    /// EASE, closed-form item-item regression.
    Ease(EaseParams),
    /// Matrix factorisation with biases, BPR or BCE.
    Mf(MfParams),
}

impl ModelSpec {
    /// The kinds, as written in configs.
    pub const KINDS: [&'static str; 6] = ["popularity", "item_knn", "user_knn", "als", "ease", "mf"];

    /// Fits the model on `train`.
    pub fn fit(&self, train: &TrainSet, progress: &dyn Progress) -> Result<Box<dyn Retriever>> {
        Ok(match self {
            ModelSpec::Popularity(p) => Box::new(p.fit(train)?),
            ModelSpec::ItemKnn(p) => Box::new(p.fit_item_knn(train, progress)?),
            ModelSpec::UserKnn(p) => Box::new(p.fit_user_knn(train, progress)?),
            ModelSpec::Als(p) => Box::new(p.fit(train, progress)?),
            ModelSpec::Ease(p) => Box::new(p.fit(train, progress)?),
            ModelSpec::Mf(p) => Box::new(p.fit(train, progress)?),
        })
    }

    /// Fits the model, calling `validate` after each epoch of models trained in epochs (the
    /// best epoch is kept, with early stopping); other models are fitted as by [`Self::fit`].
    pub fn fit_validated(
        &self,
        train: &TrainSet,
        progress: &dyn Progress,
        validate: &mut dyn FnMut(&EpochReport, &dyn Retriever) -> Option<f64>,
    ) -> Result<Box<dyn Retriever>> {
        match self {
            ModelSpec::Mf(p) => Ok(Box::new(p.fit_with(train, progress, &mut |r, m| validate(r, m))?)),
            other => other.fit(train, progress),
        }
    }

    /// The kind tag.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelSpec::Popularity(_) => "popularity",
            ModelSpec::ItemKnn(_) => "item_knn",
            ModelSpec::UserKnn(_) => "user_knn",
            ModelSpec::Als(_) => "als",
            ModelSpec::Ease(_) => "ease",
            ModelSpec::Mf(_) => "mf",
        }
    }
}
