//! The registry of model kinds: the one table from a config's `kind` to the model's parameters
//! (defaults, checks, fitting, loading, search space: see `tandem_models::kind::ModelParams`,
//! implemented in each model's own file). [`Spec`] — a kind with its parameters — is what a
//! config's model entry, a `--model` flag and a pipeline's retriever are.
//!
//! Adding a model kind is its file plus one line in [`KINDS`].

use std::any::Any;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use tandem_data::Progress;
use tandem_data::Side;
use tandem_models::artifact::Tensors;
use tandem_models::fit::ValidateRetriever;
use tandem_models::kind::{DynParams, Fit, Kind};
use tandem_models::{AlsParams, EaseParams, KnnParams, MfParams, ModelError, PopularityParams, RandomParams};
use tandem_models::{RepurchaseParams, SameGroupParams};
use tandem_models::{Result, Retriever, TrainSet};
use tandem_neural::{HistoryParams, NcfParams, SoftmaxParams, TwoTowerParams};

use crate::two_stage::TwoStageSpec;

/// Every model kind a config may name, in the order `--help` and errors list them.
pub static KINDS: &[Kind] = &[
    Kind::of::<PopularityParams>("popularity", "global, recent-window or time-decayed popularity"),
    Kind::of::<RandomParams>("random", "seeded random scores: the floor every model must clear"),
    Kind::of::<RepurchaseParams>("repurchase", "the user's own past items by recency and frequency"),
    Kind::of::<SameGroupParams>("same_group", "best sellers of the item groups the user bought from lately"),
    Kind::of::<KnnParams>("item_knn", "item-item collaborative filtering"),
    Kind::of::<KnnParams>("user_knn", "user-user collaborative filtering"),
    Kind::of::<AlsParams>("als", "implicit ALS, conjugate gradient"),
    Kind::of::<EaseParams>("ease", "EASE, closed-form item-item regression"),
    Kind::of::<MfParams>("mf", "matrix factorisation with biases, BPR or BCE"),
    Kind::of::<NcfParams>("ncf", "NCF: an MLP over user and item embeddings"),
    Kind::of::<NcfParams>("neumf", "NeuMF: NCF plus a GMF branch"),
    Kind::of::<TwoTowerParams>("two_tower", "two towers trained with InfoNCE"),
    Kind::of::<SoftmaxParams>("softmax", "a user embedding against every item, full softmax"),
    Kind::of::<SoftmaxParams>("hsoftmax", "two-level hierarchical softmax"),
    Kind::of::<SoftmaxParams>("tdm", "TDM: item tree, per-level classifiers, beam search"),
    Kind::of::<HistoryParams>("history", "recency-weighted cosine to the user's last items"),
    Kind::of::<TwoStageSpec>("two_stage", "retrievers -> union of their candidates -> a ranker"),
];

/// The entry of kind `name`.
pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// Every kind's name.
pub fn kinds() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.name).collect()
}

/// Rebuilds a saved model from its kind, parameters and tensors.
pub fn load(kind_name: &str, params: Value, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
    let entry = kind(kind_name).ok_or_else(|| ModelError::Artifact {
        path: format!("{kind_name} model"),
        message: format!("unknown kind '{kind_name}' (this version knows {})", kinds().join(", ")),
    })?;
    entry.load(params, tensors)
}

/// A model kind and its parameters.
pub struct Spec {
    kind: &'static Kind,
    params: Box<dyn DynParams>,
}

impl Spec {
    /// Parses `{"kind": ..., other keys}`; unknown kinds and keys are refused.
    pub fn from_json(value: Value) -> std::result::Result<Spec, String> {
        let Value::Object(mut map) = value else {
            return Err(format!("a model is a map with a `kind` (one of {})", kinds().join(", ")));
        };
        let name = match map.remove("kind") {
            Some(Value::String(k)) => k,
            Some(other) => return Err(format!("`kind` must be a name, not {other}")),
            None => return Err(format!("missing field `kind` (one of {})", kinds().join(", "))),
        };
        let kind =
            kind(&name).ok_or_else(|| format!("unknown kind `{name}`, expected one of {}", kinds().join(", ")))?;
        let params = kind.parse(Value::Object(map)).map_err(|e| e.to_string())?;
        Ok(Spec { kind, params })
    }

    /// The kind's name.
    pub fn kind(&self) -> &'static str {
        self.kind.name
    }

    /// The parameters as a config writes them (without `kind`).
    pub fn params(&self) -> Value {
        self.params.to_json()
    }

    /// The parameters as their own type, when they are `P` (e.g. a pipeline's).
    pub fn get<P: Any>(&self) -> Option<&P> {
        self.params.as_any().downcast_ref()
    }

    /// The parameters as their own type, to change.
    pub fn get_mut<P: Any>(&mut self) -> Option<&mut P> {
        self.params.as_any_mut().downcast_mut()
    }

    /// Checks every parameter's range without fitting anything.
    pub fn check(&self) -> Result<()> {
        self.params.check()
    }

    /// Fits the model on `train` (`side`: metadata by index, possibly empty), calling
    /// `validate` after each epoch of models trained in epochs.
    pub fn fit_validated(
        &self,
        train: &TrainSet,
        side: Side<'_>,
        progress: &dyn Progress,
        validate: &mut ValidateRetriever<'_>,
    ) -> Result<Box<dyn Retriever>> {
        self.params.fit(&mut Fit { kind: self.kind.name, train, side, progress, validate: Some(validate) })
    }

    /// Fits the model on `train` without validation.
    pub fn fit(&self, train: &TrainSet, side: Side<'_>, progress: &dyn Progress) -> Result<Box<dyn Retriever>> {
        self.params.fit(&mut Fit { kind: self.kind.name, train, side, progress, validate: None })
    }
}

