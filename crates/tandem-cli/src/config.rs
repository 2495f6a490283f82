//! The YAML config of `tandem run`: every key documented here, unknown keys rejected with their
//! path, `--set key.path=value` overrides applied before validation.
//!
//! Loading goes YAML text -> a JSON value tree -> overrides -> typed [`Config`] (with
//! `serde_path_to_error` naming the key path of any error) -> [`Config::check`].

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indexmap::IndexMap;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;
use tandem_data::{Source, SplitSpec};
use tandem_eval::{MetricAt, NegativeSampling, SubmissionFormat};
use tandem_rank::{registry, Spec, TwoStageSpec};

/// A whole pipeline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where interactions come from (`format: delimited | movielens | hm | course`).
    #[serde(deserialize_with = "source")]
    pub data: Source,
    /// Optional positive filter on the weight column (e.g. rating >= 4) and whether it applies
    /// before or after the split.
    #[serde(default)]
    pub positives: Option<Positives>,
    /// How to split (`kind: last_n | leave_one_out | ratio | fixed | time_window | global_fraction`).
    pub split: SplitSpec,
    /// How to evaluate.
    #[serde(default)]
    pub evaluation: EvaluationSpec,
    /// Models to fit and compare, by name (`kind: popularity | item_knn | user_knn`).
    pub models: IndexMap<String, Spec>,
    /// What to write besides `report.json`.
    #[serde(default)]
    pub output: OutputSpec,
    /// Worker threads (0 = one per core).
    #[serde(default)]
    pub threads: usize,
    /// The models to tune before fitting (a model entry's `tune:` map), by name.
    #[serde(skip)]
    pub tuning: IndexMap<String, TuneSpec>,
}

/// A model entry's `tune:`: search its parameters on validation data before fitting it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneSpec {
    /// Trials (default 40).
    #[serde(default = "forty")]
    pub budget: usize,
    /// The metric maximised (default: `evaluation.validation_metric`).
    #[serde(default)]
    pub metric: Option<MetricAt>,
    /// Validation rows carved from train (`last:N`, `share:S`, `days:D`); default: the split's
    /// valid part when it has one, else carved as the split cuts its test part.
    #[serde(default)]
    pub holdout: Option<String>,
    /// Seed of the proposals (default 42).
    #[serde(default = "forty_two")]
    pub seed: u64,
    /// Validation sets carved from train whose mean scores a trial (default 1; `tandem tune
    /// --folds`); needs a carved holdout.
    #[serde(default = "one")]
    pub folds: usize,
}

fn one() -> usize {
    1
}

fn forty() -> usize {
    40
}

fn forty_two() -> u64 {
    42
}

/// Keep only rows whose weight is at least `min_weight`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Positives {
    /// The threshold (inclusive), e.g. 4 for ratings of 4 and 5.
    pub min_weight: f32,
    /// `before_split` (default: split the positives) or `after_split` (split everything, then
    /// drop non-positives from every part).
    #[serde(default)]
    pub apply: FilterOrder,
    /// Set every kept row's weight to 1 (default true): positives are binary relevance.
    #[serde(default = "default_true")]
    pub binary: bool,
}

/// Whether the positive filter runs before or after the split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterOrder {
    /// Filter, then split.
    #[default]
    BeforeSplit,
    /// Split, then filter each part.
    AfterSplit,
}

/// Full or sampled ranking.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ranking {
    /// Every item seen in training is a candidate.
    #[default]
    Full,
    /// Held-out items among `negatives` drawn negatives.
    Sampled,
}

fn default_ks() -> Vec<usize> {
    vec![5, 10, 20, 50, 100]
}
fn default_true() -> bool {
    true
}
fn default_negatives() -> usize {
    100
}
fn default_seed() -> u64 {
    42
}

