//! The evaluation report: JSON for machines, a table for people.

use indexmap::IndexMap;
use serde::Serialize;

/// How models were evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct ProtocolInfo {
    /// The split, in words.
    pub split: String,
    /// `full` or `sampled`.
    pub ranking: String,
    /// Whether each user's training items were removed from their full ranking.
    pub exclude_seen: bool,
    /// Which items were candidates, in words.
    pub candidates: String,
    /// For sampled ranking: where the negatives came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling: Option<String>,
    /// The cut-offs.
    pub ks: Vec<usize>,
    /// Users averaged over (users with at least one held-out item).
    pub test_users: usize,
}

/// One model's results.
#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    /// The model kind.
    pub kind: String,
    /// The model's parameters as configured.
    pub params: serde_json::Value,
    /// `NAME@K` -> value.
    pub metrics: IndexMap<String, f64>,
    /// Seconds to fit.
    pub fit_seconds: f64,
    /// Seconds to evaluate.
    pub eval_seconds: f64,
    /// Users averaged over.
    pub users: usize,
    /// Of those, users without training rows: new users to the model, scored from their
    /// history alone (an empty one when they have none).
    pub new_users: usize,
    /// Per-epoch training record of models trained in epochs (empty otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub training: Vec<EpochRecord>,
    /// Seconds per stage while evaluating, for multi-stage pipelines (stage -> seconds summed
    /// over the evaluation's threads; empty otherwise).
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub stage_seconds: IndexMap<String, f64>,
    /// A tree ranker's features by total split gain, largest first (empty for other models).
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub feature_importance: IndexMap<String, f64>,
    /// Ranker diagnostics (AUROC, feature sensitivity, cold items), when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<serde_json::Value>,
}

/// One training epoch: its mean loss and, where validated, the validation metric.
#[derive(Debug, Clone, Serialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Seconds the epoch took (without validation).
    pub seconds: f64,
    /// Training examples in the epoch.
    pub examples: usize,
    /// The validation metric's name (`NDCG@10`), when validated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_metric: Option<String>,
    /// Its value after this epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid: Option<f64>,
}

/// The whole `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Tandem's version.
    pub tandem_version: String,
    /// The data set, in words, with counts.
    pub data: serde_json::Value,
    /// How models were evaluated.
    pub protocol: ProtocolInfo,
    /// Results per model name, in config order.
    pub models: IndexMap<String, ModelReport>,
}

impl Report {
    /// One line saying how the models were evaluated, for the terminal.
    pub fn protocol_line(&self) -> String {
        let p = &self.protocol;
        let new = self.models.values().next().map_or(0, |m| m.new_users);
        format!(
            "protocol: {} ranking, {}; {} test users ({new} without training rows, scored as new users); \
             held-out items rank after every candidate they tie with",
            p.ranking, p.candidates, p.test_users
        )
    }

    /// A table of `columns` (metric names) per model, with fit seconds.
    pub fn table(&self, columns: &[crate::MetricAt]) -> String {
        let columns: Vec<String> = columns.iter().map(ToString::to_string).collect();
        let name_w = self.models.keys().map(String::len).chain([5]).max().unwrap_or(5);
        let col_w: Vec<usize> = columns.iter().map(|c| c.len().max(8)).collect();
        let mut s = format!("{:<name_w$}", "model");
        for (c, w) in columns.iter().zip(&col_w) {
            s += &format!("  {c:>w$}");
        }
        s += &format!("  {:>9}\n", "fit (s)");
        s += &"-".repeat(s.len() - 1);
        s.push('\n');
        for (name, m) in &self.models {
            s += &format!("{name:<name_w$}");
            for (c, w) in columns.iter().zip(&col_w) {
                match m.metrics.get(c.as_str()) {
                    Some(v) => s += &format!("  {v:>w$.4}"),
                    None => s += &format!("  {:>w$}", "-"),
                }
            }
            s += &format!("  {:>9.2}\n", m.fit_seconds);
        }
        s
    }
}
