//! `tandem evaluate-split SPLIT_DIR --model NAME`: one model on a pre-split directory.

use std::path::Path;

use anyhow::{bail, Context, Result};
use indexmap::IndexMap;
use serde_json::Value;
use tandem_data::{Progress, SplitDir};
use tandem_eval::{
    setup, write_lists, Candidates, MetricAt, Parts, Report, Setup, SetupError, SubmissionFormat, TestSet,
};
use tandem_models::TrainSet;
use tandem_rank::{registry, Spec};

use crate::config::{check_ks, parse_value, typed};
use crate::pipeline::{default_columns, evaluate_model, fit_and_evaluate, write_report, EvalPlan, Validation};
use tandem_rank::model_dir::check_same_data;

/// `KEY=VALUE` parameters (`--param`) as a map, the values read as YAML.
pub fn param_map(params: &[String]) -> Result<serde_json::Map<String, Value>> {
    let mut map = serde_json::Map::new();
    for p in params {
        let (k, v) = p.split_once('=').with_context(|| format!("--param {p}: expected KEY=VALUE"))?;
        map.insert(k.trim().to_string(), parse_value(v));
    }
    Ok(map)
}

/// Builds a model spec from a kind name and `KEY=VALUE` parameters.
pub fn model_spec(model: &str, params: &[String]) -> Result<Spec> {
    let kind = model.replace('-', "_");
    if registry::kind(&kind).is_none() {
        bail!("--model {model}: unknown model (known: {})", registry::kinds().join(", "));
    }
    let mut map = param_map(params)?;
    map.insert("kind".into(), Value::String(kind));
    let spec: Spec = typed(Value::Object(map), &format!("--model {model} parameters"))?;
    spec.check().map_err(|e| anyhow::anyhow!("--param: {e}"))?;
    Ok(spec)
}

/// The ranker's AUROCs and feature sensitivity on test, and the cold-item evaluation (10% of
/// the catalogue made cold), printed and returned for the report.
fn diagnostics(
    spec: &tandem_rank::TwoStageSpec,
    fitted: &tandem_rank::TwoStage,
    train: &TrainSet,
    items: &[tandem_data::read::ItemInfo],
    test: &TestSet,
    explicit: &[(u32, u32)],
    progress: &dyn Progress,
) -> Result<Value> {
    use tandem_rank::diagnostics::{cold_items, diagnose};
    let d = diagnose(fitted, train, &test.users, &test.truth, explicit, 42);
    let show = |a: Option<f64>| a.map_or("n/a".to_string(), |v| format!("{v:.4}"));
    eprintln!(
        "ranker AUROC on test ({} positives among the candidates): vs hard negatives {}, random {}, explicit {}",
        d.positives,
        show(d.auroc_hard),
        show(d.auroc_random),
        show(d.auroc_explicit)
    );
    for s in &d.sensitivity {
        eprintln!("  shuffled {:<20} AUROC {:.4} (drop {:+.4})", s.feature, s.auroc, s.drop);
    }
    let cold =
        cold_items(spec, train, items, &test.users, &test.truth, 0.1, 42, progress).context("cold-item evaluation")?;
    eprintln!(
        "cold items ({} items, {} users): HR@10 ranker {:.4}, popularity {:.4} (popularity counted on the removed rows too: {:.4})",
        cold.items, cold.users, cold.ranker_hr10, cold.popularity_hr10, cold.full_popularity_hr10
    );
    Ok(serde_json::json!({ "test": d, "cold_items": cold }))
}

/// Options of `evaluate-split` beyond the model.
pub struct SplitEval<'a> {
    /// Cut-offs.
    pub ks: &'a [usize],
    /// The metric on valid.tsv that picks the best epoch (`None`: no validation).
    pub valid_metric: Option<MetricAt>,
    /// Save the fitted model here.
    pub save: Option<&'a Path>,
    /// Evaluate this saved model instead of fitting.
    pub load: Option<&'a Path>,
    /// Fit on train.tsv plus valid.tsv (no per-epoch validation then).
    pub train_with_valid: bool,
    /// A MovieLens item file with the items' metadata.
    pub items: Option<&'a Path>,
    /// Run ranker diagnostics (two-stage models).
    pub diagnostics: bool,
    /// A ratings file whose low ratings are the diagnostics' explicit negatives.
    pub ratings: Option<&'a Path>,
    /// Ratings at most this are explicit negatives.
    pub explicit_threshold: f32,
    /// Print the metrics table and protocol line to stdout (the CLI does; library callers may not).
    pub print: bool,
}