/// How models are evaluated on the test part.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationSpec {
    /// Cut-offs K (default [5, 10, 20, 50, 100]); every metric is reported at each.
    #[serde(default = "default_ks")]
    pub ks: Vec<usize>,
    /// `full` (default) or `sampled`.
    #[serde(default)]
    pub ranking: Ranking,
    /// Full ranking: remove each user's training items from their ranking (default true).
    #[serde(default = "default_true")]
    pub exclude_seen: bool,
    /// Sampled ranking: negatives per user (default 100).
    #[serde(default = "default_negatives")]
    pub negatives: usize,
    /// Sampled ranking: `uniform` (default) or `popularity`.
    #[serde(default)]
    pub sampling: NegativeSampling,
    /// Seed of the negative sampler (default 42).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Metric columns of the terminal table (default NDCG@10, HR@10, Recall@K for the largest K).
    #[serde(default)]
    pub table: Vec<MetricAt>,
    /// Metric on the valid part that picks the best epoch of models trained in epochs
    /// (default NDCG@10).
    #[serde(default = "default_valid_metric")]
    pub validation_metric: MetricAt,
}

fn default_valid_metric() -> MetricAt {
    MetricAt::new(tandem_eval::Metric::Ndcg, 10)
}

impl Default for EvaluationSpec {
    fn default() -> Self {
        serde_json::from_value(Value::Object(Default::default())).expect("all fields have defaults")
    }
}

fn default_predictions() -> usize {
    100
}

/// Files written into the output directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Top-N per test user in `predictions/<model>.tsv` (default 100; 0 writes none).
    #[serde(default = "default_predictions")]
    pub predictions: usize,
    /// Write `metrics_at_k.svg` (default true).
    #[serde(default = "default_true")]
    pub plot: bool,
    /// Recommendations for every user in a submission layout.
    #[serde(default)]
    pub submission: Option<SubmissionSpec>,
    /// Save every fitted model to `models/<name>/` (manifest, safetensors, id maps); default false.
    #[serde(default)]
    pub save_models: bool,
}

impl Default for OutputSpec {
    fn default() -> Self {
        serde_json::from_value(Value::Object(Default::default())).expect("all fields have defaults")
    }
}

/// Which data the submission model is fitted on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FitOn {
    /// Every interaction (train, valid and test): what a competition entry uses.
    #[default]
    All,
    /// The training part only.
    Train,
}

/// A submission file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmissionSpec {
    /// The model (a name under `models`).
    pub model: String,
    /// `hm` (`customer_id,prediction`), `course` (`UserId,ItemId`) or `tsv`.
    pub format: SubmissionFormat,
    /// File name, relative to the output directory.
    pub path: PathBuf,
    /// Items per user (default 12 for hm, 50 for course, 100 for tsv).
    #[serde(default)]
    pub k: Option<usize>,
    /// `all` (default) or `train`.
    #[serde(default)]
    pub fit_on: FitOn,
    /// Leave out items the user already has in the fitting data (default true).
    #[serde(default = "default_true")]
    pub exclude_seen: bool,
    /// `ivf`: rank the users of a model with item vectors (ALS, two-tower) through an IVF
    /// index over them instead of every item (approximate; `exact`, the default, ranks all).
    #[serde(default)]
    pub index: Option<tandem_models::index::IndexKind>,
    /// Share of the IVF lists a user scans (default 0.1; (0, 1]).
    #[serde(default)]
    pub probe_share: Option<f64>,
}

