//! Steps shared by the commands: fit and evaluate a model, write reports.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use tandem_data::Side;
use tandem_data::{Csr, Progress};
use tandem_eval::{evaluate, EpochRecord, Evaluation, MetricAt, ModelReport, Protocol, Report, TestSet};
use tandem_models::{Histories, Retriever, TrainSet};
use tandem_rank::Spec;

/// An evaluated model's results.
pub struct Evaluated {
    /// The fitted (or loaded) model.
    pub model: Box<dyn Retriever>,
    /// Its metrics and predictions.
    pub evaluation: Evaluation,
    /// Its entry in report.json.
    pub report: ModelReport,
}

/// How the models of one command are evaluated.
pub struct EvalPlan<'a> {
    /// The users evaluated and their held-out items.
    pub test: &'a TestSet,
    /// Everything known of each user at test time (train + valid): their history, excluded
    /// from full ranking.
    pub history: &'a Csr,
    /// How test users are ranked (full or sampled).
    pub protocol: &'a Protocol,
    /// Cut-offs.
    pub ks: &'a [usize],
    /// Predictions kept per user.
    pub keep: usize,
    /// Validation data for models trained in epochs (early stopping on `metric`).
    pub validation: Option<Validation<'a>>,
}

/// A validation set and the metric epochs are compared on.
#[derive(Clone, Copy)]
pub struct Validation<'a> {
    /// The validation users and their held-out items.
    pub set: &'a TestSet,
    /// How they are ranked.
    pub protocol: &'a Protocol,
    /// The metric epochs are compared on, e.g. `NDCG@10`.
    pub metric: MetricAt,
}

impl Validation<'_> {
    /// The metric's value for `model` fitted on `train`, computed by the evaluator itself.
    pub fn score(&self, model: &dyn Retriever, train: &Csr) -> Option<f64> {
        let k = self.metric.k;
        let e = evaluate(model, Histories::fitted(train), self.set, self.protocol, &[k], 0, &tandem_data::NoProgress);
        e.metrics.get(&self.metric.to_string()).copied()
    }
}

/// Fits `spec` on `train` and evaluates it under `plan`.
pub fn fit_and_evaluate(
    name: &str,
    spec: &Spec,
    train: &TrainSet,
    side: Side<'_>,
    plan: &EvalPlan<'_>,
    progress: &dyn Progress,
) -> Result<Evaluated> {
    let start = Instant::now();
    // Every epoch is recorded (for the report and the training-curve plot); with validation data
    // it is also scored, which drives best-epoch keeping and early stopping.
    let mut training = Vec::new();
    let model = spec
        .fit_validated(train, side, progress, &mut |report, model| {
            let valid = plan.validation.as_ref().and_then(|v| v.score(model, &train.user_items));
            if let (Some(s), Some(v)) = (valid, &plan.validation) {
                eprintln!("{name}: epoch {:>3}  loss {:.5}  valid {} {s:.4}", report.epoch, report.loss, v.metric);
            }
            training.push(EpochRecord {
                epoch: report.epoch,
                loss: report.loss,
                seconds: report.seconds,
                examples: report.examples,
                valid_metric: valid.and(plan.validation.as_ref()).map(|v| v.metric.to_string()),
                valid,
            });
            valid
        })
        .with_context(|| format!("fitting model '{name}'"))?;
    let mut evaluated = evaluate_model(model, start.elapsed().as_secs_f64(), train, plan, progress);
    evaluated.report.training = training;
    Ok(evaluated)
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
    let histories = Histories { fitted: &train.user_items, known: plan.history };
    let evaluation = evaluate(&*model, histories, plan.test, plan.protocol, plan.ks, plan.keep, progress);
    let report = ModelReport {
        kind: model.kind().to_string(),
        params: model.params(),
        metrics: evaluation.metrics.clone(),
        fit_seconds,
        eval_seconds: evaluation.seconds,
        users: evaluation.users,
        new_users: evaluation.new_users,
        training: Vec::new(),
        stage_seconds: tandem_rank::TwoStage::of(&*model)
            .map(|p| p.stage_seconds().into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            .unwrap_or_default(),
        feature_importance: feature_importance(&*model),
        diagnostics: None,
    };
    Evaluated { model, evaluation, report }
}

/// A pipeline's tree ranker's features by total gain (largest first), its ten largest
/// printed as shares of the whole.
fn feature_importance(model: &dyn Retriever) -> indexmap::IndexMap<String, f64> {
    let Some(ranker) = tandem_rank::TwoStage::of(model).map(|p| p.ranker()) else {
        return Default::default();
    };
    if let Some((metric, value)) = ranker.validation() {
        eprintln!("ranker validation (the latest training window): {metric} {value:.4}");
    }
    let Some(importance) = ranker.importance() else {
        return Default::default();
    };
    let total: f64 = importance.iter().map(|x| x.1).sum::<f64>().max(f64::MIN_POSITIVE);
    let top: Vec<String> =
        importance.iter().take(10).map(|(name, gain)| format!("{name} {:.1}%", 100.0 * gain / total)).collect();
    eprintln!("ranker feature importance (total gain): {}", top.join(", "));
    importance.into_iter().collect()
}

/// Writes `report.json` and, if asked, the plots: `metrics_at_k.svg`, and `training_curves.svg`
/// when a model was trained in epochs.
pub fn write_report(out: &Path, report: &Report, plot_metrics: bool, plot_training: bool) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let path = out.join("report.json");
    let json = serde_json::to_string_pretty(report).expect("reports serialise");
    std::fs::write(&path, json + "\n").with_context(|| format!("cannot write {}", path.display()))?;
    let curves = plot_training.then(|| tandem_eval::training_curves_svg(report)).flatten();
    let plots = [
        ("metrics_at_k.svg", plot_metrics.then(|| tandem_eval::metrics_at_k_svg(report))),
        ("training_curves.svg", curves),
    ];
    for (file, svg) in plots {
        let Some(svg) = svg else { continue };
        let path = out.join(file);
        std::fs::write(&path, svg).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The default table columns: NDCG@10 / HR@10 when 10 is a cut-off (else the smallest K), and
/// Recall at the largest K.
pub fn default_columns(ks: &[usize]) -> Vec<MetricAt> {
    use tandem_eval::Metric;
    let small = if ks.contains(&10) { 10 } else { *ks.iter().min().unwrap_or(&10) };
    let large = *ks.iter().max().unwrap_or(&100);
    [(Metric::Ndcg, small), (Metric::Hr, small), (Metric::Map, small), (Metric::Recall, large)]
        .map(|(m, k)| MetricAt::new(m, k))
        .to_vec()
}
