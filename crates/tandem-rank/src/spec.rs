//! [`PipelineSpec`]: anything a config's `models:` entry can be — a single retriever (classic
//! or neural) or a two-stage pipeline — chosen by `kind`. The CLI fits, evaluates and loads
//! these without knowing which model it runs.

use serde::{Deserialize, Deserializer, Serialize};
use tandem_data::read::ItemInfo;
use tandem_data::Progress;
use tandem_models::artifact::Tensors;
use tandem_models::fit::EpochReport;
use tandem_models::{Result, Retriever, TrainSet};
use tandem_neural::AnySpec;

use crate::two_stage::{TwoStage, TwoStageSpec};

/// A single retriever or a two-stage pipeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PipelineSpec {
    /// One retriever (popularity, kNN, ALS, EASE, MF, NCF, two-tower, ...).
    Single(AnySpec),
    /// Retrievers -> union of their top N -> ranker.
    TwoStage(TwoStageSpec),
}

const TWO_STAGE: &str = "two_stage";

impl<'de> Deserialize<'de> for PipelineSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        let mut value = serde_json::Value::deserialize(d)?;
        if value.get("kind").and_then(|k| k.as_str()) == Some(TWO_STAGE) {
            value.as_object_mut().map(|o| o.remove("kind"));
            serde_json::from_value(value).map(PipelineSpec::TwoStage).map_err(D::Error::custom)
        } else {
            match serde_json::from_value::<AnySpec>(value) {
                Ok(s) => Ok(PipelineSpec::Single(s)),
                // AnySpec lists its own kinds; add ours.
                Err(e) => {
                    Err(D::Error::custom(e.to_string().replace("expected one of ", "expected one of two_stage, ")))
                }
            }
        }
    }
}

impl PipelineSpec {
    /// Every kind a config may name.
    pub fn kinds() -> Vec<&'static str> {
        let mut k = AnySpec::kinds();
        k.push(TWO_STAGE);
        k
    }

    /// The kind tag.
    pub fn kind(&self) -> &'static str {
        match self {
            PipelineSpec::Single(s) => s.kind(),
            PipelineSpec::TwoStage(_) => TWO_STAGE,
        }
    }

    /// Checks every parameter's range without fitting anything.
    pub fn check(&self) -> Result<()> {
        match self {
            PipelineSpec::Single(s) => s.check(),
            PipelineSpec::TwoStage(s) => s.check(),
        }
    }

    /// Fits the model on `train` (`items`: item metadata by index, possibly empty), calling
    /// `validate` after each epoch of a single retriever trained in epochs; a pipeline fits its
    /// stages with their own settings.
    pub fn fit_validated(
        &self,
        train: &TrainSet,
        items: &[ItemInfo],
        progress: &dyn Progress,
        validate: &mut dyn FnMut(&EpochReport, &dyn Retriever) -> Option<f64>,
    ) -> Result<Box<dyn Retriever>> {
        match self {
            PipelineSpec::Single(s) => s.fit_validated(train, progress, validate),
            PipelineSpec::TwoStage(s) => Ok(Box::new(s.fit(train, items, progress)?)),
        }
    }

    /// Fits the model on `train` without validation.
    pub fn fit(&self, train: &TrainSet, items: &[ItemInfo], progress: &dyn Progress) -> Result<Box<dyn Retriever>> {
        self.fit_validated(train, items, progress, &mut |_, _| None)
    }

    /// Rebuilds a saved model from its kind, parameters and tensors.
    pub fn from_artifact(kind: &str, params: serde_json::Value, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        if kind == TWO_STAGE {
            Ok(Box::new(TwoStage::from_artifact(params, tensors, &AnySpec::from_artifact)?))
        } else {
            AnySpec::from_artifact(kind, params, tensors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_route_to_their_specs() {
        let s: PipelineSpec = serde_json::from_value(serde_json::json!({"kind": "als"})).unwrap();
        assert_eq!(s.kind(), "als");
        let s: PipelineSpec =
            serde_json::from_value(serde_json::json!({"kind": "two_stage", "retrievers": [{"kind": "popularity"}]}))
                .unwrap();
        assert_eq!(s.kind(), "two_stage");
        let e = serde_json::from_value::<PipelineSpec>(serde_json::json!({"kind": "svd"})).unwrap_err().to_string();
        assert!(e.contains("svd") && e.contains("two_stage") && e.contains("als"), "{e}");
        let e = serde_json::from_value::<PipelineSpec>(serde_json::json!({"kind": "two_stage", "retriever": []}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("retriever"), "{e}");
        assert!(PipelineSpec::kinds().contains(&"two_stage"));
    }
}
