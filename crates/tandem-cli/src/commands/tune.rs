//! `tandem tune SPLIT_DIR --model KIND`: hyper-parameter search on validation data carved from
//! the training part (never the test part), then the best settings refitted on all of train
//! and evaluated on test once, as `evaluate-split` does.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde_json::{Map, Value};
use tandem_data::{NoProgress, Progress, SplitDir};
use tandem_eval::holdout::{carve, Holdout};
use tandem_eval::search::{append_trial, best, read_trials, yaml_snippet, Search, Trial};
use tandem_eval::{setup, Candidates, MetricAt, Parts, Setup};
use tandem_models::TrainSet;
use tandem_rank::{registry, Spec};

use super::evaluate_split::{evaluate_split, model_spec, SplitEval};
use crate::pipeline::{evaluate_model, EvalPlan, Validation};

/// Options of `tune` beyond the model.
pub struct TuneOptions<'a> {
    /// Trials to run (a resumed search counts the ones already run).
    pub budget: usize,
    /// The validation metric maximised.
    pub metric: MetricAt,
    /// How validation rows are carved from train.tsv (`None`: valid.tsv when the split has
    /// one, else the last 5 rows per user).
    pub holdout: Option<Holdout>,
    /// Seed of the proposals and of a `share` holdout.
    pub seed: u64,
    /// Carry on from OUT/trials.jsonl.
    pub resume: bool,
    /// Trials run at once.
    pub parallel: usize,
    /// A MovieLens item file with the items' metadata.
    pub items: Option<&'a Path>,
    /// Cut-offs of the final test evaluation.
    pub ks: &'a [usize],
}

/// The validation data of a search: rows to fit on and how the held-out ones are ranked.
struct Carved {
    train: TrainSet,
    setup: Setup,
    /// Where the validation rows came from, in words.
    how: String,
    /// Whether they are the split's valid.tsv (the refit then fits on train + valid).
    given: bool,
}

fn carve_validation(sd: &SplitDir, holdout: Option<Holdout>, seed: u64, ks: &[usize]) -> Result<Carved> {
    let (n_users, n_items) = (sd.dataset.n_users(), sd.dataset.n_items());
    let (fit, valid, negatives, how, given) = match holdout {
        None if !sd.valid.is_empty() => {
            (sd.train.clone(), sd.valid.clone(), sd.valid_negatives.as_deref(), "valid.tsv".to_string(), true)
        }
        h => {
            let h = h.unwrap_or(Holdout::Last(5));
            let (fit, valid) = carve(&sd.train, n_users, &sd.dataset.items, h, seed)
                .map_err(|e| anyhow::anyhow!("--holdout {h}: {e}"))?;
            (fit, valid, None, format!("train.tsv, {h} per user"), false)
        }
    };
    if valid.is_empty() {
        bail!("no validation rows: {how} holds none (users need more rows than the holdout takes)");
    }
    let empty = tandem_data::Interactions::new();
    let parts = Parts { fit: &fit, train: &fit, valid: &empty, test: &valid, n_users, n_items };
    let candidates = match negatives {
        Some(test) => Candidates::Given { test, valid: None },
        None => Candidates::Full { exclude_seen: true },
    };
    let setup = setup(&parts, candidates, format!("validation carved from {how}"), ks)
        .map_err(|e| anyhow::anyhow!("validation data: {e}"))?;
    Ok(Carved { train: TrainSet::new(fit, n_users, n_items), setup, how, given })
}

