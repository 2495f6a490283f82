//! Neural model specifications, and [`AnySpec`]: classic or neural, as configs write them.

use serde::{Deserialize, Deserializer, Serialize};
use tandem_data::Progress;
use tandem_models::artifact::Tensors;
use tandem_models::mf::EpochReport;
use tandem_models::{ModelSpec, Result, Retriever, TrainSet};

use crate::ncf::NcfParams;
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
}

impl NeuralSpec {
    /// The kinds, as written in configs.
    pub const KINDS: [&'static str; 3] = ["ncf", "neumf", "two_tower"];

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
        })
    }

    fn load(self, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        Ok(match self {
            NeuralSpec::Ncf(p) => Box::new(crate::Ncf::from_tensors(p, false, tensors)?),
            NeuralSpec::Neumf(p) => Box::new(crate::Ncf::from_tensors(p, true, tensors)?),
            NeuralSpec::TwoTower(p) => Box::new(crate::TwoTower::from_tensors(p, tensors)?),
        })
    }

    /// The kind tag.
    pub fn kind(&self) -> &'static str {
        match self {
            NeuralSpec::Ncf(_) => "ncf",
            NeuralSpec::Neumf(_) => "neumf",
            NeuralSpec::TwoTower(_) => "two_tower",
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
    /// NCF, NeuMF, two-tower.
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