impl Clone for Spec {
    fn clone(&self) -> Self {
        Spec { kind: self.kind, params: self.params.clone_box() }
    }
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.name, self.params())
    }
}

impl PartialEq for Spec {
    fn eq(&self, other: &Self) -> bool {
        self.kind.name == other.kind.name && self.params() == other.params()
    }
}

impl Serialize for Spec {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serde_json::Map::new();
        map.insert("kind".into(), Value::String(self.kind.name.into()));
        if let Value::Object(params) = self.params() {
            map.extend(params);
        }
        map.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Spec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Spec::from_json(Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_route_to_their_parameters() {
        let s: Spec = serde_json::from_value(serde_json::json!({"kind": "als", "factors": 8})).unwrap();
        assert_eq!(s.kind(), "als");
        assert_eq!(s.get::<AlsParams>().unwrap().factors, 8);
        assert!(s.get::<MfParams>().is_none());
        let s: Spec =
            serde_json::from_value(serde_json::json!({"kind": "two_stage", "retrievers": [{"kind": "popularity"}]}))
                .unwrap();
        assert_eq!(s.kind(), "two_stage");
        assert_eq!(s.get::<TwoStageSpec>().unwrap().retrievers[0].kind(), "popularity");
        let e = serde_json::from_value::<Spec>(serde_json::json!({"kind": "svd"})).unwrap_err().to_string();
        assert!(e.contains("svd") && e.contains("two_stage") && e.contains("als"), "{e}");
        let e = serde_json::from_value::<Spec>(serde_json::json!({"factors": 3})).unwrap_err().to_string();
        assert!(e.contains("missing field `kind`"), "{e}");
        let e = serde_json::from_value::<Spec>(serde_json::json!({"kind": "two_stage", "retriever": []}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("retriever"), "{e}");
    }

    #[test]
    fn specs_round_trip_through_json_with_every_default() {
        for k in KINDS {
            let mut value = k.defaults();
            if k.name == "two_stage" {
                let mut retriever = kind("popularity").unwrap().defaults();
                retriever["kind"] = "popularity".into();
                value["retrievers"] = Value::Array(vec![retriever]);
            }
            value["kind"] = Value::String(k.name.into());
            let spec = Spec::from_json(value.clone()).unwrap_or_else(|e| panic!("{}: {e}", k.name));
            assert_eq!(serde_json::to_value(&spec).unwrap(), value, "{}", k.name);
            assert_eq!(spec.clone(), spec);
            spec.check().unwrap_or_else(|e| panic!("{}: defaults are valid: {e}", k.name));
        }
        let mut names = kinds();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KINDS.len(), "kinds are unique");
    }

    /// docs/config.md's model table documents every kind and every key, defaults included.
    #[test]
    fn the_config_docs_cover_every_kind_and_key() {
        let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/config.md")).unwrap();
        let table = docs.split("## `models`").nth(1).unwrap().split("\n## ").next().unwrap();
        let rows: Vec<(&str, &str)> = table
            .lines()
            .filter_map(|l| l.strip_prefix("| "))
            .filter_map(|l| l.split_once(" | "))
            .filter(|(kinds, _)| kinds.starts_with('`'))
            .collect();
        for k in KINDS {
            let tag = format!("`{}`", k.name);
            let found: Vec<usize> = (0..rows.len()).filter(|&r| rows[r].0.split(", ").any(|c| c == tag)).collect();
            assert_eq!(found.len(), 1, "{} documented once in docs/config.md's model table", k.name);
            let mut text = rows[found[0]].1.to_string();
            if text.starts_with("the same keys") {
                text += rows[found[0] - 1].1;
            }
            if let Value::Object(defaults) = k.defaults() {
                for key in defaults.keys() {
                    assert!(text.contains(&format!("`{key}`")), "docs/config.md: {} does not document `{key}`", k.name);
                }
            }
        }
        for (kinds_cell, _) in rows {
            for tag in kinds_cell.split(", ") {
                assert!(kind(tag.trim_matches('`')).is_some(), "docs/config.md documents {tag}, which is no kind");
            }
        }
    }

    #[test]
    fn search_spaces_name_real_parameters() {
        for k in KINDS {
            let defaults = k.defaults();
            for dim in k.space() {
                assert!(defaults.get(dim.key).is_some(), "{}: {} is not a parameter", k.name, dim.key);
            }
        }
        assert!(!kind("als").unwrap().space().is_empty());
    }
}