/// Fits `spec` on the carved rows and scores it on the validation rows: the metric's value
/// and the epochs kept (models trained in epochs).
fn run_trial(spec: &Spec, c: &Carved, side: tandem_data::Side<'_>, metric: MetricAt) -> Result<(f64, Option<usize>)> {
    let s = &c.setup;
    let validation = Validation { set: &s.test, protocol: &s.protocol, metric };
    let mut curve: Vec<(usize, f64)> = Vec::new();
    let model = spec.fit_validated(&c.train, side, &NoProgress, &mut |report, model| {
        let v = validation.score(model, &c.train.user_items);
        if let Some(v) = v {
            curve.push((report.epoch, v));
        }
        v
    })?;
    let plan = EvalPlan {
        test: &s.test,
        history: &s.history,
        protocol: &s.protocol,
        ks: &[metric.k],
        keep: 0,
        validation: None,
    };
    let done = evaluate_model(model, 0.0, &c.train, &plan, &NoProgress);
    let value = done.evaluation.metrics.get(&metric.to_string()).copied().context("the metric was not computed")?;
    let epochs = curve.iter().fold(None, |b: Option<(usize, f64)>, &(e, v)| match b {
        Some(b) if b.1 >= v => Some(b),
        _ => Some((e, v)),
    });
    Ok((value, epochs.map(|e| e.0)))
}