/// Fits and evaluates one model on `split_dir`, writing `out/report.json` and `out/predictions.tsv`.
pub fn evaluate_split(
    split_dir: &Path,
    model: &str,
    params: &[String],
    out: &Path,
    opts: &SplitEval<'_>,
    progress: &dyn Progress,
) -> Result<()> {
    let ks = opts.ks;
    let spec = model_spec(model, params)?;
    check_ks(ks).context("--ks")?;
    let mut sd =
        SplitDir::load(split_dir, progress).with_context(|| format!("loading split {}", split_dir.display()))?;
    if let Some(items) = opts.items {
        sd.read_item_metadata(items, progress).with_context(|| format!("--items {}", items.display()))?;
    }
    let data = &sd.dataset;
    let mut train_log = sd.train.clone();
    if opts.train_with_valid {
        if sd.valid.is_empty() {
            bail!("--train-with-valid: {} has no valid.tsv", split_dir.display());
        }
        // The usual last step once settings were chosen on valid.tsv: refit on all non-test rows.
        train_log.extend(&sd.valid);
    }
    let train = TrainSet::new(train_log, data.n_users(), data.n_items());
    let parts = Parts {
        fit: &train.log,
        train: &sd.train,
        valid: &sd.valid,
        test: &sd.test,
        n_users: data.n_users(),
        n_items: data.n_items(),
    };
    let (candidates, keep) = match &sd.test_negatives {
        Some(test) => (Candidates::Given { test, valid: sd.valid_negatives.as_deref() }, usize::MAX),
        None => (Candidates::Full { exclude_seen: true }, 100),
    };
    let fitted_on = if opts.train_with_valid { " (fit on train.tsv + valid.tsv)" } else { "" };
    let split = format!("pre-split directory {}{fitted_on}", split_dir.display());
    let Setup { history, test, protocol, valid: valid_set, valid_protocol, info, dropped } =
        setup(&parts, candidates, split, ks).map_err(|e| match e {
            SetupError::MissingNegatives { part, user } => anyhow::anyhow!(
                "{}: {part} user '{}' has no line in {part}_negatives.tsv",
                split_dir.display(),
                data.users.raw(user)
            ),
        })?;
    if dropped > 0 {
        eprintln!(
            "{}: {dropped} of the given negatives are items their user has in the split; they are not negatives and were dropped",
            split_dir.display()
        );
    }
    let validation = opts
        .valid_metric
        .filter(|_| !valid_set.is_empty() && !opts.train_with_valid)
        .map(|metric| Validation { set: &valid_set, protocol: &valid_protocol, metric });
    let plan =
        EvalPlan { test: &test, history: &history, protocol: &protocol, ks, keep: keep.min(100_000), validation };
    let (name, done) = match opts.load {
        Some(dir) => {
            let loaded = tandem_rank::model_dir::load(dir)?;
            check_same_data(&loaded, &data.users, &data.items, &train.user_items)
                .with_context(|| format!("evaluating {} on {}", dir.display(), split_dir.display()))?;
            (loaded.manifest.kind.clone(), evaluate_model(loaded.model, 0.0, &train, &plan, progress))
        }
        None if opts.diagnostics => {
            let Some(two_stage) = spec.get::<tandem_rank::TwoStageSpec>() else {
                bail!("--diagnostics: only two_stage models have a ranker to diagnose (got {})", spec.kind());
            };
            let start = std::time::Instant::now();
            let fitted = two_stage.fit(&train, data.side(), progress).context("fitting model 'two_stage'")?;
            let fit_seconds = start.elapsed().as_secs_f64();
            let explicit = match opts.ratings {
                Some(path) => sd
                    .read_explicit_negatives(path, opts.explicit_threshold, progress)
                    .with_context(|| format!("--ratings {}", path.display()))?,
                None => Vec::new(),
            };
            let found = diagnostics(two_stage, &fitted, &train, &data.item_info, &test, &explicit, progress)?;
            let mut done = evaluate_model(Box::new(fitted), fit_seconds, &train, &plan, progress);
            done.report.diagnostics = Some(found);
            (spec.kind().to_string(), done)
        }
        None => {
            let name = spec.kind().to_string();
            let done = fit_and_evaluate(&name, &spec, &train, data.side(), &plan, progress)?;
            (name, done)
        }
    };
    if let Some(dir) = opts.save {
        let parts = tandem_rank::model_dir::DataParts {
            users: &data.users,
            items: &data.items,
            history: &train.user_items,
            item_info: &data.item_info,
        };
        tandem_rank::model_dir::save(dir, &name, &*done.model, &parts)?;
    }
    let keep = done.evaluation.predictions.iter().map(|p| p.1.len()).max().unwrap_or(0);
    write_lists(
        &out.join("predictions.tsv"),
        SubmissionFormat::Tsv,
        &data.users,
        &data.items,
        &done.evaluation.predictions,
        keep,
    )?;
    let mut models = IndexMap::new();
    models.insert(name, done.report);
    let report = Report {
        tandem_version: env!("CARGO_PKG_VERSION").to_string(),
        data: serde_json::json!({
            "split_dir": split_dir.display().to_string(),
            "train_rows": sd.train.len(),
            "test_rows": sd.test.len(),
            "loading": data.reports,
        }),
        protocol: info,
        models,
    };
    write_report(out, &report, false, true)?;
    if opts.print {
        println!("{}", report.table(&default_columns(ks)));
        println!("{}", report.protocol_line());
    }
    Ok(())
}