impl Config {
    /// Reads `path`, applies `overrides` (`key.path=value`), resolves data paths against the
    /// config's directory and validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config {}", path.display()))?;
        let mut value: Value =
            serde_saphyr::from_str(&text).map_err(|e| anyhow::anyhow!("{}: invalid YAML: {e}", path.display()))?;
        if value.is_null() {
            bail!("{}: the config is empty", path.display());
        }
        for o in overrides {
            apply_override(&mut value, o)?;
        }
        // `tune:` belongs to the entry, not to the kind's parameters: taken out before those are
        // parsed (which refuse unknown keys).
        let mut tuning = IndexMap::new();
        if let Some(Value::Object(models)) = value.get_mut("models") {
            for (name, entry) in models.iter_mut() {
                if let Some(t) = entry.as_object_mut().and_then(|m| m.remove("tune")) {
                    let t: TuneSpec = typed(t, &format!("{}: models.{name}.tune", path.display()))?;
                    if let Some(h) = &t.holdout {
                        h.parse::<tandem_eval::holdout::Holdout>()
                            .map_err(|e| anyhow::anyhow!("{}: models.{name}.tune.holdout: {e}", path.display()))?;
                    }
                    if t.budget == 0 {
                        bail!("{}: models.{name}.tune.budget: at least 1 trial", path.display());
                    }
                    if !(1..=20).contains(&t.folds) {
                        bail!("{}: models.{name}.tune.folds: {} (expected 1 to 20)", path.display(), t.folds);
                    }
                    tuning.insert(name.clone(), t);
                }
            }
        }
        let mut cfg: Config = typed(value, &path.display().to_string())?;
        cfg.tuning = tuning;
        // A pipeline's candidates leave out seen items as the evaluation does, unless it says.
        for spec in cfg.models.values_mut() {
            if let Some(two_stage) = spec.get_mut::<TwoStageSpec>() {
                two_stage.exclude_seen.get_or_insert(cfg.evaluation.exclude_seen);
            }
        }
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.data.resolve_paths(base);
        cfg.check().with_context(|| format!("{}: invalid config", path.display()))?;
        Ok(cfg)
    }

    fn check(&self) -> Result<()> {
        self.split.check()?;
        if self.models.is_empty() {
            bail!("models: at least one model is needed (kinds: {})", registry::kinds().join(", "));
        }
        // Every model's parameters, before anything is loaded or fitted.
        for (name, spec) in &self.models {
            spec.check().map_err(|e| anyhow::anyhow!("{}", e.at(&format!("models.{name}"))))?;
        }
        let ev = &self.evaluation;
        check_ks(&ev.ks).context("evaluation.ks")?;
        if ev.ranking == Ranking::Sampled && ev.negatives == 0 {
            bail!("evaluation.negatives: sampled ranking needs at least 1 negative");
        }
        if let Some(s) = &self.output.submission {
            if !self.models.contains_key(&s.model) {
                bail!(
                    "output.submission.model: no model named '{}' (models: {})",
                    s.model,
                    self.models.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            if s.k == Some(0) {
                bail!("output.submission.k: must be at least 1");
            }
        }
        if let Some(p) = &self.positives {
            if !p.min_weight.is_finite() {
                bail!("positives.min_weight: must be a finite number");
            }
        }
        Ok(())
    }
}

/// A config's `data:` map (with its `format`) as a [`Source`]: what the Python package's
/// `tandem.read` takes, with the same checks and messages as a config file.
pub fn parse_source(value: Value) -> Result<Source> {
    source(value).map_err(|e: serde_json::Error| anyhow::anyhow!("data: {e}"))
}

/// Reads `data` by its `format` tag into that format's struct, so errors keep their full key
/// path (serde's internally tagged enums buffer their content and lose it).
fn source<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Source, D::Error> {
    use serde::de::Error;
    use tandem_data::read::{CourseSource, DelimitedSource, HmSource, MovielensSource};
    let mut v = Value::deserialize(d)?;
    let formats = "delimited, movielens, hm, course";
    let map = v.as_object_mut().ok_or_else(|| D::Error::custom(format!("expected a map with `format` ({formats})")))?;
    let format = match map.shift_remove("format") {
        Some(Value::String(f)) => f,
        Some(other) => return Err(D::Error::custom(format!("`format` must be one of {formats}, got {other}"))),
        None => return Err(D::Error::custom(format!("missing `format` (one of {formats})"))),
    };
    fn inner<T: DeserializeOwned>(v: Value) -> std::result::Result<T, String> {
        serde_path_to_error::deserialize(v).map_err(|e| match e.path().to_string().as_str() {
            "." => e.into_inner().to_string(),
            path => format!("{path}: {}", e.into_inner()),
        })
    }
    match format.as_str() {
        "delimited" => inner::<DelimitedSource>(v).map(|d| Source::Delimited(Box::new(d))),
        "movielens" => inner::<MovielensSource>(v).map(Source::Movielens),
        "hm" => inner::<HmSource>(v).map(Source::Hm),
        "course" => inner::<CourseSource>(v).map(Source::Course),
        other => Err(format!("unknown format `{other}`, expected one of {formats}")),
    }
    .map_err(D::Error::custom)
}

/// Cut-offs must be one or more, each in 1..=100000.
pub fn check_ks(ks: &[usize]) -> Result<()> {
    if ks.is_empty() || ks.iter().any(|&k| k == 0 || k > 100_000) {
        bail!("give one or more cut-offs, each from 1 to 100000 (got {ks:?})");
    }
    Ok(())
}

/// Deserialises `value` into `T`, naming the key path of any error.
pub fn typed<T: DeserializeOwned>(value: Value, origin: &str) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            anyhow::anyhow!("{origin}: {inner}")
        } else {
            anyhow::anyhow!("{origin}: {path}: {inner}")
        }
    })
}