fn describe(params: &Map<String, Value>) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().map_or(v.to_string(), str::to_string)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Searches `model`'s space on validation data carved from `split_dir`'s train.tsv (fixed
/// `params` stay as given), writing every trial to OUT/trials.jsonl, then refits the best
/// and evaluates it on test.tsv into OUT (report.json, predictions.tsv, best.yaml, tune.json,
/// trials.svg).
pub fn tune(
    split_dir: &Path,
    model: &str,
    params: &[String],
    out: &Path,
    opts: &TuneOptions<'_>,
    progress: &dyn Progress,
) -> Result<()> {
    let started = Instant::now();
    let base = model_spec(model, params)?;
    let kind = registry::kind(base.kind()).expect("model_spec checked the kind");
    let fixed: Vec<&str> = params.iter().filter_map(|p| p.split_once('=')).map(|(k, _)| k.trim()).collect();
    let space: Vec<_> = kind.space().into_iter().filter(|d| !fixed.contains(&d.key)).collect();
    if space.is_empty() {
        bail!("--model {}: nothing to search (its search space is empty or every key is fixed by --param)", kind.name);
    }
    if opts.budget == 0 {
        bail!("--budget must be at least 1");
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let log = out.join("trials.jsonl");
    let mut done = if opts.resume {
        read_trials(&log).map_err(anyhow::Error::msg)?
    } else if log.exists() {
        bail!("{} exists: pass --resume to carry on with it, or choose another --out", log.display());
    } else {
        Vec::new()
    };
    let metric_name = opts.metric.to_string();
    if let Some(t) = done.iter().find(|t| t.metric != metric_name) {
        bail!("{}: trial {} was scored on {}, not {metric_name}", log.display(), t.trial, t.metric);
    }
    let mut sd = SplitDir::load_without_test(split_dir, progress)
        .with_context(|| format!("loading split {} (train and valid only)", split_dir.display()))?;
    if let Some(items) = opts.items {
        sd.read_item_metadata(items, progress).with_context(|| format!("--items {}", items.display()))?;
    }
    let carved = carve_validation(&sd, opts.holdout, opts.seed, opts.ks)?;
    eprintln!(
        "tune {}: {} trials, {} at a time, on {} ({} validation users, {metric_name}); {} already run; searching {}",
        kind.name,
        opts.budget,
        opts.parallel.max(1),
        carved.how,
        carved.setup.test.len(),
        done.len(),
        space.iter().map(|d| d.key).collect::<Vec<_>>().join(", ")
    );
    let search = Search::new(space, opts.seed);
    let Value::Object(base_params) = base.params() else { unreachable!("parameters are a map") };
    // Trials run `parallel` at a time; a batch's proposals all see the trials before the batch
    // (so a resumed search, with the same seed and parallelism, proposes what an uninterrupted
    // one would).
    let parallel = opts.parallel.max(1);
    let side = sd.dataset.side();
    let run_one = |trial: usize, history: &[Trial]| -> Trial {
        // The first trial is the defaults: what tuning must beat, on the same validation rows.
        let proposal: Map<String, Value> = match trial {
            0 => search
                .space()
                .iter()
                .filter_map(|d| Some((d.key.to_string(), base_params.get(d.key)?.clone())))
                .collect(),
            _ => search.propose(trial, history),
        };
        let mut params = base_params.clone();
        params.extend(proposal.clone());
        params.insert("kind".into(), kind.name.into());
        let t0 = Instant::now();
        let result = Spec::from_json(Value::Object(params))
            .map_err(anyhow::Error::msg)
            .and_then(|spec| spec.check().map(|_| spec).map_err(anyhow::Error::from))
            .and_then(|spec| run_trial(&spec, &carved, side, opts.metric));
        let seconds = t0.elapsed().as_secs_f64();
        let (value, epochs, error) = match result {
            Ok((v, e)) => (Some(v), e, None),
            Err(e) => (None, None, Some(format!("{e:#}"))),
        };
        Trial { trial, params: proposal, metric: metric_name.clone(), value, error, seconds, epochs }
    };
    let mut next = done.len();
    while next < opts.budget {
        let start = next - next % parallel;
        let end = (start + parallel).min(opts.budget);
        let history = &done[..start];
        let batch: Vec<Trial> = (next..end).into_par_iter().map(|k| run_one(k, history)).collect();
        for t in batch {
            append_trial(&log, &t).with_context(|| format!("writing {}", log.display()))?;
            done.push(t);
            let t = done.last().expect("pushed");
            let top = best(&done);
            eprintln!(
                "trial {:>3}/{}  {metric_name} {}  best {} (trial {})  {:>6.1} s  {}{}",
                t.trial + 1,
                opts.budget,
                t.value.map_or("failed".to_string(), |v| format!("{v:.4}")),
                top.and_then(|b| b.value).map_or("-".to_string(), |v| format!("{v:.4}")),
                top.map_or(0, |b| b.trial + 1),
                t.seconds,
                describe(&t.params),
                t.error.as_ref().map_or(String::new(), |e| format!("  error: {e}")),
            );
        }
        next = end;
    }
    let Some(top) = best(&done).cloned() else {
        let why = done.iter().find_map(|t| t.error.clone()).unwrap_or_default();
        bail!("every trial failed (the first: {why})");
    };
    std::fs::write(out.join("trials.svg"), tandem_eval::search::trials_svg(&metric_name, &done))
        .with_context(|| format!("writing {}", out.join("trials.svg").display()))?;
    // The best settings: the fixed parameters, the searched ones, and the epochs validation kept.
    let mut chosen: Map<String, Value> = params
        .iter()
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), crate::config::parse_value(v)))
        .collect();
    chosen.extend(top.params.clone());
    if let (Some(e), true) = (top.epochs, base_params.contains_key("epochs")) {
        chosen.insert("epochs".into(), e.into());
    }
    std::fs::write(out.join("best.yaml"), yaml_snippet(kind.name, &chosen))
        .with_context(|| format!("writing {}", out.join("best.yaml").display()))?;
    eprintln!(
        "best of {} trials: {metric_name} {:.4} on validation (trial {}); refitting on all of train{} and evaluating on test",
        done.len(),
        top.value.unwrap_or(f64::NAN),
        top.trial + 1,
        if carved.given { " + valid" } else { "" }
    );
    let final_params: Vec<String> = chosen.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let eval = SplitEval {
        ks: opts.ks,
        valid_metric: None,
        save: None,
        load: None,
        train_with_valid: carved.given,
        items: opts.items,
        diagnostics: false,
        ratings: None,
        explicit_threshold: 2.0,
    };
    evaluate_split(split_dir, kind.name, &final_params, out, &eval, progress)?;
    let summary = serde_json::json!({
        "split_dir": split_dir.display().to_string(),
        "kind": kind.name,
        "metric": metric_name,
        "validation": carved.how,
        "budget": opts.budget,
        "seed": opts.seed,
        "trials": done.len(),
        "failed": done.iter().filter(|t| t.value.is_none()).count(),
        "best": top,
        "params": chosen,
        "seconds": started.elapsed().as_secs_f64(),
    });
    std::fs::write(out.join("tune.json"), serde_json::to_string_pretty(&summary)? + "\n")
        .with_context(|| format!("writing {}", out.join("tune.json").display()))?;
    println!("{}", yaml_snippet(kind.name, &chosen).trim_end());
    Ok(())
}
