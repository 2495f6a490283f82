//! Neural model specifications, and [`AnySpec`]: classic or neural, as configs write them.

use serde::{Deserialize, Deserializer, Serialize};
use tandem_data::Progress;
use tandem_models::artifact::Tensors;
use tandem_models::fit::EpochReport;
use tandem_models::{ModelSpec, Result, Retriever, TrainSet};

use crate::history::HistoryParams;
use crate::ncf::NcfParams;
use crate::softmax::{SoftmaxModel, SoftmaxParams, Structure};
use crate::two_tower::TwoTowerParams;
use crate::Validate;

/// A neural retriever's parameters, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NeuralSpec {
    /// NCF: an MLP over concatenated user and item embeddings.
    Ncf(NcfParams),
    /// NeuMF: NCF's MLP plus a GMF branch.
    Neumf(NcfParams),
    /// Two towers trained with InfoNCE.
    TwoTower(TwoTowerParams),
    /// A user embedding against every item, trained with the full softmax.
    Softmax(SoftmaxParams),
    /// The two-level hierarchical softmax.
    Hsoftmax(SoftmaxParams),
    /// TDM: a binary item tree, per-level classifiers, beam-search retrieval.
    Tdm(SoftmaxParams),
    /// The history model: recency-weighted cosine to the user's last items, per-item bias and
    /// network.
    History(HistoryParams),
}

impl NeuralSpec {
    /// The kinds, as written in configs.
    pub const KINDS: [&'static str; 7] = ["ncf", "neumf", "two_tower", "softmax", "hsoftmax", "tdm", "history"];

    /// Checks the parameters' ranges without fitting anything.
    pub fn check(&self) -> Result<()> {
        match self {
            NeuralSpec::Ncf(p) | NeuralSpec::Neumf(p) => p.check(),
            NeuralSpec::TwoTower(p) => p.check(),
            NeuralSpec::Softmax(p) | NeuralSpec::Hsoftmax(p) | NeuralSpec::Tdm(p) => p.check(),
            NeuralSpec::History(p) => p.check(),
        }
    }

    fn fit_inner(
        &self,
        train: &TrainSet,
        progress: &dyn Progress,
        validate: Option<&mut Validate<'_>>,
    ) -> Result<Box<dyn Retriever>> {
        Ok(match (self, validate) {
            (NeuralSpec::Ncf(p), None) => Box::new(p.fit(false, train, progress)?),
            (NeuralSpec::Neumf(p), None) => Box::new(p.fit(true, train, progress)?),
            (NeuralSpec::Ncf(p), Some(v)) => Box::new(p.fit_with(false, train, progress, v)?),
            (NeuralSpec::Neumf(p), Some(v)) => Box::new(p.fit_with(true, train, progress, v)?),
            (NeuralSpec::TwoTower(p), None) => Box::new(p.fit(train, progress)?),
            (NeuralSpec::TwoTower(p), Some(v)) => Box::new(p.fit_with(train, progress, v)?),
            (NeuralSpec::History(p), None) => Box::new(p.fit(train, progress)?),
            (NeuralSpec::History(p), Some(v)) => Box::new(p.fit_with(train, progress, v)?),
            (NeuralSpec::Softmax(p) | NeuralSpec::Hsoftmax(p) | NeuralSpec::Tdm(p), v) => {
                let s = self.structure().expect("a softmax kind");
                Box::new(match v {
                    None => p.fit(s, train, progress)?,
                    Some(v) => p.fit_with(s, train, progress, v)?,
                })
            }
        })
    }

    fn load(self, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        Ok(match self {
            NeuralSpec::Ncf(p) => Box::new(crate::Ncf::from_tensors(p, false, tensors)?),
            NeuralSpec::Neumf(p) => Box::new(crate::Ncf::from_tensors(p, true, tensors)?),
            NeuralSpec::TwoTower(p) => Box::new(crate::TwoTower::from_tensors(p, tensors)?),
            NeuralSpec::History(p) => Box::new(crate::HistoryModel::from_tensors(p, tensors)?),
            NeuralSpec::Softmax(ref p) | NeuralSpec::Hsoftmax(ref p) | NeuralSpec::Tdm(ref p) => {
                let s = self.structure().expect("a softmax kind");
                Box::new(SoftmaxModel::from_tensors(s, p.clone(), tensors)?)
            }
        })
    }

    /// The output structure of the softmax kinds.
    fn structure(&self) -> Option<Structure> {
        match self {
            NeuralSpec::Softmax(_) => Some(Structure::Full),
            NeuralSpec::Hsoftmax(_) => Some(Structure::Hierarchical),
            NeuralSpec::Tdm(_) => Some(Structure::Tdm),
            _ => None,
        }
    }

    /// The kind tag.
    pub fn kind(&self) -> &'static str {
        match self {
            NeuralSpec::Ncf(_) => "ncf",
            NeuralSpec::Neumf(_) => "neumf",
            NeuralSpec::TwoTower(_) => "two_tower",
            NeuralSpec::Softmax(_) => "softmax",
            NeuralSpec::Hsoftmax(_) => "hsoftmax",
            NeuralSpec::Tdm(_) => "tdm",
            NeuralSpec::History(_) => "history",
        }
    }
}

