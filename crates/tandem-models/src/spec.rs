//! Model specifications as they appear in configs: a `kind` tag plus that model's parameters.

use serde::{Deserialize, Serialize};
use tandem_data::Progress;

use crate::als::Als;
use crate::als::AlsParams;
use crate::artifact::{TensorReader, Tensors};
use crate::ease::Ease;
use crate::ease::EaseParams;
use crate::error::{ModelError, Result};
use crate::fit::EpochReport;
use crate::knn::KnnParams;
use crate::knn::{ItemKnn, UserKnn};
use crate::mf::Mf;
use crate::mf::MfParams;
use crate::popularity::Popularity;
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

    /// Checks the parameters' ranges without fitting anything.
    pub fn check(&self) -> Result<()> {
        match self {
            ModelSpec::Popularity(p) => p.check(),
            ModelSpec::ItemKnn(p) | ModelSpec::UserKnn(p) => p.check(),
            ModelSpec::Als(p) => p.check(),
            ModelSpec::Ease(p) => p.check(),
            ModelSpec::Mf(p) => p.check(),
        }
    }

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

    /// Rebuilds a saved model from its kind, parameters and tensors.
    pub fn from_artifact(kind: &str, params: serde_json::Value, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        let spec: ModelSpec = saved_spec(kind, params)?;
        let r = |k| TensorReader::new(tensors, k);
        Ok(match spec {
            ModelSpec::Popularity(p) => Box::new(Popularity::from_scores(p, r("popularity").f32("scores")?.1)),
            ModelSpec::ItemKnn(p) => Box::new(ItemKnn::from_neighbours(p, r("item_knn").csr("neighbours")?)),
            ModelSpec::UserKnn(p) => Box::new(UserKnn::from_matrix(p, r("user_knn").csr("user_items")?)),
            ModelSpec::Als(p) => {
                let t = r("als");
                Box::new(Als::from_parts(p, t.matrix("user_factors")?, t.matrix("item_factors")?))
            }
            ModelSpec::Ease(p) => {
                let w = r("ease").matrix("weights")?;
                if w.rows() != w.dim() {
                    return Err(ModelError::Artifact {
                        path: "ease model".into(),
                        message: "weights are not square".into(),
                    });
                }
                Box::new(Ease::from_weights(p, w.rows(), w.as_slice().to_vec()))
            }
            ModelSpec::Mf(p) => {
                let t = r("mf");
                let (users, items) = (t.matrix("user_factors")?, t.matrix("item_factors")?);
                let (user_bias, item_bias) = (t.f32("user_bias")?.1, t.f32("item_bias")?.1);
                let global = t.f32("global_bias")?.1.first().copied().unwrap_or(0.0);
                if user_bias.len() != users.rows() || item_bias.len() != items.rows() || users.dim() != items.dim() {
                    return Err(ModelError::Artifact {
                        path: "mf model".into(),
                        message: "tensor shapes disagree".into(),
                    });
                }
                Box::new(Mf::from_parts(p, users, items, user_bias, item_bias, global))
            }
        })
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

/// A saved model's `kind` and parameters as the spec type `T` (tagged by `kind`), or an artifact
/// error when this version of Tandem reads them differently.
pub fn saved_spec<T: serde::de::DeserializeOwned>(kind: &str, params: serde_json::Value) -> Result<T> {
    let mut obj = match params {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    obj.insert("kind".into(), serde_json::Value::String(kind.to_string()));
    serde_json::from_value(serde_json::Value::Object(obj)).map_err(|e| ModelError::Artifact {
        path: format!("{kind} model"),
        message: format!("parameters do not match this version of Tandem: {e}"),
    })
}
