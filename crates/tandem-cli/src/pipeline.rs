//! Steps shared by the commands: fit and evaluate a model, write reports.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use tandem_data::{Csr, Progress};
use tandem_eval::{evaluate, Evaluation, ModelReport, Protocol, Report, TestSet};
use tandem_models::{Retriever, TrainSet};
use tandem_neural::AnySpec;

/// An evaluated model's results.
pub struct Evaluated {
    pub model: Box<dyn Retriever>,
    pub evaluation: Evaluation,
    pub report: ModelReport,
}

/// How the models of one command are evaluated.
pub struct EvalPlan<'a> {
    pub test: &'a TestSet,
    pub protocol: &'a Protocol,
    pub ks: &'a [usize],
    /// Predictions kept per user.
    pub keep: usize,
    /// Validation data for models trained in epochs (early stopping on `metric`).
    pub validation: Option<Validation<'a>>,
}

/// A validation set and the metric epochs are compared on.
pub struct Validation<'a> {
    pub set: &'a TestSet,
    pub protocol: &'a Protocol,
    /// `NAME@K`, e.g. `NDCG@10`.
    pub metric: &'a str,
}

impl Validation<'_> {
    /// The metric's value for `model`, computed by the evaluator itself.
    pub fn score(&self, model: &dyn Retriever, history: &Csr) -> Option<f64> {
        let k: usize = self.metric.split('@').nth(1)?.parse().ok()?;
        let e = evaluate(model, history, self.set, self.protocol, &[k], 0, &tandem_data::NoProgress);
        e.metrics.get(self.metric).copied()
    }
}

/// Fits `spec` on `train` and evaluates it under `plan`.
pub fn fit_and_evaluate(
    name: &str,
    spec: &AnySpec,
    train: &TrainSet,
    plan: &EvalPlan<'_>,
    progress: &dyn Progress,
) -> Result<Evaluated> {
    let start = Instant::now();
    let model = match &plan.validation {
        None => spec.fit(train, progress),
        Some(v) => spec.fit_validated(train, progress, &mut |report, model| {
            let score = v.score(model, &train.user_items);
            if let Some(s) = score {
                eprintln!("{name}: epoch {:>3}  loss {:.5}  valid {} {s:.4}", report.epoch, report.loss, v.metric);
            }
            score
        }),
    }
    .with_context(|| format!("fitting model '{name}'"))?;
    Ok(evaluate_model(model, start.elapsed().as_secs_f64(), train, plan, progress))
}

/// Evaluates a fitted (or loaded) model under `plan`; the report takes the model's own kind
/// and parameters.
pub fn evaluate_model(
    model: Box<dyn Retriever>,
    fit_seconds: f64,
    train: &TrainSet,
    plan: &EvalPlan<'_>,
    progress: &dyn Progress,
) -> Evaluated {
    let evaluation = evaluate(&*model, &train.user_items, plan.test, plan.protocol, plan.ks, plan.keep, progress);
    let artifact = model.artifact();
    let report = ModelReport {
        kind: artifact.kind.to_string(),
        params: artifact.params,
        metrics: evaluation.metrics.clone(),
        fit_seconds,
        eval_seconds: evaluation.seconds,
        users: evaluation.users,
    };
    Evaluated { model, evaluation, report }
}

/// Items with at least one interaction in `m` (user x item).
pub fn items_with_interactions(m: &Csr) -> Vec<bool> {
    let mut seen = vec![false; m.n_cols()];
    for &i in m.indices() {
        seen[i as usize] = true;
    }
    seen
}

/// Writes `report.json` and, if asked, the plot.
pub fn write_report(out: &Path, report: &Report, plot: bool) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let path = out.join("report.json");
    let json = serde_json::to_string_pretty(report).expect("reports serialise");
    std::fs::write(&path, json + "\n").with_context(|| format!("cannot write {}", path.display()))?;
    if plot {
        let svg = out.join("metrics_at_k.svg");
        std::fs::write(&svg, tandem_eval::metrics_at_k_svg(report))
            .with_context(|| format!("cannot write {}", svg.display()))?;
    }
    Ok(())
}

/// The default table columns: NDCG@10 / HR@10 when 10 is a cut-off (else the smallest K), and
/// Recall at the largest K.
pub fn default_columns(ks: &[usize]) -> Vec<String> {
    let small = if ks.contains(&10) { 10 } else { *ks.iter().min().unwrap_or(&10) };
    let large = *ks.iter().max().unwrap_or(&100);
    vec![format!("NDCG@{small}"), format!("HR@{small}"), format!("MAP@{small}"), format!("Recall@{large}")]
}