/// Any retriever's parameters: a classic [`ModelSpec`] or a [`NeuralSpec`], chosen by the
/// `kind` tag. The pipeline fits these without knowing which model it runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AnySpec {
    /// Popularity, kNN, ALS, EASE, MF.
    Classic(ModelSpec),
    /// NCF, NeuMF, two-tower, softmax, hierarchical softmax, TDM, history.
    Neural(NeuralSpec),
}

impl<'de> Deserialize<'de> for AnySpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(d)?;
        let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or_default().to_string();
        if ModelSpec::KINDS.contains(&kind.as_str()) {
            serde_json::from_value(value).map(AnySpec::Classic).map_err(D::Error::custom)
        } else if NeuralSpec::KINDS.contains(&kind.as_str()) {
            serde_json::from_value(value).map(AnySpec::Neural).map_err(D::Error::custom)
        } else if value.get("kind").is_none() {
            Err(D::Error::custom(format!("missing field `kind` (one of {})", AnySpec::kinds().join(", "))))
        } else {
            Err(D::Error::custom(format!("unknown kind `{kind}`, expected one of {}", AnySpec::kinds().join(", "))))
        }
    }
}

impl AnySpec {
    /// Every model kind, classic first.
    pub fn kinds() -> Vec<&'static str> {
        ModelSpec::KINDS.iter().chain(NeuralSpec::KINDS.iter()).copied().collect()
    }

    /// Checks the parameters' ranges without fitting anything.
    pub fn check(&self) -> Result<()> {
        match self {
            AnySpec::Classic(s) => s.check(),
            AnySpec::Neural(s) => s.check(),
        }
    }

    /// Fits the model on `train`.
    pub fn fit(&self, train: &TrainSet, progress: &dyn Progress) -> Result<Box<dyn Retriever>> {
        match self {
            AnySpec::Classic(s) => s.fit(train, progress),
            AnySpec::Neural(s) => s.fit_inner(train, progress, None),
        }
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
            AnySpec::Classic(s) => s.fit_validated(train, progress, validate),
            AnySpec::Neural(s) => s.fit_inner(train, progress, Some(validate)),
        }
    }

    /// Rebuilds a saved model from its kind, parameters and tensors.
    pub fn from_artifact(kind: &str, params: serde_json::Value, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        if !NeuralSpec::KINDS.contains(&kind) {
            return ModelSpec::from_artifact(kind, params, tensors);
        }
        let spec: NeuralSpec = tandem_models::saved_spec(kind, params)?;
        spec.load(tensors)
    }

    /// The kind tag.
    pub fn kind(&self) -> &'static str {
        match self {
            AnySpec::Classic(s) => s.kind(),
            AnySpec::Neural(s) => s.kind(),
        }
    }
}