/// Parses a command-line value as YAML (so `128`, `true`, `[5, 10]` get their types);
/// anything that is not valid YAML stays a string.
pub fn parse_value(text: &str) -> Value {
    match serde_saphyr::from_str::<Value>(text) {
        Ok(Value::Null) if !text.trim().is_empty() && text.trim() != "null" && text.trim() != "~" => {
            Value::String(text.to_string())
        }
        Ok(v) => v,
        Err(_) => Value::String(text.to_string()),
    }
}

/// Applies `key.path=value` to a value tree, creating maps on the way.
pub fn apply_override(root: &mut Value, spec: &str) -> Result<()> {
    let (key, raw) = spec.split_once('=').with_context(|| format!("--set {spec}: expected KEY.PATH=VALUE"))?;
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        bail!("--set {spec}: the key path '{key}' has an empty part");
    }
    let mut cur = root;
    for (depth, part) in parts.iter().enumerate() {
        let last = depth + 1 == parts.len();
        cur = match cur {
            Value::Object(map) => {
                if last {
                    map.insert(part.to_string(), parse_value(raw));
                    return Ok(());
                }
                map.entry(part.to_string()).or_insert_with(|| Value::Object(Default::default()))
            }
            Value::Array(items) => {
                let i: usize = part.parse().with_context(|| {
                    format!("--set {spec}: '{}' is a list; '{part}' is not an index", parts[..depth].join("."))
                })?;
                let len = items.len();
                let slot = items
                    .get_mut(i)
                    .with_context(|| format!("--set {spec}: index {i} is past the end of a list of {len}"))?;
                if last {
                    *slot = parse_value(raw);
                    return Ok(());
                }
                slot
            }
            _ => bail!("--set {spec}: '{}' is not a map", parts[..depth].join(".")),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_set_typed_values_and_create_maps() {
        let mut v: Value = serde_json::json!({"models": {"knn": {"kind": "item_knn"}}, "ks": [1, 2]});
        apply_override(&mut v, "models.knn.neighbours=128").unwrap();
        apply_override(&mut v, "evaluation.exclude_seen=false").unwrap();
        apply_override(&mut v, "ks.1=20").unwrap();
        apply_override(&mut v, "data.log.path=some file.csv").unwrap();
        assert_eq!(v["models"]["knn"]["neighbours"], 128);
        assert_eq!(v["evaluation"]["exclude_seen"], false);
        assert_eq!(v["ks"][1], 20);
        assert_eq!(v["data"]["log"]["path"], "some file.csv");
        assert!(apply_override(&mut v, "novalue").is_err());
        assert!(apply_override(&mut v, "ks.x=1").unwrap_err().to_string().contains("not an index"));
    }

    #[test]
    fn values_keep_leading_zeros_when_quoted() {
        assert_eq!(parse_value("'0108775015'"), Value::String("0108775015".into()));
        assert_eq!(parse_value("[5, 10]"), serde_json::json!([5, 10]));
    }
}
